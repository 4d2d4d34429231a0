#include "private/checkpoint_coordinator.h"

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "temp_dir_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;

// Each test's checkpoint directory, and a manual clock for the 1 s checkpoint interval.
class CheckpointCoordinatorTest : public ::testing::Test {
 protected:
  CheckpointCoordinator::Options options() const {
    return {.directory = dir.path(), .jobId = "job", .interval = 1s, .clock = &clock,
            .sync = false};
  }
  gale::testing::TempDir dir;
  ManualClock clock;
};

TEST_F(CheckpointCoordinatorTest, ACheckpointIsTriggeredAfterTheIntervalAndCompletesOnlyWhenEveryTaskReported) {
  CheckpointCoordinator c(options(), /*tasks=*/3, /*spoutTasks=*/1);
  EXPECT_EQ(c.due(), 0u);
  clock.advance(999ms);
  EXPECT_EQ(c.due(), 0u);
  clock.advance(1ms);
  EXPECT_EQ(c.due(), 1u);
  clock.advance(5s);
  EXPECT_EQ(c.due(), 1u) << "one checkpoint at a time";

  c.report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 10}, {1, 7}}});
  c.report(1, TaskReport{.task = 1, .snapshots = {{"count#0", "a=1"}}});
  EXPECT_EQ(c.lastCompleted(), 0u);
  EXPECT_EQ(StateStore::inspect(dir.path())->lastCommittedTxid(), 0u) << "nothing before all";
  c.report(1, TaskReport{.task = 2});  // a stateless task
  ASSERT_TRUE(c.awaitCompleted(1));  // written by the coordinator's thread
  EXPECT_EQ(c.lastCompleted(), 1u);
  auto store = StateStore::inspect(dir.path());
  EXPECT_EQ(store->lastCommittedTxid(), 1u);
  EXPECT_EQ(store->snapshot("count#0"), "a=1");
  EXPECT_EQ(store->committedOffsets().at("lines"), (PartitionOffsets{{0, 10}, {1, 7}}));
  EXPECT_EQ(c.due(), 2u) << "the interval passed during checkpoint 1";
}

TEST_F(CheckpointCoordinatorTest, AReportForACheckpointNotInProgressIsRefused) {
  CheckpointCoordinator c(options(), 1, 1);
  EXPECT_THROW(c.report(1, TaskReport{.task = 0}), std::logic_error);
  clock.advance(1s);
  ASSERT_EQ(c.due(), 1u);
  EXPECT_THROW(c.report(2, TaskReport{.task = 0}), std::logic_error);
  EXPECT_THROW(c.report(1, TaskReport{}), std::logic_error) << "no task";
  c.report(1, TaskReport{.task = 0});
  ASSERT_TRUE(c.awaitCompleted(1));
  c.report(1, TaskReport{.task = 0});  // sent again over the link: dropped
  EXPECT_EQ(c.lastCompleted(), 1u);
}

TEST_F(CheckpointCoordinatorTest, ARestartResumesFromTheLastCompletedCheckpointAndForgetsAnIncompleteOne) {
  {
    CheckpointCoordinator c(options(), 2, 1);
    clock.advance(1s);
    ASSERT_EQ(c.due(), 1u);
    c.report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 5}}});
    c.report(1, TaskReport{.task = 1, .snapshots = {{"count#0", "first"}}});
    ASSERT_TRUE(c.awaitCompleted(1));
    clock.advance(1s);
    ASSERT_EQ(c.due(), 2u);
    c.report(2, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 9}}});  // then a crash
  }
  CheckpointCoordinator c(options(), 2, 1);
  EXPECT_EQ(c.lastCompleted(), 1u);
  EXPECT_EQ(c.snapshot("count#0"), "first");
  EXPECT_EQ(c.offsets("lines"), (PartitionOffsets{{0, 5}}));
  EXPECT_EQ(c.offsets("other"), PartitionOffsets{});
  clock.advance(1s);
  EXPECT_EQ(c.due(), 2u) << "checkpoint 2 is taken again";
}

