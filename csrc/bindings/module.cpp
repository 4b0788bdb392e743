// optimcore._C: unpacks Python arguments and dispatches to the kernel table of the active SIMD
// level. Tensors arrive as int64 tables of data pointers, built and validated by the Python layer
// (python/optimcore/_optimizer.py), so this module never links libtorch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels.hpp"
#include "optimcore/overlap.hpp"

namespace py = pybind11;
namespace oc = optimcore;
namespace ob = optimcore::bindings;

namespace {

// Levels this CPU and this build can run, lowest first.
std::vector<const ob::Kernels*> supported_levels() {
  std::vector<const ob::Kernels*> levels{&ob::kernels_baseline};
#if defined(OPTIMCORE_HAVE_X86_LEVELS)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  if (avx2) levels.push_back(&ob::kernels_avx2);
  if (avx512) levels.push_back(&ob::kernels_avx512);
#endif
  return levels;
}

const ob::Kernels* find_level(const std::string& name) {
  for (const ob::Kernels* k : supported_levels())
    if (name == k->name + std::strlen("kernels_")) return k;
  std::string known;
  for (const ob::Kernels* k : supported_levels())
    known += std::string(known.empty() ? "" : ", ") + (k->name + std::strlen("kernels_"));
  throw std::invalid_argument("SIMD level '" + name + "' is not supported on this CPU/build " +
                              "(supported: " + known + ")");
}

// The best level, unless OPTIMCORE_SIMD names a lower one.
const ob::Kernels* active = nullptr;

const ob::Kernels& kernels() { return *active; }

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

  active = supported_levels().back();
  if (const char* forced = std::getenv("OPTIMCORE_SIMD"); forced && *forced)
    active = find_level(forced);

  m.def("simd_level", [] { return std::string(kernels().name + std::strlen("kernels_")); });
  m.def("set_simd_level", [](const std::string& name) { active = find_level(name); },
        py::arg("name"));
  m.def("supported_simd_levels", [] {
    std::vector<std::string> names;
    for (const ob::Kernels* k : supported_levels()) names.push_back(k->name + std::strlen("kernels_"));
    return names;
  });
#if defined(_OPENMP)
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
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
