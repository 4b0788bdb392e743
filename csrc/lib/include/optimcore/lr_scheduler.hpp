// optimcore::lr_scheduler: torch.optim.lr_scheduler's schedules for optimcore::Optimizer, with
// torch's arithmetic (its chainable forms, step by step on each group's current lr), so a C++
// run gives the same learning rates, bit for bit, as the same schedule in Python:
//
//   optimcore::lr_scheduler::LinearLR warmup(opt, 0.01, 1.0, 100);
//   optimcore::lr_scheduler::CosineAnnealingLR cosine(opt, 900);
//   optimcore::lr_scheduler::SequentialLR schedule(opt, {&warmup, &cosine}, {100});
//   for (...) { ...; opt.step(); schedule.step(); }
//
// Each scheduler, like torch's, steps once when constructed (epoch 0) and records each group's
// lr as its base lr.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "optimcore/optimizer.hpp"

namespace optimcore::lr_scheduler {

class LRScheduler {
 public:
  // As torch: each group's "initial_lr" (set to its lr by the first scheduler) is the base lr.
  explicit LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
    for (std::size_t g = 0; g < optimizer.num_groups(); ++g) {
      if (!optimizer.options(g).count("initial_lr")) optimizer.set(g, "initial_lr", optimizer.lr(g));
      base_lrs_.push_back(optimizer.get(g, "initial_lr").number());
    }
  }
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // One epoch (or batch) on: the groups' lrs become the schedule's next values.
  virtual void step() {
    ++step_count_;
    update_lr();
  }
  // As torch (zip(..., strict=True)): a group added after the scheduler was made has no base lr.
  void check_groups() const {
    if (optimizer_.num_groups() != base_lrs_.size())
      throw std::invalid_argument(
          "the optimizer has " + std::to_string(optimizer_.num_groups()) +
          " param groups, the scheduler was made for " + std::to_string(base_lrs_.size()));
  }
  int last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  std::vector<double> get_last_lr() const { return lrs(); }

 protected:
  // torch's get_lr(): the lrs for last_epoch_, from the groups' current ones.
  virtual std::vector<double> get_lr() = 0;
  // torch's _get_closed_form_lr(), where the schedule has one (used by SequentialLR).
  virtual bool closed_form(std::vector<double>&) { return false; }

  // Construction's step (torch's _initial_step), to be called by each subclass's constructor.
  void initial_step() {
    step_count_ = 0;
    initial_ = true;
    step();
    initial_ = false;
  }
  void update_lr() {
    check_groups();
    ++last_epoch_;
    set(get_lr());
  }
  // torch's _update_lr(epoch): jump to `epoch`, in closed form where there is one.
  void update_lr_at(int epoch) {
    check_groups();
    last_epoch_ = epoch;
    std::vector<double> values;
    if (!closed_form(values)) values = get_lr();
    set(values);
  }
  std::vector<double> lrs() const {
    std::vector<double> v;
    for (std::size_t g = 0; g < optimizer_.num_groups(); ++g) v.push_back(optimizer_.lr(g));
    return v;
  }
  void set(const std::vector<double>& values) {
    for (std::size_t g = 0; g < values.size(); ++g) optimizer_.set_lr(values[g], g);
  }

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  int last_epoch_ = -1;
  int step_count_ = 0;
  bool initial_ = false;

  friend class SequentialLR;
};

// lr * gamma every step_size epochs.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int step_size, double gamma = 0.1)
      : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
    if (step_size < 1) throw std::invalid_argument("StepLR: step_size must be at least 1");
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> v = lrs();
    if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return v;
    for (double& lr : v) lr *= gamma_;
    return v;
  }
  bool closed_form(std::vector<double>& v) override {
    v.clear();
    for (double base : base_lrs_) v.push_back(base * std::pow(gamma_, last_epoch_ / step_size_));
    return true;
  }
  int step_size_;
  double gamma_;
};

// lr * gamma at each milestone (gamma^k for a milestone listed k times).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int> milestones, double gamma = 0.1)
      : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
    std::sort(milestones_.begin(), milestones_.end());
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> v = lrs();
    const auto count = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
    if (count == 0) return v;
    for (double& lr : v) lr *= std::pow(gamma_, static_cast<double>(count));
    return v;
  }
  bool closed_form(std::vector<double>& v) override {
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) -
                        milestones_.begin();
    v.clear();
    for (double base : base_lrs_) v.push_back(base * std::pow(gamma_, static_cast<double>(passed)));
    return true;
  }
  std::vector<int> milestones_;
  double gamma_;
};

// lr * gamma every epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> v = lrs();
    if (initial_) return v;
    for (double& lr : v) lr *= gamma_;
    return v;
  }
  bool closed_form(std::vector<double>& v) override {
    v.clear();
    for (double base : base_lrs_) v.push_back(base * std::pow(gamma_, last_epoch_));
    return true;
  }
  double gamma_;
};

