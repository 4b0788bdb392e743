// optimcore._C: unpacks Python arguments and calls the kernel table of the active SIMD level
// (liboptimcore, csrc/lib). Tensors arrive as int64 tables of data pointers, built and validated by the Python layer
// (python/optimcore/_optimizer.py), so this module never links libtorch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "optimcore/dispatch.hpp"
#include "optimcore/overlap.hpp"

namespace py = pybind11;
namespace oc = optimcore;
namespace ob = optimcore::dispatch;

namespace {

const ob::Kernels& kernels() { return ob::kernels(); }

// The rule's Options from keyword arguments: every hyperparameter by name, none missing, none
// unknown (a swapped or misspelt name raises instead of running with the wrong value).
template <class Options>
Options options_from(const char* rule, const py::kwargs& kwargs) {
  Options o;
  std::size_t used = 0;
  o.each([&](const char* name, auto& field) {
    if (!kwargs.contains(name))
      throw py::type_error(std::string(rule) + ": missing hyperparameter '" + name + "'");
    field = kwargs[name].cast<std::decay_t<decltype(field)>>();
    ++used;
  });
  if (used != kwargs.size()) {
    std::string unknown;
    for (const auto& item : kwargs) {
      const std::string key = py::str(item.first);
      bool known = false;
      o.each([&](const char* name, auto&) { known = known || key == name; });
      if (!known) unknown += (unknown.empty() ? "'" : ", '") + key + "'";
    }
    throw py::type_error(std::string(rule) + ": unknown hyperparameter " + unknown);
  }
  return o;
}

// Closure-driven methods. Their state crosses as a dict of plain values (vectors as data
// pointers, torch's scalars as (value, is_tensor) pairs); the closure and new vectors come from
// Python callbacks, called with the GIL, while the passes between them run without it.
ob::ScalarValue scalar_from(const py::handle& h) {
  const auto pair = h.cast<std::pair<double, bool>>();
  return {pair.first, pair.second};
}
py::tuple scalar_to(ob::ScalarValue v) { return py::make_tuple(v.value, v.tensor); }

ob::ClosureState closure_state_from(const py::dict& d) {
  ob::ClosureState c;
  c.func_evals = d["func_evals"].cast<std::int64_t>();
  c.n_iter = d["n_iter"].cast<std::int64_t>();
  c.started = d["started"].cast<bool>();
  c.d = d["d"].cast<std::int64_t>();
  c.prev_flat_grad = d["prev_flat_grad"].cast<std::int64_t>();
  c.t = scalar_from(d["t"]);
  c.prev_loss = d["prev_loss"].cast<double>();
  if (d.contains("H_diag")) {
    c.H_diag = scalar_from(d["H_diag"]);
    c.old_dirs = d["old_dirs"].cast<std::vector<std::int64_t>>();
    c.old_stps = d["old_stps"].cast<std::vector<std::int64_t>>();
    for (const auto& v : d["ro"].cast<py::list>()) c.ro.push_back(scalar_from(v));
    for (const auto& v : d["al"].cast<py::list>()) c.al.push_back(scalar_from(v));
  }
  if (d.contains("since_restart")) c.since_restart = d["since_restart"].cast<std::int64_t>();
  return c;
}

py::dict closure_state_to(const ob::ClosureState& c, bool lbfgs) {
  py::dict d;
  d["func_evals"] = c.func_evals;
  d["n_iter"] = c.n_iter;
  d["started"] = c.started;
  d["d"] = c.d;
  d["prev_flat_grad"] = c.prev_flat_grad;
  d["t"] = scalar_to(c.t);
  d["prev_loss"] = c.prev_loss;
  if (lbfgs) {
    d["H_diag"] = scalar_to(c.H_diag);
    d["old_dirs"] = c.old_dirs;
    d["old_stps"] = c.old_stps;
    py::list ro, al;
    for (auto v : c.ro) ro.append(scalar_to(v));
    for (auto v : c.al) al.append(scalar_to(v));
    d["ro"] = ro;
    d["al"] = al;
  } else {
    d["since_restart"] = c.since_restart;
  }
  return d;
}

// The callbacks of one step. `evaluate()` runs the closure and returns (loss, pointers of the
// parameters' gradients, contiguous, in segment order); the gradients are gathered here into
// the core's vector (a copy, no math) while the closure's tensors are still alive.
struct PyCallbacks {
  py::function evaluate;
  py::function vector;
  std::vector<std::size_t> sizes;
  std::size_t itemsize = 0;
  std::vector<std::int64_t> spare;  // vectors the caller lends first (no Python call)
  std::vector<std::int64_t> recycled;

