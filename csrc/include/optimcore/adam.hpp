// optimcore/adam.hpp: Adam and AdamW (Adam with decoupled weight decay), as torch.optim.Adam.
//
// Math: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (arXiv:1412.6980); AMSGrad from
// Reddi et al., "On the Convergence of Adam and Beyond"; decoupled weight decay from Loshchilov &
// Hutter, "Decoupled Weight Decay Regularization". Operation order follows torch/optim/adam.py
// (_single_tensor_adam, capturable=False), so float64 results agree with torch to rounding.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

// Hyperparameters: plain data, the same type in every SIMD-level build.
struct AdamOptions : StepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;  // true: AdamW

  // Every hyperparameter by name (bindings pass them by name, never by position).
  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("eps", eps);
    f("weight_decay", weight_decay); f("amsgrad", amsgrad); f("maximize", maximize);
    f("decoupled_weight_decay", decoupled_weight_decay);
  }
};

// The rule's description: its state tensors in table order (max_exp_avg_sq only with amsgrad),
// which of them it fills itself on a first step (bit mask), and whether it counts steps.
struct Adam {
  static constexpr const char* name = "adam";
  enum State : std::size_t { kExpAvg, kExpAvgSq, kMaxExpAvgSq, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg", "exp_avg_sq",
                                                       "max_exp_avg_sq"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = AdamOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using AdamTensor = ParamState<T, S, Adam::kStates>;

namespace detail {

template <class C>
struct AdamScalars {
  C sign, weight_decay, decay_scale, one_minus_beta1, beta2, one_minus_beta2, eps;
};

// Per-tensor step scalars: -lr / (1 - beta1^t) and sqrt(1 - beta2^t), in double like torch.
struct AdamStepScalars {
  double neg_step_size, bias_correction2_sqrt;
};

template <bool AMSGRAD, bool L2, bool DECOUPLED, bool MASTER, bool SR, class T, class S>
void adam_range(const AdamTensor<T, S>& t, std::size_t begin, std::size_t end,
                const AdamScalars<compute_t<T>>& k, const AdamStepScalars& s,
                std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT exp_avg = t.state[Adam::kExpAvg];
  S* OPTIMCORE_RESTRICT exp_avg_sq = t.state[Adam::kExpAvgSq];
  S* OPTIMCORE_RESTRICT max_exp_avg_sq = t.state[Adam::kMaxExpAvgSq];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  // Scalars live in locals: read through `k`, the compiler would have to assume the stores
  // below may change them, and (with amsgrad's fifth array) gives up vectorizing.
  const C sign = k.sign, weight_decay = k.weight_decay, decay_scale = k.decay_scale;
  const C beta2 = k.beta2, one_minus_beta2 = k.one_minus_beta2, eps = k.eps;
  const C neg_step_size = static_cast<C>(s.neg_step_size);
  const C bias_correction2_sqrt = static_cast<C>(s.bias_correction2_sqrt);
  // 16-bit Adam is compute-bound (two divisions and a square root per element against 14 bytes
  // of traffic), so there the division by sqrt(1 - beta2^t) becomes a multiply. That moves the
  // float32 intermediate by at most an ulp, far below the 2^-8 (bf16) / 2^-11 (fp16) rounding
  // of the stored result. float, double and master weights keep torch's exact operation order.
  constexpr bool kReciprocal = !std::is_same<T, C>::value && !MASTER;
  const C inv_bias_correction2_sqrt = static_cast<C>(1.0 / s.bias_correction2_sqrt);
  const LerpWeight<C> first_moment(k.one_minus_beta1);  // exp_avg.lerp_(g, 1 - beta1)
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);
    if constexpr (DECOUPLED) p = p * decay_scale;
    const C m = first_moment(load(exp_avg[j]), g);
    const C v = second_moment(load(exp_avg_sq[j]), g, beta2, one_minus_beta2);
    C v_hat = v;
    if constexpr (AMSGRAD) {
      const C v_max0 = load(max_exp_avg_sq[j]);
      // torch.maximum: NaN propagates.
      v_hat = (v > v_max0 || v != v) ? v : v_max0;
      max_exp_avg_sq[j] = store<S>(v_hat);
    }
    C denom;
    if constexpr (kReciprocal) denom = std::sqrt(v_hat) * inv_bias_correction2_sqrt + eps;
    else denom = std::sqrt(v_hat) / bias_correction2_sqrt + eps;
    p = p + neg_step_size * m / denom;  // torch's addcdiv: (value * t1) / t2
    exp_avg[j] = store<S>(m);
    exp_avg_sq[j] = store<S>(v);
    store_result<MASTER, SR>(param, master, j, p, stream);
  }
}

}  // namespace detail

// One Adam step for `count` tensors sharing `options`, on up to `num_threads` threads.
// Increments each tensor's step, then updates param, exp_avg, exp_avg_sq (and max_exp_avg_sq)
// in one pass over memory. Tensors with master_param set must all have it set.
template <class T, class S = T>
void adam_step(const AdamTensor<T, S>* tensors, std::size_t count, const AdamOptions& o,
               int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  std::vector<detail::AdamStepScalars> steps(count);
  float last_step = -1.0f;
  detail::AdamStepScalars last{};
  for (std::size_t i = 0; i < count; ++i) {
    const float step = *tensors[i].step + 1.0f;
    *tensors[i].step = step;
    if (step != last_step) {  // tensors of a group usually share a step: skip the pow calls
      const double t = static_cast<double>(step);
      const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
      const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
      last.neg_step_size = -(o.lr / bias_correction1);
      last.bias_correction2_sqrt = std::pow(bias_correction2, 0.5);  // torch: bc2 ** 0.5
      last_step = step;
    }
    steps[i] = last;
  }
  const bool l2 = o.weight_decay != 0.0 && !o.decoupled_weight_decay;
  const bool decoupled = o.weight_decay != 0.0 && o.decoupled_weight_decay;
  const detail::AdamScalars<C> k{C(o.maximize ? -1 : 1),
                                 static_cast<C>(o.weight_decay),
                                 static_cast<C>(1.0 - o.lr * o.weight_decay),
                                 static_cast<C>(1.0 - o.beta1),
                                 static_cast<C>(o.beta2),
                                 static_cast<C>(1.0 - o.beta2),
                                 static_cast<C>(o.eps)};
  using Yes = std::true_type;
  using No = std::false_type;
  // Every flag combination is its own loop, so the inner loop has no data-independent branches.
  auto run = [&](auto amsgrad, auto l2c, auto dec) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool A = decltype(amsgrad)::value, L = decltype(l2c)::value;
      constexpr bool D = decltype(dec)::value, M = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      detail::adam_range<A, L, D, M, R>(tensors[i], b, e, k, steps[i],
                                        stream);
    });
  };
  auto with_decay = [&](auto a) {
    if (l2) run(a, Yes{}, No{});
    else if (decoupled) run(a, No{}, Yes{});
    else run(a, No{}, No{});
  };
  o.amsgrad ? with_decay(Yes{}) : with_decay(No{});
}

OPTIMCORE_NAMESPACE_END
