// The C++ API of liboptimcore (optimizer.hpp, lr_scheduler.hpp, checkpoints) against scalar
// references written out here, and its refusals: bad options, overlapping parameters, corrupt
// checkpoint files (truncated at every length, single bytes flipped), none of which may change
// the optimizer. tests/test_cpp_api.py compares the same API with Python and torch.optim.
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "optimcore/lr_scheduler.hpp"
#include "optimcore/optimizer.hpp"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Adam, float64, against torch's formula in double.
void adam_matches_reference() {
  const std::size_t n = 1000;
  std::vector<double> w(n), g(n), ref(n), m(n, 0.0), v(n, 0.0);
  for (std::size_t j = 0; j < n; ++j) w[j] = ref[j] = std::sin(0.1 * j);
  optimcore::Optimizer opt("AdamW", {{{optimcore::Param(w, g)}, {}}},
                           {{"lr", 0.01}, {"betas", {0.9, 0.99}}, {"weight_decay", 0.1}});
  for (int t = 1; t <= 5; ++t) {
    for (std::size_t j = 0; j < n; ++j) g[j] = std::cos(0.07 * j * t) + 0.5 * w[j];
    opt.step();
    const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.99, t);
    for (std::size_t j = 0; j < n; ++j) {
      const double grad = std::cos(0.07 * j * t) + 0.5 * ref[j];
      ref[j] *= 1 - 0.01 * 0.1;
      m[j] += (grad - m[j]) * (1 - 0.9);
      v[j] = v[j] * 0.99 + (1 - 0.99) * grad * grad;
      ref[j] -= 0.01 / bc1 * m[j] / (std::sqrt(v[j]) / std::sqrt(bc2) + 1e-8);
    }
  }
  double worst = 0;
  for (std::size_t j = 0; j < n; ++j) worst = std::max(worst, std::fabs(w[j] - ref[j]));
  CHECK(worst < 1e-12, "AdamW float64 differs from the reference by %g", worst);
  CHECK(opt.step_count(0) == 5.0, "step count %g", opt.step_count(0));
  const optimcore::StateTensor s = opt.state(0, "exp_avg");
  CHECK(s.data && s.numel == n && s.dtype == optimcore::DType::float64, "exp_avg state");
  CHECK(!opt.state(0, "max_exp_avg_sq").data, "max_exp_avg_sq without amsgrad");
}

// SGD with momentum and a parameter without a gradient: skipped, as torch skips p.grad None.
void sgd_skips_missing_gradients() {
  std::vector<float> a(8, 1.0f), ga(8, 1.0f), b(8, 1.0f), gb(8, 1.0f);
  optimcore::Optimizer opt("SGD", {{{optimcore::Param(a, ga), optimcore::Param(b, gb)}, {}}},
                           {{"lr", 0.5}, {"momentum", 0.9}});
  opt.set_grad(1, nullptr);
  opt.step();
  opt.step();
  CHECK(a[0] == 1.0f - 0.5f - 0.5f * 1.9f, "SGD momentum: %g", a[0]);
  CHECK(b[0] == 1.0f && opt.state_keys(1).empty(), "a parameter without gradient was touched");
}

template <class F>
bool throws(F&& f, const char* contains) {
  try {
    f();
  } catch (const std::exception& e) {
    if (std::string(e.what()).find(contains) != std::string::npos) return true;
    std::printf("  (message was: %s)\n", e.what());
    return false;
  }
  return false;
}

void refusals() {
  std::vector<float> w(16, 1.0f), g(16, 1.0f);
  using optimcore::Optimizer;
  using optimcore::Param;
  CHECK(throws([&] { Optimizer("Adam", {{{Param(w, g)}, {}}}, {{"lr", -1.0}}); },
               "Invalid learning rate: -1"), "negative lr");
  CHECK(throws([&] { Optimizer("Adam", {{{Param(w, g)}, {}}}, {{"betas", {1.0, 0.9}}}); },
               "Invalid beta parameter at index 0: 1"), "beta of 1");
  CHECK(throws([&] { Optimizer("Adamm", {{{Param(w, g)}, {}}}); }, "unknown optimizer 'Adamm'"),
        "unknown class");
  CHECK(throws([&] { Optimizer("SGD", {{{Param(w, g)}, {}}}, {{"lrr", 0.1}}); },
               "unknown hyperparameter 'lrr'"), "unknown key");
  CHECK(throws([&] {
          Optimizer("SGD", {{{Param(w.data(), g.data(), 16), Param(w.data() + 8, g.data(), 8)},
                             {}}});
        }, "parameter 1 overlaps the memory of param group 0, parameter 0"),
        "overlapping parameters");
  // An lr written between steps is checked at the step, before anything is written.
  Optimizer opt("Adam", {{{Param(w, g)}, {}}});
  opt.step();
  const std::vector<float> before = w;
  const float m0 = static_cast<const float*>(opt.state(0, "exp_avg").data)[0];
  opt.set(0, "betas", optimcore::Hyperparameter(1.0, 0.999));
  CHECK(throws([&] { opt.step(); }, "param group 0: Invalid beta parameter at index 0"),
        "beta of 1 set between steps");
  CHECK(w == before && static_cast<const float*>(opt.state(0, "exp_avg").data)[0] == m0 &&
            opt.step_count(0) == 1.0,
        "a refused step changed something");
}

