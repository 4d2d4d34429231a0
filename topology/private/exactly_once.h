// Exactly-once continuous mode (Continuous::guarantee = ExactlyOnce), as the micro-batch runtime
// is built (batch/topology_pipeline.h): the user's topology is rebuilt with every SourceSpout
// wrapped in a CheckpointSpout and every bolt in a checkpointing bolt, then run without the
// acker. Barriers travel in-band as the runtime's aligned batch-end marker (ControlKind::BatchEnd
// with the checkpoint id), whose alignment is the barrier alignment Flink describes: a task with
// several inputs holds back what an input sends after its barrier until every input delivered
// it. The checkpoint store and the completion rule: checkpoint_coordinator.h.
#pragma once

#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {

RunningTopology runExactlyOnce(const Topology& topology, Continuous config);

}  // namespace gale
