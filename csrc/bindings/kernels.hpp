// Kernel table of one SIMD level. kernels.cpp is compiled once per level (see CMakeLists.txt);
// module.cpp picks a table at import from CPUID. No math here: only instantiation and unpacking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/optimcore.hpp"

namespace optimcore::bindings {

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

extern const Kernels kernels_baseline;
#if defined(OPTIMCORE_HAVE_X86_LEVELS)
extern const Kernels kernels_avx2;
extern const Kernels kernels_avx512;
#endif

}  // namespace optimcore::bindings