// Schedules against their closed forms (torch's own formulas are compared in Python).
void schedules() {
  namespace ls = optimcore::lr_scheduler;
  std::vector<float> w(4, 1.0f), g(4, 0.0f);
  optimcore::Optimizer opt("SGD", {{{optimcore::Param(w, g)}, {}}}, {{"lr", 0.1}});
  ls::CosineAnnealingLR cosine(opt, 10, 0.0);
  for (int t = 1; t <= 10; ++t) {
    cosine.step();
    const double want = 0.1 * (1 + std::cos(M_PI * t / 10)) / 2;
    CHECK(std::fabs(opt.lr() - want) < 1e-15, "cosine at %d: %g vs %g", t, opt.lr(), want);
  }
  optimcore::Optimizer opt2("SGD", {{{optimcore::Param(w, g)}, {}}}, {{"lr", 0.1}});
  ls::StepLR step(opt2, 2, 0.5);
  for (int t = 1; t <= 6; ++t) step.step();
  CHECK(opt2.lr() == 0.1 * 0.125, "StepLR: %g", opt2.lr());
}

void checkpoints() {
  const std::string path = "optimizer_tests.safetensors";
  std::vector<float> w(300), g(300);
  std::vector<double> b(7), gb(7);
  for (std::size_t j = 0; j < w.size(); ++j) w[j] = g[j] = std::sin(0.3f * j);
  for (std::size_t j = 0; j < b.size(); ++j) b[j] = gb[j] = std::cos(0.5 * j);
  auto make = [&] {
    return optimcore::Optimizer(
        "NAdam", {{{optimcore::Param(w, g)}, {}}, {{optimcore::Param(b, gb)}, {{"lr", 0.001}}}},
        {{"lr", 0.01}});
  };
  optimcore::Optimizer a = make();
  for (int t = 0; t < 3; ++t) a.step();
  a.set_lr(0.005, 0);
  a.save(path);
  optimcore::Optimizer c = make();
  c.load(path);
  CHECK(c.lr(0) == 0.005 && c.lr(1) == 0.001, "param groups after load");
  CHECK(c.step_count(0) == 3.0 && c.step_count(1) == 3.0, "steps after load");
  for (const std::string key : {"exp_avg", "exp_avg_sq", "mu_product"}) {
    const auto x = a.state(0, key), y = c.state(0, key);
    CHECK(x.data && y.data && x.numel == y.numel &&
              std::equal(static_cast<const char*>(x.data),
                         static_cast<const char*>(x.data) + x.numel * 4,
                         static_cast<const char*>(y.data)),
          "state %s after load", key.c_str());
  }
  // Corrupt files: every truncation and single-byte flips of the header are refused (or, for
  // flips that keep the file valid, loaded); none may crash, and a refused load changes nothing.
  const std::string good = read_file(path);
  int refused = 0, loaded = 0;
  auto attempt = [&](const std::string& bytes) {
    write_file(path, bytes);
    optimcore::Optimizer d = make();
    d.step();
    const float before = static_cast<const float*>(d.state(0, "exp_avg").data)[5];
    try {
      d.load(path);
      ++loaded;
    } catch (const std::runtime_error&) {
      ++refused;
      CHECK(d.step_count(0) == 1.0 &&
                static_cast<const float*>(d.state(0, "exp_avg").data)[5] == before &&
                d.lr(0) == 0.01,
            "a refused load changed the optimizer");
    }
  };
  for (std::size_t len = 0; len < good.size(); len += (len < 600 ? 1 : 97)) attempt(good.substr(0, len));
  const std::size_t header = 8 + static_cast<unsigned char>(good[0]) + 256u * static_cast<unsigned char>(good[1]);
  for (std::size_t k = 0; k < header; k += 3) {
    std::string bad = good;
    bad[k] = static_cast<char>(bad[k] ^ 0x5A);
    attempt(bad);
  }
  CHECK(refused > 600, "refused %d corrupt files (loaded %d)", refused, loaded);
  // Another class, and other group sizes.
  write_file(path, good);
  std::vector<float> w2(300), g2(300);
  optimcore::Optimizer other("Adam", {{{optimcore::Param(w2, g2)}, {}}});
  CHECK(throws([&] { other.load(path); }, "saved from NAdam, not Adam"), "another class");
  optimcore::Optimizer fewer("NAdam", {{{optimcore::Param(w2, g2)}, {}}});
  CHECK(throws([&] { fewer.load(path); }, "different number of parameter groups"),
        "group count");
  std::remove(path.c_str());
}

