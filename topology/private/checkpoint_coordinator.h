// The checkpoint coordinator of exactly-once continuous mode (Flink's CheckpointCoordinator,
// in-process): it decides when spout tasks inject the next barrier, collects what each task
// reports once the barrier passed it (source offsets, operator snapshots), and completes the
// checkpoint when every task has reported, by writing all of it in ONE LMDB transaction of the
// job's StateStore under the checkpoint id (the StateStore's txid). The write (and its fsync)
// runs on the coordinator's own thread, so no task waits for the disk; so does the asynchronous
// part of an operator's snapshot (AsyncSnapshot), serialized from its frozen view just before.
// The thread runs at nice 10: it uses the CPU the tasks leave. A checkpoint that never
// completes leaves nothing behind; a restart resumes from the last completed one.
//
// One checkpoint at a time: the next one is triggered only after the last completed (and
// checkpointInterval after the last was triggered), so barriers of two checkpoints never meet in
// an alignment. Thread-safe: every task thread calls it.
//
// A job spread over several workers (checkpoint_link.h) has the coordinator in one of them; the
// others run a *follower*: the same object without a store, whose progress (triggered,
// completed, final) is the coordinator's as the link last heard it, whose recovery data is what
// the coordinator sent at the start, and whose tasks' reports wait in an outbox the link sends.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gale/core/async_snapshot.h"
#include "gale/core/clock.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"

namespace gale {

// What one task reports for a checkpoint.
struct TaskReport {
  // The reporting task (its global id): a checkpoint completes once every task reported, and a
  // report sent again over the link counts once.
  int task = -1;
  // Key ("component#taskIndex", and "component#taskIndex/in-flight" for an unaligned
  // checkpoint's in-flight tuples) -> bytes.
  std::map<std::string, std::string> snapshots;
  // Key -> the asynchronous part of an operator's snapshot (AsyncSnapshot): run by the writer
  // thread, and its bytes stored under the key, before the checkpoint is written.
  std::map<std::string, AsyncSnapshot::Write> deferred;
  std::string source;       // a spout task: its component, and the next offset of each of its
  PartitionOffsets offsets; // partitions (one past the last record emitted before the barrier)
  // A source that names its partitions (Source::partitionIds): the names of `offsets`' numbers
  // in the reporting process. The coordinator merges offsets by name, and the checkpoint keys
  // them by its own order of the names, stored as snapshot "<source>/partitions".
  std::vector<std::string> partitionIds;
};

class CheckpointCoordinator {
 public:
  struct Options {
    std::string directory;
    std::string jobId;
    Duration interval = std::chrono::seconds(1);
    const Clock* clock = &SystemClock::instance();
    bool sync = true;
    std::function<void(CheckpointPoint, uint64_t)> onPoint;
    // A checkpoint not complete this long after its trigger is aborted (Flink's
    // checkpointTimeout): logged as an error, counted (timedOut()), and the next is triggered.
    Duration timeout = std::chrono::minutes(10);
  };
  // `tasks`: every spout and bolt task, all of which report each checkpoint. Opens (or creates)
  // the checkpoint directory; throws StateError / CheckpointDamaged as StateStore does.
  CheckpointCoordinator(Options options, int tasks, int spoutTasks);
  // A follower (above): `restored` is the last completed checkpoint's data for this worker's
  // tasks. `options.directory` and `jobId` are not used.
  struct Restored {
    uint64_t completed = 0;
    std::map<std::string, std::string> snapshots;
    SourceOffsets offsets;
  };
  CheckpointCoordinator(Options options, Restored restored);
  // Writes a checkpoint every task reported, if its write had not begun yet.
  ~CheckpointCoordinator();

  // --- Recovery: what the last completed checkpoint holds.
  uint64_t lastCompleted() const { return completed_.load(std::memory_order_acquire); }
  std::optional<std::string> snapshot(const std::string& key) const;
  PartitionOffsets offsets(const std::string& source) const;

