// optimcore/conjugate_gradient.hpp: nonlinear conjugate gradient on the descent loop of
// descent.hpp (torch.optim.LBFGS's structure) with the strong-Wolfe line search.
//
//   d_0 = -g_0,   d_k = -g_k + beta_k d_{k-1},   y = g_k - g_{k-1}
//   beta: FR  g.g / g'.g'            (Fletcher-Reeves)
//         PR+ max(0, g.y / g'.g')    (Polak-Ribiere, clipped at 0: a restart when negative)
//         HS  g.y / d'.y             (Hestenes-Stiefel)
//         DY  g.g / d'.y             (Dai-Yuan)
// restarted (beta = 0) every `restart_every` iterations (default n, the number of elements),
// when Powell's test finds consecutive gradients far from orthogonal (|g.g'| >= 0.2 g.g), and
// when d_k is not a descent direction. The line search uses c2 = 0.1 by default (CG needs an
// accurate line search; L-BFGS's 0.9 is too loose for it), and the first trial step of an
// iteration comes from the last decrease: t = lr min(1, 1.01 * 2 (f - f_prev) / g.d) (Nocedal &
// Wright eq. 3.60, as SciPy's CG), the first ever as L-BFGS's.
//
// Sources: Nocedal & Wright, Numerical Optimization (2nd ed.), ch. 5.2 (FR, PR+, HS, restarts,
// Powell's test); Hager & Zhang, "A survey of nonlinear conjugate gradient methods" (2006),
// for the beta choices and DY.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "optimcore/closure.hpp"
#include "optimcore/descent.hpp"

namespace optimcore {

enum class CgBeta : int { kPolakRibierePlus = 0, kFletcherReeves, kHestenesStiefel, kDaiYuan };

struct ConjugateGradientOptions : DescentOptions {
  CgBeta beta = CgBeta::kPolakRibierePlus;
  std::int64_t restart_every = 0;  // 0: n, the number of elements
  double powell = 0.2;             // restart when |g.g_prev| >= powell * g.g (0: never)

  ConjugateGradientOptions() {
    line_search = true;
    c2 = 0.1;
  }

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("max_iter", max_iter); f("max_eval", max_eval);
    f("tolerance_grad", tolerance_grad); f("tolerance_change", tolerance_change);
    f("c1", c1); f("c2", c2); f("restart_every", restart_every); f("powell", powell);
  }
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

namespace detail {

// d = b d_prev - g (rounded once where torch's add(alpha=) uses FMA); acc += g.d
template <class T>
void scaled_minus_dot(T* OPTIMCORE_RESTRICT d, const T* OPTIMCORE_RESTRICT d_prev, T b,
                      const T* OPTIMCORE_RESTRICT g, std::size_t lo, std::size_t hi,
                      Lanes<1>& acc) {
  double a[kLanes] = {};
  std::size_t j = lo;
  for (; j + kLanes <= hi; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) {
      const T v = madd(b, d_prev[j + l], -g[j + l]);
      d[j + l] = v;
      a[l] += static_cast<double>(g[j + l]) * static_cast<double>(v);
    }
  for (; j < hi; ++j) {
    const T v = madd(b, d_prev[j], -g[j]);
    d[j] = v;
    a[0] += static_cast<double>(g[j]) * static_cast<double>(v);
  }
  for (std::size_t l = 0; l < kLanes; ++l) acc.acc[0][l] += a[l];
}

// acc += (g.g, g.p, p.p, g.y, d.y) with y = g - p, in double
template <class T>
void cg_dots(const T* OPTIMCORE_RESTRICT g, const T* OPTIMCORE_RESTRICT p,
             const T* OPTIMCORE_RESTRICT d, std::size_t lo, std::size_t hi, Lanes<5>& acc) {
  double a[5][kLanes] = {};
  const auto add = [&](std::size_t j, std::size_t l) {
    const double gj = g[j], pj = p[j], yj = gj - pj;
    a[0][l] += gj * gj;
    a[1][l] += gj * pj;
    a[2][l] += pj * pj;
    a[3][l] += gj * yj;
    a[4][l] += static_cast<double>(d[j]) * yj;
  };
  std::size_t j = lo;
  for (; j + kLanes <= hi; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) add(j + l, l);
  for (; j < hi; ++j) add(j, 0);
  for (std::size_t k = 0; k < 5; ++k)
    for (std::size_t l = 0; l < kLanes; ++l) acc.acc[k][l] += a[k][l];
}

}  // namespace detail

// DescentState plus the iterations since the last restart.
template <class T>
struct ConjugateGradientState : DescentState<T> {
  std::int64_t since_restart = 0;
};

template <class T, class Memory>
struct ConjugateGradient {
  const ConjugateGradientOptions& o;
  std::size_t n;
  int threads;

