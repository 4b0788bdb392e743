// optimcore/closure.hpp: what the closure-driven methods (L-BFGS, nonlinear conjugate gradient)
// share: torch's scalar semantics, the flat-vector passes, the parameter segments, the buffers a
// step borrows from its caller, and how a step ends.
//
// These methods see the parameters as one flat vector x of n elements (torch.optim.LBFGS's
// `_gather_flat_grad` / `_add_grad` view), re-evaluate the function through a callback, and keep
// a few more vectors of n elements (direction, previous gradient, history). Every pass over
// them runs through `reduce_blocks`: fixed blocks of kReduceBlock elements whose partial sums
// are added in block order, so a dot product has the same bits for any number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"

namespace optimcore {

// Why a closure-driven step stopped iterating (torch.optim.LBFGS's `break`s, in its order).
enum class StopReason : int {
  kGradientTolerance = 0,  // max|g| <= tolerance_grad (also at the first evaluation)
  kDirectionalDerivative,  // g.d > -tolerance_change: no descent along d
  kMaxIter,                // max_iter iterations
  kMaxEval,                // max_eval function evaluations
  kStepTolerance,          // max|t d| <= tolerance_change
  kLossTolerance,          // |f - f_prev| < tolerance_change
};

inline const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kGradientTolerance: return "gradient_tolerance";
    case StopReason::kDirectionalDerivative: return "directional_derivative";
    case StopReason::kMaxIter: return "max_iter";
    case StopReason::kMaxEval: return "max_eval";
    case StopReason::kStepTolerance: return "step_tolerance";
    case StopReason::kLossTolerance: return "loss_tolerance";
  }
  return "unknown";
}

// What one step did.
struct ClosureStepResult {
  double first_loss = 0.0;  // the loss at the step's first evaluation (what step() returns)
  double loss = 0.0;        // the loss at the last accepted point
  std::int64_t evaluations = 0;
  std::int64_t iterations = 0;
  StopReason reason = StopReason::kMaxIter;
};

// The function returned a NaN or an infinite loss. The step that saw it restored x and left
// its state as before, then threw this.
struct NonFiniteLoss : std::domain_error {
  explicit NonFiniteLoss(double loss, std::int64_t evaluation)
      : std::domain_error("the closure returned a non-finite loss (" + std::to_string(loss) +
                          ") at evaluation " + std::to_string(evaluation) +
                          " of this step; the parameters and the optimizer state are as before "
                          "the step") {}
};

}  // namespace optimcore

OPTIMCORE_NAMESPACE_BEGIN

// A scalar as torch.optim.LBFGS holds it: a Python float (double arithmetic) or a 0-d tensor of
// the parameters' dtype T (`gtd = g.dot(d)`, `ro`, `H_diag`, a step length computed from them).
// An operation with a tensor operand rounds to T, after casting a Python float operand to T,
// as torch's CPU kernels do; comparisons with a tensor compare in T. For T = double this is
// plain double arithmetic; for float it reproduces torch's float32 iterates op for op.
template <class T>
struct Number {
  double v = 0.0;
  bool tensor = false;

  static Number python(double x) { return {x, false}; }
  static Number of_tensor(double x) { return {static_cast<double>(static_cast<T>(x)), true}; }
};

namespace detail {
template <class T, class Op>
Number<T> number_op(Number<T> a, Number<T> b, Op op) {
  if (a.tensor || b.tensor) {
    const T r = op(static_cast<T>(a.v), static_cast<T>(b.v));
    return {static_cast<double>(r), true};
  }
  return {op(a.v, b.v), false};
}
template <class T>
bool in_t(Number<T> a, Number<T> b) { return a.tensor || b.tensor; }
}  // namespace detail

