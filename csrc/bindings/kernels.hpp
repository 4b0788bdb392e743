// Kernel table of one SIMD level. kernels.cpp is compiled once per level (see CMakeLists.txt);
// module.cpp picks a table at import from CPUID. No math here: only instantiation and unpacking.
#pragma once

#include <cstddef>
#include <cstdint>

#include "optimcore/adam.hpp"
#include "optimcore/sgd.hpp"

namespace optimcore::bindings {

// Element type codes, shared with python/optimcore/_optimizer.py (_DTYPE_CODES).
enum DType : int { kFloat32 = 0, kFloat64 = 1, kBFloat16 = 2, kFloat16 = 3 };

// Row layout of the int64 tensor tables built (and cached) by the Python layer, one row per
// parameter tensor, the same for every rule: pointers are data_ptr() values, 0 means "absent";
// a rule's state tensors follow in the order of its Python class's _state_keys. Gradients change
// every step, so their pointers come in a separate array, one per row.
enum Column : int { kParam, kStep, kNumel, kMaster, kFlags, kState0 };
// kFlags bits.
enum Flag : std::int64_t { kStateIsNew = 1 };
// A gradient pointer of kNoGrad: the row takes no part in this step (its parameter has no
// gradient now). The kernel skips it: no state, step count or parameter is touched.
constexpr std::int64_t kNoGrad = -1;

struct Kernels {
  const char* name;
  // table: `count` rows of kState0 + (number of the rule's state tensors) columns; grads:
  // `count` gradient pointers (kNoGrad: skip the row).
  void (*adam)(const std::int64_t* table, const std::int64_t* grads, std::size_t count, int dtype,
               bool master, const AdamOptions& options, int num_threads);
  void (*sgd)(const std::int64_t* table, const std::int64_t* grads, std::size_t count, int dtype,
              bool master, const SgdOptions& options, int num_threads);
};

extern const Kernels kernels_baseline;
#if defined(OPTIMCORE_HAVE_X86_LEVELS)
extern const Kernels kernels_avx2;
extern const Kernels kernels_avx512;
#endif

}  // namespace optimcore::bindings
