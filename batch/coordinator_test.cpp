#include "gale/batch/coordinator.h"

#include <algorithm>
#include <random>

#include <gtest/gtest.h>

namespace gale {
namespace {

// A source whose partitions grow when the test says so.
class GrowingSource : public Source {
 public:
  explicit GrowingSource(int partitions) : avail_(partitions, 0) {}
  std::string name() const override { return "growing"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  int partitions() const override { return static_cast<int>(avail_.size()); }
  int64_t available(int p) override { return avail_.at(p); }
  size_t read(int p, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o) out.push_back({o, {Value{o}}, 0});
    return static_cast<size_t>(to - from);
  }
  bool finished() const override { return finished_; }
  std::vector<int64_t> avail_;
  bool finished_ = false;
};

TEST(BatchPlanner, CutsContiguousRangesWithStrictlyIncreasingTxids) {
  auto src = std::make_shared<GrowingSource>(2);
  BatchPlanner planner({{"s", src}}, 0);
  EXPECT_EQ(planner.next(), std::nullopt);  // nothing available: no batch
  src->avail_ = {5, 3};
  auto b1 = planner.next();
  ASSERT_TRUE(b1);
  EXPECT_EQ(b1->txid, 1u);
  EXPECT_EQ(b1->records, 8);
  EXPECT_EQ(b1->ranges[0], (std::vector<PartitionRange>{{0, 0, 5}, {1, 0, 3}}));
  EXPECT_EQ(b1->end.at("s"), (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(planner.next(), std::nullopt);  // no new data, and no txid consumed
  src->avail_ = {5, 10};
  auto b2 = planner.next();
  ASSERT_TRUE(b2);
  EXPECT_EQ(b2->txid, 2u);
  EXPECT_EQ(b2->ranges[0], (std::vector<PartitionRange>{{1, 3, 10}}));
  EXPECT_EQ(b2->start.at("s"), (std::vector<int64_t>{5, 3}));
}

TEST(BatchPlanner, TheBatchThatReadsAFinishedSourceToItsEndIsMarkedEndOfInput) {
  auto src = std::make_shared<GrowingSource>(2);
  src->avail_ = {4, 4};
  src->finished_ = true;
  BatchPlanner planner({{"s", src}}, 5);
  auto b1 = planner.next();
  ASSERT_TRUE(b1);
  EXPECT_FALSE(b1->endOfInput);  // 3 records are left
  auto b2 = planner.next();
  ASSERT_TRUE(b2);
  EXPECT_TRUE(b2->endOfInput);
  EXPECT_EQ(planner.next(), std::nullopt);  // said once
}

TEST(BatchPlanner, ASourceThatFinishesAfterItsLastBatchGetsOneEmptyEndOfInputBatch) {
  auto src = std::make_shared<GrowingSource>(1);
  src->avail_ = {3};
  BatchPlanner planner({{"s", src}}, 0);
  auto b1 = planner.next();
  ASSERT_TRUE(b1);
  EXPECT_FALSE(b1->endOfInput);  // not finished yet: more may come
  EXPECT_EQ(planner.next(), std::nullopt);
  src->finished_ = true;
  auto b2 = planner.next();
  ASSERT_TRUE(b2);
  EXPECT_TRUE(b2->endOfInput);
  EXPECT_EQ(b2->records, 0);
  EXPECT_EQ(b2->txid, 2u);
  EXPECT_EQ(planner.next(), std::nullopt);
  // Available-now (a limit) never cuts the empty batch: it stops at what was there at start.
  BatchPlanner limited({{"s", src}}, 0);
  Offsets limit{{"s", {3}}};
  auto c1 = limited.next(&limit);
  ASSERT_TRUE(c1);
  EXPECT_TRUE(c1->endOfInput);
}

TEST(BatchPlanner, MaxRecordsPerBatchSplitsTheBacklogFairlyAndLosesNothing) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 50; ++round) {
    int parts = 1 + rng() % 5;
    auto src = std::make_shared<GrowingSource>(parts);
    for (auto& a : src->avail_) a = rng() % 1000;
    int64_t total = 0;
    for (auto a : src->avail_) total += a;
    int64_t max = 1 + rng() % 300;
    BatchPlanner planner({{"s", src}}, max);
    std::vector<int64_t> seen(parts, 0);
    uint64_t txid = 0;
    int64_t covered = 0;
    while (auto b = planner.next()) {
      EXPECT_EQ(b->txid, ++txid);
      EXPECT_LE(b->records, max);
      EXPECT_GT(b->records, 0);
      for (const auto& r : b->ranges[0]) {
        EXPECT_EQ(r.from, seen[r.partition]);  // contiguous: no gap, no overlap
        seen[r.partition] = r.to;
        covered += r.to - r.from;
      }
    }
    EXPECT_EQ(covered, total);
    EXPECT_EQ(seen, src->avail_);
  }
}

TEST(BatchPlanner, OneHotPartitionDoesNotStarveTheOthers) {
  auto src = std::make_shared<GrowingSource>(3);
  src->avail_ = {1'000'000, 10, 10};
  BatchPlanner planner({{"s", src}}, 90);
  auto b = planner.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->records, 90);
  EXPECT_EQ(b->ranges[0], (std::vector<PartitionRange>{{0, 0, 70}, {1, 0, 10}, {2, 0, 10}}));
}

TEST(BatchPlanner, ResumeContinuesAfterTheCommittedOffsetsAndTxid) {
  auto src = std::make_shared<GrowingSource>(2);
  src->avail_ = {10, 10};
  BatchPlanner planner({{"s", src}}, 0);
  planner.resume(41, {{"s", {7, 10}}});
  auto b = planner.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->txid, 42u);
  EXPECT_EQ(b->ranges[0], (std::vector<PartitionRange>{{0, 7, 10}}));
}

