// Writes per-window results to Redis the way the Yahoo Streaming Benchmark does, through hiredis
// (module gale::redis), so YSB runs as its authors defined it: Kafka in, Redis out.
//
// For a row (campaign, window, count) — by default the fields campaign_id, window_start, count of
// a windowed Count keyed by campaign_id — with window = the window's start in epoch milliseconds
// (YSB's window timestamp):
//   HSET <campaign> <window> <window key>        the campaign's window -> its result hash
//   HSET <campaign> windows <list key>           and the list of the campaign's windows,
//   LPUSH <list key> <window>                    pushed once, when the window is new
//   HSET <window key> seen_count <count> time_updated <now, epoch ms>
// YSB's own readers (its data collection walks campaign -> windows -> seen_count, time_updated)
// work unchanged. Two differences, both for idempotence: the window and list keys are derived
// from campaign and window ("window:<campaign>:<window>", "windows:<campaign>") where YSB draws
// random UUIDs, and seen_count is SET to the row's count where YSB adds partial counts with
// HINCRBY: gale's windowed aggregations emit the window's count so far (Append: the final count,
// Update: the running total), never a delta, so setting it is what makes a replay harmless.
//
// Each write is one Lua script (EVAL), which Redis runs atomically: a batch is all in or all out.
//
// Micro-batch mode: idempotent per txid. The rows of batch T are written at onBatchEnd(T) in one
// script that also sets field <task index> of the hash `markerKey` to T, and that writes nothing
// when the marker is already >= T. A batch replayed after a crash between the Redis write and
// the job's commit therefore changes nothing (not even time_updated). Continuous mode: each row
// is written as it arrives, before the tuple is acked (at-least-once; a replayed row sets the
// same count again).
//
// Connection errors (refused, reset, timeouts, a server restart) are logged with the address,
// counted, and retried on a new connection with exponential backoff (initialBackoff doubling up
// to maxBackoff) for up to `timeout`; then the write throws std::runtime_error naming the server
// and the last error, so the tuple (continuous) or the batch (micro-batch) fails and is replayed.
// Standalone Redis only (the script touches keys it does not declare, as Redis Cluster forbids).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gale/core/operator.h"

namespace gale {

class RedisSink : public Operator {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string keyField = "campaign_id";
    std::string windowField = "window_start";  // a timestamp (written as epoch milliseconds)
    std::string valueField = "count";          // an integer: the window's count so far
    // Micro-batch: the hash of last written txids, one field per sink task. Must be stable across
    // restarts of the job and unique among jobs writing to the same Redis.
    std::string markerKey = "gale:redis_sink";
    // Each Redis command waits at most commandTimeout; a write retries for up to `timeout`.
    std::chrono::milliseconds commandTimeout{5000};
    std::chrono::milliseconds timeout{30000};
    std::chrono::milliseconds initialBackoff{10};
    std::chrono::milliseconds maxBackoff{1000};
  };

  // Throws std::invalid_argument for bad options (naming them).
  explicit RedisSink(Options options);
  ~RedisSink() override;

  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  void open(const OperatorContext& context) override;
  void onTuple(const Tuple& tuple, Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;

  // Counters of all tasks of this sink (shared by clones).
  struct Stats {
    uint64_t rows = 0;              // rows written (a replayed continuous row counts again)
    uint64_t batches = 0;           // micro-batch: batches written
    uint64_t skippedBatches = 0;    // micro-batch: replayed txids already in Redis
    uint64_t connectionErrors = 0;  // failed connects and commands lost to a broken connection
    uint64_t reconnects = 0;        // connections made after an error
  };
  Stats stats() const;
  // The last connection error ("" if none), with the server's address.
  std::string lastError() const;

 private:
  struct Shared;
  struct Connection;
  void write(uint64_t txid);

  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Connection> conn_;
  OperatorContext context_;
  bool inBatch_ = false;
  std::vector<std::string> args_;  // the script's arguments after the fixed ones: rows, 3 each
};

// Reads the windows of `campaigns` back the way YSB's data collection does (campaign -> windows
// list -> each window's hash): (campaign, window start in ms) -> what RedisSink wrote. Throws
// std::runtime_error naming the server when it cannot connect, or when a window is listed twice
// or lacks its hash (a layout RedisSink never writes).
struct RedisWindow {
  int64_t seenCount = 0;
  int64_t timeUpdated = 0;  // epoch ms
  friend bool operator==(const RedisWindow&, const RedisWindow&) = default;
};
std::map<std::pair<std::string, int64_t>, RedisWindow> readRedisWindows(
    const std::string& host, int port, const std::vector<std::string>& campaigns);

}  // namespace gale
