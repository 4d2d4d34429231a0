// Whether a job's checkpoint can be resumed with other task counts: the components with key
// groups (`maxParallelism`) of an exactly-once or micro-batch job may change theirs, within two
// limits that the restore of their tasks enforces. `gale rebalance --parallelism` asks
// rescaleRefusal first (through the program's description, gale/cluster/worker.h), so that it
// refuses a count the workers' restore would refuse, instead of a restart loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "gale/topology/topology.h"

namespace gale {

using SnapshotLookup = std::function<std::optional<std::string>(const std::string& key)>;

// The tuples an unaligned checkpoint (`resumed`: its id) holds in flight to the old tasks of
// `component` were routed to them by its old task count: empty when the count is the same or
// nothing is in flight, else why the checkpoint resumes only at `oldParallelism`. Throws
// SnapshotError when an entry cannot be read.
std::string inFlightRescaleRefusal(const SnapshotLookup& snapshot, const std::string& component,
                                   int oldParallelism, int parallelism, uint64_t resumed,
                                   const SchemaRegistry& registry);

// Why the restore of the last checkpoint in `checkpointDir` with `topology`'s task counts would
// refuse (a key-grouped component whose tasks cannot merge several old tasks' state, e.g. a
// sliding window in update mode, or tuples in flight to its old tasks), naming the component.
// Empty when it would not, and when there is no checkpoint there to read.
std::string rescaleRefusal(const Topology& topology, const std::string& checkpointDir);

}  // namespace gale
