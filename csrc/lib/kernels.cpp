// Instantiates every rule for every element type at one SIMD level. CMake compiles this file
// once per level with that level's -march and OPTIMCORE_KERNELS_NAME=kernels_<level>;
// dispatch.cpp picks one of the tables at run time.
#include "optimcore/dispatch.hpp"

#include <vector>

#ifndef OPTIMCORE_KERNELS_NAME
#error "compile kernels.cpp with -DOPTIMCORE_KERNELS_NAME=kernels_<level>"
#endif
#define OPTIMCORE_STR2(x) #x
#define OPTIMCORE_STR(x) OPTIMCORE_STR2(x)

namespace optimcore::dispatch {

extern const Kernels OPTIMCORE_KERNELS_NAME;

namespace {

template <class P>
P* ptr(std::int64_t v) {
  return reinterpret_cast<P*>(static_cast<std::uintptr_t>(v));
}

// The table's rows as the rule's ParamStates, rows without a gradient left out. Columns:
// kState0 + the N state tensors, then the M scalar states.
template <class T, class S, std::size_t N, std::size_t M>
std::vector<ParamState<T, S, N, M>> unpack(const std::int64_t* table, const std::int64_t* grads,
                                           std::size_t count) {
  std::vector<ParamState<T, S, N, M>> rows;
  rows.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (grads[i] == kNoGrad) continue;
    const std::int64_t* row = table + i * (kState0 + N + M);
    ParamState<T, S, N, M>& t = rows.emplace_back();
    for (std::size_t k = 0; k < M; ++k) t.scalar[k] = ptr<float>(row[kState0 + N + k]);
    t.param = ptr<T>(row[kParam]);
    t.grad = ptr<const T>(grads[i]);
    t.step = ptr<float>(row[kStep]);
    t.numel = static_cast<std::size_t>(row[kNumel]);
    t.master_param = ptr<S>(row[kMaster]);
    t.new_state = static_cast<std::uint32_t>(row[kFlags]);
    for (std::size_t k = 0; k < N; ++k) t.state[k] = ptr<S>(row[kState0 + k]);
  }
  return rows;
}

// Calls f(T{}, S{}) for the element type code; 16-bit types keep float32 state when master
// weights are on.
template <class F>
void dispatch_dtype(int dtype, bool master, F&& f) {
  switch (dtype) {
    case kFloat32: f(float{}, float{}); break;
    case kFloat64: f(double{}, double{}); break;
    case kBFloat16: master ? f(bfloat16{}, float{}) : f(bfloat16{}, bfloat16{}); break;
#if OPTIMCORE_HAS_FLOAT16
    case kFloat16: master ? f(float16{}, float{}) : f(float16{}, float16{}); break;
#endif
    default: break;  // unreachable: callers validate dtypes (the Python layer, Optimizer)
  }
}

// One generic entry per rule: unpack, dispatch on the element type, call <prefix>_step.
#define OPTIMCORE_KERNEL(prefix, Rule)                                                        \
  void prefix(const std::int64_t* table, const std::int64_t* grads, std::size_t count,        \
              int dtype, bool master, const void* options, int num_threads) {                 \
    dispatch_dtype(dtype, master, [&](auto t, auto s) {                                        \
      using T = decltype(t);                                                                   \
      using S = decltype(s);                                                                   \
      const auto rows =                                                                        \
          unpack<T, S, Rule::kStates, ScalarStates<Rule>::count>(table, grads, count);         \
      prefix##_step(rows.data(), rows.size(), *static_cast<const Rule::Options*>(options),     \
                    num_threads);                                                              \
    });                                                                                        \
  }
OPTIMCORE_RULES(OPTIMCORE_KERNEL)
#undef OPTIMCORE_KERNEL

template <class T>
void sparse_adam_typed(const std::int64_t* table, std::size_t count, const SparseAdamOptions& o,
                       int num_threads) {
  std::vector<SparseRows<T>> rows(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::int64_t* row = table + i * kSparseColumns;
    SparseRows<T>& t = rows[i];
    t.param = ptr<T>(row[kSparseParam]);
    t.exp_avg = ptr<T>(row[kSparseExpAvg]);
    t.exp_avg_sq = ptr<T>(row[kSparseExpAvgSq]);
    t.indices = ptr<const std::int64_t>(row[kSparseIndices]);
    t.values = ptr<const T>(row[kSparseValues]);
    t.rows = static_cast<std::size_t>(row[kSparseRows]);
    t.row_numel = static_cast<std::size_t>(row[kSparseRowNumel]);
    t.step = static_cast<double>(row[kSparseStep]);
  }
  sparse_adam_step(rows.data(), count, o, num_threads);
}

void sparse_adam(const std::int64_t* table, std::size_t count, int dtype,
                 const SparseAdamOptions& o, int num_threads) {
  if (dtype == kFloat32) sparse_adam_typed<float>(table, count, o, num_threads);
  else if (dtype == kFloat64) sparse_adam_typed<double>(table, count, o, num_threads);
}

