// Test support of the cluster tests: a standalone ZooKeeper server started by the test (Debian's
// zookeeper package, run with java) on a free loopback port with its own data directory, and child
// processes that die with the test.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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
// with generous timeouts, never on a fixed sleep.
inline bool waitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

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
  explicit TestZooKeeper(const std::string& dir) : dir_(dir), port_(freePort()) {
    std::filesystem::create_directories(dir_ + "/data");
    std::ofstream(dir_ + "/zoo.cfg") << "tickTime=500\ndataDir=" << dir_ << "/data\n"
                                     << "clientPort=" << port_ << "\n"
                                     << "clientPortAddress=127.0.0.1\n"
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

  std::string servers() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = 0;
};

}  // namespace gale::cluster::testing
