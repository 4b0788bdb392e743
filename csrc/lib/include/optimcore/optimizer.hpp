// optimcore::Optimizer: torch.optim's optimizers for C++ programs, in liboptimcore (CMake target
// optimcore::optimcore). The optimizer owns its state; parameters and gradients stay in the
// caller's memory. Same names, defaults, param-group keys and state keys as torch.optim (and as
// optimcore's Python classes), the same kernels as the Python wheel (dispatch.hpp), and
// checkpoints in the safetensors format that Python reads with optimcore.checkpoint:
//
//   std::vector<float> w(n), g(n);
//   optimcore::Optimizer opt("AdamW", {{{optimcore::Param(w.data(), g.data(), n)}}},
//                            {{"lr", 1e-3}, {"betas", {0.9, 0.95}}, {"weight_decay", 0.1}});
//   for (...) { compute g; opt.step(); }
//   opt.save("opt.safetensors");  // Python: optimcore.checkpoint.load(opt, "opt.safetensors")
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "optimcore/dispatch.hpp"

namespace optimcore {

// Element types, with the codes of dispatch.hpp's DType.
enum class DType : int { float32 = 0, float64 = 1, bfloat16 = 2, float16 = 3 };
OPTIMCORE_API std::size_t element_size(DType dtype);
OPTIMCORE_API const char* dtype_name(DType dtype);  // "float32", ...

// A parameter: `numel` elements of `dtype` at `data`, updated in place by step(), and its
// gradient, read by step(). A null gradient leaves the parameter out of that step, as torch does
// for p.grad is None. The caller keeps both buffers alive while the optimizer uses them. (An
// empty parameter may have null data.)
struct Param {
  void* data = nullptr;
  const void* grad = nullptr;
  std::size_t numel = 0;
  DType dtype = DType::float32;

  Param() = default;
  Param(void* data_, const void* grad_, std::size_t numel_, DType dtype_)
      : data(data_), grad(grad_), numel(numel_), dtype(dtype_) {}
  Param(float* data_, const float* grad_, std::size_t numel_)
      : Param(data_, grad_, numel_, DType::float32) {}
  Param(double* data_, const double* grad_, std::size_t numel_)
      : Param(data_, grad_, numel_, DType::float64) {}
  template <class Vector>  // std::vector<float>, std::vector<double>
  Param(Vector& data_, const Vector& grad_) : Param(data_.data(), grad_.data(), data_.size()) {}
};

// A param_groups value: a number, a flag, a pair (torch's betas, etas, step_sizes), a text
// (LBFGS's line_search_fn = "strong_wolfe") or none (Python's None).
class Hyperparameter {
 public:
  enum class Kind { number, flag, pair, text, none };
  Hyperparameter() = default;
  Hyperparameter(double v) : kind_(Kind::number), a_(v) {}
  Hyperparameter(int v) : kind_(Kind::number), a_(v) {}
  Hyperparameter(bool v) : kind_(Kind::flag), a_(v ? 1.0 : 0.0) {}
  Hyperparameter(double first, double second) : kind_(Kind::pair), a_(first), b_(second) {}
  Hyperparameter(const char* text) : kind_(Kind::text), text_(text) {}
  Hyperparameter(std::string text) : kind_(Kind::text), text_(std::move(text)) {}
  Hyperparameter(std::nullptr_t) : kind_(Kind::none) {}
  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::none; }
  double number() const { return a_; }  // a number, or a flag as 0/1
  bool flag() const { return a_ != 0.0; }
  double first() const { return a_; }
  double second() const { return b_; }
  const std::string& text() const { return text_; }
  bool operator==(const Hyperparameter& o) const {
    return kind_ == o.kind_ && a_ == o.a_ && b_ == o.b_ && text_ == o.text_;
  }

 private:
  Kind kind_ = Kind::number;
  double a_ = 0.0, b_ = 0.0;
  std::string text_;
};

using Options = std::map<std::string, Hyperparameter>;

// One param group: its parameters and its options (missing keys take the optimizer's defaults).
struct ParamGroup {
  std::vector<Param> params;
  Options options;
};

// A view of one state tensor the optimizer owns ("exp_avg", "step", ...).
struct StateTensor {
  void* data = nullptr;
  std::size_t numel = 0;  // 1 for torch's 0-d tensors (step, mu_product, ...)
  DType dtype = DType::float32;
  bool scalar = false;  // a 0-d tensor in torch's state_dict
};

