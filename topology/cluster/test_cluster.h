// Test support of the cluster tests: a standalone ZooKeeper server started by the test (Debian's
// zookeeper package, run with java) on a free loopback port with its own data directory, and child
// processes that die with the test.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gale/cluster/zk.h"

namespace gale::cluster::testing {

// A port nobody listens on now (the kernel's choice for an ephemeral bind).
inline int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Starts argv[0] (an absolute path) with stdout and stderr appended to `log`; the child is
// SIGKILLed if the test process dies first.
inline pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  std::vector<std::string> store = args;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Runs a program to its end; its exit code (-1 if it did not exit normally).
inline int runToEnd(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = spawn(args, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The process exists and is not a zombie (an orphan's zombie waits for whoever reaps it, which in
// a container may be nobody).
inline bool alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

inline void killAndReap(pid_t pid, int signal = SIGKILL) {
  if (pid <= 0) return;
  ::kill(pid, signal);
  ::waitpid(pid, nullptr, 0);
}

// Polls `done` every 20 ms until it holds or `timeout` passed: the tests wait on conditions,
// with generous timeouts, never on a fixed sleep. A ZooKeeper read of the test's own that fails
// for a moment (connection loss, operation timeout: a loaded machine) counts as "not yet".
inline bool waitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto holds = [&] {
    try {
      return done();
    } catch (const ZkError&) {
      return false;
    }
  };
  while (!holds()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Hosts simulated with network namespaces (Linux, CAP_SYS_ADMIN and CAP_NET_ADMIN: root in
// practice, and iproute2's `ip`). enter() moves the calling thread into a network namespace of
// its own — so nothing of the machine's network is touched, and everything is gone with the
// test's processes — with loopback up and a bridge at kBridge (10.213.0.1/24). spawnHost(i, ...)
// starts a process in a further namespace of its own, joined to the bridge by a veth pair, at
// 10.213.0.(10 + i): a host of its own, reaching the others and the test's servers (listening on
// kBridge) only through the bridge, as over a LAN. leave() returns the thread to the namespace
// it came from.
class NetworkNamespaces {
 public:
  static constexpr const char* kBridge = "10.213.0.1";
  static std::string hostAddress(int i) { return "10.213.0." + std::to_string(10 + i); }

  // Empty when entered; else why namespaces cannot be used here (the caller falls back to
  // loopback addresses).
  std::string enter() {
    if (::access(kIp, X_OK) != 0) return std::string(kIp) + " not found (Debian: iproute2)";
    original_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ < 0) return "cannot open /proc/thread-self/ns/net";
    if (::unshare(CLONE_NEWNET) != 0) {
      leave();
      return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) + " (needs root)";
    }
    for (const auto& args : std::vector<std::vector<std::string>>{
             {kIp, "link", "set", "lo", "up"},
             // A fixed MAC: a bridge otherwise takes the lowest of its ports' and changes it
             // when that port goes (a killed host), leaving the other hosts' ARP entries for
             // the bridge's address stale — they would lose ZooKeeper for tens of seconds.
             {kIp, "link", "add", "galebr", "address", "02:00:0a:d5:00:01", "type", "bridge"},
             {kIp, "addr", "add", std::string(kBridge) + "/24", "dev", "galebr"},
             {kIp, "link", "set", "galebr", "up"},
             // spawnHost's veth pairs: a kernel without them is found here, not mid-test.
             {kIp, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"},
             {kIp, "link", "del", "probe0"}})
      if (runToEnd(args, "/dev/null") != 0) {
        leave();
        return "'" + args[1] + " " + args[2] + " " + args[3] + "' failed in a new namespace";
      }
    return {};
  }
  void leave() {
    if (original_ < 0) return;
    ::setns(original_, CLONE_NEWNET);
    ::close(original_);
    original_ = -1;
  }
  ~NetworkNamespaces() { leave(); }

  // Starts `args` (argv[0] absolute) as host i, its output appended to `log`; -1 when the
  // namespace could not be set up. The child dies with the test, as spawn()'s.
  pid_t spawnHost(int i, const std::vector<std::string>& args, const std::string& log) {
    std::string dev = "h" + std::to_string(i), peer = dev + "p";
    // Everything the child runs is built before fork (no allocation after it: this process
    // has threads).
    std::vector<std::vector<std::string>> setup{
        {kIp, "link", "set", "lo", "up"},
        {kIp, "addr", "add", hostAddress(i) + "/24", "dev", dev},
        {kIp, "link", "set", dev, "up"}};
    std::vector<std::vector<char*>> setupArgv;
    for (auto& a : setup) setupArgv.push_back(argvOf(a));
    std::vector<std::string> program = args;
    std::vector<char*> programArgv = argvOf(program);
    int ready[2], moved[2];
    if (::pipe(ready) != 0 || ::pipe(moved) != 0) return -1;
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      char c = ::unshare(CLONE_NEWNET) == 0 ? 'u' : 'x';
      if (::write(ready[1], &c, 1) != 1 || c != 'u') ::_exit(125);
      if (::read(moved[0], &c, 1) != 1 || c != 'm') ::_exit(125);  // the veth end is here now
      for (auto& a : setupArgv) {
        pid_t ip = ::fork();
        if (ip == 0) {
          ::execv(a[0], a.data());
          ::_exit(127);
        }
        int status = 0;
        if (::waitpid(ip, &status, 0) != ip || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
          ::_exit(124);
      }
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(programArgv[0], programArgv.data());
      ::_exit(127);
    }
    char c = 0;
    bool ok = ::read(ready[0], &c, 1) == 1 && c == 'u' &&
              runToEnd({kIp, "link", "add", peer, "type", "veth", "peer", "name", dev},
                       "/dev/null") == 0 &&
              runToEnd({kIp, "link", "set", dev, "netns", std::to_string(pid)}, "/dev/null") == 0 &&
              runToEnd({kIp, "link", "set", peer, "master", "galebr"}, "/dev/null") == 0 &&
              runToEnd({kIp, "link", "set", peer, "up"}, "/dev/null") == 0;
    c = ok ? 'm' : 'x';
    ok = ::write(moved[1], &c, 1) == 1 && ok;
    for (int fd : {ready[0], ready[1], moved[0], moved[1]}) ::close(fd);
    if (!ok) {
      killAndReap(pid);
      return -1;
    }
    return pid;
  }

  // Host i's cable: its bridge port down cuts it off from every other host and from the test's
  // servers (a network partition), up joins it again.
  bool setLink(int i, bool up) {
    return runToEnd({kIp, "link", "set", "h" + std::to_string(i) + "p", up ? "up" : "down"},
                    "/dev/null") == 0;
  }

 private:
  static constexpr const char* kIp = "/usr/sbin/ip";
  static std::vector<char*> argvOf(std::vector<std::string>& args) {
    std::vector<char*> out;
    for (auto& a : args) out.push_back(a.data());
    out.push_back(nullptr);
    return out;
  }
  int original_ = -1;
};

class TestZooKeeper {
 public:
  // Why a ZooKeeper server cannot be started here, or empty.
  static std::string missing() {
    if (::access("/usr/bin/java", X_OK) != 0)
      return "java not found: apt-get install default-jre-headless (see .ci/install-deps.sh)";
    if (::access("/usr/share/java/zookeeper.jar", R_OK) != 0)
      return "ZooKeeper not found: apt-get install zookeeper (see .ci/install-deps.sh)";
    return {};
  }

  // tickTime 500 ms: sessions may be as short as 1 s, so a dead process's ephemeral nodes go
  // quickly. Throws when the server does not take a session within 60 s.
  // `address`: where it listens (a loopback address, or the namespaces' bridge).
  explicit TestZooKeeper(const std::string& dir, std::string address = "127.0.0.1")
      : dir_(dir), address_(std::move(address)), port_(freePort()) {
    std::filesystem::create_directories(dir_ + "/data");
    std::ofstream(dir_ + "/zoo.cfg") << "tickTime=500\ndataDir=" << dir_ << "/data\n"
                                     << "clientPort=" << port_ << "\n"
                                     << "clientPortAddress=" << address_ << "\n"
                                     << "admin.enableServer=false\n";
    std::string classpath;
    for (const char* jar : {"zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-nop",
                            "netty-handler", "netty-transport", "netty-common", "netty-buffer",
                            "netty-codec", "netty-resolver", "netty-transport-native-epoll",
                            "netty-transport-native-unix-common", "metrics-core", "commons-cli",
                            "jackson-databind", "jackson-core", "jackson-annotations",
                            "snappy-java"})
      classpath += std::string("/usr/share/java/") + jar + ".jar:";
    pid_ = spawn({"/usr/bin/java", "-Xmx256m", "-cp", classpath,
                  "org.apache.zookeeper.server.ZooKeeperServerMain", dir_ + "/zoo.cfg"},
                 dir_ + "/zookeeper.log");
    ZkClient probe({servers(), std::chrono::milliseconds(2000), std::chrono::seconds(60)});
  }
  ~TestZooKeeper() { killAndReap(pid_); }

  std::string servers() const { return address_ + ":" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

 private:
  std::string dir_;
  std::string address_;
  int port_;
  pid_t pid_ = 0;
};

}  // namespace gale::cluster::testing
