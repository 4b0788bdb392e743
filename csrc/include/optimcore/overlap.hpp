// optimcore/overlap.hpp: does any of a list of memory ranges touch memory a step writes?
//
// A step's kernels write parameters and state in parallel and read gradients; the caller keeps
// the written memory as sorted, disjoint [begin, end) byte ranges (built once per parameter
// table) and asks, every step, whether a gradient lies in it. Bookkeeping, not math: no SIMD.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "optimcore/common.hpp"

OPTIMCORE_NAMESPACE_BEGIN

// Index of the first query [query_begin[i], query_begin[i] + query_bytes[i]) that overlaps one
// of the `count` ranges [begin[k], end[k]), or -1 if none does. Preconditions: `begin` is
// sorted ascending and the ranges are disjoint (end[k] <= begin[k + 1]). Queries with a negative
// begin (a row taking no part in the step) or zero bytes (an empty tensor) are skipped.
// O(queries * log(count)).
inline std::ptrdiff_t first_overlap(const std::int64_t* begin, const std::int64_t* end,
                                    std::size_t count, const std::int64_t* query_begin,
                                    const std::int64_t* query_bytes, std::size_t queries) {
  for (std::size_t i = 0; i < queries; ++i) {
    const std::int64_t qb = query_begin[i];
    const std::int64_t qe = qb + query_bytes[i];
    if (qb < 0 || qe <= qb) continue;
    // The last range that begins before the query ends is the only candidate (ranges are
    // disjoint and sorted, so their ends are sorted too).
    const std::int64_t* it = std::lower_bound(begin, begin + count, qe);
    if (it == begin) continue;
    const std::size_t k = static_cast<std::size_t>(it - begin) - 1;
    if (end[k] > qb) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

OPTIMCORE_NAMESPACE_END
