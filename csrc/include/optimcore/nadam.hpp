// optimcore/nadam.hpp: NAdam (Adam with Nesterov momentum), as torch.optim.NAdam.
//
// Math: Dozat, "Incorporating Nesterov Momentum into Adam" (ICLR 2016 workshop), with torch's
// momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)) and its running product
// (the per-tensor scalar state mu_product); decoupled weight decay as in AdamW. Operation order
// follows torch/optim/nadam.py (_single_tensor_nadam, capturable=False).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct NadamOptions : StepOptions {
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum_decay = 4e-3;
  bool decoupled_weight_decay = false;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("eps", eps);
    f("weight_decay", weight_decay); f("momentum_decay", momentum_decay);
    f("decoupled_weight_decay", decoupled_weight_decay); f("maximize", maximize);
  }
};

// State: exp_avg, exp_avg_sq per element; mu_product, a float32 scalar per tensor (torch keeps
// it as a 0-d tensor and multiplies it in float32).
struct Nadam {
  static constexpr const char* name = "nadam";
  enum State : std::size_t { kExpAvg, kExpAvgSq, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg", "exp_avg_sq"};
  enum Scalar : std::size_t { kMuProduct };
  static constexpr const char* scalar_state_names[] = {"mu_product"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = NadamOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using NadamTensor = ParamState<T, S, Nadam::kStates, 1>;

namespace detail {

template <class C>
struct NadamScalars {
  C sign, weight_decay, decay_scale, one_minus_beta1, beta2, one_minus_beta2, eps;
};

// Per-tensor step scalars, computed in double from the step and mu_product, rounded once.
template <class C>
struct NadamStepScalars {
  C bias_correction2, grad_coeff, exp_avg_coeff;
};

template <bool L2, bool DECOUPLED, bool MASTER, bool SR, class T, class S>
void nadam_range(const NadamTensor<T, S>& t, std::size_t begin, std::size_t end,
                 const NadamScalars<compute_t<T>>& k, const NadamStepScalars<compute_t<T>>& s,
                 std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT exp_avg = t.state[Nadam::kExpAvg];
  S* OPTIMCORE_RESTRICT exp_avg_sq = t.state[Nadam::kExpAvgSq];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C sign = k.sign, weight_decay = k.weight_decay, decay_scale = k.decay_scale;
  const C beta2 = k.beta2, one_minus_beta2 = k.one_minus_beta2, eps = k.eps;
  const C bias_correction2 = s.bias_correction2, grad_coeff = s.grad_coeff;
  const C exp_avg_coeff = s.exp_avg_coeff;
  const LerpWeight<C> first_moment(k.one_minus_beta1);  // exp_avg.lerp_(g, 1 - beta1)
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);
    if constexpr (DECOUPLED) p = p * decay_scale;
    const C m = first_moment(load(exp_avg[j]), g);
    const C v = second_moment(load(exp_avg_sq[j]), g, beta2, one_minus_beta2);
    exp_avg[j] = store<S>(m);
    exp_avg_sq[j] = store<S>(v);
    const C denom = std::sqrt(v / bias_correction2) + eps;  // exp_avg_sq.div(bc2).sqrt().add_(eps)
    p = p + grad_coeff * g / denom;                          // addcdiv_(g, denom, value=c1)
    p = p + exp_avg_coeff * m / denom;                       // addcdiv_(m, denom, value=c2)
    store_result<MASTER, SR>(param, master, j, p, stream);
  }
}

}  // namespace detail

// One NAdam step for `count` tensors: increments each step and mu_product, then one pass over
// memory.
template <class T, class S = T>
void nadam_step(const NadamTensor<T, S>* tensors, std::size_t count, const NadamOptions& o,
                int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  std::vector<detail::NadamStepScalars<C>> steps(count);
  for (std::size_t i = 0; i < count; ++i) {
    const float step_f = *tensors[i].step + 1.0f;
    *tensors[i].step = step_f;
    const double step = static_cast<double>(step_f);
    const double bias_correction2 = 1.0 - std::pow(o.beta2, step);
    const double mu = o.beta1 * (1.0 - 0.5 * std::pow(0.96, step * o.momentum_decay));
    const double mu_next =
        o.beta1 * (1.0 - 0.5 * std::pow(0.96, (step + 1.0) * o.momentum_decay));
    float& mu_product = *tensors[i].scalar[Nadam::kMuProduct];
    mu_product = mu_product * static_cast<float>(mu);  // torch: 0-d float32 tensor mul_
    const double mp = static_cast<double>(mu_product);
    const double mp_next = mp * mu_next;
    steps[i].bias_correction2 = static_cast<C>(bias_correction2);
    steps[i].grad_coeff = static_cast<C>(((-o.lr) * (1.0 - mu)) / (1.0 - mp));
    steps[i].exp_avg_coeff = static_cast<C>(((-o.lr) * mu_next) / (1.0 - mp_next));
  }
  const bool l2 = o.weight_decay != 0.0 && !o.decoupled_weight_decay;
  const bool decoupled = o.weight_decay != 0.0 && o.decoupled_weight_decay;
  const detail::NadamScalars<C> k{C(o.maximize ? -1 : 1),
                                  static_cast<C>(o.weight_decay),
                                  static_cast<C>(1.0 - o.lr * o.weight_decay),
                                  static_cast<C>(1.0 - o.beta1),
                                  static_cast<C>(o.beta2),
                                  static_cast<C>(1.0 - o.beta2),
                                  static_cast<C>(o.eps)};
  using Yes = std::true_type;
  using No = std::false_type;
  auto run = [&](auto l2c, auto dec) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool L = decltype(l2c)::value, D = decltype(dec)::value;
      constexpr bool M = decltype(master)::value, R = decltype(sr)::value;
      detail::nadam_range<L, D, M, R>(tensors[i], b, e, k, steps[i],
                                      stream);
    });
  };
  if (l2) run(Yes{}, No{});
  else if (decoupled) run(No{}, Yes{});
  else run(No{}, No{});
}

OPTIMCORE_NAMESPACE_END
