// What the web UI reads from and does to a micro-batch job: the recent batches table, the
// executors' metrics and topology, deactivate / activate.
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "batch_test_ops.h"
#include "job_test_util.h"
#include "job_wait_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

using JobUiAccessTest = CheckpointDirTest;

// Polls `cond` for up to 30 s of real time (the job's threads do the work).
template <class F>
bool eventually(F cond) {
  auto end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

Topology wordCount(int64_t sentences, MemoryStorePtr store) {
  SentenceSource::Options so;
  so.partitions = 2;
  so.total = sentences;
  TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<SentenceSource>(so), 2);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  b.setBolt("count", CountWords{}, 2).fieldsGrouping("split", Fields{"word"});
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("count");
  return b.build();
}

TEST_F(JobUiAccessTest, RecentBatchesListEveryCommittedBatchWithItsRowsAndPhases) {
  auto store = std::make_shared<MemoryStore>();
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 300;
  auto job = runMicroBatch(wordCount(1000, store), cfg);
  ASSERT_TRUE(job.waitUntilDone(30s));
  BatchProgress p = job.progress();
  ASSERT_EQ(p.recent.size(), 4u);  // 300 + 300 + 300 + 100
  uint64_t rows = 0;
  for (size_t i = 0; i < p.recent.size(); ++i) {
    EXPECT_EQ(p.recent[i].txid, i + 1);
    EXPECT_GT(p.recent[i].executeNanos, 0);
    EXPECT_GT(p.recent[i].commitNanos, 0);
    EXPECT_GT(p.recent[i].cutMicros, 0);
    rows += p.recent[i].records;
  }
  EXPECT_EQ(p.recent.back().records, 100u);
  EXPECT_EQ(rows, p.records);
  EXPECT_EQ(p.recent.back().stateEntries, p.stateEntries);
}

TEST_F(JobUiAccessTest, TheJobShowsItsTopologyAndTheExecutorsMetricsAlsoAfterItEnded) {
  auto store = std::make_shared<MemoryStore>();
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  auto job = runMicroBatch(wordCount(500, store), cfg);
  ASSERT_NE(job.topology(), nullptr);
  EXPECT_EQ(job.topology()->components().size(), 4u);
  EXPECT_EQ(job.topology()->components()[2].name, "count");
  ASSERT_TRUE(job.waitUntilDone(30s));
  TopologyMetrics m = job.metrics();
  const ComponentMetrics* split = m.find("split");
  ASSERT_NE(split, nullptr);
  ASSERT_EQ(split->tasks.size(), 2u);
  EXPECT_EQ(split->total().executed, 500u);  // every sentence once
  EXPECT_TRUE(m.find("sentences")->spout);
}

TEST_F(JobUiAccessTest, ADeactivatedJobCutsNoBatchUntilActivated) {
  // Data arrives only when the test adds it, so no batch can be in flight unseen.
  auto src = std::make_shared<GrowingSource>(1);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("numbers", src, 1);
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("numbers");
  ManualClock clock(Timestamp{1'000'000});
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(100ms);
  cfg.checkpoint = dir.string();
  cfg.clock = &clock;
  auto job = runMicroBatch(b.build(), cfg);
  auto batchesReach = [&](uint64_t n) {
    return eventually([&] { return job.progress().batches >= n; });
  };
  src->add(0, 10);
  clock.advance(100ms);
  ASSERT_TRUE(batchesReach(1));
  job.deactivate();
  EXPECT_TRUE(job.progress().paused);
  src->add(0, 10);
  for (int tick = 0; tick < 3; ++tick) {
    clock.advance(100ms);
    ASSERT_TRUE(jobHasLooked(job));
  }
  EXPECT_EQ(job.progress().batches, 1u) << "a batch was cut while deactivated";
  job.activate();
  EXPECT_FALSE(job.progress().paused);
  clock.advance(100ms);
  ASSERT_TRUE(batchesReach(2));
  EXPECT_EQ(job.progress().records, 20u);
  job.stop();
  job.waitUntilDone();
}

TEST_F(JobUiAccessTest, TheCheckpointSummaryIsWhatTheDirectoryHoldsWhileRunningAndAfter) {
  auto src = std::make_shared<GrowingSource>(2);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("numbers", src, 2);
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("numbers");
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(1ms);
  cfg.checkpoint = dir.string();
  auto job = runMicroBatch(b.build(), cfg);
  // Read from another thread all along, also while the job closes its store.
  std::atomic<bool> reading{true};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    while (reading) {
      if (job.checkpoint(5)) ++reads;
    }
  });
  for (int round = 1; round <= 3; ++round) {
    src->add(0, 10);
    src->add(1, 5);
    ASSERT_TRUE(job.processAllAvailable(30s));
  }
  std::optional<CheckpointSummary> live = job.checkpoint(2);
  ASSERT_TRUE(live);
  uint64_t last = job.progress().lastTxid;
  EXPECT_EQ(live->lastCommittedTxid, last);
  ASSERT_EQ(live->commits.size(), 2u);  // the newest two, oldest first
  EXPECT_EQ(live->commits[1].txid, last);
  EXPECT_EQ(live->commits[0].txid, last - 1);
  EXPECT_EQ(live->commits[1].offsets.at("numbers"), (PartitionOffsets{{0, 30}, {1, 15}}));
  EXPECT_EQ(live->directory, dir.string());
  EXPECT_FALSE(live->jobId.empty());
  job.stop();
  job.waitUntilDone();
  reading = false;
  reader.join();
  EXPECT_GT(reads.load(), 0u);

  // After the end: as it was then, and equal to what gale-state reads from the directory.
  std::optional<CheckpointSummary> after = job.checkpoint(100);
  ASSERT_TRUE(after);
  auto inspected = StateStore::inspect(dir.string());
  EXPECT_EQ(after->lastCommittedTxid, inspected->lastCommittedTxid());
  EXPECT_EQ(after->commits, inspected->commitLog());
  EXPECT_EQ(after->jobId, inspected->jobId());
  EXPECT_EQ(after->sinks, inspected->sinks());
  EXPECT_EQ(after->states.size(), inspected->states().size());
  EXPECT_EQ(after->snapshotBytes.size(), inspected->snapshots().size());
  EXPECT_EQ(job.checkpoint(1)->commits.size(), 1u);
}

}  // namespace
}  // namespace gale
