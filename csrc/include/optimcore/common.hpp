// optimcore/common.hpp: element types and the load/compute/store convention shared by all rules.
//
// Every rule computes in compute_t<T>: float for float and the 16-bit types, double for double.
// 16-bit values are widened on load and rounded to nearest-even on store, so one rule body
// serves every element type.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__GNUC__) || defined(__clang__)
#define OPTIMCORE_RESTRICT __restrict__
#define OPTIMCORE_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define OPTIMCORE_RESTRICT __restrict
#define OPTIMCORE_INLINE __forceinline
#else
#define OPTIMCORE_RESTRICT
#define OPTIMCORE_INLINE inline
#endif

// Code of the core lives in an inline namespace named by OPTIMCORE_LEVEL_NAMESPACE. A program that
// compiles the core several times for several instruction sets (as optimcore's Python extension
// does) gives each build its own name, so the linker can never merge an AVX2 instantiation into
// the baseline path. Users just write optimcore::adam_step.
#ifndef OPTIMCORE_LEVEL_NAMESPACE
#define OPTIMCORE_LEVEL_NAMESPACE portable
#endif
#define OPTIMCORE_NAMESPACE_BEGIN \
  namespace optimcore {           \
  inline namespace OPTIMCORE_LEVEL_NAMESPACE {
#define OPTIMCORE_NAMESPACE_END \
  }                             \
  }

// x != x is the cheapest NaN test (one compare instruction), but -ffast-math / -ffinite-math-only
// lets the compiler assume it false: there the bit test is used.
#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__)
#define OPTIMCORE_IS_NAN_BITS(u, f) (((u) & 0x7FFFFFFFu) > 0x7F800000u)
#else
#define OPTIMCORE_IS_NAN_BITS(u, f) ((f) != (f))
#endif

