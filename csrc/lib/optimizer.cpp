// optimcore::Optimizer (optimizer.hpp): torch.optim's bookkeeping in C++ — classes and their
// defaults, param groups, owned state, checks before every write — around the kernel tables of
// dispatch.hpp. No math here: each step builds the same row table the Python layer builds
// (_table.py) and calls the active SIMD level's kernel for the rule.
#include "optimcore/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <sstream>
#include <stdexcept>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "optimizer_impl.hpp"

namespace optimcore {

std::size_t element_size(DType dtype) {
  switch (dtype) {
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::bfloat16:
    case DType::float16: return 2;
  }
  throw std::invalid_argument("unknown dtype");
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::bfloat16: return "bfloat16";
    case DType::float16: return "float16";
  }
  return "unknown";
}

namespace detail {

std::string format_number(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

void Buffer::allocate(std::size_t bytes) {
  constexpr std::size_t kAlign = 64;
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw std::bad_alloc();
  data.reset(p);
  size = bytes;
}

namespace {

// --- the rules: their kernel description, generated from OPTIMCORE_RULES --------------------

template <class Rule>
RuleDesc describe(dispatch::RuleId id) {
  RuleDesc d;
  d.id = id;
  d.prefix = Rule::name;
  for (std::size_t k = 0; k < Rule::kStates; ++k) d.states.emplace_back(Rule::state_names[k]);
  d.fills_new_state = Rule::fills_new_state;
  d.counts_steps = Rule::counts_steps;
  for (std::size_t k = 0; k < ScalarStates<Rule>::count; ++k)
    d.scalars.emplace_back(ScalarStates<Rule>::names[k]);
  typename Rule::Options defaults;
  defaults.each([&](const char* name, auto&) { d.options.emplace_back(name); });
  d.build = [](const std::map<std::string, double>& values) {
    auto o = std::make_shared<typename Rule::Options>();
    o->each([&](const char* name, auto& field) {
      using F = std::decay_t<decltype(field)>;
      const double v = values.at(name);
      if constexpr (std::is_same<F, bool>::value) field = v != 0.0;
      else field = static_cast<F>(v);
    });
    return std::shared_ptr<const void>(o, o.get());
  };
  return d;
}

const std::vector<RuleDesc>& rules() {
  static const std::vector<RuleDesc> all = [] {
    std::vector<RuleDesc> v;
#define OPTIMCORE_DESCRIBE(prefix, Rule) v.push_back(describe<Rule>(dispatch::k_##prefix));
    OPTIMCORE_RULES(OPTIMCORE_DESCRIBE)
#undef OPTIMCORE_DESCRIBE
    return v;
  }();
  return all;
}

const RuleDesc& rule(const std::string& prefix) {
  for (const RuleDesc& d : rules())
    if (prefix == d.prefix) return d;
  throw std::logic_error("optimcore: no rule '" + prefix + "'");
}

// --- torch's checks, with torch's messages ---------------------------------------------------

[[noreturn]] void refuse(const std::string& message) { throw std::invalid_argument(message); }

double number(const Options& o, const std::string& key) {
  const auto it = o.find(key);
  if (it == o.end()) refuse("missing hyperparameter '" + key + "'");
  if (it->second.kind() != Hyperparameter::Kind::number &&
      it->second.kind() != Hyperparameter::Kind::flag)
    refuse(key + " must be a number");
  if (!std::isfinite(it->second.number()) && key != "t0")
    refuse(key + "=" + format_number(it->second.number()) + " is not finite");
  return it->second.number();
}

Hyperparameter pair(const Options& o, const std::string& key) {
  const auto it = o.find(key);
  if (it == o.end()) refuse("missing hyperparameter '" + key + "'");
  if (it->second.kind() != Hyperparameter::Kind::pair) refuse(key + " must be a pair");
  return it->second;
}

void check_lr(const Options& o) {
  const double lr = number(o, "lr");
  if (!(lr >= 0.0)) refuse("Invalid learning rate: " + format_number(lr));
}
void check_eps(const Options& o) {
  const double eps = number(o, "eps");
  if (!(eps >= 0.0)) refuse("Invalid epsilon value: " + format_number(eps));
}
void check_weight_decay(const Options& o) {
  const double wd = number(o, "weight_decay");
  if (!(wd >= 0.0)) refuse("Invalid weight_decay value: " + format_number(wd));
}
// beta < 1: the bias corrections divide by 1 - beta^t (Lion allows 1: `inclusive`).
void check_betas(const Options& o, bool inclusive = false) {
  const Hyperparameter b = pair(o, "betas");
  const double betas[2] = {b.first(), b.second()};
  for (int i = 0; i < 2; ++i)
    if (!(betas[i] >= 0.0 && (betas[i] < 1.0 || (inclusive && betas[i] == 1.0))))
      refuse("Invalid beta parameter at index " + std::to_string(i) + ": " +
             format_number(betas[i]));
}
void check_adam_like(const Options& o) {
  check_lr(o);
  check_eps(o);
  check_betas(o);
  check_weight_decay(o);
}
void check_at_least(const Options& o, const std::string& key, const std::string& what) {
  const double v = number(o, key);
  if (!(v >= 0.0)) refuse("Invalid " + what + " value: " + format_number(v));
}

// --- the classes: torch.optim's (and optimcore's) names, defaults and checks -----------------

using Pair = std::pair<double, double>;

Options adam_defaults(double lr, double weight_decay) {
  return {{"lr", lr}, {"betas", {0.9, 0.999}}, {"eps", 1e-8}, {"weight_decay", weight_decay}};
}

std::vector<ClassDesc> make_classes() {
  std::vector<ClassDesc> c;
  auto add = [&](const char* name, const char* prefix, Options defaults, auto check) {
    ClassDesc d;
    d.name = name;
    d.rule = prefix ? &rule(prefix) : nullptr;
    d.defaults = std::move(defaults);
    d.check = check;
    c.push_back(std::move(d));
    return &c.back();
  };
  ClassDesc* d;

  d = add("SGD", "sgd",
          {{"lr", 1e-3}, {"momentum", 0.0}, {"dampening", 0.0}, {"weight_decay", 0.0},
           {"nesterov", false}, {"maximize", false}},
          [](const Options& o) {
            check_lr(o);
            check_at_least(o, "momentum", "momentum");
            check_weight_decay(o);
            number(o, "dampening");
            if (o.at("nesterov").flag() && (number(o, "momentum") <= 0 || number(o, "dampening") != 0))
              refuse("Nesterov momentum requires a momentum and zero dampening");
          });
  d->uses_state = [](const Options& o, const std::string&) { return number(o, "momentum") != 0; };
  d->optional_state = {"momentum_buffer"};

  for (const bool w : {false, true}) {
    Options defaults = adam_defaults(1e-3, w ? 1e-2 : 0.0);
    defaults["amsgrad"] = false;
    defaults["maximize"] = false;
    defaults["decoupled_weight_decay"] = w;
    d = add(w ? "AdamW" : "Adam", "adam", defaults, check_adam_like);
    d->optional_state = {"max_exp_avg_sq"};
    d->uses_state = [](const Options& o, const std::string& key) {
      return key != "max_exp_avg_sq" || o.at("amsgrad").flag();
    };
  }

  d = add("Adagrad", "adagrad",
          {{"lr", 1e-2}, {"lr_decay", 0.0}, {"weight_decay", 0.0},
           {"initial_accumulator_value", 0.0}, {"eps", 1e-10}, {"maximize", false}},
          [](const Options& o) {
            check_lr(o);
            check_at_least(o, "lr_decay", "lr_decay");
            check_weight_decay(o);
            check_at_least(o, "initial_accumulator_value", "initial_accumulator_value");
            check_eps(o);
          });
  // torch fills sum with the optimizer's initial_accumulator_value (the defaults', not the group's)
  d->state_fill = [](const Options& defaults, const Options&, const std::string&) {
    return number(defaults, "initial_accumulator_value");
  };

  add("Adadelta", "adadelta",
      {{"lr", 1.0}, {"rho", 0.9}, {"eps", 1e-6}, {"weight_decay", 0.0}, {"maximize", false}},
      [](const Options& o) {
        check_lr(o);
        const double rho = number(o, "rho");
        if (!(rho >= 0.0 && rho <= 1.0)) refuse("Invalid rho value: " + format_number(rho));
        check_eps(o);
        check_weight_decay(o);
      });

  Options adamax = adam_defaults(2e-3, 0.0);
  adamax["maximize"] = false;
  add("Adamax", "adamax", adamax, check_adam_like);

  d = add("RMSprop", "rmsprop",
          {{"lr", 1e-2}, {"alpha", 0.99}, {"eps", 1e-8}, {"weight_decay", 0.0},
           {"momentum", 0.0}, {"centered", false}, {"maximize", false}},
          [](const Options& o) {
            check_lr(o);
            check_eps(o);
            check_at_least(o, "momentum", "momentum");
            check_weight_decay(o);
            check_at_least(o, "alpha", "alpha");
          });
  d->optional_state = {"momentum_buffer", "grad_avg"};
  d->uses_state = [](const Options& o, const std::string& key) {
    if (key == "momentum_buffer") return number(o, "momentum") > 0;
    if (key == "grad_avg") return o.at("centered").flag();
    return true;
  };

  Options radam = adam_defaults(1e-3, 0.0);
  radam["decoupled_weight_decay"] = false;
  radam["maximize"] = false;
  add("RAdam", "radam", radam, check_adam_like);

  Options nadam = adam_defaults(2e-3, 0.0);
  nadam["momentum_decay"] = 4e-3;
  nadam["decoupled_weight_decay"] = false;
  nadam["maximize"] = false;
  d = add("NAdam", "nadam", nadam, [](const Options& o) {
    check_adam_like(o);
    check_at_least(o, "momentum_decay", "momentum_decay");
  });
  d->scalar_init = [](const Options&, const std::string&) { return 1.0; };  // mu_product

  d = add("ASGD", "asgd",
          {{"lr", 1e-2}, {"lambd", 1e-4}, {"alpha", 0.75}, {"t0", 1e6}, {"weight_decay", 0.0},
           {"maximize", false}},
          [](const Options& o) {
            check_lr(o);
            check_weight_decay(o);
            number(o, "alpha");
            number(o, "t0");
            if (!(number(o, "lambd") >= 0.0))  // 1 + lambd * lr * step would reach 0
              refuse("Invalid lambd value: " + format_number(number(o, "lambd")));
          });
  d->scalar_init = [](const Options& o, const std::string& key) {
    // torch: eta = lr and mu = 1, as 0-d float32 tensors
    return key == "eta" ? static_cast<double>(static_cast<float>(number(o, "lr"))) : 1.0;
  };

  d = add("Rprop", "rprop",
          {{"lr", 1e-2}, {"etas", {0.5, 1.2}}, {"step_sizes", {1e-6, 50.0}}, {"maximize", false}},
          [](const Options& o) {
            check_lr(o);
            const Hyperparameter etas = pair(o, "etas");
            if (!(0.0 < etas.first() && etas.first() < 1.0 && 1.0 < etas.second()))
              refuse("Invalid eta values: " + format_number(etas.first()) + ", " +
                     format_number(etas.second()));
            pair(o, "step_sizes");
          });
  d->state_fill = [](const Options&, const Options& o, const std::string& key) {
    return key == "step_size" ? number(o, "lr") : 0.0;  // torch: full_like(grad, lr)
  };

  for (const bool w : {false, true}) {
    Options defaults = adam_defaults(1e-3, w ? 1e-2 : 0.0);
    defaults["final_lr"] = 0.1;
    defaults["gamma"] = 1e-3;
    defaults["amsbound"] = false;
    d = add(w ? "AdaBoundW" : "AdaBound", "adabound", defaults, [](const Options& o) {
      check_adam_like(o);
      check_at_least(o, "final_lr", "final learning rate");
      const double gamma = number(o, "gamma");
      if (!(gamma >= 0.0 && gamma < 1.0)) refuse("Invalid gamma parameter: " + format_number(gamma));
    });
    d->optional_state = {"max_exp_avg_sq"};
    d->uses_state = [](const Options& o, const std::string& key) {
      return key != "max_exp_avg_sq" || o.at("amsbound").flag();
    };
    d->extra_keys = {"base_lr"};
    // base_lr: the group's first lr; schedulers move the bounds with lr / base_lr.
    d->group_init = [](const Options&, Options& g) {
      if (!g.count("base_lr")) g["base_lr"] = number(g, "lr");
    };
    d->core_options = [w](const Options& g, std::map<std::string, double>& core) {
      const double lr = core["lr"], base_lr = number(g, "base_lr");
      core["final_lr"] = lr == 0.0 ? 0.0 : base_lr > 0.0 ? core["final_lr"] * lr / base_lr
                                                           : core["final_lr"];
      core["decoupled_weight_decay"] = w;
    };
  }

  d = add("Lion", "lion",
          {{"lr", 1e-4}, {"betas", {0.9, 0.99}}, {"weight_decay", 0.0},
           {"decoupled_weight_decay", false}},
          [](const Options& o) {
            check_lr(o);
            check_betas(o, /*inclusive=*/true);
            check_weight_decay(o);
            // base_lr divides the decoupled weight decay (lion-pytorch refuses lr <= 0 too)
            const auto base = o.find("base_lr");
            if (base != o.end() && !(base->second.number() > 0.0))
              refuse("Invalid learning rate: " + format_number(base->second.number()) +
                     " (Lion's initial lr must be > 0)");
          });
  d->extra_keys = {"base_lr"};
  // base_lr: the constructor's lr for every group (lion-pytorch divides by its _init_lr).
  d->group_init = [](const Options& defaults, Options& g) {
    if (!g.count("base_lr")) g["base_lr"] = number(defaults, "lr");
  };
  d->core_options = [](const Options& g, std::map<std::string, double>& core) {
    if (g.at("decoupled_weight_decay").flag() && core["weight_decay"] != 0.0)
      core["weight_decay"] /= number(g, "base_lr");
  };

  Options swats = adam_defaults(1e-3, 0.0);
  swats["amsgrad"] = false;
  swats["switch_tolerance"] = 1e-6;
  d = add("SWATS", "swats", swats, [](const Options& o) {
    check_adam_like(o);
    check_at_least(o, "switch_tolerance", "switch_tolerance");
  });
  d->optional_state = {"max_exp_avg_sq", "momentum_buffer", "sgd_lr", "switch_lr", "switched_at"};
  d->uses_state = [](const Options& o, const std::string& key) {
    return key != "max_exp_avg_sq" || o.at("amsgrad").flag();
  };
  d->scalar_dtype = [](const std::string& key) {
    return key == "switched_at" ? DType::float32 : DType::float64;
  };

  Options lamb = adam_defaults(1e-3, 0.0);
  lamb["eps"] = 1e-6;
  lamb["clamp_value"] = 10.0;
  lamb["adam"] = false;
  lamb["debias"] = false;
  d = add("LAMB", "lamb", lamb, [](const Options& o) {
    check_adam_like(o);
    if (!(number(o, "lr") > 0.0)) refuse("Invalid learning rate: " + format_number(number(o, "lr")));
    check_at_least(o, "clamp_value", "clamp");
  });
  d->scalar_dtype = [](const std::string&) { return DType::float64; };

  // The closure-driven methods (descent.hpp): one group; max_eval None is max_iter * 5 / 4.
  auto descent_defaults = [](Options o) {
    o["lr"] = 1.0;
    o["max_iter"] = 20;
    o["tolerance_grad"] = 1e-7;
    o["tolerance_change"] = 1e-9;
    return o;
  };
  auto check_descent = [](const Options& o, double min_eval) {
    const double lr = number(o, "lr");
    if (!(lr >= 0.0)) refuse("Invalid learning rate: " + format_number(lr));
    const double max_iter = number(o, "max_iter");
    if (!(max_iter >= 0 && max_iter == std::floor(max_iter)))
      refuse("max_iter must be a whole number >= 0, got " + format_number(max_iter));
    const auto eval = o.find("max_eval");
    if (eval != o.end() && !eval->second.is_none()) {
      const double v = number(o, "max_eval");
      if (!(v >= min_eval && v == std::floor(v)))
        refuse("Invalid max_eval: " + format_number(v) + " (a whole number, at least " +
               format_number(min_eval) + ")");
    }
    check_at_least(o, "tolerance_grad", "tolerance_grad");
    check_at_least(o, "tolerance_change", "tolerance_change");
  };
  auto set_max_eval = [](const Options&, Options& g) {
    if (!g.count("max_eval") || g["max_eval"].is_none())
      g["max_eval"] = std::floor(number(g, "max_iter") * 5 / 4);
  };
  d = add("LBFGS", nullptr,
          descent_defaults({{"history_size", 100}, {"line_search_fn", nullptr}}),
          [check_descent](const Options& o) {
            check_descent(o, 0);  // torch.optim.LBFGS takes max_iter = 0 (max_eval 0)
            const double h = number(o, "history_size");
            if (!(h >= 1 && h == std::floor(h)))
              refuse("Invalid history_size: " + format_number(h) + " (at least 1)");
            const Hyperparameter& ls = o.at("line_search_fn");
            if (!ls.is_none() && !(ls.kind() == Hyperparameter::Kind::text && ls.text() == "strong_wolfe"))
              refuse("only 'strong_wolfe' is supported");
          });
  d->closure = ClassDesc::Closure::lbfgs;
  d->extra_keys = {"max_eval"};
  d->group_init = set_max_eval;
  d = add("ConjugateGradient", nullptr,
          descent_defaults({{"beta", "PR+"}, {"restart_every", nullptr}, {"c1", 1e-4}, {"c2", 0.1}}),
          [check_descent](const Options& o) {
            check_descent(o, 1);  // as optimcore.ConjugateGradient
            const Hyperparameter& beta = o.at("beta");
            if (beta.kind() != Hyperparameter::Kind::text ||
                (beta.text() != "PR+" && beta.text() != "FR" && beta.text() != "HS" &&
                 beta.text() != "DY"))
              refuse("Invalid beta (one of PR+, FR, HS, DY)");
            const Hyperparameter& every = o.at("restart_every");
            if (!every.is_none() && !(number(o, "restart_every") >= 1))
              refuse("Invalid restart_every: " + format_number(every.number()));
            const double c1 = number(o, "c1"), c2 = number(o, "c2");
            if (!(0.0 < c1 && c1 < c2 && c2 < 1.0))
              refuse("Invalid Wolfe constants: need 0 < c1 < c2 < 1, got c1=" + format_number(c1) +
                     ", c2=" + format_number(c2));
          });
  d->closure = ClassDesc::Closure::conjugate_gradient;
  d->extra_keys = {"max_eval"};
  d->group_init = set_max_eval;
  return c;
}

}  // namespace

const char* kind_name(const Hyperparameter& h) {
  switch (h.kind()) {
    case Hyperparameter::Kind::number: return "a number";
    case Hyperparameter::Kind::flag: return "a flag";
    case Hyperparameter::Kind::pair: return "a pair";
    case Hyperparameter::Kind::text: return "a text";
    case Hyperparameter::Kind::none: return "none";
  }
  return "?";
}

bool same_kind(const ClassDesc& c, const std::string& key, const Hyperparameter& current,
               const Hyperparameter& value) {
  if (current.kind() == value.kind()) return true;
  // Keys whose default is None (max_eval, restart_every, line_search_fn) take None or a value.
  const auto d = c.defaults.find(key);
  const bool optional = c.extra_keys.count(key) || (d != c.defaults.end() && d->second.is_none());
  return optional && (current.is_none() || value.is_none());
}

const std::vector<ClassDesc>& classes() {
  static const std::vector<ClassDesc> all = make_classes();
  return all;
}

const ClassDesc& find_class(const std::string& name) {
  for (const ClassDesc& c : classes())
    if (c.name == name) return c;
  std::string known;
  for (const ClassDesc& c : classes()) known += (known.empty() ? "" : ", ") + c.name;
  throw std::invalid_argument("optimcore::Optimizer: unknown optimizer '" + name +
                              "' (known: " + known + ")");
}

// The kernel's options from a group: every core option by name; beta1/beta2 from "betas",
// etaminus/etaplus from "etas", step_size_min/max from "step_sizes".
std::map<std::string, double> core_options(const ClassDesc& c, const Options& g) {
  static const std::map<std::string, std::pair<std::string, int>> from_pairs = {
      {"beta1", {"betas", 0}},    {"beta2", {"betas", 1}},
      {"etaminus", {"etas", 0}},  {"etaplus", {"etas", 1}},
      {"step_size_min", {"step_sizes", 0}}, {"step_size_max", {"step_sizes", 1}}};
  std::map<std::string, double> core;
  for (const std::string& name : c.rule->options) {
    const auto pair_it = from_pairs.find(name);
    if (pair_it != from_pairs.end()) {
      const Hyperparameter p = pair(g, pair_it->second.first);
      core[name] = pair_it->second.second == 0 ? p.first() : p.second();
    } else if (g.count(name)) {
      core[name] = number(g, name);
    } else {
      core[name] = 0.0;  // set by the class (core_options), e.g. AdaBoundW's decoupling
    }
  }
  if (c.core_options) c.core_options(g, core);
  return core;
}

void check_group(const ClassDesc& c, const Options& g, std::size_t index) {
  try {
    c.check(g);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("param group " + std::to_string(index) + ": " + e.what());
  }
}

}  // namespace detail

// --- Optimizer ---------------------------------------------------------------------------------

Optimizer::Optimizer(const std::string& name, std::vector<ParamGroup> groups,
                     const Options& defaults)
    : impl_(std::make_unique<detail::Impl>()) {
  const detail::ClassDesc& c = detail::find_class(name);
  impl().cls = &c;
  impl().defaults = c.defaults;
  for (const auto& [key, value] : defaults) {
    if (!c.defaults.count(key) && !c.extra_keys.count(key))
      throw std::invalid_argument(name + ": unknown hyperparameter '" + key + "'");
    impl().defaults[key] = value;
  }
  detail::check_group(c, impl().defaults, 0);
#if defined(_OPENMP)
  impl().num_threads = omp_get_max_threads();
#endif
  if (groups.empty()) throw std::invalid_argument("optimizer got an empty parameter list");
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

double Optimizer::step(const std::function<double()>& closure) {
  if (!closure) throw std::invalid_argument(name() + ".step: the closure is empty");
  if (impl().cls->closure != detail::ClassDesc::Closure::none) return impl().closure_step(closure);
  const double loss = closure();
  step();
  return loss;
}

detail::Impl& Optimizer::impl() const {
  if (!impl_) throw std::logic_error("use of a moved-from optimcore::Optimizer");
  return *impl_;
}

Optimizer::~Optimizer() = default;
Optimizer::Optimizer(Optimizer&&) noexcept = default;
Optimizer& Optimizer::operator=(Optimizer&&) noexcept = default;

std::vector<std::string> Optimizer::classes() {
  std::vector<std::string> names;
  for (const detail::ClassDesc& c : detail::classes()) names.push_back(c.name);
  return names;
}

const std::string& Optimizer::name() const { return impl().cls->name; }
const Options& Optimizer::defaults() const { return impl().defaults; }
std::size_t Optimizer::num_groups() const { return impl().groups.size(); }
std::size_t Optimizer::num_params() const { return impl().slots.size(); }

const std::vector<Param>& Optimizer::params(std::size_t group) const {
  return impl().group(group).params;
}
const Options& Optimizer::options(std::size_t group) const {
  return impl().group(group).options;
}

const Hyperparameter& Optimizer::get(std::size_t group, const std::string& key) const {
  const Options& o = options(group);
  const auto it = o.find(key);
  if (it == o.end())
    throw std::invalid_argument("param group " + std::to_string(group) + " has no '" + key + "'");
  return it->second;
}

void Optimizer::set(std::size_t group, const std::string& key, Hyperparameter value) {
  detail::Impl& m = impl();
  Options& o = m.group(group).options;
  const auto it = o.find(key);
  if (it != o.end() && !detail::same_kind(*m.cls, key, it->second, value))
    throw std::invalid_argument("param group " + std::to_string(group) + ": '" + key +
                                "' cannot take a value of another kind (" +
                                detail::kind_name(value) + " for " + detail::kind_name(it->second) +
                                ")");
  o[key] = value;  // checked at the next step, before anything is written (as in Python)
}

void Optimizer::set_lr(double lr) {
  for (std::size_t g = 0; g < num_groups(); ++g) set_lr(lr, g);
}

void Optimizer::set_grad(std::size_t index, const void* grad) {
  impl().param(index).grad = grad;
}

void Optimizer::set_data(std::size_t index, void* data) {
  Param& p = impl().param(index);
  if (!data && p.numel) throw std::invalid_argument("parameter " + std::to_string(index) + ": null data");
  void* old = p.data;
  p.data = data;
  try {
    impl().check_overlaps();
  } catch (...) {
    p.data = old;
    throw;
  }
}

void Optimizer::add_param_group(ParamGroup group) {
  const detail::ClassDesc& c = *impl().cls;
  const std::size_t g = impl().groups.size();
  if (c.closure != detail::ClassDesc::Closure::none && g > 0)
    throw std::invalid_argument(c.name + " doesn't support per-parameter options (parameter groups)");
  for (const auto& [key, value] : group.options)
    if (!c.defaults.count(key) && !c.extra_keys.count(key))
      throw std::invalid_argument(c.name + ": param group " + std::to_string(g) +
                                  ": unknown hyperparameter '" + key + "'");
  Options merged = impl().defaults;
  for (const auto& [key, value] : group.options) merged[key] = value;
  if (c.group_init) c.group_init(impl().defaults, merged);
  detail::check_group(c, merged, g);
  if (group.params.empty())
    throw std::invalid_argument("param group " + std::to_string(g) + " has no parameters");
  for (std::size_t i = 0; i < group.params.size(); ++i) {
    const Param& p = group.params[i];
    const std::string where = "param group " + std::to_string(g) + ", parameter " +
                              std::to_string(i) + ": ";
    if (!p.data && p.numel) throw std::invalid_argument(where + "null data");
    if (static_cast<int>(p.dtype) < 0 || static_cast<int>(p.dtype) > 3)
      throw std::invalid_argument(where + "unknown dtype");
  }
  const std::size_t first_slot = impl().slots.size();
  impl().groups.push_back({std::move(group.params), std::move(merged), first_slot});
  const auto& params = impl().groups.back().params;
  for (std::size_t i = 0; i < params.size(); ++i)
    impl().slots.push_back({g, i, impl().empty_state(params[i])});
  try {
    impl().check_overlaps();
    if (c.closure != detail::ClassDesc::Closure::none) impl().check_closure_params();
  } catch (...) {
    impl().groups.pop_back();
    impl().slots.resize(first_slot);
    throw;
  }
}

std::vector<std::string> Optimizer::state_keys(std::size_t index) const {
  std::vector<std::string> keys;
  const detail::ParamStateStore& s = impl().slot(index).state;
  for (const detail::StateEntry& e : s.entries)
    if (e.buffer.data) keys.push_back(e.key);
  return keys;
}

StateTensor Optimizer::state(std::size_t index, const std::string& key) const {
  const detail::ParamStateStore& s = impl().slot(index).state;
  for (const detail::StateEntry& e : s.entries)
    if (e.key == key && e.buffer.data) return {e.buffer.data.get(), e.numel, e.dtype, e.scalar};
  return {};
}

double Optimizer::step_count(std::size_t index) const {
  const StateTensor t = state(index, "step");
  return t.data ? static_cast<double>(*static_cast<const float*>(t.data)) : 0.0;
}

void Optimizer::set_num_threads(int num_threads) {
  if (num_threads < 1) throw std::invalid_argument("num_threads must be at least 1");
  impl().num_threads = num_threads;
}
int Optimizer::num_threads() const { return impl().num_threads; }

void Optimizer::step() { impl().step(); }

}  // namespace optimcore

// --- Impl: groups, state and the step ----------------------------------------------------------

namespace optimcore::detail {

Group& Impl::group(std::size_t g) {
  if (g >= groups.size()) throw std::out_of_range("no param group " + std::to_string(g));
  return groups[g];
}
const Group& Impl::group(std::size_t g) const { return const_cast<Impl*>(this)->group(g); }
Slot& Impl::slot(std::size_t index) {
  if (index >= slots.size()) throw std::out_of_range("no parameter " + std::to_string(index));
  return slots[index];
}
const Slot& Impl::slot(std::size_t index) const { return const_cast<Impl*>(this)->slot(index); }
Param& Impl::param(std::size_t index) {
  if (index >= slots.size()) throw std::out_of_range("no parameter " + std::to_string(index));
  return groups[slots[index].group].params[slots[index].index];
}
const Param& Impl::param(std::size_t index) const { return const_cast<Impl*>(this)->param(index); }

ParamStateStore Impl::empty_state(const Param& p) const {
  ParamStateStore s;
  if (!cls->rule) return s;  // LBFGS, ConjugateGradient: closure_state
  const RuleDesc& r = *cls->rule;
  if (r.counts_steps) s.entries.push_back({"step", {}, 1, DType::float32, true});
  for (const std::string& key : r.states) s.entries.push_back({key, {}, p.numel, p.dtype, false});
  for (const std::string& key : r.scalars)
    s.entries.push_back({key, {}, 1, cls->scalar_dtype ? cls->scalar_dtype(key) : DType::float32,
                         true});
  return s;
}

void Impl::check_overlaps() const {
  struct Range {
    std::uintptr_t begin, end;
    std::size_t group, index;
  };
  std::vector<Range> ranges;
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (std::size_t i = 0; i < groups[g].params.size(); ++i) {
      const Param& p = groups[g].params[i];
      const auto begin = reinterpret_cast<std::uintptr_t>(p.data);
      if (p.numel) ranges.push_back({begin, begin + p.numel * element_size(p.dtype), g, i});
    }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (std::size_t k = 1; k < ranges.size(); ++k)
    if (ranges[k].begin < ranges[k - 1].end) {
      auto name = [](const Range& r) {
        return "param group " + std::to_string(r.group) + ", parameter " + std::to_string(r.index);
      };
      throw std::invalid_argument(name(ranges[k]) + " overlaps the memory of " +
                                  name(ranges[k - 1]) +
                                  ": every parameter must appear once, in memory of its own");
    }
}

namespace {

template <class T>
void fill_as(void* data, std::size_t numel, double value) {
  T* p = static_cast<T*>(data);
  const T v = static_cast<T>(value);
  std::fill(p, p + numel, v);
}

void fill(void* data, std::size_t numel, DType dtype, double value) {
  switch (dtype) {
    case DType::float32: fill_as<float>(data, numel, value); break;
    case DType::float64: fill_as<double>(data, numel, value); break;
    case DType::bfloat16:
      fill_as<std::uint16_t>(data, numel, to_bfloat16(static_cast<float>(value)).bits);
      break;
    case DType::float16:
#if OPTIMCORE_HAS_FLOAT16
      fill_as<std::uint16_t>(data, numel, to_float16(static_cast<float>(value)).bits);
#endif
      break;
  }
}

}  // namespace

void Impl::step() {
  if (!cls->rule)
    throw std::invalid_argument(cls->name + ".step needs a closure: step(closure)");
  const RuleDesc& r = *cls->rule;
  // 1. Every group's options, checked and converted, before anything is written.
  std::vector<std::shared_ptr<const void>> group_options(groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    check_group(*cls, groups[g].options, g);
    group_options[g] = r.build(core_options(*cls, groups[g].options));
  }
  // 2. State the step needs and the parameters do not have yet, allocated and filled aside
  //    (a failed allocation leaves everything as it was), then committed.
  struct Pending {
    std::size_t slot, entry;
    Buffer buffer;
  };
  std::vector<Pending> pending;
  std::vector<std::uint32_t> new_flags(slots.size(), 0);
  for (std::size_t index = 0; index < slots.size(); ++index) {
    const Param& p = param(index);
    if (!p.grad) continue;
    Slot& s = slot(index);
    const Group& g = groups[s.group];
    for (std::size_t e = 0; e < s.state.entries.size(); ++e) {
      const StateEntry& entry = s.state.entries[e];
      if (entry.buffer.data) continue;
      const std::size_t column = static_cast<std::size_t>(
          std::find(r.states.begin(), r.states.end(), entry.key) - r.states.begin());
      const bool per_element = column < r.states.size();
      if (per_element && cls->uses_state && !cls->uses_state(g.options, entry.key)) continue;
      Buffer b;
      b.allocate(entry.numel * element_size(entry.dtype));
      if (per_element && (r.fills_new_state & (1u << column))) {
        new_flags[index] |= 1u << column;  // the kernel writes it on this step
      } else {
        double value = 0.0;
        if (per_element && cls->state_fill) value = cls->state_fill(defaults, g.options, entry.key);
        if (!per_element && entry.key != "step" && cls->scalar_init)
          value = cls->scalar_init(g.options, entry.key);
        fill(b.data.get(), entry.numel, entry.dtype, value);
      }
      pending.push_back({index, e, std::move(b)});
    }
  }
  for (Pending& n : pending) slots[n.slot].state.entries[n.entry].buffer = std::move(n.buffer);

  // 3. One kernel call per group and dtype, on the row table _table.py builds in Python.
  const std::size_t n_states = r.states.size(), n_scalars = r.scalars.size();
  const std::size_t width = dispatch::kState0 + n_states + n_scalars;
  float unused_step = 0.0f;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Group& group = groups[g];
    for (int dtype = 0; dtype < 4; ++dtype) {
      std::vector<std::int64_t> table, grads;
      for (std::size_t i = 0; i < group.params.size(); ++i) {
        const Param& p = group.params[i];
        if (!p.grad || static_cast<int>(p.dtype) != dtype) continue;
        const std::size_t index = group.first_slot + i;
        ParamStateStore& st = slots[index].state;
        auto address = [](const void* q) {
          return static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(q));
        };
        auto entry_address = [&](const std::string& key) {
          StateEntry* e = st.find(key);
          return e ? address(e->buffer.data.get()) : 0;
        };
        std::vector<std::int64_t> row(width, 0);
        row[dispatch::kParam] = address(p.data);
        row[dispatch::kStep] = r.counts_steps ? entry_address("step") : address(&unused_step);
        row[dispatch::kNumel] = static_cast<std::int64_t>(p.numel);
        row[dispatch::kMaster] = 0;
        row[dispatch::kFlags] = new_flags[index];
        for (std::size_t k = 0; k < n_states; ++k)
          row[dispatch::kState0 + k] = entry_address(r.states[k]);
        for (std::size_t k = 0; k < n_scalars; ++k)
          row[dispatch::kState0 + n_states + k] = entry_address(r.scalars[k]);
        table.insert(table.end(), row.begin(), row.end());
        grads.push_back(address(p.grad));
      }
      if (grads.empty()) continue;
      dispatch::kernels().rules[r.id](table.data(), grads.data(), grads.size(), dtype,
                                      /*master=*/false, group_options[g].get(), num_threads);
    }
  }
}

