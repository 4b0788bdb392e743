// A LibTorch trainer with optimcore's drop-ins (optimcore/libtorch.hpp) next to torch::optim:
//  1. trains the same MLP from the same initial weights with torch::optim::AdamW and with
//     optimcore::libtorch::AdamW (and SGD, Adam, Adagrad, RMSprop), in float64, printing both
//     losses;
//  2. times one optimizer step of each against torch::optim's on 16M elements (one tensor) and
//     on 2000 tensors of 256 elements, float32: medians over the repetitions, and the ratio.
//   libtorch_trainer [train steps=60] [bench reps=15] [threads=1]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "optimcore/libtorch.hpp"
#include "optimcore/optimizer.hpp"

namespace {

torch::nn::Sequential make_model() {
  torch::manual_seed(0);
  return torch::nn::Sequential(torch::nn::Linear(32, 128), torch::nn::Tanh(),
                               torch::nn::Linear(128, 128), torch::nn::Tanh(),
                               torch::nn::Linear(128, 1));
}

template <class Opt, class Options>
std::vector<double> train(int steps, const Options& options) {
  constexpr bool kClosure = std::is_base_of_v<torch::optim::LBFGS, Opt>;
  auto model = make_model();
  model->to(torch::kFloat64);
  Opt opt(model->parameters(), options);
  torch::manual_seed(1);
  const auto x = torch::randn({256, 32}, torch::kFloat64);
  const auto y = torch::sin(x.sum(1, true)) + 0.1 * x.select(1, 0).unsqueeze(1);
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    if constexpr (kClosure) {  // a few L-BFGS steps, each several evaluations
      if (step >= std::max(1, steps / 10)) break;
      auto loss = opt.step([&] {
        opt.zero_grad();
        auto l = torch::mse_loss(model->forward(x), y);
        l.backward();
        return l;
      });
      losses.push_back(loss.template item<double>());
    } else {
      opt.zero_grad();
      auto loss = torch::mse_loss(model->forward(x), y);
      loss.backward();
      opt.step();
      losses.push_back(loss.template item<double>());
    }
  }
  return losses;
}

template <class Opt, class Options>
double time_step(std::int64_t numel, int tensors, int reps, const Options& options) {
  std::vector<torch::Tensor> params;
  for (int i = 0; i < tensors; ++i) {
    auto p = torch::randn({numel / tensors}).requires_grad_(true);
    p.mutable_grad() = torch::randn({numel / tensors});
    params.push_back(p);
  }
  Opt opt(params, options);
  opt.step();  // state allocation
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2] * 1e3;
}

template <class Torch, class Ours, class Options>
void compare(const char* name, int steps, const Options& options, int& failures) {
  const auto a = train<Torch>(steps, options), b = train<Ours>(steps, options);
  double worst = 0;  // relative to the first loss (L-BFGS drives the loss to ~1e-7)
  for (std::size_t k = 0; k < a.size(); ++k)
    worst = std::max(worst, std::fabs(a[k] - b[k]) / std::fabs(a[0]));
  std::printf("%s, float64, %d steps\n  step  torch::optim loss      optimcore loss\n", name, steps);
  for (std::size_t k = 0; k < a.size(); k += std::max<std::size_t>(1, a.size() / 5))
    std::printf("  %4zu  %.15f  %.15f\n", k, a[k], b[k]);
  std::printf("  %4zu  %.15f  %.15f\n  largest difference / first loss: %.3g\n", a.size() - 1,
              a.back(), b.back(), worst);
  if (!(worst < 1e-10)) ++failures;
}

// The drop-in serializes as LibTorch's class does: torch::save of optimcore::libtorch::AdamW loads
// into torch::optim::AdamW, and the two then step identically.
bool serializes_like_libtorch(const torch::optim::AdamWOptions& options) {
  auto model = make_model();
  optimcore::libtorch::AdamW ours(model->parameters(), options);
  const auto x = torch::randn({16, 32});
  for (int step = 0; step < 3; ++step) {
    ours.zero_grad();
    model->forward(x).sum().backward();
    ours.step();
  }
  std::stringstream buffer;
  torch::save(ours, buffer);
  torch::optim::AdamW theirs(model->parameters(), options);
  torch::load(theirs, buffer);
  bool same = true;
  for (const auto& p : model->parameters()) {
    const auto& a = static_cast<const torch::optim::AdamParamState&>(*ours.state().at(p.unsafeGetTensorImpl()));
    const auto& b = static_cast<const torch::optim::AdamParamState&>(*theirs.state().at(p.unsafeGetTensorImpl()));
    same = same && a.step() == 3 && b.step() == 3 && torch::equal(a.exp_avg(), b.exp_avg()) &&
           torch::equal(a.exp_avg_sq(), b.exp_avg_sq());
  }
  std::printf("torch::save of the drop-in, torch::load into torch::optim::AdamW: %s\n",
              same ? "same state" : "DIFFERENT");
  return same;
}

