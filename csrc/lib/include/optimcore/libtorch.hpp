// optimcore/libtorch.hpp: drop-ins for LibTorch's torch::optim, for LibTorch programs only (the
// Python extension and liboptimcore never include it). Each class derives from LibTorch's own
// (same constructor and *Options, same param groups, same state classes, so torch::save and
// torch::load of the optimizer work as before) and replaces only step(): instead of LibTorch's
// per-tensor loops of ATen ops, one pass over memory per tensor in liboptimcore's kernels
// (dispatch.hpp, the Python wheel's). A trainer switches by changing the type name:
//
//   torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
//   optimcore::libtorch::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
//
// Link optimcore::optimcore and LibTorch (find_package(Torch), e.g. from
// torch.utils.cmake_prefix_path). Whatever the kernels cannot take (parameters off the CPU,
// non-contiguous or sparse tensors, gradients of another dtype or size) runs LibTorch's own
// step, so a drop-in never does less than the class it replaces. LibTorch's optimizers have no
// Python-compatible state_dict: for checkpoints shared with Python, use optimcore::Optimizer's
// (optimizer.hpp) safetensors files.
#pragma once

#include <torch/csrc/autograd/variable.h>
#include <torch/optim.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <tuple>
#include <type_traits>
#include <vector>

#include "optimcore/dispatch.hpp"

namespace optimcore::libtorch {
namespace detail {

// dispatch.hpp's element type codes; -1: not one the kernels take.
inline int dtype_code(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return dispatch::kFloat32;
    case at::kDouble: return dispatch::kFloat64;
    case at::kBFloat16: return dispatch::kBFloat16;
    case at::kHalf: return dispatch::kFloat16;
    default: return -1;
  }
}

inline bool dense_like(const at::Tensor& t, const at::Tensor& p) {
  return t.device().is_cpu() && t.layout() == at::kStrided && t.is_contiguous() &&
         t.scalar_type() == p.scalar_type() && t.numel() == p.numel();
}

// Whether the kernels can step every parameter that has a gradient, with the state it has.
// Parameters listed twice, or sharing memory, step one after the other in LibTorch (each sees
// the other's update): the kernels' single pass cannot, so LibTorch's step takes them.
inline bool disjoint(const std::vector<torch::optim::OptimizerParamGroup>& groups) {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  for (const auto& group : groups)
    for (const auto& p : group.params())
      if (p.numel()) {
        const auto begin = reinterpret_cast<std::uintptr_t>(p.data_ptr());
        ranges.emplace_back(begin, begin + static_cast<std::uintptr_t>(p.numel() * p.element_size()));
      }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t k = 1; k < ranges.size(); ++k)
    if (ranges[k].first < ranges[k - 1].second) return false;
  return true;
}

template <class State, class F>
bool kernels_can_step(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                      const ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>& state,
                      F&& state_tensors) {
  if (!disjoint(groups)) return false;
  for (const auto& group : groups)
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!p.device().is_cpu() || p.layout() != at::kStrided || !p.is_contiguous() ||
          dtype_code(p) < 0 ||
          !dense_like(p.grad(), p))
        return false;
      const auto it = state.find(p.unsafeGetTensorImpl());
      if (it == state.end()) continue;
      for (const at::Tensor& s : state_tensors(static_cast<const State&>(*it->second)))
        if (s.defined() && !dense_like(s, p)) return false;
    }
  return true;
}

inline std::int64_t address(const at::Tensor& t) {
  return t.defined() ? static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(t.data_ptr()))
                     : 0;
}

// The rows of one kernel call: dispatch.hpp's table (param, step, numel, master, flags, state...)
// and the gradients, for the parameters of one group and one dtype.
struct Rows {
  std::vector<std::int64_t> table, grads;
  std::vector<at::Tensor> written;  // parameters and state: their version counters are bumped
};

// Calls the rule's kernel for each dtype present, then bumps the version counters of everything
// written, as LibTorch's in-place ops do (autograd then refuses a graph that saved them).
template <class Options>
void run(dispatch::RuleId rule, std::vector<Rows>& by_dtype, const Options& options,
         bool bump_versions) {
  for (int dtype = 0; dtype < static_cast<int>(by_dtype.size()); ++dtype) {
    Rows& rows = by_dtype[static_cast<std::size_t>(dtype)];
    if (rows.grads.empty()) continue;
    dispatch::kernels().rules[rule](rows.table.data(), rows.grads.data(), rows.grads.size(),
                                    dtype, /*master=*/false, &options, at::get_num_threads());
    if (bump_versions)
      for (const at::Tensor& t : rows.written) torch::autograd::impl::bump_version(t);
  }
}

// The closure, evaluated with gradients on, as LibTorch's step does.
inline at::Tensor evaluate(const torch::optim::Optimizer::LossClosure& closure) {
  if (!closure) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

inline void add_row(Rows& rows, const at::Tensor& p, float* step, std::uint32_t new_flags,
                    const std::vector<at::Tensor>& state) {
  rows.table.push_back(address(p));
  rows.table.push_back(static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(step)));
  rows.table.push_back(p.numel());
  rows.table.push_back(0);  // no master weights
  rows.table.push_back(new_flags);
  for (const at::Tensor& s : state) rows.table.push_back(address(s));
  rows.grads.push_back(address(p.grad()));
  rows.written.push_back(p);
  for (const at::Tensor& s : state)
    if (s.defined()) rows.written.push_back(s);
}

inline at::Tensor zeros_like(const at::Tensor& p) {
  return torch::zeros_like(p, at::MemoryFormat::Contiguous);
}

using StateMap = ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>;

// The step every drop-in runs: the closure; LibTorch's own step if the kernels cannot take every
// parameter; else per group one kernel call per dtype, with the kernel's options from LibTorch's
// (`options(group options)`) and each parameter's state tensors in the kernel's order
// (`state(group options, p, slot, new_flags)`, which creates the state as LibTorch's step would).
// State with a step count (AdamParamState, ...) has it advanced after the kernel.
template <class State, class TorchOptions, class Fallback, class Tensors, class KernelOptions,
          class StateRow>
