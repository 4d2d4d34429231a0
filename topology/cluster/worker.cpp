#include "gale/cluster/worker.h"

#include <signal.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>

#include "gale/core/log.h"
#include "gale/topology/rescale.h"

namespace gale::cluster {

std::string toJson(const WorkerFile& w) {
  return nlohmann::json{{"topology", w.topology},
                        {"self", w.assignment.self},
                        {"endpoints", w.assignment.endpoints},
                        {"active", w.active},
                        {"keyFile", w.keyFile},
                        {"publicKeys", w.assignment.publicKeys}}
      .dump();
}

WorkerFile parseWorkerFile(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    WorkerFile w;
    w.topology = j.at("topology").get<std::string>();
    w.assignment.self = j.at("self").get<int>();
    w.assignment.endpoints = j.at("endpoints").get<std::vector<std::string>>();
    w.active = j.value("active", true);
    w.keyFile = j.value("keyFile", "");
    w.assignment.publicKeys = j.value("publicKeys", std::vector<std::string>{});
    if (!w.keyFile.empty() && w.assignment.publicKeys.size() != w.assignment.endpoints.size())
      throw std::invalid_argument(
          "CURVE needs every worker's public key: a supervisor of this topology runs without "
          "--curve-key (a cluster is all CURVE or all plain)");
    if (w.assignment.endpoints.empty()) throw std::invalid_argument("no endpoints");
    if (w.assignment.self < 0 ||
        w.assignment.self >= static_cast<int>(w.assignment.endpoints.size()))
      throw std::invalid_argument("self " + std::to_string(w.assignment.self) +
                                  " is not a worker index");
    return w;
  } catch (const std::exception& e) {
    throw std::invalid_argument("bad worker assignment '" + text.substr(0, 200) + "': " +
                                e.what());
  }
}

std::string parallelismText(const std::map<std::string, int>& parallelism) {
  std::string out;
  for (const auto& [component, n] : parallelism)
    out += (out.empty() ? "" : ",") + component + "=" + std::to_string(n);
  return out;
}

