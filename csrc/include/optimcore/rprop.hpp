// optimcore/rprop.hpp: Rprop (resilient backpropagation), as torch.optim.Rprop.
//
// Math: Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation Learning: The
// RPROP Algorithm" (ICNN 1993), in torch's variant (Rprop-: no weight backtracking; where the
// gradient's sign flips, that element is not updated and its gradient is forgotten). Operation
// order follows torch/optim/rprop.py (_single_tensor_rprop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct RpropOptions : StepOptions {
  double etaminus = 0.5;
  double etaplus = 1.2;
  double step_size_min = 1e-6;
  double step_size_max = 50.0;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("etaminus", etaminus); f("etaplus", etaplus); f("step_size_min", step_size_min);
    f("step_size_max", step_size_max); f("maximize", maximize);
  }
};

// State: the previous (kept) gradient and each element's step size (torch starts it at lr).
struct Rprop {
  static constexpr const char* name = "rprop";
  enum State : std::size_t { kPrev, kStepSize, kStates };
  static constexpr const char* state_names[kStates] = {"prev", "step_size"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;  // counted as torch does; the math does not use it
  using Options = RpropOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using RpropTensor = ParamState<T, S, Rprop::kStates>;

namespace detail {

template <bool MASTER, bool SR, class T, class S>
void rprop_range(const RpropTensor<T, S>& t, std::size_t begin, std::size_t end,
                 compute_t<T> sign, compute_t<T> etaminus, compute_t<T> etaplus,
                 compute_t<T> lo, compute_t<T> hi, std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT prev = t.state[Rprop::kPrev];
  S* OPTIMCORE_RESTRICT step_size = t.state[Rprop::kStepSize];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    const C s = sign_of(g * load(prev[j]));
    // torch fills sign(g * prev) in place: > 0 -> etaplus, < 0 -> etaminus, == 0 -> 1.
    const C factor = s > C(0) ? etaplus : (s < C(0) ? etaminus : C(1));
    C size = load(step_size[j]) * factor;
    if (size == size) {  // clamp_(min, max) = min(max(size, min), max); NaN stays NaN
      size = size < lo ? lo : size;
      size = size > hi ? hi : size;
    }
    if (factor == etaminus) g = C(0);  // a sign flip: no update here, forget the gradient
    const C p = load_param<MASTER, SR>(param, master, j);
    step_size[j] = store<S>(size);
    prev[j] = store<S>(g);
    // param.addcmul_(g.sign(), step_size, value=-1): sign * size is exact.
    store_result<MASTER, SR>(param, master, j, p - sign_of(g) * size, stream);
  }
}

}  // namespace detail

// One Rprop step for `count` tensors: increments each step, then one pass over memory.
template <class T, class S = T>
void rprop_step(const RpropTensor<T, S>* tensors, std::size_t count, const RpropOptions& o,
                int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  for (std::size_t i = 0; i < count; ++i) *tensors[i].step += 1.0f;
  const C sign = o.maximize ? C(-1) : C(1);
  const C etaminus = static_cast<C>(o.etaminus), etaplus = static_cast<C>(o.etaplus);
  const C lo = static_cast<C>(o.step_size_min), hi = static_cast<C>(o.step_size_max);
  for_each_param_range(tensors, count, o, num_threads,
                       [&](auto master, auto sr, std::size_t i, std::size_t b,
                           std::size_t e, std::uint32_t stream) {
    constexpr bool M = decltype(master)::value, R = decltype(sr)::value;
    detail::rprop_range<M, R>(tensors[i], b, e, sign, etaminus, etaplus, lo, hi,
                              stream);
  });
}

OPTIMCORE_NAMESPACE_END
