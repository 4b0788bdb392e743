// optimcore/sparse_adam.hpp: SparseAdam, as torch.optim.SparseAdam: Adam on the rows a sparse
// gradient touches (nn.Embedding(sparse=True)); the other rows' moments and values stay as they
// are ("lazy Adam").
//
// Math: Kingma & Ba, "Adam" (arXiv:1412.6980), applied to the touched rows only. Operation order
// follows torch/optim/_functional.py (sparse_adam) on a coalesced gradient.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct SparseAdamOptions : StepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("beta1", beta1); f("beta2", beta2); f("eps", eps); f("maximize", maximize);
  }
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// One parameter with a row-sparse gradient: `rows` distinct rows (indices into the parameter's
// first dimension, coalesced), each of `row_numel` contiguous elements; values[k * row_numel + j]
// is the gradient of element j of row indices[k]. param, exp_avg and exp_avg_sq are dense and
// contiguous. `step` is the parameter's step count after this step (torch keeps a Python int).
template <class T>
struct SparseRows {
  T* param = nullptr;
  T* exp_avg = nullptr;
  T* exp_avg_sq = nullptr;
  const std::int64_t* indices = nullptr;
  const T* values = nullptr;
  std::size_t rows = 0;
  std::size_t row_numel = 0;
  double step = 1;
};

namespace detail {

template <bool MAXIMIZE, class T, class C = compute_t<T>>
void sparse_adam_range(const SparseRows<T>& t, std::size_t begin, std::size_t end,
                       C one_minus_beta1, C one_minus_beta2, C eps, C neg_step_size) {
  const std::size_t n = t.row_numel;
  for (std::size_t k = begin / n, j = begin % n, pos = begin; pos < end; ++k, j = 0) {
    const std::size_t stop = (k + 1) * n < end ? n : end - k * n;
    const std::size_t base = static_cast<std::size_t>(t.indices[k]) * n;
    T* OPTIMCORE_RESTRICT param = t.param + base;
    T* OPTIMCORE_RESTRICT exp_avg = t.exp_avg + base;
    T* OPTIMCORE_RESTRICT exp_avg_sq = t.exp_avg_sq + base;
    const T* OPTIMCORE_RESTRICT values = t.values + k * n;
    for (; j < stop; ++j, ++pos) {
      const C g = MAXIMIZE ? -load(values[j]) : load(values[j]);
      const C m0 = load(exp_avg[j]), v0 = load(exp_avg_sq[j]);
      const C m_update = (g - m0) * one_minus_beta1;      // grad.sub(old).mul_(1 - beta1)
      const C v_update = (g * g - v0) * one_minus_beta2;  // grad.pow(2).sub_(old).mul_(1 - beta2)
      exp_avg[j] = store<T>(m0 + m_update);
      exp_avg_sq[j] = store<T>(v0 + v_update);
      const C denom = std::sqrt(v_update + v0) + eps;
      param[j] = store<T>(load(param[j]) + neg_step_size * ((m_update + m0) / denom));
    }
  }
}

}  // namespace detail

// One SparseAdam step for `count` parameters: one parallel pass over the touched rows' elements.
// The rows of one parameter must be distinct (a coalesced gradient).
template <class T>
void sparse_adam_step(const SparseRows<T>* tensors, std::size_t count,
                      const SparseAdamOptions& o, int num_threads = 1) {
  using C = compute_t<T>;
  const C one_minus_beta1 = static_cast<C>(1.0 - o.beta1);
  const C one_minus_beta2 = static_cast<C>(1.0 - o.beta2), eps = static_cast<C>(o.eps);
  std::vector<C> neg_step_size(count);
  for (std::size_t i = 0; i < count; ++i) {
    // torch: lr * sqrt(1 - beta2^t) / (1 - beta1^t), in Python floats
    const double bias_correction1 = 1.0 - std::pow(o.beta1, tensors[i].step);
    const double bias_correction2 = 1.0 - std::pow(o.beta2, tensors[i].step);
    neg_step_size[i] = static_cast<C>(-(o.lr * std::sqrt(bias_correction2) / bias_correction1));
  }
  for_each_range(
      count, [&](std::size_t i) { return tensors[i].rows * tensors[i].row_numel; }, num_threads,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        if (o.maximize)
          detail::sparse_adam_range<true>(tensors[i], b, e, one_minus_beta1, one_minus_beta2, eps,
                                          neg_step_size[i]);
        else
          detail::sparse_adam_range<false>(tensors[i], b, e, one_minus_beta1, one_minus_beta2,
                                           eps, neg_step_size[i]);
      });
}

OPTIMCORE_NAMESPACE_END
