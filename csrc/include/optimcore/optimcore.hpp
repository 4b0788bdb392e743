// optimcore/optimcore.hpp: the whole header-only core. Each update rule lives in its own header.
#pragma once

#include "optimcore/common.hpp"
#include "optimcore/overlap.hpp"
#include "optimcore/parallel.hpp"

#include "optimcore/adabound.hpp"
#include "optimcore/adadelta.hpp"
#include "optimcore/adafactor.hpp"  // per-tensor reductions: its own entry, not in the list
#include "optimcore/adagrad.hpp"
#include "optimcore/adam.hpp"
#include "optimcore/adamax.hpp"
#include "optimcore/asgd.hpp"
#include "optimcore/conjugate_gradient.hpp"  // closure-driven (descent.hpp): its own entry
#include "optimcore/lamb.hpp"
#include "optimcore/lbfgs.hpp"  // closure-driven (descent.hpp): its own entry
#include "optimcore/lion.hpp"
#include "optimcore/nadam.hpp"
#include "optimcore/radam.hpp"
#include "optimcore/rmsprop.hpp"
#include "optimcore/rprop.hpp"
#include "optimcore/muon.hpp"  // around torch's Newton-Schulz: its own entries, not in the list
#include "optimcore/sgd.hpp"
#include "optimcore/swats.hpp"
#include "optimcore/sparse_adam.hpp"  // row-sparse gradients: its own entry, not in the list

// Every rule of the core, as X(function prefix, description type): `X(adam, Adam)` stands for
// optimcore::Adam (name, state, options) and optimcore::adam_step. Bindings and tests generate
// their per-rule code from this list; a new rule adds its header above and one line here.
#define OPTIMCORE_RULES(X) \
  X(sgd, Sgd)              \
  X(adam, Adam)            \
  X(adagrad, Adagrad)      \
  X(adadelta, Adadelta)    \
  X(adamax, Adamax)        \
  X(rmsprop, Rmsprop)      \
  X(radam, Radam)          \
  X(rprop, Rprop)          \
  X(nadam, Nadam)          \
  X(asgd, Asgd)            \
  X(adabound, AdaBound)    \
  X(lion, Lion)             \
  X(swats, Swats)           \
  X(lamb, Lamb)

// optimcore's version, defined here and nowhere else: CMakeLists.txt (project()), the wheel's
// metadata (pyproject.toml) and optimcore.__version__ all read these three lines.
#define OPTIMCORE_VERSION_MAJOR 0
#define OPTIMCORE_VERSION_MINOR 1
#define OPTIMCORE_VERSION_PATCH 0