TEST_F(CheckpointCoordinatorTest, WhenEveryInputEndedTheFinalCheckpointIsTriggeredAtOnce) {
  CheckpointCoordinator c(options(), 3, 2);
  c.inputEnded();
  EXPECT_EQ(c.due(), 0u);
  EXPECT_EQ(c.finalCheckpoint(), 0u);
  c.inputEnded();
  EXPECT_EQ(c.due(), 1u) << "no interval to wait for";
  EXPECT_EQ(c.finalCheckpoint(), 1u);
  std::thread sink([&] { EXPECT_TRUE(c.awaitCompleted(1)); });
  for (int i = 0; i < 3; ++i) c.report(1, TaskReport{.task = i});
  sink.join();
  clock.advance(10s);
  EXPECT_EQ(c.due(), 1u) << "nothing after the final checkpoint";
}

TEST_F(CheckpointCoordinatorTest, CloseReleasesATaskWaitingForACheckpointThatWillNotComplete) {
  CheckpointCoordinator c(options(), 2, 1);
  c.inputEnded();
  ASSERT_EQ(c.due(), 1u);
  std::thread sink([&] { EXPECT_FALSE(c.awaitCompleted(1)); });
  c.close();
  sink.join();
}

TEST_F(CheckpointCoordinatorTest, ACheckpointThatCannotBeWrittenStopsTheNextOnesAndSaysWhy) {
  auto o = options();
  o.onPoint = [](CheckpointPoint p, uint64_t) {
    if (p == CheckpointPoint::CheckpointWritten) throw std::runtime_error("disk on fire");
  };
  CheckpointCoordinator c(o, 1, 1);
  clock.advance(1s);
  ASSERT_EQ(c.due(), 1u);
  c.report(1, TaskReport{.task = 0});
  EXPECT_FALSE(c.awaitCompleted(1));
  EXPECT_NE(c.failure().find("checkpoint 1 could not be written: disk on fire"), std::string::npos)
      << c.failure();
  clock.advance(1s);
  EXPECT_THROW(c.due(), std::runtime_error);
}

// The asynchronous part of a snapshot runs on the coordinator's thread, and the checkpoint is
// complete only once its bytes are written with the rest.
TEST_F(CheckpointCoordinatorTest, AnAsynchronousSnapshotRunsOnTheCoordinatorsThreadAndTheCheckpointCompletesOnceItIsWritten) {
  CheckpointCoordinator c(options(), 2, 1);
  clock.advance(1s);
  ASSERT_EQ(c.due(), 1u);
  std::mutex m;
  std::condition_variable cv;
  bool started = false, release = false;
  std::thread::id ranOn;
  c.report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 3}}});
  c.report(1, TaskReport{.task = 1, .deferred = {{"state#0", [&] {
                           std::unique_lock lk(m);
                           ranOn = std::this_thread::get_id();
                           started = true;
                           cv.notify_all();
                           cv.wait(lk, [&] { return release; });
                           return std::string("frozen");
                         }}}});
  {
    std::unique_lock lk(m);
    ASSERT_TRUE(cv.wait_for(lk, 60s, [&] { return started; }));
    EXPECT_NE(ranOn, std::this_thread::get_id());
    EXPECT_EQ(c.lastCompleted(), 0u) << "complete before its asynchronous part was written";
    EXPECT_EQ(StateStore::inspect(dir.path())->lastCommittedTxid(), 0u);
    release = true;
    cv.notify_all();
  }
  ASSERT_TRUE(c.awaitCompleted(1));
  EXPECT_EQ(StateStore::inspect(dir.path())->snapshot("state#0"), "frozen");
}

TEST_F(CheckpointCoordinatorTest, AnAsynchronousSnapshotThatThrowsFailsTheCheckpointNamingItsTask) {
  CheckpointCoordinator c(options(), 1, 1);
  clock.advance(1s);
  ASSERT_EQ(c.due(), 1u);
  c.report(1, TaskReport{.task = 0, .deferred = {{"state#0", []() -> std::string {
                           throw std::runtime_error("view gone");
                         }}}});
  EXPECT_FALSE(c.awaitCompleted(1));
  EXPECT_NE(c.failure().find("the asynchronous snapshot of 'state#0' failed: view gone"),
            std::string::npos)
      << c.failure();
  EXPECT_EQ(StateStore::inspect(dir.path())->lastCommittedTxid(), 0u);
  clock.advance(1s);
  EXPECT_THROW(c.due(), std::runtime_error);
}

