// optimcore/lbfgs.hpp: L-BFGS, step for step torch.optim.LBFGS (torch/optim/lbfgs.py): the
// same iterations, history, step lengths, line search, evaluation counts and stopping rules, so
// a run can move between torch.optim.LBFGS and optimcore.LBFGS through a checkpoint.
//
// What differs is the vector work: torch makes ~5 passes over memory (and a new tensor) per
// history pair per loop; here the two-loop recursion fuses each pair's axpy with the next
// pair's dot product (2m + 1 passes for m pairs), the history update computes y, s, y.s and
// y.y in one pass, and no vector of n elements is allocated once the history is full.
//
// Math: Nocedal & Wright, Numerical Optimization (2nd ed.), algorithm 7.4 (two-loop recursion)
// and 7.5 (L-BFGS); the step-length logic is minFunc's, as ported by torch.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "optimcore/closure.hpp"
#include "optimcore/descent.hpp"

namespace optimcore {

struct LbfgsOptions : DescentOptions {
  std::int64_t history_size = 100;

  template <class F>
  void each(F&& f) {
    f("lr", lr); f("max_iter", max_iter); f("max_eval", max_eval);
    f("tolerance_grad", tolerance_grad); f("tolerance_change", tolerance_change);
    f("history_size", history_size); f("line_search", line_search);
  }
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// torch.optim.LBFGS's state, key for key (DescentState holds func_evals, n_iter, d, t,
// prev_flat_grad, prev_loss). `al` is torch's scratch for the two-loop coefficients, kept because
// it is part of torch's state_dict: empty until the first two-loop, then history_size entries,
// an entry with tensor == false standing for None.
template <class T>
struct LbfgsState : DescentState<T> {
  Number<T> H_diag = Number<T>::python(1.0);
  std::vector<T*> old_dirs;  // y_i = g_{i+1} - g_i, oldest first
  std::vector<T*> old_stps;  // s_i = t_i d_i
  std::vector<Number<T>> ro;  // 1 / (y_i . s_i)
  std::vector<Number<T>> al;
};

namespace detail {

// d = -H g by the two-loop recursion over the history (torch's q and r in one vector d), with
// torch's per-element rounding; writes al[0..m). Pair i's axpy and pair i-1's (loop 1) or i+1's
// (loop 2) dot product share a pass; the last pass also gives max|d| and g.d.
template <class T>
DirectionInfo two_loop(T* d, const T* g, const LbfgsState<T>& s, std::vector<Number<T>>& al,
                       std::size_t n, int threads) {
  using N = Number<T>;
  const std::size_t m = s.old_dirs.size();
  const T h = static_cast<T>(s.H_diag.v);  // torch.mul(q, H_diag): H_diag is 1 or a 0-d tensor
  const auto negate = [&](T scale, const T* w) {  // d = -g * scale; w.d
    return sum_pass<1>(n, threads, [&](std::size_t lo, std::size_t hi, Lanes<1>& a) {
      negate_scale_dot(d, g, scale, w, lo, hi, a);
    }).v[0];
  };
  const auto axpy = [&](T c, const T* x, T scale, const T* w) {  // d = (c x + d) * scale; w.d
    return sum_pass<1>(n, threads, [&](std::size_t lo, std::size_t hi, Lanes<1>& a) {
      axpy_scale_dot(d, x, c, scale, w, lo, hi, a);
    }).v[0];
  };
  DirectionInfo info;
  if (m == 0) {
    info.gtd = negate(h, g);
    info.abs_max = abs_max(d, n, threads);
    return info;
  }
  // q = -g, and s_{m-1}.q
  double acc = negate(T(1), s.old_stps[m - 1]);
  // loop 1, newest to oldest: al[i] = (s_i.q) ro_i; q -= al[i] y_i; with the next pair's dot,
  // and for the oldest pair r = q * H_diag and y_0.r
  for (std::size_t k = m; k-- > 0;) {
    al[k] = N::of_tensor(acc) * s.ro[k];
    const T c = static_cast<T>(-al[k].v);
    acc = k > 0 ? axpy(c, s.old_dirs[k], T(1), s.old_stps[k - 1])
                : axpy(c, s.old_dirs[0], h, s.old_dirs[0]);
  }
  // loop 2, oldest to newest: be_i = (y_i.r) ro_i; r += (al[i] - be_i) s_i; with the next
  // pair's dot, and for the newest pair g.d
  for (std::size_t k = 0; k < m; ++k) {
    const N be = N::of_tensor(acc) * s.ro[k];
    const T c = static_cast<T>((al[k] - be).v);
    acc = axpy(c, s.old_stps[k], T(1), k + 1 < m ? s.old_dirs[k + 1] : g);
  }
  info.gtd = acc;
  info.abs_max = abs_max(d, n, threads);
  return info;
}

}  // namespace detail

// L-BFGS as a descent method (descent.hpp): the direction, the step length after the first
// iteration (lr), the vectors its state holds.
template <class T, class Memory>
struct Lbfgs {
  const LbfgsOptions& o;
  std::size_t n;
  int threads;

