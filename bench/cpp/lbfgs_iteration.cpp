// L-BFGS from C++: time per iteration of optimcore::lbfgs_step (a cheap quadratic with a
// fresh linear term per evaluation, so the run never converges and the history stays full),
// and the two-loop recursion against the compact representation it could use instead.
//
//   g++ -std=c++17 -O3 -march=x86-64-v4 -fopenmp -fno-math-errno -fno-trapping-math \
//       -ffp-contract=off -I../../csrc/include lbfgs_iteration.cpp -o lbfgs_iteration
//   ./lbfgs_iteration N HISTORY THREADS
//
// The compact form (Byrd, Nocedal & Schnabel 1994, as GEMV-shaped passes) computes the same
// direction from three passes over the history (s_i.g and s_i.y_new; q = -g - sum al_j y_j with
// y_i.r; r + sum c_j s_j) instead of the fused two-loop's 2m + 1, reading it ~3 times instead of
// ~8. It is written here, not in the core, because it measured slower on the machine the core
// was tuned on (see README: its m concurrent streams defeat the prefetchers).
#include <optimcore/optimcore.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// d = -H g through the compact representation; sy[i * m + j] = s_i . y_j (i < j).
void compact_direction(double* d, const double* g, const std::vector<double*>& S,
                       const std::vector<double*>& Y, const std::vector<double>& ro, double h,
                       const std::vector<double>& sy, std::size_t n, int threads) {
  const std::size_t m = S.size(), block = 4096;
  using Vec = std::vector<double>;
  const auto add = [](Vec a, const Vec& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  const Vec A = optimcore::reduce_blocks(n, threads, Vec(m, 0.0), [&](std::size_t lo, std::size_t hi) {
    Vec part(m, 0.0);
    for (std::size_t b = lo; b < hi; b += block) {
      const std::size_t e = std::min(hi, b + block);
      for (std::size_t i = 0; i < m; ++i) part[i] += optimcore::dot(S[i] + b, g + b, e - b, 1);
    }
    return part;
  }, add);
  std::vector<double> al(m), c(m);
  for (std::size_t k = m; k-- > 0;) {
    double sq = -A[k];
    for (std::size_t j = k + 1; j < m; ++j) sq -= al[j] * sy[k * m + j];
    al[k] = sq * ro[k];
  }
  const Vec B = optimcore::reduce_blocks(n, threads, Vec(m, 0.0), [&](std::size_t lo, std::size_t hi) {
    Vec part(m, 0.0);
    for (std::size_t b = lo; b < hi; b += block) {
      const std::size_t e = std::min(hi, b + block);
      for (std::size_t j = b; j < e; ++j) d[j] = -g[j];
      for (std::size_t k = m; k-- > 0;)
        for (std::size_t j = b; j < e; ++j) d[j] = optimcore::madd(-al[k], Y[k][j], d[j]);
      for (std::size_t j = b; j < e; ++j) d[j] *= h;
      for (std::size_t i = 0; i < m; ++i) part[i] += optimcore::dot(Y[i] + b, d + b, e - b, 1);
    }
    return part;
  }, add);
  for (std::size_t i = 0; i < m; ++i) {
    double yr = B[i];
    for (std::size_t j = 0; j < i; ++j) yr += c[j] * sy[j * m + i];
    c[i] = al[i] - yr * ro[i];
  }
  optimcore::reduce_blocks(n, threads, 0.0, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t b = lo; b < hi; b += block) {
      const std::size_t e = std::min(hi, b + block);
      for (std::size_t k = 0; k < m; ++k)
        for (std::size_t j = b; j < e; ++j) d[j] = optimcore::madd(c[k], S[k][j], d[j]);
    }
    return 0.0;
  }, [](double a, double) { return a; });
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const long h = argc > 2 ? std::atol(argv[2]) : 10;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;

  // 1. Whole iterations of lbfgs_step.
  std::vector<double> c(n), x(n, 0.5);
  for (std::size_t i = 0; i < n; ++i) c[i] = std::pow(1e4, double(i) / double(n - 1));
  double* data[1] = {x.data()};
  const std::size_t sizes[1] = {n};
  const optimcore::Segments<double> segments{data, sizes, 1};
  optimcore::VectorPool<double> memory(n);
  optimcore::LbfgsState<double> state;
  optimcore::LbfgsOptions o;
  o.history_size = h;
  o.tolerance_grad = 0;
  o.tolerance_change = 0;
  o.lr = 1e-4;
  unsigned seed = 1;
  double in_f = 0;
  const auto f = [&](double* g) {
    const auto t0 = Clock::now();
    seed = seed * 1664525u + 1013904223u;
    const double b = 1 + (seed >> 8) * 1e-8;
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      s += 0.5 * c[i] * x[i] * x[i] - b * x[i];
      g[i] = c[i] * x[i] - b;
    }
    in_f += seconds_since(t0);
    return s;
  };
  for (long k = 0; k < (h + 25) / 20; ++k) optimcore::lbfgs_step(segments, state, o, f, memory, threads);
  in_f = 0;
  const int steps = 3;
  auto t0 = Clock::now();
  for (int k = 0; k < steps; ++k) optimcore::lbfgs_step(segments, state, o, f, memory, threads);
  const double per_iteration = (seconds_since(t0) - in_f) / (steps * o.max_iter);
  std::printf("n=%zu history=%ld threads=%d: lbfgs_step %.1f us per iteration (excluding f)\n", n,
              h, threads, per_iteration * 1e6);

  // 2. The direction alone: fused two-loop against the compact representation, on the history
  // the run left.
  const std::size_t m = state.old_dirs.size();
  std::vector<double> d(n), g(n), sy(m * m), ro(m);
  f(g.data());
  for (std::size_t i = 0; i < m; ++i) {
    ro[i] = state.ro[i].v;
    for (std::size_t j = i + 1; j < m; ++j)
      sy[i * m + j] = optimcore::dot(state.old_stps[i], state.old_dirs[j], n, threads);
  }
  std::vector<optimcore::Number<double>> al(m);
  double fused = 1e30, compact = 1e30;
  for (int r = 0; r < 5; ++r) {
    t0 = Clock::now();
    optimcore::detail::two_loop(d.data(), g.data(), state, al, n, threads);
    fused = std::min(fused, seconds_since(t0));
    t0 = Clock::now();
    compact_direction(d.data(), g.data(), state.old_stps, state.old_dirs, ro, state.H_diag.v, sy,
                      n, threads);
    compact = std::min(compact, seconds_since(t0));
  }
  std::printf("direction, %zu pairs: fused two-loop %.1f us, compact representation %.1f us\n", m,
              fused * 1e6, compact * 1e6);
  return 0;
}