TEST_F(CheckpointCoordinatorTest, ADirectoryOfAnotherJobIsRefused) {
  { CheckpointCoordinator c(options(), 1, 1); }
  auto other = options();
  other.jobId = "another";
  EXPECT_THROW(CheckpointCoordinator(other, 1, 1), StateError);
}

// A worker without the coordinator (a job over several workers): its tasks read what START
// brought, their reports wait for the link, and its progress is whatever the coordinator said.
TEST_F(CheckpointCoordinatorTest, AFollowerRestoresFromWhatItWasSentAndQueuesItsReportsForTheLink) {
  CheckpointCoordinator::Restored start{.completed = 4,
                                        .snapshots = {{"count#1", "b=2"}},
                                        .offsets = {{"lines", {{1, 30}}}}};
  CheckpointCoordinator f(options(), start);
  EXPECT_TRUE(f.follower());
  EXPECT_EQ(f.lastCompleted(), 4u);
  EXPECT_EQ(f.snapshot("count#1"), "b=2");
  EXPECT_EQ(f.snapshot("count#0"), std::nullopt);
  EXPECT_EQ(f.offsets("lines"), (PartitionOffsets{{1, 30}}));
  clock.advance(10s);
  EXPECT_EQ(f.due(), 4u) << "only the coordinator triggers";
  // A barrier from another worker may come before the coordinator's word that it triggered it.
  f.report(5, TaskReport{.task = 1, .source = "lines", .offsets = {{1, 42}}});
  EXPECT_EQ(f.due(), 5u);
  f.follow(5, 4, 0);
  EXPECT_EQ(f.due(), 5u);
  f.inputEnded();
  CheckpointCoordinator::Outbox out = f.takeOutbox();
  ASSERT_EQ(out.reports.size(), 1u);
  EXPECT_EQ(out.reports[0].first, 5u);
  EXPECT_EQ(out.reports[0].second.offsets, (PartitionOffsets{{1, 42}}));
  EXPECT_EQ(out.inputsEnded, 1);
  EXPECT_TRUE(f.takeOutbox().reports.empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a follower opens no checkpoint";

  std::thread sink([&] { EXPECT_TRUE(f.awaitCompleted(5)); });
  f.follow(5, 5, 0);
  sink.join();
  f.follow(4, 3, 0);
  EXPECT_EQ(f.lastCompleted(), 5u) << "an older message moves nothing back";
  EXPECT_EQ(f.finalCheckpointAfter(5), 0u) << "5 completed without being the final checkpoint";
  // A sink's end of stream after barrier 6, before the word that 6 is the final checkpoint.
  uint64_t final = 0;
  std::thread end([&] { final = f.finalCheckpointAfter(6); });
  f.follow(6, 5, 6);
  end.join();
  EXPECT_EQ(final, 6u);
  f.fail("worker 2 restarted");
  EXPECT_FALSE(f.awaitCompleted(6));
  EXPECT_THROW(f.due(), std::runtime_error);
}

// A report sent again (the link re-sends until it hears of completion) never stands in for a
// task that did not report.
TEST_F(CheckpointCoordinatorTest, AReportSentAgainCountsOnceAndNeverStandsInForAMissingTask) {
  CheckpointCoordinator c(options(), 2, 1);
  clock.advance(1s);
  ASSERT_EQ(c.due(), 1u);
  c.report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 4}}});
  c.report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 4}}});
  c.report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 4}}});
  EXPECT_EQ(c.lastCompleted(), 0u);
  EXPECT_EQ(StateStore::inspect(dir.path())->lastCommittedTxid(), 0u) << "task 1 never reported";
  c.report(1, TaskReport{.task = 1});
  ASSERT_TRUE(c.awaitCompleted(1));
}