at::Tensor step(std::vector<torch::optim::OptimizerParamGroup>& groups, StateMap& states,
                const torch::optim::Optimizer::LossClosure& closure, Fallback&& fallback,
                Tensors&& tensors, dispatch::RuleId rule, KernelOptions&& options,
                StateRow&& state) {
  constexpr bool kCountsSteps = !std::is_same<State, torch::optim::SGDParamState>::value;
  // LibTorch's SGD updates p.data(), whose version counter is not the parameter's: it leaves a
  // retained graph usable; its other optimizers write the parameter in place and bump it.
  constexpr bool kBumpVersions = kCountsSteps;
  torch::NoGradGuard no_grad;
  at::Tensor loss = evaluate(closure);
  if (!kernels_can_step<State>(groups, states, tensors)) {
    fallback();  // LibTorch's own step; the closure ran above
    return loss;
  }
  float unused_step = 0.0f;
  for (auto& group : groups) {
    const auto& o = static_cast<const TorchOptions&>(group.options());
    const auto k = options(o);
    std::vector<Rows> rows(4);
    std::vector<float> steps;
    std::vector<State*> stepped;
    steps.reserve(group.params().size());
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = states[p.unsafeGetTensorImpl()];
      std::uint32_t fresh = 0;
      const std::vector<at::Tensor> row = state(o, p, slot, fresh);
      float* step_count = &unused_step;
      if constexpr (kCountsSteps) {
        auto& s = static_cast<State&>(*slot);
        steps.push_back(static_cast<float>(s.step()));
        step_count = &steps.back();
        stepped.push_back(&s);
      }
      add_row(rows[static_cast<std::size_t>(dtype_code(p))], p, step_count, fresh, row);
    }
    run(rule, rows, k, kBumpVersions);
    if constexpr (kCountsSteps)
      for (State* s : stepped) s->step(s->step() + 1);
  }
  return loss;
}

}  // namespace detail

// Adam (LibTorch: L2 weight decay) and AdamW (decoupled), as torch::optim::Adam / AdamW.
template <class Base, class TorchOptions, bool Decoupled>
class AdamLike : public Base {
 public:
  using Base::Base;

  torch::Tensor step(torch::optim::Optimizer::LossClosure closure = nullptr) override {
    using State = torch::optim::AdamParamState;
    return detail::step<State, TorchOptions>(
        this->param_groups_, this->state_, closure, [this] { Base::step(nullptr); },
        [](const State& s) {
          return std::vector<at::Tensor>{s.exp_avg(), s.exp_avg_sq(), s.max_exp_avg_sq()};
        },
        dispatch::k_adam,
        [](const TorchOptions& o) {
          ::optimcore::AdamOptions k;
          k.lr = o.lr();
          k.beta1 = std::get<0>(o.betas());
          k.beta2 = std::get<1>(o.betas());
          k.eps = o.eps();
          k.weight_decay = o.weight_decay();
          k.amsgrad = o.amsgrad();
          k.decoupled_weight_decay = Decoupled;
          return k;
        },
        [](const TorchOptions& o, const at::Tensor& p, auto& slot, std::uint32_t&) {
          if (!slot) {
            auto s = std::make_unique<State>();
            s->step(0);
            s->exp_avg(detail::zeros_like(p));
            s->exp_avg_sq(detail::zeros_like(p));
            slot = std::move(s);
          }
          auto& s = static_cast<State&>(*slot);
          if (o.amsgrad() && !s.max_exp_avg_sq().defined()) s.max_exp_avg_sq(detail::zeros_like(p));
          return std::vector<at::Tensor>{s.exp_avg(), s.exp_avg_sq(),
                                         o.amsgrad() ? s.max_exp_avg_sq() : at::Tensor()};
        });
  }
};
using Adam = AdamLike<torch::optim::Adam, torch::optim::AdamOptions, false>;
using AdamW = AdamLike<torch::optim::AdamW, torch::optim::AdamWOptions, true>;

// SGD with momentum, dampening, Nesterov and weight decay, as torch::optim::SGD.
class SGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;

  torch::Tensor step(LossClosure closure = nullptr) override {
    using State = torch::optim::SGDParamState;
    using Options = torch::optim::SGDOptions;
    return detail::step<State, Options>(
        param_groups_, state_, closure, [this] { torch::optim::SGD::step(nullptr); },
        [](const State& s) { return std::vector<at::Tensor>{s.momentum_buffer()}; },
        dispatch::k_sgd,
        [](const Options& o) {
          ::optimcore::SgdOptions k;
          k.lr = o.lr();
          k.momentum = o.momentum();
          k.dampening = o.dampening();
          k.weight_decay = o.weight_decay();
          k.nesterov = o.nesterov();
          return k;
        },
        [](const Options& o, const at::Tensor& p, auto& slot, std::uint32_t& fresh) {
          if (o.momentum() == 0) return std::vector<at::Tensor>{at::Tensor()};
          if (!slot) {  // the kernel fills a new buffer on this step (torch: the gradient)
            auto s = std::make_unique<State>();
            s->momentum_buffer(torch::empty_like(p, at::MemoryFormat::Contiguous));
            slot = std::move(s);
            fresh = 1u << ::optimcore::Sgd::kMomentumBuffer;
          }
          return std::vector<at::Tensor>{static_cast<State&>(*slot).momentum_buffer()};
        });
  }
};

// Adagrad, as torch::optim::Adagrad (its constructor makes the state; a parameter added without
// state takes LibTorch's step).
class Adagrad : public torch::optim::Adagrad {
 public:
  using torch::optim::Adagrad::Adagrad;