// From start_factor * lr to end_factor * lr, linearly over total_iters epochs (warmup).
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           int total_iters = 5)
      : LRScheduler(optimizer), start_(start_factor), end_(end_factor), total_(total_iters) {
    if (start_factor > 1.0 || start_factor <= 0)
      throw std::invalid_argument(
          "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.");
    if (end_factor > 1.0 || end_factor < 0)
      throw std::invalid_argument(
          "Ending multiplicative factor expected to be between 0 and 1.");
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> v = lrs();
    if (last_epoch_ == 0) {
      for (double& lr : v) lr *= start_;
      return v;
    }
    if (initial_ || last_epoch_ > total_) return v;
    const double factor =
        1.0 + (end_ - start_) / (total_ * start_ + (last_epoch_ - 1) * (end_ - start_));
    for (double& lr : v) lr *= factor;
    return v;
  }
  bool closed_form(std::vector<double>& v) override {
    v.clear();
    const double progress = std::min(total_, last_epoch_);
    for (double base : base_lrs_)
      v.push_back(base * (start_ + (end_ - start_) * progress / total_));
    return true;
  }
  double start_, end_;
  int total_;
};

// eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, in torch's recursive form.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int T_max, double eta_min = 0.0)
      : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
    if (T_max < 1) throw std::invalid_argument("CosineAnnealingLR: T_max must be at least 1");
    initial_step();
  }

 protected:
  std::vector<double> get_lr() override {
    std::vector<double> v = lrs();
    const double pi = M_PI;
    if (initial_) return v;
    if (step_count_ == 1 && last_epoch_ > 0) {
      for (std::size_t g = 0; g < v.size(); ++g)
        v[g] = eta_min_ + (base_lrs_[g] - eta_min_) *
                              (1 + std::cos(last_epoch_ * pi / T_max_)) / 2;
      return v;
    }
    if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
      for (std::size_t g = 0; g < v.size(); ++g)
        v[g] = v[g] + (base_lrs_[g] - eta_min_) * (1 - std::cos(pi / T_max_)) / 2;
      return v;
    }
    for (double& lr : v)
      lr = (1 + std::cos(pi * last_epoch_ / T_max_)) /
               (1 + std::cos(pi * (last_epoch_ - 1) / T_max_)) * (lr - eta_min_) +
           eta_min_;
    return v;
  }
  bool closed_form(std::vector<double>& v) override {
    v.clear();
    for (double base : base_lrs_)
      v.push_back(eta_min_ + (base - eta_min_) * (1 + std::cos(M_PI * last_epoch_ / T_max_)) / 2);
    return true;
  }
  int T_max_;
  double eta_min_;
};

// Schedulers one after another: schedulers[i] runs from milestones[i - 1] on (torch's
// SequentialLR, e.g. LinearLR warmup then CosineAnnealingLR). The schedulers must be built on
// the same optimizer, before this one, and outlive it.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<LRScheduler*> schedulers,
               std::vector<int> milestones)
      : LRScheduler(optimizer), schedulers_(std::move(schedulers)),
        milestones_(std::move(milestones)) {
    if (schedulers_.empty())
      throw std::invalid_argument("SequentialLR expects at least one scheduler, but got no scheduler.");
    if (milestones_.size() != schedulers_.size() - 1)
      throw std::invalid_argument(
          "Sequential Schedulers expects number of schedulers provided to be one more than the "
          "number of milestone points");
    for (LRScheduler* s : schedulers_)
      if (&s->optimizer_ != &optimizer)
        throw std::invalid_argument("SequentialLR expects all schedulers to belong to the same optimizer");
    // As torch: back to the initial lrs, undo the schedulers' construction steps, and take the
    // construction step of the first one only.
    base_lrs_ = schedulers_.front()->base_lrs_;
    last_epoch_ = 0;
    set(base_lrs_);
    for (LRScheduler* s : schedulers_) s->last_epoch_ -= 1;
    schedulers_[index()]->initial_step();
  }

  void step() override {
    ++last_epoch_;
    const std::size_t i = index();
    if (i > 0 && milestones_[i - 1] == last_epoch_) schedulers_[i]->update_lr_at(0);
    else schedulers_[i]->step();
  }

 protected:
  std::vector<double> get_lr() override { return lrs(); }
  std::size_t index() const {
    return static_cast<std::size_t>(
        std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) -
        milestones_.begin());
  }
  std::vector<LRScheduler*> schedulers_;
  std::vector<int> milestones_;
};

