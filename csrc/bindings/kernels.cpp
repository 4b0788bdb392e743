// Instantiates every rule for every element type at one SIMD level. CMake compiles this file
// once per level with that level's -march and OPTIMCORE_KERNELS_NAME=kernels_<level>.
#include "kernels.hpp"

#include <vector>

#ifndef OPTIMCORE_KERNELS_NAME
#error "compile kernels.cpp with -DOPTIMCORE_KERNELS_NAME=kernels_<level>"
#endif
#define OPTIMCORE_STR2(x) #x
#define OPTIMCORE_STR(x) OPTIMCORE_STR2(x)

namespace optimcore::bindings {
namespace {

template <class P>
P* ptr(std::int64_t v) {
  return reinterpret_cast<P*>(static_cast<std::uintptr_t>(v));
}

template <class T, class S>
void adam_typed(const std::int64_t* table, const std::int64_t* grads, std::size_t count,
                const AdamOptions& o, int nt) {
  std::vector<AdamTensor<T, S>> tensors;
  tensors.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (grads[i] == kNoGrad) continue;
    const std::int64_t* row = table + i * (kState0 + 3);
    AdamTensor<T, S>& t = tensors.emplace_back();
    t.param = ptr<T>(row[kParam]);
    t.grad = ptr<const T>(grads[i]);
    t.step = ptr<float>(row[kStep]);
    t.numel = static_cast<std::size_t>(row[kNumel]);
    t.master_param = ptr<S>(row[kMaster]);
    t.exp_avg = ptr<S>(row[kState0]);
    t.exp_avg_sq = ptr<S>(row[kState0 + 1]);
    t.max_exp_avg_sq = ptr<S>(row[kState0 + 2]);
  }
  adam_step(tensors.data(), tensors.size(), o, nt);
}

template <class T, class S>
void sgd_typed(const std::int64_t* table, const std::int64_t* grads, std::size_t count,
               const SgdOptions& o, int nt) {
  std::vector<SgdTensor<T, S>> tensors;
  tensors.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (grads[i] == kNoGrad) continue;
    const std::int64_t* row = table + i * (kState0 + 1);
    SgdTensor<T, S>& t = tensors.emplace_back();
    t.param = ptr<T>(row[kParam]);
    t.grad = ptr<const T>(grads[i]);
    t.numel = static_cast<std::size_t>(row[kNumel]);
    t.master_param = ptr<S>(row[kMaster]);
    t.momentum_buffer = ptr<S>(row[kState0]);
    t.momentum_buffer_is_new = (row[kFlags] & kStateIsNew) != 0;
  }
  sgd_step(tensors.data(), tensors.size(), o, nt);
}

// Calls f.template operator()<T, S>() for the element type code; 16-bit types keep float32
// state when master weights are on.
template <class F>
void dispatch_dtype(int dtype, bool master, F&& f) {
  switch (dtype) {
    case kFloat32: f(float{}, float{}); break;
    case kFloat64: f(double{}, double{}); break;
    case kBFloat16: master ? f(bfloat16{}, float{}) : f(bfloat16{}, bfloat16{}); break;
#if OPTIMCORE_HAS_FLOAT16
    case kFloat16: master ? f(float16{}, float{}) : f(float16{}, float16{}); break;
#endif
    default: break;  // unreachable: the Python layer validates dtypes before calling
  }
}

void adam(const std::int64_t* table, const std::int64_t* grads, std::size_t count, int dtype,
          bool master, const AdamOptions& o, int nt) {
  dispatch_dtype(dtype, master, [&](auto t, auto s) {
    adam_typed<decltype(t), decltype(s)>(table, grads, count, o, nt);
  });
}

void sgd(const std::int64_t* table, const std::int64_t* grads, std::size_t count, int dtype,
         bool master, const SgdOptions& o, int nt) {
  dispatch_dtype(dtype, master, [&](auto t, auto s) {
    sgd_typed<decltype(t), decltype(s)>(table, grads, count, o, nt);
  });
}

}  // namespace

extern const Kernels OPTIMCORE_KERNELS_NAME = {OPTIMCORE_STR(OPTIMCORE_KERNELS_NAME), &adam, &sgd};

}  // namespace optimcore::bindings
