// Processing time. Everything that reads the wall clock goes through a Clock so tests can use
// ManualClock and never sleep.
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "gale/core/value.h"

namespace gale {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (processing time), microseconds since the epoch.
  virtual Timestamp now() const = 0;
  // Monotonic nanoseconds, for measuring latencies.
  virtual int64_t monoNanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp now() const override {
    return Timestamp{std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count()};
  }
  int64_t monoNanos() const override { return steadyNanos(); }
  // std::chrono::steady_clock's time (libstdc++ reads CLOCK_MONOTONIC too), read without its
  // out-of-line now(): operators read it per tuple for latencies (docs/benchmarks.md).
  static int64_t steadyNanos() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
  static SystemClock& instance();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start = Timestamp{0}) : micros_(start.micros) {}
  Timestamp now() const override { return Timestamp{micros_.load()}; }
  int64_t monoNanos() const override { return micros_.load() * 1000; }
  void set(Timestamp t) { micros_.store(t.micros); }
  void advance(Duration d) { micros_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> micros_;
};

}  // namespace gale
