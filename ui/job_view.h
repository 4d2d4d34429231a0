// What the UI knows about one job: a JobView over a running job of either mode (or the frozen
// last view of a removed one), the counters sampled for the 10-minute window, and JobSnapshot,
// the consistent copy every endpoint renders from (so the API, the pages and /metrics show the
// same numbers and never touch a job while rendering).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "gale/batch/microbatch.h"
#include "gale/core/clock.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale::ui {

// The window Storm's UI shows besides all-time: the last 10 minutes.
inline constexpr int64_t kWindowSeconds = 600;

class JobView {
 public:
  virtual ~JobView() = default;
  virtual const char* mode() const = 0;  // "continuous" or "micro-batch"
  virtual TopologyMetrics metrics() const = 0;
  virtual std::optional<BatchProgress> batch() const { return std::nullopt; }
  // The checkpoint directory's summary (micro-batch jobs), with this many commit records.
  static constexpr size_t kCheckpointCommits = 20;
  virtual std::optional<CheckpointSummary> checkpoint() const { return std::nullopt; }
  virtual bool done() const = 0;
  virtual bool active() const = 0;
  virtual bool failed() const { return false; }
  virtual bool controllable() const { return true; }  // false once frozen
  virtual void deactivate() = 0;
  virtual void activate() = 0;
  virtual void requestStop() = 0;
};

std::unique_ptr<JobView> viewOf(RunningTopology& job);
std::unique_ptr<JobView> viewOf(MicroBatchJob job);
// The last state of `view`, detached from the job.
std::unique_ptr<JobView> frozen(const JobView& view);

// Counters summed into windows (latencies are all-time: histograms do not subtract).
struct WindowCounters {
  uint64_t emitted = 0, transferred = 0, executed = 0, acked = 0, failed = 0, errors = 0;
};

struct JobSnapshot {
  std::string id, name, mode, status;
  int64_t uptimeSeconds = 0;
  std::shared_ptr<const Topology> topology;  // null: the job runs no topology the UI can see
  TopologyMetrics metrics;
  std::optional<BatchProgress> batch;
  bool active = true;
  // Per task, the counters at the start of the window (none: zero, the job is younger).
  std::map<TaskId, WindowCounters> windowBase;
  int64_t windowSeconds = 0;  // how much of the last 10 minutes the window covers
};

struct JobEntry {
  std::string id, name;
  std::shared_ptr<const Topology> topology;
  int64_t startNanos = 0;  // by the UI's clock, when added
  int64_t endNanos = 0;    // when removed (0: attached); uptime stops there
  mutable std::mutex mutex;  // guards everything below
  std::unique_ptr<JobView> view;
  bool killRequested = false;
  struct Sample {
    int64_t nanos = 0;
    std::map<TaskId, WindowCounters> counters;
  };
  std::deque<Sample> samples;  // oldest first; one at most older than the window

  void sample(int64_t nowNanos);
  JobSnapshot snapshot(int64_t nowNanos) const;
};

WindowCounters countersOf(const TaskMetrics& m);
// A name safe in a URL path segment: [A-Za-z0-9_.-], anything else becomes '_'.
std::string urlSafe(const std::string& name);

}  // namespace gale::ui