  ob::ClosureCallbacks table() {
    ob::ClosureCallbacks c;
    c.context = this;
    c.evaluate = [](void* context, std::int64_t grad) {
      auto* self = static_cast<PyCallbacks*>(context);
      py::gil_scoped_acquire gil;
      const py::tuple out = self->evaluate();
      const double loss = out[0].cast<double>();
      const py::list ptrs = out[1];
      if (ptrs.size() != self->sizes.size())
        throw py::value_error("evaluate returned " + std::to_string(ptrs.size()) +
                              " gradients for " + std::to_string(self->sizes.size()) +
                              " parameters");
      char* dst = reinterpret_cast<char*>(grad);
      for (std::size_t i = 0; i < self->sizes.size(); ++i) {
        const std::size_t bytes = self->sizes[i] * self->itemsize;
        if (bytes != 0)
          std::memcpy(dst, reinterpret_cast<const void*>(ptrs[i].cast<std::int64_t>()), bytes);
        dst += bytes;
      }
      return loss;
    };
    c.vector = [](void* context) {
      auto* self = static_cast<PyCallbacks*>(context);
      if (!self->spare.empty()) {
        const std::int64_t v = self->spare.back();
        self->spare.pop_back();
        return v;
      }
      py::gil_scoped_acquire gil;
      return self->vector().cast<std::int64_t>();
    };
    c.recycle = [](void* self, std::int64_t v) {
      static_cast<PyCallbacks*>(self)->recycled.push_back(v);
    };
    return c;
  }
};

// Binds `<name>(segments, sizes, dtype, state, evaluate, vector, spare, num_threads,
// **options)`: one step; returns (result, new state, vectors given back).
template <class Options, class Call>
void def_closure_method(py::module_& m, const char* name, bool lbfgs, Call call) {
  m.def(
      name,
      [name, lbfgs, call](std::vector<std::int64_t> segments, std::vector<std::size_t> sizes,
                          int dtype, py::dict state, py::function evaluate, py::function vector,
                          std::vector<std::int64_t> spare, int num_threads, py::kwargs kwargs) {
        if (segments.size() != sizes.size())
          throw py::value_error(std::string(name) + ": segments and sizes differ in length");
        if (dtype != ob::kFloat32 && dtype != ob::kFloat64)
          throw py::value_error(std::string(name) + ": float32 and float64 only");
        Options o = call.options(kwargs);
        ob::ClosureState c = closure_state_from(state);
        PyCallbacks callbacks{std::move(evaluate), std::move(vector), sizes,
                              dtype == ob::kFloat32 ? sizeof(float) : sizeof(double),
                              std::move(spare), {}};
        const ob::ClosureCallbacks table = callbacks.table();
        oc::ClosureStepResult r;
        {
          py::gil_scoped_release release;
          r = call.step(segments.data(), sizes.data(), segments.size(), dtype, c, o, table,
                        num_threads);
        }
        py::dict result;
        result["first_loss"] = r.first_loss;
        result["loss"] = r.loss;
        result["evaluations"] = r.evaluations;
        result["iterations"] = r.iterations;
        result["reason"] = oc::stop_reason_name(r.reason);
        return py::make_tuple(result, closure_state_to(c, lbfgs), callbacks.recycled);
      },
      py::arg("segments"), py::arg("sizes"), py::arg("dtype"), py::arg("state"),
      py::arg("evaluate"), py::arg("vector"), py::arg("spare"), py::arg("num_threads"));
}

struct LbfgsCall {
  oc::LbfgsOptions options(py::kwargs kwargs) const {
    return options_from<oc::LbfgsOptions>("lbfgs", kwargs);
  }
  template <class... A>
  oc::ClosureStepResult step(A&&... a) const { return kernels().lbfgs(std::forward<A>(a)...); }
};

struct ConjugateGradientCall {
  oc::ConjugateGradientOptions options(py::kwargs kwargs) const {
    static const char* const names[] = {"PR+", "FR", "HS", "DY"};
    if (!kwargs.contains("beta"))
      throw py::type_error("conjugate_gradient: missing hyperparameter 'beta'");
    const std::string beta = py::str(kwargs.attr("pop")("beta"));
    oc::ConjugateGradientOptions o = options_from<oc::ConjugateGradientOptions>(
        "conjugate_gradient", kwargs);
    int code = -1;
    for (int i = 0; i < 4; ++i)
      if (beta == names[i]) code = i;
    if (code < 0)
      throw py::value_error("conjugate_gradient: beta must be one of 'PR+', 'FR', 'HS', 'DY'");
    o.beta = static_cast<oc::CgBeta>(code);
    return o;
  }
  template <class... A>
  oc::ClosureStepResult step(A&&... a) const {
    return kernels().conjugate_gradient(std::forward<A>(a)...);
  }
};

// Binds `<prefix>_step(table, grads, count, dtype, master, stochastic_rounding, seed,
// num_threads, **hyperparameters)` and returns the rule's description for Python: its state
// names in table order, the state it fills itself on a first step, whether it counts steps, its
// hyperparameter names and its per-tensor scalar states (columns after the state tensors).
template <class Rule>
py::dict def_rule(py::module_& m, const char* function, ob::RuleId id) {
  m.def(
      function,
      [id](std::int64_t table, std::int64_t grads, std::size_t count, int dtype, bool master,
           bool stochastic_rounding, std::uint64_t seed, int num_threads, py::kwargs kwargs) {
        typename Rule::Options o = options_from<typename Rule::Options>(Rule::name, kwargs);
        o.stochastic_rounding = stochastic_rounding;
        o.seed = seed;
        const auto* rows = reinterpret_cast<const std::int64_t*>(table);
        const auto* grad_ptrs = reinterpret_cast<const std::int64_t*>(grads);
        py::gil_scoped_release release;
        kernels().rules[id](rows, grad_ptrs, count, dtype, master, &o, num_threads);
      },
      py::arg("table"), py::arg("grads"), py::arg("count"), py::arg("dtype"), py::arg("master"),
      py::arg("stochastic_rounding"), py::arg("seed"), py::arg("num_threads"));
  py::list state, fills, options, scalars;
  for (std::size_t k = 0; k < Rule::kStates; ++k) {
    state.append(Rule::state_names[k]);
    if (Rule::fills_new_state & (1u << k)) fills.append(Rule::state_names[k]);
  }
  for (std::size_t k = 0; k < oc::ScalarStates<Rule>::count; ++k)
    scalars.append(oc::ScalarStates<Rule>::names[k]);
  typename Rule::Options defaults;
  defaults.each([&](const char* name, auto&) { options.append(name); });
  py::dict info;
  info["state"] = py::tuple(state);
  info["fills_new_state"] = py::tuple(fills);
  info["counts_steps"] = Rule::counts_steps;
  info["options"] = py::tuple(options);
  info["scalar_state"] = py::tuple(scalars);
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "optimcore's compiled kernels (internal: use the optimcore package)";

  kernels();  // a bad OPTIMCORE_SIMD fails the import
  m.def("simd_level", &ob::simd_level);
  m.def("simd_level_reason", &ob::simd_level_reason);
  m.def("set_simd_level", &ob::set_simd_level, py::arg("name"));
  m.def("supported_simd_levels", &ob::supported_simd_levels);
  m.def("compiled_simd_levels", &ob::compiled_simd_levels);
  m.def("build_info", [] {
    const ob::BuildInfo b = ob::build_info();
    py::dict info;
    info["version"] = b.version;
    info["compiler"] = b.compiler;
    info["build_type"] = b.build_type;
    info["cxx_flags"] = b.cxx_flags;
    info["kernel_flags"] = b.kernel_flags;
    py::dict levels;
    for (const auto& [level, flags] : b.level_flags) levels[py::str(level)] = flags;
    info["level_flags"] = levels;
    info["library"] = b.library;
    info["openmp"] = b.openmp;
    info["openmp_runtime"] = b.openmp_runtime;
    info["openmp_max_threads"] = b.openmp_max_threads;
    return info;
  });
  m.attr("__version__") = ob::build_info().version;
  m.attr("has_openmp") = ob::build_info().openmp;
  // The table layout, so the Python layer never hard-codes it.
  py::dict columns;
  columns["param"] = int(ob::kParam);
  columns["step"] = int(ob::kStep);
  columns["numel"] = int(ob::kNumel);
  columns["master"] = int(ob::kMaster);
  columns["flags"] = int(ob::kFlags);
  columns["state0"] = int(ob::kState0);
  m.attr("TABLE_COLUMNS") = columns;
  m.attr("NO_GRAD") = ob::kNoGrad;

  m.def(
      "first_overlap",
      [](std::int64_t begin, std::int64_t end, std::size_t count, std::int64_t query_begin,
         std::int64_t query_bytes, std::size_t queries) {
        const auto* b = reinterpret_cast<const std::int64_t*>(begin);
        const auto* e = reinterpret_cast<const std::int64_t*>(end);
        const auto* qb = reinterpret_cast<const std::int64_t*>(query_begin);
        const auto* qn = reinterpret_cast<const std::int64_t*>(query_bytes);
        return oc::first_overlap(b, e, count, qb, qn, queries);
      },
      py::arg("begin"), py::arg("end"), py::arg("count"), py::arg("query_begin"),
      py::arg("query_bytes"), py::arg("queries"));

  // Every rule: its description for the Python layer, and its step with hyperparameters passed
  // by name.
  py::dict rules;
#define OPTIMCORE_DEF_RULE(prefix, Rule) \
  rules[#prefix] = def_rule<oc::Rule>(m, #prefix "_step", ob::k_##prefix);
  OPTIMCORE_RULES(OPTIMCORE_DEF_RULE)
#undef OPTIMCORE_DEF_RULE
  m.attr("rules") = rules;
  m.attr("SPARSE_COLUMNS") = int(ob::kSparseColumns);
  m.attr("REDUCE_COLUMNS") = int(ob::kReduceColumns);
  m.attr("MUON_COLUMNS") = int(ob::kMuonColumns);
  for (const bool momentum : {true, false}) {
    m.def(
        momentum ? "muon_momentum" : "muon_update",
        [momentum](std::int64_t table, std::int64_t neg_lr, std::size_t count, int dtype,
                   int num_threads, py::kwargs kwargs) {
          const oc::MuonOptions o = options_from<oc::MuonOptions>("muon", kwargs);
          const auto* rows = reinterpret_cast<const std::int64_t*>(table);
          const auto* lrs = reinterpret_cast<const double*>(neg_lr);
          py::gil_scoped_release release;
          (momentum ? kernels().muon_momentum : kernels().muon_update)(rows, lrs, count, dtype,
                                                                       o, num_threads);
        },
        py::arg("table"), py::arg("neg_lr"), py::arg("count"), py::arg("dtype"),
        py::arg("num_threads"));
  }
  m.def(
      "adafactor_step",
      [](std::int64_t table, std::int64_t grads, std::size_t count, int dtype, int num_threads,
         py::kwargs kwargs) {
        const oc::AdafactorOptions o = options_from<oc::AdafactorOptions>("adafactor", kwargs);
        const auto* rows = reinterpret_cast<const std::int64_t*>(table);
        const auto* grad_ptrs = reinterpret_cast<const std::int64_t*>(grads);
        py::gil_scoped_release release;
        kernels().adafactor(rows, grad_ptrs, count, dtype, o, num_threads);
      },
      py::arg("table"), py::arg("grads"), py::arg("count"), py::arg("dtype"),
      py::arg("num_threads"));
  def_closure_method<oc::LbfgsOptions>(m, "lbfgs_step", true, LbfgsCall{});
  def_closure_method<oc::ConjugateGradientOptions>(m, "conjugate_gradient_step", false,
                                                   ConjugateGradientCall{});
  py::register_exception<oc::NonFiniteLoss>(m, "NonFiniteLossError", PyExc_FloatingPointError);
  m.def(
      "sparse_adam_step",
      [](std::int64_t table, std::size_t count, int dtype, int num_threads, py::kwargs kwargs) {
        const oc::SparseAdamOptions o = options_from<oc::SparseAdamOptions>("sparse_adam", kwargs);
        const auto* rows = reinterpret_cast<const std::int64_t*>(table);
        py::gil_scoped_release release;
        kernels().sparse_adam(rows, count, dtype, o, num_threads);
      },
      py::arg("table"), py::arg("count"), py::arg("dtype"), py::arg("num_threads"));
}