template <class T>
void adafactor_typed(const std::int64_t* table, const std::int64_t* grads, std::size_t count,
                     const AdafactorOptions& o, int num_threads) {
  std::vector<AdafactorTensor<T>> rows;
  rows.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (grads[i] == kNoGrad) continue;
    const std::int64_t* row = table + i * kReduceColumns;
    AdafactorTensor<T>& t = rows.emplace_back();
    t.param = ptr<T>(row[kReduceParam]);
    t.grad = ptr<const T>(grads[i]);
    t.step = ptr<float>(row[kReduceStep]);
    t.row_var = ptr<T>(row[kReduceRowVar]);
    t.col_var = ptr<T>(row[kReduceColVar]);
    t.variance = ptr<T>(row[kReduceVariance]);
    t.batch = static_cast<std::size_t>(row[kReduceBatch]);
    t.rows = static_cast<std::size_t>(row[kReduceRows]);
    t.cols = static_cast<std::size_t>(row[kReduceCols]);
    t.factored = row[kReduceFactored] != 0;
  }
  adafactor_step(rows.data(), rows.size(), o, num_threads);
}

void adafactor(const std::int64_t* table, const std::int64_t* grads, std::size_t count,
               int dtype, const AdafactorOptions& o, int num_threads) {
  if (dtype == kFloat32) adafactor_typed<float>(table, grads, count, o, num_threads);
  else if (dtype == kFloat64) adafactor_typed<double>(table, grads, count, o, num_threads);
}

template <class T>
std::vector<MuonTensor<T>> muon_rows(const std::int64_t* table, const double* neg_lr,
                                     std::size_t count) {
  std::vector<MuonTensor<T>> rows(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::int64_t* row = table + i * kMuonColumns;
    rows[i].param = ptr<T>(row[kMuonParam]);
    rows[i].grad = ptr<const T>(row[kMuonGrad]);
    rows[i].momentum_buffer = ptr<T>(row[kMuonBuffer]);
    rows[i].update = ptr<bfloat16>(row[kMuonUpdate]);
    rows[i].numel = static_cast<std::size_t>(row[kMuonNumel]);
    rows[i].neg_lr = neg_lr[i];
  }
  return rows;
}

void muon_momentum_pass(const std::int64_t* table, const double* neg_lr, std::size_t count,
                        int dtype, const MuonOptions& o, int num_threads) {
  if (dtype == kFloat32) muon_momentum(muon_rows<float>(table, neg_lr, count).data(), count, o, num_threads);
  else if (dtype == kFloat64) muon_momentum(muon_rows<double>(table, neg_lr, count).data(), count, o, num_threads);
}

void muon_update_pass(const std::int64_t* table, const double* neg_lr, std::size_t count,
                      int dtype, const MuonOptions& o, int num_threads) {
  if (dtype == kFloat32) muon_update(muon_rows<float>(table, neg_lr, count).data(), count, o, num_threads);
  else if (dtype == kFloat64) muon_update(muon_rows<double>(table, neg_lr, count).data(), count, o, num_threads);
}

// Closure-driven methods: ClosureState <-> the method's state, callbacks as its Memory.
template <class T>
struct CallbackMemory {
  const ClosureCallbacks& calls;
  T* vector() { return ptr<T>(calls.vector(calls.context)); }
  void recycle(T* p) { calls.recycle(calls.context, reinterpret_cast<std::int64_t>(p)); }
};

template <class T>
Number<T> number(ScalarValue v) { return {v.value, v.tensor}; }
inline ScalarValue scalar(double value, bool tensor) { return {value, tensor}; }

template <class T>
std::vector<T*> pointers(const std::vector<std::int64_t>& v) {
  std::vector<T*> out;
  for (std::int64_t p : v) out.push_back(ptr<T>(p));
  return out;
}
template <class T>
std::vector<std::int64_t> addresses(const std::vector<T*>& v) {
  std::vector<std::int64_t> out;
  for (T* p : v) out.push_back(reinterpret_cast<std::int64_t>(p));
  return out;
}
template <class T>
std::vector<Number<T>> numbers(const std::vector<ScalarValue>& v) {
  std::vector<Number<T>> out;
  for (ScalarValue x : v) out.push_back(number<T>(x));
  return out;
}
template <class T>
std::vector<ScalarValue> scalars(const std::vector<Number<T>>& v) {
  std::vector<ScalarValue> out;
  for (Number<T> x : v) out.push_back(scalar(x.v, x.tensor));
  return out;
}