template <class T> Number<T> operator+(Number<T> a, Number<T> b) {
  return detail::number_op(a, b, [](auto x, auto y) { return x + y; });
}
template <class T> Number<T> operator-(Number<T> a, Number<T> b) {
  return detail::number_op(a, b, [](auto x, auto y) { return x - y; });
}
template <class T> Number<T> operator*(Number<T> a, Number<T> b) {
  return detail::number_op(a, b, [](auto x, auto y) { return x * y; });
}
template <class T> Number<T> operator/(Number<T> a, Number<T> b) {
  return detail::number_op(a, b, [](auto x, auto y) { return x / y; });
}
template <class T> Number<T> operator-(Number<T> a) { return {-a.v, a.tensor}; }
template <class T> Number<T> operator+(Number<T> a, double b) { return a + Number<T>::python(b); }
template <class T> Number<T> operator+(double a, Number<T> b) { return Number<T>::python(a) + b; }
template <class T> Number<T> operator-(Number<T> a, double b) { return a - Number<T>::python(b); }
template <class T> Number<T> operator-(double a, Number<T> b) { return Number<T>::python(a) - b; }
template <class T> Number<T> operator*(Number<T> a, double b) { return a * Number<T>::python(b); }
template <class T> Number<T> operator*(double a, Number<T> b) { return Number<T>::python(a) * b; }
template <class T> Number<T> operator/(Number<T> a, double b) { return a / Number<T>::python(b); }
template <class T> Number<T> operator/(double a, Number<T> b) { return Number<T>::python(a) / b; }

#define OPTIMCORE_NUMBER_COMPARE(OP)                                                       \
  template <class T> bool operator OP(Number<T> a, Number<T> b) {                          \
    return detail::in_t(a, b) ? static_cast<T>(a.v) OP static_cast<T>(b.v) : a.v OP b.v;   \
  }                                                                                        \
  template <class T> bool operator OP(Number<T> a, double b) {                             \
    return a OP Number<T>::python(b);                                                      \
  }                                                                                        \
  template <class T> bool operator OP(double a, Number<T> b) {                             \
    return Number<T>::python(a) OP b;                                                      \
  }
OPTIMCORE_NUMBER_COMPARE(<)
OPTIMCORE_NUMBER_COMPARE(<=)
OPTIMCORE_NUMBER_COMPARE(>)
OPTIMCORE_NUMBER_COMPARE(>=)
#undef OPTIMCORE_NUMBER_COMPARE

template <class T> Number<T> abs(Number<T> a) { return {std::fabs(a.v), a.tensor}; }
template <class T> Number<T> sqrt(Number<T> a) {
  if (a.tensor) return {static_cast<double>(std::sqrt(static_cast<T>(a.v))), true};
  return {std::sqrt(a.v), false};
}
// Python's min(a, b) and max(a, b): the first argument unless the second compares smaller
// (larger); the result keeps its kind (float or tensor).
template <class T> Number<T> py_min(Number<T> a, Number<T> b) { return b < a ? b : a; }
template <class T> Number<T> py_max(Number<T> a, Number<T> b) { return b > a ? b : a; }

// The parameters as the flat vector x: `count` contiguous segments, in order.
template <class T>
struct Segments {
  T* const* data = nullptr;
  const std::size_t* sizes = nullptr;
  std::size_t count = 0;

  std::size_t numel() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < count; ++i) n += sizes[i];
    return n;
  }
};

// Elements per block of a reduction: a reduction's bits depend on n only, never on threads.
constexpr std::size_t kReduceBlock = std::size_t(1) << 14;

// R partial(begin, end) for fixed blocks of [0, n), combined with combine(acc, part) in block
// order. Blocks run in parallel when n is large enough for more than one thread.
template <class R, class Partial, class Combine>
R reduce_blocks(std::size_t n, int max_threads, R init, Partial partial, Combine combine) {
  const std::size_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks <= 1) return n == 0 ? init : combine(init, partial(std::size_t(0), n));
  std::vector<R> parts(blocks);
  const int nthreads = threads_for(n, max_threads);
#if defined(_OPENMP)
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
#endif
  for (long long b = 0; b < static_cast<long long>(blocks); ++b) {
    const std::size_t begin = static_cast<std::size_t>(b) * kReduceBlock;
    parts[b] = partial(begin, std::min(n, begin + kReduceBlock));
  }
  R acc = init;
  for (const R& p : parts) acc = combine(acc, p);
  return acc;
}

