// A small synchronous wrapper over ZooKeeper's multi-threaded C client (Debian
// libzookeeper-mt-dev): the node operations cluster mode needs, watches as one change counter, and
// session loss reported.
//
// Watches are level-triggered by design: any watch that fires (and any session event) bumps
// changes() and wakes waitForChange(); the caller then re-reads what it cares about, setting the
// watches again. A reconcile loop written that way cannot miss an event between a watch firing
// and its re-registration, and ZooKeeper's C callbacks (on the client's completion thread, where
// a synchronous call would deadlock) only ever touch an atomic and a condition variable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

typedef struct _zhandle zhandle_t;

namespace gale::cluster {

// A ZooKeeper call failed: `code` is the client's ZOO_ERRORS value (ZCONNECTIONLOSS, ...).
class ZkError : public std::runtime_error {
 public:
  ZkError(int code, const std::string& what);
  int code() const { return code_; }
  bool nodeExists() const;  // ZNODEEXISTS: create() found the node there

 private:
  int code_;
};

enum class NodeKind { Persistent, Ephemeral, EphemeralSequential };

class ZkClient {
 public:
  struct Options {
    std::string servers;  // "host:port[,host:port...]"
    // The session's timeout as asked of the server (which clamps it to [2, 20] x its tickTime).
    // An ephemeral node outlives its process's death by about this long.
    std::chrono::milliseconds sessionTimeout{4000};
    std::chrono::milliseconds connectTimeout{15000};
  };
  // Connects; throws ZkError when no session was established within connectTimeout.
  explicit ZkClient(Options options);
  ~ZkClient();
  ZkClient(const ZkClient&) = delete;
  ZkClient& operator=(const ZkClient&) = delete;

  // Creates `path` with `data`; returns the created path (with its sequence number for
  // EphemeralSequential). Throws ZkError (ZNODEEXISTS, ZNONODE for a missing parent, ...).
  std::string create(const std::string& path, const std::string& data, NodeKind kind);
  // Creates the persistent node `path` and its missing ancestors (empty data); existing ones are
  // left as they are.
  void ensurePath(const std::string& path);
  // The node's data, or nullopt when there is no such node. `version` receives its data version.
  // watch: the next change of the node (data change, creation, deletion) bumps changes().
  std::optional<std::string> get(const std::string& path, bool watch = false,
                                 int* version = nullptr);
  // Sets the data if the node's version is `version` (-1: any). False when the version did not
  // match (someone else wrote since) or the node is gone.
  bool set(const std::string& path, const std::string& data, int version = -1);
  // Deletes the node; false when it did not exist (or its version was not `version`).
  bool remove(const std::string& path, int version = -1);
  // The children's names, sorted; empty when the node does not exist. watch: a child added or
  // removed (or the node created) bumps changes().
  std::vector<std::string> children(const std::string& path, bool watch = false);
  bool exists(const std::string& path, bool watch = false);

  // Counts watch events and session state changes since the client started.
  uint64_t changes() const;
  // Waits until changes() differs from `seen` or `timeout` passed; returns whether it differs.
  bool waitForChange(uint64_t seen, std::chrono::milliseconds timeout);
  // The session expired (or was refused): its ephemeral nodes are gone and this client can do
  // nothing more. Cluster daemons exit on it (fail fast; see docs/cluster.md).
  bool sessionLost() const;
  // False while the client is reconnecting (calls fail with ZCONNECTIONLOSS meanwhile).
  bool connected() const;
  int64_t sessionId() const;

 private:
  static void onEvent(zhandle_t* zh, int type, int state, const char* path, void* self);
  void check(int rc, const char* op, const std::string& path) const;

  zhandle_t* zh_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t changes_ = 0;
  bool connected_ = false;
  bool lost_ = false;
};

}  // namespace gale::cluster
