#include "gale/cluster/worker.h"

#include <signal.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "gale/core/log.h"

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

std::string describeTopology(const Topology& topology, const Continuous& config) {
  nlohmann::json components = nlohmann::json::array();
  int tasks = 0;
  for (const ComponentSpec& c : topology.components()) {
    components.push_back({{"name", c.name}, {"firstTask", c.firstTask}, {"tasks", c.parallelism}});
    tasks = std::max(tasks, static_cast<int>(c.firstTask) + c.parallelism);
  }
  int ackers = totalTasks(topology, config) - tasks;
  if (ackers > 0)
    components.push_back({{"name", "__acker"}, {"firstTask", tasks}, {"tasks", ackers}});
  return nlohmann::json{{"components", components}}.dump();
}

std::optional<int> runIfClusterWorker(const Topology& topology, Continuous config) {
  if (std::getenv(kDescribeEnv)) {
    std::printf("\n%s\n", describeTopology(topology, config).c_str());
    std::fflush(stdout);
    return 0;
  }
  const char* path = std::getenv(kAssignmentEnv);
  if (!path) return std::nullopt;
  WorkerFile file;
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
  // Blocked here, so every thread runWorker starts inherits the mask and the signals reach only
  // the sigtimedwait below.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  WorkerAssignment& a = file.assignment;
  a.workerOfTask = roundRobinTasks(totalTasks(topology, config),
                                   static_cast<int>(a.endpoints.size()));
  config.transport = TransportScheme::Tcp;
  try {
    if (!file.keyFile.empty())
      config.curve = CurveConfig{loadCurveKeyPair(file.keyFile), a.publicKeys};
    else
      a.publicKeys.clear();
    bool curve = config.curve.has_value();
    RunningTopology rt = runWorker(topology, std::move(config), a);
    if (!file.active) rt.deactivate();  // a topology submitted, then deactivated before this start
    logInfo("cluster worker " + std::to_string(a.self) + " of '" + file.topology + "' running" +
            (curve ? " with CURVE" : ""));
    timespec poll{0, 200'000'000};
    for (;;) {
      int s = sigtimedwait(&signals, nullptr, &poll);
      if (s == SIGTERM || s == SIGINT) {
        rt.kill();  // at-least-once: what was in flight is replayed by the spouts' sources
        return 0;
      }
      if (s == SIGUSR1 || s == SIGUSR2) {
        s == SIGUSR1 ? rt.deactivate() : rt.activate();
        logInfo(std::string("cluster worker: spouts ") + (rt.active() ? "activated" : "deactivated"));
      }
      if (!rt.error().empty()) {
        logError("cluster worker: the topology stopped: " + rt.error());
        return 1;
      }
    }
  } catch (const std::exception& e) {
    logError(std::string("cluster worker: ") + e.what());
    return 1;
  }
}

}  // namespace gale::cluster
