// The tasks a micro-batch topology runs as (TopologyPipeline, topology_pipeline.h, wraps the
// user's components in them): a spout task reads its partitions' range of each batch, an
// operator or bolt task runs the batch and reports its end with its snapshot; all of them and
// the pipeline share one BatchShared.
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
#include <vector>

#include "batch_link.h"
#include "gale/batch/microbatch.h"
#include "gale/batch/pipeline.h"
#include "gale/topology/topology.h"
#include "source_watermarks.h"
#include "topology_pipeline.h"

namespace gale {

// The batch-end watermark of the last batch of a bounded input. One below kEndOfTime because the
// runtime reserves kEndOfTime for its EndOfStream control (it is not passed to onWatermark hooks);
// a batch bolt that sees it gives its operator kEndOfTime and onEndOfInput.
inline constexpr Timestamp kBatchEndOfInput{kEndOfTime.micros - 1};
// Where the per-source watermarks are committed, beside the operators' snapshots (whose keys are
// "component#task", so no operator can take this one).
inline constexpr const char* kSourceWatermarksKey = "$source-watermarks";

// State shared by every task of one micro-batch topology and the pipeline.
struct BatchShared {
  std::mutex mutex;
  std::map<uint64_t, std::shared_ptr<const BatchPlan>> plans;  // dispatched, not yet committed
  // Tasks that report each batch: every spout and bolt task of the job (in one process, or in the
  // coordinator's worker of runMicroBatchWorker, where a follower's RESULT stands for its tasks),
  // a follower's own tasks in a follower.
  int reporters = 0;
  // A follower worker: the watermark comes from the coordinator's worker (setWatermark), its
  // spout tasks' event times go there (eventTimesOut); its `finished` sends the batch's RESULT.
  bool follower = false;
  uint64_t committed = 0;  // the last committed txid
  struct Pending {
    int reported = 0;
    std::set<int> workers;  // followers whose RESULT counted (each once)
    BatchResult result;
  };
  std::map<uint64_t, Pending> pending;
  // Batches every task reported, not yet committed: the followers whose RESULT counted, so a
  // re-sent RESULT (the follower has not yet heard STATUS) is known as a repeat, not a new batch.
  std::map<uint64_t, std::set<int>> finishedWorkers;
  RecoveredState recovered;
  BatchPipeline::Finished finished;  // set by start() under the mutex
  BatchPipeline::Failed failed;
  std::exception_ptr failedBeforeStart;
  std::atomic<bool> hasFailed{false};
  const Clock* clock = &SystemClock::instance();

  // The batch watermark is one value for the whole job (Spark), so it is computed once every spout
  // task has read its part of the batch: each task reports its max event time, then waits (without
  // blocking its thread) for the result, and every task sends the same watermark downstream.
  int spoutTasks = 0;
  std::unique_ptr<SourceWatermarks> watermarks;
  WatermarkTiming timing = WatermarkTiming::EndOfBatch;
  struct BatchWatermark {
    std::set<TaskId> reportedBy;  // spout tasks (a repeated report counts once)
    std::vector<SourceWatermarks::PartitionMax> maxEvent;  // per source, per partition
    bool ready = false;
    std::optional<Timestamp> watermark;
    std::string snapshot;  // the per-source watermarks after the batch
  };
  std::map<uint64_t, BatchWatermark> batchWatermarks;

  std::map<uint64_t, std::vector<batchlink::EventTime>> eventTimesOut;  // a follower's, unanswered

  void reportEventTime(uint64_t txid, TaskId spoutTask, size_t source,
                       const SourceWatermarks::PartitionMax& maxEvent, bool endOfInput) {
    std::lock_guard lk(mutex);
    if (follower) {
      if (txid > committed && !batchWatermarks.count(txid))
        eventTimesOut[txid].push_back({txid, spoutTask, source, maxEvent, endOfInput});
      return;
    }
    if (txid <= committed) return;  // a late repeat
    BatchWatermark& b = batchWatermarks[txid];
    if (b.ready || !b.reportedBy.insert(spoutTask).second) return;
    if (b.maxEvent.empty()) b.maxEvent.resize(sourceCount);
    auto& m = b.maxEvent.at(source);
    for (const auto& [p, t] : maxEvent) {
      auto [it, fresh] = m.try_emplace(p, t);
      if (!fresh) it->second = std::max(it->second, t);
    }
    if (static_cast<int>(b.reportedBy.size()) < spoutTasks) return;
    // Every spout task has reported, and tasks take batches in txid order, so batches reach
    // advance() in txid order.
    b.watermark = watermarks->advance(b.maxEvent, clock->now());
    if (endOfInput) b.watermark = kBatchEndOfInput;  // every window fires (see kBatchEndOfInput)
    b.snapshot = watermarks->snapshot();
    b.ready = true;
  }

