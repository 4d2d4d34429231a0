#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "gale/cluster/daemons.h"
#include "gale/cluster/worker.h"
#include "gale/cluster/zk.h"
#include "gale/core/log.h"

extern char** environ;

namespace gale::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A worker this supervisor should run: one worker index of one topology's assignment.
struct Wanted {
  std::string topology;
  int index = 0;
  int64_t version = 0;
  TopologySpec spec;
  WorkerFile file;
  std::map<std::string, int> parallelism;  // the assignment's, for GALE_PARALLELISM
};

struct Process {
  pid_t pid = 0;  // 0: not running (waiting for its restart time)
  int64_t version = 0;
  bool active = true;
  int restarts = 0;
  milliseconds backoff{100};
  Clock::time_point startedAt, restartAt;
};

class Supervisor {
 public:
  Supervisor(ZkClient& zk, const ClusterOptions& c, std::string id, std::string dir,
             std::string keyFile)
      : zk_(zk), c_(c), id_(std::move(id)), dir_(std::move(dir)), keyFile_(std::move(keyFile)) {}
  ~Supervisor() { stopAll(); }

  // Reads the assignments (setting watches), stops the workers no longer wanted, starts the rest.
  void reconcile() {
    std::map<std::string, Wanted> wanted;  // replaces wanted_ only when every read succeeded
    for (const std::string& name : zk_.children(assignmentsPath(c_), true)) {
      auto data = zk_.get(assignmentsPath(c_) + "/" + name, true);
      auto specData = zk_.get(topologiesPath(c_) + "/" + name, true);
      if (!data || !specData) continue;  // being killed
      try {
        Assignment a = parseAssignment(*data);
        TopologySpec spec = parseTopologySpec(*specData);
        for (size_t w = 0; w < a.workers.size(); ++w) {
          if (a.workers[w].supervisor != id_) continue;
          Wanted x{name, static_cast<int>(w), a.version, spec, {}};
          x.file = {name, {{}, a.endpoints(), static_cast<int>(w), a.publicKeys()}, spec.active,
                    keyFile_};
          x.parallelism = a.parallelism;
          wanted[name + "-" + std::to_string(w)] = std::move(x);
        }
      } catch (const std::invalid_argument& e) {
        logWarn("supervisor " + id_ + ": '" + name + "' left out: " + e.what());
      }
    }
    wanted_ = std::move(wanted);
    std::map<std::string, Process> unwanted;
    for (auto it = procs_.begin(); it != procs_.end();) {
      auto w = wanted_.find(it->first);
      if (w == wanted_.end() || w->second.version != it->second.version) {
        unwanted.insert(procs_.extract(it++));
      } else {
        ++it;
      }
    }
    stop(unwanted);
    startDue();
  }

  // Starts the wanted workers that are not running and whose (re)start time has come; signals
  // a change of active. No ZooKeeper reads: a restart does not wait for the next watch.
  void startDue() {
    for (auto& [key, w] : wanted_) {
      auto [it, fresh] = procs_.try_emplace(key);
      Process& p = it->second;
      if (fresh) {
        p.version = w.version;
        p.restartAt = Clock::now();
      }
      if (p.pid && p.active != w.spec.active) {
        ::kill(p.pid, w.spec.active ? SIGUSR2 : SIGUSR1);
        p.active = w.spec.active;
      }
      if (p.pid || Clock::now() < p.restartAt) continue;
      try {
        start(key, w, p);
      } catch (const std::exception& e) {  // its directory or assignment file: retried later
        logError("supervisor " + id_ + ": cannot start worker " + key + ": " + e.what());
        p.restartAt = Clock::now() + p.backoff;
        p.backoff = std::min(p.backoff * 2, milliseconds(10000));
      }
    }
  }

