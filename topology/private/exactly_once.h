// Exactly-once continuous mode (Continuous::guarantee = ExactlyOnce), as the micro-batch runtime
// is built (batch/topology_pipeline.h): the user's topology is rebuilt with every SourceSpout
// wrapped in a CheckpointSpout and every bolt in a checkpointing bolt, then run without the
// acker. Spout tasks inject barriers (ControlKind::Barrier with the checkpoint id) in-band; the
// input gate of a task with several inputs aligns them (input_gate.h: what an input sends after
// its barrier is held back until every input delivered it), then the bolt's onBarrier snapshots.
// The checkpoint store and the completion rule: checkpoint_coordinator.h.
//
// With a WorkerAssignment (runWorker) the job runs over several workers: checkpoint_link.h.
#pragma once

#include <memory>

#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {

class CheckpointCoordinator;
class CheckpointLink;

RunningTopology runExactlyOnce(const Topology& topology, Continuous config,
                               const WorkerAssignment* assignment = nullptr);
// runtime.cpp: the tasks of a wrapped topology (this worker's, with an assignment), stopped with
// an error when `link` (if any) aborts the job; both live as long as the running topology, whose
// metrics() reads the coordinator's.
RunningTopology launchCheckpointed(const Topology& wrapped, Continuous config,
                                   const WorkerAssignment* assignment,
                                   std::shared_ptr<CheckpointCoordinator> coordinator,
                                   std::shared_ptr<CheckpointLink> link);

}  // namespace gale
