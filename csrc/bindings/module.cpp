// optimcore._C: unpacks Python arguments and dispatches to the kernel table of the active SIMD
// level. Tensors arrive as int64 tables of data pointers, built and validated by the Python layer
// (python/optimcore/_optimizer.py), so this module never links libtorch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
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
  m.attr("FLAG_STATE_IS_NEW") = int(ob::kStateIsNew);
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

  m.def(
      "adam_step",
      [](std::int64_t table, std::int64_t grads, std::size_t count, int dtype, bool master,
         double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
         bool maximize, bool decoupled_weight_decay, bool stochastic_rounding,
         std::uint64_t seed, int num_threads) {
        oc::AdamOptions o;
        o.lr = lr;
        o.beta1 = beta1;
        o.beta2 = beta2;
        o.eps = eps;
        o.weight_decay = weight_decay;
        o.amsgrad = amsgrad;
        o.maximize = maximize;
        o.decoupled_weight_decay = decoupled_weight_decay;
        o.stochastic_rounding = stochastic_rounding;
        o.seed = seed;
        const auto* rows = reinterpret_cast<const std::int64_t*>(table);
        const auto* grad_ptrs = reinterpret_cast<const std::int64_t*>(grads);
        py::gil_scoped_release release;
        kernels().adam(rows, grad_ptrs, count, dtype, master, o, num_threads);
      },
      py::arg("table"), py::arg("grads"), py::arg("count"), py::arg("dtype"), py::arg("master"),
      py::arg("lr"),
      py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
      py::arg("amsgrad"), py::arg("maximize"), py::arg("decoupled_weight_decay"),
      py::arg("stochastic_rounding"), py::arg("seed"), py::arg("num_threads"));

  m.def(
      "sgd_step",
      [](std::int64_t table, std::int64_t grads, std::size_t count, int dtype, bool master,
         double lr, double momentum, double dampening, double weight_decay, bool nesterov,
         bool maximize, bool stochastic_rounding, std::uint64_t seed,
         int num_threads) {
        oc::SgdOptions o;
        o.lr = lr;
        o.momentum = momentum;
        o.dampening = dampening;
        o.weight_decay = weight_decay;
        o.nesterov = nesterov;
        o.maximize = maximize;
        o.stochastic_rounding = stochastic_rounding;
        o.seed = seed;
        const auto* rows = reinterpret_cast<const std::int64_t*>(table);
        const auto* grad_ptrs = reinterpret_cast<const std::int64_t*>(grads);
        py::gil_scoped_release release;
        kernels().sgd(rows, grad_ptrs, count, dtype, master, o, num_threads);
      },
      py::arg("table"), py::arg("grads"), py::arg("count"), py::arg("dtype"), py::arg("master"),
      py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
      py::arg("maximize"), py::arg("stochastic_rounding"), py::arg("seed"),
      py::arg("num_threads"));
}