// The 1cycle policy (torch's OneCycleLR): from max_lr / div_factor up to max_lr over pct_start of
// total_steps, then down to max_lr / (div_factor * final_div_factor); momentum (SGD's momentum,
// or beta1 of Adam-like classes) cycles inversely between max_momentum and base_momentum.
struct OneCycleOptions {
  double pct_start = 0.3;
  bool anneal_cos = true;  // false: linear
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};

class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, int total_steps, OneCycleOptions o = {})
      : LRScheduler(optimizer), total_steps_(total_steps), o_(o) {
    if (total_steps <= 0)
      throw std::invalid_argument("Expected positive integer total_steps, but got " +
                                  std::to_string(total_steps));
    if (o.pct_start < 0 || o.pct_start > 1)
      throw std::invalid_argument("Expected float between 0 and 1 pct_start, but got " +
                                  std::to_string(o.pct_start));
    const double initial = max_lr / o.div_factor;
    initial_lr_ = initial;
    max_lr_ = max_lr;
    min_lr_ = initial / o.final_div_factor;
    if (o.three_phase) {
      phases_ = {{o.pct_start * total_steps - 1, kInitial, kMax, kMaxMomentum, kBaseMomentum},
                 {2 * o.pct_start * total_steps - 2, kMax, kInitial, kBaseMomentum, kMaxMomentum},
                 {total_steps - 1.0, kInitial, kMin, kMaxMomentum, kMaxMomentum}};
    } else {
      phases_ = {{o.pct_start * total_steps - 1, kInitial, kMax, kMaxMomentum, kBaseMomentum},
                 {total_steps - 1.0, kMax, kMin, kBaseMomentum, kMaxMomentum}};
    }
    if (o.cycle_momentum) {
      const Options& d = optimizer.defaults();
      use_beta1_ = d.count("betas") > 0;
      if (!use_beta1_ && !d.count("momentum"))
        throw std::invalid_argument(
            "optimizer must support momentum or beta1 with `cycle_momentum` option enabled");
      for (std::size_t g = 0; g < optimizer.num_groups(); ++g) set_momentum(g, o.max_momentum);
    }
    // torch sets each group's "initial_lr" to max_lr / div_factor: the first step's lr.
    base_lrs_.assign(optimizer.num_groups(), initial_lr_);
    for (std::size_t g = 0; g < optimizer.num_groups(); ++g)
      optimizer.set(g, "initial_lr", initial_lr_);
    initial_step();
  }

 protected:
  enum Which { kInitial, kMax, kMin, kBaseMomentum, kMaxMomentum };
  struct Phase {
    double end_step;
    Which start_lr, end_lr, start_momentum, end_momentum;
  };
  double value(Which w) const {
    switch (w) {
      case kInitial: return initial_lr_;
      case kMax: return max_lr_;
      case kMin: return min_lr_;
      case kBaseMomentum: return o_.base_momentum;
      case kMaxMomentum: return o_.max_momentum;
    }
    return 0.0;
  }
  double anneal(double start, double end, double pct) const {
    if (o_.anneal_cos) return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1);
    return (end - start) * pct + start;
  }
  void set_momentum(std::size_t g, double m) {
    if (use_beta1_) {
      const Hyperparameter betas = optimizer_.get(g, "betas");
      optimizer_.set(g, "betas", Hyperparameter(m, betas.second()));
    } else {
      optimizer_.set(g, "momentum", m);
    }
  }
  std::vector<double> get_lr() override {
    const int step_num = last_epoch_;
    if (step_num > total_steps_)
      throw std::invalid_argument("Tried to step " + std::to_string(step_num) +
                                  " times. The specified number of total steps is " +
                                  std::to_string(total_steps_));
    std::vector<double> v(optimizer_.num_groups());
    for (std::size_t g = 0; g < v.size(); ++g) {
      double start_step = 0.0;
      for (std::size_t i = 0; i < phases_.size(); ++i) {
        const Phase& p = phases_[i];
        if (step_num <= p.end_step || i == phases_.size() - 1) {
          if (p.end_step == start_step)  // torch: ZeroDivisionError
            throw std::domain_error("OneCycleLR: float division by zero (a phase of no steps: "
                                    "pct_start * total_steps is too small)");
          const double pct = (step_num - start_step) / (p.end_step - start_step);
          v[g] = anneal(value(p.start_lr), value(p.end_lr), pct);
          if (o_.cycle_momentum)
            set_momentum(g, anneal(value(p.start_momentum), value(p.end_momentum), pct));
          break;
        }
        start_step = p.end_step;
      }
    }
    return v;
  }
  int total_steps_;
  OneCycleOptions o_;
  double initial_lr_ = 0, max_lr_ = 0, min_lr_ = 0;
  bool use_beta1_ = false;
  std::vector<Phase> phases_;
};

}  // namespace optimcore::lr_scheduler
