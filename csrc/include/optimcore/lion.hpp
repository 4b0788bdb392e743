// optimcore/lion.hpp: Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms",
// arXiv:2302.06675), as the widely used lion-pytorch package (lucidrains/lion-pytorch 0.2.5,
// update_fn): p *= 1 - lr * weight_decay; p += -lr * sign(beta1 m + (1 - beta1) g);
// m = beta2 m + (1 - beta2) g. Operation order follows its torch ops (mul_ then add with
// alpha, sgn_, add_ with alpha), so float64 results agree with it to rounding.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct LionOptions : StepOptions {
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double weight_decay = 0.0;  // lion-pytorch's decoupled_weight_decay arrives divided

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("weight_decay", weight_decay);
  }
};

struct Lion {
  static constexpr const char* name = "lion";
  enum State : std::size_t { kExpAvg, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = false;
  using Options = LionOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using LionTensor = ParamState<T, S, Lion::kStates>;

namespace detail {

template <bool MASTER, bool SR, class T, class S>
void lion_range(const LionTensor<T, S>& t, std::size_t begin, std::size_t end,
                const LionOptions& o, std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT exp_avg = t.state[Lion::kExpAvg];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C decay_scale = static_cast<C>(1.0 - o.lr * o.weight_decay);
  const C neg_lr = static_cast<C>(-o.lr);
  const C beta1 = static_cast<C>(o.beta1), one_minus_beta1 = static_cast<C>(1.0 - o.beta1);
  const C beta2 = static_cast<C>(o.beta2), one_minus_beta2 = static_cast<C>(1.0 - o.beta2);
  for (std::size_t j = begin; j < end; ++j) {
    const C g = load(grad[j]);
    const C m0 = load(exp_avg[j]);
    C p = load_param<MASTER, SR>(param, master, j) * decay_scale;
    const C update = sign_of(madd(one_minus_beta1, g, m0 * beta1));
    p = madd(neg_lr, update, p);
    exp_avg[j] = store<S>(madd(one_minus_beta2, g, m0 * beta2));
    store_result<MASTER, SR>(param, master, j, p, stream);
  }
}

}  // namespace detail

// One Lion step for `count` tensors sharing `options`, in one pass over memory.
template <class T, class S = T>
void lion_step(const LionTensor<T, S>* tensors, std::size_t count, const LionOptions& o,
               int num_threads = 1) {
  for_each_param_range(tensors, count, o, num_threads,
                       [&](auto master, auto sr, std::size_t i, std::size_t b, std::size_t e,
                           std::uint32_t stream) {
    constexpr bool M = decltype(master)::value, R = decltype(sr)::value;
    detail::lion_range<M, R>(tensors[i], b, e, o, stream);
  });
}

OPTIMCORE_NAMESPACE_END
