// optimcore/radam.hpp: RAdam (rectified Adam), as torch.optim.RAdam.
//
// Math: Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond" (ICLR 2020,
// arXiv:1908.03265): while the variance of the adaptive learning rate is intractable
// (rho_t <= 5) the step is SGD with momentum; after that, Adam's step times the rectification
// term. Operation order follows torch/optim/radam.py (_single_tensor_radam, capturable=False).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct RadamOptions : StepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("eps", eps);
    f("weight_decay", weight_decay); f("decoupled_weight_decay", decoupled_weight_decay);
    f("maximize", maximize);
  }
};

struct Radam {
  static constexpr const char* name = "radam";
  enum State : std::size_t { kExpAvg, kExpAvgSq, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg", "exp_avg_sq"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = RadamOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using RadamTensor = ParamState<T, S, Radam::kStates>;

namespace detail {

template <class C>
struct RadamScalars {
  C sign, weight_decay, decay_scale, one_minus_beta1, beta2, one_minus_beta2, eps, lr;
};

// Per-tensor step scalars (double, as torch's Python floats), rounded once to C.
template <class C>
struct RadamStepScalars {
  C bias_correction1, bias_correction2_sqrt, rect;
  bool rectified;
};

template <bool RECTIFIED, bool L2, bool DECOUPLED, bool MASTER, bool SR, class T, class S>
void radam_range(const RadamTensor<T, S>& t, std::size_t begin, std::size_t end,
                 const RadamScalars<compute_t<T>>& k, const RadamStepScalars<compute_t<T>>& s,
                 std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT exp_avg = t.state[Radam::kExpAvg];
  S* OPTIMCORE_RESTRICT exp_avg_sq = t.state[Radam::kExpAvgSq];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C sign = k.sign, weight_decay = k.weight_decay, decay_scale = k.decay_scale;
  const C beta2 = k.beta2, one_minus_beta2 = k.one_minus_beta2, eps = k.eps, lr = k.lr;
  const C bias_correction1 = s.bias_correction1, bc2_sqrt = s.bias_correction2_sqrt;
  const C rect = s.rect;
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
    const C update = (m / bias_correction1) * lr;  // bias-corrected exp_avg times lr
    if constexpr (RECTIFIED) {
      // (bc2 ** 0.5) / (sqrt(v) + eps), as torch: reciprocal, then times the scalar.
      const C adaptive = (C(1) / (std::sqrt(v) + eps)) * bc2_sqrt;
      p = p - update * adaptive * rect;
    } else {
      p = p - update;
    }
    store_result<MASTER, SR>(param, master, j, p, stream);
  }
}

}  // namespace detail

// One RAdam step for `count` tensors: increments each step, then one pass over memory.
template <class T, class S = T>
void radam_step(const RadamTensor<T, S>* tensors, std::size_t count, const RadamOptions& o,
                int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  std::vector<detail::RadamStepScalars<C>> steps(count);
  const double rho_inf = 2.0 / (1.0 - o.beta2) - 1.0;
  for (std::size_t i = 0; i < count; ++i) {
    const float step_f = *tensors[i].step + 1.0f;
    *tensors[i].step = step_f;
    const double step = static_cast<double>(step_f);
    const double bias_correction1 = 1.0 - std::pow(o.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(o.beta2, step);
    const double rho_t = rho_inf - ((2.0 * step) * std::pow(o.beta2, step)) / bias_correction2;
    detail::RadamStepScalars<C>& s = steps[i];
    s.bias_correction1 = static_cast<C>(bias_correction1);
    s.bias_correction2_sqrt = static_cast<C>(std::pow(bias_correction2, 0.5));
    s.rectified = rho_t > 5.0;
    s.rect = s.rectified ? static_cast<C>(std::pow(
                               (((rho_t - 4.0) * (rho_t - 2.0)) * rho_inf) /
                                   (((rho_inf - 4.0) * (rho_inf - 2.0)) * rho_t),
                               0.5))
                         : C(0);
  }
  const bool l2 = o.weight_decay != 0.0 && !o.decoupled_weight_decay;
  const bool decoupled = o.weight_decay != 0.0 && o.decoupled_weight_decay;
  const detail::RadamScalars<C> k{C(o.maximize ? -1 : 1),
                                  static_cast<C>(o.weight_decay),
                                  static_cast<C>(1.0 - o.lr * o.weight_decay),
                                  static_cast<C>(1.0 - o.beta1),
                                  static_cast<C>(o.beta2),
                                  static_cast<C>(1.0 - o.beta2),
                                  static_cast<C>(o.eps),
                                  static_cast<C>(o.lr)};
  using Yes = std::true_type;
  using No = std::false_type;
  auto run = [&](auto l2c, auto dec) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool L = decltype(l2c)::value, D = decltype(dec)::value;
      constexpr bool M = decltype(master)::value, R = decltype(sr)::value;
      if (steps[i].rectified)
        detail::radam_range<true, L, D, M, R>(tensors[i], b, e, k, steps[i], stream);
      else
        detail::radam_range<false, L, D, M, R>(tensors[i], b, e, k, steps[i], stream);
    });
  };
  if (l2) run(Yes{}, No{});
  else if (decoupled) run(No{}, Yes{});
  else run(No{}, No{});
}

OPTIMCORE_NAMESPACE_END
