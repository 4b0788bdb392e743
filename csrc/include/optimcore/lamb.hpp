// optimcore/lamb.hpp: LAMB (You et al., "Large Batch Optimization for Deep Learning: Training
// BERT in 76 minutes", arXiv:1904.00962), as torch_optimizer.Lamb (torch-optimizer 0.3.0):
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   a = m / (sqrt(v) + eps) + weight_decay * p
//   trust = min(|p|, clamp_value) / |a|   (1 if either norm is 0, or with adam=true)
//   p -= lr * bias_correction * trust * a  (bias_correction = 1, the paper's v3, unless
//                                           debias: sqrt(1 - beta2^t) / (1 - beta1^t))
// Per tensor: one pass updates the moments and takes the two norms, a second applies the step
// (recomputing a from m, v and the old p). The norms are deterministic block reductions; small
// tensors are spread over the threads whole. The three norms are kept as float64 0-d state
// (weight_norm, adam_norm, trust_ratio, as torch_optimizer keeps them).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/closure.hpp"
#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct LambOptions : StepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;
  double weight_decay = 0.0;
  double clamp_value = 10.0;
  bool adam = false;    // trust ratio 1: Adam with the step above
  bool debias = false;  // Adam's bias corrections in the step size

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("eps", eps);
    f("weight_decay", weight_decay); f("clamp_value", clamp_value); f("adam", adam);
    f("debias", debias);
  }
};

