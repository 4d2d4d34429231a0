// Which bolts are fused into their upstream's tasks; see private/fusion.h and docs/runtime.md.
#include "private/fusion.h"

namespace gale {

namespace {

// Whether task i of `from` may send everything on this input to task i of `to`, and why not.
std::string incompatible(const InputSpec& in, const ComponentSpec& from, const ComponentSpec& to) {
  if (in.grouping == Grouping::Direct) return "direct grouping (the emitter names the task)";
  if (from.parallelism != to.parallelism)
    return "parallelism " + std::to_string(from.parallelism) + " upstream, " +
           std::to_string(to.parallelism) + " here";
  if (to.parallelism == 1) return {};
  if (in.grouping == Grouping::Shuffle || in.grouping == Grouping::LocalOrShuffle) return {};
  return std::string(groupingName(in.grouping)) + " grouping at parallelism > 1 (task i's " +
         "tuples may belong to another task)";
}

}  // namespace

FusionPlan planFusion(const Topology& topology, bool enabled, const std::vector<int>& workerOfTask,
                      std::vector<std::string>* why) {
  const auto& comps = topology.components();
  FusionPlan plan;
  plan.into.assign(comps.size(), -1);
  if (why) why->assign(comps.size(), std::string());
  auto indexOf = [&](const ComponentSpec* c) { return static_cast<int>(c - comps.data()); };
  for (size_t b = 0; b < comps.size(); ++b) {
    const ComponentSpec& bolt = comps[b];
    if (bolt.isSpout()) continue;
    std::string reason;
    const ComponentSpec* up = topology.find(bolt.inputs.front().component);
    if (!enabled) {
      reason = "fusion is off (Continuous::fusion)";
    } else if (!bolt.fusion) {
      reason = "disableFusion()";
    } else if (!up->fusion) {
      reason = "'" + up->name + "' has disableFusion()";
    } else {
      for (const InputSpec& in : bolt.inputs) {
        if (in.component != up->name) {
          reason = "it reads more than one component";
          break;
        }
        reason = incompatible(in, *up, bolt);
        if (!reason.empty()) break;
      }
    }
    if (reason.empty() && !workerOfTask.empty())
      for (int i = 0; i < bolt.parallelism; ++i)
        if (workerOfTask[static_cast<size_t>(up->firstTask + i)] !=
            workerOfTask[static_cast<size_t>(bolt.firstTask + i)])
          reason = "task " + std::to_string(i) + " runs in another worker than its upstream's";
    if (reason.empty())
      plan.into[b] = indexOf(up);
    else if (why)
      (*why)[b] = std::move(reason);
  }
  plan.hostOf.resize(static_cast<size_t>(topology.taskCount()));
  for (TaskId t = 0; t < topology.taskCount(); ++t) {
    // Up the chain (no cycles: the topology is a DAG).
    int c = indexOf(&topology.componentOfTask(t));
    int i = t - comps[static_cast<size_t>(c)].firstTask;
    while (plan.into[static_cast<size_t>(c)] >= 0) c = plan.into[static_cast<size_t>(c)];
    plan.hostOf[static_cast<size_t>(t)] = comps[static_cast<size_t>(c)].firstTask + i;
  }
  return plan;
}

}  // namespace gale