// Flink's checkpointTimeout: a checkpoint a task never reports is aborted, said in the log and
// counted, and the next one is triggered at once; a late report of the aborted one is dropped.
TEST_F(CheckpointCoordinatorTest, ACheckpointNotCompleteWithinTheTimeoutIsAbortedAndTheNextTriggered) {
  auto o = options();
  o.timeout = 30s;
  CheckpointCoordinator c(o, 2, 1);
  clock.advance(1s);
  ASSERT_EQ(c.due(), 1u);
  c.report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 4}}});
  clock.advance(29s);
  EXPECT_EQ(c.due(), 1u);
  clock.advance(1s);
  EXPECT_EQ(c.due(), 2u) << "not aborted after its timeout";  // by due() or the watch
  EXPECT_EQ(c.timedOut(), 1u);
  c.report(1, TaskReport{.task = 1});  // the lost one, late
  c.report(2, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 6}}});
  EXPECT_EQ(StateStore::inspect(dir.path())->lastCommittedTxid(), 0u)
      << "a report of the aborted checkpoint counted for the next";
  c.report(2, TaskReport{.task = 1});
  ASSERT_TRUE(c.awaitCompleted(2));
  EXPECT_EQ(StateStore::inspect(dir.path())->committedOffsets().at("lines"),
            (PartitionOffsets{{0, 6}}));
  EXPECT_EQ(c.timedOut(), 1u);
}

TEST_F(CheckpointCoordinatorTest, AFinalCheckpointNotCompleteWithinTheTimeoutStopsTheJob) {
  auto o = options();
  o.timeout = 30s;
  CheckpointCoordinator c(o, 2, 1);
  c.inputEnded();
  ASSERT_EQ(c.due(), 1u);
  std::thread sink([&] { EXPECT_FALSE(c.awaitCompleted(1)); });
  clock.advance(30s);
  try {
    c.due();
  } catch (const std::runtime_error&) {  // the coordinator's own watch was first
  }
  sink.join();
  EXPECT_NE(c.failure().find("the final checkpoint"), std::string::npos) << c.failure();
  EXPECT_THROW(c.due(), std::runtime_error);
}

// Worker processes number a source's partitions each in its own order (Kafka partitions found
// while running): the checkpoint keys offsets by name, in the names' order, stored beside them.
TEST_F(CheckpointCoordinatorTest, OffsetsOfNamedPartitionsAreMergedByNameWhateverEachProcessNumberedThem) {
  CheckpointCoordinator c(options(), 2, 2);
  clock.advance(1s);
  ASSERT_EQ(c.due(), 1u);
  c.report(1, TaskReport{.task = 0, .source = "kafka", .offsets = {{0, 10}, {3, 30}},
                         .partitionIds = {"b/0", "b/1", "c/0", "a/0"}});
  c.report(1, TaskReport{.task = 1, .source = "kafka", .offsets = {{2, 21}, {3, 31}},
                         .partitionIds = {"a/0", "b/0", "b/1", "c/0"}});
  ASSERT_TRUE(c.awaitCompleted(1));
  auto store = StateStore::inspect(dir.path());
  EXPECT_EQ(store->snapshot("kafka/partitions"), "a/0\nb/0\nb/1\nc/0\n");
  EXPECT_EQ(store->committedOffsets().at("kafka"),
            (PartitionOffsets{{0, 30}, {1, 10}, {2, 21}, {3, 31}}));
  // A partition sorting first, new since: numbered after the others (numbers never move).
  clock.advance(1s);
  ASSERT_EQ(c.due(), 2u);
  EXPECT_THROW(c.report(2, TaskReport{.task = 0, .source = "kafka", .offsets = {{1, 5}},
                                      .partitionIds = {"a/0"}}),
               std::logic_error);
  c.report(2, TaskReport{.task = 0, .source = "kafka", .offsets = {{0, 11}, {3, 32}, {4, 1}},
                         .partitionIds = {"b/0", "b/1", "c/0", "a/0", "0/0"}});
  c.report(2, TaskReport{.task = 1, .source = "kafka", .offsets = {{2, 22}, {3, 33}},
                         .partitionIds = {"a/0", "b/0", "b/1", "c/0"}});
  ASSERT_TRUE(c.awaitCompleted(2));
  store = StateStore::inspect(dir.path());
  EXPECT_EQ(store->snapshot("kafka/partitions"), "a/0\nb/0\nb/1\nc/0\n0/0\n");
  EXPECT_EQ(store->committedOffsets().at("kafka"),
            (PartitionOffsets{{0, 32}, {1, 11}, {2, 22}, {3, 33}, {4, 1}}));
}

}  // namespace
}  // namespace gale