struct Lamb {
  static constexpr const char* name = "lamb";
  enum State : std::size_t { kExpAvg, kExpAvgSq, kStates };
  static constexpr const char* state_names[kStates] = {"exp_avg", "exp_avg_sq"};
  enum Scalar : std::size_t { kWeightNorm, kAdamNorm, kTrustRatio, kScalars };
  static constexpr const char* scalar_state_names[kScalars] = {"weight_norm", "adam_norm",
                                                               "trust_ratio"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = LambOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using LambTensor = ParamState<T, S, Lamb::kStates, Lamb::kScalars>;

namespace detail {

template <class C>
struct LambScalars {
  C beta1, one_minus_beta1, beta2, one_minus_beta2, eps, wd;
};

// Pass 1 over [b, e): the moments, and (|p|^2, |a|^2) into sums.
template <bool MASTER, bool SR, class T, class S>
void lamb_moments(T* OPTIMCORE_RESTRICT param, const T* OPTIMCORE_RESTRICT grad,
                  S* OPTIMCORE_RESTRICT m_, S* OPTIMCORE_RESTRICT v_,
                  S* OPTIMCORE_RESTRICT master, const LambScalars<compute_t<T>>& k,
                  std::size_t b, std::size_t e, Sums<2>& sums) {
  using C = compute_t<T>;
  const C beta1 = k.beta1, one_minus_beta1 = k.one_minus_beta1, beta2 = k.beta2;
  const C one_minus_beta2 = k.one_minus_beta2, eps = k.eps, wd = k.wd;
  double ww[kLanes] = {}, aa[kLanes] = {};
  const auto element = [&](std::size_t j, std::size_t l) {
    const C g = load(grad[j]);
    const C p = load_param<MASTER, SR>(param, master, j);
    const C m = madd(one_minus_beta1, g, load(m_[j]) * beta1);
    const C v = second_moment(load(v_[j]), g, beta2, one_minus_beta2);
    const C r = m / (std::sqrt(v) + eps);
    const C a = wd != C(0) ? madd(wd, p, r) : r;  // adam_step.add_(p, alpha=wd) if wd != 0
    m_[j] = store<S>(m);
    v_[j] = store<S>(v);
    ww[l] += static_cast<double>(p) * static_cast<double>(p);
    aa[l] += static_cast<double>(a) * static_cast<double>(a);
  };
  std::size_t j = b;
  for (; j + kLanes <= e; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) element(j + l, l);
  for (; j < e; ++j) element(j, 0);
  for (std::size_t l = 0; l < kLanes; ++l) {
    sums.v[0] += ww[l];
    sums.v[1] += aa[l];
  }
}

// Pass 2 over [b, e): p += alpha * a, a recomputed from the new moments and the old p.
template <bool MASTER, bool SR, class T, class S>
void lamb_apply(T* OPTIMCORE_RESTRICT param, const S* OPTIMCORE_RESTRICT m_,
                const S* OPTIMCORE_RESTRICT v_, S* OPTIMCORE_RESTRICT master,
                const LambScalars<compute_t<T>>& k, compute_t<T> alpha, std::uint32_t stream,
                std::size_t b, std::size_t e) {
  using C = compute_t<T>;
  const C eps = k.eps, wd = k.wd;
  for (std::size_t j = b; j < e; ++j) {
    const C p = load_param<MASTER, SR>(param, master, j);
    const C r = load(m_[j]) / (std::sqrt(load(v_[j])) + eps);
    const C a = wd != C(0) ? madd(wd, p, r) : r;
    store_result<MASTER, SR>(param, master, j, madd(alpha, a, p), stream);
  }
}

}  // namespace detail

// One LAMB step for `count` tensors (see the top of the file).
template <class T, class S = T>
void lamb_step(const LambTensor<T, S>* tensors, std::size_t count, const LambOptions& o,
               int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  const detail::LambScalars<C> k{static_cast<C>(o.beta1), static_cast<C>(1.0 - o.beta1),
                                 static_cast<C>(o.beta2), static_cast<C>(1.0 - o.beta2),
                                 static_cast<C>(o.eps), static_cast<C>(o.weight_decay)};
  with_storage<T, S>(tensors[0].master_param != nullptr, o.stochastic_rounding,
                     [&](auto master, auto sr) {
    constexpr bool M = decltype(master)::value, R = decltype(sr)::value;
    const auto one = [&](std::size_t i, int threads) {
      const LambTensor<T, S>& t = tensors[i];
      const float step = *t.step + 1.0f;
      *t.step = step;
      const std::uint32_t stream = R ? tensor_stream(o.seed, i) : 0u;
      S* m = t.state[Lamb::kExpAvg];
      S* v = t.state[Lamb::kExpAvgSq];
      const Sums<2> s = reduce_blocks(
          t.numel, threads, Sums<2>{},
          [&](std::size_t b, std::size_t e) {
            Sums<2> part;
            detail::lamb_moments<M, R>(t.param, t.grad, m, v, t.master_param, k, b, e, part);
            return part;
          },
          [](Sums<2> acc, const Sums<2>& p) { return acc += p; });
      double bias_correction = 1.0;
      if (o.debias) {
        const double kk = static_cast<double>(step);
        bias_correction = std::sqrt(1.0 - std::pow(o.beta2, kk)) / (1.0 - std::pow(o.beta1, kk));
      }
      const double step_size = o.lr * bias_correction;
      // Norms as torch's 0-d tensors of the parameter's (compute) type.
      C weight_norm = static_cast<C>(std::sqrt(s.v[0]));
      weight_norm = weight_norm < C(0) ? C(0) : weight_norm;
      weight_norm = weight_norm > static_cast<C>(o.clamp_value) ? static_cast<C>(o.clamp_value)
                                                                : weight_norm;
      const C adam_norm = static_cast<C>(std::sqrt(s.v[1]));
      const bool unit = weight_norm == C(0) || adam_norm == C(0);
      const C trust = unit ? C(1) : weight_norm / adam_norm;
      *reinterpret_cast<double*>(t.scalar[Lamb::kWeightNorm]) = static_cast<double>(weight_norm);
      *reinterpret_cast<double*>(t.scalar[Lamb::kAdamNorm]) = static_cast<double>(adam_norm);
      *reinterpret_cast<double*>(t.scalar[Lamb::kTrustRatio]) = static_cast<double>(trust);
      const C alpha = (o.adam || unit) ? static_cast<C>(-step_size)
                                       : static_cast<C>(-step_size) * trust;
      reduce_blocks(
          t.numel, threads, 0,
          [&](std::size_t b, std::size_t e) {
            detail::lamb_apply<M, R>(t.param, m, v, t.master_param, k, alpha, stream, b, e);
            return 0;
          },
          [](int a, int) { return a; });
    };
    for_each_tensor(
        count, [&](std::size_t i) { return tensors[i].numel; }, num_threads, one);
  });
}

OPTIMCORE_NAMESPACE_END
