// optimcore/swats.hpp: SWATS (Keskar & Socher, "Improving Generalization Performance by
// Switching from Adam to SGD", arXiv:1712.07628, Algorithm 1): Adam until the projected SGD
// learning rate estimate converges, then SGD with momentum at the learned rate.
//
// Per parameter tensor (each layer's weight and bias estimates and switches on its own):
//   Adam phase:  p_k = -lr sqrt(1 - beta2^k) / (1 - beta1^k) m_k / (sqrt(v_k) + eps); x += p_k
//                if p_k.g_k != 0: gamma_k = p_k.p_k / -p_k.g_k,
//                                 lambda_k = beta2 lambda_{k-1} + (1 - beta2) gamma_k,
//                switch when k > 1, lambda_k / (1 - beta2^k) > 0 and
//                |lambda_k / (1 - beta2^k) - gamma_k| <= switch_tolerance |gamma_k|:
//                sgd_lr = lambda_k / (1 - beta2^k), switched_at = k
//   SGD phase:   v = beta1 v + g; x -= (1 - beta1) sgd_lr * (lr / switch_lr) * v
//                (switch_lr: the lr at the switch, so a schedule scales the learned rate from
//                there on, once)
// The Adam phase is torch.optim.Adam's (L2 weight decay in the gradient, amsgrad) with the
// step written as torch_optimizer.SWATS writes it (p = -step_size * (exp_avg / denom)). The dot
// products of a tensor are one deterministic block reduction (same bits for any thread count).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/closure.hpp"
#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define OPTIMCORE_LAMBDA_INLINE __attribute__((always_inline))
#else
#define OPTIMCORE_LAMBDA_INLINE
#endif

namespace optimcore {

struct SwatsOptions : StepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  double switch_tolerance = 1e-6;  // relative; the paper's 1e-9 absolute on rates ~1e-3

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("eps", eps);
    f("weight_decay", weight_decay); f("amsgrad", amsgrad);
    f("switch_tolerance", switch_tolerance);
  }
};

