// Private to liboptimcore: what optimizer.cpp (classes, steps) and checkpoint.cpp (safetensors)
// share about an Optimizer's groups and state.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "optimcore/optimizer.hpp"

namespace optimcore::detail {

std::string format_number(double v);

// A rule of the core, as its kernel describes it (optimcore.hpp's OPTIMCORE_RULES).
struct RuleDesc {
  dispatch::RuleId id{};
  std::string prefix;
  std::vector<std::string> states;  // per-element state, in table order
  std::uint32_t fills_new_state = 0;
  bool counts_steps = true;
  std::vector<std::string> scalars;  // per-tensor 0-d state
  std::vector<std::string> options;  // the kernel's option names
  std::function<std::shared_ptr<const void>(const std::map<std::string, double>&)> build;
};

// A class: torch.optim's name, defaults and constructor checks for a rule, and what the Python
// class adds around the kernel (python/optimcore/<rule>.py).
struct ClassDesc {
  std::string name;
  const RuleDesc* rule = nullptr;  // elementwise rules
  enum class Closure { none, lbfgs, conjugate_gradient } closure = Closure::none;
  std::set<std::string> extra_keys;  // keys a group may have beyond the defaults' (base_lr, ...)
  Options defaults;
  std::function<void(const Options&)> check;  // throws std::invalid_argument
  std::function<bool(const Options&, const std::string&)> uses_state;
  // State a checkpoint may lack although the options use it (switched on mid-training): it
  // starts as on a first step. Any other missing state of a parameter with state is corrupt.
  std::set<std::string> optional_state;
  // The value a new state tensor starts from (default 0): (defaults, group, key).
  std::function<double(const Options&, const Options&, const std::string&)> state_fill;
  std::function<double(const Options&, const std::string&)> scalar_init;  // default 0
  std::function<DType(const std::string&)> scalar_dtype;                 // default float32
  std::function<void(const Options&, Options&)> group_init;  // keys a group adds (base_lr)
  std::function<void(const Options&, std::map<std::string, double>&)> core_options;
};

const std::vector<ClassDesc>& classes();
const char* kind_name(const Hyperparameter& h);
// Whether `value` may replace `current` under `key`: the same kind, or None for a key that may be
// None.
bool same_kind(const ClassDesc& c, const std::string& key, const Hyperparameter& current,
               const Hyperparameter& value);
const ClassDesc& find_class(const std::string& name);
std::map<std::string, double> core_options(const ClassDesc& c, const Options& group);
void check_group(const ClassDesc& c, const Options& group, std::size_t index);

struct Free {
  void operator()(void* p) const { std::free(p); }
};
// 64-byte aligned, uninitialised memory.
struct Buffer {
  std::unique_ptr<void, Free> data;
  std::size_t size = 0;
  void allocate(std::size_t bytes);
};

// One state tensor of a parameter; buffer.data == nullptr: absent.
struct StateEntry {
  std::string key;
  Buffer buffer;
  std::size_t numel = 0;
  DType dtype = DType::float32;
  bool scalar = false;
};
// A parameter's state, in torch's key order ("step", the per-element state, the scalars).
struct ParamStateStore {
  std::vector<StateEntry> entries;
  bool empty() const {
    for (const StateEntry& e : entries)
      if (e.buffer.data) return false;
    return true;
  }
  StateEntry* find(const std::string& key) {
    for (StateEntry& e : entries)
      if (e.key == key) return &e;
    return nullptr;
  }
};

struct Group {
  std::vector<Param> params;
  Options options;
  std::size_t first_slot = 0;
};
struct Slot {
  std::size_t group = 0, index = 0;
  ParamStateStore state;
};

struct Impl {
  const ClassDesc* cls = nullptr;
  Options defaults;
  std::vector<Group> groups;
  std::vector<Slot> slots;  // every parameter, numbered as in torch's state_dict
  int num_threads = 1;

  Group& group(std::size_t g);
  const Group& group(std::size_t g) const;
  Slot& slot(std::size_t index);
  const Slot& slot(std::size_t index) const;
  Param& param(std::size_t index);
  const Param& param(std::size_t index) const;

  // Throws std::invalid_argument if two parameters share memory.
  void check_overlaps() const;
  // LBFGS / ConjugateGradient: their state between steps (vectors from `vectors`).
  dispatch::ClosureState closure_state;
  std::vector<Buffer> vectors;
  std::vector<void*> free_vectors;

  // A new parameter's (empty) state: every key the rule can keep, none allocated.
  ParamStateStore empty_state(const Param& p) const;
  void step();
  double closure_step(const std::function<double()>& closure);
  void check_closure_params() const;
};

}  // namespace optimcore::detail