void Impl::check_closure_params() const {
  const auto& params = groups.at(0).params;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    if (p.dtype != params[0].dtype || (p.dtype != DType::float32 && p.dtype != DType::float64))
      throw std::invalid_argument(cls->name + ": parameter " + std::to_string(i) + " is " +
                                  dtype_name(p.dtype) +
                                  ": the parameters must all be float32 or all float64");
  }
}

namespace {

// What the closure-driven kernels call back: the closure (then the gradients gathered into the
// kernel's vector) and vectors of n elements from the optimizer's pool.
struct ClosureContext {
  Impl* self;
  const std::function<double()>* closure;
  std::size_t bytes;              // one vector
  std::vector<const void*> data;  // the parameters at the start of the step
};

double evaluate_closure(void* context, std::int64_t grad) {
  auto& c = *static_cast<ClosureContext*>(context);
  const double loss = (*c.closure)();
  auto* out = reinterpret_cast<unsigned char*>(static_cast<std::uintptr_t>(grad));
  const auto& params = c.self->groups[0].params;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    if (p.data != c.data[i])
      throw std::invalid_argument(c.self->cls->name + ": the closure moved parameter " +
                                  std::to_string(i) + " (set_data) during a step");
    const std::size_t bytes = p.numel * element_size(p.dtype);
    if (bytes) std::memcpy(out, p.grad, bytes);
    out += bytes;
  }
  return loss;
}

