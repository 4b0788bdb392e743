// optimcore/adagrad.hpp: Adagrad, as torch.optim.Adagrad (dense gradients).
//
// Math: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
// Optimization" (JMLR 2011), with torch's learning-rate decay: clr = lr / (1 + (t - 1) lr_decay).
// Operation order follows torch/optim/adagrad.py (_single_tensor_adagrad).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct AdagradOptions : StepOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double eps = 1e-10;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("lr_decay", lr_decay); f("weight_decay", weight_decay); f("eps", eps);
    f("maximize", maximize);
  }
};

// State: the running sum of squared gradients (torch creates it at construction, filled with
// initial_accumulator_value).
struct Adagrad {
  static constexpr const char* name = "adagrad";
  enum State : std::size_t { kSum, kStates };
  static constexpr const char* state_names[kStates] = {"sum"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = AdagradOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using AdagradTensor = ParamState<T, S, Adagrad::kStates>;

namespace detail {

template <bool L2, bool MASTER, bool SR, class T, class S>
void adagrad_range(const AdagradTensor<T, S>& t, std::size_t begin, std::size_t end,
                   compute_t<T> sign, compute_t<T> weight_decay, compute_t<T> eps,
                   compute_t<T> neg_clr, std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT sum = t.state[Adagrad::kSum];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    const C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);   // grad.add(param, alpha=wd)
    const C s = madd(g, g, load(sum[j]));              // sum.addcmul_(grad, grad, value=1)
    sum[j] = store<S>(s);
    const C std_ = std::sqrt(s) + eps;                 // sum.sqrt().add_(eps)
    store_result<MASTER, SR>(param, master, j, p + neg_clr * g / std_, stream);  // addcdiv
  }
}

}  // namespace detail

// One Adagrad step for `count` tensors: increments each step, then one pass over memory.
template <class T, class S = T>
void adagrad_step(const AdagradTensor<T, S>* tensors, std::size_t count,
                  const AdagradOptions& o, int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  std::vector<C> neg_clr(count);
  for (std::size_t i = 0; i < count; ++i) {
    const float step = *tensors[i].step + 1.0f;
    *tensors[i].step = step;
    // torch: clr = lr / (1 + (step - 1) * lr_decay), in Python floats (double).
    neg_clr[i] = static_cast<C>(-(o.lr / (1.0 + (static_cast<double>(step) - 1.0) * o.lr_decay)));
  }
  const C sign = o.maximize ? C(-1) : C(1);
  const C wd = static_cast<C>(o.weight_decay), eps = static_cast<C>(o.eps);
  auto run = [&](auto l2) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool L = decltype(l2)::value, M = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      detail::adagrad_range<L, M, R>(tensors[i], b, e, sign, wd, eps, neg_clr[i],
                                     stream);
    });
  };
  o.weight_decay != 0.0 ? run(std::true_type{}) : run(std::false_type{});
}

OPTIMCORE_NAMESPACE_END