// K sums carried through a pass (dot products, absolute sums): double accumulators in
// kLanes independent lanes per sum. The compiler vectorizes the lanes without reassociating,
// and 32 lanes (four AVX-512 registers) hide the add's latency: a pass then runs at the speed
// of its loads (measured, n = 1e5 in L2: 24 us with 32 lanes, 43 us with 8).
constexpr std::size_t kLanes = 32;
template <std::size_t K>
struct Sums {
  double v[K] = {};
  Sums& operator+=(const Sums& o) {
    for (std::size_t k = 0; k < K; ++k) v[k] += o.v[k];
    return *this;
  }
};

// Calls body(j, lane) for j in [lo, hi): in groups of kLanes with lane = 0..kLanes-1 (a
// compile-time pattern the compiler turns into vector instructions), then the tail on lane 0.
template <class Body>
OPTIMCORE_INLINE void in_lanes(std::size_t lo, std::size_t hi, Body body) {
  std::size_t j = lo;
  for (; j + kLanes <= hi; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) body(j + l, l);
  for (; j < hi; ++j) body(j, std::size_t(0));
}

template <std::size_t K>
struct Lanes {
  double acc[K][kLanes] = {};
  OPTIMCORE_INLINE void add(std::size_t k, std::size_t lane, double x) { acc[k][lane] += x; }
  Sums<K> total() const {
    Sums<K> s;
    for (std::size_t k = 0; k < K; ++k) {
      double a[kLanes];
      for (std::size_t l = 0; l < kLanes; ++l) a[l] = acc[k][l];
      for (std::size_t w = kLanes / 2; w > 0; w /= 2)  // pairwise
        for (std::size_t l = 0; l < w; ++l) a[l] += a[l + w];
      s.v[k] = a[0];
    }
    return s;
  }
};


// One pass over [0, n) in blocks: body(begin, end, lanes) visits elements (through in_lanes),
// writes whatever it writes, and adds to K sums through lanes.add(k, lane, x). Returns the sums.
template <std::size_t K, class Body>
Sums<K> sum_pass(std::size_t n, int max_threads, Body body) {
  return reduce_blocks(
      n, max_threads, Sums<K>{},
      [&](std::size_t b, std::size_t e) {
        Lanes<K> lanes;
        body(b, e, lanes);
        return lanes.total();
      },
      [](Sums<K> acc, const Sums<K>& p) { return acc += p; });
}

// The passes that write a vector and take a dot product, as plain loops over restrict
// pointers: the shape the compiler reliably vectorizes (lambdas over shared pointers it does
// not, in every inlining context). Each adds its products to lane sums in `acc`.
namespace detail {

// d = (c x + d) * h, rounded as torch's d.add_(x, alpha=c) then mul by h (h = 1: exact), and
// acc += w . d (w may be x).
template <class T>
void axpy_scale_dot(T* OPTIMCORE_RESTRICT d, const T* OPTIMCORE_RESTRICT x, T c, T h,
                    const T* OPTIMCORE_RESTRICT w, std::size_t lo, std::size_t hi,
                    Lanes<1>& acc) {
  double a[kLanes] = {};
  std::size_t j = lo;
  for (; j + kLanes <= hi; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) {
      const T v = madd(c, x[j + l], d[j + l]) * h;
      d[j + l] = v;
      a[l] += static_cast<double>(w[j + l]) * static_cast<double>(v);
    }
  for (; j < hi; ++j) {
    const T v = madd(c, x[j], d[j]) * h;
    d[j] = v;
    a[0] += static_cast<double>(w[j]) * static_cast<double>(v);
  }
  for (std::size_t l = 0; l < kLanes; ++l) acc.acc[0][l] += a[l];
}

// d = -g * h (h = 1: exact), and acc += w . d (w may be g).
template <class T>
void negate_scale_dot(T* OPTIMCORE_RESTRICT d, const T* OPTIMCORE_RESTRICT g, T h,
                      const T* OPTIMCORE_RESTRICT w, std::size_t lo, std::size_t hi,
                      Lanes<1>& acc) {
  double a[kLanes] = {};
  std::size_t j = lo;
  for (; j + kLanes <= hi; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) {
      const T v = -g[j + l] * h;
      d[j + l] = v;
      a[l] += static_cast<double>(w[j + l]) * static_cast<double>(v);
    }
  for (; j < hi; ++j) {
    const T v = -g[j] * h;
    d[j] = v;
    a[0] += static_cast<double>(w[j]) * static_cast<double>(v);
  }
  for (std::size_t l = 0; l < kLanes; ++l) acc.acc[0][l] += a[l];
}

// y = g - p, s = d * t (torch's flat_grad.sub(prev_flat_grad), d.mul(t)); acc += (y.s, y.y).
template <class T>
void difference_scale_dots(T* OPTIMCORE_RESTRICT y, T* OPTIMCORE_RESTRICT s,
                           const T* OPTIMCORE_RESTRICT g, const T* OPTIMCORE_RESTRICT p,
                           const T* OPTIMCORE_RESTRICT d, T t, std::size_t lo, std::size_t hi,
                           Lanes<2>& acc) {
  double a0[kLanes] = {}, a1[kLanes] = {};
  std::size_t j = lo;
  for (; j + kLanes <= hi; j += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) {
      const T yj = g[j + l] - p[j + l];
      const T sj = d[j + l] * t;
      y[j + l] = yj;
      s[j + l] = sj;
      a0[l] += static_cast<double>(yj) * static_cast<double>(sj);
      a1[l] += static_cast<double>(yj) * static_cast<double>(yj);
    }
  for (; j < hi; ++j) {
    const T yj = g[j] - p[j];
    const T sj = d[j] * t;
    y[j] = yj;
    s[j] = sj;
    a0[0] += static_cast<double>(yj) * static_cast<double>(sj);
    a1[0] += static_cast<double>(yj) * static_cast<double>(yj);
  }
  for (std::size_t l = 0; l < kLanes; ++l) {
    acc.acc[0][l] += a0[l];
    acc.acc[1][l] += a1[l];
  }
}

}  // namespace detail

