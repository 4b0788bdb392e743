// Tests of the header-only core against deliberately simple scalar references (in long double,
// written from the papers' formulas), for every element type, several sizes and thread counts.
// No framework: each check prints what failed; the exit code is the number of failures.
#include <optimcore/optimcore.hpp>

#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

namespace {

using optimcore::bfloat16;

template <class T>
T from_double(double v) {
  return optimcore::store<T>(static_cast<optimcore::compute_t<T>>(v));
}
template <class T>
double to_double(T v) {
  return static_cast<double>(optimcore::load(v));
}

// Relative tolerance of one step for element type T.
template <class T>
double tolerance() {
  if (std::is_same<T, double>::value) return 1e-13;
  if (std::is_same<T, float>::value) return 1e-5;
  return 1.6e-2;  // 16-bit: two ULPs of bfloat16
}

// Values in these tests are O(1): an absolute floor of the same size as the relative tolerance
// absorbs cancellation near zero without hiding real errors.
bool close(double a, double b, double rtol) {
  return std::fabs(a - b) <= rtol * (std::fabs(b) + 1.0);
}

std::vector<double> random_values(std::size_t n, unsigned seed, double lo = -1, double hi = 1) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

// --- for_each_range: every element exactly once, for any sizes and thread counts -------------
void test_for_each_range() {
  const std::vector<std::vector<std::size_t>> cases = {
      {}, {0}, {1}, {0, 0, 5}, {100000}, {3, 70000, 0, 1, 65536}, std::vector<std::size_t>(2000, 256)};
  for (const auto& sizes : cases) {
    for (int threads : {1, 2, 3, 8}) {
      std::vector<std::vector<int>> seen(sizes.size());
      for (std::size_t i = 0; i < sizes.size(); ++i) seen[i].assign(sizes[i], 0);
      optimcore::for_each_range(
          sizes.size(), [&](std::size_t i) { return sizes[i]; }, threads,
          [&](std::size_t i, std::size_t b, std::size_t e) {
            for (std::size_t j = b; j < e; ++j) {
#pragma omp atomic
              seen[i][j] += 1;
            }
          });
      bool ok = true;
      for (const auto& s : seen)
        for (int c : s) ok = ok && c == 1;
      CHECK(ok, "for_each_range: %zu tensors, %d threads: not every element exactly once",
            sizes.size(), threads);
    }
  }
}

// for_each_range over more than 2**32 elements (no memory: the body only records ranges): the
// 64-bit offset and chunk arithmetic covers every element once, ranges straddle 2**31.
void test_for_each_range_64bit() {
  const std::vector<std::size_t> sizes = {(std::size_t(1) << 31) + 4099, 17,
                                          (std::size_t(1) << 32) + 3};
  for (int threads : {1, 2, 3}) {
    std::vector<std::vector<std::pair<std::size_t, std::size_t>>> ranges(sizes.size());
    optimcore::for_each_range(
        sizes.size(), [&](std::size_t i) { return sizes[i]; }, threads,
        [&](std::size_t i, std::size_t b, std::size_t e) {
#pragma omp critical
          ranges[i].emplace_back(b, e);
        });
    bool ok = true;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      std::sort(ranges[i].begin(), ranges[i].end());
      std::size_t next = 0;
      for (const auto& r : ranges[i]) {
        ok = ok && r.first == next && r.second > r.first;
        next = r.second;
      }
      ok = ok && next == sizes[i];
    }
    CHECK(ok, "for_each_range past 2**32 elements, %d threads: ranges do not tile", threads);
  }
}

// --- first_overlap: a scalar reference over every query and range ---------------------------
void test_first_overlap() {
  std::mt19937_64 gen(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<std::int64_t> begin, end;
    std::int64_t pos = 1 + static_cast<std::int64_t>(gen() % 16);
    const int count = static_cast<int>(gen() % 6);
    for (int k = 0; k < count; ++k) {
      begin.push_back(pos);
      pos += 1 + static_cast<std::int64_t>(gen() % 16);
      end.push_back(pos);
      pos += static_cast<std::int64_t>(gen() % 16);  // 0: touching ranges
    }
    std::vector<std::int64_t> qb, qn;
    for (int q = 0; q < 5; ++q) {
      qb.push_back(gen() % 9 == 0 ? -1 : static_cast<std::int64_t>(gen() % (pos + 8)));
      qn.push_back(static_cast<std::int64_t>(gen() % 12));
    }
    std::ptrdiff_t expected = -1;
    for (std::size_t q = 0; q < qb.size() && expected < 0; ++q)
      for (int k = 0; k < count; ++k)
        if (qb[q] >= 0 && qn[q] > 0 && qb[q] < end[k] && begin[k] < qb[q] + qn[q])
          expected = static_cast<std::ptrdiff_t>(q);
    const std::ptrdiff_t got = optimcore::first_overlap(begin.data(), end.data(), begin.size(),
                                                        qb.data(), qn.data(), qb.size());
    CHECK(got == expected, "first_overlap: trial %d: %td, expected %td", trial, got, expected);
  }
}

