// The coordinator's rules (triggers, txid order, commit, recovery, stop, errors) through a small
// in-test pipeline, so each rule is checked on its own; batch/topology_pipeline_test.cpp runs the
// same rules through the real topology runtime.
#include "job_test_util.h"
#include "job_wait_test_util.h"

namespace gale {
namespace {

using namespace gale::testing;

using MicroBatchJobTest = Fixture;

TEST_F(MicroBatchJobTest, ProcessingTimeTriggerCutsOnTicksSkipsEmptyTicksAndCatchesUpAfterAnOverrun) {
  ManualClock clock(Timestamp{10'000'000});  // 10 s
  auto src = std::make_shared<GrowingSource>(1);
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(1s);
  cfg.clock = &clock;
  SumPipeline* pipe = nullptr;
  shared->holdBatches = true;
  auto job = start(src, cfg, &pipe);

  // No data: ticks pass and no batch is cut.
  // (Each tick is seen by the job before the next: otherwise the data added below could arrive
  // while the job still looks at the tick at 13 s, and that cut would be right.)
  for (int i = 0; i < 3; ++i) {
    clock.advance(1s);
    ASSERT_TRUE(jobHasLooked(job));  // the job had its chance to (wrongly) cut
  }
  {
    std::lock_guard lk(shared->mutex);
    EXPECT_TRUE(shared->dispatched.empty());
  }
  src->add(0, 10);
  clock.set(Timestamp{13'500'000});  // between ticks: waits for the tick at 14 s
  ASSERT_TRUE(jobHasLooked(job));
  {
    std::lock_guard lk(shared->mutex);
    EXPECT_TRUE(shared->dispatched.empty());
  }
  clock.set(Timestamp{14'000'000});
  ASSERT_TRUE(waitFor([&] { return shared->dispatched.size() == 1; }));
  // The batch runs 2.5 intervals: new data arrives meanwhile; the next batch starts right after
  // the commit, not at the next tick.
  src->add(0, 5);
  clock.set(Timestamp{16'500'000});
  pipe->release(1);
  ASSERT_TRUE(waitFor([&] { return shared->dispatched.size() == 2; }));
  {
    std::lock_guard lk(shared->mutex);
    EXPECT_EQ(shared->dispatchTimes[0].micros, 14'000'000);
    EXPECT_EQ(shared->dispatchTimes[1].micros, 16'500'000);
    EXPECT_EQ(shared->batchRecords, (std::vector<int64_t>{10, 5}));
  }
  src->add(0, 1);
  pipe->release(2);
  ASSERT_TRUE(waitFor([&] { return shared->committed.size() == 2; }));
  ASSERT_TRUE(jobHasLooked(job));
  {
    std::lock_guard lk(shared->mutex);
    EXPECT_EQ(shared->dispatched.size(), 2u);  // on time again: waits for the tick at 17 s
  }
  clock.set(Timestamp{17'000'000});
  ASSERT_TRUE(waitFor([&] { return shared->dispatched.size() == 3; }));
  pipe->release(3);
  job.stop();
  job.waitUntilDone();
  auto p = job.progress();
  EXPECT_EQ(p.batches, 3u);
  EXPECT_EQ(p.records, 16u);
  EXPECT_EQ(p.triggerOverruns, 1u);
}

TEST_F(MicroBatchJobTest, UnspecifiedTriggerRunsBatchesBackToBackAndNoneWithoutNewData) {
  ManualClock clock;  // never advanced: the unspecified trigger does not wait for time
  auto src = std::make_shared<GrowingSource>(2);
  MicroBatch cfg;
  cfg.clock = &clock;
  cfg.maxRecordsPerBatch = 10;
  src->add(0, 25);
  src->add(1, 5);
  auto job = start(src, cfg);
  ASSERT_TRUE(waitFor([&] { return shared->committed.size() == 3; }));
  ASSERT_TRUE(jobHasLooked(job));  // no new data: no fourth batch
  {
    std::lock_guard lk(shared->mutex);
    EXPECT_EQ(shared->dispatched, (std::vector<uint64_t>{1, 2, 3}));
  }
  src->add(1, 1);
  ASSERT_TRUE(waitFor([&] { return shared->committed.size() == 4; }));
  job.stop();
  job.waitUntilDone();
  EXPECT_EQ(job.progress().records, 31u);
}

TEST_F(MicroBatchJobTest, AvailableNowProcessesWhatWasThereAtStartInSeveralBatchesThenStops) {
  auto src = std::make_shared<GrowingSource>(3);
  src->add(0, 100);
  src->add(1, 40);
  src->add(2, 1);
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.maxRecordsPerBatch = 50;
  SumPipeline* pipe = nullptr;
  shared->holdBatches = true;
  auto job = start(src, cfg, &pipe);
  ASSERT_TRUE(waitFor([&] { return shared->dispatched.size() == 1; }));
  src->add(0, 1000);  // arrives after the start: left for the next run
  for (uint64_t t = 1; t <= 3; ++t) {
    ASSERT_TRUE(waitFor([&] { return shared->held.count(t) == 1; })) << t;
    pipe->release(t);
  }
  ASSERT_TRUE(job.waitUntilDone(5000ms));
  auto p = job.progress();
  EXPECT_EQ(p.batches, 3u);  // 141 records, at most 50 per batch
  EXPECT_EQ(p.records, 141u);
  EXPECT_EQ(p.offsets.at("src"), (std::vector<int64_t>{100, 40, 1}));
}

TEST_F(MicroBatchJobTest, OverlappingBatchesFinishingOutOfOrderCommitInTxidOrder) {
  auto src = std::make_shared<GrowingSource>(1);
  MicroBatch cfg;
  cfg.maxRecordsPerBatch = 7;
  cfg.maxBatchesInFlight = 4;
  std::vector<uint64_t> commitOrder;
  std::mutex commitMutex;
  cfg.onCommitPoint = [&](CommitPoint p, uint64_t txid) {
    if (p == CommitPoint::AfterCommit) {
      std::lock_guard lk(commitMutex);
      commitOrder.push_back(txid);
    }
  };
  SumPipeline* pipe = nullptr;
  shared->holdBatches = true;
  src->add(0, 7 * 20);
  auto job = start(src, cfg, &pipe);
  std::mt19937_64 rng(11);
  uint64_t releasedCount = 0;
  while (releasedCount < 20) {
    // Four batches are in flight at once; release them in a random order.
    ASSERT_TRUE(waitFor([&] {
      return shared->held.size() == std::min<uint64_t>(4, 20 - releasedCount) ||
             shared->held.size() > 0;
    }));
    std::this_thread::sleep_for(1ms);
    std::vector<uint64_t> held;
    {
      std::lock_guard lk(shared->mutex);
      EXPECT_LE(shared->held.size(), 4u);
      for (auto& [t, r] : shared->held) held.push_back(t);
    }
    std::shuffle(held.begin(), held.end(), rng);
    for (auto t : held) {
      pipe->release(t);
      ++releasedCount;
    }
  }
  ASSERT_TRUE(waitFor([&] { return shared->committed.size() == 20; }));
  job.stop();
  job.waitUntilDone();
  std::vector<uint64_t> expected(20);
  for (uint64_t i = 0; i < 20; ++i) expected[i] = i + 1;
  EXPECT_EQ(commitOrder, expected);
  std::lock_guard lk(shared->mutex);
  EXPECT_EQ(shared->committed, expected);
}

TEST_F(MicroBatchJobTest, RestartResumesAfterTheLastCommitWithTheRestoredSnapshot) {
  auto src = std::make_shared<GrowingSource>(1);
  src->add(0, 100);
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.maxRecordsPerBatch = 30;
  {
    auto job = start(src, cfg);
    job.waitUntilDone();
    EXPECT_EQ(job.progress().lastTxid, 4u);
  }
  resetTerminated();  // closes the first run's store
  src->add(0, 50);
  auto shared2 = std::make_shared<SumPipeline::Shared>();
  shared = shared2;
  auto job = start(src, cfg);
  job.waitUntilDone();
  EXPECT_EQ(shared->restoredSum, expectedSum(100));
  EXPECT_EQ(shared->restoredTxid, 4u);
  EXPECT_EQ(shared->dispatched, (std::vector<uint64_t>{5, 6}));
  auto p = job.progress();
  EXPECT_EQ(p.records, 50u);
  EXPECT_EQ(p.offsets.at("src")[0], 150);
  resetTerminated();
  auto store = StateStore::inspect(dir.string());
  EXPECT_EQ(store->snapshot("sum#0").value(), std::to_string(expectedSum(150)) + " 150");
  EXPECT_EQ(store->lastCommittedTxid(), 6u);
}

// With the offset log, a batch that failed before its commit is replayed with exactly the offsets
// it was cut to, even though more data is there by then; without it, the replay takes more.
TEST_F(MicroBatchJobTest, WithTheOffsetLogAReplayIsCutToTheLoggedOffsetsNotToWhatIsAvailable) {
  for (bool offsetLog : {true, false}) {
    SCOPED_TRACE(offsetLog ? "offset log" : "no offset log");
    fs::remove_all(dir);
    auto src = std::make_shared<GrowingSource>(1);
    src->add(0, 40);
    MicroBatch cfg;
    cfg.offsetLog = offsetLog;
    shared = std::make_shared<SumPipeline::Shared>();
    shared->failNext = true;  // batch 1 is cut (and logged), then fails: nothing committed
    {
      auto job = start(src, cfg);
      EXPECT_THROW(job.waitUntilDone(), std::runtime_error);
    }
    resetTerminated();
    src->add(0, 60);  // more data arrives before the restart
    shared = std::make_shared<SumPipeline::Shared>();
    cfg.trigger = BatchTrigger::availableNow();
    auto job = start(src, cfg);
    job.waitUntilDone();
    resetTerminated();
    auto log = StateStore::inspect(dir.string())->commitLog();
    ASSERT_FALSE(log.empty());
    EXPECT_EQ(log[0].txid, 1u);
    EXPECT_EQ(log[0].offsets.at("src").at(0), offsetLog ? 40 : 100);
    EXPECT_EQ(log.back().offsets.at("src").at(0), 100);
  }
}

// The logged batch keeps its end-of-input flag: a source that finished only after the first
// attempt must not turn the replay into the end-of-input batch (it would fire other windows).
TEST_F(MicroBatchJobTest, AReplayFromTheOffsetLogKeepsTheEndOfInputFlagOfTheFirstAttempt) {
  struct Bounded : GrowingSource {
    using GrowingSource::GrowingSource;
    bool finished() const override { return done.load(); }
    std::atomic<bool> done{false};
  };
  auto src = std::make_shared<Bounded>(1);
  src->add(0, 40);
  MicroBatch cfg;
  cfg.offsetLog = true;
  shared->failNext = true;  // batch 1 (not the end of input: the source is not finished) fails
  {
    auto job = start(src, cfg);
    EXPECT_THROW(job.waitUntilDone(), std::runtime_error);
  }
  resetTerminated();
  src->done = true;  // now the source is finished at 40
  shared = std::make_shared<SumPipeline::Shared>();
  auto job = start(src, cfg);
  job.waitUntilDone();  // ends with the end-of-input batch
  resetTerminated();
  // Batch 1 replayed as it was, then the empty end-of-input batch 2 (not one batch doing both).
  EXPECT_EQ(shared->dispatched, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(shared->batchRecords, (std::vector<int64_t>{40, 0}));
}

TEST_F(MicroBatchJobTest, TwoJobsOnOneCheckpointDirectoryAreRefusedWithTheJobName) {
  auto src = std::make_shared<GrowingSource>(1);
  MicroBatch cfg;
  cfg.name = "first";
  auto job = start(src, cfg);
  MicroBatch cfg2;
  cfg2.name = "second";
  try {
    start(src, cfg2);
    FAIL() << "a second job on the same directory must be refused";
  } catch (const StateError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'second'"), std::string::npos) << m;
    EXPECT_NE(m.find("in use"), std::string::npos) << m;
  }
  job.stop();
  job.waitUntilDone();
}

TEST_F(MicroBatchJobTest, TwoJobsWithTheirOwnDirectoriesRunSideBySideAndAwaitTerminationWaitsForBoth) {
  auto srcA = std::make_shared<GrowingSource>(1);
  auto srcB = std::make_shared<GrowingSource>(2);
  srcA->add(0, 100);
  srcB->add(0, 30);
  srcB->add(1, 30);
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.maxRecordsPerBatch = 10;
  auto a = start(srcA, cfg);
  auto sharedB = std::make_shared<SumPipeline::Shared>();
  MicroBatch cfgB = cfg;
  cfgB.checkpoint = dir.string() + "-b";
  fs::remove_all(cfgB.checkpoint);
  auto b = runBatchPipeline({{"src", srcB}}, std::make_unique<SumPipeline>(srcB, sharedB, cfg.clock),
                            "sum-job", cfgB);
  awaitTermination();
  EXPECT_TRUE(a.done());
  EXPECT_TRUE(b.done());
  EXPECT_EQ(a.progress().records, 100u);
  EXPECT_EQ(a.progress().batches, 10u);
  EXPECT_EQ(b.progress().records, 60u);
  EXPECT_EQ(b.progress().batches, 6u);
  resetTerminated();
  EXPECT_TRUE(activeJobs().empty());
  fs::remove_all(cfgB.checkpoint);
}

TEST_F(MicroBatchJobTest, AFailingBatchStopsTheJobWithItsErrorAndCommitsNothingMore) {
  auto src = std::make_shared<GrowingSource>(1);
  src->add(0, 3);
  MicroBatch cfg;
  shared->failNext = true;
  auto job = start(src, cfg);
  try {
    job.waitUntilDone();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos);
  }
  auto p = job.progress();
  EXPECT_TRUE(p.failed);
  EXPECT_EQ(p.batches, 0u);
}

TEST_F(MicroBatchJobTest, BadConfigurationIsRefusedWithClearMessages) {
  auto src = std::make_shared<GrowingSource>(1);
  MicroBatch cfg;
  cfg.checkpoint = "";
  try {
    runBatchPipeline({{"src", src}}, std::make_unique<SumPipeline>(src, shared, cfg.clock), "j",
                     cfg);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint"), std::string::npos);
  }
  cfg.checkpoint = dir.string();
  cfg.maxBatchesInFlight = 0;
  EXPECT_THROW(runBatchPipeline({{"src", src}}, std::make_unique<SumPipeline>(src, shared, cfg.clock),
                                "j", cfg),
               std::invalid_argument);
  // A directory written by another job is refused, naming the job.
  cfg.maxBatchesInFlight = 1;
  cfg.name = "mine";
  {
    StateStore other(dir.string(), StateStoreOptions{.jobId = "someone-else"});
  }
  try {
    runBatchPipeline({{"src", src}}, std::make_unique<SumPipeline>(src, shared, cfg.clock), "j",
                     cfg);
    FAIL();
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("'mine'"), std::string::npos) << e.what();
  }
}

// A damaged checkpoint is never a silent fresh start: the job refuses to start, naming the job,
// the file and the ways out; MicroBatch::startOverIfDamaged is the explicit way to start over,
// keeping the damaged directory.
TEST_F(MicroBatchJobTest, ADamagedCheckpointIsAnErrorUnlessStartingOverIsAskedForExplicitly) {
  auto src = std::make_shared<GrowingSource>(1);
  src->add(0, 100);
  MicroBatch cfg;
  cfg.name = "summer";
  cfg.trigger = BatchTrigger::availableNow();
  cfg.maxRecordsPerBatch = 30;
  ManualClock clock(Timestamp{1'700'000'000'000'000});
  cfg.clock = &clock;
  start(src, cfg).waitUntilDone();
  resetTerminated();
  fs::resize_file(dir / "data.mdb", 0);  // a present but empty data file
  try {
    start(src, cfg);
    FAIL() << "a damaged checkpoint must not start";
  } catch (const CheckpointDamaged& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("micro-batch job 'summer'"), std::string::npos) << m;
    EXPECT_NE(m.find((dir / "data.mdb").string() + " is damaged"), std::string::npos) << m;
    EXPECT_NE(m.find("startOverIfDamaged"), std::string::npos) << m;
    EXPECT_EQ(e.file(), (dir / "data.mdb").string());
  }
  EXPECT_EQ(fs::file_size(dir / "data.mdb"), 0u);  // untouched
  cfg.startOverIfDamaged = true;
  shared = std::make_shared<SumPipeline::Shared>();
  auto job = start(src, cfg);
  job.waitUntilDone();
  EXPECT_EQ(shared->restoredTxid, 0u);
  EXPECT_EQ(job.progress().records, 100u);
  resetTerminated();
  fs::path aside = dir.string() + ".damaged-20231114T221320Z";
  EXPECT_TRUE(fs::exists(aside / "data.mdb"));
  EXPECT_EQ(StateStore::inspect(dir.string())->snapshot("sum#0").value(),
            std::to_string(expectedSum(100)) + " 100");
  fs::remove_all(aside);
}

}  // namespace
}  // namespace gale
