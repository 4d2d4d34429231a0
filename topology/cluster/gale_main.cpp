// `gale`: the cluster's command line. Daemons: `gale coordinator`, `gale supervisor`, `gale ui`.
// Clients: `gale submit`, `list`, `kill`, `rebalance`, `deactivate`, `activate`. Exit codes: 0 done,
// 1 the request failed (named on stderr), 2 a bad command line, 3 a daemon's ZooKeeper session
// was lost.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli.h"  // examples/cli: CLI11 with gale's exit-code rule
#include "gale/cluster/daemons.h"
#include "gale/cluster/view.h"
#include "gale/cluster/worker.h"
#include "gale/cluster/zk.h"
#include "gale/core/security.h"
#include "gale/core/thread_name.h"

namespace gc = gale::cluster;
using gale::examples::number;

namespace {

std::atomic<bool> gStop{false};
void onSignal(int) { gStop = true; }

// Reads, changes and writes back one topology's spec (conditional on its version: a concurrent
// change makes this fail rather than be lost).
int updateSpec(const gc::ClusterOptions& c, const std::string& name,
               const std::function<void(gc::TopologySpec&)>& change) {
  gc::ZkClient zk({c.zookeeper, c.sessionTimeout});
  int version = -1;
  auto data = zk.get(gc::topologiesPath(c) + "/" + name, false, &version);
  if (!data) {
    std::cerr << "gale: no topology '" << name << "'\n";
    return 1;
  }
  gc::TopologySpec spec = gc::parseTopologySpec(*data);
  change(spec);
  if (!zk.set(gc::topologiesPath(c) + "/" + name, gc::toJson(spec), version)) {
    std::cerr << "gale: topology '" << name << "' changed meanwhile; try again\n";
    return 1;
  }
  return 0;
}

// Runs the program once with GALE_DESCRIBE set (worker.h), and GALE_PARALLELISM when a rebalance
// changed task counts, and reads its topology's components and mode from the last line of its
// stdout. Throws std::runtime_error saying what went wrong.
gc::TopologyDescription describe(const std::string& binary, const std::vector<std::string>& args,
                                 const std::map<std::string, int>& parallelism = {}) {
  std::vector<std::string> store{binary};
  store.insert(store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built before fork: this process may have ZooKeeper's threads, so the
  // child must not allocate (setenv) before exec.
  std::string describeVar = std::string(gc::kDescribeEnv) + "=1";
  std::string parallelismVar =
      std::string(gc::kParallelismEnv) + "=" + gc::parallelismText(parallelism);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, gc::kDescribeEnv, std::strlen(gc::kDescribeEnv)) != 0 &&
        std::strncmp(*e, gc::kParallelismEnv, std::strlen(gc::kParallelismEnv)) != 0)
      envp.push_back(*e);
  envp.push_back(describeVar.data());
  if (!parallelism.empty()) envp.push_back(parallelismVar.data());
  envp.push_back(nullptr);
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::execve(binary.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  // A program that ignores GALE_DESCRIBE would run its topology here: give it 60 s.
  pollfd p{fds[0], POLLIN, 0};
  for (ssize_t n; ::poll(&p, 1, 60000) > 0 && (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  ::kill(pid, SIGKILL);  // done already, or not answering
  int status = 0;
  ::waitpid(pid, &status, 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  std::string last = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  try {
    return gc::parseDescription(last);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(binary + " did not describe its topology (does its main call "
                             "gale::cluster::runIfClusterWorker before running it? see "
                             "docs/cluster.md): " + e.what());
  }
}

// `gale ui`: the cluster view as a page and as JSON, read-only, until SIGTERM/SIGINT.
int serveUi(const gc::ClusterOptions& c, const std::string& bind, int port) {
  gc::ZkClient zk({c.zookeeper, c.sessionTimeout});
  std::mutex mutex;  // httplib serves from a thread pool; one ZooKeeper reader at a time
  httplib::Server server;
  auto view = [&](const std::function<std::string(const gc::ClusterView&)>& render,
                  const char* type) {
    return [&, render, type](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mutex);
      try {
        res.set_content(render(gc::readCluster(zk, c)), type);
      } catch (const std::exception& e) {
        res.status = 503;
        res.set_content(std::string("ZooKeeper: ") + e.what() + "\n", "text/plain");
      }
    };
  };
  server.Get("/", view([](const gc::ClusterView& v) { return gc::toHtml(v); }, "text/html"));
  server.Get("/api/cluster",
             view([](const gc::ClusterView& v) { return gc::toJson(v); }, "application/json"));
  if (!server.bind_to_port(bind, port)) {
    std::cerr << "gale: cannot listen on " << bind << ":" << port << "\n";
    return 1;
  }
  std::cout << "gale ui: http://" << bind << ":" << port << "/" << std::endl;
  std::thread stopper([&] {
    gale::nameThisThread("gale-ui-stopper");
    while (!gStop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  server.listen_after_bind();
  gStop = true;
  stopper.join();
  return 0;
}

// A checkpointed job's component may change its task count only within its key groups.
void checkKeyGroups(const gc::TopologySpec& s, const std::string& component, int tasks) {
  auto it = std::find_if(s.components.begin(), s.components.end(),
                         [&](const gc::ComponentTasks& t) { return t.name == component; });
  if (it == s.components.end())
    throw std::invalid_argument("the topology has no component '" + component + "'");
  if (it->maxParallelism == 0)
    throw std::invalid_argument("'" + component + "' of the " + s.mode + " job keeps per-task " +
                                "snapshots: build it with .maxParallelism(M) to change its task "
                                "count (docs/cluster.md)");
  if (static_cast<uint32_t>(tasks) > it->maxParallelism)
    throw std::invalid_argument("'" + component + "' has " + std::to_string(it->maxParallelism) +
                                " key groups: at most " + std::to_string(it->maxParallelism) +
                                " tasks");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gale: run topologies on a cluster coordinated through ZooKeeper (docs/cluster.md)"};
  app.require_subcommand(1);
  gc::ClusterOptions c;
  int sessionMs = 4000;
  app.add_option("--zookeeper,-z", c.zookeeper, "ZooKeeper servers, host:port[,host:port...]")
      ->capture_default_str();
  app.add_option("--root", c.root, "the cluster's ZooKeeper path")->capture_default_str();
  app.add_option("--session-timeout", sessionMs, "ZooKeeper session timeout in ms")
      ->check(number<int>(100, 600000))->capture_default_str();

  std::string id, host = "127.0.0.1", dir, name, binary;
  std::vector<int> ports;
  std::vector<std::string> args;
  int workers = 1;

  auto* coordinator = app.add_subcommand("coordinator", "run a coordinator (leader or standby)");
  coordinator->add_option("--id", id, "this coordinator's name")->required();

  auto* supervisor = app.add_subcommand("supervisor", "run a supervisor: start this host's workers");
  supervisor->add_option("--id", id, "this supervisor's name, unique in the cluster")->required();
  supervisor->add_option("--host", host, "the address other hosts reach this one at")
      ->capture_default_str();
  supervisor->add_option("--ports", ports,
                         "one base port per worker slot; task t of a worker binds base + t")
      ->required()->delimiter(',')->check(number<int>(1, 65535));
  supervisor->add_option("--dir", dir, "the supervisor's directory (worker dirs and logs)")
      ->required();
  std::string curveKey;
  supervisor->add_option("--curve-key", curveKey,
                         "secret certificate (gale-keygen): workers use CURVE with this key pair");

  auto* submit = app.add_subcommand("submit", "submit a topology: the user's program runs in worker mode");
  submit->add_option("name", name, "the topology's name")->required();
  submit->add_option("--binary", binary,
                     "absolute path of the program; the same path must work on every supervisor host")
      ->required();
  submit->add_option("--workers", workers, "worker processes")->check(number<int>(1, 10000))
      ->capture_default_str();
  submit->add_option("args", args, "the program's arguments (after --)");

  auto* listCmd = app.add_subcommand("list", "show the coordinator, supervisors, topologies, workers");
  auto* ui = app.add_subcommand("ui", "serve the cluster view: a page at / and JSON at /api/cluster");
  int uiPort = 8090;
  std::string uiBind = "127.0.0.1";
  ui->add_option("--port", uiPort, "HTTP port")->check(number<int>(0, 65535))->capture_default_str();
  ui->add_option("--bind", uiBind, "address to listen on")->capture_default_str();
  auto* killCmd = app.add_subcommand("kill", "kill a topology: its workers are stopped");
  killCmd->add_option("name", name, "the topology")->required();
  auto* rebalance = app.add_subcommand(
      "rebalance", "run a topology in another number of workers, or its components in other task counts");
  rebalance->add_option("name", name, "the topology")->required();
  auto* rebalanceWorkers = rebalance->add_option("--workers", workers, "worker processes")
      ->check(number<int>(1, 10000));
  std::vector<std::string> tasksOf;
  auto* rebalanceTasks = rebalance->add_option(
      "--parallelism", tasksOf,
      "component=tasks (repeatable): the program builds the component with that many tasks "
      "(gale::cluster::parallelism); its shared keyed state stays");
  auto* deactivate = app.add_subcommand("deactivate", "pause a topology's spouts");
  deactivate->add_option("name", name, "the topology")->required();
  auto* activate = app.add_subcommand("activate", "resume a topology's spouts");
  activate->add_option("name", name, "the topology")->required();

  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;
  c.sessionTimeout = std::chrono::milliseconds(sessionMs);
  try {
    if (*submit || *killCmd || *rebalance || *deactivate || *activate) gc::checkName("topology", name);
    if (*coordinator || *supervisor) gc::checkName(*coordinator ? "coordinator" : "supervisor", id);
    if (*rebalance && rebalanceWorkers->count() == 0 && rebalanceTasks->count() == 0)
      throw std::invalid_argument("rebalance needs --workers or --parallelism");
  } catch (const std::invalid_argument& e) {
    std::cerr << "gale: " << e.what() << "\n";
    return gale::examples::kBadCommandLine;
  }

  try {
    if (*coordinator || *supervisor || *ui) {
      struct sigaction sa {};
      sa.sa_handler = onSignal;
      sigaction(SIGTERM, &sa, nullptr);
      sigaction(SIGINT, &sa, nullptr);
      if (*coordinator) return gc::runCoordinator(c, id, gStop);
      if (*ui) return serveUi(c, uiBind, uiPort);
      gc::SupervisorInfo info{host, ports, ""};
      if (!curveKey.empty()) {
        curveKey = std::filesystem::absolute(curveKey).string();  // workers run in other dirs
        info.publicKey = gale::loadCurveKeyPair(curveKey).publicKey;  // fails now if unusable
      }
      return gc::runSupervisor(c, id, info, dir, curveKey, gStop);
    }
    if (*submit) {
      if (binary.empty() || binary[0] != '/' || ::access(binary.c_str(), X_OK) != 0) {
        std::cerr << "gale: --binary must be the absolute path of an executable, got '" << binary
                  << "'\n";
        return gale::examples::kBadCommandLine;
      }
      gc::ZkClient zk({c.zookeeper, c.sessionTimeout});
      zk.ensurePath(gc::topologiesPath(c));
      auto running = [&] {
        std::cerr << "gale: a topology named '" << name << "' is already running\n";
        return 1;
      };
      if (zk.exists(gc::topologiesPath(c) + "/" + name)) return running();
      gc::TopologyDescription described = describe(binary, args);
      if (!described.oneWorker.empty() && workers != 1) {
        std::cerr << "gale: " << described.oneWorker << ": submit it with --workers 1\n";
        return 1;
      }
      gc::TopologySpec spec{binary, args, workers, true, described.components};
      spec.mode = described.mode;
      try {
        zk.create(gc::topologiesPath(c) + "/" + name, gc::toJson(spec), gc::NodeKind::Persistent);
      } catch (const gc::ZkError& e) {
        if (!e.nodeExists()) throw;
        return running();  // submitted by someone else meanwhile
      }
      std::cout << "submitted " << name << "\n";
      return 0;
    }
    if (*listCmd) {
      gc::ZkClient zk({c.zookeeper, c.sessionTimeout});
      std::cout << gc::toText(gc::readCluster(zk, c));
      return 0;
    }
    if (*killCmd) {
      gc::ZkClient zk({c.zookeeper, c.sessionTimeout});
      if (!zk.remove(gc::topologiesPath(c) + "/" + name)) {
        std::cerr << "gale: no topology '" << name << "'\n";
        return 1;
      }
      std::cout << "killed " << name << "\n";
      return 0;
    }
    if (*rebalance) {
      std::map<std::string, int> changed;
      for (const std::string& entry : tasksOf)
        for (const auto& [component, n] : gc::parseParallelism(entry))
          if (!changed.emplace(component, n).second)
            throw std::invalid_argument("--parallelism of '" + component + "' given twice");
      return updateSpec(c, name, [&](gc::TopologySpec& s) {
        // An exactly-once or micro-batch job may move to another number of workers: every worker
        // restarts from the last checkpoint or commit (unless the job must stay in one worker). A
        // checkpointed job's snapshots are per task ("component#index"), except those of a
        // component with key groups, which any task count up to them restores.
        if (s.mode == "micro-batch" && workers != 1 && rebalanceWorkers->count() > 0)
          if (std::string why = describe(s.binary, s.args, s.parallelism).oneWorker; !why.empty())
            throw std::invalid_argument(why + ": it stays in one worker");
        if (!s.mode.empty())
          for (const auto& [component, n] : changed) checkKeyGroups(s, component, n);
        if (rebalanceWorkers->count() > 0) s.workers = workers;
        if (rebalanceTasks->count() == 0) return;
        for (const auto& [component, n] : changed) s.parallelism[component] = n;
        // The task ids change with the counts: describe the program again, and refuse a
        // component it does not build with the asked count (a misspelt name, or a program that
        // does not read gale::cluster::parallelism for it), or whose checkpoint would not resume
        // with it (the workers' restore would refuse it on every start).
        gc::TopologyDescription described = describe(s.binary, s.args, s.parallelism);
        if (!described.rescaleRefused.empty())
          throw std::invalid_argument(described.rescaleRefused);
        s.components = described.components;
        for (const auto& [component, n] : changed) {
          auto it = std::find_if(s.components.begin(), s.components.end(),
                                 [&](const gc::ComponentTasks& t) { return t.name == component; });
          if (it == s.components.end())
            throw std::invalid_argument("the topology has no component '" + component + "'");
          if (it->tasks != n)
            throw std::invalid_argument(
                "the program built '" + component + "' with " + std::to_string(it->tasks) +
                " tasks, not " + std::to_string(n) +
                ": it must pass gale::cluster::parallelism(\"" + component +
                "\", ...) to setBolt/setSpout (docs/cluster.md)");
        }
      });
    }
    if (*deactivate) return updateSpec(c, name, [](gc::TopologySpec& s) { s.active = false; });
    if (*activate) return updateSpec(c, name, [](gc::TopologySpec& s) { s.active = true; });
  } catch (const std::exception& e) {
    std::cerr << "gale: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
