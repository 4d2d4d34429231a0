// The one transport abstraction: a directed channel over ZeroMQ PUSH/PULL. The endpoint decides
// the distance: inproc:// inside a process, ipc:// between processes, tcp:// between hosts.
//
// Framing is adaptive: a sender buffers items until the frame is full or the owner calls flush();
// a runtime flushes whenever it has no more input ready, so an idle channel sends each tuple at
// once and a busy one packs many per ZeroMQ message. High-water marks are bounded, so a slow
// receiver pushes back on the sender (tryFlush() returns false) and nothing grows without bound.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "gale/core/frame.h"
#include "gale/core/security.h"

namespace gale {

class PeerGuard;

// One ZeroMQ context per process; inproc endpoints only connect within one Transport.
class Transport {
 public:
  explicit Transport(int ioThreads = 1);
  ~Transport();
  zmq::context_t& context() { return ctx_; }

  // From now on every tcp:// and ipc:// channel of this transport uses CURVE: receivers are
  // servers that accept only `config.authorizedClients` (plus this key pair's own public key, so
  // a process can reach its own inboxes), senders are clients with `config.keyPair`. inproc://
  // stays plain (it cannot be reached from outside the process). Call before creating channels.
  // Throws std::runtime_error if libzmq lacks CURVE, std::invalid_argument for a bad key.
  void enableCurve(const CurveConfig& config);
  const CurveConfig* curve() const { return curve_ ? &*curve_ : nullptr; }

  // Watches tcp:// and ipc:// receivers (started with the first); see peer_guard.h.
  PeerGuard& guard();
  // Handshakes, refusals and connections of this transport's receivers so far.
  PeerStats peerStats();

 private:
  zmq::context_t ctx_;
  std::optional<CurveConfig> curve_;
  std::mutex guardMutex_;
  std::unique_ptr<PeerGuard> guard_;  // declared after ctx_: closes its sockets first
};

struct ChannelOptions {
  int highWaterMark = 16;          // frames queued per direction before the sender is pushed back
  size_t maxItemsPerFrame = 256;   // a sender flushes by itself at this many items
  FrameLimits limits;
  PeerLimits peers;                // receivers on tcp:// and ipc://
  // Senders with CURVE on: the receiving process's public key (Z85). Empty: this transport's
  // own public key (the receiver is in the same process or shares its key pair).
  std::string curveServerKey;
  // Senders on tcp:// and ipc://: watch the connection from before it is made, so that
  // awaitConnected() can tell when the receiver is reachable (a worker waits for its peers before
  // its spouts start: docs/runtime.md, "Starting a multi-worker topology").
  bool watchConnection = false;
};

class ChannelSender {
 public:
  ChannelSender(Transport& transport, const std::string& endpoint, TaskId srcTask,
                ChannelOptions options = {});
  ChannelSender(const ChannelSender&) = delete;
  ChannelSender& operator=(const ChannelSender&) = delete;

  const std::string& endpoint() const { return endpoint_; }

  // Buffers an item. The caller must flush when full() (or whenever it goes idle).
  void push(StreamId stream, Tuple&& tuple);
  void push(StreamId stream, const Tuple& tuple) { push(stream, Tuple(tuple)); }
  void push(Control control);
  bool full() const { return pending_.size() >= options_.maxItemsPerFrame; }
  bool empty() const { return pending_.empty() && !encoded_; }
  size_t pendingItems() const { return pending_.size(); }

  // Sends what is buffered without blocking. False when the receiver's queue is full (the
  // buffered items stay, encoded, and go out on a later call).
  bool tryFlush();
  // Sends what is buffered, waiting while the receiver is full. `whileBlocked` is called between
  // attempts (a spout services its acks there, which is what breaks the spout -> bolt -> acker ->
  // spout cycle). Returns false only if `stop` becomes true first.
  bool flush(const std::function<void()>& whileBlocked = {},
             const std::atomic<bool>* stop = nullptr);

  // With ChannelOptions::watchConnection: true once a handshake with the receiver succeeded,
  // waiting up to `timeout` for it; the watch ends at the first success. Without a watch (or on
  // inproc://, connected from the start): true.
  bool awaitConnected(std::chrono::milliseconds timeout);
  // Ends the watch (the caller stopped waiting): its unread events no longer pile up.
  void stopWatching();

  // The socket, e.g. to raise ZMQ_LINGER before a graceful close so queued frames still leave.
  zmq::socket_t& socket() { return socket_; }
  uint64_t framesSent() const { return framesSent_; }
  uint64_t itemsSent() const { return itemsSent_; }
  uint64_t blockedFlushes() const { return blockedFlushes_; }

 private:
  void encodePending();

  std::string endpoint_;
  TaskId srcTask_;
  ChannelOptions options_;
  zmq::socket_t socket_;
  std::unique_ptr<zmq::socket_t> monitor_;  // PAIR reading socket_'s events while watched
  FrameEncoder encoder_;
  std::vector<OutItem> pending_;
  std::optional<zmq::message_t> encoded_;
  size_t encodedItems_ = 0;
  uint64_t framesSent_ = 0;
  uint64_t itemsSent_ = 0;
  uint64_t blockedFlushes_ = 0;
};

class ChannelReceiver {
 public:
  // Binds `endpoint`. For tcp://host:0 the chosen port is in endpoint().
  ChannelReceiver(Transport& transport, const std::string& endpoint,
                  std::shared_ptr<const SchemaRegistry> registry, ChannelOptions options = {});
  ~ChannelReceiver();
  ChannelReceiver(const ChannelReceiver&) = delete;
  ChannelReceiver& operator=(const ChannelReceiver&) = delete;

  const std::string& endpoint() const { return endpoint_; }

  // Receives and delivers at most one frame. Waits up to `timeout` (0: do not wait; negative:
  // wait forever). Returns true if a frame arrived (even a malformed one, which is counted,
  // logged and dropped).
  bool receive(std::chrono::milliseconds timeout, FrameHandler& handler);
  // Receives up to `maxFrames` frames that are already waiting; returns how many.
  size_t drain(FrameHandler& handler, size_t maxFrames = 64);

  zmq::socket_t& socket() { return socket_; }
  uint64_t framesReceived() const { return framesReceived_; }
  uint64_t malformedFrames() const { return malformedFrames_; }
  const std::string& lastError() const { return lastError_; }

 private:
  void deliver(zmq::message_t& msg, FrameHandler& handler);

  Transport& transport_;
  uint64_t watchId_ = 0;  // PeerGuard watch of a tcp:// or ipc:// receiver
  std::string endpoint_;
  std::shared_ptr<const SchemaRegistry> registry_;
  ChannelOptions options_;
  zmq::socket_t socket_;
  FrameDecoder decoder_;
  std::vector<uint64_t> aligned_;  // copy target when a message is not 8-byte aligned
  uint64_t framesReceived_ = 0;
  uint64_t malformedFrames_ = 0;
  std::string lastError_;
};

}  // namespace gale
