// Groupings, sender side: which downstream tasks get a copy of a tuple emitted on one stream.
// One Router per (sending task, output stream); it keeps the per-sender state some groupings
// need (the shuffle cursor, partial key grouping's counts), so it is not shared between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/key_group.h"
#include "gale/topology/topology.h"

namespace gale {

class Router {
 public:
  struct Route {
    std::string consumer;
    Grouping kind = Grouping::Shuffle;
    std::vector<TaskId> targets;   // ascending
    std::vector<int> fieldIndex;   // Fields / PartialKey
    std::vector<TaskId> shuffled;  // Shuffle / LocalOrShuffle: the candidates, permuted
    size_t cursor = 0;
    std::vector<uint64_t> sent;    // PartialKey: copies sent per target index
    uint32_t maxParallelism = 0;   // the consumer's key groups (0: none, hash % tasks)
  };

  // `workerOfTask` and `self` decide what is local for localOrShuffle (empty: all is local).
  Router(const Topology& topology, const ComponentSpec& from, const StreamSpec& stream,
         const std::vector<int>& workerOfTask, int self, uint64_t seed);

  // Appends to `out` the tasks that get a copy. `directTask` < 0: a normal emit (direct
  // subscribers get nothing); >= 0: emitDirect, only direct subscribers holding that task.
  // Throws std::invalid_argument when a direct emit names no direct subscriber's task.
  void route(const Values& values, TaskId directTask, std::vector<TaskId>& out);

  // Fusion: every copy for `consumer` goes to `task` (the runtime fuses only where the grouping
  // allows it, see private/fusion.h).
  void forwardTo(std::string_view consumer, TaskId task);

  // What route() gives every normal emit when that depends on nothing (each subscriber that is
  // not a direct one has a single task: parallelism 1, or fused), else nullptr.
  const std::vector<TaskId>* fixedTargets() const { return fixed_ ? &fixedTargets_ : nullptr; }

  // Every task any subscriber may receive from this stream.
  std::vector<TaskId> allTargets() const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  uint64_t nextRandom();
  void reshuffle(Route& r);
  void findFixedTargets();

  std::string from_;
  std::string stream_;
  std::vector<Route> routes_;
  uint64_t rng_;
  bool fixed_ = false;
  std::vector<TaskId> fixedTargets_;
};

}  // namespace gale
