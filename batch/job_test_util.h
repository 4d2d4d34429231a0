// Test helpers for the coordinator's tests: a growing source and a small in-test pipeline.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "gale/batch/microbatch.h"

namespace gale::testing {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A source whose partitions grow when the test says so; record o of partition p has value
// p * 1'000'000 + o.
class GrowingSource : public Source {
 public:
  explicit GrowingSource(int partitions) : avail_(partitions) {
    for (auto& a : avail_) a = 0;
  }
  std::string name() const override { return "growing"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  int partitions() const override { return static_cast<int>(avail_.size()); }
  int64_t available(int p) override { return avail_.at(p).load(); }
  size_t read(int p, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o) out.push_back({o, {Value{p * 1'000'000 + o}}, 1});
    return static_cast<size_t>(to - from);
  }
  void add(int p, int64_t n) { avail_.at(p) += n; }
  std::vector<std::atomic<int64_t>> avail_;
};

// Sums the values of each batch on its own thread; its state (the running sum and count) is
// snapshotted per batch. Batches finish when the test releases them (or at once), in the order
// the test chooses.
class SumPipeline : public BatchPipeline {
 public:
  struct Shared {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<uint64_t> dispatched;
    std::vector<Timestamp> dispatchTimes;
    std::vector<int64_t> batchRecords;
    std::map<uint64_t, BatchResult> held;
    bool holdBatches = false;
    bool failNext = false;
    int64_t restoredSum = -1;
    uint64_t restoredTxid = 0;
    std::vector<uint64_t> committed;
  };

  SumPipeline(std::shared_ptr<GrowingSource> src, std::shared_ptr<Shared> shared,
              const Clock* clock)
      : src_(std::move(src)), shared_(std::move(shared)), clock_(clock) {}

  void start(const RecoveredState& r, Finished finished, Failed failed) override {
    finished_ = std::move(finished);
    failed_ = std::move(failed);
    if (auto it = r.snapshots.find("sum#0"); it != r.snapshots.end()) {
      sum_ = std::stoll(it->second.substr(0, it->second.find(' ')));
      count_ = std::stoll(it->second.substr(it->second.find(' ') + 1));
    }
    std::lock_guard lk(shared_->mutex);
    shared_->restoredSum = sum_;
    shared_->restoredTxid = r.lastTxid;
  }
  void dispatch(const BatchPlan& plan) override {
    std::vector<SourceRecord> recs;
    for (const auto& r : plan.ranges[0]) src_->read(r.partition, r.from, r.to, recs);
    for (auto& rec : recs) {
      sum_ += std::get<int64_t>(rec.values[0]);
      ++count_;
    }
    BatchResult res;
    res.snapshots["sum#0"] = std::to_string(sum_) + " " + std::to_string(count_);
    res.stateEntries = 1;
    for (auto& rec : recs) res.originSamples.push_back({rec.originNanos, 1});
    std::unique_lock lk(shared_->mutex);
    shared_->dispatched.push_back(plan.txid);
    shared_->dispatchTimes.push_back(clock_->now());
    shared_->batchRecords.push_back(plan.records);
    if (shared_->failNext) {
      lk.unlock();
      failed_(std::make_exception_ptr(std::runtime_error("operator 'sum' threw: boom")));
      return;
    }
    if (shared_->holdBatches) {
      shared_->held[plan.txid] = std::move(res);
      shared_->cv.notify_all();
      return;
    }
    shared_->cv.notify_all();
    lk.unlock();
    finished_(plan.txid, std::move(res));
  }
  void committed(uint64_t txid) override {
    std::lock_guard lk(shared_->mutex);
    shared_->committed.push_back(txid);
    shared_->cv.notify_all();
  }
  void stop() override {}

  // Releases a held batch (from the test thread).
  void release(uint64_t txid) {
    BatchResult r;
    {
      std::lock_guard lk(shared_->mutex);
      r = std::move(shared_->held.at(txid));
      shared_->held.erase(txid);
    }
    finished_(txid, std::move(r));
  }

 private:
  std::shared_ptr<GrowingSource> src_;
  std::shared_ptr<Shared> shared_;
  const Clock* clock_;
  Finished finished_;
  Failed failed_;
  int64_t sum_ = 0;
  int64_t count_ = 0;
};

struct Fixture : CheckpointDirTest {
  MicroBatchJob start(std::shared_ptr<GrowingSource> src, MicroBatch cfg,
                      SumPipeline** pipelineOut = nullptr) {
    cfg.checkpoint = dir.string();
    auto p = std::make_unique<SumPipeline>(src, shared, cfg.clock);
    if (pipelineOut) *pipelineOut = p.get();
    return runBatchPipeline({{"src", src}}, std::move(p), "sum-job", cfg);
  }

  template <typename Pred>
  bool waitFor(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lk(shared->mutex);
    return shared->cv.wait_for(lk, timeout, pred);
  }

  std::shared_ptr<SumPipeline::Shared> shared = std::make_shared<SumPipeline::Shared>();
};

int64_t expectedSum(int64_t n) { return n * (n - 1) / 2; }

}  // namespace gale::testing
