// optimcore/adabound.hpp: AdaBound and AMSBound (Luo, Xiong, Liu & Sun, "Adaptive Gradient
// Methods with Dynamic Bound of Learning Rate", ICLR 2019), as the reference implementation
// (PyPI adabound 0.0.5, Luolc/AdaBound): Adam's moments, eps added to the uncorrected sqrt(v),
// and Adam's bias-corrected step size per element clipped into
// [final_lr (1 - 1/(gamma t + 1)), final_lr (1 + 1/(gamma t))], so the method moves from Adam
// towards SGD with learning rate final_lr. Operation order follows the reference's torch ops
// (exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1), exp_avg_sq.mul_(beta2).addcmul_(...),
// full_like(step_size).div_(denom).clamp_(lower, upper).mul_(exp_avg), p.add_(-step)), so
// float64 results agree with it to rounding.
//
// With decoupled_weight_decay (AdaBoundW), weight decay is AdamW's: p *= 1 - lr * weight_decay
// before the update (Luolc's AdaBoundW subtracts weight_decay * p, not scaled by lr).
// final_lr arrives already scaled by lr / base_lr (the Python layer keeps base_lr per group),
// so learning-rate schedulers move the bounds.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct AdaBoundOptions : StepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double final_lr = 0.1;  // scaled by lr / base_lr
  double gamma = 1e-3;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsbound = false;
  bool decoupled_weight_decay = false;  // true: AdaBoundW

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("final_lr", final_lr);
    f("gamma", gamma); f("eps", eps); f("weight_decay", weight_decay); f("amsbound", amsbound);
    f("decoupled_weight_decay", decoupled_weight_decay);
  }
};

struct AdaBound {
  static constexpr const char* name = "adabound";
  enum State : std::size_t { kExpAvg, kExpAvgSq, kMaxExpAvgSq, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg", "exp_avg_sq",
                                                       "max_exp_avg_sq"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = AdaBoundOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using AdaBoundTensor = ParamState<T, S, AdaBound::kStates>;

namespace detail {

template <class C>
struct AdaBoundScalars {
  C weight_decay, decay_scale, beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
};

// Per step t: Adam's step size lr sqrt(1 - beta2^t) / (1 - beta1^t) and the bounds.
struct AdaBoundStepScalars {
  double step_size, lower, upper;
};

template <bool AMSBOUND, bool L2, bool DECOUPLED, bool MASTER, bool SR, class T, class S>
void adabound_range(const AdaBoundTensor<T, S>& t, std::size_t begin, std::size_t end,
                    const AdaBoundScalars<compute_t<T>>& k, const AdaBoundStepScalars& s,
                    std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT exp_avg = t.state[AdaBound::kExpAvg];
  S* OPTIMCORE_RESTRICT exp_avg_sq = t.state[AdaBound::kExpAvgSq];
  S* OPTIMCORE_RESTRICT max_exp_avg_sq = t.state[AdaBound::kMaxExpAvgSq];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C weight_decay = k.weight_decay, decay_scale = k.decay_scale, beta1 = k.beta1;
  const C one_minus_beta1 = k.one_minus_beta1, beta2 = k.beta2;
  const C one_minus_beta2 = k.one_minus_beta2, eps = k.eps;
  const C step_size = static_cast<C>(s.step_size), lower = static_cast<C>(s.lower);
  const C upper = static_cast<C>(s.upper);
  for (std::size_t j = begin; j < end; ++j) {
    C g = load(grad[j]);
    C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(weight_decay, p, g);  // grad.add(p, alpha=weight_decay)
    if constexpr (DECOUPLED) p = p * decay_scale;
    const C m = madd(one_minus_beta1, g, load(exp_avg[j]) * beta1);
    const C v = second_moment(load(exp_avg_sq[j]), g, beta2, one_minus_beta2);
    C v_hat = v;
    if constexpr (AMSBOUND) {
      const C v_max0 = load(max_exp_avg_sq[j]);
      v_hat = (v > v_max0 || v != v) ? v : v_max0;  // torch.max: NaN propagates
      max_exp_avg_sq[j] = store<S>(v_hat);
    }
    const C denom = std::sqrt(v_hat) + eps;
    C bounded = step_size / denom;
    // clamp_(lower, upper): NaN stays NaN
    bounded = bounded < lower ? lower : bounded;
    bounded = bounded > upper ? upper : bounded;
    p = p - bounded * m;
    exp_avg[j] = store<S>(m);
    exp_avg_sq[j] = store<S>(v);
    store_result<MASTER, SR>(param, master, j, p, stream);
  }
}

}  // namespace detail

// One AdaBound step for `count` tensors sharing `options`: increments each tensor's step, then
// updates param, exp_avg, exp_avg_sq (and max_exp_avg_sq) in one pass over memory.
template <class T, class S = T>
void adabound_step(const AdaBoundTensor<T, S>* tensors, std::size_t count,
                   const AdaBoundOptions& o, int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  std::vector<detail::AdaBoundStepScalars> steps(count);
  float last_step = -1.0f;
  detail::AdaBoundStepScalars last{};
  for (std::size_t i = 0; i < count; ++i) {
    const float step = *tensors[i].step + 1.0f;
    *tensors[i].step = step;
    if (step != last_step) {
      const double t = static_cast<double>(step);
      const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
      const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
      last.step_size = o.lr * std::sqrt(bias_correction2) / bias_correction1;
      last.lower = o.final_lr * (1.0 - 1.0 / (o.gamma * t + 1.0));
      last.upper = o.final_lr * (1.0 + 1.0 / (o.gamma * t));
      last_step = step;
    }
    steps[i] = last;
  }
  const bool l2 = o.weight_decay != 0.0 && !o.decoupled_weight_decay;
  const bool decoupled = o.weight_decay != 0.0 && o.decoupled_weight_decay;
  const detail::AdaBoundScalars<C> k{static_cast<C>(o.weight_decay),
                                     static_cast<C>(1.0 - o.lr * o.weight_decay),
                                     static_cast<C>(o.beta1),
                                     static_cast<C>(1.0 - o.beta1),
                                     static_cast<C>(o.beta2),
                                     static_cast<C>(1.0 - o.beta2),
                                     static_cast<C>(o.eps)};
  using Yes = std::true_type;
  using No = std::false_type;
  auto run = [&](auto ams, auto l2c, auto dec) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool A = decltype(ams)::value, L = decltype(l2c)::value;
      constexpr bool D = decltype(dec)::value, M = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      detail::adabound_range<A, L, D, M, R>(tensors[i], b, e, k, steps[i], stream);
    });
  };
  auto with_decay = [&](auto a) {
    if (l2) run(a, Yes{}, No{});
    else if (decoupled) run(a, No{}, Yes{});
    else run(a, No{}, No{});
  };
  o.amsbound ? with_decay(Yes{}) : with_decay(No{});
}

OPTIMCORE_NAMESPACE_END