  torch::Tensor step(LossClosure closure = nullptr) override {
    using State = torch::optim::AdagradParamState;
    using Options = torch::optim::AdagradOptions;
    for (const auto& group : param_groups_)
      for (const auto& p : group.params())
        if (p.grad().defined() && !state_.count(p.unsafeGetTensorImpl()))
          return torch::optim::Adagrad::step(closure);
    return detail::step<State, Options>(
        param_groups_, state_, closure, [this] { torch::optim::Adagrad::step(nullptr); },
        [](const State& s) { return std::vector<at::Tensor>{s.sum()}; }, dispatch::k_adagrad,
        [](const Options& o) {
          ::optimcore::AdagradOptions k;
          k.lr = o.lr();
          k.lr_decay = o.lr_decay();
          k.weight_decay = o.weight_decay();
          k.eps = o.eps();
          return k;
        },
        [](const Options&, const at::Tensor&, auto& slot, std::uint32_t&) {
          return std::vector<at::Tensor>{static_cast<State&>(*slot).sum()};
        });
  }
};

// RMSprop with momentum and centering, as torch::optim::RMSprop.
class RMSprop : public torch::optim::RMSprop {
 public:
  using torch::optim::RMSprop::RMSprop;

  torch::Tensor step(LossClosure closure = nullptr) override {
    using State = torch::optim::RMSpropParamState;
    using Options = torch::optim::RMSpropOptions;
    return detail::step<State, Options>(
        param_groups_, state_, closure, [this] { torch::optim::RMSprop::step(nullptr); },
        [](const State& s) {
          return std::vector<at::Tensor>{s.square_avg(), s.momentum_buffer(), s.grad_avg()};
        },
        dispatch::k_rmsprop,
        [](const Options& o) {
          ::optimcore::RmspropOptions k;
          k.lr = o.lr();
          k.alpha = o.alpha();
          k.eps = o.eps();
          k.weight_decay = o.weight_decay();
          k.momentum = o.momentum();
          k.centered = o.centered();
          return k;
        },
        [](const Options& o, const at::Tensor& p, auto& slot, std::uint32_t&) {
          if (!slot) {
            auto s = std::make_unique<State>();
            s->step(0);
            s->square_avg(detail::zeros_like(p));
            slot = std::move(s);
          }
          auto& s = static_cast<State&>(*slot);
          if (o.momentum() > 0 && !s.momentum_buffer().defined())
            s.momentum_buffer(detail::zeros_like(p));
          if (o.centered() && !s.grad_avg().defined()) s.grad_avg(detail::zeros_like(p));
          return std::vector<at::Tensor>{s.square_avg(),
                                         o.momentum() > 0 ? s.momentum_buffer() : at::Tensor(),
                                         o.centered() ? s.grad_avg() : at::Tensor()};
        });
  }
};

// L-BFGS, as torch::optim::LBFGS: the same options and LBFGSParamState (so torch::save works
// as before), with the iterations on liboptimcore's closure kernels (the Python LBFGS's). Falls
// back to LibTorch's step for parameters the kernels cannot take (off the CPU, non-contiguous,
// not all float32 or all float64), for state it cannot read, and for a step whose closure
// returns a non-finite loss (the kernel's step is undone first; LibTorch's then runs from the
// same point, as torch::optim::LBFGS would have). A closure that replaces a parameter's storage
// (set_data) during a step is refused with an error.
class LBFGS : public torch::optim::LBFGS {
 public:
  using torch::optim::LBFGS::LBFGS;

  torch::Tensor step(LossClosure closure) override {
    TORCH_CHECK(closure != nullptr, "LBFGS requires a closure function");
    using State = torch::optim::LBFGSParamState;
    auto& group = param_groups_.at(0);
    const auto& o = static_cast<const torch::optim::LBFGSOptions&>(group.options());
    const auto& params = group.params();
    const at::ScalarType dtype = params.at(0).scalar_type();
    std::int64_t n = 0;
    bool ok = dtype == at::kFloat || dtype == at::kDouble;
    for (const auto& p : params) {
      ok = ok && p.device().is_cpu() && p.layout() == at::kStrided && p.is_contiguous() &&
           p.scalar_type() == dtype;
      n += p.numel();
    }
    State* state = nullptr;
    auto it = state_.find(params.at(0).unsafeGetTensorImpl());
    if (it != state_.end()) {
      state = static_cast<State*>(it->second.get());
      auto vector_ok = [&](const at::Tensor& t) {
        return !t.defined() || (t.device().is_cpu() && t.is_contiguous() &&
                                t.scalar_type() == dtype && t.numel() == n);
      };
      ok = ok && vector_ok(state->d()) && vector_ok(state->prev_flat_grad());
      for (const auto& t : state->old_dirs()) ok = ok && t.defined() && vector_ok(t);
      for (const auto& t : state->old_stps()) ok = ok && t.defined() && vector_ok(t);
    }
    if (!ok) return torch::optim::LBFGS::step(closure);

    // The state as the kernel reads it; vectors stay torch tensors, kept by address.
    Vectors vectors{dtype, n, {}};
    dispatch::ClosureState c;
    if (state) {
      c.func_evals = state->func_evals();
      c.n_iter = state->n_iter();
      c.started = state->d().defined();
      c.d = vectors.keep(state->d());
      c.prev_flat_grad = vectors.keep(state->prev_flat_grad());
      c.t = {state->t(), false};
      c.prev_loss = state->prev_loss();
      if (state->H_diag().defined()) c.H_diag = {state->H_diag().item<double>(), true};
      for (const auto& t : state->old_dirs()) c.old_dirs.push_back(vectors.keep(t));
      for (const auto& t : state->old_stps()) c.old_stps.push_back(vectors.keep(t));
      for (const auto& t : state->ro()) c.ro.push_back({t.item<double>(), true});
      if (state->al())
        for (const auto& t : *state->al()) c.al.push_back({t.defined() ? t.item<double>() : 0.0, t.defined()});
    }
    std::vector<std::int64_t> segments;
    std::vector<std::size_t> sizes;
    for (const auto& p : params) {
      segments.push_back(detail::address(p));
      sizes.push_back(static_cast<std::size_t>(p.numel()));
    }
    // The parameters' storages stay alive for the step even if the closure replaces them.
    std::vector<at::Storage> storages;
    for (const auto& p : params) storages.push_back(p.storage());
    Context context{&closure, &params, &segments, &vectors, {}};
    dispatch::ClosureCallbacks calls;
    calls.context = &context;
    calls.evaluate = &Context::evaluate;
    calls.vector = &Context::vector;
    calls.recycle = &Context::recycle;
    ::optimcore::LbfgsOptions k;
    k.lr = o.lr();
    k.max_iter = o.max_iter();
    k.max_eval = o.max_eval() ? *o.max_eval() : o.max_iter() * 5 / 4;
    k.tolerance_grad = o.tolerance_grad();
    k.tolerance_change = o.tolerance_change();
    k.history_size = o.history_size();
    if (o.line_search_fn()) {
      TORCH_CHECK(*o.line_search_fn() == "strong_wolfe", "only 'strong_wolfe' is supported");
      k.line_search = true;
    }
    const int code = dtype == at::kFloat ? dispatch::kFloat32 : dispatch::kFloat64;
    try {
      torch::NoGradGuard no_grad;
      dispatch::kernels().lbfgs(segments.data(), sizes.data(), segments.size(), code, c, k, calls,
                                at::get_num_threads());
    } catch (const std::domain_error&) {  // ::optimcore::NonFiniteLoss: parameters restored
      return torch::optim::LBFGS::step(closure);
    }
    for (const auto& p : params) torch::autograd::impl::bump_version(p);

    // Back into LibTorch's state.
    auto s = std::make_unique<State>();
    s->func_evals(c.func_evals);
    s->n_iter(c.n_iter);
    if (c.started && c.d) {
      s->d(vectors.get(c.d));
      s->prev_flat_grad(vectors.get(c.prev_flat_grad));
      s->t(c.t.value);
      s->prev_loss(c.prev_loss);
      s->H_diag(torch::tensor(c.H_diag.value, torch::TensorOptions().dtype(dtype)));
      std::deque<at::Tensor> dirs, stps, ro;
      for (auto v : c.old_dirs) dirs.push_back(vectors.get(v));
      for (auto v : c.old_stps) stps.push_back(vectors.get(v));
      for (const auto& r : c.ro) ro.push_back(torch::tensor(r.value, torch::TensorOptions().dtype(dtype)));
      s->old_dirs(dirs);
      s->old_stps(stps);
      s->ro(ro);
      if (!c.al.empty()) {
        std::vector<at::Tensor> al;
        for (const auto& a : c.al)
          al.push_back(a.tensor ? torch::tensor(a.value, torch::TensorOptions().dtype(dtype)) : at::Tensor());
        s->al(al);
      }
    }
    state_[params.at(0).unsafeGetTensorImpl()] = std::move(s);
    return context.first_loss;
  }

