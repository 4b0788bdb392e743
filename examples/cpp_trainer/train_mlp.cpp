// Trains a 2-layer MLP (16 -> 64 -> 1, tanh) on a synthetic regression task in pure C++, with
// optimcore::Optimizer("AdamW"), a linear warmup + cosine schedule (torch's LinearLR +
// CosineAnnealingLR in a SequentialLR), and a checkpoint: the run stops halfway, saves the
// optimizer (safetensors, readable by optimcore.checkpoint in Python) and the weights, and a new
// optimizer resumes from the files. The resumed run must end exactly where an uninterrupted run
// ends.
//   train_mlp [steps=400] [checkpoint dir=.]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "optimcore/lr_scheduler.hpp"
#include "optimcore/optimizer.hpp"

namespace {

constexpr int kIn = 16, kHidden = 64, kBatch = 64;

struct Model {
  std::vector<float> w1 = std::vector<float>(kHidden * kIn), b1 = std::vector<float>(kHidden),
                     w2 = std::vector<float>(kHidden), b2 = std::vector<float>(1);
  std::vector<float> gw1 = w1, gb1 = b1, gw2 = w2, gb2 = b2;  // gradients, same shapes

  explicit Model(unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& w : w1) w = normal(rng) / std::sqrt(static_cast<float>(kIn));
    for (float& w : w2) w = normal(rng) / std::sqrt(static_cast<float>(kHidden));
  }
  std::vector<std::vector<float>*> weights() { return {&w1, &b1, &w2, &b2}; }

  // Mean squared error over a batch; fills the gradients.
  float loss_and_grad(const std::vector<float>& x, const std::vector<float>& y) {
    for (auto* g : {&gw1, &gb1, &gw2, &gb2}) std::fill(g->begin(), g->end(), 0.0f);
    float loss = 0.0f;
    std::vector<float> h(kHidden);
    for (int n = 0; n < kBatch; ++n) {
      const float* xn = &x[n * kIn];
      float out = b2[0];
      for (int j = 0; j < kHidden; ++j) {
        float a = b1[j];
        for (int i = 0; i < kIn; ++i) a += w1[j * kIn + i] * xn[i];
        h[j] = std::tanh(a);
        out += w2[j] * h[j];
      }
      const float d = out - y[n];
      loss += d * d / kBatch;
      const float dout = 2.0f * d / kBatch;
      gb2[0] += dout;
      for (int j = 0; j < kHidden; ++j) {
        gw2[j] += dout * h[j];
        const float da = dout * w2[j] * (1.0f - h[j] * h[j]);
        gb1[j] += da;
        for (int i = 0; i < kIn; ++i) gw1[j * kIn + i] += da * xn[i];
      }
    }
    return loss;
  }
};

// Batch `step` of the task y = sin(x . v) + 0.1 x_0 x_1, the same for every run.
void batch(int step, std::vector<float>& x, std::vector<float>& y) {
  std::mt19937 rng(1000u + static_cast<unsigned>(step));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  x.resize(kBatch * kIn);
  y.resize(kBatch);
  for (float& v : x) v = normal(rng);
  for (int n = 0; n < kBatch; ++n) {
    float dot = 0.0f;
    for (int i = 0; i < kIn; ++i) dot += x[n * kIn + i] * (i % 2 ? 0.25f : -0.25f);
    y[n] = std::sin(dot) + 0.1f * x[n * kIn] * x[n * kIn + 1];
  }
}

struct Run {
  Model model{42};
  optimcore::Optimizer opt;
  optimcore::lr_scheduler::LinearLR warmup;
  optimcore::lr_scheduler::CosineAnnealingLR cosine;
  optimcore::lr_scheduler::SequentialLR schedule;

  static std::vector<optimcore::ParamGroup> groups(Model& m) {
    // Weight decay on the matrices only, as trainers usually do.
    return {{{optimcore::Param(m.w1, m.gw1), optimcore::Param(m.w2, m.gw2)}, {}},
            {{optimcore::Param(m.b1, m.gb1), optimcore::Param(m.b2, m.gb2)},
             {{"weight_decay", 0.0}}}};
  }
  Run(int steps, int warmup_steps)
      : opt("AdamW", groups(model), {{"lr", 3e-3}, {"weight_decay", 0.01}}),
        warmup(opt, 0.01, 1.0, warmup_steps),
        cosine(opt, steps - warmup_steps),
        schedule(opt, {&warmup, &cosine}, {warmup_steps}) {}

  float train(int from, int to) {
    std::vector<float> x, y;
    float loss = 0.0f;
    for (int step = from; step < to; ++step) {
      batch(step, x, y);
      loss = model.loss_and_grad(x, y);
      opt.step();
      schedule.step();
      if ((step + 1) % 100 == 0)
        std::printf("  step %4d  loss %.6f  lr %.6g\n", step + 1, loss, opt.lr());
    }
    return loss;
  }
};

void write_weights(Model& m, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  for (auto* w : m.weights())
    out.write(reinterpret_cast<const char*>(w->data()), static_cast<std::streamsize>(w->size() * 4));
  if (!out) throw std::runtime_error("cannot write " + path);
}
void read_weights(Model& m, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  for (auto* w : m.weights())
    in.read(reinterpret_cast<char*>(w->data()), static_cast<std::streamsize>(w->size() * 4));
  if (!in) throw std::runtime_error("cannot read " + path);
}

}  // namespace

int main(int argc, char** argv) try {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 400;
  const std::string dir = argc > 2 ? argv[2] : ".";
  const int warmup = steps / 10, half = steps / 2;
  std::printf("MLP %d-%d-1, AdamW lr 3e-3 (warmup %d, cosine to %d), SIMD level %s\n", kIn,
              kHidden, warmup, steps, optimcore::dispatch::simd_level().c_str());

  std::printf("uninterrupted:\n");
  Run whole(steps, warmup);
  const float first_loss = [&] {
    std::vector<float> x, y;
    batch(0, x, y);
    return Model(42).loss_and_grad(x, y);
  }();
  const float final_whole = whole.train(0, steps);

  std::printf("stopped at %d, checkpointed, resumed:\n", half);
  const std::string ckpt = dir + "/mlp_optimizer.safetensors", weights = dir + "/mlp_weights.bin";
  {
    Run first(steps, warmup);
    first.train(0, half);
    first.opt.save(ckpt);  // optimizer state and param groups (lr included)
    write_weights(first.model, weights);
  }
  Run resumed(steps, warmup);
  // The schedule is plain arithmetic on the step number: replay it to where the run stopped,
  // then restore the weights and the optimizer (state, param groups and their lr).
  for (int step = 0; step < half; ++step) resumed.schedule.step();
  read_weights(resumed.model, weights);
  resumed.opt.load(ckpt);
  const float final_resumed = resumed.train(half, steps);

  const bool same = final_whole == final_resumed && whole.model.w1 == resumed.model.w1;
  std::printf("first loss %.6f, final loss %.6f uninterrupted, %.6f resumed: %s\n", first_loss,
              final_whole, final_resumed, same ? "identical" : "DIFFERENT");
  return same && final_whole < first_loss ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
