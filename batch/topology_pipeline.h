// Micro-batch execution on the continuous runtime (as Trident compiles to a Storm topology): the
// user's topology is rebuilt with each SourceSpout replaced by a BatchSpout fed by the coordinator
// and each OperatorBolt by a BatchOperatorBolt, then run with runContinuous. Batches travel as
// BatchBegin(txid), the records of the batch's ranges, BatchEnd(txid) through the same ZeroMQ
// channels and executors continuous mode uses.
//
// Per batch and task (private to batch/):
//  - a BatchSpout task emits BatchBegin, the records of its partitions' ranges (with their
//    originNanos), its watermark if the spout declared one (max event time it has seen - delay;
//    marked idle when this batch gave it no records), then BatchEnd;
//  - a BatchOperatorBolt task hands tuples to the operator; an input watermark is only recorded;
//    at the aligned onBatchEnd(txid) the operator gets that watermark (onWatermark), the
//    processing time (onProcessingTime), onBatchEnd(txid), and its snapshot() is collected;
//  - every task reports the batch to the pipeline; when all tasks did, the batch is finished.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gale/batch/microbatch.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {

struct BatchShared;

class TopologyPipeline final : public BatchPipeline {
 public:
  // Throws std::invalid_argument naming the component when the topology cannot run in
  // micro-batch mode (a custom Spout: batches need replayable Sources).
  TopologyPipeline(const Topology& topology, Continuous runtimeConfig);
  ~TopologyPipeline() override;

  // The sources of the topology's spouts, named by component (the offset log's keys).
  const std::vector<NamedSource>& sources() const { return sources_; }
  // True when a bolt is an ExactReplaySink (the job then keeps an offset log).
  bool needsExactReplay() const { return exactReplay_; }

  void start(const RecoveredState& recovered, Finished finished, Failed failed) override;
  void dispatch(const BatchPlan& plan) override;
  void committed(uint64_t txid) override;
  void stop() override;

  // The rebuilt topology (for tests).
  const Topology& batchTopology() const { return *batchTopology_; }

 private:
  std::shared_ptr<BatchShared> shared_;
  std::vector<NamedSource> sources_;
  bool exactReplay_ = false;
  std::unique_ptr<Topology> batchTopology_;
  Continuous runtimeConfig_;
  std::unique_ptr<RunningTopology> running_;
};

// A stable fingerprint of a topology's structure (components, parallelism, groupings, streams,
// sources): a checkpoint written by another structure is refused.
std::string topologyFingerprint(const Topology& topology);

}  // namespace gale
