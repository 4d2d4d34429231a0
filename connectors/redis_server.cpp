#include "gale/connectors/redis_server.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace gale {
namespace fs = std::filesystem;

namespace {

// A port the kernel just gave out on 127.0.0.1 (another process may take it before redis-server
// binds it; start() then fails and the constructor tries another).
int freePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (s >= 0) ::close(s);
    throw std::runtime_error("RedisServer: cannot find a free port on 127.0.0.1");
  }
  ::close(s);
  return ntohs(a.sin_port);
}

bool answersPing(int port) {
  timeval tv{0, 200'000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c && !c->err) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r && r->type == REDIS_REPLY_STATUS && std::string(r->str) == "PONG";
    if (r) freeReplyObject(r);
  }
  if (c) redisFree(c);
  return ok;
}

std::string tail(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  return t.size() > 2000 ? t.substr(t.size() - 2000) : t;
}

}  // namespace

std::string RedisServer::binary() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    fs::path p = fs::path(d) / "redis-server";
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

RedisServer::RedisServer(std::string directory)
    : directory_(fs::absolute(directory).string()) {  // redis-server chdirs into it
  if (binary().empty()) {
    throw std::runtime_error("RedisServer: redis-server is not installed (apt-get install "
                             "redis-server)");
  }
  fs::create_directories(directory_);
  for (int attempt = 0;; ++attempt) {
    port_ = freePort();
    try {
      start();
      return;
    } catch (const std::runtime_error&) {
      if (attempt == 4) throw;
    }
  }
}

RedisServer::~RedisServer() {
  if (running()) kill();
}

void RedisServer::start() {
  if (running()) return;
  const std::string log = (fs::path(directory_) / "redis.log").string();
  std::vector<std::string> args = {"redis-server", "--port", std::to_string(port_),
                                   "--bind", "127.0.0.1", "--dir", directory_,
                                   "--appendonly", "yes", "--appendfsync", "always",
                                   "--save", "", "--daemonize", "no", "--logfile", log};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (int e = posix_spawnp(&pid, "redis-server", nullptr, nullptr, argv.data(), environ)) {
    throw std::runtime_error("RedisServer: cannot start redis-server: " + std::string(strerror(e)));
  }
  pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!answersPing(port_)) {
    int status;
    bool exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
    if (exited || std::chrono::steady_clock::now() > deadline) {
      if (!exited) kill();
      pid_ = -1;
      throw std::runtime_error("RedisServer: redis-server on port " + std::to_string(port_) +
                               " did not start; its log ends with:\n" + tail(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a child's start-up
  }
}

void RedisServer::kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

}  // namespace gale
