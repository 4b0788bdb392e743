// Cost per element of optimcore's kernels on one thread, float32 against bfloat16, next to bare
// loops that isolate the bfloat16 conversions: shows that 16-bit Adam/SGD are bound by the
// instructions of widening and round-to-nearest-even, not by memory. Build and run with
// bench/cpp/run.sh.
#include <optimcore/optimcore.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

using namespace optimcore;

template <class F>
double ns_per_element(std::size_t n, F f) {
  std::vector<double> t;
  for (int r = 0; r < 9; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[4] * 1e9 / static_cast<double>(n);
}

template <class T>
void row(const char* name, std::size_t n) {
  std::vector<T> p(n, store<T>(1.f)), g(n, store<T>(.5f)), m(n, store<T>(0.f)),
      v(n, store<T>(0.f));
  float step = 0;
  AdamTensor<T> a;
  a.param = p.data();
  a.grad = g.data();
  a.state[optimcore::Adam::kExpAvg] = m.data();
  a.state[optimcore::Adam::kExpAvgSq] = v.data();
  a.step = &step;
  a.numel = n;
  SgdTensor<T> s;
  s.param = p.data();
  s.grad = g.data();
  s.state[optimcore::Sgd::kMomentumBuffer] = m.data();
  s.numel = n;
  AdamOptions ao;
  SgdOptions so;
  so.momentum = 0.9;
  const double adam = ns_per_element(n, [&] { adam_step(&a, 1, ao, 1); });
  const double sgd = ns_per_element(n, [&] { sgd_step(&s, 1, so, 1); });
  T* P = p.data();
  const T* G = g.data();
  const double axpy = ns_per_element(n, [&] {
    for (std::size_t j = 0; j < n; ++j) P[j] = store<T>(load(P[j]) + load(G[j]) * 1e-3f);
  });
  const double bytes = sizeof(T);
  std::printf("| %s | %.3f (%.1f GB/s) | %.3f (%.1f GB/s) | %.3f (%.1f GB/s) |\n", name, adam,
              7 * bytes / adam, sgd, 5 * bytes / sgd, axpy, 3 * bytes / axpy);
}

int main() {
  const std::size_t n = std::size_t(16) << 20;
  std::printf("16M elements, 1 thread, ns per element (bytes moved / time)\n\n");
  std::printf("| type | Adam step | SGD momentum step | bare p += 1e-3 * g |\n|---|---|---|---|\n");
  row<float>("float32", n);
  row<bfloat16>("bfloat16", n);
}
