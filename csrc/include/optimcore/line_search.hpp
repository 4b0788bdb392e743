// optimcore/line_search.hpp: the strong-Wolfe line search with cubic interpolation, exactly
// torch.optim.LBFGS's `_strong_wolfe` and `_cubic_interpolate` (torch/optim/lbfgs.py, ported
// there from minFunc / torch7's lswolfe.lua): the same constants, brackets, safeguards and
// termination rules, with torch's scalar types (Number<T>). L-BFGS and nonlinear conjugate
// gradient share it; they differ in the curvature constant c2 (0.9 and 0.1 by default).
//
// Reference: Nocedal & Wright, Numerical Optimization (2nd ed.), algorithms 3.5 and 3.6.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/closure.hpp"

namespace optimcore {

struct WolfeOptions {
  double c1 = 1e-4;  // sufficient decrease (Armijo)
  double c2 = 0.9;   // curvature: |phi'(t)| <= c2 |phi'(0)|
  double tolerance_change = 1e-9;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// torch's _cubic_interpolate: the minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2),
// clamped into bounds (default: between x1 and x2); the bounds' midpoint when the cubic has no
// real minimizer.
template <class T>
Number<T> cubic_interpolate(Number<T> x1, double f1, Number<T> g1, Number<T> x2, double f2,
                            Number<T> g2, const Number<T>* bounds = nullptr) {
  Number<T> lo, hi;
  if (bounds != nullptr) {
    lo = bounds[0];
    hi = bounds[1];
  } else if (x1 <= x2) {
    lo = x1;
    hi = x2;
  } else {
    lo = x2;
    hi = x1;
  }
  const Number<T> d1 = g1 + g2 - Number<T>::python(3.0 * (f1 - f2)) / (x1 - x2);
  const Number<T> d2_square = d1 * d1 - g1 * g2;
  if (d2_square >= 0.0) {
    const Number<T> d2 = sqrt(d2_square);
    Number<T> min_pos;
    if (x1 <= x2)
      min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2));
    else
      min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2));
    return py_min(py_max(min_pos, lo), hi);
  }
  return (lo + hi) / 2.0;
}

template <class T>
struct LineSearchResult {
  double f = 0.0;          // the loss at the accepted step
  T* g = nullptr;          // its gradient (the caller's g, or a vector acquired from the workspace)
  Number<T> t;             // the accepted step length
  std::int64_t evaluations = 0;
};

