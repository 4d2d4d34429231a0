// Text lines from a TCP server, one record per line (Spark's socket source): for demos and
// quick experiments fed by `nc -lk 9999`.
//
// A reader thread connects to host:port, splits what arrives at '\n' (a trailing '\r' is
// dropped) and appends the lines to an in-memory buffer, numbering them 0, 1, 2, ... over the
// life of the source (across reconnections). read() serves ranges from the buffer and commit()
// frees its prefix. So replays work within the process, but the buffer is NOT durable: after a
// restart the lines are gone (like Spark's socket source, this is not a fault-tolerant source).
//
// Nothing is lost silently:
// - the buffer is bounded (lines and bytes); when it is full the reader stops reading, and TCP
//   flow control pushes back on the sender, until commit() frees space;
// - a line longer than maxLineLength is cut to maxLineLength bytes, counted in
//   stats().oversizeLines and logged;
// - a refused or lost connection is logged, counted, and retried with exponential backoff;
// - a last line without '\n' is delivered when the peer closes the connection.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gale/core/source.h"

namespace gale {

class SocketSource : public Source {
 public:
  struct Options {
    size_t maxLineLength = 64 * 1024;
    size_t maxBufferedLines = 1 << 20;
    size_t maxBufferedBytes = 256u << 20;
    std::chrono::milliseconds initialBackoff{100};
    std::chrono::milliseconds maxBackoff{5000};
    std::chrono::milliseconds connectTimeout{2000};
  };

  struct Stats {
    uint64_t lines = 0;            // lines appended to the buffer
    uint64_t bytes = 0;            // bytes received
    uint64_t oversizeLines = 0;    // lines cut to maxLineLength
    uint64_t connects = 0;         // successful connections
    uint64_t connectFailures = 0;  // refused, unreachable, timed out, unresolvable
    uint64_t disconnects = 0;      // connections closed by the peer or failed while open
  };

  // Throws std::invalid_argument for an empty host, a port outside 1..65535 or zero limits.
  SocketSource(std::string host, int port, Options options);
  SocketSource(std::string host, int port) : SocketSource(std::move(host), port, Options{}) {}
  ~SocketSource() override;

  std::string name() const override;
  // One field: "line" (string).
  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  int partitions() const override { return 1; }

  // Starts the reader thread (which connects in the background: open() does not fail when the
  // server is not up yet; it keeps retrying and logs why). A second open() is an error.
  void open(const Clock& clock) override;
  // Stops and joins the reader thread. The buffer stays readable.
  void close() override;

  int64_t available(int partition) override;
  // Lines before the committed offset are gone and are not returned.
  size_t read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) override;
  void commit(int partition, int64_t offset) override;
  bool replayable() const override { return true; }

  Stats stats() const;
  // The last connection problem ("connect to 127.0.0.1:9999: Connection refused"), or "".
  std::string lastError() const;
  bool connected() const { return connected_.load(); }

 private:
  struct Line {
    std::string text;
    int64_t originNanos;
  };

  void run();
  int connectOnce(std::string& error);
  void readConnection(int fd);
  // Appends one complete line, waiting for buffer space; false when stopping.
  bool appendLine(std::string&& text, int64_t originNanos, bool oversize);
  void waitBackoff(std::chrono::milliseconds d);
  void checkPartition(int partition) const;

  const std::string host_;
  const int port_;
  const Options options_;
  const Clock* clock_ = nullptr;

  std::thread reader_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  int wakeFd_ = -1;  // eventfd: wakes the reader's poll() on close()

  mutable std::mutex mutex_;
  std::condition_variable space_;  // the reader waits here for buffer space / backoff end
  std::deque<Line> buffer_;
  int64_t base_ = 0;  // offset of buffer_.front()
  size_t bufferedBytes_ = 0;
  Stats stats_;
  std::string lastError_;
};

}  // namespace gale
