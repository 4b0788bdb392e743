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
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;  // true: AdamW
  // bfloat16 parameters only: round the updated parameter stochastically (see
  // to_bfloat16_stochastic), with random bits from `seed`, the tensor's index and the element.
  bool stochastic_rounding = false;
  std::uint64_t seed = 0;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// One parameter tensor and its state, all of `numel` elements, densely stored in the same order.
// T is the parameter/gradient type; S the state type (S == T, or float with 16-bit T and
// master weights). `step` is the tensor's float32 step count, incremented by adam_step.
// max_exp_avg_sq is used only with amsgrad. master_param, when not null, holds the float32
// master copy of a 16-bit parameter: the update reads and writes it, and `param` receives the
// rounded result. Pointers of one tensor must not alias each other.
template <class T, class S = T>
struct AdamTensor {
  T* param = nullptr;
  const T* grad = nullptr;
  S* exp_avg = nullptr;
  S* exp_avg_sq = nullptr;
  S* max_exp_avg_sq = nullptr;
  float* step = nullptr;
  std::size_t numel = 0;
  S* master_param = nullptr;
};

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
  S* OPTIMCORE_RESTRICT exp_avg = t.exp_avg;
  S* OPTIMCORE_RESTRICT exp_avg_sq = t.exp_avg_sq;
  S* OPTIMCORE_RESTRICT max_exp_avg_sq = t.max_exp_avg_sq;
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
  // lerp(m, g, 1 - beta1) with its branch hoisted: m_new = base + coeff * (g - m).
  const bool from_start = k.one_minus_beta1 < C(0.5);
  const C coeff = from_start ? k.one_minus_beta1 : k.one_minus_beta1 - C(1);
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    C p;
    if constexpr (MASTER) p = load(master[j]); else p = load(param[j]);
    if constexpr (L2) g = madd(p, weight_decay, g);
    if constexpr (DECOUPLED) p = p * decay_scale;
    const C m0 = load(exp_avg[j]);
    const C m = madd(coeff, g - m0, from_start ? m0 : g);
    const C v = madd(one_minus_beta2 * g, g, load(exp_avg_sq[j]) * beta2);  // torch addcmul
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
    if constexpr (MASTER) master[j] = store<S>(p);
    param[j] = store_param<SR, T>(p, stream, j);
  }
}

template <bool AMSGRAD, bool L2, bool DECOUPLED, bool MASTER, bool SR, class T, class S>
void adam_run(const AdamTensor<T, S>* tensors, std::size_t count,
              const AdamScalars<compute_t<T>>& k, const std::vector<AdamStepScalars>& steps,
              std::uint64_t seed, int num_threads) {
  for_each_range(
      count, [&](std::size_t i) { return tensors[i].numel; }, num_threads,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        adam_range<AMSGRAD, L2, DECOUPLED, MASTER, SR>(tensors[i], b, e, k, steps[i],
                                                       SR ? tensor_stream(seed, i) : 0u);
      });
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
  const bool master = tensors[0].master_param != nullptr;
  // Every flag combination is its own loop, so the inner loop has no data-independent branches.
  auto run = [&](auto amsgrad, auto l2c, auto dec, auto mas, auto sr) {
    detail::adam_run<decltype(amsgrad)::value, decltype(l2c)::value, decltype(dec)::value,
                     decltype(mas)::value, decltype(sr)::value>(tensors, count, k, steps, o.seed,
                                                                num_threads);
  };
  using F = std::false_type;
  using Tr = std::true_type;
  auto with_rounding = [&](auto a, auto l, auto d, auto m) {
    if constexpr (std::is_same<T, bfloat16>::value) {
      if (o.stochastic_rounding) return run(a, l, d, m, Tr{});
    }
    run(a, l, d, m, F{});
  };
  auto with_master = [&](auto a, auto l, auto d) {
    master ? with_rounding(a, l, d, Tr{}) : with_rounding(a, l, d, F{});
  };
  auto with_decay = [&](auto a) {
    if (l2) with_master(a, Tr{}, F{});
    else if (decoupled) with_master(a, F{}, Tr{});
    else with_master(a, F{}, F{});
  };
  o.amsgrad ? with_decay(Tr{}) : with_decay(F{});
}

OPTIMCORE_NAMESPACE_END
