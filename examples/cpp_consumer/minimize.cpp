// A C++ program minimizing a function with optimcore's L-BFGS and nonlinear conjugate gradient,
// without Python or libtorch: logistic regression on a synthetic, linearly non-separable
// dataset, then the 100-dimensional extended Rosenbrock function. Prints each result and exits
// non-zero if either method misses its tolerance.
#include <optimcore/optimcore.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  // Logistic regression: 2000 samples, 20 features plus a bias, labels from a noisy linear rule.
  const std::size_t samples = 2000, features = 21;
  std::mt19937 gen(7);
  std::normal_distribution<double> normal;
  std::vector<double> X(samples * features), y(samples), w_true(features);
  for (double& v : w_true) v = normal(gen);
  for (std::size_t i = 0; i < samples; ++i) {
    double z = 0;
    for (std::size_t j = 0; j < features; ++j) {
      X[i * features + j] = j + 1 == features ? 1.0 : normal(gen);
      z += X[i * features + j] * w_true[j];
    }
    y[i] = z + 0.5 * normal(gen) > 0 ? 1.0 : 0.0;
  }
  const double lambda = 1e-3;
  auto logistic = [&](const double* w, double* grad) {
    double loss = 0;
    for (std::size_t j = 0; j < features; ++j) grad[j] = lambda * w[j];
    for (std::size_t i = 0; i < samples; ++i) {
      const double* x = &X[i * features];
      double z = 0;
      for (std::size_t j = 0; j < features; ++j) z += x[j] * w[j];
      loss += (z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z))) - y[i] * z;
      const double p = 1 / (1 + std::exp(-z));
      for (std::size_t j = 0; j < features; ++j) grad[j] += (p - y[i]) * x[j] / samples;
    }
    double reg = 0;
    for (std::size_t j = 0; j < features; ++j) reg += w[j] * w[j];
    return loss / samples + 0.5 * lambda * reg;
  };

  optimcore::LbfgsOptions lo;  // torch.optim.LBFGS's arguments; here a budget to converge
  lo.max_iter = 500;
  lo.max_eval = 1000;
  lo.history_size = 10;
  lo.line_search = true;  // strong Wolfe
  lo.tolerance_grad = 1e-8;
  lo.tolerance_change = 0;  // stop on the gradient only
  std::vector<double> w(features, 0.0);
  const auto r1 = optimcore::lbfgs_minimize(w.data(), features, logistic, lo);
  std::printf("L-BFGS, logistic regression: loss %.10f, %lld evaluations, %lld iterations (%s)\n",
              r1.loss, (long long)r1.evaluations, (long long)r1.iterations,
              optimcore::stop_reason_name(r1.reason));

  const std::size_t n = 100;
  auto rosenbrock = [n](const double* x, double* g) {
    double f = 0;
    for (std::size_t i = 0; i < n; i += 2) {
      const double u = x[i + 1] - x[i] * x[i], v = 1 - x[i];
      f += 100 * u * u + v * v;
      g[i] = -400 * x[i] * u - 2 * v;
      g[i + 1] = 200 * u;
    }
    return f;
  };
  optimcore::ConjugateGradientOptions co;  // beta = PR+, c2 = 0.1 by default
  co.max_iter = 5000;
  co.max_eval = 10000;
  co.tolerance_grad = 1e-6;
  co.tolerance_change = 0;
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; i += 2) {
    x[i] = -1.2;
    x[i + 1] = 1.0;
  }
  const auto r2 = optimcore::cg_minimize(x.data(), n, rosenbrock, co);
  double err = 0;
  for (double v : x) err = std::fmax(err, std::fabs(v - 1));
  std::printf("Conjugate gradient, 100-D Rosenbrock: f %.3g, max|x - 1| %.2g, %lld evaluations "
              "(%s)\n", r2.loss, err, (long long)r2.evaluations,
              optimcore::stop_reason_name(r2.reason));
  const bool ok = r1.reason == optimcore::StopReason::kGradientTolerance &&
                  r2.reason == optimcore::StopReason::kGradientTolerance && err < 1e-5;
  return ok ? 0 : 1;
}