// --- Adam ------------------------------------------------------------------------------------
struct AdamRef {
  std::vector<long double> p, m, v, vmax;
};

void adam_reference(AdamRef& r, const std::vector<double>& grad, const optimcore::AdamOptions& o,
                    int step) {
  const long double bc1 = 1 - std::pow((long double)o.beta1, step);
  const long double bc2 = 1 - std::pow((long double)o.beta2, step);
  for (std::size_t j = 0; j < r.p.size(); ++j) {
    long double g = o.maximize ? -grad[j] : grad[j];
    if (o.weight_decay != 0) {
      if (o.decoupled_weight_decay) r.p[j] *= 1 - o.lr * o.weight_decay;
      else g += o.weight_decay * r.p[j];
    }
    r.m[j] = o.beta1 * r.m[j] + (1 - o.beta1) * g;
    r.v[j] = o.beta2 * r.v[j] + (1 - o.beta2) * g * g;
    long double v = r.v[j];
    if (o.amsgrad) v = r.vmax[j] = std::max(r.vmax[j], r.v[j]);
    // torch adds eps after the bias correction: sqrt(v) / sqrt(bc2) + eps.
    r.p[j] -= o.lr / bc1 * r.m[j] / (std::sqrt(v) / std::sqrt(bc2) + o.eps);
  }
}

template <class T, class S = T>
void test_adam(const optimcore::AdamOptions& o, std::size_t n, int threads, bool master) {
  const auto p0 = random_values(n, 1);
  std::vector<T> param(n);
  std::vector<S> m(n, from_double<S>(0)), v(n, from_double<S>(0)), vmax(n, from_double<S>(0)),
      master_p(n);
  for (std::size_t j = 0; j < n; ++j) {
    param[j] = from_double<T>(p0[j]);
    master_p[j] = from_double<S>(to_double(param[j]));
  }
  AdamRef r;
  for (std::size_t j = 0; j < n; ++j) r.p.push_back(to_double(param[j]));
  r.m.assign(n, 0);
  r.v.assign(n, 0);
  r.vmax.assign(n, 0);
  float step = 0;
  for (int t = 1; t <= 3; ++t) {
    const auto g = random_values(n, 100 + t);
    std::vector<T> grad(n);
    std::vector<double> gd(n);
    for (std::size_t j = 0; j < n; ++j) {
      grad[j] = from_double<T>(g[j]);
      gd[j] = to_double(grad[j]);
    }
    optimcore::AdamTensor<T, S> tensor;
    tensor.param = param.data();
    tensor.grad = grad.data();
    tensor.state[optimcore::Adam::kExpAvg] = m.data();
    tensor.state[optimcore::Adam::kExpAvgSq] = v.data();
    tensor.state[optimcore::Adam::kMaxExpAvgSq] = o.amsgrad ? vmax.data() : nullptr;
    tensor.step = &step;
    tensor.numel = n;
    tensor.master_param = master ? master_p.data() : nullptr;
    optimcore::adam_step(&tensor, 1, o, threads);
    adam_reference(r, gd, o, t);
    if (!master)  // the reference continues from the rounded parameter, like the kernel
      for (std::size_t j = 0; j < n; ++j) r.p[j] = to_double(param[j]);
  }
  CHECK(step == 3.0f, "adam: step is %g after 3 steps", step);
  const double tol = master ? 1e-5 : tolerance<T>();
  std::size_t bad = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double got = master ? to_double(master_p[j]) : to_double(param[j]);
    if (!close(got, (double)r.p[j], tol)) ++bad;
  }
  CHECK(bad == 0, "adam<%zu-byte, %zu-byte state> n=%zu threads=%d amsgrad=%d wd=%g decoupled=%d "
        "maximize=%d master=%d: %zu elements off", sizeof(T), sizeof(S), n, threads, o.amsgrad,
        o.weight_decay, o.decoupled_weight_decay, o.maximize, master, bad);
}