template <class T>
void load(const ClosureState& c, DescentState<T>& s) {
  s.func_evals = c.func_evals;
  s.n_iter = c.n_iter;
  s.started = c.started;
  s.d = ptr<T>(c.d);
  s.prev_flat_grad = ptr<T>(c.prev_flat_grad);
  s.t = number<T>(c.t);
  s.prev_loss = c.prev_loss;
}
template <class T>
void store(const DescentState<T>& s, ClosureState& c) {
  c.func_evals = s.func_evals;
  c.n_iter = s.n_iter;
  c.started = s.started;
  c.d = reinterpret_cast<std::int64_t>(s.d);
  c.prev_flat_grad = reinterpret_cast<std::int64_t>(s.prev_flat_grad);
  c.t = scalar(s.t.v, s.t.tensor);
  c.prev_loss = s.prev_loss;
}

// Runs step(x, state, memory, evaluate) for the method's state type State<T>.
template <class T, class State, class Load, class Store, class Step>
ClosureStepResult closure_typed(const std::int64_t* segments, const std::size_t* sizes,
                                std::size_t count, ClosureState& c, const ClosureCallbacks& calls,
                                Load load_extra, Store store_extra, Step step) {
  std::vector<T*> data = pointers<T>(std::vector<std::int64_t>(segments, segments + count));
  const Segments<T> x{data.data(), sizes, count};
  State s;
  load(c, s);
  load_extra(s);
  CallbackMemory<T> memory{calls};
  const auto evaluate = [&](T* grad) {
    return calls.evaluate(calls.context, reinterpret_cast<std::int64_t>(grad));
  };
  const ClosureStepResult r = step(x, s, evaluate, memory);
  store(s, c);
  store_extra(s);
  return r;
}

template <class T>
ClosureStepResult lbfgs_typed(const std::int64_t* segments, const std::size_t* sizes,
                              std::size_t count, ClosureState& c, const LbfgsOptions& o,
                              const ClosureCallbacks& calls, int num_threads) {
  return closure_typed<T, LbfgsState<T>>(
      segments, sizes, count, c, calls,
      [&](LbfgsState<T>& s) {
        s.H_diag = number<T>(c.H_diag);
        s.old_dirs = pointers<T>(c.old_dirs);
        s.old_stps = pointers<T>(c.old_stps);
        s.ro = numbers<T>(c.ro);
        s.al = numbers<T>(c.al);
      },
      [&](const LbfgsState<T>& s) {
        c.H_diag = scalar(s.H_diag.v, s.H_diag.tensor);
        c.old_dirs = addresses(s.old_dirs);
        c.old_stps = addresses(s.old_stps);
        c.ro = scalars(s.ro);
        c.al = scalars(s.al);
      },
      [&](const Segments<T>& x, LbfgsState<T>& s, auto& evaluate, auto& memory) {
        return lbfgs_step(x, s, o, evaluate, memory, num_threads);
      });
}

ClosureStepResult lbfgs(const std::int64_t* segments, const std::size_t* sizes, std::size_t count,
                        int dtype, ClosureState& state, const LbfgsOptions& o,
                        const ClosureCallbacks& calls, int num_threads) {
  if (dtype == kFloat32) return lbfgs_typed<float>(segments, sizes, count, state, o, calls, num_threads);
  return lbfgs_typed<double>(segments, sizes, count, state, o, calls, num_threads);
}

template <class T>
ClosureStepResult cg_typed(const std::int64_t* segments, const std::size_t* sizes,
                           std::size_t count, ClosureState& c, const ConjugateGradientOptions& o,
                           const ClosureCallbacks& calls, int num_threads) {
  return closure_typed<T, ConjugateGradientState<T>>(
      segments, sizes, count, c, calls,
      [&](ConjugateGradientState<T>& s) { s.since_restart = c.since_restart; },
      [&](const ConjugateGradientState<T>& s) { c.since_restart = s.since_restart; },
      [&](const Segments<T>& x, ConjugateGradientState<T>& s, auto& evaluate, auto& memory) {
        return cg_step(x, s, o, evaluate, memory, num_threads);
      });
}

ClosureStepResult conjugate_gradient(const std::int64_t* segments, const std::size_t* sizes,
                                     std::size_t count, int dtype, ClosureState& state,
                                     const ConjugateGradientOptions& o,
                                     const ClosureCallbacks& calls, int num_threads) {
  if (dtype == kFloat32) return cg_typed<float>(segments, sizes, count, state, o, calls, num_threads);
  return cg_typed<double>(segments, sizes, count, state, o, calls, num_threads);
}

}  // namespace

#define OPTIMCORE_KERNEL_ENTRY(prefix, Rule) &prefix,
extern const Kernels OPTIMCORE_KERNELS_NAME = {OPTIMCORE_STR(OPTIMCORE_KERNELS_NAME),
                                               {OPTIMCORE_RULES(OPTIMCORE_KERNEL_ENTRY)},
                                               &sparse_adam, &adafactor, &muon_momentum_pass,
                                               &muon_update_pass, &lbfgs,
                                               &conjugate_gradient};
#undef OPTIMCORE_KERNEL_ENTRY

}  // namespace optimcore::dispatch