// LBFGS and ConjugateGradient through step(closure): they minimize a quadratic, and a closure
// returning NaN leaves the parameters as they were.
void closure_methods() {
  for (const char* name : {"LBFGS", "ConjugateGradient"}) {
    std::vector<double> x(50, 3.0), g(50);
    optimcore::Options o;
    if (std::string(name) == "LBFGS") o["line_search_fn"] = "strong_wolfe";
    optimcore::Optimizer opt(name, {{{optimcore::Param(x, g)}, {}}}, o);
    auto quadratic = [&] {
      double loss = 0;
      for (std::size_t j = 0; j < x.size(); ++j) {
        const double c = 1.0 + j % 7, d = x[j] - 0.5 * (j % 3);
        loss += 0.5 * c * d * d;
        g[j] = c * d;
      }
      return loss;
    };
    const double first = opt.step(quadratic);
    double last = first;
    for (int k = 0; k < 5; ++k) last = opt.step(quadratic);
    CHECK(first > 100 && last < 1e-9, "%s: loss %g -> %g", name, first, last);
    const std::vector<double> before = x;
    bool refused = false;
    try {
      opt.step([&] {
        quadratic();
        return std::nan("");
      });
    } catch (const std::domain_error&) {
      refused = true;
    }
    CHECK(refused && x == before, "%s: a NaN loss was not refused, or moved the parameters", name);
    CHECK(throws([&] { opt.step(); }, "needs a closure"), "%s.step() without closure", name);
    CHECK(throws([&] { opt.save("unused.safetensors"); }, "not supported yet"),
          "%s: save", name);
  }
  // torch.optim.LBFGS takes max_iter = 0 (one evaluation, nothing moves), and empty parameters.
  {
    std::vector<double> x(5, 1.0), g(5), none, gnone;
    optimcore::Optimizer opt("LBFGS", {{{optimcore::Param(x, g), optimcore::Param(none, gnone)}, {}}},
                             {{"max_iter", 0}});
    int calls = 0;
    opt.step([&] {
      ++calls;
      for (double& v : g) v = 1.0;
      return 5.0;
    });
    CHECK(calls == 1 && x[0] == 1.0, "LBFGS max_iter 0: %d evaluations, x %g", calls, x[0]);
  }
  std::vector<double> a(4), ga(4);
  std::vector<float> b(4), gb(4);
  CHECK(throws([&] {
          optimcore::Optimizer("LBFGS", {{{optimcore::Param(a, ga), optimcore::Param(b, gb)}, {}}});
        }, "must all be float32 or all float64"), "LBFGS with mixed dtypes");
}

// What a demanding user tried (the review of the C++ API): each must throw before writing, or work.
void review_cases() {
  namespace ls = optimcore::lr_scheduler;
  using optimcore::Optimizer;
  using optimcore::Param;
  std::vector<float> w(8, 1.0f), g(8, 1.0f), w2(8, 1.0f), g2(8, 1.0f);
  // A moved-from optimizer throws instead of crashing.
  Optimizer a("SGD", {{{Param(w, g)}, {}}}, {{"lr", 0.1}});
  Optimizer b = std::move(a);
  CHECK(throws([&] { (void)a.num_groups(); }, "moved-from"), "moved-from optimizer");
  // Empty parameters (an empty std::vector has null data) are parameters like any other.
  std::vector<float> empty, gempty;
  Optimizer e("Adam", {{{Param(empty, gempty), Param(w2, g2)}, {}}});
  e.step();
  CHECK(e.step_count(1) == 1.0, "a group with an empty parameter");
  // A value of another kind is refused at once.
  CHECK(throws([&] { b.set(0, "lr", true); }, "another kind"), "set lr to a flag");
  CHECK(throws([&] { b.set(0, "nesterov", 1.0); }, "another kind"), "set a flag to a number");
  // Lion's decoupled weight decay divides by the initial lr.
  CHECK(throws([&] {
          Optimizer("Lion", {{{Param(w, g)}, {}}},
                    {{"lr", 0.0}, {"weight_decay", 0.1}, {"decoupled_weight_decay", true}});
        }, "initial lr must be > 0"), "Lion with lr 0");
  // A scheduler made before add_param_group refuses to step (torch: zip strict).
  Optimizer c("SGD", {{{Param(w, g)}, {}}}, {{"lr", 0.1}});
  ls::CosineAnnealingLR cosine(c, 10);
  c.add_param_group({{Param(w2, g2)}, {}});
  CHECK(throws([&] { cosine.step(); }, "the scheduler was made for 1"), "scheduler after add_param_group");
  // OneCycleLR with an empty phase: torch's ZeroDivisionError, at construction.
  Optimizer d("SGD", {{{Param(w2, g2)}, {}}}, {{"lr", 0.1}, {"momentum", 0.9}});
  CHECK(throws([&] { ls::OneCycleLR(d, 0.5, 4, ls::OneCycleOptions{0.25}); }, "division by zero"),
        "OneCycleLR with pct_start * total_steps == 1");
}

}  // namespace

int main() {
  adam_matches_reference();
  sgd_skips_missing_gradients();
  refusals();
  schedules();
  checkpoints();
  closure_methods();
  review_cases();
  if (failures == 0) std::printf("optimizer tests passed (SIMD level %s)\n",
                                 optimcore::dispatch::simd_level().c_str());
  return failures;
}
