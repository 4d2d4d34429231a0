// Exactly-once continuous mode over several workers (runWorker, checkpoint_link.h), each worker a
// RunningTopology of its own in this process with its own ZeroMQ context, talking over ipc://
// as separate processes would: the job's checkpoints gather every worker's snapshots and
// offsets, and a worker that is lost and started again makes every worker stop, after which the
// job started again resumes from its last checkpoint and commits every count once. (The cluster
// test does the same with processes, tcp and SIGKILL: cluster_system_test.)
#include <atomic>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "../tests/exactly_once_word_count.h"
#include "gale/core/log.h"
#include "gale/core/state_codec.h"
#include "private/checkpoint_link.h"
#include "private/worker_link.h"
#include "temp_dir_for_test.h"
#include "workers_of_one_job_for_test.h"
#include "scoped_log_capture_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;

// The word count (8 tasks) over `workers` workers: the checkpoint coordinator is task 8, in
// worker 8 % workers.
struct Job : WorkersOfOneJob<RunningTopology> {
  Job(int workers, int64_t total, double rate, std::shared_ptr<const Operator> count = nullptr)
      : WorkersOfOneJob(workers), total(total), rate(rate), count(std::move(count)) {
    std::filesystem::create_directories(out());
  }
  ~Job() override { stopWorkers(); }  // before the directory and counters the workers write
  std::string chk() const { return tmp.sub("chk"); }
  std::string out() const { return tmp.sub("out"); }

  WorkerAssignment assignment(int self) const {
    WorkerAssignment a;
    a.workerOfTask = roundRobin();
    for (int w = 0; w < workers; ++w) a.endpoints.push_back("ipc://" + tmp.sub("w" + std::to_string(w)));
    a.self = self;
    return a;
  }
  std::vector<int> roundRobin() const {
    std::vector<int> out;
    for (int t = 0; t < 8; ++t) out.push_back(t % workers);
    return out;
  }
  Continuous config() const {
    Continuous c{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = 10ms,
                 .checkpointDir = chk(), .checkpointSync = false};
    c.onCheckpointPoint = [this](CheckpointPoint p, uint64_t id) {
      if (p == CheckpointPoint::CheckpointWritten) written = id;
    };
    return c;
  }
  RunningTopology launch(int w) override {
    return runWorker(exactlyOnceWordCount(total, out(), count, rate), config(), assignment(w));
  }

  int64_t total;
  double rate;
  std::shared_ptr<const Operator> count;  // null: CountWords
  TempDir tmp;
  mutable std::atomic<uint64_t> written{0};  // the last checkpoint completed (coordinator)
};

TEST(ExactlyOnceOverWorkers, AWordCountOverThreeWorkersCommitsEveryCountOnce) {
  Job job(3, 3000, 0);
  job.startAll();
  for (int w = 0; w < 3; ++w) job.worker(w).waitUntilDone();
  expectExactlyOnce(job.chk(), job.out(), 3000);
  EXPECT_GE(job.written.load(), 1u) << "at least the final checkpoint";
}