// --- SGD -------------------------------------------------------------------------------------
template <class T>
void test_sgd(const optimcore::SgdOptions& o, std::size_t n, int threads) {
  const auto p0 = random_values(n, 2);
  std::vector<T> param(n), buf(n);
  std::vector<long double> rp(n), rb(n);
  for (std::size_t j = 0; j < n; ++j) rp[j] = to_double(param[j] = from_double<T>(p0[j]));
  for (int t = 1; t <= 3; ++t) {
    const auto g = random_values(n, 200 + t);
    std::vector<T> grad(n);
    for (std::size_t j = 0; j < n; ++j) grad[j] = from_double<T>(g[j]);
    optimcore::SgdTensor<T> tensor;
    tensor.param = param.data();
    tensor.grad = grad.data();
    tensor.state[optimcore::Sgd::kMomentumBuffer] = buf.data();
    tensor.new_state = (t == 1) ? optimcore::Sgd::fills_new_state : 0u;
    tensor.numel = n;
    optimcore::sgd_step(&tensor, 1, o, threads);
    for (std::size_t j = 0; j < n; ++j) {
      long double d = to_double(grad[j]);
      if (o.maximize) d = -d;
      d += o.weight_decay * rp[j];
      if (o.momentum != 0) {
        rb[j] = t == 1 ? d : o.momentum * rb[j] + (1 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * rb[j] : rb[j];
      }
      rp[j] -= o.lr * d;
    }
  }
  std::size_t bad = 0;
  for (std::size_t j = 0; j < n; ++j)
    if (!close(to_double(param[j]), (double)rp[j], tolerance<T>() * 4)) ++bad;
  CHECK(bad == 0, "sgd<%zu-byte> n=%zu threads=%d momentum=%g nesterov=%d: %zu elements off",
        sizeof(T), n, threads, o.momentum, o.nesterov, bad);
}

void test_bfloat16_rounding() {
  CHECK(optimcore::to_bfloat16(1.0f).bits == 0x3F80, "bf16(1)");
  CHECK(optimcore::to_bfloat16(1.00390625f).bits == 0x3F80, "ties to even (down)");
  CHECK(optimcore::to_bfloat16(1.01171875f).bits == 0x3F82, "ties to even (up)");
  CHECK(std::isnan(optimcore::load(optimcore::to_bfloat16(NAN))), "NaN stays NaN");
  CHECK(std::isinf(optimcore::load(optimcore::to_bfloat16(INFINITY))), "inf stays inf");
}

// Stochastic rounding: always one of the two neighbours, and unbiased on average.
void test_stochastic_rounding() {
  const float x = 1.0f + 0.3f * 0.0078125f;  // 30% of the way from 1 to the next bfloat16
  double sum = 0;
  bool neighbours = true;
  const int n = 200000;
  for (int j = 0; j < n; ++j) {
    const float r = optimcore::load(
        optimcore::to_bfloat16_stochastic(x, optimcore::random_bits(12345u, std::uint32_t(j))));
    neighbours = neighbours && (r == 1.0f || r == 1.0078125f);
    sum += r;
  }
  CHECK(neighbours, "stochastic rounding left the two neighbours");
  CHECK(std::fabs(sum / n - x) < 2e-5, "stochastic rounding is biased: mean %.7f vs %.7f", sum / n,
        double(x));
  CHECK(std::isnan(optimcore::load(optimcore::to_bfloat16_stochastic(NAN, 0xFFFFu))), "NaN");
}

}  // namespace

int main() {
  test_for_each_range();
  test_for_each_range_64bit();
  test_first_overlap();
  test_bfloat16_rounding();
  test_stochastic_rounding();
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(37), std::size_t(70001)}) {
    for (int threads : {1, 2}) {
      for (bool amsgrad : {false, true})
        for (bool decoupled : {false, true})
          for (bool maximize : {false, true}) {
            optimcore::AdamOptions o;
            o.lr = 1e-2;
            o.weight_decay = 0.1;
            o.amsgrad = amsgrad;
            o.decoupled_weight_decay = decoupled;
            o.maximize = maximize;
            test_adam<double>(o, n, threads, false);
            test_adam<float>(o, n, threads, false);
            test_adam<bfloat16>(o, n, threads, false);
            test_adam<bfloat16, float>(o, n, threads, true);
          }
      for (double momentum : {0.0, 0.9})
        for (bool nesterov : {false, true}) {
          if (nesterov && momentum == 0) continue;
          optimcore::SgdOptions o;
          o.lr = 0.1;
          o.momentum = momentum;
          o.weight_decay = 0.01;
          o.nesterov = nesterov;
          test_sgd<double>(o, n, threads);
          test_sgd<float>(o, n, threads);
        }
    }
  }
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures;
}
