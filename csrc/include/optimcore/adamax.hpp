// optimcore/adamax.hpp: Adamax (Adam with the infinity norm), as torch.optim.Adamax.
//
// Math: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (arXiv:1412.6980), section 7.1.
// Operation order follows torch/optim/adamax.py (_single_tensor_adamax, capturable=False).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct AdamaxOptions : StepOptions {
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("eps", eps);
    f("weight_decay", weight_decay); f("maximize", maximize);
  }
};

struct Adamax {
  static constexpr const char* name = "adamax";
  enum State : std::size_t { kExpAvg, kExpInf, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg", "exp_inf"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = AdamaxOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using AdamaxTensor = ParamState<T, S, Adamax::kStates>;

namespace detail {

template <class C>
struct AdamaxScalars {
  C sign, weight_decay, one_minus_beta1, beta2, eps;
};

template <bool L2, bool MASTER, bool SR, class T, class S>
void adamax_range(const AdamaxTensor<T, S>& t, std::size_t begin, std::size_t end,
                  const AdamaxScalars<compute_t<T>>& k, compute_t<T> neg_clr,
                  std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT exp_avg = t.state[Adamax::kExpAvg];
  S* OPTIMCORE_RESTRICT exp_inf = t.state[Adamax::kExpInf];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C sign = k.sign, weight_decay = k.weight_decay, beta2 = k.beta2, eps = k.eps;
  const LerpWeight<C> first_moment(k.one_minus_beta1);  // exp_avg.lerp_(g, 1 - beta1)
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    const C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);
    const C m = first_moment(load(exp_avg[j]), g);
    const C a = load(exp_inf[j]) * beta2;                   // exp_inf.mul_(beta2)
    const C b = std::fabs(g) + eps;                         // g.abs().add_(eps)
    const C u = (a != a || b != b) ? a + b : (a > b ? a : b);  // torch.maximum: NaN propagates
    exp_avg[j] = store<S>(m);
    exp_inf[j] = store<S>(u);
    store_result<MASTER, SR>(param, master, j, p + neg_clr * m / u, stream);  // addcdiv
  }
}

}  // namespace detail

// One Adamax step for `count` tensors: increments each step, then one pass over memory.
template <class T, class S = T>
void adamax_step(const AdamaxTensor<T, S>* tensors, std::size_t count, const AdamaxOptions& o,
                 int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  std::vector<C> neg_clr(count);
  for (std::size_t i = 0; i < count; ++i) {
    const float step = *tensors[i].step + 1.0f;
    *tensors[i].step = step;
    const double bias_correction = 1.0 - std::pow(o.beta1, static_cast<double>(step));
    neg_clr[i] = static_cast<C>(-(o.lr / bias_correction));
  }
  const detail::AdamaxScalars<C> k{C(o.maximize ? -1 : 1), static_cast<C>(o.weight_decay),
                                   static_cast<C>(1.0 - o.beta1), static_cast<C>(o.beta2),
                                   static_cast<C>(o.eps)};
  auto run = [&](auto l2) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool L = decltype(l2)::value, M = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      detail::adamax_range<L, M, R>(tensors[i], b, e, k, neg_clr[i],
                                    stream);
    });
  };
  o.weight_decay != 0.0 ? run(std::true_type{}) : run(std::false_type{});
}

OPTIMCORE_NAMESPACE_END
