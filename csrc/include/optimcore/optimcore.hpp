// optimcore/optimcore.hpp: the whole header-only core. Each update rule lives in its own header.
#pragma once

#include "optimcore/common.hpp"
#include "optimcore/parallel.hpp"
#include "optimcore/overlap.hpp"
#include "optimcore/adam.hpp"
#include "optimcore/sgd.hpp"

#define OPTIMCORE_VERSION_MAJOR 0
#define OPTIMCORE_VERSION_MINOR 1
#define OPTIMCORE_VERSION_PATCH 0