 private:
  // Vectors of n elements lent to the kernel: existing state tensors and new ones, by address.
  struct Vectors {
    at::ScalarType dtype;
    std::int64_t n;
    std::map<std::int64_t, at::Tensor> by_address;
    std::int64_t keep(const at::Tensor& t) {
      if (!t.defined()) return 0;
      by_address[detail::address(t)] = t;
      return detail::address(t);
    }
    at::Tensor get(std::int64_t address) const {
      const auto it = by_address.find(address);
      return it == by_address.end() ? at::Tensor() : it->second;
    }
  };
  struct Context {
    const LossClosure* closure;
    const std::vector<at::Tensor>* params;
    const std::vector<std::int64_t>* segments;  // the parameters' addresses at the start
    Vectors* vectors;
    at::Tensor first_loss;
    // The closure with gradients on; its gradients gathered into the kernel's vector (an
    // undefined gradient as zeros, as LibTorch's _gather_flat_grad).
    static double evaluate(void* self, std::int64_t grad) {
      auto& c = *static_cast<Context*>(self);
      at::Tensor loss;
      {
        at::AutoGradMode enable_grad(true);
        loss = (*c.closure)();
      }
      if (!c.first_loss.defined()) c.first_loss = loss;
      for (std::size_t i = 0; i < c.params->size(); ++i)
        TORCH_CHECK(detail::address((*c.params)[i]) == (*c.segments)[i],
                    "optimcore::libtorch::LBFGS: the closure replaced parameter ", i,
                    "'s storage during a step; set parameters' data between steps");
      auto* out = reinterpret_cast<char*>(static_cast<std::uintptr_t>(grad));
      for (const auto& p : *c.params) {
        const std::size_t bytes = static_cast<std::size_t>(p.numel()) * p.element_size();
        const at::Tensor& g = p.grad();
        if (g.defined()) {
          const at::Tensor dense = g.is_sparse() ? g.to_dense() : g;
          const at::Tensor flat = dense.to(p.scalar_type()).contiguous();
          std::memcpy(out, flat.data_ptr(), bytes);
        } else {
          std::memset(out, 0, bytes);
        }
        out += bytes;
      }
      return loss.item<double>();
    }
    static std::int64_t vector(void* self) {
      auto& c = *static_cast<Context*>(self);
      return c.vectors->keep(torch::empty({c.vectors->n}, torch::TensorOptions().dtype(c.vectors->dtype)));
    }
    static void recycle(void* self, std::int64_t address) {
      static_cast<Context*>(self)->vectors->by_address.erase(address);
    }
  };
};

// --- Rules LibTorch does not have (pytorch/pytorch#107224) ------------------------------------
// Adadelta, Adamax, NAdam, RAdam, ASGD and Rprop, as torch::optim-style classes: *Options with
// torch.optim's defaults (get_lr/set_lr for LibTorch's schedulers), *ParamState with the state
// keys of torch.optim's state_dict, and torch::save / torch::load through LibTorch's serializer.
// There is no LibTorch step to fall back to: tensors the kernels cannot take (off the CPU,
// non-contiguous, sparse, gradients of another dtype) raise an error.