void loseAWorkerAndResume(std::shared_ptr<const Operator> count) {
  const int64_t total = 20000;
  Job job(3, total, 2e4, std::move(count));  // 1 s of input, a checkpoint every 10 ms
  job.startAll();
  for (int i = 0; i < 60000 && job.written < 3; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_GE(job.written.load(), 3u) << "no checkpoint completed over three workers";

  // Worker 0 (tasks 0, 3 and 6: a spout, a split and a sink task) is lost, and started again
  // while the others run on past the checkpoint it would resume from; worker 2 holds the
  // coordinator (task 8).
  ASSERT_NO_FATAL_FAILURE(job.loseWorkerZeroUntilTheOthersStop());
  uint64_t resumeAt = StateStore::inspect(job.chk())->lastCommittedTxid();
  EXPECT_GE(resumeAt, 3u);

  // The others start again (worker 0 is waiting to join): the job resumes and finishes.
  job.restartTheOthers();
  for (int w = 0; w < 3; ++w) job.worker(w).waitUntilDone();
  EXPECT_GT(StateStore::inspect(job.chk())->lastCommittedTxid(), resumeAt);
  expectExactlyOnce(job.chk(), job.out(), total);
}

TEST(ExactlyOnceOverWorkers, ALostWorkerStopsEveryWorkerAndTheJobResumesFromItsLastCheckpoint) {
  loseAWorkerAndResume(nullptr);
}

// The count's tasks 4 and 5 run in worker 1 (a follower: its snapshot is serialized before it
// crosses the link, which carries bytes) and worker 2 (the coordinator's: written by its thread).
TEST(ExactlyOnceOverWorkers, AsynchronousSnapshotsOfEveryWorkerAreRestoredExactly) {
  loseAWorkerAndResume(std::make_shared<AsyncCountWords>());
}

// The windowed count (128 key groups) checkpointed by one process with 2 tasks resumes over three
// workers with 4: a new task needs the blob of the old task that held its groups, which ran
// elsewhere (new count#1 in worker 2 takes groups of old count#0, whose new namesake is in
// worker 1), so every worker gets every blob of a key-grouped component.
TEST(ExactlyOnceOverWorkers, ARescaledTaskGetsTheGroupsOfTasksThatRanInAnotherWorker) {
  TempDir tmp;
  const std::string chk = tmp.sub("chk"), out = tmp.sub("out");
  std::filesystem::create_directories(out);
  const int64_t total = 20000;
  const double rate = 1e5;
  std::atomic<uint64_t> written{0};
  Continuous c{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = 5ms,
               .checkpointDir = chk, .checkpointSync = false};
  c.onCheckpointPoint = [&](CheckpointPoint p, uint64_t id) {
    if (p == CheckpointPoint::CheckpointWritten) written = id;
  };
  {
    auto rt = runContinuous(windowedWordCount(out, total, rate, 2, 128), c);
    for (int i = 0; i < 60000 && written < 3; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_GE(written.load(), 3u);
    rt.kill();
  }
  const Topology four = windowedWordCount(out, total, rate, 4, 128);
  std::vector<std::optional<RunningTopology>> running(3);
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::string errors;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      WorkerAssignment a;
      for (int t = 0; t < four.taskCount(); ++t) a.workerOfTask.push_back(t % 3);
      for (int i = 0; i < 3; ++i)
        a.endpoints.push_back("ipc://" + tmp.sub("w" + std::to_string(i)));
      a.self = w;
      try {
        auto rt = runWorker(windowedWordCount(out, total, rate, 4, 128), c, a);
        std::lock_guard lk(mutex);
        running[static_cast<size_t>(w)].emplace(std::move(rt));
      } catch (const std::exception& e) {
        std::lock_guard lk(mutex);
        errors += std::string(e.what()) + "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(errors, "");
  ASSERT_EQ(four.at("count").firstTask, 4);  // count#1 is task 5: worker 2; count#0 task 4: 1
  for (auto& rt : running) rt->waitUntilDone();
  expectWindowsExactlyOnce(out, total);
}

// The link alone: the coordinator in worker 0 (the word count's 8 tasks over 2 workers: task 8
// is the coordinator's, in worker 0), a follower in worker 1, over ipc. The coordinator's clock
// is a manual one: only the test triggers checkpoints.
struct LinkPair {
  LinkPair() {
    std::filesystem::create_directories(tmp.sub("out"));
    for (int w = 0; w < 2; ++w)
      assignment.endpoints.push_back("ipc://" + tmp.sub("link" + std::to_string(w)));
    for (int t = 0; t < 8; ++t) assignment.workerOfTask.push_back(t % 2);
    coord = std::make_shared<CheckpointCoordinator>(
        CheckpointCoordinator::Options{.directory = tmp.sub("chk"), .jobId = "link",
                                       .interval = 1s, .clock = &clock, .sync = false},
        /*tasks=*/2, /*spoutTasks=*/1);
    WorkerAssignment a0 = assignment, a1 = assignment;
    a0.self = 0;
    a1.self = 1;
    std::thread t(
        [&] { followerLink = std::make_unique<CheckpointLink>(topology, a1, std::nullopt); });
    link = std::make_unique<CheckpointLink>(topology, a0, std::nullopt, coord);
    link->waitStarted();
    t.join();
    follower = std::make_shared<CheckpointCoordinator>(CheckpointCoordinator::Options{},
                                                       followerLink->waitStarted());
    followerLink->follow(follower);
  }
  template <class F>
  static bool eventually(F&& f) {
    for (int i = 0; i < 60000 && !f(); ++i) std::this_thread::sleep_for(1ms);
    return f();
  }
  TempDir tmp;
  ManualClock clock;
  Topology topology = exactlyOnceWordCount(10, tmp.sub("out"));
  WorkerAssignment assignment;
  std::shared_ptr<CheckpointCoordinator> coord, follower;
  std::unique_ptr<CheckpointLink> link, followerLink;
};

// Reports cross without waiting (a worker must not stall on the link), so one can be lost: the
// follower sends it again until the coordinator's word says the checkpoint completed.
TEST(CheckpointLinkTest, AReportLostOnTheWayIsSentAgainUntilTheCheckpointCompletes) {
  LinkPair p;
  p.clock.advance(1s);
  ASSERT_TRUE(LinkPair::eventually([&] { return p.coord->triggered() == 1; }));
  p.followerLink->loseNextReports(1);
  p.follower->report(1, TaskReport{.task = 1, .source = "lines", .offsets = {{0, 7}}});
  p.coord->report(1, TaskReport{.task = 0});
  ASSERT_TRUE(LinkPair::eventually([&] { return p.coord->lastCompleted() == 1; }))
      << "the lost report was not sent again";
  EXPECT_EQ(p.coord->offsets("lines"), (PartitionOffsets{{0, 7}}));
  ASSERT_TRUE(LinkPair::eventually([&] { return p.follower->lastCompleted() == 1; }));
}

TEST(CheckpointLinkTest, AnEndedInputLostOnTheWayIsSentAgainUntilTheFinalCheckpointIsTriggered) {
  LinkPair p;
  p.followerLink->loseNextReports(1);
  p.follower->inputEnded();
  ASSERT_TRUE(LinkPair::eventually([&] { return p.coord->finalCheckpoint() == 1; }))
      << "the lost ENDED was not sent again";
  p.follower->report(1, TaskReport{.task = 1, .source = "lines", .offsets = {{0, 3}}});
  p.coord->report(1, TaskReport{.task = 0});
  ASSERT_TRUE(LinkPair::eventually([&] { return p.follower->lastCompleted() == 1; }));
}

// A report counts for its task, and ENDED for the sender's spout tasks: a report naming another
// worker's task, or more inputs ended than the sender has spout tasks, counts for nothing (else a
// stray or damaged message could complete a checkpoint without a task, or end the job early).
TEST(CheckpointLinkTest, AReportOfAnotherWorkersTaskOrTooManyEndedInputsCountForNothing) {
  ScopedLogCapture captured;
  auto droppedSoFar = [&] {
    return captured.count("malformed message was dropped", LogLevel::Warn);
  };
  LinkPair p;
  p.clock.advance(1s);
  ASSERT_TRUE(LinkPair::eventually([&] { return p.coord->triggered() == 1; }));
  p.follower->report(1, TaskReport{.task = 0, .source = "lines", .offsets = {{0, 7}}});
  p.coord->report(1, TaskReport{.task = 1});
  ASSERT_TRUE(LinkPair::eventually([&] { return droppedSoFar() > 0; }));
  EXPECT_EQ(p.coord->lastCompleted(), 0u) << "worker 1's report of worker 0's task counted";
  const size_t before = droppedSoFar();
  p.follower->inputEnded();
  p.follower->inputEnded();  // worker 1 runs one spout task of "sentences"
  ASSERT_TRUE(LinkPair::eventually([&] { return droppedSoFar() > before; }));
  EXPECT_EQ(p.coord->finalCheckpoint(), 0u) << "two ended inputs of one spout task counted";
}

// A follower whose topology failed says so: the job stops at once, with the reason, rather than
// once the worker is silent for kSilence (10 s) or a checkpoint times out.
TEST(CheckpointLinkTest, AFollowerThatFailedStopsTheJobAtOnceSayingWhy) {
  LinkPair p;
  p.followerLink->workerFailed("bolt 'count' threw");
  ASSERT_TRUE(LinkPair::eventually([&] { return !p.coord->failure().empty(); }));
  EXPECT_EQ(p.coord->failure(), "worker 1 failed: bolt 'count' threw");
  EXPECT_THROW(p.coord->due(), std::runtime_error);
}

// A worker of an older build speaks the link's format 1, in which ENDED was a count of inputs
// ended since the last one, not a total: read as format 2 it would be counted wrongly. It is
// refused, naming the versions, and counts for nothing; format 2's ENDED over the same link does.
TEST(CheckpointLinkTest, AMessageOfTheOlderFormatIsRefusedNotMisread) {
  TempDir tmp;
  ManualClock clock;
  std::filesystem::create_directories(tmp.sub("out"));
  Topology topology = exactlyOnceWordCount(10, tmp.sub("out"));
  WorkerAssignment a0;
  for (int w = 0; w < 2; ++w) a0.endpoints.push_back("ipc://" + tmp.sub("link" + std::to_string(w)));
  for (int t = 0; t < 8; ++t) a0.workerOfTask.push_back(t % 2);
  WorkerAssignment a1 = a0;
  a1.self = 1;
  auto coord = std::make_shared<CheckpointCoordinator>(
      CheckpointCoordinator::Options{.directory = tmp.sub("chk"), .jobId = "link",
                                     .interval = 1s, .clock = &clock, .sync = false},
      /*tasks=*/2, /*spoutTasks=*/1);
  ScopedLogCapture captured;
  auto refused = [&] {
    return captured.count("malformed message was dropped", LogLevel::Warn) > 0;
  };
  std::atomic<int> format{1};
  {
    // The older worker: WorkerLink's membership is unchanged, its ENDED body is format 1's.
    WorkerLink older("GCKL", "exactly-once job", "the checkpoint coordinator",
                     topology.taskCount(), a1, std::nullopt, false,
                     {.onTick = [&](WorkerLink::Outbox& out) {
                       StateWriter w;
                       if (format == 2) w.header("GCKB", 2);
                       w.u8('E');
                       w.varint(1);
                       out.toCoordinator(w.take());
                     }});
    CheckpointLink link(topology, a0, std::nullopt, coord);
    older.start();
    link.waitStarted();
    ASSERT_TRUE(LinkPair::eventually(refused)) << "format 1's ENDED was not refused";
    EXPECT_EQ(coord->finalCheckpoint(), 0u) << "format 1's ENDED counted";
    format = 2;
    EXPECT_TRUE(LinkPair::eventually([&] { return coord->finalCheckpoint() == 1; }));
    older.stop();
  }
}

}  // namespace
}  // namespace gale
