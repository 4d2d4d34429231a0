#include "private/checkpoint_coordinator.h"

#include <sys/resource.h>
#include <unistd.h>

#include <stdexcept>

#include "gale/core/log.h"
#include "gale/core/partition_order.h"
#include "gale/core/thread_name.h"

namespace gale {

namespace {
constexpr std::chrono::milliseconds kTimeoutWatch{100};
}  // namespace

const char* checkpointPointName(CheckpointPoint p) {
  switch (p) {
    case CheckpointPoint::BarrierInjected: return "barrier-injected";
    case CheckpointPoint::SnapshotTaken: return "snapshot-taken";
    case CheckpointPoint::SinkPreCommitted: return "sink-pre-committed";
    case CheckpointPoint::CheckpointWritten: return "checkpoint-written";
    case CheckpointPoint::SinkCommitted: return "sink-committed";
  }
  return "?";
}

CheckpointCoordinator::CheckpointCoordinator(Options options, int tasks, int spoutTasks)
    : options_(std::move(options)),
      tasks_(tasks),
      spoutTasks_(spoutTasks),
      store_(std::make_unique<StateStore>(
          options_.directory, StateStoreOptions{.jobId = options_.jobId,
                                                .sync = options_.sync,
                                                .clock = options_.clock})) {
  completed_ = triggered_ = store_->lastCommittedTxid();
  // The first checkpoint of a run comes one interval after the start.
  lastTriggerNanos_.store(options_.clock->monoNanos());
  writer_ = std::thread([this] { writeLoop(); });
}

CheckpointCoordinator::CheckpointCoordinator(Options options, Restored restored)
    : options_(std::move(options)), tasks_(0), spoutTasks_(0), restored_(std::move(restored)) {
  completed_ = triggered_ = restored_.completed;
}

CheckpointCoordinator::~CheckpointCoordinator() {
  if (!writer_.joinable()) return;  // a follower
  {
    std::lock_guard lk(mutex_);
    stopping_ = true;
    cv_.notify_all();
  }
  writer_.join();
}

void CheckpointCoordinator::writeLoop() {
  nameThisThread("gale-ckpt");
  // The writer uses the CPU the tasks leave: serializing a large asynchronous snapshot must not
  // take a core from a task processing records (on a busy machine it would add to their
  // latency). Nice 10 still gets about a tenth of a contended core, so checkpoints complete.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  std::unique_lock lk(mutex_);
  for (;;) {
    // Also the checkpoint timeout's watch: spouts call due() too, but under backpressure from
    // the task that holds the checkpoint up they are blocked in their emits.
    while (toWrite_ == 0 && !stopping_) {
      if (cv_.wait_for(lk, kTimeoutWatch) == std::cv_status::timeout)
        abortTimedOutLocked(options_.clock->monoNanos());
    }
    if (toWrite_ == 0) return;  // stopping, nothing reported in full
    uint64_t id = toWrite_;
    auto snapshots = std::move(snapshots_);
    auto deferred = std::move(deferred_);
    auto offsets = std::move(offsets_);
    auto named = std::move(namedOffsets_);
    snapshots_.clear();
    deferred_.clear();
    offsets_.clear();
    namedOffsets_.clear();
    lk.unlock();
    std::string error;
    try {
      // A source that names its partitions: its offsets keyed by the checkpoint's own order of
      // the names (the last checkpoint's, then names new since, sorted), stored beside them.
      // Every process resumes in that order (Source::resumePartitionOrder), however it numbered
      // them while running; numbers never move, as the store's offsets of a number only grow.
      for (auto& [source, byName] : named) {
        const std::string key = source + "/partitions";
        std::vector<std::string> order = lastPartitionOrder(source);
        for (size_t i = 0; i < order.size(); ++i) {
          auto it = byName.find(order[i]);
          if (it == byName.end()) continue;
          offsets[source][static_cast<int>(i)] = it->second;
          byName.erase(it);
        }
        for (auto& [name, offset] : byName) {
          offsets[source][static_cast<int>(order.size())] = offset;
          order.push_back(name);
        }
        snapshots[key] = encodePartitionOrder(order);
      }
      for (auto& [key, write] : deferred) {
        try {
          snapshots[key] = write();
        } catch (const std::exception& e) {
          throw std::runtime_error("the asynchronous snapshot of '" + key + "' failed: " +
                                   e.what());
        }
        write = nullptr;  // lets go of the frozen view: the task writes its state in place again
      }
      BatchCommit c = store_->beginCommit(id);
      for (auto& [key, blob] : snapshots) c.putSnapshot(key, std::move(blob));
      c.setOffsets(offsets);
      c.commit();
      point(CheckpointPoint::CheckpointWritten, id);
    } catch (const std::exception& e) {
      error = "checkpoint " + std::to_string(id) + " could not be written: " + e.what();
    }
    lk.lock();
    toWrite_ = 0;
    if (error.empty()) {
      completed_.store(id, std::memory_order_release);
    } else {
      // No checkpoint completes any more: the spouts stop the topology (due() throws).
      failure_ = error;
      closed_ = true;
      failed_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }
}

std::vector<std::string> CheckpointCoordinator::lastPartitionOrder(const std::string& source) {
  if (auto order = store_->snapshot(source + "/partitions")) return decodePartitionOrder(*order);
  // A checkpoint of an older version: each spout task's numbering ("<source>#i/partitions"),
  // all of one process; the longest covers the others. Read once: the next checkpoint has ours.
  std::vector<std::string> longest;
  for (const auto& [key, blob] : store_->snapshots()) {
    if (key.rfind(source + "#", 0) != 0 || !key.ends_with("/partitions")) continue;
    std::vector<std::string> ids = decodePartitionOrder(blob);
    if (ids.size() > longest.size()) longest = std::move(ids);
  }
  return longest;
}

std::string CheckpointCoordinator::failure() const {
  std::lock_guard lk(mutex_);
  return failure_;
}

void CheckpointCoordinator::fail(const std::string& why) {
  std::lock_guard lk(mutex_);
  if (failure_.empty()) failure_ = why;
  closed_ = true;
  failed_.store(true, std::memory_order_release);
  cv_.notify_all();
}

std::optional<std::string> CheckpointCoordinator::snapshot(const std::string& key) const {
  if (store_) return store_->snapshot(key);
  auto it = restored_.snapshots.find(key);
  return it == restored_.snapshots.end() ? std::nullopt : std::optional(it->second);
}

PartitionOffsets CheckpointCoordinator::offsets(const std::string& source) const {
  const SourceOffsets& all = store_ ? store_->committedOffsets() : restored_.offsets;
  auto it = all.find(source);
  return it == all.end() ? PartitionOffsets{} : it->second;
}

CheckpointCoordinator::Restored CheckpointCoordinator::restored() const {
  if (!store_) return restored_;
  return {store_->lastCommittedTxid(), store_->snapshots(), store_->committedOffsets()};
}

void CheckpointCoordinator::follow(uint64_t triggered, uint64_t completed, uint64_t final) {
  std::lock_guard lk(mutex_);
  // Progress only moves forward; a message overtaken by a later one changes nothing.
  if (triggered > triggered_) triggered_.store(triggered, std::memory_order_release);
  if (completed > completed_) completed_.store(completed, std::memory_order_release);
  if (final > final_) final_.store(final, std::memory_order_release);
  cv_.notify_all();
}

CheckpointCoordinator::Outbox CheckpointCoordinator::takeOutbox() {
  std::lock_guard lk(mutex_);
  Outbox out = std::move(outbox_);
  outbox_ = Outbox{};
  return out;
}

uint64_t CheckpointCoordinator::due() {
  if (failed_.load(std::memory_order_acquire)) throw std::runtime_error(failure());
  uint64_t t = triggered_.load(std::memory_order_acquire);
  if (!store_) return t;  // a follower: the coordinator triggers
  int64_t now = options_.clock->monoNanos();
  const int64_t since = now - lastTriggerNanos_.load(std::memory_order_acquire);
  if (t != completed_.load(std::memory_order_acquire)) {  // one in progress (or failed)
    if (failed_.load(std::memory_order_acquire)) throw std::runtime_error(failure());
    if (since < toMicros(options_.timeout) * 1000) return t;
    std::lock_guard lk(mutex_);
    abortTimedOutLocked(now);
    return triggered_;
  }
  bool ending = allEnded_.load(std::memory_order_acquire);
  if (ending && final_.load(std::memory_order_acquire) != 0) return t;  // the final one is done
  if (!ending && since < toMicros(options_.interval) * 1000) return t;
  std::lock_guard lk(mutex_);
  if (triggered_ == completed_ && (!ending || final_ == 0)) {
    triggered_.store(completed_ + 1, std::memory_order_release);
    lastTriggerNanos_.store(now, std::memory_order_release);
    reported_.clear();
    if (ending) final_.store(triggered_, std::memory_order_release);
  }
  return triggered_;
}

void CheckpointCoordinator::abortTimedOutLocked(int64_t now) {
  uint64_t t = triggered_;
  // Reported in full and being written (a large snapshot's write): not missing anything.
  if (t == completed_ || toWrite_ == t || failed_) return;
  if (now - lastTriggerNanos_.load() < toMicros(options_.timeout) * 1000) return;
  timedOut_.fetch_add(1, std::memory_order_relaxed);
  std::string why = "exactly-once checkpoint " + std::to_string(t) + " aborted: " +
                    std::to_string(reported_.size()) + " of " + std::to_string(tasks_) +
                    " tasks reported within the checkpoint timeout of " +
                    std::to_string(toMicros(options_.timeout) / 1000) + " ms";
  if (final_ == t) {
    // The spouts ended behind the final barrier: no later one can follow. The job stops, and
    // its next run resumes from the last completed checkpoint.
    failure_ = why + " (the final checkpoint)";
    closed_ = true;
    failed_.store(true, std::memory_order_release);
    cv_.notify_all();
    logError(failure_);
    return;
  }
  logError(why + "; checkpoint " + std::to_string(t + 1) + " is triggered");
  reported_.clear();
  snapshots_.clear();
  deferred_.clear();  // lets go of the frozen views
  offsets_.clear();
  namedOffsets_.clear();
  // The next one at once; its barriers follow the aborted one's (a spout injects every id), and
  // a late report of the aborted one is dropped (report()).
  triggered_.store(t + 1, std::memory_order_release);
  lastTriggerNanos_.store(now, std::memory_order_release);
}

uint64_t CheckpointCoordinator::finalCheckpointAfter(uint64_t barrier) {
  if (store_ || barrier == 0) return finalCheckpoint();
  std::unique_lock lk(mutex_);
  // The coordinator's word carries the final id from its trigger on, so a word that the barrier
  // completed without naming it final means it was not.
  cv_.wait(lk, [&] { return final_ != 0 || completed_ >= barrier || closed_; });
  return final_;
}

void CheckpointCoordinator::inputEnded() {
  std::lock_guard lk(mutex_);
  if (!store_) {
    ++outbox_.inputsEnded;
    return;
  }
  if (++ended_ == spoutTasks_) allEnded_ = true;
}

void CheckpointCoordinator::report(uint64_t id, TaskReport r) {
  if (r.task < 0)
    throw std::logic_error("checkpoint " + std::to_string(id) + " reported by no task");
  if (!store_) {
    // A follower sends bytes over the link: its tasks' asynchronous snapshots are serialized
    // here, on the task's thread (over several workers they are taken synchronously).
    for (auto& [key, write] : r.deferred) r.snapshots[key] = write();
    r.deferred.clear();
  }
  std::unique_lock lk(mutex_);
  // A follower's task may get a barrier from another worker before the coordinator's word of it
  // reached this one: the barrier is the proof that it was triggered.
  if (!store_ && id > triggered_ && id > completed_)
    triggered_.store(id, std::memory_order_release);
  if (id > triggered_) {
    throw std::logic_error("checkpoint " + std::to_string(id) + " reported, but " +
                           std::to_string(triggered_) + " is the one in progress");
  }
  // Completed, aborted (timeout), or a task's report sent again: nothing new.
  if (id < triggered_ || id <= completed_) return;
  if (!store_) {
    outbox_.reports.emplace_back(id, std::move(r));
    return;
  }
  if (!r.partitionIds.empty() && !r.offsets.empty() &&
      (r.offsets.begin()->first < 0 ||
       static_cast<size_t>(r.offsets.rbegin()->first) >= r.partitionIds.size())) {
    throw std::logic_error("source '" + r.source + "' reported offsets of partitions up to " +
                           std::to_string(r.offsets.rbegin()->first) + " but named " +
                           std::to_string(r.partitionIds.size()));
  }
  if (!reported_.insert(r.task).second) return;
  for (auto& [key, blob] : r.snapshots) snapshots_[key] = std::move(blob);
  for (auto& [key, write] : r.deferred) deferred_[key] = std::move(write);
  for (auto [p, off] : r.offsets) {
    if (r.partitionIds.empty()) offsets_[r.source][p] = off;
    else namedOffsets_[r.source][r.partitionIds[static_cast<size_t>(p)]] = off;
  }
  if (static_cast<int>(reported_.size()) < tasks_) return;
  toWrite_ = id;
  cv_.notify_all();
}

bool CheckpointCoordinator::awaitCompleted(uint64_t id) {
  std::unique_lock lk(mutex_);
  cv_.wait(lk, [&] { return closed_ || completed_ >= id; });
  return completed_ >= id;
}

void CheckpointCoordinator::close() {
  std::lock_guard lk(mutex_);
  closed_ = true;
  cv_.notify_all();
}

}  // namespace gale
