// A local redis-server started as a child process on a free 127.0.0.1 port with its own data
// directory: for tests and examples that write to Redis (RedisSink) with no set-up besides the
// redis-server binary being installed (Debian: redis-server). Writes go to an append-only file
// fsynced on every write, so stop() + start() (a server restart) keeps everything acknowledged.
#pragma once

#include <string>
#include <sys/types.h>

namespace gale {

class RedisServer {
 public:
  // The binary's path ("" when none is on PATH); tests skip with a message when it is missing.
  static std::string binary();

  // Starts redis-server with its files in `directory` (created if needed). Throws
  // std::runtime_error (with the end of the server's log) when it does not answer PING within
  // 10 s.
  explicit RedisServer(std::string directory);
  ~RedisServer();  // kills the server
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // Stops the server (SIGKILL: a crash, nothing flushed beyond what it fsynced) and waits for it.
  void kill();
  // Starts it again on the same port and directory (after kill()).
  void start();
  bool running() const { return pid_ > 0; }

 private:
  std::string directory_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace gale