namespace detail {
struct Impl;
}

class OPTIMCORE_API Optimizer {
 public:
  // `name` is a torch.optim / optimcore class name: SGD, Adam, AdamW, Adagrad, Adadelta, Adamax,
  // RMSprop, RAdam, NAdam, ASGD, Rprop, AdaBound, AdaBoundW, Lion, SWATS, LAMB, and the
  // closure-driven LBFGS and ConjugateGradient (one group, float32 or float64 parameters of one
  // dtype; their state is not in save()/load() yet). `defaults`
  // overrides the class's defaults (torch's); each group's options override those. Throws
  // std::invalid_argument for an unknown class or key, a value torch's constructor refuses
  // (with torch's message), or parameters that overlap.
  Optimizer(const std::string& name, std::vector<ParamGroup> groups, const Options& defaults = {});
  ~Optimizer();
  Optimizer(Optimizer&&) noexcept;
  Optimizer& operator=(Optimizer&&) noexcept;

  // Every class name the constructor takes.
  static std::vector<std::string> classes();

  // One update of every parameter that has a gradient. Options are checked first, for every
  // group: a bad value (written between steps) throws before anything changes.
  void step();
  // With a closure, as torch's step(closure): it recomputes the loss and writes the gradients
  // into the parameters' gradient buffers, and step returns its first loss. LBFGS and
  // ConjugateGradient need one (they call it several times per step, with the parameters at
  // trial points); the other classes call it once, then step(). For LBFGS and
  // ConjugateGradient a closure that throws, or returns a non-finite loss
  // (optimcore::NonFiniteLoss, a std::domain_error), leaves the parameters and state as they were.
  double step(const std::function<double()>& closure);

  const std::string& name() const;
  const Options& defaults() const;
  std::size_t num_groups() const;
  const std::vector<Param>& params(std::size_t group) const;
  // Parameters are numbered as in torch's state_dict: group by group, in order.
  std::size_t num_params() const;

  // Options between steps (what a scheduler does to param_groups). set() adds a key the group
  // lacks, as Python does (schedulers keep "initial_lr" there); a value of another kind than the
  // key's (a flag for a number, ...) is refused at once, other values are checked at step().
  const Options& options(std::size_t group) const;
  const Hyperparameter& get(std::size_t group, const std::string& key) const;
  void set(std::size_t group, const std::string& key, Hyperparameter value);
  double lr(std::size_t group = 0) const { return get(group, "lr").number(); }
  void set_lr(double lr, std::size_t group) { set(group, "lr", lr); }
  void set_lr(double lr);  // every group

  // Gradient buffers can move between steps (e.g. a new batch's buffers).
  void set_grad(std::size_t index, const void* grad);
  // Parameter buffers can too (same numel and dtype): the state follows the index.
  void set_data(std::size_t index, void* data);

  void add_param_group(ParamGroup group);

  // State of parameter `index` (empty before its first step): its keys in torch's order, a key's
  // tensor (data == nullptr if absent), and its step count.
  std::vector<std::string> state_keys(std::size_t index) const;
  StateTensor state(std::size_t index, const std::string& key) const;
  double step_count(std::size_t index) const;

  // Threads per step (default: OpenMP's max threads at construction).
  void set_num_threads(int num_threads);
  int num_threads() const;

  // The optimizer's state_dict as a safetensors file: tensors "state.<index>.<key>" (shape
  // [numel], or [] for 0-d state), and in the metadata "param_groups" (torch's param_groups as
  // JSON, "params" as indices), "optimizer" (the class name), "format" = "optimcore.optimizer"
  // and "version". optimcore.checkpoint reads and writes the same files in Python.
  void save(const std::string& path) const;
  // Replaces the state and options with a checkpoint's (written by save() or by
  // optimcore.checkpoint in Python). Everything is checked before anything changes:
  // std::runtime_error for a file that is not such a checkpoint, is truncated or corrupt, or does
  // not match (another class, number of groups or parameters, numel, dtype, partial state).
  void load(const std::string& path);

 private:
  detail::Impl& impl() const;  // throws std::logic_error on a moved-from optimizer
  std::unique_ptr<detail::Impl> impl_;
};

}  // namespace optimcore