  DirectionInfo direction(LbfgsState<T>& s, T* d, const T* g, Workspace<T, Memory>& ws) {
    using N = Number<T>;
    const std::size_t history_size = static_cast<std::size_t>(o.history_size);
    if (s.n_iter == 1) {
      for (T* p : s.old_dirs) ws.release(p);
      for (T* p : s.old_stps) ws.release(p);
      s.old_dirs.clear();
      s.old_stps.clear();
      s.ro.clear();
      s.H_diag = N::python(1.0);
      return detail::two_loop(d, g, s, s.al, n, threads);  // d = -g
    }
    // update memory with y = g - g_prev, s = t d (kept when y.s > 1e-10)
    T* y = ws.acquire();
    T* sv = ws.acquire();
    const T tt = static_cast<T>(s.t.v);
    const T* prev = s.prev_flat_grad;
    const T* d_old = s.d;
    const Sums<2> dots = sum_pass<2>(n, threads, [&](std::size_t lo, std::size_t hi,
                                                     Lanes<2>& a) {
      detail::difference_scale_dots(y, sv, g, prev, d_old, tt, lo, hi, a);
    });
    const N ys = N::of_tensor(dots.v[0]);
    if (ys > 1e-10) {
      if (s.old_dirs.size() == history_size) {  // shift history by one (limited-memory)
        ws.release(s.old_dirs.front());
        ws.release(s.old_stps.front());
        s.old_dirs.erase(s.old_dirs.begin());
        s.old_stps.erase(s.old_stps.begin());
        s.ro.erase(s.ro.begin());
      }
      s.old_dirs.push_back(y);
      s.old_stps.push_back(sv);
      s.ro.push_back(1.0 / ys);
      s.H_diag = ys / N::of_tensor(dots.v[1]);  // scale of the initial Hessian approximation
    } else {
      ws.release(y);
      ws.release(sv);
    }
    if (s.al.empty()) s.al.assign(history_size, N{});
    if (s.al.size() < s.old_dirs.size()) s.al.resize(s.old_dirs.size(), N{});
    return detail::two_loop(d, g, s, s.al, n, threads);
  }

  void check(const DescentOptions&) const {
    if (o.history_size < 1) throw std::invalid_argument("L-BFGS: history_size must be >= 1");
  }

  Number<T> next_step(const LbfgsState<T>&, double, double, Number<T>) const {
    return Number<T>::python(o.lr);
  }

  std::vector<const T*> vectors(const LbfgsState<T>& s) const {
    std::vector<const T*> v{s.d, s.prev_flat_grad};
    v.insert(v.end(), s.old_dirs.begin(), s.old_dirs.end());
    v.insert(v.end(), s.old_stps.begin(), s.old_stps.end());
    return v;
  }
};

// One call of torch.optim.LBFGS.step(closure) on x: see descent_step. `evaluate(T* grad)`
// returns the loss at the current x and writes its gradient (n elements, x's flat order).
template <class T, class Evaluate, class Memory>
ClosureStepResult lbfgs_step(const Segments<T>& x, LbfgsState<T>& state, const LbfgsOptions& o,
                             Evaluate&& evaluate, Memory& memory, int num_threads = 1) {
  Lbfgs<T, Memory> method{o, x.numel(), num_threads};
  return descent_step(x, state, o, method, evaluate, memory, num_threads);
}

// Minimizes f from x (n elements, updated in place) with L-BFGS: one step with o's budget
// (o.max_iter iterations, o.max_eval evaluations; set o.line_search for the strong-Wolfe line
// search). f(x, grad) returns f(x) and writes its gradient:  double f(const T* x, T* grad).
template <class T, class F>
ClosureStepResult lbfgs_minimize(T* x, std::size_t n, F&& f, const LbfgsOptions& o = {},
                                 int num_threads = 1) {
  return minimize_buffer(x, n, [&](const Segments<T>& segments, VectorPool<T>& memory) {
    LbfgsState<T> state;
    return lbfgs_step(
        segments, state, o,
        [&](T* grad) { return static_cast<double>(f(static_cast<const T*>(x), grad)); }, memory,
        num_threads);
  });
}

OPTIMCORE_NAMESPACE_END