  // nullopt until every spout task reported batch txid; then the batch's watermark (kept until
  // the batch commits: a coordinator's link sends it to followers until then).
  std::optional<BatchWatermark> takeWatermark(uint64_t txid) {
    std::lock_guard lk(mutex);
    auto it = batchWatermarks.find(txid);
    if (it == batchWatermarks.end() || !it->second.ready) return std::nullopt;
    return it->second;
  }
  size_t sourceCount = 0;

  std::shared_ptr<const BatchPlan> planAfter(uint64_t txid) {
    std::lock_guard lk(mutex);
    // Exactly the next txid (the planner numbers batches consecutively): a follower that missed
    // plan N but heard N+1 must wait for N's re-send, not skip it.
    auto it = plans.find(txid + 1);
    return it == plans.end() ? nullptr : it->second;
  }

  // One task's report of batch txid, or (worker >= 0) a follower's RESULT for `tasks` tasks.
  void report(uint64_t txid, const std::function<void(BatchResult&)>& fill, int tasks = 1,
              int worker = -1) {
    BatchResult done;
    {
      std::lock_guard lk(mutex);
      if (worker >= 0 && (txid <= committed || finishedWorkers.count(txid))) return;  // a repeat
      Pending& p = pending[txid];
      if (worker >= 0 && !p.workers.insert(worker).second) return;  // counted already
      fill(p.result);
      p.reported += tasks;
      if (p.reported < reporters) return;
      done = std::move(p.result);
      finishedWorkers[txid] = std::move(p.workers);
      pending.erase(txid);
    }
    finished(txid, std::move(done));
  }

  // The offset log's durability (RecoveredState::offsetLogDurable): UINT64_MAX when nothing
  // waits for it (no offset log, syncCommits off, a follower worker: its coordinator sends a
  // plan only once its entry is durable).
  uint64_t offsetLogDurable = UINT64_MAX;
  bool stopping = false;  // the pipeline stops: a waiter gives up
  std::condition_variable durableCv;

  void setOffsetLogDurable(uint64_t txid) {
    std::lock_guard lk(mutex);
    if (offsetLogDurable == UINT64_MAX || txid <= offsetLogDurable) return;  // no gate, or old
    offsetLogDurable = txid;
    durableCv.notify_all();
  }
  // An ExactReplaySink's task, before its batch-end (its external commit): a replay after a
  // machine crash must be cut to the same offsets, so txid's offset log entry must be durable
  // first. Throws if the job fails or stops before it is.
  void waitOffsetLogDurable(uint64_t txid) {
    std::unique_lock lk(mutex);
    durableCv.wait(lk, [&] { return offsetLogDurable >= txid || hasFailed || stopping; });
    if (offsetLogDurable < txid) {
      throw std::runtime_error("batch " + std::to_string(txid) +
                               ": the job stopped before its offset log entry was durable");
    }
  }
  void stopWaiting() {
    std::lock_guard lk(mutex);
    stopping = true;
    durableCv.notify_all();
  }

  // Any thread. Before start() set `failed` (a follower's link can deliver ABORT while the worker
  // still opens its sources), the failure waits for start(), which reports it and launches nothing.
  void fail(std::exception_ptr e) {
    if (hasFailed.exchange(true)) return;
    BatchPipeline::Failed report;
    {
      std::lock_guard lk(mutex);
      durableCv.notify_all();
      if (!failed) {
        failedBeforeStart = e;
        return;
      }
      report = failed;
    }
    report(e);
  }
};

// A spout task reading source `sourceIndex` (its place in the pipeline's sources) per batch.
std::unique_ptr<Spout> makeBatchSpout(std::shared_ptr<BatchShared> shared, SourcePtr source,
                                      size_t sourceIndex, std::optional<WatermarkSpec> watermark);
// A task running an Operator per batch.
std::unique_ptr<Bolt> makeBatchOperatorBolt(std::shared_ptr<BatchShared> shared,
                                            std::shared_ptr<const Operator> proto);
// A task running a user's own Bolt, which gets the batch hooks itself.
std::unique_ptr<Bolt> makeBatchBoltWrapper(std::shared_ptr<BatchShared> shared,
                                           std::shared_ptr<const Bolt> proto);

}  // namespace gale
