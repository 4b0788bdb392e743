// A deterministic training run through optimcore::Optimizer, printed as JSON, for
// tests/test_cpp_api.py, which runs the same problem in Python (optimcore and torch.optim) and
// compares. Inputs are exact in every dtype (small integers over powers of two), so C++ and
// Python start from the same bits.
//
//   trajectory <Class> <float32|float64> <steps> [key=value ...] [--start T] [--load file]
//              [--save file] [--params-in file] [--params-out file] [--threads N]
//   trajectory --schedule <name> <steps> [args...]   (prints the lr of every step)
// A pair is written key=a,b; a flag key=true|false.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "optimcore/lr_scheduler.hpp"
#include "optimcore/optimizer.hpp"

namespace {

const std::size_t kSizes[3] = {5, 7, 300};

double initial(std::size_t i, std::size_t j) {
  return static_cast<double>(static_cast<long>((j * 31 + i * 7) % 23) - 11) / 8.0;
}
// The gradient at global step t: a pull toward zero plus a fixed pattern (exact in float32).
double gradient(double p, std::size_t i, std::size_t j, long t) {
  return p * 0.5 + static_cast<double>((t * 7 + static_cast<long>(j) * 13 + static_cast<long>(i) * 5) % 17 - 8) / 8.0;
}
// Parameter 1 has no gradient on odd steps (torch: p.grad is None).
bool has_grad(std::size_t i, long t) { return !(i == 1 && t % 2 == 1); }

optimcore::Hyperparameter parse_value(const std::string& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  if (v == "None") return nullptr;
  if (!v.empty() && (std::isalpha(static_cast<unsigned char>(v[0])) || v == "PR+"))
    return v;  // a text: line_search_fn=strong_wolfe, beta=FR
  const auto comma = v.find(',');
  if (comma != std::string::npos)
    return optimcore::Hyperparameter(std::stod(v.substr(0, comma)), std::stod(v.substr(comma + 1)));
  return std::stod(v);
}

template <class T>
int run(const std::string& cls, int steps, const optimcore::Options& options, long start,
        const std::string& load, const std::string& save, int threads,
        const std::string& params_in, const std::string& params_out) {
  std::vector<std::vector<T>> params(3), grads(3);
  for (std::size_t i = 0; i < 3; ++i) {
    params[i].resize(kSizes[i]);
    grads[i].resize(kSizes[i]);
    for (std::size_t j = 0; j < kSizes[i]; ++j) params[i][j] = static_cast<T>(initial(i, j));
  }
  // Group 0: parameters 0 and 1 with the options; group 1: parameter 2 with half the lr.
  // (LBFGS and ConjugateGradient: one group.)
  optimcore::Options second;
  if (options.count("lr")) second["lr"] = options.at("lr").number() / 2;
  std::vector<optimcore::ParamGroup> groups{
      {{optimcore::Param(params[0], grads[0]), optimcore::Param(params[1], grads[1])}, {}},
      {{optimcore::Param(params[2], grads[2])}, second}};
  if (cls == "LBFGS" || cls == "ConjugateGradient") {
    groups[0].params.push_back(groups[1].params[0]);
    groups.pop_back();
  }
  optimcore::Optimizer opt(cls, groups, options);
  if (threads > 0) opt.set_num_threads(threads);
  // The model's parameters travel beside the optimizer's checkpoint: raw T values, back to back.
  if (!params_in.empty()) {
    std::FILE* f = std::fopen(params_in.c_str(), "rb");
    for (auto& p : params)
      if (!f || std::fread(p.data(), sizeof(T), p.size(), f) != p.size())
        throw std::runtime_error("cannot read " + params_in);
    std::fclose(f);
  }
  if (!load.empty()) opt.load(load);
  const bool closure_driven = cls == "LBFGS" || cls == "ConjugateGradient";
  std::vector<double> losses;
  for (long t = start; t < start + steps && closure_driven; ++t) {
    // A quadratic: loss = sum 0.5 c (p - target)^2, c = 1 + j % 5.
    losses.push_back(opt.step([&] {
      double loss = 0.0;
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < kSizes[i]; ++j) {
          const double c = 1.0 + static_cast<double>(j % 5);
          const double target = static_cast<double>(static_cast<long>((j * 3 + i) % 7) - 3) / 4.0;
          const double d = static_cast<double>(params[i][j]) - target;
          loss += 0.5 * c * d * d;
          grads[i][j] = static_cast<T>(c * d);
        }
      return loss;
    }));
  }
  for (long t = start; t < start + steps && !closure_driven; ++t) {
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t j = 0; j < kSizes[i]; ++j)
        grads[i][j] = static_cast<T>(gradient(static_cast<double>(params[i][j]), i, j, t));
      opt.set_grad(i, has_grad(i, t) ? grads[i].data() : nullptr);
    }
    opt.step();
  }
  if (!save.empty()) opt.save(save);
  if (!params_out.empty()) {
    std::FILE* f = std::fopen(params_out.c_str(), "wb");
    for (const auto& p : params)
      if (!f || std::fwrite(p.data(), sizeof(T), p.size(), f) != p.size())
        throw std::runtime_error("cannot write " + params_out);
    std::fclose(f);
  }
  std::printf("{\"params\": [");
  for (std::size_t i = 0; i < 3; ++i) {
    std::printf(i ? ", [" : "[");
    for (std::size_t j = 0; j < kSizes[i]; ++j)
      std::printf(j ? ", %.17g" : "%.17g", static_cast<double>(params[i][j]));
    std::printf("]");
  }
  std::printf("], \"steps\": [");
  for (std::size_t i = 0; i < 3; ++i) std::printf(i ? ", %.17g" : "%.17g", opt.step_count(i));
  std::printf("], \"losses\": [");
  for (std::size_t k = 0; k < losses.size(); ++k) std::printf(k ? ", %.17g" : "%.17g", losses[k]);
  std::printf("]}\n");
  return 0;
}

