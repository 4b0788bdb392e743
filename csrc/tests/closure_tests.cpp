// Tests of the closure-driven methods (L-BFGS, nonlinear conjugate gradient) through their C++
// entry points, as a program without Python uses them: convergence on Rosenbrock (2-D and the
// 100-D extended form) and an ill-conditioned quadratic, in float and double, with 1 and 2
// threads; a failing function leaves x as it was. The iterate-for-iterate comparison with
// torch.optim.LBFGS is in tests/test_lbfgs.py. Exit code: the number of failures.
#include <optimcore/optimcore.hpp>

#include "check.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace {

// Extended Rosenbrock: sum over pairs of 100 (x_{2i+1} - x_{2i}^2)^2 + (1 - x_{2i})^2.
template <class T>
double rosenbrock(const T* x, T* g, std::size_t n) {
  double f = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    const double a = x[i], b = x[i + 1];
    const double u = b - a * a, v = 1 - a;
    f += 100 * u * u + v * v;
    g[i] = static_cast<T>(-400 * a * u - 2 * v);
    g[i + 1] = static_cast<T>(200 * u);
  }
  return f;
}

// 0.5 sum c_i x_i^2 - x_i, condition number 1e4: minimum at x_i = 1 / c_i.
template <class T>
double quadratic(const T* x, T* g, std::size_t n) {
  double f = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double c = std::pow(1e4, static_cast<double>(i) / static_cast<double>(n - 1));
    f += 0.5 * c * x[i] * x[i] - x[i];
    g[i] = static_cast<T>(c * x[i] - 1);
  }
  return f;
}

template <class T>
std::vector<T> rosenbrock_start(std::size_t n) {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; i += 2) {
    x[i] = static_cast<T>(-1.2);
    x[i + 1] = static_cast<T>(1);
  }
  return x;
}

template <class T, class Minimize, class Options>
void converges(const char* what, Minimize minimize, Options o, int threads) {
  const double tol = sizeof(T) == 8 ? 1e-5 : 2e-2;
  o.tolerance_grad = sizeof(T) == 8 ? 1e-9 : 1e-4;
  for (std::size_t n : {std::size_t(2), std::size_t(100)}) {
    std::vector<T> x = rosenbrock_start<T>(n);
    const auto r = minimize(x.data(), n, [n](const T* p, T* g) { return rosenbrock(p, g, n); },
                            o, threads);
    double err = 0;
    for (T v : x) err = std::fmax(err, std::fabs(static_cast<double>(v) - 1));
    CHECK(err < tol, "%s rosenbrock n=%zu %zu-byte threads=%d: max|x-1| = %g after %lld "
          "evaluations (%s)", what, n, sizeof(T), threads, err, (long long)r.evaluations,
          optimcore::stop_reason_name(r.reason));
  }
  // The quadratic's gradient stops shrinking with f at its rounding level (f changes by
  // ~1e-16 relative for |g| ~ 1e-6): a looser tolerance.
  o.tolerance_grad = sizeof(T) == 8 ? 1e-5 : 1e-3;
  const std::size_t n = 100;
  std::vector<T> x(n, T(0));
  const auto r = minimize(x.data(), n, [](const T* p, T* g) { return quadratic(p, g, 100); }, o,
                          threads);
  double err = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double c = std::pow(1e4, static_cast<double>(i) / 99.0);
    err = std::fmax(err, std::fabs(static_cast<double>(x[i]) * c - 1));
  }
  CHECK(err < (sizeof(T) == 8 ? 1e-4 : 2e-2), "%s quadratic %zu-byte threads=%d: max relative error %g after %lld "
        "evaluations (%s)", what, sizeof(T), threads, err, (long long)r.evaluations,
        optimcore::stop_reason_name(r.reason));
}

template <class T>
void all_converge(int threads) {
  const auto lbfgs = [](T* x, std::size_t n, auto f, const optimcore::LbfgsOptions& o, int th) {
    return optimcore::lbfgs_minimize(x, n, f, o, th);
  };
  const auto cg = [](T* x, std::size_t n, auto f, const optimcore::ConjugateGradientOptions& o,
                     int th) { return optimcore::cg_minimize(x, n, f, o, th); };
  optimcore::LbfgsOptions lo;
  lo.max_iter = 2000;
  lo.max_eval = 4000;
  lo.history_size = 10;
  lo.line_search = true;
  lo.tolerance_change = 0;
  converges<T>("lbfgs", lbfgs, lo, threads);
  optimcore::ConjugateGradientOptions co;
  co.max_iter = 20000;
  co.max_eval = 40000;
  co.tolerance_change = 0;
  for (auto beta : {optimcore::CgBeta::kPolakRibierePlus, optimcore::CgBeta::kFletcherReeves,
                    optimcore::CgBeta::kHestenesStiefel, optimcore::CgBeta::kDaiYuan}) {
    co.beta = beta;
    converges<T>("cg", cg, co, threads);
  }
}