  // d = -g (beta = 0) or beta d_prev - g; max|d| and g.d
  DirectionInfo along(T* d, const T* g, const T* d_prev, double beta) const {
    const T b = static_cast<T>(beta);
    const bool restart = d_prev == nullptr || beta == 0.0;
    const Sums<1> r = sum_pass<1>(n, threads, [&](std::size_t lo, std::size_t hi, Lanes<1>& a) {
      if (restart)
        detail::negate_scale_dot(d, g, T(1), g, lo, hi, a);
      else
        detail::scaled_minus_dot(d, d_prev, b, g, lo, hi, a);
    });
    return {abs_max(d, n, threads), r.v[0]};
  }

  DirectionInfo direction(ConjugateGradientState<T>& s, T* d, const T* g,
                          Workspace<T, Memory>&) {
    if (s.n_iter == 1 || s.d == nullptr || s.prev_flat_grad == nullptr) {
      s.since_restart = 0;
      return along(d, g, nullptr, 0.0);
    }
    const T* p = s.prev_flat_grad;
    const T* dp = s.d;
    // g.g, g.g', g'.g', g.y, d'.y in one pass
    const Sums<5> r = sum_pass<5>(n, threads, [&](std::size_t lo, std::size_t hi, Lanes<5>& a) {
      detail::cg_dots(g, p, dp, lo, hi, a);
    });
    const double gg = r.v[0], gp = r.v[1], pp = r.v[2], gy = r.v[3], dy = r.v[4];
    double beta = 0.0;
    switch (o.beta) {
      case CgBeta::kFletcherReeves: beta = gg / pp; break;
      case CgBeta::kPolakRibierePlus: beta = std::fmax(0.0, gy / pp); break;
      case CgBeta::kHestenesStiefel: beta = gy / dy; break;
      case CgBeta::kDaiYuan: beta = gg / dy; break;
    }
    const std::int64_t every = o.restart_every > 0 ? o.restart_every
                                                   : static_cast<std::int64_t>(n);
    s.since_restart += 1;
    if (!std::isfinite(beta) || s.since_restart >= every ||
        (o.powell > 0.0 && std::fabs(gp) >= o.powell * gg)) {
      beta = 0.0;
    }
    if (beta == 0.0) s.since_restart = 0;
    DirectionInfo info = along(d, g, dp, beta);
    if (beta != 0.0 && !(info.gtd < 0.0)) {  // not a descent direction: restart
      s.since_restart = 0;
      info = along(d, g, nullptr, 0.0);
    }
    return info;
  }

  void check(const DescentOptions&) const {
    if (!(0.0 < o.c1 && o.c1 < o.c2 && o.c2 < 1.0))
      throw std::invalid_argument("conjugate gradient: need 0 < c1 < c2 < 1");
  }

  // lr min(1, 1.01 * 2 (f - f_prev) / g.d); lr when that is not positive and finite
  Number<T> next_step(const ConjugateGradientState<T>&, double loss, double last_loss,
                      Number<T> gtd) const {
    double t = 1.01 * 2.0 * (loss - last_loss) / gtd.v;
    if (!(t > 0.0) || !std::isfinite(t)) t = 1.0;
    return Number<T>::python(o.lr * std::fmin(1.0, t));
  }

  std::vector<const T*> vectors(const ConjugateGradientState<T>& s) const {
    return {s.d, s.prev_flat_grad};
  }
};

// One step of nonlinear conjugate gradient on x: see descent_step.
template <class T, class Evaluate, class Memory>
ClosureStepResult cg_step(const Segments<T>& x, ConjugateGradientState<T>& state,
                          const ConjugateGradientOptions& o, Evaluate&& evaluate, Memory& memory,
                          int num_threads = 1) {
  ConjugateGradient<T, Memory> method{o, x.numel(), num_threads};
  return descent_step(x, state, o, method, evaluate, memory, num_threads);
}

// Minimizes f from x (n elements, updated in place) with nonlinear conjugate gradient: one step
// with o's budget. f(x, grad) returns f(x) and writes its gradient.
template <class T, class F>
ClosureStepResult cg_minimize(T* x, std::size_t n, F&& f, const ConjugateGradientOptions& o = {},
                              int num_threads = 1) {
  return minimize_buffer(x, n, [&](const Segments<T>& segments, VectorPool<T>& memory) {
    ConjugateGradientState<T> state;
    return cg_step(
        segments, state, o,
        [&](T* grad) { return static_cast<double>(f(static_cast<const T*>(x), grad)); }, memory,
        num_threads);
  });
}

OPTIMCORE_NAMESPACE_END