struct Swats {
  static constexpr const char* name = "swats";
  enum State : std::size_t { kExpAvg, kExpAvgSq, kMaxExpAvgSq, kMomentum, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg", "exp_avg_sq",
                                                       "max_exp_avg_sq", "momentum_buffer"};
  // Per-tensor scalars (0-d tensors): lambda, the learned SGD rate and the lr it was learned
  // at (float64: a float32 lambda stops moving ~3e-5 short of its limit, before any 1e-6 test
  // can pass), and the step of the switch (float32).
  enum Scalar : std::size_t { kExpAvg2, kSgdLr, kSwitchLr, kSwitchedAt, kScalars };
  static constexpr const char* scalar_state_names[kScalars] = {"exp_avg2", "sgd_lr",
                                                               "switch_lr", "switched_at"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = SwatsOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using SwatsTensor = ParamState<T, S, Swats::kStates, Swats::kScalars>;

namespace detail {

// Elements [b, e) of one tensor in its Adam phase: the update, and (p.p, p.g) of its step p
// added to `sums` (a restrict-pointer loop with kLanes accumulator lanes: it vectorizes).
template <bool AMSGRAD, bool L2, bool MASTER, bool SR, class T, class S>
void swats_adam_range(T* OPTIMCORE_RESTRICT param, const T* OPTIMCORE_RESTRICT grad,
                      S* OPTIMCORE_RESTRICT m_, S* OPTIMCORE_RESTRICT v_,
                      S* OPTIMCORE_RESTRICT vmax, S* OPTIMCORE_RESTRICT master,
                      const SwatsOptions& o, double step_size, std::uint32_t stream,
                      std::size_t b, std::size_t e, Sums<2>& sums) {
  using C = compute_t<T>;
  const C wd = static_cast<C>(o.weight_decay), beta1 = static_cast<C>(o.beta1);
  const C one_minus_beta1 = static_cast<C>(1.0 - o.beta1), beta2 = static_cast<C>(o.beta2);
  const C one_minus_beta2 = static_cast<C>(1.0 - o.beta2), eps = static_cast<C>(o.eps);
  const C neg_step = static_cast<C>(-step_size);
  double pp[kLanes] = {}, pg[kLanes] = {};
  const auto element = [&](std::size_t j, std::size_t l) OPTIMCORE_LAMBDA_INLINE {
    C g = load(grad[j]);
    C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, wd, g);  // grad.add(p, alpha=weight_decay)
    const C m = madd(one_minus_beta1, g, load(m_[j]) * beta1);
    const C v = second_moment(load(v_[j]), g, beta2, one_minus_beta2);
    C v_hat = v;
    if constexpr (AMSGRAD) {
      const C v0 = load(vmax[j]);
      v_hat = (v > v0 || v != v) ? v : v0;
      vmax[j] = store<S>(v_hat);
    }
    const C step = neg_step * (m / (std::sqrt(v_hat) + eps));
    m_[j] = store<S>(m);
    v_[j] = store<S>(v);
    store_result<MASTER, SR>(param, master, j, p + step, stream);
    pp[l] += static_cast<double>(step) * static_cast<double>(step);
    pg[l] += static_cast<double>(step) * static_cast<double>(g);
  };
  std::size_t j = b;
  for (; j + kLanes <= e; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) element(j + l, l);
  for (; j < e; ++j) element(j, 0);
  for (std::size_t l = 0; l < kLanes; ++l) {
    sums.v[0] += pp[l];
    sums.v[1] += pg[l];
  }
}

// One tensor in its Adam phase: the update, and (p.p, p.g) of its step p.
template <bool AMSGRAD, bool MASTER, bool SR, class T, class S>
Sums<2> swats_adam(const SwatsTensor<T, S>& t, const SwatsOptions& o, double step_size,
                   std::uint32_t stream, int threads) {
  const bool l2 = o.weight_decay != 0.0;
  return reduce_blocks(
      t.numel, threads, Sums<2>{},
      [&](std::size_t b, std::size_t e) {
        Sums<2> s;
        if (l2)
          swats_adam_range<AMSGRAD, true, MASTER, SR>(
              t.param, t.grad, t.state[Swats::kExpAvg], t.state[Swats::kExpAvgSq],
              t.state[Swats::kMaxExpAvgSq], t.master_param, o, step_size, stream, b, e, s);
        else
          swats_adam_range<AMSGRAD, false, MASTER, SR>(
              t.param, t.grad, t.state[Swats::kExpAvg], t.state[Swats::kExpAvgSq],
              t.state[Swats::kMaxExpAvgSq], t.master_param, o, step_size, stream, b, e, s);
        return s;
      },
      [](Sums<2> acc, const Sums<2>& p) { return acc += p; });
}

// One tensor in its SGD phase: v = beta1 v + g; x -= (1 - beta1) lr v.
template <bool MASTER, bool SR, class T, class S>
void swats_sgd(const SwatsTensor<T, S>& t, const SwatsOptions& o, double lr,
               std::uint32_t stream, int threads) {
  using C = compute_t<T>;
  const C wd = static_cast<C>(o.weight_decay), beta1 = static_cast<C>(o.beta1);
  const C neg_lr = static_cast<C>(-(1.0 - o.beta1) * lr);
  const bool l2 = o.weight_decay != 0.0;
  T* param = t.param;
  const T* grad = t.grad;
  S* buf = t.state[Swats::kMomentum];
  S* master = t.master_param;
  reduce_blocks(
      t.numel, threads, 0,
      [&](std::size_t b, std::size_t e) {
        for (std::size_t j = b; j < e; ++j) {
          C g = load(grad[j]);
          C p = load_param<MASTER, SR>(param, master, j);
          if (l2) g = madd(p, wd, g);
          const C v = madd(load(buf[j]), beta1, g);
          buf[j] = store<S>(v);
          store_result<MASTER, SR>(param, master, j, madd(neg_lr, v, p), stream);
        }
        return 0;
      },
      [](int a, int) { return a; });
}

}  // namespace detail

// One SWATS step for `count` tensors: each tensor in its own phase (see the top of the file).
template <class T, class S = T>
void swats_step(const SwatsTensor<T, S>* tensors, std::size_t count, const SwatsOptions& o,
                int num_threads = 1) {
  if (count == 0) return;
  with_storage<T, S>(tensors[0].master_param != nullptr, o.stochastic_rounding,
                     [&](auto master, auto sr) {
    constexpr bool M = decltype(master)::value, R = decltype(sr)::value;
    // One tensor: its step count, its phase's pass, its estimate and switch.
    const auto one = [&](std::size_t i, int threads) {
      const SwatsTensor<T, S>& t = tensors[i];
      const float step = *t.step + 1.0f;
      *t.step = step;
      const std::uint32_t stream = R ? tensor_stream(o.seed, i) : 0u;
      double& lambda = *reinterpret_cast<double*>(t.scalar[Swats::kExpAvg2]);
      double& sgd_lr = *reinterpret_cast<double*>(t.scalar[Swats::kSgdLr]);
      double& switch_lr = *reinterpret_cast<double*>(t.scalar[Swats::kSwitchLr]);
      float& switched_at = *t.scalar[Swats::kSwitchedAt];
      if (switched_at > 0.0f) {
        const double scale = switch_lr > 0.0 ? o.lr / switch_lr : 1.0;
        detail::swats_sgd<M, R>(t, o, sgd_lr * scale, stream, threads);
        return;
      }
      const double k = static_cast<double>(step);
      const double bias_correction1 = 1.0 - std::pow(o.beta1, k);
      const double bias_correction2 = 1.0 - std::pow(o.beta2, k);
      const double step_size = o.lr * std::pow(bias_correction2, 0.5) / bias_correction1;
      const Sums<2> s = o.amsgrad
          ? detail::swats_adam<true, M, R>(t, o, step_size, stream, threads)
          : detail::swats_adam<false, M, R>(t, o, step_size, stream, threads);
      const double pg = s.v[1];
      if (pg != 0.0) {
        const double gamma = s.v[0] / -pg;
        lambda = o.beta2 * lambda + (1.0 - o.beta2) * gamma;
        const double corrected = lambda / bias_correction2;
        if (step > 1.0f && corrected > 0.0 &&
            std::fabs(corrected - gamma) <= o.switch_tolerance * std::fabs(gamma)) {
          sgd_lr = corrected;
          switch_lr = o.lr;
          switched_at = step;
        }
      }
    };
    // Either way a tensor's sums come from the same fixed blocks (reduce_blocks).
    for_each_tensor(
        count, [&](std::size_t i) { return tensors[i].numel; }, num_threads, one);
  });
}

OPTIMCORE_NAMESPACE_END
