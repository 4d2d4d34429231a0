// Keyed state of a continuous-mode bolt that lives outside its worker process, in a directory
// every host of the cluster can reach (a shared filesystem in production), so neither a worker's
// restart nor a rebalance that changes the bolt's task count loses it (docs/cluster.md, "State
// across restarts and rebalances").
//
// Keys are spread over a fixed number of key groups (Flink's name: the unit state is stored and
// moved in, fixed for the life of the state, independent of the bolt's parallelism). Group g is
// the file <dir>/g<g>; every update of a key is a read-modify-write of its group's file under an
// exclusive lock (flock on <dir>/g<g>.lock, which NFS maps to its byte-range locks), the new file
// written aside and renamed over the old one. A bolt updates the key, then acks the tuple: what
// was acked is on disk, so any task — of the same parallelism or another, in this process or in
// the next one — reads it, and two tasks that both hold a key for a moment (the old and the new
// worker during a rebalance) cannot lose each other's updates. At-least-once: a tuple replayed
// after a failure updates its key again (a count counts it twice).
//
// Cost: one lock, read, write and rename of the key's group per update (the group holds about
// keys / keyGroups keys); with sync, one fsync more. Meant for state updated per tuple at modest
// rates (per-key counts of a cluster topology); it is not the micro-batch StateStore (LMDB,
// exactly-once, one process).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace gale::cluster {

class SharedKeyedState {
 public:
  struct Options {
    // Fixed for the life of the directory: it is recorded in <dir>/key-groups and a state opened
    // with another count is refused (its keys would be looked for in the wrong files).
    int keyGroups = 128;
    // true: fsync each group file before its rename (survives a host crash, not only a process
    // crash).
    bool sync = false;
  };
  // Creates `dir` if needed. Throws std::runtime_error naming the directory and the problem (it
  // cannot be created, keyGroups < 1, a directory made with another keyGroups).
  explicit SharedKeyedState(std::string dir);
  SharedKeyedState(std::string dir, Options options);

  // The key's group: FNV-1a of the key modulo keyGroups (stable across processes and builds).
  int keyGroup(const std::string& key) const;

  // Replaces the key's value with change(current value or nullopt), atomically with respect to
  // every other SharedKeyedState on the same directory; returns the new value. Throws
  // std::runtime_error on an I/O error or a damaged group file (naming it; the file is left as
  // it is), in which case nothing was changed.
  std::string update(const std::string& key,
                     const std::function<std::string(const std::optional<std::string>&)>& change);
  // Adds `delta` to a decimal counter (absent: 0); returns the new count.
  int64_t add(const std::string& key, int64_t delta);

  std::optional<std::string> get(const std::string& key) const;
  // Every key of every group (inspection and tests).
  std::map<std::string, std::string> readAll() const;

  const std::string& dir() const { return dir_; }

 private:
  std::map<std::string, std::string> readGroup(int group) const;
  std::string groupFile(int group) const;

  std::string dir_;
  Options options_;
};

}  // namespace gale::cluster