namespace detail {

// What a Traits may leave out: no group keys to initialise, no 0-d state, and the kernel's row
// is the per-element state then the 0-d state.
template <class Derived>
struct TraitsBase {
  static constexpr bool kInitGroups = false;
  template <class State>
  static std::vector<at::Tensor> scalar_state(const State&) { return {}; }
  template <class Options, class State>
  static std::vector<at::Tensor> row(const Options&, const at::Tensor&, State& s) {
    std::vector<at::Tensor> r = Derived::element_state(s);
    for (const at::Tensor& t : Derived::scalar_state(s)) r.push_back(t);
    return r;
  }
};

// A drop-in for a rule LibTorch lacks: Traits (deriving from TraitsBase) gives the name, the
// constructor's checks, the kernel's options, a new parameter's state and its per-element
// tensors; 0-d tensors, a `row` that adds state an option switched on later, and group keys
// kept from the start where the rule has them.
template <class Traits>
class NewRule : public torch::optim::Optimizer {
 public:
  using Options = typename Traits::Options;
  using State = typename Traits::State;

  explicit NewRule(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                   Options defaults = {})
      : torch::optim::Optimizer(param_groups, std::make_unique<Options>(defaults)) {
    Traits::check(defaults);
    if constexpr (Traits::kInitGroups)  // keys a group keeps from its start (base_lr)
      for (auto& group : param_groups_)
        Traits::init_group(static_cast<Options&>(group.options()), defaults);
  }
  explicit NewRule(std::vector<torch::Tensor> params, Options defaults = {})
      : NewRule({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override {
    // 0-d state (NAdam's mu_product, ASGD's eta and mu) is float32, as torch.optim's.
    for (const auto& entry : state_)
      for (const at::Tensor& t : Traits::scalar_state(static_cast<const State&>(*entry.second)))
        TORCH_CHECK(t.defined() && t.device().is_cpu() && t.numel() == 1 &&
                        t.scalar_type() == at::kFloat,
                    Traits::name, ": 0-d state must be a float32 CPU tensor");
    return detail::step<State, Options>(
        param_groups_, state_, closure,
        [] {
          TORCH_CHECK(false, Traits::name,
                      ": every parameter and gradient must be a contiguous CPU tensor of the "
                      "parameter's dtype (float32, float64, bfloat16 or float16)");
        },
        [](const State& s) { return Traits::element_state(s); }, Traits::rule,
        [](const Options& o) { return Traits::kernel_options(o); },
        [](const Options& o, const at::Tensor& p, auto& slot, std::uint32_t&) {
          if (!slot) slot = std::make_unique<State>(Traits::new_state(o, p));
          return Traits::row(o, p, static_cast<State&>(*slot));
        });
  }
  void save(torch::serialize::OutputArchive& archive) const override {
    torch::optim::serialize<State, Options>(archive, *this);
  }
  void load(torch::serialize::InputArchive& archive) override {
    torch::optim::serialize<State, Options>(archive, *this);
  }
};

inline void check_common(const char* name, double lr, double eps, double weight_decay) {
  TORCH_CHECK(lr >= 0, name, ": Invalid learning rate: ", lr);
  TORCH_CHECK(eps >= 0, name, ": Invalid epsilon value: ", eps);
  TORCH_CHECK(weight_decay >= 0, name, ": Invalid weight_decay value: ", weight_decay);
}
inline void check_betas(const std::tuple<double, double>& betas) {
  TORCH_CHECK(0 <= std::get<0>(betas) && std::get<0>(betas) < 1.0,
              "Invalid beta parameter at index 0: ", std::get<0>(betas));
  TORCH_CHECK(0 <= std::get<1>(betas) && std::get<1>(betas) < 1.0,
              "Invalid beta parameter at index 1: ", std::get<1>(betas));
}
inline at::Tensor scalar(double v) { return torch::tensor(static_cast<float>(v)); }
// Adamax, NAdam, RAdam: Adam's checks and Adam's options (lr, betas, eps, weight_decay).
template <class Options>
void check_adam_like(const char* name, const Options& o) {
  check_common(name, o.lr(), o.eps(), o.weight_decay());
  check_betas(o.betas());
}
template <class Kernel, class Options>
Kernel adam_like_options(const Options& o) {
  Kernel k;
  k.lr = o.lr();
  k.beta1 = std::get<0>(o.betas());
  k.beta2 = std::get<1>(o.betas());
  k.eps = o.eps();
  k.weight_decay = o.weight_decay();
  return k;
}

}  // namespace detail

// Options and state of each class: X(type, name, default) lists, expanded into TORCH_ARG
// accessors and LibTorch's serialization (the macros below).
using pair_t = std::tuple<double, double>;  // betas, etas, step_sizes

#define OPTIMCORE_LIBTORCH_ARG(T, name, init) TORCH_ARG(T, name) = init;
#define OPTIMCORE_LIBTORCH_WRITE(T, name, init) _TORCH_OPTIM_SERIALIZE_TORCH_ARG(name)
#define OPTIMCORE_LIBTORCH_READ(T, name, init) _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(T, name)
#define OPTIMCORE_LIBTORCH_SERIALIZE(FIELDS)                                    \
 public: /* TORCH_ARG leaves the class private */                              \
  void serialize(torch::serialize::OutputArchive& archive) const override {    \
    FIELDS(OPTIMCORE_LIBTORCH_WRITE)                                           \
  }                                                                            \
  void serialize(torch::serialize::InputArchive& archive) override {           \
    FIELDS(OPTIMCORE_LIBTORCH_READ)                                            \
  }
// <Name>Options(lr): torch.optim's defaults, get_lr/set_lr for LibTorch's schedulers.
#define OPTIMCORE_LIBTORCH_OPTIONS(Name, default_lr, FIELDS)                            \
  struct Name##Options : torch::optim::OptimizerCloneableOptions<Name##Options> {    \
    Name##Options(double lr = default_lr) : lr_(lr) {}                               \
    FIELDS(OPTIMCORE_LIBTORCH_ARG)                                                   \
    OPTIMCORE_LIBTORCH_SERIALIZE(FIELDS)                                             \
    double get_lr() const override { return lr(); }                                  \
    void set_lr(const double value) override { lr(value); }                          \
  };
// <Name>ParamState: step, then torch.optim's state keys.
#define OPTIMCORE_LIBTORCH_STATE(Name, FIELDS)                                          \
  struct Name##ParamState : torch::optim::OptimizerCloneableParamState<Name##ParamState> { \
    FIELDS(OPTIMCORE_LIBTORCH_ARG)                                                   \
    OPTIMCORE_LIBTORCH_SERIALIZE(FIELDS)                                             \
  };

