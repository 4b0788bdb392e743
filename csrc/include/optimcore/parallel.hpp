// optimcore/parallel.hpp: one parallel pass over all elements of a list of tensors.
//
// A group step is a single parallel region partitioned by elements, not by tensors: 2000 small
// tensors and one large tensor split the same way, and no thread idles on a short tensor.
// Small work runs serially without entering the OpenMP runtime (a parallel region costs ~1 us).
#pragma once

#include <cstddef>
#include <memory>

#include "optimcore/common.hpp"

OPTIMCORE_NAMESPACE_BEGIN

// Elements each thread must have before a second thread is worth waking.
constexpr std::size_t kParallelGrain = std::size_t(1) << 15;
// Chunks start on multiples of this many elements (>= one cache line for every type), so two
// threads never write the same cache line of a tensor that starts on a chunk boundary.
constexpr std::size_t kChunkAlign = 64;

// Number of threads to use for `total` elements when `max_threads` are allowed.
inline int threads_for(std::size_t total, int max_threads) {
  if (max_threads <= 1 || total < 2 * kParallelGrain) return 1;
  const std::size_t by_work = total / kParallelGrain;
  return by_work < static_cast<std::size_t>(max_threads) ? static_cast<int>(by_work) : max_threads;
}

// Calls body(tensor_index, begin, end) for disjoint element ranges that together cover every
// element of every tensor exactly once. `numel(i)` gives the size of tensor i. Each call is a
// contiguous range inside one tensor. Work is split into chunks of at least kParallelGrain
// elements, about four per thread, handed out dynamically.
template <class Numel, class Body>
void for_each_range(std::size_t count, Numel numel, int max_threads, Body body) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += numel(i);
  const int nthreads = threads_for(total, max_threads);
  if (nthreads <= 1) {
    for (std::size_t i = 0; i < count; ++i)
      if (numel(i) != 0) body(i, std::size_t(0), numel(i));
    return;
  }
#if defined(_OPENMP)
  // Prefix sums let a chunk find its first tensor by binary search.
  std::unique_ptr<std::size_t[]> offsets(new std::size_t[count + 1]);
  offsets[0] = 0;
  for (std::size_t i = 0; i < count; ++i) offsets[i + 1] = offsets[i] + numel(i);
  // Chunks are handed out dynamically, several per thread: a thread whose core is busy with
  // other work (the machine is shared) takes fewer, instead of the step waiting for it.
  const std::size_t per_thread = total / static_cast<std::size_t>(nthreads);
  std::size_t chunk = per_thread / 4 > kParallelGrain ? per_thread / 4 : kParallelGrain;
  chunk = (chunk + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
  const long long chunks = static_cast<long long>((total + chunk - 1) / chunk);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
  for (long long c = 0; c < chunks; ++c) {
    std::size_t pos = static_cast<std::size_t>(c) * chunk;
    const std::size_t stop = pos + chunk < total ? pos + chunk : total;
    // Last tensor i with offsets[i] <= pos.
    std::size_t lo = 0, hi = count;
    while (hi - lo > 1) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (offsets[mid] <= pos) lo = mid; else hi = mid;
    }
    std::size_t i = lo;
    while (pos < stop) {
      const std::size_t end = stop < offsets[i + 1] ? stop : offsets[i + 1];
      if (end > pos) body(i, pos - offsets[i], end - offsets[i]);
      pos = end;
      ++i;
    }
  }
#else
  for (std::size_t i = 0; i < count; ++i)
    if (numel(i) != 0) body(i, std::size_t(0), numel(i));
#endif
}

// For rules whose update of a tensor needs reductions over it (SWATS, LAMB): calls
// one(i, threads) for every tensor i. Tensors of at least 2 * kParallelGrain elements go one
// after another, each with all max_threads (to split inside, e.g. with reduce_blocks); the
// smaller ones are spread over the threads whole, one thread each.
template <class Numel, class One>
void for_each_tensor(std::size_t count, Numel numel, int max_threads, One one) {
  std::unique_ptr<std::size_t[]> small(new std::size_t[count > 0 ? count : 1]);
  std::size_t n_small = 0, small_total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (numel(i) >= 2 * kParallelGrain) {
      one(i, max_threads);
    } else {
      small[n_small++] = i;
      small_total += numel(i);
    }
  }
  const int nthreads = threads_for(small_total, max_threads);
#if defined(_OPENMP)
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 16) if (nthreads > 1)
#endif
  for (long long k = 0; k < static_cast<long long>(n_small); ++k) one(small[k], 1);
}

// The pass every rule's step makes: one parallel pass over all elements of `count` tensors,
// compiled once per storage variant (see with_storage). Calls body(master, sr, i, begin, end,
// stream) with std::bool_constant `master` (float32 master copies) and `sr` (stochastic
// rounding), a range of tensor i, and that tensor's random stream (0 without sr).
template <class T, class S, std::size_t N, std::size_t M, class Body>
void for_each_param_range(const ParamState<T, S, N, M>* tensors, std::size_t count,
                          const StepOptions& o, int num_threads, Body body) {
  if (count == 0) return;
  with_storage<T, S>(tensors[0].master_param != nullptr, o.stochastic_rounding,
                     [&](auto master, auto sr) {
    for_each_range(
        count, [&](std::size_t i) { return tensors[i].numel; }, num_threads,
        [&](std::size_t i, std::size_t b, std::size_t e) {
          body(master, sr, i, b, e, decltype(sr)::value ? tensor_stream(o.seed, i) : 0u);
        });
  });
}

OPTIMCORE_NAMESPACE_END