// A parameter listed twice (a tied weight collected from two modules): LibTorch updates it once
// per listing; the drop-in hands such a list to LibTorch's step and ends in the same place.
bool duplicates_like_libtorch() {
  auto run = [](auto tag) {
    using Opt = decltype(tag);
    auto model = make_model();
    model->to(torch::kFloat64);
    auto params = model->parameters();
    params.push_back(params[0]);
    Opt opt(params, torch::optim::AdamOptions(1e-2));
    const auto x = torch::randn({16, 32}, torch::kFloat64);
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      model->forward(x).pow(2).mean().backward();
      opt.step();
    }
    return model->parameters()[0].clone();
  };
  torch::manual_seed(3);
  const auto a = run(torch::optim::Adam(std::vector<torch::Tensor>{torch::zeros(1)}));
  torch::manual_seed(3);
  const auto b = run(optimcore::libtorch::Adam(std::vector<torch::Tensor>{torch::zeros(1)}));
  const bool same = torch::equal(a, b);
  std::printf("a parameter listed twice: %s\n", same ? "same as torch::optim::Adam" : "DIFFERENT");
  return same;
}

// A closure that returns NaN at one evaluation: torch::optim::LBFGS carries on, so the drop-in
// does too (its step is undone and LibTorch's runs from the same point).
bool nan_loss_like_libtorch() {
  auto run = [](auto tag) {
    using Opt = decltype(tag);
    auto model = make_model();
    model->to(torch::kFloat64);
    Opt opt(model->parameters(), torch::optim::LBFGSOptions(1.0).max_iter(5));
    const auto x = torch::randn({16, 32}, torch::kFloat64);
    int evaluations = 0;
    for (int step = 0; step < 3; ++step)
      opt.step([&] {
        opt.zero_grad();
        auto loss = model->forward(x).pow(2).mean();
        loss.backward();
        return ++evaluations == 7 ? loss * std::nan("") : loss;
      });
    return model->parameters()[0].clone();
  };
  torch::manual_seed(5);
  const auto a = run(torch::optim::LBFGS(std::vector<torch::Tensor>{torch::zeros(1)}));
  torch::manual_seed(5);
  const auto b = run(optimcore::libtorch::LBFGS(std::vector<torch::Tensor>{torch::zeros(1)}));
  const bool close = torch::allclose(a, b, 1e-9, 1e-12) && torch::isfinite(b).all().item<bool>();
  std::printf("LBFGS with a NaN loss: %s\n", close ? "same as torch::optim::LBFGS" : "DIFFERENT");
  return close;
}

