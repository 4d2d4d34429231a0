// The cluster as `gale list` prints it and `gale ui` shows it: the coordinator, the supervisors
// and their slots, each topology with its assignment, its workers (pid, restarts) and the tasks
// each worker runs. Read from ZooKeeper in one pass; nodes that do not parse are shown as such.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gale/cluster/daemons.h"
#include "gale/cluster/state.h"
#include "gale/cluster/zk.h"

namespace gale::cluster {

struct ClusterView {
  std::string leader;     // the leading coordinator's id, empty: none
  size_t coordinators = 0;
  std::map<std::string, SupervisorInfo> supervisors;
  struct Worker {
    Slot slot;
    std::string endpoint;
    std::vector<std::string> tasks;       // "component[task]"
    std::optional<WorkerStatus> status;   // none: not running (being started or restarted)
  };
  struct Topology {
    std::string name;
    TopologySpec spec;
    int64_t version = 0;                  // of the assignment; 0: not assigned yet
    std::vector<Worker> workers;
  };
  std::vector<Topology> topologies;
  std::vector<std::string> problems;      // nodes that did not parse
};

ClusterView readCluster(ZkClient& zk, const ClusterOptions& options);
std::string toText(const ClusterView& view);
std::string toJson(const ClusterView& view);
std::string toHtml(const ClusterView& view);  // a page that refreshes itself every 2 s

}  // namespace gale::cluster