std::int64_t closure_vector(void* context) {
  auto& c = *static_cast<ClosureContext*>(context);
  Impl& m = *c.self;
  void* v;
  if (!m.free_vectors.empty()) {
    v = m.free_vectors.back();
    m.free_vectors.pop_back();
  } else {
    m.vectors.emplace_back();
    m.vectors.back().allocate(c.bytes);
    v = m.vectors.back().data.get();
  }
  return static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(v));
}

void recycle_vector(void* context, std::int64_t vector) {
  static_cast<ClosureContext*>(context)->self->free_vectors.push_back(
      reinterpret_cast<void*>(static_cast<std::uintptr_t>(vector)));
}

template <class O>
void descent_options(O& o, const Options& g) {
  o.lr = number(g, "lr");
  o.max_iter = static_cast<std::int64_t>(number(g, "max_iter"));
  o.max_eval = static_cast<std::int64_t>(number(g, "max_eval"));
  o.tolerance_grad = number(g, "tolerance_grad");
  o.tolerance_change = number(g, "tolerance_change");
}

}  // namespace

double Impl::closure_step(const std::function<double()>& closure) {
  const Group& g = groups.at(0);
  check_group(*cls, g.options, 0);
  std::vector<std::int64_t> segments;
  std::vector<std::size_t> sizes;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < g.params.size(); ++i) {
    const Param& p = g.params[i];
    if (!p.grad && p.numel)
      throw std::invalid_argument(cls->name + ": parameter " + std::to_string(i) +
                                  " has no gradient buffer for the closure to fill");
    segments.push_back(static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(p.data)));
    sizes.push_back(p.numel);
    bytes += p.numel * element_size(p.dtype);
  }
  ClosureContext context{this, &closure, bytes, {}};
  for (const Param& p : g.params) context.data.push_back(p.data);
  dispatch::ClosureCallbacks calls;
  calls.context = &context;
  calls.evaluate = &evaluate_closure;
  calls.vector = &closure_vector;
  calls.recycle = &recycle_vector;
  const int dtype = static_cast<int>(g.params[0].dtype);
  ClosureStepResult r;
  if (cls->closure == ClassDesc::Closure::lbfgs) {
    LbfgsOptions o;
    descent_options(o, g.options);
    o.history_size = static_cast<std::int64_t>(number(g.options, "history_size"));
    o.line_search = !g.options.at("line_search_fn").is_none();
    r = dispatch::kernels().lbfgs(segments.data(), sizes.data(), segments.size(), dtype,
                                  closure_state, o, calls, num_threads);
  } else {
    ConjugateGradientOptions o;
    descent_options(o, g.options);
    const std::string& beta = g.options.at("beta").text();
    o.beta = beta == "FR"   ? CgBeta::kFletcherReeves
             : beta == "HS" ? CgBeta::kHestenesStiefel
             : beta == "DY" ? CgBeta::kDaiYuan
                            : CgBeta::kPolakRibierePlus;
    const Hyperparameter& every = g.options.at("restart_every");
    o.restart_every = every.is_none() ? 0 : static_cast<std::int64_t>(every.number());
    o.c1 = number(g.options, "c1");
    o.c2 = number(g.options, "c2");
    r = dispatch::kernels().conjugate_gradient(segments.data(), sizes.data(), segments.size(),
                                               dtype, closure_state, o, calls, num_threads);
  }
  return r.first_loss;
}

}  // namespace optimcore::detail