// max |a[j]| (NaN if any element is NaN, as torch's max). Per lane a compare-and-select and a
// sum of |a[j]|, which is NaN exactly when some element is: both vectorize.
template <class T>
double abs_max(const T* a, std::size_t n, int max_threads) {
  return reduce_blocks(
      n, max_threads, 0.0,
      [&](std::size_t b, std::size_t e) {
        double m[kLanes] = {}, sum[kLanes] = {};
        in_lanes(b, e, [&](std::size_t j, std::size_t l) {
          const double x = std::fabs(static_cast<double>(a[j]));
          m[l] = x > m[l] ? x : m[l];
          sum[l] += x;
        });
        double r = 0.0, total = 0.0;
        for (std::size_t l = 0; l < kLanes; ++l) {
          r = m[l] > r ? m[l] : r;
          total += sum[l];
        }
        return total != total ? total : r;
      },
      [](double acc, double p) { return acc != acc ? acc : (p != p || p > acc ? p : acc); });
}

// sum |a[j]|
template <class T>
double abs_sum(const T* a, std::size_t n, int max_threads);

template <class T>
double dot(const T* a, const T* b, std::size_t n, int max_threads) {
  return sum_pass<1>(n, max_threads, [&](std::size_t lo, std::size_t hi, Lanes<1>& s) {
           in_lanes(lo, hi, [&](std::size_t j, std::size_t l) {
             s.add(0, l, static_cast<double>(a[j]) * static_cast<double>(b[j]));
           });
         }).v[0];
}

template <class T>
double abs_sum(const T* a, std::size_t n, int max_threads) {
  return sum_pass<1>(n, max_threads, [&](std::size_t lo, std::size_t hi, Lanes<1>& s) {
           in_lanes(lo, hi, [&](std::size_t j, std::size_t l) {
             s.add(0, l, std::fabs(static_cast<double>(a[j])));
           });
         }).v[0];
}

// Calls body(segment, begin, end, flat_offset_of_begin) for ranges covering every element of x.
template <class T, class Body>
void for_each_segment_range(const Segments<T>& x, int max_threads, Body body) {
  std::vector<std::size_t> offsets(x.count + 1, 0);
  for (std::size_t i = 0; i < x.count; ++i) offsets[i + 1] = offsets[i] + x.sizes[i];
  for_each_range(
      x.count, [&](std::size_t i) { return x.sizes[i]; }, max_threads,
      [&](std::size_t i, std::size_t b, std::size_t e) { body(i, b, e, offsets[i] + b); });
}

