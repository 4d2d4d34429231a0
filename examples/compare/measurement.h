// Latency accounting for gale-compare. A sink task records one latency per record (stateless
// pipelines: now - the record's scheduled time) or per window result (windowed pipelines: the
// time the result reaches the sink - the window's end, the YSB definition). Each task owns its
// own recorder (no lock on the hot path); the run merges them at the end.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "gale/core/clock.h"
#include "gale/core/histogram.h"

namespace gale::compare {

// One task's measurements. Counters are atomics so a progress display can read them while the
// task runs; the histogram is read only after the run stopped.
class TaskRecorder {
 public:
  explicit TaskRecorder(const Clock& clock) : clock_(clock) {}

  // A record whose life started at `originNanos` (monotonic) reached the sink now.
  void recordArrival(int64_t originNanos);
  // A window result for [.., windowEnd) (event time, wall-clock micros) reached the sink now.
  // Counted as `records` input records (the window's count) for throughput.
  void recordWindowResult(Timestamp windowEnd);
  void addRecords(uint64_t n) { records_.fetch_add(n, std::memory_order_relaxed); }

  // Latencies before `warmupEndNanos` (monotonic) are counted but not recorded. Set from the
  // thread that runs the measurement while the task records: hence atomics.
  void setWarmupEnd(int64_t warmupEndNanos) { warmupEnd_.store(warmupEndNanos); }
  // Latencies after `endNanos` (monotonic) are not recorded: what a stopping run flushes (e.g.
  // windows closed early by the end of input) is not part of the measurement.
  void setMeasurementEnd(int64_t endNanos) { measurementEnd_.store(endNanos); }
  // Subtracted from window latencies before recording (the watermark delay a window result must
  // wait by definition), so the histogram's precision goes to what is left.
  void setWindowLatencyOffset(int64_t nanos) { windowOffset_.store(nanos); }

  uint64_t records() const { return records_.load(std::memory_order_relaxed); }
  const Histogram& latencyNanos() const { return latency_; }

 private:
  bool measuring(int64_t nowNanos) const {
    return nowNanos >= warmupEnd_.load(std::memory_order_relaxed) &&
           nowNanos <= measurementEnd_.load(std::memory_order_relaxed);
  }
  const Clock& clock_;
  std::atomic<int64_t> warmupEnd_{0};
  std::atomic<int64_t> measurementEnd_{INT64_MAX};
  std::atomic<int64_t> windowOffset_{0};
  std::atomic<uint64_t> records_{0};
  Histogram latency_;
};

// Window results collected from every sink task: (key, window start) -> value, for checking that
// two modes computed the same answer.
using WindowResults = std::map<std::pair<std::string, int64_t>, int64_t>;

// All sink tasks of one run.
class RunMeasurements {
 public:
  explicit RunMeasurements(const Clock& clock = SystemClock::instance()) : clock_(clock) {}

  TaskRecorder& newTask();
  void setWarmupEnd(int64_t warmupEndNanos);
  void setMeasurementEnd(int64_t endNanos);
  void setWindowLatencyOffset(int64_t nanos);
  int64_t windowLatencyOffset() const { return windowOffset_; }
  uint64_t records() const;  // sum over tasks, safe while running
  // Input records the pipeline consumed (its Meter), safe while running: throughput and the
  // "sustained" check are computed from these.
  void addInputs(uint64_t n) { inputs_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t inputs() const { return inputs_.load(std::memory_order_relaxed); }
  Histogram mergedLatency() const;  // after the run

  // Final window values (the last value each window reached: update mode re-emits).
  void recordWindowValue(const std::string& key, int64_t windowStart, int64_t value);
  WindowResults windowResults() const;

  const Clock& clock() const { return clock_; }

 private:
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<TaskRecorder>> tasks_;
  int64_t warmupEnd_ = 0;
  int64_t measurementEnd_ = INT64_MAX;
  int64_t windowOffset_ = 0;
  std::atomic<uint64_t> inputs_{0};
  WindowResults windows_;
};

// Compares two runs' window results over the windows both completed (a run that stopped earlier
// may lack the last windows). Returns an empty string when equal, else the first difference.
std::string compareWindowResults(const WindowResults& a, const WindowResults& b,
                                 int64_t upToWindowStart);

}  // namespace gale::compare
