// liboptimcore, the compiled dispatching library (CMake target optimcore::optimcore): the kernel
// table of every rule, instantiated once per SIMD level (csrc/lib/kernels.cpp, compiled with each
// level's -march), and the choice among them at run time from CPUID (csrc/lib/dispatch.cpp).
// The Python extension and C++ programs call the same tables, so both run the same machine code
// whatever flags the program itself is compiled with. No math here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "optimcore/optimcore.hpp"

#if defined(_WIN32)
#define OPTIMCORE_API
#else
#define OPTIMCORE_API __attribute__((visibility("default")))
#endif

namespace optimcore::dispatch {

// Element type codes, shared with python/optimcore/_table.py (DTYPE_CODES).
enum DType : int { kFloat32 = 0, kFloat64 = 1, kBFloat16 = 2, kFloat16 = 3 };

// Row layout of the int64 tensor tables built (and cached) by the Python layer, one row per
// parameter tensor, the same for every rule: pointers are data_ptr() values, 0 means "absent";
// the rule's state tensors follow in the order of its description's state_names. kFlags holds
// ParamState::new_state (bit k: state k is new). Gradients change every step, so their pointers
// come in a separate array, one per row.
enum Column : int { kParam, kStep, kNumel, kMaster, kFlags, kState0 };
// A gradient pointer of kNoGrad: the row takes no part in this step (its parameter has no
// gradient now). The kernel skips it: no state, step count or parameter is touched.
constexpr std::int64_t kNoGrad = -1;

// Index of each rule in Kernels::rules, in OPTIMCORE_RULES order.
enum RuleId : int {
#define OPTIMCORE_RULE_ID(prefix, Rule) k_##prefix,
  OPTIMCORE_RULES(OPTIMCORE_RULE_ID)
#undef OPTIMCORE_RULE_ID
  kRuleCount
};

// One rule's step over `count` rows of `table` (kState0 + the rule's number of state tensors
// columns each) with `count` gradient pointers; `options` points at the rule's Options.
using KernelFn = void (*)(const std::int64_t* table, const std::int64_t* grads, std::size_t count,
                          int dtype, bool master, const void* options, int num_threads);

// Row-sparse rules (SparseAdam): `count` rows of kSparseColumns int64 each (pointers, sizes and
// the step count), float32/float64 only.
enum SparseColumn : int { kSparseParam, kSparseExpAvg, kSparseExpAvgSq, kSparseIndices,
                          kSparseValues, kSparseRows, kSparseRowNumel, kSparseStep, kSparseColumns };
using SparseAdamFn = void (*)(const std::int64_t* table, std::size_t count, int dtype,
                              const SparseAdamOptions& options, int num_threads);

// Rules with per-tensor reductions (Adafactor): `count` rows of kReduceColumns int64 each.
enum ReduceColumn : int { kReduceParam, kReduceGrad, kReduceStep, kReduceRowVar, kReduceColVar,
                          kReduceVariance, kReduceBatch, kReduceRows, kReduceCols,
                          kReduceFactored, kReduceColumns };
using AdafactorFn = void (*)(const std::int64_t* table, const std::int64_t* grads,
                             std::size_t count, int dtype, const AdafactorOptions& options,
                             int num_threads);

// Muon's two passes around torch's Newton-Schulz: `count` rows of kMuonColumns int64 each and
// one -adjusted lr per row.
enum MuonColumn : int { kMuonParam, kMuonGrad, kMuonBuffer, kMuonUpdate, kMuonNumel, kMuonColumns };
using MuonFn = void (*)(const std::int64_t* table, const double* neg_lr, std::size_t count,
                        int dtype, const MuonOptions& options, int num_threads);

// Closure-driven methods (L-BFGS, conjugate gradient): the parameters as `count` contiguous
// segments (pointers and sizes), the method's state as plain data the Python layer converts
// from and to torch's state dict (vectors as pointers of caller-owned tensors, torch's scalars
// as value + "is a 0-d tensor"), and callbacks into the caller: the closure, and vectors.
struct ScalarValue {
  double value = 0.0;
  bool tensor = false;
};
struct ClosureState {
  std::int64_t func_evals = 0, n_iter = 0;
  bool started = false;
  std::int64_t d = 0, prev_flat_grad = 0;
  ScalarValue t;
  double prev_loss = 0.0;
  ScalarValue H_diag{1.0, false};  // L-BFGS
  std::vector<std::int64_t> old_dirs, old_stps;
  std::vector<ScalarValue> ro, al;
  std::int64_t since_restart = 0;  // conjugate gradient
};
struct ClosureCallbacks {
  void* context = nullptr;
  double (*evaluate)(void* context, std::int64_t grad) = nullptr;  // loss; gradient into grad
  std::int64_t (*vector)(void* context) = nullptr;                 // a vector of n elements
  void (*recycle)(void* context, std::int64_t vector) = nullptr;   // no longer used
};
using LbfgsFn = ClosureStepResult (*)(const std::int64_t* segments, const std::size_t* sizes,
                                      std::size_t count, int dtype, ClosureState& state,
                                      const LbfgsOptions& options, const ClosureCallbacks& calls,
                                      int num_threads);
using ConjugateGradientFn = ClosureStepResult (*)(const std::int64_t* segments,
                                                  const std::size_t* sizes, std::size_t count,
                                                  int dtype, ClosureState& state,
                                                  const ConjugateGradientOptions& options,
                                                  const ClosureCallbacks& calls, int num_threads);

struct Kernels {
  const char* name;
  KernelFn rules[kRuleCount];
  SparseAdamFn sparse_adam;
  AdafactorFn adafactor;
  MuonFn muon_momentum;
  MuonFn muon_update;
  LbfgsFn lbfgs;
  ConjugateGradientFn conjugate_gradient;
};

// The table of the active SIMD level. At first use this is the best level the CPU supports,
// unless the environment variable OPTIMCORE_SIMD names another one (std::invalid_argument if
// that level is not compiled in or the CPU lacks it).
OPTIMCORE_API const Kernels& kernels();

// The active level's name: "baseline", "avx2" or "avx512".
OPTIMCORE_API std::string simd_level();
// Why that level is active: "best on this CPU", "OPTIMCORE_SIMD=<name>" or "set_simd_level".
OPTIMCORE_API std::string simd_level_reason();
// Forces a level (for tests and comparisons); std::invalid_argument if it cannot run here.
OPTIMCORE_API void set_simd_level(const std::string& name);
// Levels compiled into this library, and those of them this CPU can run, lowest first.
OPTIMCORE_API std::vector<std::string> compiled_simd_levels();
OPTIMCORE_API std::vector<std::string> supported_simd_levels();

// How this library was built, and the OpenMP runtime it runs on in this process.
struct BuildInfo {
  std::string version;         // optimcore's version (CMakeLists.txt's project())
  std::string compiler;        // e.g. "GNU 12.2.0"
  std::string build_type;      // e.g. "Release"
  std::string cxx_flags;       // flags every translation unit got
  std::string kernel_flags;    // flags every kernel translation unit got
  std::vector<std::pair<std::string, std::string>> level_flags;  // level -> its ISA flags
  std::string library;         // the file of this library
  bool openmp = false;         // built with OpenMP
  std::string openmp_runtime;  // the file of the OpenMP runtime mapped in this process
  int openmp_max_threads = 1;  // omp_get_max_threads() now
};
OPTIMCORE_API BuildInfo build_info();

}  // namespace optimcore::dispatch