std::map<std::string, int> parseParallelism(const std::string& text) {
  std::map<std::string, int> out;
  std::stringstream in(text);
  for (std::string entry; std::getline(in, entry, ',');) {
    auto eq = entry.find('=');
    std::string name = entry.substr(0, eq);
    int n = 0;
    size_t used = 0;
    try {
      if (eq != std::string::npos) n = std::stoi(entry.substr(eq + 1), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (eq == std::string::npos || name.empty() || n < 1 || used != entry.size() - eq - 1)
      throw std::invalid_argument("bad parallelism '" + entry + "' in '" + text +
                                  "': expected component=tasks, tasks >= 1");
    if (!out.emplace(name, n).second)
      throw std::invalid_argument("parallelism of '" + name + "' given twice in '" + text + "'");
  }
  return out;
}

int parallelism(const std::string& component, int declared) {
  const char* text = std::getenv(kParallelismEnv);
  if (!text) return declared;
  auto all = parseParallelism(text);
  auto it = all.find(component);
  return it == all.end() ? declared : it->second;
}

std::vector<int> roundRobinTasks(int tasks, int workers) {
  std::vector<int> out;
  for (int t = 0; t < tasks; ++t) out.push_back(t % workers);
  return out;
}

namespace {

// Tasks in several workers talk over tcp, with CURVE when the supervisors have keys; true then.
bool overTcp(WorkerFile& file, Continuous& config) {
  config.transport = TransportScheme::Tcp;
  if (!file.keyFile.empty())
    config.curve = CurveConfig{loadCurveKeyPair(file.keyFile), file.assignment.publicKeys};
  else
    file.assignment.publicKeys.clear();
  return config.curve.has_value();
}

// `extra`: what runs as tasks numbered after the components' (the ackers, or the checkpoint
// coordinator of an exactly-once job, which binds its worker's port + its number).
nlohmann::json componentsJson(const Topology& topology, const std::string& extra, int extraTasks) {
  nlohmann::json components = nlohmann::json::array();
  int tasks = 0;
  for (const ComponentSpec& c : topology.components()) {
    components.push_back({{"name", c.name}, {"firstTask", c.firstTask}, {"tasks", c.parallelism},
                          {"maxParallelism", c.maxParallelism}});
    tasks = std::max(tasks, static_cast<int>(c.firstTask) + c.parallelism);
  }
  if (extraTasks > 0)
    components.push_back({{"name", extra}, {"firstTask", tasks}, {"tasks", extraTasks}});
  return components;
}

// What a worker process drives on its signals: the running topology or job.
struct Job {
  std::function<void()> terminate;  // SIGTERM / SIGINT, before the process exits 0
  std::function<void(bool)> setActive;
  std::function<bool()> active;
  std::function<std::string()> error;  // non-empty: the job stopped on an error
};

constexpr int kRun = -1;

// GALE_DESCRIBE: prints the description (returns 0; it reads the job's checkpoint, so only
// then is it made). No GALE_WORKER_ASSIGNMENT: nullopt, not a
// worker. Else reads the worker file into `file` and returns kRun, or returns 1 when it cannot be
// read.
std::optional<int> startWorker(const std::function<std::string()>& describe, WorkerFile& file) {
  if (std::getenv(kDescribeEnv)) {
    std::printf("\n%s\n", describe().c_str());
    std::fflush(stdout);
    return 0;
  }
  const char* path = std::getenv(kAssignmentEnv);
  if (!path) return std::nullopt;
  try {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument(std::string("cannot read ") + path);
    std::stringstream text;
    text << in.rdbuf();
    file = parseWorkerFile(text.str());
  } catch (const std::exception& e) {
    logError(std::string("cluster worker: ") + e.what());
    return 1;
  }
  return kRun;
}

// The signals a worker waits for, blocked in the calling thread so that every thread started
// after it inherits the mask and the signals reach only the sigtimedwait of serve().
sigset_t blockWorkerSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int serve(const sigset_t& signals, Job& job) {
  timespec poll{0, 200'000'000};
  for (;;) {
    int s = sigtimedwait(&signals, nullptr, &poll);
    if (s == SIGTERM || s == SIGINT) {
      job.terminate();
      return 0;
    }
    if (s == SIGUSR1 || s == SIGUSR2) {
      job.setActive(s == SIGUSR2);
      logInfo(std::string("cluster worker: spouts ") +
              (job.active() ? "activated" : "deactivated"));
    }
    if (std::string error = job.error(); !error.empty()) {
      logError("cluster worker: the topology stopped: " + error);
      return 1;
    }
  }
}

}  // namespace

std::string describeTopology(const Topology& topology, const Continuous& config) {
  if (config.guarantee == Guarantee::ExactlyOnce) {
    nlohmann::json d{{"components", componentsJson(topology, "__checkpoint", 1)},
                     {"mode", "exactly-once"}};
    if (std::string why = rescaleRefusal(topology, config.checkpointDir); !why.empty())
      d["rescaleRefused"] = why;
    return d.dump();
  }
  int ackers = totalTasks(topology, config) - topology.taskCount();
  return nlohmann::json{{"components", componentsJson(topology, "__acker", ackers)}}.dump();
}

std::string describeTopology(const Topology& topology, const MicroBatch& config) {
  // Micro-batch mode runs the executors without ackers (a batch is replayed whole); over several
  // workers the job (its batch coordinator) binds its worker's port + taskCount().
  nlohmann::json d{{"components", componentsJson(topology, "__batch", 1)}, {"mode", "micro-batch"}};
  if (config.trigger.kind == BatchTrigger::Kind::Continuous)
    d["oneWorker"] = "the continuous trigger runs the job in one worker";
  for (const ComponentSpec& c : topology.components())
    if (dynamic_cast<const BatchStateWriter*>(c.op.get()))
      d["oneWorker"] = "'" + c.name + "' keeps Trident state, whose updates run in one worker";
  if (std::string why = rescaleRefusal(topology, config.checkpoint); !why.empty())
    d["rescaleRefused"] = why;
  return d.dump();
}

std::optional<int> runIfClusterWorker(const Topology& topology, Continuous config) {
  bool exactlyOnce = config.guarantee == Guarantee::ExactlyOnce;
  WorkerFile file;
  auto rc = startWorker([&] { return describeTopology(topology, config); }, file);
  if (rc != kRun) return rc;
  sigset_t signals = blockWorkerSignals();
  WorkerAssignment& a = file.assignment;
  try {
    std::optional<RunningTopology> rt;
    bool curve = false;
    if (exactlyOnce && a.endpoints.size() == 1) {
      // Every task here over inproc channels: nothing crosses the network, so the supervisor's
      // CURVE key has nothing to protect.
      rt.emplace(runContinuous(topology, std::move(config)));
    } else {
      // Exactly-once over several workers: runWorker waits here until every worker of the job
      // joined its checkpoint coordinator, and stops with an error (exit 1, restarted by the
      // supervisor) when the job loses a worker, so every worker resumes from one checkpoint.
      a.workerOfTask = roundRobinTasks(totalTasks(topology, config),
                                       static_cast<int>(a.endpoints.size()));
      curve = overTcp(file, config);
      rt.emplace(runWorker(topology, std::move(config), a));
    }
    if (!file.active) rt->deactivate();  // a topology submitted, then deactivated before this start
    logInfo("cluster worker " + std::to_string(a.self) + " of '" + file.topology + "' running" +
            (exactlyOnce ? " exactly-once" : "") + (curve ? " with CURVE" : ""));
    // At-least-once: what was in flight is replayed by the spouts' sources. Exactly-once: the
    // next start of every worker resumes from the last completed checkpoint.
    Job job{[&] { rt->kill(); }, [&](bool on) { on ? rt->activate() : rt->deactivate(); },
            [&] { return rt->active(); }, [&] { return rt->error(); }};
    return serve(signals, job);
  } catch (const std::exception& e) {
    logError(std::string("cluster worker: ") + e.what());
    return 1;
  }
}

std::optional<int> runIfClusterWorker(const Topology& topology, MicroBatch config) {
  WorkerFile file;
  auto rc = startWorker([&] { return describeTopology(topology, config); }, file);
  if (rc != kRun) return rc;
  sigset_t signals = blockWorkerSignals();
  WorkerAssignment& a = file.assignment;
  if (a.endpoints.size() > 1) {
    try {
      // runMicroBatchWorker returns once every worker joined the job's worker; a lost worker
      // stops every worker with an error (exit 1, restarted by its supervisor), and the job
      // resumes from its last commit, the batch in flight replayed under its txid.
      a.workerOfTask = roundRobinTasks(topology.taskCount(), static_cast<int>(a.endpoints.size()));
      bool curve = overTcp(file, config.runtime);
      MicroBatchWorker mb = runMicroBatchWorker(topology, std::move(config), a);
      if (!file.active) mb.deactivate();
      logInfo("cluster worker " + std::to_string(a.self) + " of '" + file.topology +
              "' running micro-batch" + (mb.coordinator() ? " with its batch coordinator" : "") +
              (curve ? " with CURVE" : ""));
      bool active = file.active;
      // SIGTERM kills: the batch in flight is not committed, the next run replays it.
      Job job{[&] { mb.kill(); },
              [&](bool on) {
                on ? mb.activate() : mb.deactivate();
                active = on;
              },
              [&] { return active; }, [&] { return mb.error(); }};
      return serve(signals, job);
    } catch (const std::exception& e) {
      logError(std::string("cluster worker: ") + e.what());
      return 1;
    }
  }
  try {
    MicroBatchJob mb = runMicroBatch(topology, std::move(config));
    if (!file.active) mb.deactivate();
    logInfo("cluster worker 0 of '" + file.topology + "' running micro-batch");
    bool active = file.active;
    Job job{[&] {
              mb.stop();  // the batch in flight is committed
              mb.waitUntilDone();
            },
            [&](bool on) {
              on ? mb.activate() : mb.deactivate();
              active = on;
            },
            [&] { return active; },
            [&] {
              BatchProgress p = mb.progress();
              return p.failed ? (p.error.empty() ? std::string("failed") : p.error)
                              : std::string();
            }};
    return serve(signals, job);
  } catch (const std::exception& e) {
    logError(std::string("cluster worker: ") + e.what());
    return 1;
  }
}

}  // namespace gale::cluster