TEST(BatchPlanner, ResumeRefusesOffsetsOfAnotherTopology) {
  auto src = std::make_shared<GrowingSource>(2);
  BatchPlanner planner({{"s", src}}, 0);
  try {
    planner.resume(1, {{"other", {1}}});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("source 'other'"), std::string::npos);
  }
  EXPECT_THROW(planner.resume(1, {{"s", {1, 2, 3}}}), std::runtime_error);
}

TEST(BatchPlanner, LimitStopsRangesAtTheOffsetsSeenAtStart) {
  auto src = std::make_shared<GrowingSource>(1);
  src->avail_ = {100};
  BatchPlanner planner({{"s", src}}, 30);
  Offsets target = planner.available();
  src->avail_ = {1000};  // data arriving after the start is not part of an available-now run
  int batches = 0;
  while (auto b = planner.next(&target)) ++batches;
  EXPECT_EQ(batches, 4);  // 30 + 30 + 30 + 10
  EXPECT_TRUE(planner.reached(target));
  EXPECT_EQ(planner.position().at("s")[0], 100);
}

TEST(BatchPlanner, DuplicateSourceNamesAreRefused) {
  auto src = std::make_shared<GrowingSource>(1);
  EXPECT_THROW(BatchPlanner({{"s", src}, {"s", src}}, 0), std::invalid_argument);
}

TEST(CommitSequencer, BatchesFinishingOutOfOrderAreReleasedInTxidOrder) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 100; ++round) {
    CommitSequencer<int> seq;
    std::vector<uint64_t> txids;
    for (uint64_t t = 1; t <= 20; ++t) {
      seq.started(t * 3);  // txids need not be dense
      txids.push_back(t * 3);
    }
    std::shuffle(txids.begin(), txids.end(), rng);
    std::vector<uint64_t> committed;
    for (auto t : txids) {
      seq.finished(t, static_cast<int>(t));
      while (auto r = seq.popReady()) {
        EXPECT_EQ(static_cast<uint64_t>(r->second), r->first);
        committed.push_back(r->first);
      }
    }
    ASSERT_EQ(committed.size(), 20u);
    EXPECT_TRUE(std::is_sorted(committed.begin(), committed.end()));
    EXPECT_EQ(seq.inFlight(), 0u);
  }
}

TEST(CommitSequencer, MisuseIsRefused) {
  CommitSequencer<int> seq;
  seq.started(5);
  EXPECT_THROW(seq.started(5), std::logic_error);
  EXPECT_THROW(seq.finished(6, 0), std::logic_error);
  seq.finished(5, 1);
  EXPECT_THROW(seq.finished(5, 1), std::logic_error);
}

}  // namespace
}  // namespace gale
