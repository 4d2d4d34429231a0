// Fusion (Flink's operator chaining): which bolts run inside their upstream component's tasks,
// with no channel between them. Decided once per run, the same way in every worker process.
#pragma once

#include <string>
#include <vector>

#include "gale/topology/topology.h"

namespace gale {

struct FusionPlan {
  // Per component (index in Topology::components()): the index of the upstream component whose
  // tasks run it (task i of the bolt in task i of that component), or -1: its own tasks.
  std::vector<int> into;
  // Per task: the task whose thread runs it (itself when not fused).
  std::vector<TaskId> hostOf;
};

// A bolt is fused into component U when fusion is on (`enabled`, both components' `fusion`),
// every input of the bolt reads U, none with direct grouping, both have the same parallelism,
// each grouping sends task i's tuples to task i anyway or may (shuffle, local-or-shuffle; any
// grouping at parallelism 1), and task i of both runs in the same worker (`workerOfTask`, by
// task id; empty: one process). Chains form: a bolt fused into a fused bolt runs in the head's
// tasks. `why`, if given, gets per component the reason it is not fused (empty when fused or a
// spout).
FusionPlan planFusion(const Topology& topology, bool enabled, const std::vector<int>& workerOfTask,
                      std::vector<std::string>* why = nullptr);

}  // namespace gale
