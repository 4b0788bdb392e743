// optimcore/sgd.hpp: stochastic gradient descent with momentum, dampening, Nesterov momentum and
// L2 weight decay, as torch.optim.SGD.
//
// Math: Sutskever et al., "On the importance of initialization and momentum in deep learning"
// (ICML 2013), in torch's formulation (torch/optim/sgd.py, _single_tensor_sgd): the velocity is
// not scaled by lr, and the first step sets the momentum buffer to the gradient (no dampening).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

// Hyperparameters: plain data, the same type in every SIMD-level build.
struct SgdOptions : StepOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;

  // Every hyperparameter by name (bindings pass them by name, never by position).
  template <class F>
  void each(F&& f) {
    f("lr", lr); f("momentum", momentum); f("dampening", dampening);
    f("weight_decay", weight_decay); f("nesterov", nesterov); f("maximize", maximize);
  }
};

// The rule's description: one state tensor (used only when momentum != 0), which the rule fills
// itself on a first step (torch starts the buffer as a copy of the decayed gradient).
struct Sgd {
  static constexpr const char* name = "sgd";
  enum State : std::size_t { kMomentumBuffer, kStates };
  static constexpr const char* state_names[kStates] = {"momentum_buffer"};
  static constexpr std::uint32_t fills_new_state = 1u << kMomentumBuffer;
  static constexpr bool counts_steps = false;
  using Options = SgdOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using SgdTensor = ParamState<T, S, Sgd::kStates>;

namespace detail {

template <class C>
struct SgdScalars {
  C sign, weight_decay, momentum, one_minus_dampening, neg_lr;
};

// MOMENTUM: 0 none, 1 heavy ball, 2 Nesterov. FIRST: the momentum buffer is new.
template <int MOMENTUM, bool FIRST, bool L2, bool MASTER, bool SR, class T, class S>
void sgd_range(const SgdTensor<T, S>& t, std::size_t begin, std::size_t end,
               const SgdScalars<compute_t<T>>& k, std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT buf = t.state[Sgd::kMomentumBuffer];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  // Scalars in locals, so stores through the pointers cannot be assumed to change them.
  const C sign = k.sign, weight_decay = k.weight_decay, momentum = k.momentum;
  const C one_minus_dampening = k.one_minus_dampening, neg_lr = k.neg_lr;
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);
    if constexpr (MOMENTUM != 0) {
      const C b = FIRST ? g : madd(g, one_minus_dampening, load(buf[j]) * momentum);
      buf[j] = store<S>(b);
      g = (MOMENTUM == 2) ? madd(b, momentum, g) : b;
    }
    store_result<MASTER, SR>(param, master, j, madd(g, neg_lr, p), stream);
  }
}

}  // namespace detail

// One SGD step for `count` tensors sharing `options`, on up to `num_threads` threads, in one
// pass over memory. Tensors with master_param set must all have it set.
template <class T, class S = T>
void sgd_step(const SgdTensor<T, S>* tensors, std::size_t count, const SgdOptions& o,
              int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  const detail::SgdScalars<C> k{C(o.maximize ? -1 : 1), static_cast<C>(o.weight_decay),
                                static_cast<C>(o.momentum),
                                static_cast<C>(1.0 - o.dampening), static_cast<C>(-o.lr)};
  const int momentum = o.momentum == 0.0 ? 0 : (o.nesterov ? 2 : 1);
  const bool l2 = o.weight_decay != 0.0;
  auto run = [&](auto mom, auto l2c) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr int M = decltype(mom)::value;
      constexpr bool L = decltype(l2c)::value, MA = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      if (M != 0 && (tensors[i].new_state & (1u << Sgd::kMomentumBuffer)))
        detail::sgd_range<M, true, L, MA, R>(tensors[i], b, e, k, stream);
      else
        detail::sgd_range<M, false, L, MA, R>(tensors[i], b, e, k, stream);
    });
  };
  auto with_decay = [&](auto m) { l2 ? run(m, std::true_type{}) : run(m, std::false_type{}); };
  switch (momentum) {
    case 0: with_decay(std::integral_constant<int, 0>{}); break;
    case 1: with_decay(std::integral_constant<int, 1>{}); break;
    default: with_decay(std::integral_constant<int, 2>{}); break;
  }
}

OPTIMCORE_NAMESPACE_END
