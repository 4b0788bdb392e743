// optimcore/muon.hpp: the elementwise parts of Muon, as torch.optim.Muon: its momentum (and
// Nesterov) pass, whose result is the bfloat16 input of the Newton-Schulz orthogonalization
// (which stays on torch's matmuls), and its decay-and-update pass.
//
// Math: Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024), in
// torch's form (torch/optim/_muon.py, _single_tensor_muon).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct MuonOptions : StepOptions {
  double lr = 1e-3;
  double weight_decay = 0.1;
  double momentum = 0.95;
  bool nesterov = true;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("weight_decay", weight_decay); f("momentum", momentum);
    f("nesterov", nesterov);
  }
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// One 2-D parameter of `numel` contiguous elements: its gradient, its momentum buffer, and the
// bfloat16 `update` the momentum pass writes (Newton-Schulz's input) and the update pass reads
// (its orthogonalized output, contiguous). `neg_lr` is -lr adjusted for the shape (adjust_lr_fn).
template <class T>
struct MuonTensor {
  T* param = nullptr;
  const T* grad = nullptr;
  T* momentum_buffer = nullptr;
  bfloat16* update = nullptr;
  std::size_t numel = 0;
  double neg_lr = 0.0;
};

// buf.lerp_(grad, 1 - momentum); update = bfloat16(grad.lerp(buf, momentum) if nesterov else buf)
template <class T>
void muon_momentum(const MuonTensor<T>* tensors, std::size_t count, const MuonOptions& o,
                   int num_threads = 1) {
  using C = compute_t<T>;
  const LerpWeight<C> toward_grad(static_cast<C>(1.0 - o.momentum));
  const LerpWeight<C> toward_buf(static_cast<C>(o.momentum));
  const bool nesterov = o.nesterov;
  for_each_range(
      count, [&](std::size_t i) { return tensors[i].numel; }, num_threads,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        const MuonTensor<T>& t = tensors[i];
        for (std::size_t j = b; j < e; ++j) {
          const C g = load(t.grad[j]);
          const C buf = toward_grad(load(t.momentum_buffer[j]), g);
          t.momentum_buffer[j] = store<T>(buf);
          // the buffer (or the Nesterov lerp) is rounded to T, then to bfloat16, as torch does
          const C u = nesterov ? static_cast<C>(store<T>(toward_buf(g, buf))) : buf;
          t.update[j] = to_bfloat16(static_cast<float>(u));
        }
      });
}

// param.mul_(1 - lr * weight_decay); param.add_(update, alpha=-adjusted_lr)
template <class T>
void muon_update(const MuonTensor<T>* tensors, std::size_t count, const MuonOptions& o,
                 int num_threads = 1) {
  using C = compute_t<T>;
  const C decay = static_cast<C>(1.0 - o.lr * o.weight_decay);
  std::vector<C> neg_lr(count);
  for (std::size_t i = 0; i < count; ++i) neg_lr[i] = static_cast<C>(tensors[i].neg_lr);
  for_each_range(
      count, [&](std::size_t i) { return tensors[i].numel; }, num_threads,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        const MuonTensor<T>& t = tensors[i];
        const C step = neg_lr[i];
        for (std::size_t j = b; j < e; ++j)
          t.param[j] = store<T>(madd(static_cast<C>(load(t.update[j])), step,
                                     load(t.param[j]) * decay));
      });
}

OPTIMCORE_NAMESPACE_END
