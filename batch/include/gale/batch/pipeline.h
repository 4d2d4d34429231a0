// The seam between the micro-batch coordinator (which cuts batches, orders and commits them) and
// whatever executes a batch. The executor gale ships is the topology runtime itself
// (batch/topology_pipeline.h: the user's topology with batch spouts and wrapped bolts); the seam
// exists so the coordinator's rules (triggers, txid order, recovery, commit) are one piece of code
// and can be tested on their own.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gale/batch/coordinator.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {

// Changes a batch makes to one keyed state (Trident's persistentAggregate / partitionPersist),
// applied in the batch's commit with the state's kind semantics.
struct KeyedStateUpdates {
  StateKind kind = StateKind::Transactional;
  std::map<std::string, Update> updates;
};

// What executing batch `txid` produced, reported once per batch when every task has passed the
// batch's aligned end. Merged from all tasks by the pipeline.
struct BatchResult {
  // Operator task key ("component#taskIndex") -> Operator::snapshot() after the batch.
  std::map<std::string, std::string> snapshots;
  // Keyed state name -> updates.
  std::map<std::string, KeyedStateUpdates> keyed;
  // The watermark after this batch (Spark's: max event time seen through it - delay), if the
  // topology has event time.
  std::optional<Timestamp> watermark;
  // Sinks that wrote this batch's output (recorded as committed with it).
  std::vector<std::string> sinks;
  // originNanos of (a sample of) the batch's records, for arrival -> commit latency; each sample
  // stands for `weight` records.
  struct OriginSample {
    int64_t originNanos = 0;
    uint64_t weight = 1;
  };
  std::vector<OriginSample> originSamples;
  // Entries of state held by the operators (Operator::stateSize summed), for metrics.
  size_t stateEntries = 0;
  // Records of the batch on source streams no component subscribes to (e.g. "errors"):
  // dropped, logged by the runtime, counted here.
  uint64_t unrouted = 0;
  // Event times of the batch's records (sources with a watermark only), for its progress record.
  int64_t eventTimeMin = INT64_MAX, eventTimeMax = INT64_MIN;
  double eventTimeSum = 0;
  uint64_t eventTimeCount = 0;
  // Per stateful operator (component name), summed over its tasks.
  struct OperatorStats {
    uint64_t stateRows = 0;           // Operator::stateSize() after the batch
    uint64_t rowsEmitted = 0;         // rows the operator emitted in the batch
    uint64_t droppedByWatermark = 0;  // late rows it dropped in the batch
  };
  std::map<std::string, OperatorStats> operators;
  // Entries a follower worker's incremental operators changed in the batch (state
  // "$entries:<component>" -> key -> value, nullopt: erased), which the coordinator's worker
  // commits as Plain puts and erases (runMicroBatchWorker; in one process they are in `keyed`).
  std::map<std::string, std::map<std::string, std::optional<std::string>>> entryChanges;
};

// What the last commit left, handed to the pipeline before the first batch.
struct RecoveredState {
  uint64_t lastTxid = 0;
  std::map<std::string, std::string> snapshots;
  std::optional<Timestamp> watermark;
  StateStore* store = nullptr;  // read side for stateQuery / newValuesStream caches
  // Without a store (a follower worker of runMicroBatchWorker): the incremental operators'
  // committed entries, state "$entries:<component>" -> (key, value) in key order.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> entries;
  // Set when the job's offset log is flushed behind the batches (MicroBatch::offsetLog with
  // syncCommits): the txid it is durable through now. ExactReplaySinks then wait, before their
  // batch-end (their external commit), until offsetLogDurable() reached their txid. Unset: no wait.
  std::optional<uint64_t> offsetLogDurable;
};

// An operator that keeps its state in the job's StateStore instead of a snapshot (Trident's
// persistentAggregate / partitionPersist). The batch runtime attaches the store before the first
// batch and, at each batch end, collects the operator's keyed updates into the batch's commit.
class BatchStateWriter {
 public:
  virtual ~BatchStateWriter() = default;
  // The job's store (read side: the last committed values). Called once, before any batch.
  virtual void attachStore(StateStore& store) = 0;
  // This task's updates of batch `txid`, added to `out` (state name -> updates).
  virtual void collectUpdates(uint64_t txid, std::map<std::string, KeyedStateUpdates>& out) = 0;
};

// Adds `from` to `into` (a follower worker's result to the coordinator's: snapshots, updates,
// counts and samples; the watermark is the job's, the same in both).
void mergeBatchResult(BatchResult& into, BatchResult&& from);
// Adds `from` to `into`; an update of a key present in both runs after the one already there.
void mergeKeyedUpdates(std::map<std::string, KeyedStateUpdates>& into,
                       std::map<std::string, KeyedStateUpdates>&& from);

class BatchPipeline {
 public:
  using Finished = std::function<void(uint64_t txid, BatchResult result)>;
  // Called when a batch cannot be executed (an operator threw, the runtime died): the job stops
  // with this error and commits nothing more.
  using Failed = std::function<void(std::exception_ptr error)>;

  virtual ~BatchPipeline() = default;
  // Restores operators from `recovered` and starts executing. `finished` and `failed` may be
  // called from any thread, `finished` exactly once per dispatched txid (in any order).
  virtual void start(const RecoveredState& recovered, Finished finished, Failed failed) = 0;
  // Hands a batch over without waiting for it (batches may overlap).
  virtual void dispatch(const BatchPlan& plan) = 0;
  // Batch `txid` is durable (its sinks may release, sources may drop its records).
  virtual void committed(uint64_t txid) {}
  // The offset log is durable through txid (RecoveredState::offsetLogDurable); any thread.
  virtual void offsetLogDurable(uint64_t txid) {}
  // Every dispatched batch has finished: shut down.
  virtual void stop() = 0;
  // For the web UI, from any thread: the executors' metrics (the last ones once stopped; empty
  // for executors without any) and the topology they run (nullptr: none).
  virtual TopologyMetrics metrics() const { return {}; }
  virtual const Topology* topology() const { return nullptr; }
};

}  // namespace gale
