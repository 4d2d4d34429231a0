// A sink that keeps its rows in memory, in a store shared with whoever built the job (tests,
// tools, benchmarks), so results can be checked while or after the job runs.
//
// Continuous mode: every tuple is appended as it arrives. Micro-batch mode: the rows of batch
// `txid` are collected per task and published at onBatchEnd(txid), replacing whatever that task
// published earlier for the same txid, so a replayed batch never duplicates its output.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gale/core/histogram.h"
#include "gale/core/operator.h"

namespace gale {

class MemoryStore {
 public:
  struct Row {
    Values values;
    std::string stream;      // "component:stream" the tuple came from
    int64_t originNanos = 0;
    int taskIndex = 0;       // the sink task that stored it
  };

  // Every visible row: the continuous rows in arrival order, then the batches in txid order
  // (each batch's tasks in task order).
  std::vector<Row> rows() const;
  // The values of rows(), for quick comparisons.
  std::vector<Values> values() const;
  size_t size() const;
  // The rows of batch `txid` (all tasks), empty when the batch was never published.
  std::vector<Row> batch(uint64_t txid) const;
  std::vector<uint64_t> txids() const;
  // How many times a batch was published (by any task) more than once: replays seen.
  uint64_t replacedBatches() const;

  // Blocks until at least `n` rows are visible or `timeout` passes; true when they are.
  // For tests of running jobs (a real runtime needs real time to deliver).
  bool waitForSize(size_t n, std::chrono::milliseconds timeout) const;

  // Latency from Tuple::originNanos to the moment the row became visible, in nanoseconds
  // (rows with originNanos == 0 are not recorded). Only filled by sinks built with
  // recordLatency. A replayed batch records its rows again: they became visible again.
  Histogram latency() const;

  void clear();

  // Used by MemorySink.
  void append(Row row, int64_t latencyNanos);
  void publishBatch(uint64_t txid, int taskIndex, std::vector<Row> rows,
                    const std::vector<int64_t>& latencies);

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<Row> continuous_;
  std::map<std::pair<uint64_t, int>, std::vector<Row>> batches_;  // (txid, task) -> rows
  size_t batchRows_ = 0;
  uint64_t replaced_ = 0;
  Histogram latency_;
};

using MemoryStorePtr = std::shared_ptr<MemoryStore>;

class MemorySink : public Operator {
 public:
  struct Options {
    // Record per-row latency (monotonic now - originNanos) into the store's histogram.
    bool recordLatency = false;
  };

  // Throws std::invalid_argument when `store` is null.
  MemorySink(MemoryStorePtr store, Options options);
  explicit MemorySink(MemoryStorePtr store) : MemorySink(std::move(store), Options{}) {}

  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  void open(const OperatorContext& context) override;
  void onTuple(const Tuple& tuple, Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;

  const MemoryStorePtr& store() const { return store_; }

 private:
  MemoryStorePtr store_;
  Options options_;
  int taskIndex_ = 0;
  const Clock* clock_ = &SystemClock::instance();
  bool inBatch_ = false;
  uint64_t txid_ = 0;
  std::vector<MemoryStore::Row> pending_;
};

}  // namespace gale