// A function that throws (or returns NaN) on its k-th call: x is restored, the error
// propagates, and a second state-carrying step still works.
template <class T>
void failure_restores() {
  for (int fail_at : {1, 2, 5}) {
    for (bool nan : {false, true}) {
      const std::size_t n = 10;
      std::vector<T> x = rosenbrock_start<T>(n);
      const std::vector<T> before = x;
      int calls = 0;
      optimcore::LbfgsOptions o;
      o.line_search = true;
      bool threw = false;
      try {
        optimcore::lbfgs_minimize(x.data(), n, [&](const T* p, T* g) {
          if (++calls == fail_at) {
            if (nan) return std::nan("");
            throw std::runtime_error("closure failed");
          }
          return rosenbrock(p, g, n);
        }, o);
      } catch (const optimcore::NonFiniteLoss&) {
        threw = nan;
      } catch (const std::runtime_error&) {
        threw = !nan;
      }
      CHECK(threw, "failure at call %d (nan=%d) did not propagate as expected", fail_at, nan);
      CHECK(x == before, "failure at call %d (nan=%d) left x changed", fail_at, nan);
    }
  }
  // The state of a step that fails is the state before it: a step after it continues as if
  // the failed step had not happened.
  const std::size_t n = 10;
  std::vector<T> a = rosenbrock_start<T>(n), b = a;
  T* da[1] = {a.data()};
  T* db[1] = {b.data()};
  const std::size_t sizes[1] = {n};
  optimcore::Segments<T> xa{da, sizes, 1}, xb{db, sizes, 1};
  optimcore::VectorPool<T> ma(n), mb(n);
  optimcore::LbfgsState<T> sa, sb;
  optimcore::LbfgsOptions o;
  o.history_size = 3;
  o.max_iter = 4;
  o.line_search = true;
  auto fa = [&](T* g) { return rosenbrock(a.data(), g, n); };
  auto fb = [&](T* g) { return rosenbrock(b.data(), g, n); };
  for (int k = 0; k < 3; ++k) {
    optimcore::lbfgs_step(xa, sa, o, fa, ma);
    optimcore::lbfgs_step(xb, sb, o, fb, mb);
  }
  int calls = 0;
  bool threw = false;
  try {
    optimcore::lbfgs_step(xb, sb, o, [&](T* g) {
      if (++calls == 4) throw std::runtime_error("late failure");
      return rosenbrock(b.data(), g, n);
    }, mb);
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CHECK(threw, "the step did not reach its 4th evaluation");
  CHECK(a == b, "a failed step left x changed");
  for (int k = 0; k < 2; ++k) {
    optimcore::lbfgs_step(xa, sa, o, fa, ma);
    optimcore::lbfgs_step(xb, sb, o, fb, mb);
  }
  CHECK(a == b, "a failed step changed the trajectory");
  CHECK(sa.func_evals == sb.func_evals && sa.n_iter == sb.n_iter,
        "a failed step changed the counters (%lld/%lld vs %lld/%lld)", (long long)sa.func_evals,
        (long long)sa.n_iter, (long long)sb.func_evals, (long long)sb.n_iter);
}

// Reductions have the same bits for any number of threads.
void reductions_are_deterministic() {
  const std::size_t n = (std::size_t(1) << 18) + 123;
  std::vector<double> a(n), b(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = std::sin(0.1 * i);
    b[i] = std::cos(0.37 * i) * 1e3;
  }
  const double one = optimcore::dot(a.data(), b.data(), n, 1);
  const double two = optimcore::dot(a.data(), b.data(), n, 2);
  CHECK(one == two, "dot differs between 1 and 2 threads: %.17g vs %.17g", one, two);
}

}  // namespace

int main() {
  for (int threads : {1, 2}) {
    all_converge<double>(threads);
    all_converge<float>(threads);
  }
  failure_restores<double>();
  failure_restores<float>();
  reductions_are_deterministic();
  if (failures == 0) std::printf("closure tests passed\n");
  return failures;
}
