// The tests' one assertion: CHECK(condition, printf-style message) prints what failed and
// counts it; each test program returns the count (no framework).
#pragma once

#include <cstdio>

inline int failures = 0;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      ++failures;                                          \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);     \
      std::printf(__VA_ARGS__);                            \
      std::printf("\n");                                   \
    }                                                      \
  } while (0)