namespace optimcore {

// What every rule's options carry besides its hyperparameters: plain data, the same type in
// every SIMD-level build.
struct StepOptions {
  // bfloat16 parameters only: round the updated parameter stochastically (see
  // to_bfloat16_stochastic), with random bits from `seed`, the tensor's index and the element.
  bool stochastic_rounding = false;
  std::uint64_t seed = 0;
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// One parameter tensor and its state, as every rule's step takes it: `numel` elements of
// param, grad and each state tensor, densely stored in the same order. T is the
// parameter/gradient type, S the state type (T, or float for a 16-bit T with master weights),
// N the rule's number of state tensors, in the order of its description's `state_names`
// (options may leave some unused: nullptr). `step` is the tensor's float32 step count (rules
// that count steps increment it), `master_param` the float32 master copy of a 16-bit parameter
// or nullptr (then the update reads and writes it and `param` gets the rounded result), and
// bit k of `new_state` says state[k] holds no values yet: the rule fills it on this step
// (e.g. SGD's momentum buffer starts as the gradient). Pointers of one tensor must not alias.
// M is the rule's number of per-tensor scalar states (0-d float32 tensors in torch, such as
// NAdam's mu_product or ASGD's eta and mu), in the order of its `scalar_state_names`.
template <class T, class S, std::size_t N, std::size_t M = 0>
struct ParamState {
  T* param = nullptr;
  const T* grad = nullptr;
  S* state[N > 0 ? N : 1] = {};
  float* step = nullptr;
  std::size_t numel = 0;
  S* master_param = nullptr;
  std::uint32_t new_state = 0;
  float* scalar[M > 0 ? M : 1] = {};
};

// A rule description's per-tensor scalar states: `scalar_state_names` if it declares them.
template <class Rule, class = void>
struct ScalarStates {
  static constexpr std::size_t count = 0;
  static constexpr const char* const* names = nullptr;
};
template <class Rule>
struct ScalarStates<Rule, std::void_t<decltype(Rule::scalar_state_names)>> {
  static constexpr std::size_t count =
      sizeof(Rule::scalar_state_names) / sizeof(Rule::scalar_state_names[0]);
  static constexpr const char* const* names = Rule::scalar_state_names;
};

// Storage-only 16-bit types: the bits of a torch.bfloat16 / torch.float16 element.
struct bfloat16 {
  std::uint16_t bits;
};
struct float16 {
  std::uint16_t bits;
};

template <class T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<bfloat16> {
  using type = float;
};
template <>
struct compute_type<float16> {
  using type = float;
};
template <class T>
using compute_t = typename compute_type<T>::type;

OPTIMCORE_INLINE float load(float x) { return x; }
OPTIMCORE_INLINE double load(double x) { return x; }

OPTIMCORE_INLINE float load(bfloat16 x) {
  const std::uint32_t u = static_cast<std::uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// float -> bfloat16, round to nearest even; NaN stays a (quiet) NaN. Branch-free so it vectorizes.
OPTIMCORE_INLINE bfloat16 to_bfloat16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return bfloat16{
      static_cast<std::uint16_t>(OPTIMCORE_IS_NAN_BITS(u, f) ? ((u >> 16) | 0x0040u) : rounded)};
}

#if defined(__FLT16_MANT_DIG__)
// IEEE half via the compiler's _Float16 (F16C / AVX512-FP16 instructions where the target has them).
#define OPTIMCORE_HAS_FLOAT16 1
OPTIMCORE_INLINE float load(float16 x) {
  _Float16 h;
  std::memcpy(&h, &x.bits, sizeof h);
  return static_cast<float>(h);
}
OPTIMCORE_INLINE float16 to_float16(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  float16 r;
  std::memcpy(&r.bits, &h, sizeof h);
  return r;
}
#else
#define OPTIMCORE_HAS_FLOAT16 0
#endif

// store<T>(v): round a compute value to the storage type T.
template <class T>
OPTIMCORE_INLINE T store(compute_t<T> v) {
  return v;
}
template <>
OPTIMCORE_INLINE bfloat16 store<bfloat16>(float v) {
  return to_bfloat16(v);
}
#if OPTIMCORE_HAS_FLOAT16
template <>
OPTIMCORE_INLINE float16 store<float16>(float v) {
  return to_float16(v);
}
#endif

// Stochastic rounding of a float to bfloat16: round up with probability equal to the distance
// to the value below, so the rounding error is zero on average and many small updates
// accumulate in a bfloat16 parameter instead of vanishing (Gupta et al., "Deep Learning with
// Limited Numerical Precision", 2015). `bits` supplies the randomness (the low 16 are used).
OPTIMCORE_INLINE bfloat16 to_bfloat16_stochastic(float f, std::uint32_t bits) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const std::uint32_t rounded = (u + (bits & 0xFFFFu)) >> 16;
  return bfloat16{
      static_cast<std::uint16_t>(OPTIMCORE_IS_NAN_BITS(u, f) ? ((u >> 16) | 0x0040u) : rounded)};
}

// Counter-based random bits for element `index` of a stream `seed` (a 32-bit integer hash of
// their sum: no state, so every thread and chunk computes its elements' bits independently, and
// the result does not depend on how work is split). Vectorizes.
OPTIMCORE_INLINE std::uint32_t random_bits(std::uint32_t seed, std::uint32_t index) {
  std::uint32_t x = seed + index * 0x9E3779B9u;
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

// The random stream of tensor `index` in a step seeded with `seed`.
OPTIMCORE_INLINE std::uint32_t tensor_stream(std::uint64_t seed, std::size_t index) {
  return random_bits(static_cast<std::uint32_t>(seed ^ (seed >> 32)),
                     static_cast<std::uint32_t>(index) * 0x85EBCA6Bu + 1u);
}

// Stores the updated parameter: round to nearest even, or stochastically (bfloat16 only).
template <bool STOCHASTIC, class T>
OPTIMCORE_INLINE T store_param(compute_t<T> v, std::uint32_t stream, std::size_t j) {
  if constexpr (STOCHASTIC) {
    static_assert(std::is_same<T, bfloat16>::value, "stochastic rounding is for bfloat16");
    return to_bfloat16_stochastic(v, random_bits(stream, static_cast<std::uint32_t>(j)));
  } else {
    (void)stream;
    (void)j;
    return store<T>(v);
  }
}

// Calls f(MASTER, SR) with two std::bool_constant values for a step's storage options, so a
// rule's loop is compiled once per combination and has no branch on them: MASTER, the tensors
// carry float32 master copies (16-bit T only); SR, bfloat16 parameters round stochastically.
template <class T, class S, class F>
void with_storage(bool master, bool stochastic, F&& f) {
  using Yes = std::true_type;
  using No = std::false_type;
  if constexpr (!std::is_same<T, S>::value) {
    if (master) {
      if constexpr (std::is_same<T, bfloat16>::value) {
        if (stochastic) return f(Yes{}, Yes{});
      }
      return f(Yes{}, No{});
    }
  }
  if constexpr (std::is_same<T, bfloat16>::value) {
    if (stochastic) return f(No{}, Yes{});
  }
  f(No{}, No{});
}

// Whether a 16-bit parameter still holds its float32 master copy m, rounded to nearest or (SR)
// stochastically, i.e. to either neighbour of m. Branch-free, so it vectorizes.
template <bool SR>
OPTIMCORE_INLINE bool rounds_from(bfloat16 p, float m) {
  if constexpr (SR) {
    std::uint32_t u;
    std::memcpy(&u, &m, sizeof u);
    const std::uint32_t toward_zero = u >> 16;
    return p.bits == toward_zero || p.bits == toward_zero + 1u;
  } else {
    return p.bits == to_bfloat16(m).bits;
  }
}
#if OPTIMCORE_HAS_FLOAT16
template <bool SR>
OPTIMCORE_INLINE bool rounds_from(float16 p, float m) {
  return p.bits == to_float16(m).bits;  // float16 rounds to nearest only
}
#endif

// The parameter value an update starts from: the parameter, or with MASTER its float32 master
// copy — unless the parameter no longer holds the master copy rounded. Then something outside
// this step wrote it (model.load_state_dict, clamp_ through p.data, another param group over the
// same memory, torch's step of a fallback) and the parameter is the truth. The parameter's cache
// line is fetched for its store anyway, so the check costs no memory traffic.
template <bool MASTER, bool SR = false, class T, class S>
OPTIMCORE_INLINE compute_t<T> load_param(const T* param, const S* master, std::size_t j) {
  if constexpr (MASTER) {
    const float m = load(master[j]);
    return rounds_from<SR>(param[j], m) ? m : load(param[j]);
  } else {
    return load(param[j]);
  }
}

// Stores an updated parameter value: into the master copy (MASTER) and, rounded to nearest or
// stochastically (SR), into the parameter.
template <bool MASTER, bool SR, class T, class S>
OPTIMCORE_INLINE void store_result(T* param, S* master, std::size_t j, compute_t<T> v,
                                   std::uint32_t stream) {
  if constexpr (MASTER) master[j] = store<S>(v);
  param[j] = store_param<SR, T>(v, stream, j);
}

namespace detail {
// torch.sign (and torch.sgn on real numbers) on the CPU: -1, 0 or 1; NaN and -0 give 0.
// Rprop's step direction and Lion's update use it.
template <class C>
OPTIMCORE_INLINE C sign_of(C x) {
  return static_cast<C>((C(0) < x) - (x < C(0)));
}
}  // namespace detail

// a * b + c, rounded once where the target has FMA and twice elsewhere: exactly what torch's
// vectorized CPU kernels compute for add(alpha=...) and lerp at the same instruction-set level.
template <class C>
OPTIMCORE_INLINE C madd(C a, C b, C c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// start.lerp_(end, weight) for a weight fixed over a loop, as torch's vectorized lerp
// (ATen/native/Lerp.h) with its branch chosen once: start + weight * (end - start) for
// |weight| < 0.5, else end + (weight - 1) * (end - start), which keeps the result exact at both
// ends. Adam's, Adamax's, RAdam's and NAdam's first moments and RMSprop's grad_avg use it.
template <class C>
struct LerpWeight {
  explicit LerpWeight(C weight)
      : from_start(std::fabs(weight) < C(0.5)), coeff(from_start ? weight : weight - C(1)) {}
  OPTIMCORE_INLINE C operator()(C start, C end) const {
    return madd(coeff, end - start, from_start ? start : end);
  }
  bool from_start;
  C coeff;
};

// exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2), rounded where torch rounds.
template <class C>
OPTIMCORE_INLINE C second_moment(C v, C g, C beta2, C one_minus_beta2) {
  return madd(one_minus_beta2 * g, g, v * beta2);
}

OPTIMCORE_NAMESPACE_END
