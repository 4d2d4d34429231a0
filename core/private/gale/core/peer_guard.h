// The guard of one ZeroMQ context's listening sockets: a thread that runs the ZAP handler
// (which CURVE clients may connect) and watches every receiver's socket events to count
// handshakes and refusals and to enforce PeerLimits::maxConnections, which ZeroMQ has no option
// for. Refusals are logged, rate-limited, with counts.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "gale/core/security.h"

namespace gale {

class PeerGuard {
 public:
  explicit PeerGuard(zmq::context_t& ctx);
  ~PeerGuard();
  PeerGuard(const PeerGuard&) = delete;
  PeerGuard& operator=(const PeerGuard&) = delete;

  // Binds the ZAP handler (inproc://zeromq.zap.01) before returning, so no CURVE server socket
  // of this context ever handshakes without it (libzmq 4.3 lets every client in when no
  // handler is bound). Accepts CURVE clients whose public key is in `authorized`, refuses
  // everything else.
  void startZap(const std::vector<std::string>& authorized);
  // Starts watching a receiver's socket; call before it binds. Returns the watch id.
  uint64_t watch(zmq::socket_t& socket, const PeerLimits& limits);
  // Stops watching; call before the socket closes.
  void unwatch(zmq::socket_t& socket, uint64_t id);

  PeerStats stats() const;

 private:
  struct Watch;
  struct Pending;
  void run();
  void wake();
  void handleZap();
  void handleEvent(Watch& w);
  void refused(const std::string& what);

  zmq::context_t& ctx_;
  int wakeFd_ = -1;
  std::mutex mutex_;
  std::vector<Pending> pending_;  // sockets handed to the thread, watches to drop
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> nextId_{1};
  std::unordered_set<std::string> authorized_;  // read by the thread only after startZap
  std::unique_ptr<zmq::socket_t> zap_;           // owned by the thread once started

  std::atomic<uint64_t> accepted_{0}, succeeded_{0}, failed_{0}, unauthorized_{0}, overLimit_{0},
      open_{0}, peak_{0};
  // Rate limit for refusal lines: one line at most every kLogInterval, with the count since.
  int64_t lastLogNanos_ = 0;
  uint64_t suppressed_ = 0;

  std::thread thread_;
  std::vector<std::unique_ptr<Watch>> watches_;  // the thread's
};

}  // namespace gale