  // Notes the workers that exited and schedules their restart.
  void reap() {
    int status = 0;
    for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
      for (auto& [key, p] : procs_) {
        if (p.pid != pid) continue;
        p.pid = 0;
        ++p.restarts;
        // A worker that ran a while restarts at once; one that keeps dying waits longer each time.
        if (Clock::now() - p.startedAt > std::chrono::seconds(10)) p.backoff = milliseconds(100);
        p.restartAt = Clock::now() + p.backoff;
        p.backoff = std::min(p.backoff * 2, milliseconds(10000));
        std::string how = WIFSIGNALED(status) ? "was killed by signal " +
                                                    std::to_string(WTERMSIG(status))
                                              : "exited with " + std::to_string(WEXITSTATUS(status));
        logWarn("supervisor " + id_ + ": worker " + key + " (pid " + std::to_string(pid) + ") " +
                how + "; restarting it (see " + workDir(key) + "/worker.log)");
        publish(key, nullptr);
      }
    }
  }

  void stopAll() {
    stop(procs_);
    procs_.clear();
  }

 private:
  std::string workDir(const std::string& key) const { return dir_ + "/workers/" + key; }

  void start(const std::string& key, const Wanted& w, Process& p) {
    std::string work = workDir(key);
    std::filesystem::create_directories(work);
    std::string assignment = work + "/assignment.json";
    std::ofstream(assignment) << toJson(w.file);
    // Everything the child needs is built before fork: between fork and exec only
    // async-signal-safe calls are allowed (this process has ZooKeeper's threads).
    std::vector<std::string> argStore{w.spec.binary};
    argStore.insert(argStore.end(), w.spec.args.begin(), w.spec.args.end());
    std::vector<char*> argv;
    for (auto& a : argStore) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string envVar = std::string(kAssignmentEnv) + "=" + assignment;
    std::string parallelismVar =
        std::string(kParallelismEnv) + "=" + parallelismText(w.parallelism);
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, kAssignmentEnv, std::strlen(kAssignmentEnv)) != 0 &&
          std::strncmp(*e, kParallelismEnv, std::strlen(kParallelismEnv)) != 0)
        envp.push_back(*e);
    envp.push_back(envVar.data());
    envp.push_back(parallelismVar.data());
    envp.push_back(nullptr);
    std::string log = work + "/worker.log";
    const char* failed = "gale supervisor: cannot execute the topology's binary\n";
    pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);  // the supervisor died before prctl
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      if (::chdir(work.c_str()) == 0) ::execve(argv[0], argv.data(), envp.data());
      ssize_t ignored = ::write(2, failed, std::strlen(failed));
      (void)ignored;
      ::_exit(127);
    }
    if (pid < 0) {
      logError("supervisor " + id_ + ": fork failed: " + std::strerror(errno));
      p.restartAt = Clock::now() + p.backoff;
      return;
    }
    p.pid = pid;
    p.version = w.version;
    p.active = w.spec.active;
    p.startedAt = Clock::now();
    WorkerStatus status{id_, pid, w.version, p.restarts};
    publish(key, &status);
    logInfo("supervisor " + id_ + ": started worker " + key + " v" + std::to_string(w.version) +
            " (pid " + std::to_string(pid) + ")");
  }

  // SIGTERM to all at once, then SIGKILL to those still running after 5 s: stopping a
  // topology's workers takes at most 5 s, not 5 s each.
  void stop(const std::map<std::string, Process>& procs) {
    for (const auto& [key, p] : procs)
      if (p.pid) ::kill(p.pid, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    for (const auto& [key, p] : procs) {
      if (p.pid) {
        while (::waitpid(p.pid, nullptr, WNOHANG) == 0) {
          if (Clock::now() > deadline) {
            ::kill(p.pid, SIGKILL);
            ::waitpid(p.pid, nullptr, 0);
            break;
          }
          std::this_thread::sleep_for(milliseconds(10));
        }
        logInfo("supervisor " + id_ + ": stopped worker " + key);
      }
      publish(key, nullptr);
    }
  }

  // Writes (or, with nullptr, deletes) a worker's status node. Best effort: the node is for
  // `gale list` and tests, and is ephemeral, so a failed write must not keep a worker from
  // being restarted while ZooKeeper is unreachable.
  void publish(const std::string& key, const WorkerStatus* status) {
    std::string node = workersPath(c_) + "/" + key;
    try {
      if (!status)
        zk_.remove(node);
      else if (!zk_.set(node, toJson(*status)))
        zk_.create(node, toJson(*status), NodeKind::Ephemeral);
    } catch (const ZkError& e) {
      logWarn("supervisor " + id_ + ": worker status " + key + ": " + e.what());
    }
  }

  ZkClient& zk_;
  const ClusterOptions& c_;
  std::string id_, dir_, keyFile_;
  std::map<std::string, Process> procs_;  // key: <topology>-<index>
  std::map<std::string, Wanted> wanted_;  // as of the last reconcile()
};

}  // namespace

int runSupervisor(const ClusterOptions& c, const std::string& id, const SupervisorInfo& info,
                  const std::string& dir, const std::string& keyFile,
                  const std::atomic<bool>& stop) {
  ZkClient zk({c.zookeeper, c.sessionTimeout});
  for (const auto& p : {supervisorsPath(c), topologiesPath(c), assignmentsPath(c), workersPath(c)})
    zk.ensurePath(p);
  // A supervisor restarted quickly under the same id finds its previous session's node until
  // that session times out: wait for it rather than fail.
  std::string node = supervisorsPath(c) + "/" + id;
  for (auto deadline = Clock::now() + 3 * c.sessionTimeout;;) {
    try {
      zk.create(node, toJson(info), NodeKind::Ephemeral);
      break;
    } catch (const ZkError& e) {
      if (Clock::now() > deadline) throw;
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  logInfo("supervisor " + id + ": registered (" + toJson(info) + ")");
  Supervisor supervisor(zk, c, id, dir, keyFile);
  // ZooKeeper is read only after a watch fired (or a read failed); dead workers are looked for
  // every 0.1 s without it, so an idle cluster costs ZooKeeper nothing but session pings.
  bool stale = true;  // set until a reconcile() succeeded
  uint64_t reconciled = 0;
  while (!stop) {
    uint64_t seen = zk.changes();
    if (zk.sessionLost()) {
      logError("supervisor " + id + ": ZooKeeper session lost; stopping its workers");
      return kSessionLost;  // ~Supervisor stops the workers
    }
    try {
      supervisor.reap();
      if (stale || reconciled != seen) {
        stale = true;  // stays set if reconcile() throws: retried next time
        supervisor.reconcile();
        stale = false;
        reconciled = seen;
      }
    } catch (const ZkError& e) {
      logWarn("supervisor " + id + ": " + e.what());
    }
    // Dead workers are restarted even while ZooKeeper is unreachable (by the last assignment read).
    supervisor.startDue();
    // Woken by ZooKeeper; the timeout bounds how late a dead worker is noticed and restarted.
    zk.waitForChange(seen, milliseconds(100));
  }
  return 0;
}

}  // namespace gale::cluster
