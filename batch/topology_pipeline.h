// Micro-batch execution on the continuous runtime (as Trident compiles to a Storm topology): the
// user's topology is rebuilt with each SourceSpout replaced by a BatchSpout fed by the coordinator
// and each OperatorBolt by a BatchOperatorBolt, then run with runContinuous. Batches travel as
// BatchBegin(txid), the records of the batch's ranges, BatchEnd(txid) through the same ZeroMQ
// channels and executors continuous mode uses.
//
// Per batch and task (private to batch/):
//  - a BatchSpout task emits BatchBegin, the records of its partitions' ranges (with their
//    originNanos), then reports the max event time it read and waits until every spout task of
//    the job has: the job's watermark after the batch (SourceWatermarks: per source, min over
//    sources, never back) is then known, every spout task sends that same watermark, then BatchEnd;
//  - a BatchOperatorBolt task hands tuples to the operator; an input watermark is only recorded;
//    at the aligned onBatchEnd(txid) the operator gets that watermark (onWatermark), the
//    processing time (onProcessingTime), onBatchEnd(txid), and its snapshot() is collected;
//  - every task reports the batch to the pipeline; when all tasks did, the batch is finished.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "batch_link.h"
#include "gale/batch/microbatch.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {

struct BatchShared;

// Where an incremental operator's entries live: one Plain keyed state per component.
inline std::string incrementalEntriesState(const std::string& component) {
  return "$entries:" + component;
}
// Where the partition order of each source that names its partitions is committed (job.cpp).
inline constexpr const char* kPartitionOrderState = "_gale_partition_order";

// How a micro-batch topology's watermark is computed and applied (MicroBatch's options).
struct BatchWatermarkOptions {
  WatermarkPolicy policy = WatermarkPolicy::Min;
  Duration idleTimeout = Duration::zero();
  WatermarkTiming timing = WatermarkTiming::EndOfBatch;
};

class TopologyPipeline final : public BatchPipeline {
 public:
  // Throws std::invalid_argument naming the component when the topology cannot run in
  // micro-batch mode (a custom Spout: batches need replayable Sources).
  using WatermarkOptions = BatchWatermarkOptions;
  // runMicroBatchWorker: this process runs worker assignment.self's tasks (runWorker) of a job
  // spread over several workers; `coordinator`: it holds the BatchJob (microbatch_worker.cpp).
  struct Worker {
    WorkerAssignment assignment;
    bool coordinator = false;
  };
  TopologyPipeline(const Topology& topology, Continuous runtimeConfig,
                   WatermarkOptions watermarks = {}, std::optional<Worker> worker = {});
  ~TopologyPipeline() override;

  // The sources of the topology's spouts, named by component (the offset log's keys).
  const std::vector<NamedSource>& sources() const { return sources_; }
  // True when a bolt is an ExactReplaySink (the job then keeps an offset log).
  bool needsExactReplay() const { return exactReplay_; }

  void start(const RecoveredState& recovered, Finished finished, Failed failed) override;
  void dispatch(const BatchPlan& plan) override;
  void committed(uint64_t txid) override;
  void offsetLogDurable(uint64_t txid) override;
  void stop() override;
  TopologyMetrics metrics() const override;
  const Topology* topology() const override { return batchTopology_.get(); }

  // The rebuilt topology (for tests).
  const Topology& batchTopology() const { return *batchTopology_; }

  // What the link of runMicroBatchWorker does with the pipeline (microbatch_worker.cpp).
  // Called by start() before the runtime launches (the coordinator's worker: START).
  std::function<void(const RecoveredState&)> beforeLaunch;
  std::vector<std::shared_ptr<const BatchPlan>> uncommittedPlans() const;
  // The coordinator's worker: watermarks known of uncommitted batches; a follower's spout
  // task's event times (each counts once per task); a follower's result of `tasks` tasks (once
  // per worker); the txids whose result it holds from `worker`.
  std::vector<batchlink::Watermark> readyWatermarks() const;
  void reportEventTime(const batchlink::EventTime& e);
  void reportRemote(int worker, batchlink::Result result);
  std::vector<uint64_t> heldFrom(int worker) const;
  // A follower: a batch's watermark from the coordinator's worker; its spout tasks' event times
  // that no watermark answered yet.
  void setWatermark(const batchlink::Watermark& w);
  std::vector<batchlink::EventTime> pendingEventTimes() const;
  // The job stops with this error and commits nothing more (a lost worker, a kill).
  void fail(const std::string& why);
  uint64_t lastCommitted() const;

 private:
  std::shared_ptr<BatchShared> shared_;
  std::vector<NamedSource> sources_;
  bool exactReplay_ = false;
  std::unique_ptr<Topology> batchTopology_;
  Continuous runtimeConfig_;
  std::optional<Worker> worker_;
  mutable std::mutex runningMutex_;  // running_ is replaced while the UI may read its metrics
  std::unique_ptr<RunningTopology> running_;
  TopologyMetrics finalMetrics_;     // after stop()
};

}  // namespace gale