// flat[...] = x (gather the parameters into one vector)
template <class T>
void copy_from_segments(T* flat, const Segments<T>& x, int max_threads) {
  for_each_segment_range(x, max_threads, [&](std::size_t i, std::size_t b, std::size_t e,
                                            std::size_t o) {
    std::copy(x.data[i] + b, x.data[i] + e, flat + o);
  });
}

// x = base + t * d (base may be nullptr: x += t * d), rounded as torch's p.add_(d, alpha=t).
template <class T>
void set_along(const Segments<T>& x, const T* base, T t, const T* d, int max_threads) {
  for_each_segment_range(x, max_threads, [&](std::size_t i, std::size_t b, std::size_t e,
                                            std::size_t o) {
    T* p = x.data[i];
    const T* src = base != nullptr ? base + o - b : p;
    const T* dd = d + o - b;
    for (std::size_t j = b; j < e; ++j) p[j] = madd(t, dd[j], src[j]);
  });
}

// x = flat
template <class T>
void copy_to_segments(const Segments<T>& x, const T* flat, int max_threads) {
  for_each_segment_range(x, max_threads, [&](std::size_t i, std::size_t b, std::size_t e,
                                            std::size_t o) {
    std::copy(flat + o, flat + o + (e - b), x.data[i] + b);
  });
}

// The vectors of n elements a step borrows. A step writes only into vectors it acquired during
// that step, never into vectors its state held when it began, so a step that throws leaves that
// state intact. Vectors the step is done with are released: reused by the step itself if it
// acquired them, given back at commit if the initial state held them.
//
// Memory is the caller's: any type with `T* vector()` (a vector of n elements, fresh or reused)
// and `void recycle(T*)` (no longer used). VectorPool is the one C++ programs use.
template <class T, class Memory>
class Workspace {
 public:
  Workspace(Memory& memory, std::vector<const T*> initial)
      : memory_(memory), initial_(std::move(initial)) {}
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() {  // without commit (an exception unwinds): the state keeps none of them
    for (T* p : acquired_) memory_.recycle(p);
  }

  T* acquire() {
    if (!free_.empty()) {
      T* p = free_.back();
      free_.pop_back();
      return p;
    }
    T* p = memory_.vector();
    acquired_.push_back(p);
    return p;
  }

  void release(const T* p) {
    if (p == nullptr || contains(free_, p)) return;
    if (contains(acquired_, p)) free_.push_back(const_cast<T*>(p));
  }

  // The step succeeded and its new state holds exactly `live`: every other vector acquired in
  // the step or held by the initial state goes back to the caller.
  void commit(const std::vector<const T*>& live) {
    std::vector<T*> dropped;
    for (T* p : acquired_)
      if (!contains(live, p)) dropped.push_back(p);
    for (const T* p : initial_)
      if (p != nullptr && !contains(live, p) && !contains(dropped, p))
        dropped.push_back(const_cast<T*>(p));
    acquired_.clear();
    free_.clear();
    for (T* p : dropped) memory_.recycle(p);
  }

 private:
  template <class V>
  static bool contains(const std::vector<V>& v, const T* p) {
    return std::find(v.begin(), v.end(), p) != v.end();
  }
  Memory& memory_;
  std::vector<const T*> initial_;
  std::vector<T*> acquired_;
  std::vector<T*> free_;
};

// Memory for C++ programs: vectors of n elements, owned here, reused once recycled.
template <class T>
class VectorPool {
 public:
  explicit VectorPool(std::size_t n) : n_(n) {}
  T* vector() {
    if (!free_.empty()) {
      T* p = free_.back();
      free_.pop_back();
      return p;
    }
    owned_.emplace_back(new T[n_ > 0 ? n_ : 1]);
    return owned_.back().get();
  }
  void recycle(T* p) {
    if (p != nullptr && std::find(free_.begin(), free_.end(), p) == free_.end())
      free_.push_back(p);
  }
  std::size_t size() const { return n_; }

 private:
  std::size_t n_;
  std::vector<std::unique_ptr<T[]>> owned_;
  std::vector<T*> free_;
};

OPTIMCORE_NAMESPACE_END
