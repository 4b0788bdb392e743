// One Adam step on `tensors` float32 tensors of n / tensors elements: the median time over
// `reps` steps, printed as JSON. Built twice (CMakeLists.txt): through optimcore::Optimizer
// (liboptimcore: the wheel's kernels, dispatched at run time) and through the header-only core
// (optimcore::adam_step, compiled with this program's flags).
//   consumer_{library,header_only} <n> <tensors> <reps> <threads>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(OPTIMCORE_BENCH_HEADER_ONLY)
#include "optimcore/optimcore.hpp"
#else
#include "optimcore/optimizer.hpp"
#endif

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (1u << 24);
  const std::size_t tensors = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 20;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
  const std::size_t each = n / tensors;
  std::vector<std::vector<float>> params(tensors), grads(tensors);
  for (std::size_t i = 0; i < tensors; ++i) {
    params[i].assign(each, 0.5f);
    grads[i].resize(each);
    for (std::size_t j = 0; j < each; ++j) grads[i][j] = static_cast<float>((j % 17) - 8) / 8.0f;
  }
#if defined(OPTIMCORE_BENCH_HEADER_ONLY)
  std::vector<std::vector<float>> m(tensors), v(tensors);
  std::vector<float> steps(tensors, 0.0f);
  std::vector<optimcore::AdamTensor<float>> rows(tensors);
  for (std::size_t i = 0; i < tensors; ++i) {
    m[i].assign(each, 0.0f);
    v[i].assign(each, 0.0f);
    rows[i].param = params[i].data();
    rows[i].grad = grads[i].data();
    rows[i].step = &steps[i];
    rows[i].numel = each;
    rows[i].state[optimcore::Adam::kExpAvg] = m[i].data();
    rows[i].state[optimcore::Adam::kExpAvgSq] = v[i].data();
  }
  optimcore::AdamOptions o;
  o.lr = 1e-3;
  auto step = [&] { optimcore::adam_step(rows.data(), rows.size(), o, threads); };
  const char* path = "optimcore::core (header-only, this program's flags)";
#else
  std::vector<optimcore::Param> ps;
  for (std::size_t i = 0; i < tensors; ++i) ps.emplace_back(params[i], grads[i]);
  optimcore::Optimizer opt("Adam", {{ps, {}}}, {{"lr", 1e-3}});
  opt.set_num_threads(threads);
  auto step = [&] { opt.step(); };
  const char* path = "optimcore::optimcore (liboptimcore)";
#endif
  step();  // first step: state allocation
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  std::printf("{\"path\": \"%s\", \"n\": %zu, \"tensors\": %zu, \"threads\": %d, "
              "\"median_ms\": %.4f, \"check\": %.9g}\n",
              path, n, tensors, threads, times[times.size() / 2] * 1e3,
              static_cast<double>(params[0][1]));
  return 0;
}