int schedule(int argc, char** argv) {
  namespace ls = optimcore::lr_scheduler;
  const std::string name = argv[2];
  const int steps = std::atoi(argv[3]);
  auto arg = [&](int k, double fallback) { return argc > 4 + k ? std::atof(argv[4 + k]) : fallback; };
  std::vector<float> w(4, 1.0f), g(4, 0.0f);
  const bool adam = name == "onecycle_adam";
  optimcore::Options options{{"lr", 0.1}};
  if (!adam) options["momentum"] = 0.9;
  optimcore::Optimizer opt(adam ? "AdamW" : "SGD", {{{optimcore::Param(w, g)}, {}}}, options);
  std::vector<std::unique_ptr<ls::LRScheduler>> owned;
  ls::LRScheduler* s = nullptr;
  if (name == "step") s = new ls::StepLR(opt, static_cast<int>(arg(0, 3)), arg(1, 0.5));
  else if (name == "multistep") s = new ls::MultiStepLR(opt, {2, 5, 5, 9}, arg(0, 0.3));
  else if (name == "exponential") s = new ls::ExponentialLR(opt, arg(0, 0.9));
  else if (name == "linear") s = new ls::LinearLR(opt, arg(0, 0.25), arg(1, 1.0), static_cast<int>(arg(2, 7)));
  else if (name == "cosine") s = new ls::CosineAnnealingLR(opt, static_cast<int>(arg(0, 10)), arg(1, 0.001));
  else if (name == "warmup_cosine") {
    auto* warmup = new ls::LinearLR(opt, arg(0, 0.01), 1.0, static_cast<int>(arg(1, 5)));
    auto* cosine = new ls::CosineAnnealingLR(opt, static_cast<int>(arg(2, 20)), arg(3, 0.0));
    owned.emplace_back(warmup);
    owned.emplace_back(cosine);
    s = new ls::SequentialLR(opt, {warmup, cosine}, {static_cast<int>(arg(1, 5))});
  } else if (name == "onecycle" || name == "onecycle_adam" || name == "onecycle3") {
    ls::OneCycleOptions o;
    o.three_phase = name == "onecycle3";
    s = new ls::OneCycleLR(opt, 0.5, steps + 1, o);
  } else {
    throw std::invalid_argument("unknown schedule " + name);
  }
  owned.emplace_back(s);
  const char* key = adam ? "betas" : "momentum";
  std::printf("{\"lr\": [%.17g", opt.lr());
  std::vector<double> momentum{adam ? opt.get(0, key).first() : opt.get(0, key).number()};
  for (int t = 0; t < steps; ++t) {
    opt.step();
    s->step();
    std::printf(", %.17g", opt.lr());
    momentum.push_back(adam ? opt.get(0, key).first() : opt.get(0, key).number());
  }
  std::printf("], \"momentum\": [");
  for (std::size_t k = 0; k < momentum.size(); ++k) std::printf(k ? ", %.17g" : "%.17g", momentum[k]);
  std::printf("]}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc >= 4 && std::string(argv[1]) == "--schedule") return schedule(argc, argv);
  if (argc < 4) {
    std::fprintf(stderr, "usage: trajectory <Class> <float32|float64> <steps> [key=value ...]\n");
    return 2;
  }
  const std::string cls = argv[1], dtype = argv[2];
  const int steps = std::atoi(argv[3]);
  optimcore::Options options;
  long start = 0;
  int threads = 0;
  std::string load, save, params_in, params_out;
  for (int k = 4; k < argc; ++k) {
    const std::string a = argv[k];
    if (a == "--start") start = std::atol(argv[++k]);
    else if (a == "--load") load = argv[++k];
    else if (a == "--save") save = argv[++k];
    else if (a == "--threads") threads = std::atoi(argv[++k]);
    else if (a == "--params-in") params_in = argv[++k];
    else if (a == "--params-out") params_out = argv[++k];
    else {
      const auto eq = a.find('=');
      options[a.substr(0, eq)] = parse_value(a.substr(eq + 1));
    }
  }
  if (dtype == "float64")
    return run<double>(cls, steps, options, start, load, save, threads, params_in, params_out);
  return run<float>(cls, steps, options, start, load, save, threads, params_in, params_out);
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
