// What the executors of one running topology share: the configuration, the task layout, the
// per-task metrics cells and the run state (stop, kill, start barrier). See docs/runtime.md.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/channel.h"
#include "gale/core/histogram.h"
#include "gale/core/log.h"
#include "gale/topology/runtime.h"
#include "private/fusion.h"

namespace gale {

inline constexpr const char* kAckerName = "__acker";
inline constexpr uint64_t kIdleWatermark = 1;  // Control::value of a watermark from an idle task
// A Fail / TreeDone payload: "<component>\0<reason>", at most this long (it comes from peers
// and ends up in a dead-letter tuple; an exception text can be anything).
inline constexpr size_t kMaxFailReason = 1024;

// Frames taken from the inbox per drain before the loop looks at time and flushes: enough to
// batch under load, few enough that ticks, timeouts and metrics stay timely.
inline constexpr size_t kInboxBatch = 8;

// A bolt whose execute() is slow (a sampled call took longer than kSlowExecute) flushes what it
// holds (acks above all) at least every kMaxHold while it works through a full inbox; otherwise
// a frame of 256 tuples at 2 ms each would hold their acks for half a second, and the spouts
// would see completions in bursts (see PendingLimit).
inline constexpr int64_t kSlowExecuteNanos = 50'000;
inline constexpr int64_t kMaxHoldNanos = 1'000'000;

inline std::string failReason(std::string_view component, std::string_view why) {
  std::string r(component);
  r.push_back('\0');
  r.append(why.substr(0, kMaxFailReason > r.size() ? kMaxFailReason - r.size() : 0));
  return r;
}

inline int64_t steadyNow() { return SystemClock::steadyNanos(); }
inline int64_t nanos(Duration d) { return toMicros(d) * 1000; }

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// What other threads may read of one task: counters (relaxed atomics, written by the task) and
// latency histograms copied in every metricsInterval under a lock.
struct MetricsCell {
  std::atomic<uint64_t> emitted{0}, transferred{0}, executed{0}, acked{0}, failed{0}, errors{0},
      framesReceived{0}, malformed{0}, blocked{0}, buffered{0}, pending{0}, capacityPpm{0},
      pendingLimit{0}, timedOut{0}, retried{0}, deadLettered{0}, unrouted{0}, idleInputs{0},
      busyUsPerSecond{0}, backPressuredUsPerSecond{0}, idleUsPerSecond{0};
  std::atomic<int64_t> watermark{INT64_MIN};
  std::atomic<bool> watermarkIdle{false};
  std::mutex mutex;
  Histogram execute, process, complete;
  std::string lastError;  // under mutex
  int64_t lastErrorMicros = 0;
};

// State shared by the tasks of one running topology and its handle.
class Executor;

struct RuntimeShared {
  Topology topology;
  Continuous config;
  FusionPlan fusion;
  std::vector<Executor*> executors;  // by task id; local tasks only (else nullptr)
  const Clock* clock = nullptr;
  int numTasks = 0;
  TaskId firstAcker = 0;
  int numAckers = 0;
  std::vector<int> workerOfTask;  // empty: everything is local
  int self = 0;
  std::vector<std::string> endpoints;
  std::vector<std::string> workerKeys;  // CURVE server key per worker (cross-process only)
  std::unique_ptr<std::atomic<uint64_t>[]> framesSentTo;
  std::vector<std::unique_ptr<MetricsCell>> cells;
  Transport transport{1};

  std::atomic<bool> stopping{false};  // graceful: spouts stop emitting and end their streams
  std::atomic<bool> shutdown{false};  // everything is done: leave the loops, clean up
  std::atomic<bool> killed{false};    // leave at once
  std::atomic<bool> deactivated{false};  // spouts do not call nextTuple() (Storm's deactivate)
  // Readable from the stop, kill or shutdown on (never read, so it stays readable): spouts
  // blocked on their source's wake fd poll it too, so they see the stop at once rather than
  // after Continuous::spoutWakeTimeout.
  struct StopWake {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    StopWake() = default;
    StopWake(const StopWake&) = delete;
    StopWake& operator=(const StopWake&) = delete;
    ~StopWake() {
      if (fd >= 0) ::close(fd);
    }
    void signal() const {
      const uint64_t one = 1;
      if (fd >= 0) {
        [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
      }
    }
  } stopWake;

  std::mutex mutex;
  std::condition_variable cv;
  int remaining = 0;  // local spout and bolt tasks that have not finished their stream
  int ready = 0;
  bool go = false;
  std::string startError;
  std::string failure;  // why the runtime stopped the topology (RunningTopology::error())

  bool local(TaskId t) const {
    return workerOfTask.empty() || workerOfTask[static_cast<size_t>(t)] == self;
  }
  bool isAcker(TaskId t) const { return t >= firstAcker; }
  // Runs in another task's thread (fusion), with no inbox of its own.
  bool fused(TaskId t) const {
    return !isAcker(t) && fusion.hostOf[static_cast<size_t>(t)] != t;
  }
  TaskId ackerOf(uint64_t root) const {
    return firstAcker + static_cast<TaskId>(mix64(root) % static_cast<uint64_t>(numAckers));
  }
  void taskFinished() {
    std::lock_guard lock(mutex);
    --remaining;
    cv.notify_all();
  }
  // Stops the whole topology at once (in-flight tuples are dropped and replayed by the sources
  // on the next run): waitUntilDone() / stop() throw `why`.
  void fail(const std::string& why) {
    {
      std::lock_guard lock(mutex);
      if (!failure.empty()) return;
      failure = why;
      killed = true;
      cv.notify_all();
    }
    stopWake.signal();
    logError("topology stopped: " + why);
    if (onFail) onFail(why);
  }
  // Set before the tasks start: an exactly-once worker tells its job (CheckpointLink).
  std::function<void(const std::string&)> onFail;
};

// The endpoint task `t` binds in a worker whose endpoint is `workerEndpoint`: tcp://host:port+t,
// or <ipc or inproc endpoint>-t.
std::string taskEndpoint(const std::string& workerEndpoint, TaskId t);

}  // namespace gale
