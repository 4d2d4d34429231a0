// `gale`: the cluster's command line. Daemons: `gale coordinator`, `gale supervisor`. Clients:
// `gale submit`, `list`, `kill`, `rebalance`, `deactivate`, `activate`. Exit codes: 0 done,
// 1 the request failed (named on stderr), 2 a bad command line, 3 a daemon's ZooKeeper session
// was lost.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <iostream>

#include "cli.h"  // examples/cli: CLI11 with gale's exit-code rule
#include "gale/cluster/daemons.h"
#include "gale/cluster/worker.h"
#include "gale/cluster/zk.h"
#include "gale/core/security.h"

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

// Runs the program once with GALE_DESCRIBE set (worker.h) and reads its topology's components
// from the last line of its stdout. Throws std::runtime_error saying what went wrong.
std::vector<gc::ComponentTasks> describe(const std::string& binary,
                                         const std::vector<std::string>& args) {
  std::vector<std::string> store{binary};
  store.insert(store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::setenv(gc::kDescribeEnv, "1", 1);
    ::execv(binary.c_str(), argv.data());
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
    return gc::parseComponents(last);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(binary + " did not describe its topology (does its main call "
                             "gale::cluster::runIfClusterWorker before running it? see "
                             "docs/cluster.md): " + e.what());
  }
}

int list(const gc::ClusterOptions& c) {
  gc::ZkClient zk({c.zookeeper, c.sessionTimeout});
  auto election = zk.children(gc::electionPath(c));
  std::string leader = election.empty() ? std::string("none")
                                        : zk.get(gc::electionPath(c) + "/" + election[0]).value_or("?");
  std::cout << "coordinator: " << leader << " (" << election.size() << " in the election)\n";
  for (const auto& id : zk.children(gc::supervisorsPath(c)))
    std::cout << "supervisor " << id << ": " << zk.get(gc::supervisorsPath(c) + "/" + id).value_or("gone")
              << "\n";
  for (const auto& name : zk.children(gc::topologiesPath(c))) {
    std::cout << "topology " << name << ": "
              << zk.get(gc::topologiesPath(c) + "/" + name).value_or("gone") << "\n";
    auto a = zk.get(gc::assignmentsPath(c) + "/" + name);
    std::cout << "  assignment: " << a.value_or("none yet") << "\n";
    auto spec = zk.get(gc::topologiesPath(c) + "/" + name);
    if (!a || !spec) continue;
    gc::Assignment assignment = gc::parseAssignment(*a);
    gc::TopologySpec s = gc::parseTopologySpec(*spec);
    auto endpoints = assignment.endpoints();
    for (size_t w = 0; w < assignment.workers.size(); ++w) {
      std::cout << "  worker " << w << " on " << assignment.workers[w].supervisor << " "
                << endpoints[w] << ":";
      for (const auto& t : gc::tasksOfWorker(s.components, static_cast<int>(w),
                                             static_cast<int>(assignment.workers.size())))
        std::cout << " " << t;
      std::cout << "\n";
    }
  }
  for (const auto& w : zk.children(gc::workersPath(c)))
    std::cout << "worker " << w << ": " << zk.get(gc::workersPath(c) + "/" + w).value_or("gone") << "\n";
  return 0;
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
  auto* killCmd = app.add_subcommand("kill", "kill a topology: its workers are stopped");
  killCmd->add_option("name", name, "the topology")->required();
  auto* rebalance = app.add_subcommand("rebalance", "run a topology in another number of workers");
  rebalance->add_option("name", name, "the topology")->required();
  rebalance->add_option("--workers", workers, "worker processes")->required()
      ->check(number<int>(1, 10000));
  auto* deactivate = app.add_subcommand("deactivate", "pause a topology's spouts");
  deactivate->add_option("name", name, "the topology")->required();
  auto* activate = app.add_subcommand("activate", "resume a topology's spouts");
  activate->add_option("name", name, "the topology")->required();

  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;
  c.sessionTimeout = std::chrono::milliseconds(sessionMs);
  try {
    if (*submit || *killCmd || *rebalance || *deactivate || *activate) gc::checkTopologyName(name);
  } catch (const std::invalid_argument& e) {
    std::cerr << "gale: " << e.what() << "\n";
    return gale::examples::kBadCommandLine;
  }

  try {
    if (*coordinator || *supervisor) {
      struct sigaction sa {};
      sa.sa_handler = onSignal;
      sigaction(SIGTERM, &sa, nullptr);
      sigaction(SIGINT, &sa, nullptr);
      if (*coordinator) return gc::runCoordinator(c, id, gStop);
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
      gc::TopologySpec spec{binary, args, workers, true, describe(binary, args)};
      try {
        zk.create(gc::topologiesPath(c) + "/" + name, gc::toJson(spec), gc::NodeKind::Persistent);
      } catch (const gc::ZkError& e) {
        if (!e.nodeExists()) throw;
        return running();  // submitted by someone else meanwhile
      }
      std::cout << "submitted " << name << "\n";
      return 0;
    }
    if (*listCmd) return list(c);
    if (*killCmd) {
      gc::ZkClient zk({c.zookeeper, c.sessionTimeout});
      if (!zk.remove(gc::topologiesPath(c) + "/" + name)) {
        std::cerr << "gale: no topology '" << name << "'\n";
        return 1;
      }
      std::cout << "killed " << name << "\n";
      return 0;
    }
    if (*rebalance) return updateSpec(c, name, [&](gc::TopologySpec& s) { s.workers = workers; });
    if (*deactivate) return updateSpec(c, name, [](gc::TopologySpec& s) { s.active = false; });
    if (*activate) return updateSpec(c, name, [](gc::TopologySpec& s) { s.active = true; });
  } catch (const std::exception& e) {
    std::cerr << "gale: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