// Adadelta: an adaptive learning rate per element.
#define OPTIMCORE_ADADELTA_OPTIONS(X) \
  X(double, lr, 1.0) \
  X(double, rho, 0.9) \
  X(double, eps, 1e-6) \
  X(double, weight_decay, 0)
#define OPTIMCORE_ADADELTA_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, square_avg, torch::Tensor()) \
  X(torch::Tensor, acc_delta, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(Adadelta, 1.0, OPTIMCORE_ADADELTA_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(Adadelta, OPTIMCORE_ADADELTA_STATE)
struct AdadeltaTraits : detail::TraitsBase<AdadeltaTraits> {
  using Options = AdadeltaOptions;
  using State = AdadeltaParamState;
  static constexpr const char* name = "Adadelta";
  static constexpr dispatch::RuleId rule = dispatch::k_adadelta;
  static void check(const Options& o) {
    detail::check_common(name, o.lr(), o.eps(), o.weight_decay());
    TORCH_CHECK(o.rho() >= 0 && o.rho() <= 1, "Invalid rho value: ", o.rho());
  }
  static ::optimcore::AdadeltaOptions kernel_options(const Options& o) {
    ::optimcore::AdadeltaOptions k;
    k.lr = o.lr(); k.rho = o.rho(); k.eps = o.eps(); k.weight_decay = o.weight_decay();
    return k;
  }
  static State new_state(const Options&, const at::Tensor& p) {
    State s;
    s.square_avg(detail::zeros_like(p));
    s.acc_delta(detail::zeros_like(p));
    return s;
  }
  static std::vector<at::Tensor> element_state(const State& s) { return {s.square_avg(), s.acc_delta()}; }
};
using Adadelta = detail::NewRule<AdadeltaTraits>;

// Adamax: Adam with the infinity norm.
#define OPTIMCORE_ADAMAX_OPTIONS(X) \
  X(double, lr, 2e-3) \
  X(pair_t, betas, (std::make_tuple(0.9, 0.999))) \
  X(double, eps, 1e-8) \
  X(double, weight_decay, 0)
#define OPTIMCORE_ADAMAX_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, exp_avg, torch::Tensor()) \
  X(torch::Tensor, exp_inf, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(Adamax, 2e-3, OPTIMCORE_ADAMAX_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(Adamax, OPTIMCORE_ADAMAX_STATE)
struct AdamaxTraits : detail::TraitsBase<AdamaxTraits> {
  using Options = AdamaxOptions;
  using State = AdamaxParamState;
  static constexpr const char* name = "Adamax";
  static constexpr dispatch::RuleId rule = dispatch::k_adamax;
  static void check(const Options& o) {
    detail::check_adam_like(name, o);
  }
  static ::optimcore::AdamaxOptions kernel_options(const Options& o) {
    return detail::adam_like_options<::optimcore::AdamaxOptions>(o);
  }
  static State new_state(const Options&, const at::Tensor& p) {
    State s;
    s.exp_avg(detail::zeros_like(p));
    s.exp_inf(detail::zeros_like(p));
    return s;
  }
  static std::vector<at::Tensor> element_state(const State& s) { return {s.exp_avg(), s.exp_inf()}; }
};
using Adamax = detail::NewRule<AdamaxTraits>;

// NAdam: Adam with Nesterov momentum (mu_product: a 0-d float32 tensor, as torch.optim's).
#define OPTIMCORE_NADAM_OPTIONS(X) \
  X(double, lr, 2e-3) \
  X(pair_t, betas, (std::make_tuple(0.9, 0.999))) \
  X(double, eps, 1e-8) \
  X(double, weight_decay, 0) \
  X(double, momentum_decay, 4e-3) \
  X(bool, decoupled_weight_decay, false)
#define OPTIMCORE_NADAM_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, exp_avg, torch::Tensor()) \
  X(torch::Tensor, exp_avg_sq, torch::Tensor()) \
  X(torch::Tensor, mu_product, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(NAdam, 2e-3, OPTIMCORE_NADAM_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(NAdam, OPTIMCORE_NADAM_STATE)
struct NAdamTraits : detail::TraitsBase<NAdamTraits> {
  using Options = NAdamOptions;
  using State = NAdamParamState;
  static constexpr const char* name = "NAdam";
  static constexpr dispatch::RuleId rule = dispatch::k_nadam;
  static void check(const Options& o) {
    detail::check_adam_like(name, o);
    TORCH_CHECK(o.momentum_decay() >= 0, "Invalid momentum_decay value: ", o.momentum_decay());
  }
  static ::optimcore::NadamOptions kernel_options(const Options& o) {
    auto k = detail::adam_like_options<::optimcore::NadamOptions>(o);
    k.momentum_decay = o.momentum_decay();
    k.decoupled_weight_decay = o.decoupled_weight_decay();
    return k;
  }
  static State new_state(const Options&, const at::Tensor& p) {
    State s;
    s.exp_avg(detail::zeros_like(p));
    s.exp_avg_sq(detail::zeros_like(p));
    s.mu_product(detail::scalar(1.0));
    return s;
  }
  static std::vector<at::Tensor> scalar_state(const State& s) { return {s.mu_product()}; }
  static std::vector<at::Tensor> element_state(const State& s) { return {s.exp_avg(), s.exp_avg_sq()}; }
};
using NAdam = detail::NewRule<NAdamTraits>;

// RAdam: Adam with the variance of the adaptive learning rate rectified.
#define OPTIMCORE_RADAM_OPTIONS(X) \
  X(double, lr, 1e-3) \
  X(pair_t, betas, (std::make_tuple(0.9, 0.999))) \
  X(double, eps, 1e-8) \
  X(double, weight_decay, 0) \
  X(bool, decoupled_weight_decay, false)
#define OPTIMCORE_RADAM_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, exp_avg, torch::Tensor()) \
  X(torch::Tensor, exp_avg_sq, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(RAdam, 1e-3, OPTIMCORE_RADAM_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(RAdam, OPTIMCORE_RADAM_STATE)
struct RAdamTraits : detail::TraitsBase<RAdamTraits> {
  using Options = RAdamOptions;
  using State = RAdamParamState;
  static constexpr const char* name = "RAdam";
  static constexpr dispatch::RuleId rule = dispatch::k_radam;
  static void check(const Options& o) {
    detail::check_adam_like(name, o);
  }
  static ::optimcore::RadamOptions kernel_options(const Options& o) {
    auto k = detail::adam_like_options<::optimcore::RadamOptions>(o);
    k.decoupled_weight_decay = o.decoupled_weight_decay();
    return k;
  }
  static State new_state(const Options&, const at::Tensor& p) {
    State s;
    s.exp_avg(detail::zeros_like(p));
    s.exp_avg_sq(detail::zeros_like(p));
    return s;
  }
  static std::vector<at::Tensor> element_state(const State& s) { return {s.exp_avg(), s.exp_avg_sq()}; }
};
using RAdam = detail::NewRule<RAdamTraits>;

// ASGD: averaged SGD (eta and mu: 0-d float32 tensors, as torch.optim's).
#define OPTIMCORE_ASGD_OPTIONS(X) \
  X(double, lr, 1e-2) \
  X(double, lambd, 1e-4) \
  X(double, alpha, 0.75) \
  X(double, t0, 1e6) \
  X(double, weight_decay, 0)
#define OPTIMCORE_ASGD_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, ax, torch::Tensor()) \
  X(torch::Tensor, eta, torch::Tensor()) \
  X(torch::Tensor, mu, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(ASGD, 1e-2, OPTIMCORE_ASGD_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(ASGD, OPTIMCORE_ASGD_STATE)
struct ASGDTraits : detail::TraitsBase<ASGDTraits> {
  using Options = ASGDOptions;
  using State = ASGDParamState;
  static constexpr const char* name = "ASGD";
  static constexpr dispatch::RuleId rule = dispatch::k_asgd;
  static void check(const Options& o) {
    detail::check_common(name, o.lr(), 0.0, o.weight_decay());
    TORCH_CHECK(o.lambd() >= 0, "Invalid lambd value: ", o.lambd());
  }
  static ::optimcore::AsgdOptions kernel_options(const Options& o) {
    ::optimcore::AsgdOptions k;
    k.lr = o.lr(); k.lambd = o.lambd(); k.alpha = o.alpha(); k.t0 = o.t0();
    k.weight_decay = o.weight_decay();
    return k;
  }
  static State new_state(const Options& o, const at::Tensor& p) {
    State s;
    s.ax(detail::zeros_like(p));
    s.eta(detail::scalar(o.lr()));
    s.mu(detail::scalar(1.0));
    return s;
  }
  static std::vector<at::Tensor> scalar_state(const State& s) { return {s.eta(), s.mu()}; }
  static std::vector<at::Tensor> element_state(const State& s) { return {s.ax()}; }
};
using ASGD = detail::NewRule<ASGDTraits>;

// Rprop: resilient backpropagation (step_size starts at lr, as torch.optim's).
#define OPTIMCORE_RPROP_OPTIONS(X) \
  X(double, lr, 1e-2) \
  X(pair_t, etas, (std::make_tuple(0.5, 1.2))) \
  X(pair_t, step_sizes, (std::make_tuple(1e-6, 50.0)))
#define OPTIMCORE_RPROP_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, prev, torch::Tensor()) \
  X(torch::Tensor, step_size, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(Rprop, 1e-2, OPTIMCORE_RPROP_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(Rprop, OPTIMCORE_RPROP_STATE)
struct RpropTraits : detail::TraitsBase<RpropTraits> {
  using Options = RpropOptions;
  using State = RpropParamState;
  static constexpr const char* name = "Rprop";
  static constexpr dispatch::RuleId rule = dispatch::k_rprop;
  static void check(const Options& o) {
    TORCH_CHECK(o.lr() >= 0, "Invalid learning rate: ", o.lr());
    TORCH_CHECK(0 < std::get<0>(o.etas()) && std::get<0>(o.etas()) < 1.0 &&
                    1.0 < std::get<1>(o.etas()),
                "Invalid eta values: ", std::get<0>(o.etas()), ", ", std::get<1>(o.etas()));
  }
  static ::optimcore::RpropOptions kernel_options(const Options& o) {
    ::optimcore::RpropOptions k;
    k.etaminus = std::get<0>(o.etas()); k.etaplus = std::get<1>(o.etas());
    k.step_size_min = std::get<0>(o.step_sizes()); k.step_size_max = std::get<1>(o.step_sizes());
    return k;
  }
  static State new_state(const Options& o, const at::Tensor& p) {
    State s;
    s.prev(detail::zeros_like(p));
    s.step_size(torch::full_like(p, o.lr(), at::MemoryFormat::Contiguous));
    return s;
  }
  static std::vector<at::Tensor> element_state(const State& s) { return {s.prev(), s.step_size()}; }
};
using Rprop = detail::NewRule<RpropTraits>;

// AdaBound and AdaBoundW (Luolc/AdaBound; W: decoupled weight decay), as optimcore.AdaBound:
// final_lr follows lr / base_lr, base_lr being each group's lr at construction (a group added
// later takes its lr at its first step).
#define OPTIMCORE_ADABOUND_OPTIONS(X) \
  X(double, lr, 1e-3) \
  X(pair_t, betas, (std::make_tuple(0.9, 0.999))) \
  X(double, final_lr, 0.1) \
  X(double, gamma, 1e-3) \
  X(double, eps, 1e-8) \
  X(double, weight_decay, 0) \
  X(bool, amsbound, false) \
  X(double, base_lr, -1.0)
#define OPTIMCORE_ADABOUNDW_OPTIONS(X) \
  X(double, lr, 1e-3) \
  X(pair_t, betas, (std::make_tuple(0.9, 0.999))) \
  X(double, final_lr, 0.1) \
  X(double, gamma, 1e-3) \
  X(double, eps, 1e-8) \
  X(double, weight_decay, 1e-2) \
  X(bool, amsbound, false) \
  X(double, base_lr, -1.0)
#define OPTIMCORE_ADABOUND_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, exp_avg, torch::Tensor()) \
  X(torch::Tensor, exp_avg_sq, torch::Tensor()) \
  X(torch::Tensor, max_exp_avg_sq, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(AdaBound, 1e-3, OPTIMCORE_ADABOUND_OPTIONS)
OPTIMCORE_LIBTORCH_OPTIONS(AdaBoundW, 1e-3, OPTIMCORE_ADABOUNDW_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(AdaBound, OPTIMCORE_ADABOUND_STATE)
template <class O, bool Decoupled>
struct AdaBoundTraits : detail::TraitsBase<AdaBoundTraits<O, Decoupled>> {
  using Options = O;
  using State = AdaBoundParamState;
  static constexpr const char* name = Decoupled ? "AdaBoundW" : "AdaBound";
  static constexpr dispatch::RuleId rule = dispatch::k_adabound;
  static constexpr bool kInitGroups = true;
  static void init_group(Options& group, const Options&) {
    if (group.base_lr() < 0) group.base_lr(group.lr());
  }
  static void check(const Options& o) {
    detail::check_adam_like(name, o);
    TORCH_CHECK(o.final_lr() >= 0, "Invalid final learning rate: ", o.final_lr());
    TORCH_CHECK(o.gamma() >= 0 && o.gamma() < 1, "Invalid gamma parameter: ", o.gamma());
  }
  static ::optimcore::AdaBoundOptions kernel_options(const Options& o) {
    auto k = detail::adam_like_options<::optimcore::AdaBoundOptions>(o);
    const double base_lr = o.base_lr() < 0 ? o.lr() : o.base_lr();
    k.final_lr = o.lr() == 0.0 ? 0.0 : base_lr > 0.0 ? o.final_lr() * o.lr() / base_lr : o.final_lr();
    k.gamma = o.gamma();
    k.amsbound = o.amsbound();
    k.decoupled_weight_decay = Decoupled;
    return k;
  }
  static State new_state(const Options&, const at::Tensor& p) {
    State s;
    s.exp_avg(detail::zeros_like(p));
    s.exp_avg_sq(detail::zeros_like(p));
    return s;
  }
  static std::vector<at::Tensor> element_state(const State& s) {
    return {s.exp_avg(), s.exp_avg_sq(), s.max_exp_avg_sq()};
  }
  static std::vector<at::Tensor> row(const Options& o, const at::Tensor& p, State& s) {
    if (o.amsbound() && !s.max_exp_avg_sq().defined()) s.max_exp_avg_sq(detail::zeros_like(p));
    return {s.exp_avg(), s.exp_avg_sq(), o.amsbound() ? s.max_exp_avg_sq() : at::Tensor()};
  }
};
using AdaBound = detail::NewRule<AdaBoundTraits<AdaBoundOptions, false>>;
using AdaBoundW = detail::NewRule<AdaBoundTraits<AdaBoundWOptions, true>>;

// Lion (lucidrains/lion-pytorch), as optimcore.Lion: decoupled weight decay divided by the
// constructor's lr (base_lr), as lion-pytorch does.
#define OPTIMCORE_LION_OPTIONS(X) \
  X(double, lr, 1e-4) \
  X(pair_t, betas, (std::make_tuple(0.9, 0.99))) \
  X(double, weight_decay, 0) \
  X(bool, decoupled_weight_decay, false) \
  X(double, base_lr, -1.0)
#define OPTIMCORE_LION_STATE(X) \
  X(int64_t, step, 0) \
  X(torch::Tensor, exp_avg, torch::Tensor())
OPTIMCORE_LIBTORCH_OPTIONS(Lion, 1e-4, OPTIMCORE_LION_OPTIONS)
OPTIMCORE_LIBTORCH_STATE(Lion, OPTIMCORE_LION_STATE)
struct LionTraits : detail::TraitsBase<LionTraits> {
  using Options = LionOptions;
  using State = LionParamState;
  static constexpr const char* name = "Lion";
  static constexpr dispatch::RuleId rule = dispatch::k_lion;
  static constexpr bool kInitGroups = true;
  static void init_group(Options& group, const Options& defaults) {
    if (group.base_lr() < 0) group.base_lr(defaults.lr());
  }
  static void check(const Options& o) {
    TORCH_CHECK(o.lr() > 0, "Invalid learning rate: ", o.lr());
    for (const double beta : {std::get<0>(o.betas()), std::get<1>(o.betas())})
      TORCH_CHECK(beta >= 0 && beta <= 1, "Invalid beta parameter: ", beta);
    TORCH_CHECK(o.weight_decay() >= 0, "Invalid weight_decay value: ", o.weight_decay());
  }
  static ::optimcore::LionOptions kernel_options(const Options& o) {
    ::optimcore::LionOptions k;
    k.lr = o.lr();
    k.beta1 = std::get<0>(o.betas());
    k.beta2 = std::get<1>(o.betas());
    const double base_lr = o.base_lr() < 0 ? o.lr() : o.base_lr();
    k.weight_decay = o.decoupled_weight_decay() && o.weight_decay() != 0.0
                         ? o.weight_decay() / base_lr
                         : o.weight_decay();
    return k;
  }
  static State new_state(const Options&, const at::Tensor& p) {
    State s;
    s.exp_avg(detail::zeros_like(p));
    return s;
  }
  static std::vector<at::Tensor> element_state(const State& s) { return {s.exp_avg()}; }
};
using Lion = detail::NewRule<LionTraits>;

#undef OPTIMCORE_LIBTORCH_ARG
#undef OPTIMCORE_LIBTORCH_WRITE
#undef OPTIMCORE_LIBTORCH_READ
#undef OPTIMCORE_LIBTORCH_SERIALIZE
#undef OPTIMCORE_LIBTORCH_OPTIONS
#undef OPTIMCORE_LIBTORCH_STATE

}  // namespace optimcore::libtorch