// The rules LibTorch lacks: the drop-in against optimcore::Optimizer of the same class (the C++
// API, which equals optimcore's Python classes bit for bit) on a copy of the model: the same
// losses, bit for bit. Then torch::save / torch::load of the drop-in round-trips its state.
template <class Dropin>
void compare_new(const char* name, int steps, const typename Dropin::Options& options,
                 const optimcore::Options& same, int& failures) {
  auto a = make_model(), b = make_model();
  a->to(torch::kFloat64);
  b->to(torch::kFloat64);
  Dropin dropin(a->parameters(), options);
  std::vector<optimcore::Param> params;
  for (auto& p : b->parameters())
    params.emplace_back(p.data_ptr<double>(), nullptr, static_cast<std::size_t>(p.numel()));
  optimcore::Optimizer reference(name, {{params, {}}}, same);
  torch::manual_seed(1);
  const auto x = torch::randn({256, 32}, torch::kFloat64);
  const auto y = torch::sin(x.sum(1, true));
  bool equal = true;
  for (int step = 0; step < steps; ++step) {
    dropin.zero_grad();
    auto la = torch::mse_loss(a->forward(x), y);
    la.backward();
    dropin.step();
    for (auto& p : b->parameters()) p.mutable_grad() = torch::Tensor();
    auto lb = torch::mse_loss(b->forward(x), y);
    lb.backward();
    std::size_t i = 0;
    for (auto& p : b->parameters()) reference.set_grad(i++, p.grad().data_ptr<double>());
    reference.step();
    equal = equal && la.item<double>() == lb.item<double>();
  }
  std::stringstream buffer;
  torch::save(dropin, buffer);
  Dropin reloaded(a->parameters(), options);
  torch::load(reloaded, buffer);
  const auto first = a->parameters()[0];
  const auto& s1 = static_cast<const typename Dropin::State&>(*dropin.state().at(first.unsafeGetTensorImpl()));
  const auto& s2 = static_cast<const typename Dropin::State&>(*reloaded.state().at(first.unsafeGetTensorImpl()));
  const bool saved = s1.step() == steps && s2.step() == steps;
  std::printf("%s (no torch::optim class), float64, %d steps: losses %s optimcore::Optimizer's, "
              "final %.15f; torch::save/load: %s\n",
              name, steps, equal ? "equal to" : "DIFFERENT from", a->forward(x).sub(y).pow(2).mean().item<double>(),
              saved ? "same state" : "DIFFERENT");
  if (!equal || !saved) ++failures;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 60;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 15;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  at::set_num_threads(threads);
  int failures = 0;
  const auto adamw = torch::optim::AdamWOptions(1e-3).weight_decay(0.01);
  const auto sgd = torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true);
  compare<torch::optim::AdamW, optimcore::libtorch::AdamW>("AdamW", steps, adamw, failures);
  compare<torch::optim::SGD, optimcore::libtorch::SGD>("SGD (momentum 0.9, Nesterov)", steps,
                                                       sgd, failures);
  compare<torch::optim::Adam, optimcore::libtorch::Adam>(
      "Adam (amsgrad, L2 weight decay)", steps,
      torch::optim::AdamOptions(1e-3).amsgrad(true).weight_decay(1e-3), failures);
  compare<torch::optim::Adagrad, optimcore::libtorch::Adagrad>(
      "Adagrad", steps, torch::optim::AdagradOptions(0.01).lr_decay(1e-3), failures);
  compare<torch::optim::RMSprop, optimcore::libtorch::RMSprop>(
      "RMSprop (centered, momentum 0.5)", steps,
      torch::optim::RMSpropOptions(1e-3).centered(true).momentum(0.5), failures);
  compare<torch::optim::LBFGS, optimcore::libtorch::LBFGS>(
      "LBFGS (history 10, steps of 20 iterations)", steps,
      torch::optim::LBFGSOptions(1.0).history_size(10), failures);
  compare<torch::optim::LBFGS, optimcore::libtorch::LBFGS>(
      "LBFGS (strong Wolfe)", steps,
      torch::optim::LBFGSOptions(1.0).line_search_fn("strong_wolfe"), failures);
  if (!serializes_like_libtorch(adamw)) ++failures;
  if (!duplicates_like_libtorch()) ++failures;
  if (!nan_loss_like_libtorch()) ++failures;
  namespace ol = optimcore::libtorch;
  compare_new<ol::Adadelta>("Adadelta", steps, ol::AdadeltaOptions(1.0), {{"lr", 1.0}}, failures);
  compare_new<ol::Adamax>("Adamax", steps, ol::AdamaxOptions(2e-3), {{"lr", 2e-3}}, failures);
  compare_new<ol::NAdam>("NAdam", steps, ol::NAdamOptions(2e-3).momentum_decay(4e-3),
                         {{"lr", 2e-3}}, failures);
  compare_new<ol::RAdam>("RAdam", steps, ol::RAdamOptions(1e-3).weight_decay(0.1).decoupled_weight_decay(true),
                         {{"lr", 1e-3}, {"weight_decay", 0.1}, {"decoupled_weight_decay", true}},
                         failures);
  compare_new<ol::ASGD>("ASGD", steps, ol::ASGDOptions(1e-2).t0(10), {{"lr", 1e-2}, {"t0", 10.0}},
                        failures);
  compare_new<ol::Rprop>("Rprop", steps, ol::RpropOptions(1e-2), {{"lr", 1e-2}}, failures);
  compare_new<ol::AdaBound>("AdaBound", steps, ol::AdaBoundOptions(1e-2).amsbound(true),
                            {{"lr", 1e-2}, {"amsbound", true}}, failures);
  compare_new<ol::AdaBoundW>("AdaBoundW", steps, ol::AdaBoundWOptions(1e-2),
                             {{"lr", 1e-2}}, failures);
  compare_new<ol::Lion>("Lion", steps,
                        ol::LionOptions(1e-3).weight_decay(0.1).decoupled_weight_decay(true),
                        {{"lr", 1e-3}, {"weight_decay", 0.1}, {"decoupled_weight_decay", true}},
                        failures);
  if (reps > 0) {
    std::printf("\none step, float32, %d thread(s), SIMD level %s: median ms over %d steps\n",
                threads, optimcore::dispatch::simd_level().c_str(), reps);
    std::printf("  %-8s %-12s %14s %12s %8s\n", "rule", "layout", "torch::optim", "optimcore",
                "speedup");
    struct Layout {
      const char* name;
      std::int64_t numel;
      int tensors;
    };
    for (const Layout& l : {Layout{"16M x 1", 1 << 24, 1}, Layout{"2000 x 256", 2000 * 256, 2000}}) {
      const double t = time_step<torch::optim::AdamW>(l.numel, l.tensors, reps, adamw);
      const double o = time_step<optimcore::libtorch::AdamW>(l.numel, l.tensors, reps, adamw);
      std::printf("  %-8s %-12s %14.2f %12.2f %7.1fx\n", "AdamW", l.name, t, o, t / o);
      const double ts = time_step<torch::optim::SGD>(l.numel, l.tensors, reps, sgd);
      const double os = time_step<optimcore::libtorch::SGD>(l.numel, l.tensors, reps, sgd);
      std::printf("  %-8s %-12s %14.2f %12.2f %7.1fx\n", "SGD", l.name, ts, os, ts / os);
    }
  }
  return failures;
}
