// optimcore/adadelta.hpp: Adadelta, as torch.optim.Adadelta.
//
// Math: Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (arXiv:1212.5701), with torch's lr
// and weight decay. Operation order follows torch/optim/adadelta.py (_single_tensor_adadelta).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct AdadeltaOptions : StepOptions {
  double lr = 1.0;
  double rho = 0.9;
  double eps = 1e-6;
  double weight_decay = 0.0;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("rho", rho); f("eps", eps); f("weight_decay", weight_decay);
    f("maximize", maximize);
  }
};

struct Adadelta {
  static constexpr const char* name = "adadelta";
  enum State : std::size_t { kSquareAvg, kAccDelta, kStates };
  static constexpr const char* state_names[kStates] = {"square_avg", "acc_delta"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;  // counted as torch does; the math does not use it
  using Options = AdadeltaOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using AdadeltaTensor = ParamState<T, S, Adadelta::kStates>;

namespace detail {

template <class C>
struct AdadeltaScalars {
  C sign, weight_decay, rho, one_minus_rho, eps, neg_lr;
};

template <bool L2, bool MASTER, bool SR, class T, class S>
void adadelta_range(const AdadeltaTensor<T, S>& t, std::size_t begin, std::size_t end,
                    const AdadeltaScalars<compute_t<T>>& k, std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT square_avg = t.state[Adadelta::kSquareAvg];
  S* OPTIMCORE_RESTRICT acc_delta = t.state[Adadelta::kAccDelta];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C sign = k.sign, weight_decay = k.weight_decay, rho = k.rho;
  const C one_minus_rho = k.one_minus_rho, eps = k.eps, neg_lr = k.neg_lr;
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    const C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);
    // square_avg.mul_(rho).addcmul_(g, g, value=1 - rho)
    const C sq = madd(one_minus_rho * g, g, load(square_avg[j]) * rho);
    const C std_ = std::sqrt(sq + eps);                      // square_avg.add(eps).sqrt_()
    const C acc0 = load(acc_delta[j]);
    const C delta = std::sqrt(acc0 + eps) / std_ * g;        // acc_delta.add(eps).sqrt_().div_(std).mul_(g)
    square_avg[j] = store<S>(sq);
    acc_delta[j] = store<S>(madd(one_minus_rho * delta, delta, acc0 * rho));
    store_result<MASTER, SR>(param, master, j, madd(delta, neg_lr, p), stream);  // add_(delta, alpha=-lr)
  }
}

}  // namespace detail

// One Adadelta step for `count` tensors: increments each step, then one pass over memory.
template <class T, class S = T>
void adadelta_step(const AdadeltaTensor<T, S>* tensors, std::size_t count,
                   const AdadeltaOptions& o, int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  for (std::size_t i = 0; i < count; ++i) *tensors[i].step += 1.0f;
  const detail::AdadeltaScalars<C> k{C(o.maximize ? -1 : 1), static_cast<C>(o.weight_decay),
                                     static_cast<C>(o.rho), static_cast<C>(1.0 - o.rho),
                                     static_cast<C>(o.eps), static_cast<C>(-o.lr)};
  auto run = [&](auto l2) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool L = decltype(l2)::value, M = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      detail::adadelta_range<L, M, R>(tensors[i], b, e, k,
                                      stream);
    });
  };
  o.weight_decay != 0.0 ? run(std::true_type{}) : run(std::false_type{});
}

OPTIMCORE_NAMESPACE_END
