// optimcore/asgd.hpp: averaged SGD, as torch.optim.ASGD.
//
// Math: Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging" (SIAM J.
// Control Optim. 1992), in torch's form (from Bottou's sgd code): a decaying step size eta and a
// running average `ax` of the iterates, started at step t0. eta and mu are per-tensor float32
// scalars (0-d tensors in torch), updated after each step. Operation order follows
// torch/optim/asgd.py (_single_tensor_asgd, capturable=False).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

struct AsgdOptions : StepOptions {
  double lr = 1e-2;
  double lambd = 1e-4;
  double alpha = 0.75;
  double t0 = 1e6;
  double weight_decay = 0.0;
  bool maximize = false;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("lambd", lambd); f("alpha", alpha); f("t0", t0);
    f("weight_decay", weight_decay); f("maximize", maximize);
  }
};

struct Asgd {
  static constexpr const char* name = "asgd";
  enum State : std::size_t { kAx, kStates };
  static constexpr const char* state_names[kStates] = {"ax"};
  enum Scalar : std::size_t { kEta, kMu };
  static constexpr const char* scalar_state_names[] = {"eta", "mu"};
  static constexpr std::uint32_t fills_new_state = 0;
  static constexpr bool counts_steps = true;
  using Options = AsgdOptions;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

template <class T, class S = T>
using AsgdTensor = ParamState<T, S, Asgd::kStates, 2>;

namespace detail {

template <class C>
struct AsgdStepScalars {
  C decay, neg_eta, mu;
  bool averaging;  // mu != 1: ax moves toward the parameter; else ax copies it
};

template <bool L2, bool AVERAGING, bool MASTER, bool SR, class T, class S>
void asgd_range(const AsgdTensor<T, S>& t, std::size_t begin, std::size_t end,
                compute_t<T> sign, compute_t<T> weight_decay,
                const AsgdStepScalars<compute_t<T>>& s, std::uint32_t stream) {
  using C = compute_t<T>;
  T* OPTIMCORE_RESTRICT param = t.param;
  const T* OPTIMCORE_RESTRICT grad = t.grad;
  S* OPTIMCORE_RESTRICT ax = t.state[Asgd::kAx];
  S* OPTIMCORE_RESTRICT master = t.master_param;
  const C decay = s.decay, neg_eta = s.neg_eta, mu = s.mu;
  for (std::size_t j = begin; j < end; ++j) {
    C g = sign * load(grad[j]);
    C p = load_param<MASTER, SR>(param, master, j);
    if constexpr (L2) g = madd(p, weight_decay, g);
    p = p * decay;             // param.mul_(1 - lambd * eta)
    p = madd(g, neg_eta, p);   // param.add_(grad, alpha=-eta)
    if constexpr (AVERAGING) {
      const C a = load(ax[j]);
      ax[j] = store<S>(a + (p - a) * mu);  // ax.add_(param.sub(ax).mul_(mu))
    } else {
      ax[j] = store<S>(p);                 // ax.copy_(param)
    }
    store_result<MASTER, SR>(param, master, j, p, stream);
  }
}

}  // namespace detail

// One ASGD step for `count` tensors: increments each step, updates param and ax with this
// step's eta and mu, then sets eta and mu for the next step.
template <class T, class S = T>
void asgd_step(const AsgdTensor<T, S>* tensors, std::size_t count, const AsgdOptions& o,
               int num_threads = 1) {
  using C = compute_t<T>;
  if (count == 0) return;
  std::vector<detail::AsgdStepScalars<C>> steps(count);
  for (std::size_t i = 0; i < count; ++i) {
    const float step_f = *tensors[i].step + 1.0f;
    *tensors[i].step = step_f;
    float& eta = *tensors[i].scalar[Asgd::kEta];
    float& mu = *tensors[i].scalar[Asgd::kMu];
    const double eta_now = static_cast<double>(eta);
    steps[i].decay = static_cast<C>(1.0 - o.lambd * eta_now);
    steps[i].neg_eta = static_cast<C>(-eta_now);
    steps[i].mu = static_cast<C>(mu);
    steps[i].averaging = static_cast<double>(mu) != 1.0;
    const double step = static_cast<double>(step_f);
    eta = static_cast<float>(o.lr / std::pow(1.0 + (o.lambd * o.lr) * step, o.alpha));
    const double since = step - o.t0;
    mu = static_cast<float>(1.0 / (since > 1.0 ? since : 1.0));  // 1 / max(1, step - t0)
  }
  const C sign = o.maximize ? C(-1) : C(1);
  const C wd = static_cast<C>(o.weight_decay);
  auto run = [&](auto l2) {
    for_each_param_range(tensors, count, o, num_threads,
                         [&](auto master, auto sr, std::size_t i, std::size_t b,
                             std::size_t e, std::uint32_t stream) {
      constexpr bool L = decltype(l2)::value, M = decltype(master)::value;
      constexpr bool R = decltype(sr)::value;
      if (steps[i].averaging)
        detail::asgd_range<L, true, M, R>(tensors[i], b, e, sign, wd, steps[i], stream);
      else
        detail::asgd_range<L, false, M, R>(tensors[i], b, e, sign, wd, steps[i], stream);
    });
  };
  o.weight_decay != 0.0 ? run(std::true_type{}) : run(std::false_type{});
}

OPTIMCORE_NAMESPACE_END
