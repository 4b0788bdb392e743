// optimcore/adafactor.hpp: Adafactor, as torch.optim.Adafactor: a rule with per-tensor
// reductions (the parameter's RMS, factored second moments, the update's RMS).
//
// Math: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost"
// (arXiv:1804.04235), in torch's variant (torch/optim/_adafactor.py, _single_tensor_adafactor):
// for a matrix (batched over leading dimensions) the second moment is the outer product of a row
// and a column average of g^2 over the row average's mean; a vector keeps a full one; the step
// is lr-relative (rho_t) times max(eps2, RMS(param)) and the update is clipped by RMS / d.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct AdafactorOptions : StepOptions {
  double lr = 1e-2;
  double beta2_decay = -0.8;
  double eps1 = 0.0;  // torch's eps[0]; None there means finfo(param dtype).eps (resolved by caller)
  double eps2 = 1e-3;
  double d = 1.0;
  double weight_decay = 0.0;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta2_decay", beta2_decay); f("eps1", eps1); f("eps2", eps2); f("d", d);
    f("weight_decay", weight_decay); f("maximize", maximize);
  }
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// One parameter of `batch * rows * cols` contiguous elements (a matrix: the last two dimensions,
// batched over the others; a vector or scalar: batch = rows = 1, cols = numel, `factored` false).
// Factored: row_var holds batch * rows and col_var batch * cols averages; else variance holds
// one value per element. `step` is the float32 step count, incremented here.
template <class T>
struct AdafactorTensor {
  T* param = nullptr;
  const T* grad = nullptr;
  float* step = nullptr;
  T* row_var = nullptr;
  T* col_var = nullptr;
  T* variance = nullptr;
  std::size_t batch = 1, rows = 1, cols = 0;
  bool factored = false;
};