  // --- Spout tasks.
  // The checkpoint a spout task must have injected by now (0: none yet). Cheap when nothing is
  // due; triggers the next checkpoint when the interval passed (or every input ended). Throws
  // std::runtime_error once a checkpoint could not be written (the job must stop).
  uint64_t due();
  // One spout task's input ended. Once all have, the next checkpoint is triggered at once and is
  // the final one: it covers every record.
  void inputEnded();
  // The final checkpoint's id (0: not triggered yet).
  uint64_t finalCheckpoint() const { return final_.load(std::memory_order_acquire); }
  // The same, for a task at its end of stream whose last barrier was `barrier`. A follower may
  // get the final barrier from another worker before the coordinator's word that it is the
  // final one: it waits until it knows (the word came, the checkpoint completed, or close()).
  uint64_t finalCheckpointAfter(uint64_t barrier);

  // --- Every task, once barrier `id` passed it. The last task's report hands the checkpoint to
  // the writer thread. A report of a checkpoint already completed or aborted, or of a task that
  // already reported, is dropped (the link sends reports again until it hears of completion).
  // Throws std::logic_error for an id not triggered yet, or a report without its task.
  void report(uint64_t id, TaskReport report);
  // Blocks until checkpoint `id` completed (true) or close() was called (false).
  bool awaitCompleted(uint64_t id);
  // The topology is stopping: wakes every awaitCompleted.
  void close();
  // Why a checkpoint could not be written (empty: none failed).
  std::string failure() const;
  // Checkpoints aborted by Options::timeout.
  uint64_t timedOut() const { return timedOut_.load(std::memory_order_relaxed); }
  // The job must restart (a worker was lost): no checkpoint completes any more, due() throws
  // `why`, awaitCompleted returns false.
  void fail(const std::string& why);

  // --- The link of a job over several workers.
  bool follower() const { return !store_; }
  uint64_t triggered() const { return triggered_.load(std::memory_order_acquire); }
  // The coordinator: every snapshot and offset of the last completed checkpoint.
  Restored restored() const;
  // A follower: the coordinator's progress as last heard.
  void follow(uint64_t triggered, uint64_t completed, uint64_t final);
  // A follower: what its tasks reported (report(), inputEnded()) since the last call.
  struct Outbox {
    std::vector<std::pair<uint64_t, TaskReport>> reports;
    int inputsEnded = 0;
  };
  Outbox takeOutbox();

  void point(CheckpointPoint p, uint64_t id) const {
    if (options_.onPoint) options_.onPoint(p, id);
  }
  const Clock& clock() const { return *options_.clock; }

 private:
  Options options_;
  int tasks_;
  int spoutTasks_;
  std::unique_ptr<StateStore> store_;  // null in a follower
  Restored restored_;                   // a follower's recovery data
  Outbox outbox_;                       // a follower's reports, until the link takes them
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> triggered_{0};
  std::atomic<uint64_t> final_{0};
  std::atomic<bool> allEnded_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool closed_ = false;
  int ended_ = 0;
  std::atomic<int64_t> lastTriggerNanos_{0};  // due() reads it before taking the mutex
  std::atomic<uint64_t> timedOut_{0};
  std::set<int> reported_;  // the tasks that reported the checkpoint in progress
  std::map<std::string, std::string> snapshots_;
  std::map<std::string, AsyncSnapshot::Write> deferred_;
  SourceOffsets offsets_;
  std::map<std::string, std::map<std::string, int64_t>> namedOffsets_;  // source -> name -> offset
  // The partition order of `source`'s offsets in the last completed checkpoint (writer thread).
  std::vector<std::string> lastPartitionOrder(const std::string& source);
  // Aborts the checkpoint in progress (under mutex_) when it outlived Options::timeout.
  void abortTimedOutLocked(int64_t now);
  // The writer thread: writes the checkpoint every task reported (toWrite_ != 0).
  void writeLoop();
  uint64_t toWrite_ = 0;
  bool stopping_ = false;
  std::string failure_;
  std::thread writer_;
};

}  // namespace gale
