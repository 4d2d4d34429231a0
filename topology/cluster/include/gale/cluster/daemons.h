// The two cluster daemons, Storm's Nimbus and supervisor. Each runs until `stop` is set (then
// returns 0) or its ZooKeeper session is lost (then returns kSessionLost: the daemon exits and
// whatever runs it — systemd, Kubernetes — starts it again with a fresh session; its ephemeral
// nodes are gone by then, so the rest of the cluster already treats it as dead).
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "gale/cluster/state.h"

namespace gale::cluster {

inline constexpr int kSessionLost = 3;

struct ClusterOptions {
  std::string zookeeper = "127.0.0.1:2181";  // host:port[,host:port...]
  std::string root = "/gale";                // one cluster per root
  std::chrono::milliseconds sessionTimeout{4000};
};

// The coordinator: joins the leader election (ZooKeeper's recipe: ephemeral sequential nodes,
// the lowest leads, each standby watches the node just before its own, so a leader's death
// wakes one standby, not all). The leader places every submitted topology's workers on the live
// supervisors' slots (place() in state.h), moves the workers of a supervisor whose node vanished,
// re-places a topology whose worker count changed (rebalance), and deletes the assignment of a
// killed topology.
int runCoordinator(const ClusterOptions& cluster, const std::string& id,
                   const std::atomic<bool>& stop);

// The supervisor: registers itself (ephemeral node with its host and slot ports), starts the
// workers assigned to it — the topology's binary with GALE_WORKER_ASSIGNMENT set, in
// <dir>/workers/<topology>-<index>/ with its output in worker.log there — restarts a worker that
// exits (after 0.1 s, doubling per quick death up to 10 s), stops (SIGTERM, then SIGKILL after 5 s)
// the workers no longer assigned to it or whose assignment changed, and signals
// deactivate/activate (SIGUSR1/SIGUSR2). Its workers die with it (PR_SET_PDEATHSIG), as they
// would with their host. keyFile: the secret certificate of info.publicKey, which the workers
// use for CURVE; empty: plain tcp.
int runSupervisor(const ClusterOptions& cluster, const std::string& id,
                  const SupervisorInfo& info, const std::string& dir,
                  const std::string& keyFile, const std::atomic<bool>& stop);

// Paths under the root.
std::string supervisorsPath(const ClusterOptions& c);
std::string electionPath(const ClusterOptions& c);
std::string topologiesPath(const ClusterOptions& c);
std::string assignmentsPath(const ClusterOptions& c);
std::string workersPath(const ClusterOptions& c);

}  // namespace gale::cluster
