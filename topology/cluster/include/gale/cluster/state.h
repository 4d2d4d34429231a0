// What cluster mode keeps in ZooKeeper, and the coordinator's placement rule.
//
// Under the cluster's root (default "/gale"):
//   supervisors/<id>        ephemeral, SupervisorInfo: a live supervisor and its worker slots
//   election/c_<seq>        ephemeral sequential, a coordinator's id: the lowest one leads
//   topologies/<name>       TopologySpec, written by `gale submit`, deleted by `gale kill`
//   assignments/<name>      Assignment, written by the leading coordinator only
//   workers/<name>-<index>  ephemeral, WorkerStatus, written by the supervisor running the worker
// Every value is a JSON object; a value that does not parse is reported, never guessed at.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gale::cluster {

// A supervisor: where its workers listen. Slot i is a worker process whose task t binds
// tcp://host:(ports[i] + t), so the slots' ports must be further apart than a topology has tasks.
struct SupervisorInfo {
  std::string host;  // the address other hosts reach this one at
  std::vector<int> ports;
  // With CURVE (`gale supervisor --curve-key`): the public key its workers prove; empty: plain.
  std::string publicKey;
};

// A component's tasks: firstTask .. firstTask + tasks - 1 ("__acker" for the ackers).
struct ComponentTasks {
  std::string name;
  int firstTask = 0;
  int tasks = 1;
  // Its key groups (BoltDeclarer::maxParallelism; 0: none): a checkpointed job may change its
  // task count up to this.
  uint32_t maxParallelism = 0;
  bool operator==(const ComponentTasks&) const = default;
};

// A submitted topology: the user's program, started by supervisors in worker mode.
struct TopologySpec {
  std::string binary;              // absolute path, the same on every supervisor's host
  std::vector<std::string> args;   // passed to it after the binary's name
  int workers = 1;                 // worker processes (slots) it runs in
  bool active = true;              // false: deactivated (spouts paused)
  // What the program said of its topology at submit (GALE_DESCRIBE, worker.h): its components'
  // tasks, ackers included. Task t runs in worker t % workers.
  std::vector<ComponentTasks> components;
  // Components whose task count `gale rebalance --parallelism` changed: handed to the program in
  // GALE_PARALLELISM (worker.h, parallelism()), which builds them with that many tasks.
  std::map<std::string, int> parallelism;
  // "micro-batch": the job runs all its tasks in ONE worker process (its batch coordinator is an
  // object inside that process); `gale submit` and `rebalance` keep it at one worker.
  // "exactly-once" (continuous): any worker count, task counts fixed (per-task snapshots).
  // Empty: at-least-once.
  std::string mode;
  int tasks() const;               // all tasks, ackers included (0: not described)
};

struct Slot {
  std::string supervisor;
  int port = 0;
  bool operator==(const Slot&) const = default;
};

// Where each worker of a topology runs. `version` grows with every change; a worker process is
// started for one version and restarted when its topology's assignment changes (the endpoints of
// its peers are fixed for the life of a process).
struct Assignment {
  int64_t version = 0;
  std::vector<Slot> workers;            // index: worker
  std::map<std::string, std::string> hosts;  // supervisor -> host, for the endpoints
  std::map<std::string, std::string> keys;   // supervisor -> CURVE public key, if it has one
  // The spec's parallelism when this version was placed: a change restarts every worker.
  std::map<std::string, int> parallelism;
  std::vector<std::string> endpoints() const;  // "tcp://host:port" per worker
  // Each worker's CURVE public key (its supervisor's), or empty when any worker has none.
  std::vector<std::string> publicKeys() const;
};

// A running worker process as its supervisor reports it.
struct WorkerStatus {
  std::string supervisor;
  int pid = 0;
  int64_t version = 0;  // of the assignment it runs
  int restarts = 0;     // times the supervisor restarted it after it died
};

std::string toJson(const SupervisorInfo& s);
std::string toJson(const TopologySpec& t);
std::string toJson(const Assignment& a);
std::string toJson(const WorkerStatus& w);
// Throw std::invalid_argument naming what is wrong (not JSON, a missing or mistyped field, an
// out-of-range value).
SupervisorInfo parseSupervisorInfo(const std::string& json);
TopologySpec parseTopologySpec(const std::string& json);
Assignment parseAssignment(const std::string& json);
WorkerStatus parseWorkerStatus(const std::string& json);
// describeTopology()'s output (worker.h): the components, and the mode.
struct TopologyDescription {
  std::vector<ComponentTasks> components;
  std::string mode;  // TopologySpec::mode
  // Non-empty: why the job runs in one worker only (a micro-batch job with Trident state, say).
  std::string oneWorker;
  // Non-empty: why the job's checkpoint would not resume with these task counts, naming the
  // component (rescaleRefusal, gale/topology/rescale.h): `gale rebalance --parallelism` refuses.
  std::string rescaleRefused;
};
TopologyDescription parseDescription(const std::string& json);
std::vector<ComponentTasks> parseComponents(const std::string& json);
// The tasks of worker `w` of `workers`, as "component[task]" (task t runs in worker t % workers).
std::vector<std::string> tasksOfWorker(const std::vector<ComponentTasks>& components, int w,
                                       int workers);

// Topology names and daemon ids are also ZooKeeper node names and directory names:
// [A-Za-z0-9_.-]{1,64}, not "." or "..". Throws std::invalid_argument naming `kind` otherwise.
void checkName(const std::string& kind, const std::string& name);

// The coordinator's placement of one topology's workers. Workers keep their slot while its
// supervisor is alive and nobody else holds it; the others go, one at a time, to the live
// supervisor with the fewest of this topology's workers and then the fewest slots in use overall
// (ties: the smaller id), on its lowest free port. nullopt when there are not enough free slots.
// `taken`: slots held by other topologies. `tasks`: the topology's task count; a worker binds
// port + t for its tasks t, so only a port at least `tasks` below the supervisor's next port
// (and below 65536 - tasks) can hold one of its workers.
std::optional<std::vector<Slot>> place(int workers, const std::vector<Slot>& previous,
                                       const std::map<std::string, SupervisorInfo>& live,
                                       const std::vector<Slot>& taken, int tasks = 1);

}  // namespace gale::cluster
