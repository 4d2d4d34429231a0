#include <algorithm>
#include <map>

#include "gale/cluster/daemons.h"
#include "gale/cluster/zk.h"
#include "gale/core/log.h"

namespace gale::cluster {

std::string supervisorsPath(const ClusterOptions& c) { return c.root + "/supervisors"; }
std::string electionPath(const ClusterOptions& c) { return c.root + "/election"; }
std::string topologiesPath(const ClusterOptions& c) { return c.root + "/topologies"; }
std::string assignmentsPath(const ClusterOptions& c) { return c.root + "/assignments"; }
std::string workersPath(const ClusterOptions& c) { return c.root + "/workers"; }

namespace {

class Leader {
 public:
  Leader(ZkClient& zk, const ClusterOptions& c) : zk_(zk), c_(c) {}

  // One pass: read the cluster (setting watches on what may change it) and write what differs.
  void reconcile() {
    std::map<std::string, SupervisorInfo> live;
    for (const std::string& id : zk_.children(supervisorsPath(c_), true)) {
      auto data = zk_.get(supervisorsPath(c_) + "/" + id);
      if (!data) continue;
      try {
        live[id] = parseSupervisorInfo(*data);
      } catch (const std::invalid_argument& e) {
        logWarn("coordinator: supervisor " + id + " left out: " + e.what());
      }
    }
    std::vector<std::string> topologies = zk_.children(topologiesPath(c_), true);
    for (const std::string& name : zk_.children(assignmentsPath(c_)))
      if (!std::binary_search(topologies.begin(), topologies.end(), name)) {
        zk_.remove(assignmentsPath(c_) + "/" + name);
        logInfo("coordinator: '" + name + "' killed, its assignment removed");
      }

    // Slots per topology as assigned now; updated as each topology is placed, so the ones placed
    // later see the slots the earlier ones took.
    std::map<std::string, std::vector<Slot>> held;
    std::map<std::string, std::pair<Assignment, int>> current;  // with the node's version
    for (const std::string& name : topologies) {
      int version = -1;
      auto data = zk_.get(assignmentsPath(c_) + "/" + name, false, &version);
      if (!data) continue;
      try {
        current[name] = {parseAssignment(*data), version};
        held[name] = current[name].first.workers;
      } catch (const std::invalid_argument& e) {
        logWarn("coordinator: replacing a bad assignment: " + std::string(e.what()));
      }
    }
    for (const std::string& name : topologies) {
      auto data = zk_.get(topologiesPath(c_) + "/" + name, true);
      if (!data) continue;
      TopologySpec spec;
      try {
        spec = parseTopologySpec(*data);
      } catch (const std::invalid_argument& e) {
        logWarn("coordinator: topology '" + name + "' left out: " + e.what());
        continue;
      }
      std::vector<Slot> taken;
      for (const auto& [other, slots] : held)
        if (other != name) taken.insert(taken.end(), slots.begin(), slots.end());
      auto it = current.find(name);
      std::vector<Slot> previous = it == current.end() ? std::vector<Slot>{} : it->second.first.workers;
      auto placed = place(spec.workers, previous, live, taken, std::max(1, spec.tasks()));
      if (!placed) {
        logWarn("coordinator: not enough free slots for '" + name + "' (" +
                std::to_string(spec.workers) + " workers of " + std::to_string(spec.tasks()) +
                " tasks: slot ports must be that far apart); waiting for supervisors");
        continue;
      }
      Assignment next;
      next.workers = *placed;
      next.parallelism = spec.parallelism;
      for (const Slot& s : next.workers) {
        const SupervisorInfo& info = live.at(s.supervisor);
        next.hosts[s.supervisor] = info.host;
        if (!info.publicKey.empty()) next.keys[s.supervisor] = info.publicKey;
      }
      if (it != current.end() && it->second.first.workers == next.workers &&
          it->second.first.hosts == next.hosts && it->second.first.keys == next.keys &&
          it->second.first.parallelism == next.parallelism)
        continue;
      next.version = it == current.end() ? 1 : it->second.first.version + 1;
      std::string path = assignmentsPath(c_) + "/" + name;
      // Conditional on the version read: a stale leader's write (one that has not yet seen its
      // session expire) fails instead of overwriting its successor's.
      bool written = it == current.end()
                         ? (zk_.create(path, toJson(next), NodeKind::Persistent), true)
                         : zk_.set(path, toJson(next), it->second.second);
      if (!written) continue;  // changed under us: the next pass reads it again
      held[name] = next.workers;
      std::string where;
      for (size_t w = 0; w < next.workers.size(); ++w)
        where += " " + std::to_string(w) + "->" + next.workers[w].supervisor + ":" +
                 std::to_string(next.workers[w].port);
      logInfo("coordinator: '" + name + "' assignment v" + std::to_string(next.version) + ":" +
              where);
    }
  }

 private:
  ZkClient& zk_;
  const ClusterOptions& c_;
};

}  // namespace

int runCoordinator(const ClusterOptions& c, const std::string& id, const std::atomic<bool>& stop) {
  ZkClient zk({c.zookeeper, c.sessionTimeout});
  for (const auto& p : {supervisorsPath(c), electionPath(c), topologiesPath(c),
                        assignmentsPath(c), workersPath(c)})
    zk.ensurePath(p);
  std::string me = zk.create(electionPath(c) + "/c_", id, NodeKind::EphemeralSequential);
  me = me.substr(me.rfind('/') + 1);
  logInfo("coordinator " + id + ": in the election as " + me);
  Leader leader(zk, c);
  bool leading = false;
  // The leader reads the cluster after a watch fired, and every 5 s in case a conditional write
  // lost a race (the node it lost to is not watched) or a read failed.
  bool stale = true;  // set until a pass succeeded
  uint64_t reconciled = 0;
  auto lastPass = std::chrono::steady_clock::now();
  while (!stop) {
    uint64_t seen = zk.changes();
    if (zk.sessionLost()) {
      logError("coordinator " + id + ": ZooKeeper session lost");
      return kSessionLost;
    }
    try {
      std::vector<std::string> candidates = zk.children(electionPath(c));
      auto mine = std::find(candidates.begin(), candidates.end(), me);
      if (mine == candidates.end()) {
        logError("coordinator " + id + ": its election node is gone (session expired)");
        return kSessionLost;
      }
      if (mine == candidates.begin()) {
        if (!leading) logInfo("coordinator " + id + ": leading");
        leading = true;
        if (stale || reconciled != seen ||
            std::chrono::steady_clock::now() - lastPass > std::chrono::seconds(5)) {
          stale = true;
          lastPass = std::chrono::steady_clock::now();
          leader.reconcile();
          stale = false;
          reconciled = seen;
        }
      } else if (!zk.exists(electionPath(c) + "/" + *(mine - 1), true)) {
        continue;  // the predecessor left between the two reads: look again at once
      }
    } catch (const ZkError& e) {
      logWarn("coordinator " + id + ": " + e.what());  // connection loss: retried below
    }
    zk.waitForChange(seen, std::chrono::milliseconds(500));
  }
  return 0;
}

}  // namespace gale::cluster
