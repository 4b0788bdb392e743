// Minimises f(x) = 0.5 * ||x - target||^2 over 100,000 parameters with optimcore's AdamW and
// SGD + Nesterov momentum, straight on std::vector buffers. Exits non-zero if either fails.
#include <optimcore/optimcore.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

template <class Step>
double fit(Step step, int iterations) {
  const std::size_t n = 100000;
  std::vector<float> x(n, 0.0f), grad(n), target(n);
  for (std::size_t i = 0; i < n; ++i) target[i] = std::sin(0.001f * static_cast<float>(i));
  for (int it = 0; it < iterations; ++it) {
    for (std::size_t i = 0; i < n; ++i) grad[i] = x[i] - target[i];
    step(x.data(), grad.data(), n);
  }
  double err = 0;
  for (std::size_t i = 0; i < n; ++i) err = std::fmax(err, std::fabs(x[i] - target[i]));
  return err;
}

int main() {
  std::vector<float> exp_avg(100000), exp_avg_sq(100000), momentum(100000);
  float step_count = 0;
  optimcore::AdamOptions adam;
  adam.lr = 0.05;
  adam.weight_decay = 1e-4;
  adam.decoupled_weight_decay = true;  // AdamW
  const double adam_err = fit(
      [&](float* x, const float* g, std::size_t n) {
        optimcore::AdamTensor<float> t;
        t.param = x;
        t.grad = g;
        t.state[optimcore::Adam::kExpAvg] = exp_avg.data();
        t.state[optimcore::Adam::kExpAvgSq] = exp_avg_sq.data();
        t.step = &step_count;
        t.numel = n;
        optimcore::adam_step(&t, 1, adam, /*num_threads=*/2);
      },
      300);

  optimcore::SgdOptions sgd;
  sgd.lr = 0.1;
  sgd.momentum = 0.9;
  sgd.nesterov = true;
  bool first = true;
  const double sgd_err = fit(
      [&](float* x, const float* g, std::size_t n) {
        optimcore::SgdTensor<float> t;
        t.param = x;
        t.grad = g;
        t.state[optimcore::Sgd::kMomentumBuffer] = momentum.data();
        t.new_state = (first) ? optimcore::Sgd::fills_new_state : 0u;
        t.numel = n;
        optimcore::sgd_step(&t, 1, sgd, 2);
        first = false;
      },
      200);

  std::printf("AdamW max error %.2e after 300 steps; SGD+Nesterov max error %.2e after 200 steps\n",
              adam_err, sgd_err);
  return (adam_err < 1e-2 && sgd_err < 1e-4) ? 0 : 1;
}