// The strong-Wolfe line search along d from the current point (loss f, gradient g, slope
// gtd = g.d < 0), starting at step t, with at most max_ls evaluations (torch: max_eval minus
// the evaluations the step has made). `line` provides:
//   double evaluate(Number<T> t, T* g_out)  the loss at x0 + t d, its gradient into g_out
//   Number<T> slope(const T* g)             g.d, as a 0-d tensor of T
// d_norm is max|d| (as torch's d.abs().max()). g is never written; gradient vectors come from
// ws.acquire(), and the ones not returned are released.
template <class T, class Line, class Workspace>
LineSearchResult<T> strong_wolfe(Line& line, Workspace& ws, Number<T> t, Number<T> d_norm,
                                 double f, T* g, Number<T> gtd, const WolfeOptions& o,
                                 std::int64_t max_ls) {
  using N = Number<T>;
  const double c1 = o.c1, c2 = o.c2;
  std::vector<T*> mine;  // gradient vectors this search acquired
  T* refs[4] = {g, nullptr, nullptr, nullptr};  // g_prev, g_new, bracket_g[0], bracket_g[1]
  T*& g_prev = refs[0];
  T*& g_new = refs[1];
  T** bracket_g = refs + 2;
  auto fresh = [&]() -> T* {  // a gradient vector no live reference points at
    for (T* p : mine) {
      bool used = false;
      for (T* r : refs) used |= r == p;
      if (!used) return p;
    }
    mine.push_back(ws.acquire());
    return mine.back();
  };
  auto evaluate = [&](N at, double& f_out, N& gtd_out) {
    T* out = fresh();
    f_out = line.evaluate(at, out);
    gtd_out = line.slope(out);
    g_new = out;
  };

  double f_new;
  N gtd_new;
  evaluate(t, f_new, gtd_new);
  std::int64_t ls_func_evals = 1;

  // bracket an interval containing a point satisfying the Wolfe criteria
  N t_prev = N::python(0.0);
  double f_prev = f;
  N gtd_prev = gtd;
  bool done = false;
  std::int64_t ls_iter = 0;
  N bracket[2], bracket_gtd[2];
  double bracket_f[2];
  int size = 0;  // entries of bracket in use (torch's len(bracket)): 1 or 2
  while (ls_iter < max_ls) {
    const bool armijo_fails = f_new > (f + c1 * t * gtd) || (ls_iter > 1 && f_new >= f_prev);
    const bool curvature_holds = abs(gtd_new) <= -c2 * gtd;
    if (armijo_fails || (!curvature_holds && gtd_new >= 0.0)) {
      bracket[0] = t_prev;
      bracket[1] = t;
      bracket_f[0] = f_prev;
      bracket_f[1] = f_new;
      bracket_g[0] = g_prev;
      bracket_g[1] = g_new;
      bracket_gtd[0] = gtd_prev;
      bracket_gtd[1] = gtd_new;
      size = 2;
      break;
    }
    if (curvature_holds) {
      bracket[0] = t;
      bracket_f[0] = f_new;
      bracket_g[0] = g_new;
      size = 1;
      done = true;
      break;
    }

    // interpolate
    const N step_bounds[2] = {t + 0.01 * (t - t_prev), t * 10.0};
    const N tmp = t;
    t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, step_bounds);

    // next step
    t_prev = tmp;
    f_prev = f_new;
    g_prev = g_new;
    gtd_prev = gtd_new;
    evaluate(t, f_new, gtd_new);
    ls_func_evals += 1;
    ls_iter += 1;
  }

  // reached max number of iterations?
  if (ls_iter == max_ls) {
    bracket[0] = N::python(0.0);
    bracket[1] = t;
    bracket_f[0] = f;
    bracket_f[1] = f_new;
    bracket_g[0] = g;
    bracket_g[1] = g_new;
    size = 2;
  }
  if (size == 0) throw std::invalid_argument("the line search was given no evaluations (max_eval)");
  g_prev = nullptr;  // only the bracket is live from here on
  g_new = nullptr;

  // zoom phase: we now have a point satisfying the criteria, or a bracket around it. We
  // refine the bracket until we find the exact point satisfying the criteria.
  bool insuf_progress = false;
  int low_pos = bracket_f[0] <= bracket_f[size - 1] ? 0 : 1;
  int high_pos = 1 - low_pos;
  while (!done && ls_iter < max_ls) {
    // line-search bracket is so small
    if (abs(bracket[1] - bracket[0]) * d_norm < o.tolerance_change) break;

    // compute new trial value
    t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1],
                          bracket_gtd[1]);

    // test that we are making sufficient progress: if t is within 10% of the bracket's length
    // from a boundary and progress was insufficient (or t is at a boundary), move it to 10%.
    const N hi = py_max(bracket[0], bracket[1]);
    const N lo = py_min(bracket[0], bracket[1]);
    const N eps = 0.1 * (hi - lo);
    if (py_min(hi - t, t - lo) < eps) {
      if (insuf_progress || t >= hi || t <= lo) {
        t = abs(t - hi) < abs(t - lo) ? hi - eps : lo + eps;
        insuf_progress = false;
      } else {
        insuf_progress = true;
      }
    } else {
      insuf_progress = false;
    }

    // Evaluate new point
    evaluate(t, f_new, gtd_new);
    ls_func_evals += 1;
    ls_iter += 1;

    if (f_new > (f + c1 * t * gtd) || f_new >= bracket_f[low_pos]) {
      // Armijo condition not satisfied or not lower than lowest point
      bracket[high_pos] = t;
      bracket_f[high_pos] = f_new;
      bracket_g[high_pos] = g_new;
      bracket_gtd[high_pos] = gtd_new;
      low_pos = bracket_f[0] <= bracket_f[1] ? 0 : 1;
      high_pos = 1 - low_pos;
    } else {
      if (abs(gtd_new) <= -c2 * gtd) {
        done = true;  // Wolfe conditions satisfied
      } else if (gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0.0) {
        // old high becomes new low
        bracket[high_pos] = bracket[low_pos];
        bracket_f[high_pos] = bracket_f[low_pos];
        bracket_g[high_pos] = bracket_g[low_pos];
        bracket_gtd[high_pos] = bracket_gtd[low_pos];
      }
      // new point becomes new low
      bracket[low_pos] = t;
      bracket_f[low_pos] = f_new;
      bracket_g[low_pos] = g_new;
      bracket_gtd[low_pos] = gtd_new;
    }
    g_new = nullptr;
  }

  LineSearchResult<T> r;
  r.t = bracket[low_pos];
  r.f = bracket_f[low_pos];
  r.g = bracket_g[low_pos];
  r.evaluations = ls_func_evals;
  for (T* p : mine)
    if (p != r.g) ws.release(p);
  return r;
}

OPTIMCORE_NAMESPACE_END
