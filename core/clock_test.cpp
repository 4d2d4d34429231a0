#include "gale/core/clock.h"

#include <chrono>

#include <gtest/gtest.h>

namespace gale {
namespace {

int64_t chronoSteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Latencies subtract steadyNanos() from origins that other code may stamp with
// std::chrono::steady_clock: both must be the same clock, read in order.
TEST(SystemClock, SteadyNanosIsStdSteadyClocksTime) {
  for (int i = 0; i < 1000; ++i) {
    int64_t before = chronoSteadyNanos();
    int64_t t = SystemClock::steadyNanos();
    int64_t after = chronoSteadyNanos();
    ASSERT_LE(before, t);
    ASSERT_LE(t, after);
  }
  int64_t before = chronoSteadyNanos();
  int64_t t = SystemClock::instance().monoNanos();
  EXPECT_LE(before, t);
  EXPECT_LE(t, chronoSteadyNanos());
}

}  // namespace
}  // namespace gale