namespace detail {

// Norms accumulate in double and are rounded once to T. torch's float32 norm accumulates in
// float32, so on large float32 tensors the two differ by ~1e-5 relative (optimcore's is the more
// accurate); float64 agrees to rounding. Squares of values beyond ~1e154 overflow here.
template <class T>
OPTIMCORE_INLINE T rounded_norm(double sum_of_squares) {
  return static_cast<T>(std::sqrt(sum_of_squares));
}

// Sum of f(j)^2 over [0, n) in double with eight independent partial sums, so the loop is not
// one long dependency chain (and vectorizes without reassociating a single accumulator).
template <class F>
double sum_of_squares(std::size_t n, F f) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (std::size_t k = 0; k < 8; ++k) {
      const double v = static_cast<double>(f(j + k));
      acc[k] += v * v;
    }
  for (; j < n; ++j) {
    const double v = static_cast<double>(f(j));
    acc[0] += v * v;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <class T>
void adafactor_one(const AdafactorTensor<T>& t, const AdafactorOptions& o) {
  const std::size_t B = t.batch, R = t.rows, Cn = t.cols, n = B * R * Cn;
  const float step_f = *t.step + 1.0f;
  *t.step = step_f;
  const double step = static_cast<double>(step_f);
  const T w = static_cast<T>(std::pow(step, o.beta2_decay));  // one_minus_beta2_t
  const double rho = std::min(o.lr, 1.0 / std::pow(step, 0.5));
  const T sign = o.maximize ? T(-1) : T(1);
  T* param = t.param;
  const T* grad = t.grad;
  // RMS of the parameter before weight decay.
  const double p_sq = sum_of_squares(n, [&](std::size_t j) { return param[j]; });
  const double alpha =
      std::max(o.eps2, static_cast<double>(rounded_norm<T>(p_sq)) / std::pow(double(n), 0.5)) *
      rho;
  if (o.weight_decay != 0.0) {
    const T decay = static_cast<T>(1.0 - o.lr * o.weight_decay);
    for (std::size_t j = 0; j < n; ++j) param[j] = param[j] * decay;
  }
  const T eps1 = static_cast<T>(o.eps1);
  const T floor = static_cast<T>(o.eps1 * o.eps1);  // torch: clamp_(min=eps1 * eps1), a float
  const LerpWeight<T> toward(w);
  std::vector<T> row_scale(t.factored ? B : 0);
  if (t.factored) {
    for (std::size_t b = 0; b < B; ++b) {
      const T* g = grad + b * R * Cn;
      T* row_var = t.row_var + b * R;
      T* col_var = t.col_var + b * Cn;
      std::vector<double> col_sq(Cn, 0.0);
      double row_var_sum = 0.0;
      for (std::size_t r = 0; r < R; ++r) {
        double sq = 0.0;
        for (std::size_t c = 0; c < Cn; ++c) {
          const double gv = static_cast<double>(g[r * Cn + c]);
          sq += gv * gv;
          col_sq[c] += gv * gv;
        }
        const T norm = rounded_norm<T>(sq);
        row_var[r] = toward(row_var[r], (norm * norm) / static_cast<T>(Cn));
        row_var_sum += static_cast<double>(row_var[r]);
      }
      for (std::size_t c = 0; c < Cn; ++c) {
        const T norm = rounded_norm<T>(col_sq[c]);
        col_var[c] = toward(col_var[c], (norm * norm) / static_cast<T>(R));
      }
      // row_var.mean(dim=-2).clamp_(min=eps1)
      const T mean = static_cast<T>(row_var_sum / static_cast<double>(R));
      row_scale[b] = mean < eps1 ? eps1 : mean;
    }
  }
  // The update, once to measure its RMS and once to apply it: rsqrt(max(v, eps1^2)) * g, with
  // v the factored estimate row_var * col_var / mean(row_var) or the full variance.
  auto scaled = [&](T v, T g) {
    v = v < floor ? floor : v;  // clamp_(min=eps1**2); NaN stays
    return (T(1) / std::sqrt(v)) * (sign * g);  // rsqrt_() then mul_(grad)
  };
  double u_sq = 0.0;
  if (t.factored) {
    // Per matrix row: the row's factor times each column's, over the row mean.
    auto each_row = [&](auto body) {
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t r = 0; r < R; ++r) {
          const T row = t.row_var[b * R + r];
          const T* col = t.col_var + b * Cn;
          const std::size_t base = (b * R + r) * Cn;
          body(base, row, col, row_scale[b]);
        }
    };
    each_row([&](std::size_t base, T row, const T* col, T scale) {
      u_sq += sum_of_squares(Cn, [&](std::size_t c) {
        return scaled((row * col[c]) / scale, grad[base + c]);
      });
    });
    const double denom = std::max(
        1.0, static_cast<double>(rounded_norm<T>(u_sq)) / (std::pow(double(n), 0.5) * o.d));
    const T neg_step = static_cast<T>(-alpha / denom);
    each_row([&](std::size_t base, T row, const T* col, T scale) {
      for (std::size_t c = 0; c < Cn; ++c)
        param[base + c] =
            madd(scaled((row * col[c]) / scale, grad[base + c]), neg_step, param[base + c]);
    });
  } else {
    T* variance = t.variance;
    for (std::size_t j = 0; j < n; ++j) {
      const T g = sign * grad[j];
      variance[j] = toward(variance[j], g * g);
    }
    u_sq = sum_of_squares(n, [&](std::size_t j) { return scaled(variance[j], grad[j]); });
    const double denom = std::max(
        1.0, static_cast<double>(rounded_norm<T>(u_sq)) / (std::pow(double(n), 0.5) * o.d));
    const T neg_step = static_cast<T>(-alpha / denom);
    for (std::size_t j = 0; j < n; ++j)
      param[j] = madd(scaled(variance[j], grad[j]), neg_step, param[j]);
  }
}

}  // namespace detail

// One Adafactor step for `count` tensors (float or double). Each tensor needs its own reductions
// before its update, so threads take whole tensors (handed out dynamically; enough work for a
// second thread, as parallel.hpp's threads_for decides); one tensor runs on one thread.
template <class T>
void adafactor_step(const AdafactorTensor<T>* tensors, std::size_t count,
                    const AdafactorOptions& o, int num_threads = 1) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i)
    total += tensors[i].batch * tensors[i].rows * tensors[i].cols;
  const int threads = count > 1 ? threads_for(total, num_threads) : 1;
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (long long i = 0; i < static_cast<long long>(count); ++i)
      detail::adafactor_one(tensors[i], o);
    return;
  }
#endif
  for (std::size_t i = 0; i < count; ++i) detail::adafactor_one(tensors[i], o);
}

OPTIMCORE_NAMESPACE_END
