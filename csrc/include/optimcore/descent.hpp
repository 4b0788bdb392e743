// optimcore/descent.hpp: the outer loop the closure-driven methods share, torch.optim.LBFGS's
// step(closure) without the direction: evaluate, test, pick a direction (the method), pick a
// step length, line search (strong Wolfe) or fixed step, test again. L-BFGS (lbfgs.hpp) and
// nonlinear conjugate gradient (conjugate_gradient.hpp) are a direction and a first step length
// plugged into it; so is any later method of this kind.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "optimcore/closure.hpp"
#include "optimcore/line_search.hpp"

namespace optimcore {

// What every closure-driven method's step takes (torch.optim.LBFGS's arguments).
struct DescentOptions {
  double lr = 1.0;
  std::int64_t max_iter = 20;
  std::int64_t max_eval = kDefaultMaxEval;  // max_iter * 5 / 4, as torch
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  bool line_search = false;  // strong Wolfe (else a fixed step of lr, as torch without one)
  double c1 = 1e-4;          // Wolfe constants of the line search
  double c2 = 0.9;

  // torch's default; any other value, negative ones included, is taken as torch takes it.
  static constexpr std::int64_t kDefaultMaxEval = INT64_MIN;
  std::int64_t evaluations() const {
    return max_eval != kDefaultMaxEval ? max_eval : max_iter * 5 / 4;
  }
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// The state every such method keeps (torch.optim.LBFGS's keys but its history). The vectors
// (n elements) belong to the caller's Memory. `started`: a step has iterated, so d, t,
// prev_flat_grad and prev_loss exist (d may still be null after max_iter = 0).
template <class T>
struct DescentState {
  std::int64_t func_evals = 0;
  std::int64_t n_iter = 0;
  bool started = false;
  T* d = nullptr;
  T* prev_flat_grad = nullptr;
  Number<T> t;
  double prev_loss = 0.0;
};

struct DirectionInfo {
  double abs_max = 0.0;  // max|d|
  double gtd = 0.0;      // g.d
};

// One step (torch.optim.LBFGS.step's loop) of a method that provides
//   DirectionInfo direction(State& s, T* d, const T* g, Workspace& ws)
//       the new direction into d, from the gradient g and s (s.d is the previous direction,
//       s.prev_flat_grad the previous gradient; s.n_iter == 1 on the first iteration ever);
//   Number<T> next_step(const State& s, double loss, double last_loss, Number<T> gtd)
//       the first trial step length of an iteration after the first ever;
//   std::vector<const T*> vectors(const State& s)  every vector the state holds.
// `evaluate(T* grad)` returns the loss at the current x and writes its gradient. x moves in
// place; `state` changes only if the step succeeds. If evaluate throws or returns a non-finite
// loss (NonFiniteLoss), x is restored, `state` is untouched, and the exception propagates.
template <class T, class State, class Method, class Evaluate, class Memory>
ClosureStepResult descent_step(const Segments<T>& x, State& state, const DescentOptions& o,
                               Method& method, Evaluate&& evaluate, Memory& memory,
                               int num_threads) {
  using N = Number<T>;
  const std::size_t n = x.numel();
  const int th = num_threads;
  Workspace<T, Memory> ws(memory, method.vectors(state));
  State s = state;  // committed at the end
  ClosureStepResult result;
  T* x0 = ws.acquire();
  copy_from_segments(x0, x, th);
  const auto eval = [&](T* g) {
    const double f = evaluate(g);
    ++result.evaluations;
    if (!std::isfinite(f)) throw NonFiniteLoss(f, result.evaluations);
    return f;
  };
  try {
    const std::int64_t max_iter = o.max_iter, max_eval = o.evaluations();
    method.check(o);

    // evaluate initial f(x) and df/dx
    T* g = ws.acquire();
    double loss = eval(g);
    result.first_loss = result.loss = loss;
    std::int64_t current_evals = 1;
    s.func_evals += 1;
    bool opt_cond = N::of_tensor(abs_max(g, n, th)) <= o.tolerance_grad;
    if (opt_cond) {
      result.reason = StopReason::kGradientTolerance;
    } else {
      std::int64_t n_iter = 0;
      double d_abs_max = 0.0;
      result.reason = StopReason::kMaxIter;
      while (n_iter < max_iter) {
        n_iter += 1;
        s.n_iter += 1;

        // compute the descent direction
        T* d = ws.acquire();
        const DirectionInfo dir = method.direction(s, d, g, ws);
        if (s.d != d) ws.release(s.d);
        s.d = d;
        d_abs_max = dir.abs_max;

        // prev_flat_grad = g (g is not written again: the next gradient gets its own vector)
        if (s.prev_flat_grad != g) ws.release(s.prev_flat_grad);
        s.prev_flat_grad = g;
        const double last_loss = s.prev_loss;
        s.prev_loss = loss;

        // compute step length
        const N gtd = N::of_tensor(dir.gtd);
        if (s.n_iter == 1)
          s.t = py_min(N::python(1.0), 1.0 / N::of_tensor(abs_sum(g, n, th))) * o.lr;
        else
          s.t = method.next_step(s, loss, last_loss, gtd);

        // directional derivative is below tolerance
        if (gtd > -o.tolerance_change) {
          result.reason = StopReason::kDirectionalDerivative;
          break;
        }

        std::int64_t ls_func_evals = 0;
        if (o.line_search) {
          T* x_init = ws.acquire();
          copy_from_segments(x_init, x, th);
          struct Line {
            const Segments<T>& x;
            const T* x_init;
            const T* d;
            std::size_t n;
            int th;
            const decltype(eval)& f;
            double evaluate(N at, T* g_out) {
              set_along(x, x_init, static_cast<T>(at.v), d, th);
              return f(g_out);
            }
            N slope(const T* gv) const { return N::of_tensor(dot(gv, d, n, th)); }
          } line{x, x_init, d, n, th, eval};
          const WolfeOptions wolfe{o.c1, o.c2, o.tolerance_change};
          const LineSearchResult<T> r = strong_wolfe(line, ws, s.t, N::of_tensor(d_abs_max),
                                                     loss, g, gtd, wolfe,
                                                     max_eval - current_evals);
          loss = r.f;
          g = r.g;
          s.t = r.t;
          ls_func_evals = r.evaluations;
          set_along(x, x_init, static_cast<T>(s.t.v), d, th);
          ws.release(x_init);
          opt_cond = N::of_tensor(abs_max(g, n, th)) <= o.tolerance_grad;
        } else {
          // no line search, simply move with fixed-step
          set_along<T>(x, nullptr, static_cast<T>(s.t.v), d, th);
          if (n_iter != max_iter) {
            // re-evaluate function only if not in last iteration
            g = ws.acquire();
            loss = eval(g);
            opt_cond = N::of_tensor(abs_max(g, n, th)) <= o.tolerance_grad;
            ls_func_evals = 1;
          }
        }
        current_evals += ls_func_evals;
        s.func_evals += ls_func_evals;

        // check conditions
        if (n_iter == max_iter) {
          result.reason = StopReason::kMaxIter;
          break;
        }
        if (current_evals >= max_eval) {
          result.reason = StopReason::kMaxEval;
          break;
        }
        if (opt_cond) {
          result.reason = StopReason::kGradientTolerance;
          break;
        }
        // lack of progress: max|d t| (rounded in T, as torch's d.mul(t)) or the loss
        const T step_max = static_cast<T>(d_abs_max) * std::fabs(static_cast<T>(s.t.v));
        if (N::of_tensor(step_max) <= o.tolerance_change) {
          result.reason = StopReason::kStepTolerance;
          break;
        }
        if (std::fabs(loss - s.prev_loss) < o.tolerance_change) {
          result.reason = StopReason::kLossTolerance;
          break;
        }
      }
      result.iterations = n_iter;
      result.loss = loss;
      s.started = true;
    }
    ws.commit(method.vectors(s));
  } catch (...) {
    copy_to_segments(x, x0, th);
    throw;
  }
  state = std::move(s);
  return result;
}

// The Memory and Segments a C++ program minimizing over one buffer x of n elements needs:
// runs step(segments, memory) once.
template <class T, class Step>
ClosureStepResult minimize_buffer(T* x, std::size_t n, Step&& step) {
  T* data[1] = {x};
  const std::size_t sizes[1] = {n};
  const Segments<T> segments{data, sizes, 1};
  VectorPool<T> memory(n);
  return step(segments, memory);
}

OPTIMCORE_NAMESPACE_END
