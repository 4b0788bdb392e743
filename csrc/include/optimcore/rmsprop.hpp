// optimcore/rmsprop.hpp: RMSprop (optionally centered, with momentum), as torch.optim.RMSprop.
//
// Math: Hinton, Srivastava & Swersky, "Neural Networks for Machine Learning", lecture 6e; the
// centered variant from Graves, "Generating Sequences With Recurrent Neural Networks"
// (arXiv:1308.0850). Operation order follows torch/optim/rmsprop.py (_single_tensor_rmsprop).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct RmspropOptions : StepOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("alpha", alpha); f("eps", eps); f("weight_decay", weight_decay);
    f("momentum", momentum); f("centered", centered); f("maximize", maximize);
  }
};

// State: square_avg always; momentum_buffer with momentum > 0; grad_avg when centered.
struct Rmsprop {
  static constexpr const char* name = "rmsprop";
  enum State : std::size_t { kSquareAvg, kMomentumBuffer, kGradAvg, kStates };
  static constexpr const char* state_names[kStates] = {"square_avg", "momentum_buffer",
                                                       "grad_avg"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;  // counted as torch does; the math does not use it
  using Options = RmspropOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using RmspropTensor = ParamState<T, S, Rmsprop::kStates>;

namespace detail {

template <class C>
struct RmspropScalars {
  C sign, weight_decay, alpha, one_minus_alpha, eps, momentum, neg_lr;
};

template <bool L2, bool CENTERED, bool MOMENTUM, bool MASTER, bool SR, class T, class S>
void rmsprop_range(const RmspropTensor<T, S>& t, std::size_t begin, std::size_t end,
                   const RmspropScalars<compute_t<T>>& k, std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT square_avg = t.state[Rmsprop::kSquareAvg];
  S* OPTIMCORE_RESTRICT buf = t.state[Rmsprop::kMomentumBuffer];
  S* OPTIMCORE_RESTRICT grad_avg = t.state[Rmsprop::kGradAvg];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C sign = k.sign, weight_decay = k.weight_decay, alpha = k.alpha;
  const C one_minus_alpha = k.one_minus_alpha, eps = k.eps, momentum = k.momentum;
  const C neg_lr = k.neg_lr;
  const LerpWeight<C> toward_grad(one_minus_alpha);  // grad_avg.lerp_(g, 1 - alpha)
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);
    // square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    const C sq = second_moment(load(square_avg[j]), g, alpha, one_minus_alpha);
    square_avg[j] = store<S>(sq);
    C avg;
    if constexpr (CENTERED) {
      const C ga = toward_grad(load(grad_avg[j]), g);
      grad_avg[j] = store<S>(ga);
      avg = std::sqrt(madd(-ga, ga, sq));  // square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
    } else {
      avg = std::sqrt(sq);
    }
    avg = avg + eps;
    if constexpr (MOMENTUM) {
      const C b = load(buf[j]) * momentum + g / avg;  // buf.mul_(momentum).addcdiv_(g, avg)
      buf[j] = store<S>(b);
      p = madd(b, neg_lr, p);                        // param.add_(buf, alpha=-lr)
    } else {
      p = p + neg_lr * g / avg;                      // param.addcdiv_(g, avg, value=-lr)
    }
    store_result<MASTER, SR>(param, master, j, p, stream);
  }
}

}  // namespace detail

// One RMSprop step for `count` tensors: increments each step, then one pass over memory.
template <class T, class S = T>
void rmsprop_step(const RmspropTensor<T, S>* tensors, std::size_t count,
                  const RmspropOptions& o, int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  for (std::size_t i = 0; i < count; ++i) *tensors[i].step += 1.0f;
  const detail::RmspropScalars<C> k{C(o.maximize ? -1 : 1), static_cast<C>(o.weight_decay),
                                    static_cast<C>(o.alpha), static_cast<C>(1.0 - o.alpha),
                                    static_cast<C>(o.eps), static_cast<C>(o.momentum),
                                    static_cast<C>(-o.lr)};
  auto run = [&](auto l2, auto centered, auto momentum) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool L = decltype(l2)::value, CE = decltype(centered)::value;
      constexpr bool MO = decltype(momentum)::value, M = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      detail::rmsprop_range<L, CE, MO, M, R>(tensors[i], b, e, k,
                                             stream);
    });
  };
  using Yes = std::true_type;
  using No = std::false_type;
  auto with_momentum = [&](auto l2, auto centered) {
    o.momentum > 0.0 ? run(l2, centered, Yes{}) : run(l2, centered, No{});
  };
  auto with_centered = [&](auto l2) {
    o.centered ? with_momentum(l2, Yes{}) : with_momentum(l2, No{});
  };
  o.weight_decay != 0.0 ? with_centered(Yes{}) : with_centered(No{});
}

OPTIMCORE_NAMESPACE_END
