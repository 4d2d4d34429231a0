// Key groups (Flink's idea): a keyed component declared with a maximum parallelism M splits its
// keys into M groups by the grouping hash, and each task owns a contiguous range of groups. A
// key's group never changes, so a snapshot split by group can be restored into any parallelism
// n <= M: each new task takes the groups of its range, wherever they were before.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/value.h"

namespace gale {

constexpr uint32_t kMaxKeyGroups = 32768;

// The key hash of fields grouping: the same on every sender and in every process.
uint64_t hashFields(const Values& values, const std::vector<int>& fieldIndex);
// The same hash over a key's own values (== hashFields(key, {0 .. key.size()-1})): what an
// operator holding the key computes to find the group the router sent it by.
uint64_t hashKeyValues(const Values& key);

inline uint32_t keyGroupOf(uint64_t hash, uint32_t maxParallelism) {
  return static_cast<uint32_t>(hash % maxParallelism);
}
// The task (0 .. parallelism-1) that owns `group`.
inline int taskOfKeyGroup(uint32_t group, uint32_t maxParallelism, int parallelism) {
  return static_cast<int>(uint64_t{group} * static_cast<uint64_t>(parallelism) / maxParallelism);
}

struct KeyGroupRange {
  uint32_t first = 0, end = 0;  // [first, end)
  bool contains(uint32_t g) const { return g >= first && g < end; }
  bool meets(const KeyGroupRange& o) const { return first < o.end && o.first < end; }
};
// The groups task `taskIndex` of `parallelism` owns: exactly those g with taskOfKeyGroup(g) ==
// taskIndex. The ranges of 0 .. parallelism-1 are disjoint and cover [0, maxParallelism).
KeyGroupRange keyGroupRange(int taskIndex, int parallelism, uint32_t maxParallelism);

// State split by key group: an Operator or a CheckpointedBolt of a component declared with
// maxParallelism implements it, so that the component's parallelism can change between runs.
class KeyGroupedState {
 public:
  virtual ~KeyGroupedState() = default;
  // The key fields, in hashing order. Every input of the component must be fields-grouped on
  // exactly these (the builder checks it), so the router's group of a key is the state's.
  virtual std::vector<std::string> keyGroupFields() const = 0;
  struct Split {
    std::string head;                       // task-wide state (watermark, counters)
    std::map<uint32_t, std::string> groups;  // group -> its keys' state; groups with none absent
  };
  virtual Split snapshotKeyGroups(uint32_t maxParallelism) const = 0;
  struct Head {
    std::string_view bytes;
    // This task owns the old task's first group: task-wide counters (late rows, duplicates) of
    // the old task are restored here and nowhere else, so each is counted once.
    bool owner = false;
  };
  // `heads`: of every old task whose range meets this task's (at least one, in old task order);
  // `groups`: the groups of this task's range only. Throws SnapshotError when they cannot be
  // combined.
  virtual void restoreKeyGroups(const std::vector<Head>& heads,
                                const std::map<uint32_t, std::string_view>& groups,
                                uint32_t maxParallelism) = 0;
  // Empty when a task may take the groups of several old tasks (restoreKeyGroups with more
  // than one head); otherwise why not, which restoreKeyGroups then throws and `gale rebalance`
  // says before it changes the task count (rescaleMergesTasks).
  virtual std::string whyTasksCannotMerge() const { return {}; }
};

// Whether some task of `parallelism` takes the groups of more than one task of `oldParallelism`
// (its restore gets several heads): a rescale down, or up to a count that is not a multiple.
bool rescaleMergesTasks(uint32_t maxParallelism, int oldParallelism, int parallelism);

// The per-task blob of a key-grouped component ("GKGS" v1): M, the parallelism it was taken
// at, the task index, the head, then the non-empty groups ascending.
std::string encodeKeyGroupSnapshot(uint32_t maxParallelism, int parallelism, int taskIndex,
                                   const KeyGroupedState::Split& split);

// Restores task `taskIndex` of `parallelism` of `component` from the blobs "component#i" that
// `lookup` gives (nullopt: none). No blob "component#0": nothing to restore (a first run).
// Otherwise #0 names the parallelism P0 the blobs were taken at (blobs #k >= P0 left by an earlier,
// larger parallelism are never read), and every old task whose range meets this task's must
// have its blob with a matching header. Throws SnapshotError naming the key otherwise.
void restoreKeyGroupSnapshot(
    const std::function<std::optional<std::string>(const std::string& key)>& lookup,
    const std::string& component, int taskIndex, int parallelism, uint32_t maxParallelism,
    KeyGroupedState& into);

// The parallelism the blob "component#0" was taken at (0: not a key-group snapshot).
int keyGroupSnapshotParallelism(std::string_view blob);

// What a runtime's task wrapper needs to snapshot and restore a key-grouped task: empty (false)
// unless the component has key groups and its operator or bolt is a KeyGroupedState.
struct KeyGroupedTask {
  KeyGroupedState* state = nullptr;
  uint32_t maxParallelism = 0;
  std::string component;
  int taskIndex = 0, parallelism = 1;

  explicit operator bool() const { return state != nullptr; }
  std::string snapshot() const {
    return encodeKeyGroupSnapshot(maxParallelism, parallelism, taskIndex,
                                  state->snapshotKeyGroups(maxParallelism));
  }
  void restore(const std::function<std::optional<std::string>(const std::string&)>& lookup) const {
    restoreKeyGroupSnapshot(lookup, component, taskIndex, parallelism, maxParallelism, *state);
  }
};

}  // namespace gale
