#include "private/checkpoint_coordinator.h"

#include <sys/resource.h>
#include <unistd.h>

#include <stdexcept>

namespace gale {

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
      store_(options_.directory, StateStoreOptions{.jobId = options_.jobId,
                                                   .sync = options_.sync,
                                                   .clock = options_.clock}) {
  completed_ = triggered_ = store_.lastCommittedTxid();
  // The first checkpoint of a run comes one interval after the start.
  lastTriggerNanos_ = options_.clock->monoNanos();
  writer_ = std::thread([this] { writeLoop(); });
}

CheckpointCoordinator::~CheckpointCoordinator() {
  {
    std::lock_guard lk(mutex_);
    stopping_ = true;
    cv_.notify_all();
  }
  writer_.join();
}

void CheckpointCoordinator::writeLoop() {
  // The writer uses the CPU the tasks leave: serializing a large asynchronous snapshot must not
  // take a core from a task processing records (on a busy machine it would add to their
  // latency). Nice 10 still gets about a tenth of a contended core, so checkpoints complete.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  std::unique_lock lk(mutex_);
  for (;;) {
    cv_.wait(lk, [&] { return toWrite_ != 0 || stopping_; });
    if (toWrite_ == 0) return;  // stopping, nothing reported in full
    uint64_t id = toWrite_;
    auto snapshots = std::move(snapshots_);
    auto deferred = std::move(deferred_);
    auto offsets = std::move(offsets_);
    snapshots_.clear();
    deferred_.clear();
    offsets_.clear();
    lk.unlock();
    std::string error;
    try {
      for (auto& [key, write] : deferred) {
        try {
          snapshots[key] = write();
        } catch (const std::exception& e) {
          throw std::runtime_error("the asynchronous snapshot of '" + key + "' failed: " +
                                   e.what());
        }
        write = nullptr;  // lets go of the frozen view: the task writes its state in place again
      }
      BatchCommit c = store_.beginCommit(id);
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

std::string CheckpointCoordinator::failure() const {
  std::lock_guard lk(mutex_);
  return failure_;
}

std::optional<std::string> CheckpointCoordinator::snapshot(const std::string& key) const {
  return store_.snapshot(key);
}

PartitionOffsets CheckpointCoordinator::offsets(const std::string& source) const {
  SourceOffsets all = store_.committedOffsets();
  auto it = all.find(source);
  return it == all.end() ? PartitionOffsets{} : it->second;
}

uint64_t CheckpointCoordinator::due() {
  uint64_t t = triggered_.load(std::memory_order_acquire);
  if (t != completed_.load(std::memory_order_acquire)) {  // one in progress (or failed)
    if (failed_.load(std::memory_order_acquire)) throw std::runtime_error(failure());
    return t;
  }
  bool ending = allEnded_.load(std::memory_order_acquire);
  if (ending && final_.load(std::memory_order_acquire) != 0) return t;  // the final one is done
  int64_t now = options_.clock->monoNanos();
  if (!ending && now - lastTriggerNanos_ < toMicros(options_.interval) * 1000) return t;
  std::lock_guard lk(mutex_);
  if (triggered_ == completed_ && (!ending || final_ == 0)) {
    triggered_.store(completed_ + 1, std::memory_order_release);
    lastTriggerNanos_ = now;
    reported_ = 0;
    if (ending) final_.store(triggered_, std::memory_order_release);
  }
  return triggered_;
}

void CheckpointCoordinator::inputEnded() {
  std::lock_guard lk(mutex_);
  if (++ended_ == spoutTasks_) allEnded_ = true;
}

void CheckpointCoordinator::report(uint64_t id, TaskReport r) {
  std::unique_lock lk(mutex_);
  if (id != triggered_ || id == completed_) {
    throw std::logic_error("checkpoint " + std::to_string(id) + " reported, but " +
                           std::to_string(triggered_) + " is the one in progress");
  }
  for (auto& [key, blob] : r.snapshots) snapshots_[key] = std::move(blob);
  for (auto& [key, write] : r.deferred) deferred_[key] = std::move(write);
  if (!r.source.empty()) {
    for (auto [p, off] : r.offsets) offsets_[r.source][p] = off;
  }
  if (++reported_ < tasks_) return;
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
