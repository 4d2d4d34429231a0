// The user's program in worker mode. A supervisor starts the program submitted with
// `gale submit` with the environment variable GALE_WORKER_ASSIGNMENT naming a JSON file:
//   {"topology": "wc", "self": 1, "endpoints": ["tcp://10.0.0.1:16000", ...], "active": true,
//    "keyFile": "/etc/gale/host.key_secret", "publicKeys": ["<Z85>", ...]}
// keyFile and publicKeys are there when the supervisor runs with CURVE (`--curve-key`): the worker
// then authenticates and encrypts every channel with its supervisor's key pair and accepts only
// the keys of the topology's other workers' supervisors (docs/security.md, docs/cluster.md).
// The program builds its topology as usual and hands it to runIfClusterWorker first:
//
//   gale::Topology topology = buildTopology(args);
//   if (auto rc = gale::cluster::runIfClusterWorker(topology, config)) return *rc;
//   ... run it locally as before ...
//
// Every worker of a topology runs the same binary with the same arguments, so each builds the
// same topology and computes the same task ids; task t runs in worker t % workers.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "gale/batch/microbatch.h"
#include "gale/topology/runtime.h"

namespace gale::cluster {

inline constexpr const char* kAssignmentEnv = "GALE_WORKER_ASSIGNMENT";
// Set (to anything) by `gale submit`, which runs the program once on the submitting host:
// runIfClusterWorker then prints describeTopology() as the last line of stdout and returns 0.
inline constexpr const char* kDescribeEnv = "GALE_DESCRIBE";
// Set by supervisors (and by `gale rebalance --parallelism` when it describes the program again):
// "count=4,split=2", the components whose task count a rebalance changed. Read with parallelism().
inline constexpr const char* kParallelismEnv = "GALE_PARALLELISM";

// "a=4,b=2" and back. parseParallelism throws std::invalid_argument naming a bad entry (no '=',
// an empty or repeated name, a count that is not an integer >= 1).
std::string parallelismText(const std::map<std::string, int>& parallelism);
std::map<std::string, int> parseParallelism(const std::string& text);

// The task count a rebalance gave `component` (GALE_PARALLELISM), else `declared`. The program
// passes it to setBolt/setSpout for every component that may be rebalanced:
//   b.setBolt("count", CountBolt{}, gale::cluster::parallelism("count", 2))
// Throws std::invalid_argument when GALE_PARALLELISM is malformed.
int parallelism(const std::string& component, int declared);

struct WorkerFile {
  std::string topology;
  WorkerAssignment assignment;  // workerOfTask left empty: it depends on the task count
  bool active = true;
  std::string keyFile;          // the supervisor's secret certificate; empty: plain tcp
};
std::string toJson(const WorkerFile& w);
// Throws std::invalid_argument naming the problem (self out of range, no endpoints, not JSON, a
// key file without a public key for every worker).
WorkerFile parseWorkerFile(const std::string& json);

// Task t -> worker t % workers (ackers included).
std::vector<int> roundRobinTasks(int tasks, int workers);

// {"components": [{"name": "split", "firstTask": 1, "tasks": 2}, ..., {"name": "__acker", ...}]},
// with "mode": "exactly-once" or "micro-batch" (TopologySpec). An exactly-once job lists its
// checkpoint coordinator as "__checkpoint", one task after the components' (no ackers).
std::string describeTopology(const Topology& topology, const Continuous& config);
std::string describeTopology(const Topology& topology, const MicroBatch& config);

// With GALE_DESCRIBE set: prints describeTopology() and returns 0.
// nullopt when GALE_WORKER_ASSIGNMENT is not set (the program was not started by a supervisor).
// Otherwise runs this worker's tasks over tcp (runWorker) until SIGTERM or SIGINT, pausing the
// spouts on SIGUSR1 (deactivate) and resuming them on SIGUSR2 (activate), and returns the exit
// code: 0 after the signal, 1 when the assignment or the key file cannot be read or the topology
// stopped on an error (the supervisor restarts it). With a key file, the assignment's CURVE setup
// replaces config.curve. A topology whose bounded sources end keeps its process
// until it is killed, as a Storm topology does. Call it from the main thread before starting any
// other thread: it blocks those signals for the threads it starts.
//
// Exactly-once (config.guarantee) jobs run over any number of workers (runWorker with the
// checkpoint coordinator in one of them; with one worker, runContinuous over inproc channels);
// a worker exits 1 when the job lost a worker, so that every worker restarts from the last
// checkpoint. Micro-batch jobs run in ONE worker, all their tasks in its process (their batch
// coordinator is an object of that process): runMicroBatch, refusing (exit 1) an assignment of
// more than one worker. Their checkpoint directory must be on a path every supervisor's host reaches
// (a shared filesystem), so a worker restarted on another host resumes from it; the directory's
// lock lets one worker at a time use it (a copy started elsewhere while a stale one still runs
// fails and is retried by its supervisor). SIGTERM: exactly-once kills the topology (the next
// start resumes from the last completed checkpoint); micro-batch stops gracefully (the batch in
// flight is committed). SIGUSR1 / SIGUSR2 deactivate and activate, as above.
std::optional<int> runIfClusterWorker(const Topology& topology, Continuous config);
std::optional<int> runIfClusterWorker(const Topology& topology, MicroBatch config);

}  // namespace gale::cluster
