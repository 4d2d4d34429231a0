// Micro-batch jobs over several workers (runMicroBatchWorker, batch/microbatch_worker.cpp), each
// worker with its own topology, sources and ZeroMQ context in this process, talking over ipc:// as
// separate processes would: one worker commits, the others' tasks' results and event times reach
// it over the link, and a lost worker stops every worker, after which the job started again
// resumes from its last commit. (The cluster test does the same with processes and tcp.)
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "../tests/exactly_once_word_count.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/log.h"
#include "click_view_join_for_test.h"
#include "temp_dir_for_test.h"
#include "topology_pipeline.h"
#include "workers_of_one_job_for_test.h"
#include "scoped_log_capture_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;

// A topology of T tasks over `workers` workers, round robin; the job is in worker T % workers.
struct Job : WorkersOfOneJob<MicroBatchWorker> {
  using Build = std::function<Topology()>;
  Job(int workers, Build build) : WorkersOfOneJob(workers), build(std::move(build)) {
    std::filesystem::create_directories(out());
  }
  ~Job() override { stopWorkers(); }  // before the directory and counters the workers write
  std::string chk() const { return tmp.sub("chk"); }
  std::string out() const { return tmp.sub("out"); }

  WorkerAssignment assignment(int self) const {
    WorkerAssignment a;
    for (int t = 0, n = build().taskCount(); t < n; ++t) a.workerOfTask.push_back(t % workers);
    for (int w = 0; w < workers; ++w)
      a.endpoints.push_back("ipc://" + tmp.sub("w" + std::to_string(w)));
    a.self = self;
    return a;
  }
  MicroBatch config() const {
    MicroBatch c = base;
    c.checkpoint = chk();
    c.onCommitPoint = [this](CommitPoint p, uint64_t txid) {
      if (p == CommitPoint::AfterCommit) committed = txid;
    };
    return c;
  }
  MicroBatchWorker launch(int w) override {
    return runMicroBatchWorker(build(), config(), assignment(w));
  }
  void waitAll() {
    for (int w = 0; w < workers; ++w) {
      ASSERT_TRUE(running[static_cast<size_t>(w)]) << "worker " << w;
      ASSERT_TRUE(worker(w).waitUntilDone(120s)) << "worker " << w << " did not end";
      EXPECT_EQ(worker(w).error(), "") << "worker " << w;
    }
  }

  Build build;
  MicroBatch base{.maxRecordsPerBatch = 400, .syncCommits = false};
  TempDir tmp;
  mutable std::atomic<uint64_t> committed{0};
};

// The committed FileSink output, file by file (part-<txid>-<task>): what each batch wrote.
std::map<std::string, std::multiset<std::string>> batchFiles(const std::string& out) {
  std::map<std::string, std::multiset<std::string>> files;
  for (const auto& e : std::filesystem::directory_iterator(out)) {
    std::ifstream in(e.path());
    auto& lines = files[e.path().filename().string()];
    for (std::string line; std::getline(in, line);) lines.insert(line);
  }
  return files;
}

// Micro-batch counts are emitted once per batch: each word's committed counts, in txid order,
// rise to its direct count (a batch lost or committed twice ends elsewhere), and the checkpoint
// consumed every sentence.
void expectEveryCountOnce(const std::string& chk, const std::string& out, int64_t total) {
  expectCommittedCounts(chk, out, total, [](const std::string& word,
                                            const std::vector<int64_t>& counts, int64_t n) {
    ASSERT_FALSE(counts.empty()) << word;
    EXPECT_TRUE(std::is_sorted(counts.begin(), counts.end()) &&
                std::adjacent_find(counts.begin(), counts.end()) == counts.end())
        << "word '" << word << "': a batch repeated";
    EXPECT_EQ(counts.back(), n) << "word '" << word << "'";
  });
}

TEST(MicroBatchOverWorkers, AWordCountOverThreeWorkersCommitsEveryCountOnce) {
  Job job(3, nullptr);
  job.build = [&] { return exactlyOnceWordCount(3000, job.out()); };
  job.startAll();
  ASSERT_TRUE(job.worker(2).coordinator());
  ASSERT_FALSE(job.worker(0).coordinator());
  job.waitAll();
  expectEveryCountOnce(job.chk(), job.out(), 3000);
  // The counts' tasks run in workers 1 (a follower) and 2: both snapshots are in the commit.
  auto snapshots = StateStore::inspect(job.chk())->snapshots();
  EXPECT_TRUE(snapshots.count("count#0"));
  EXPECT_TRUE(snapshots.count("count#1"));
  EXPECT_GT(job.committed.load(), 3u) << "several batches";
}

// The spout tasks run in worker 0 (a follower) and 1 (the job's; 7 tasks) and see different
// event times in a batch;
// the windows' rows must be those of the same job in one process, batch by batch. A watermark
// per worker would fire windows early in one worker and late in another.
TEST(MicroBatchOverWorkers, TheBatchWatermarkIsOneValueForTheWholeJob) {
  TempDir one;
  std::filesystem::create_directories(one.sub("out"));
  auto alone = runMicroBatch(windowedWordCount(one.sub("out"), 3000, 0),
                             MicroBatch{.checkpoint = one.sub("chk"), .maxRecordsPerBatch = 400,
                                        .syncCommits = false});
  alone.waitUntilDone();

  Job job(3, nullptr);
  job.build = [&] { return windowedWordCount(job.out(), 3000, 0); };
  job.startAll();
  job.waitAll();
  auto expected = batchFiles(one.sub("out"));
  auto seen = batchFiles(job.out());
  ASSERT_GT(expected.size(), 3u);
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(StateStore::inspect(job.chk())->committedWatermark(),
            StateStore::inspect(one.sub("chk"))->committedWatermark());
}

TEST(MicroBatchOverWorkers, ALostFollowerStopsEveryWorkerAndTheBatchInFlightIsReplayedUnderItsTxid) {
  const int64_t total = 20000;
  Job job(3, nullptr);
  job.build = [&] { return exactlyOnceWordCount(total, job.out(), nullptr, 2e4); };  // ~1 s
  job.startAll();
  for (int i = 0; i < 60000 && job.committed < 3; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_GE(job.committed.load(), 3u) << "no batch committed over three workers";

  // Worker 0 (tasks 0, 3 and 6: a spout, a split and a sink task) is lost and started again
  // while the others run on; worker 2 holds the job.
  ASSERT_NO_FATAL_FAILURE(job.loseWorkerZeroUntilTheOthersStop());
  uint64_t resumeAt = StateStore::inspect(job.chk())->lastCommittedTxid();

  job.restartTheOthers();
  job.waitAll();
  EXPECT_GT(StateStore::inspect(job.chk())->lastCommittedTxid(), resumeAt);
  // FileSink writes part-<txid>-<task>: a batch replayed under another txid would count twice.
  expectEveryCountOnce(job.chk(), job.out(), total);
}

// A stream join (incremental state: a head per task plus entries in the job's store) whose task
// join#0 ran in one process and then in a follower, which has no store: the entries it resumes
// from reach it in START, and those it changes go to the commit in its RESULT. The rows must be
// those of one process over the whole input, and the end of input must erase every entry.
TEST(MicroBatchOverWorkers, AFollowerResumesIncrementalStateItDidNotWrite) {
  constexpr int64_t kEvents = 600;
  // total -1: unbounded, and with the lookahead an available-now run reads exactly kEvents
  // without ending the input.
  auto events = [&](const std::string& name, int keys, int64_t total) {
    GeneratorSource::Options o{.name = name, .total = total, .unlimitedLookahead = kEvents};
    return std::make_shared<GeneratorSource>(
        kClickViewFields, [keys](int, int64_t off) { return clickViewEvent(keys, off); }, o);
  };
  auto topology = [&](MemoryStorePtr store, int64_t total) {
    TopologyBuilder b;
    declareClickViewJoin(b, events("clicks", 20, total), events("views", 30, total),
                         JoinType::FullOuter);
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("join");
    return b.build();
  };
  MicroBatch config{.trigger = BatchTrigger::availableNow(), .maxRecordsPerBatch = 60,
                    .syncCommits = false};

  TempDir oneDir;
  auto expected = std::make_shared<MemoryStore>();
  config.checkpoint = oneDir.sub("chk");
  runMicroBatch(topology(expected, 2 * kEvents), config).waitUntilDone();

  auto seen = std::make_shared<MemoryStore>();
  Job job(2, [&] { return topology(seen, 2 * kEvents); });
  job.base = config;
  config.checkpoint = job.chk();
  runMicroBatch(topology(seen, -1), config).waitUntilDone();  // the first half, in one process
  size_t entries = 0;
  StateStore::inspect(job.chk())->keyedState("$entries:join", StateKind::Plain)
      .forEach([&](std::string_view k, std::string_view) { return entries += k[0] == '0', true; });
  ASSERT_GT(entries, 0u) << "join#0 left no entries to resume from";

  // The second half over two workers: join#0 (task 2) in worker 0, a follower (the job: 5 % 2).
  job.startAll();
  ASSERT_FALSE(job.worker(0).coordinator());
  job.waitAll();
  EXPECT_EQ(rowsOf(*seen), rowsOf(*expected));
  size_t left = 0;
  StateStore::inspect(job.chk())->keyedState("$entries:join", StateKind::Plain)
      .forEach([&](std::string_view, std::string_view) { return ++left, true; });
  EXPECT_EQ(left, 0u) << "the end of input evicted every row, so every entry was erased";
}

// The coordinator's side of the link gets each message again and again (it is re-sent until
// acknowledged): an event time counts once per spout task, a result once per worker, so a batch
// finishes only once every task of the job is in it. Here the coordinator's worker (0) runs no
// task; worker 1 runs spout task 0 and the count, worker 2 spout task 1.
TEST(MicroBatchOverWorkers, ARepeatedResultOrEventTimeIsCountedOnce) {
  TempDir tmp;
  TopologyBuilder b;
  b.setSpout("sentences", wordCountSentences(10), 2);
  b.setBolt("count", CountWords{}, 1).shuffleGrouping("sentences");
  Topology topology = b.build();
  WorkerAssignment a{.workerOfTask = {1, 2, 1},
                     .endpoints = {"ipc://" + tmp.sub("w0"), "ipc://" + tmp.sub("w1"),
                                   "ipc://" + tmp.sub("w2")},
                     .self = 0};
  TopologyPipeline pipeline(topology, Continuous{.guarantee = Guarantee::None}, {},
                            TopologyPipeline::Worker{a, /*coordinator=*/true});
  std::vector<std::pair<uint64_t, BatchResult>> finished;
  std::mutex mutex;
  pipeline.start(
      RecoveredState{},
      [&](uint64_t txid, BatchResult r) {
        std::lock_guard lk(mutex);
        finished.emplace_back(txid, std::move(r));
      },
      [](std::exception_ptr) { ADD_FAILURE() << "the pipeline failed"; });
  BatchPlan plan{.txid = 1, .ranges = {{}}};
  pipeline.dispatch(plan);

  batchlink::EventTime e{.txid = 1, .spoutTask = 0, .source = 0, .maxEvent = {{0, 5}}};
  pipeline.reportEventTime(e);
  pipeline.reportEventTime(e);
  EXPECT_TRUE(pipeline.readyWatermarks().empty()) << "spout task 1 has not reported";
  e.spoutTask = 1;
  pipeline.reportEventTime(e);
  EXPECT_EQ(pipeline.readyWatermarks().size(), 1u);

  batchlink::Result r1{.txid = 1, .tasks = 2};
  r1.result.snapshots["count#0"] = "c";
  pipeline.reportRemote(1, r1);
  pipeline.reportRemote(1, r1);
  EXPECT_EQ(pipeline.heldFrom(1), std::vector<uint64_t>{1});
  {
    std::lock_guard lk(mutex);
    EXPECT_TRUE(finished.empty()) << "worker 2's spout task has not reported";
  }
  pipeline.reportRemote(2, batchlink::Result{.txid = 1, .tasks = 1});
  EXPECT_EQ(pipeline.heldFrom(2), std::vector<uint64_t>{1})
      << "finished but not committed: STATUS tells worker 2 to stop re-sending";
  pipeline.reportRemote(2, batchlink::Result{.txid = 1, .tasks = 1});  // re-sent before STATUS
  {
    std::lock_guard lk(mutex);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].first, 1u);
    EXPECT_EQ(finished[0].second.snapshots.at("count#0"), "c");
  }
  pipeline.committed(1);
  pipeline.reportRemote(1, r1);  // a late repeat of a committed batch
  EXPECT_TRUE(pipeline.heldFrom(1).empty());
  EXPECT_TRUE(pipeline.heldFrom(2).empty()) << "the repeat after the batch finished was kept";
  EXPECT_TRUE(pipeline.uncommittedPlans().empty());
  pipeline.stop();
}

// "word" in, ("word", 1) out; its task 0 throws at the end of batch 2.
class ThrowsInBatchTwo final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"word", "count"});
  }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<ThrowsInBatchTwo>(); }
  void open(const OperatorContext& c) override { task_ = c.taskIndex; }
  void onTuple(const Tuple& t, Emitter& out) override {
    out.emit(Values{t.getString(0), int64_t{1}});
  }
  void onBatchEnd(uint64_t txid, Emitter&) override {
    if (task_ == 0 && txid == 2) throw std::runtime_error("injected failure in batch 2");
  }

 private:
  int task_ = 0;
};

// The throwing task (count#0, task 4) runs in worker 1, a follower: it tells the job's worker,
// which stops every worker with its error at once (not "not heard for 10 s" later), and batch 2
// is not committed.
TEST(MicroBatchOverWorkers, AnOperatorThatThrowsInAFollowerStopsEveryWorkerWithItsError) {
  Job job(3, nullptr);
  job.build = [&] {
    return exactlyOnceWordCount(3000, job.out(), std::make_shared<ThrowsInBatchTwo>());
  };
  job.startAll();
  for (int w = 0; w < 3; ++w) {
    ASSERT_TRUE(job.worker(w).waitUntilDone(60s)) << "worker " << w << " ran on";
    EXPECT_NE(job.worker(w).error().find("injected failure in batch 2"), std::string::npos)
        << "worker " << w << ": " << job.worker(w).error();
  }
  EXPECT_EQ(StateStore::inspect(job.chk())->lastCommittedTxid(), 1u);
}

// A sentence source whose open() waits until the test lets it go.
class OpensWhenLetGo final : public SentenceSource {
 public:
  struct Gate {
    std::mutex mutex;
    std::condition_variable cv;
    bool opening = false;
    bool letGo = false;
  };
  explicit OpensWhenLetGo(std::shared_ptr<Gate> gate)
      : SentenceSource(Options{.partitions = 1, .total = 100}), gate_(std::move(gate)) {}
  void open(const Clock& clock) override {
    {
      std::unique_lock lk(gate_->mutex);
      gate_->opening = true;
      gate_->cv.notify_all();
      gate_->cv.wait(lk, [&] { return gate_->letGo; });
    }
    SentenceSource::open(clock);
  }

 private:
  std::shared_ptr<Gate> gate_;
};

// "word" in, nothing out; counts its tasks' open().
class CountsOpens final : public Operator {
 public:
  explicit CountsOpens(std::shared_ptr<std::atomic<int>> opens) : opens_(std::move(opens)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"word"}); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<CountsOpens>(opens_); }
  void open(const OperatorContext&) override { ++*opens_; }
  void onTuple(const Tuple&, Emitter&) override {}

 private:
  std::shared_ptr<std::atomic<int>> opens_;
};

// The job's worker (0) is killed while worker 1, a follower that has its START, still opens its
// sources: its link gets ABORT before its pipeline has started. The follower must stop with that
// error once its sources have opened, without launching its tasks; the ABORT must not call the
// pipeline's failure callback before start() set it (on the link's thread, racing start()).
TEST(MicroBatchOverWorkers, AnAbortWhileAFollowerOpensItsSourcesStopsItBeforeItsTasksStart) {
  auto topology = [](SourcePtr sentences, std::shared_ptr<std::atomic<int>> opens) {
    TopologyBuilder b;
    b.setSpout("sentences", std::move(sentences), 1);                          // task 0: worker 0
    b.setBolt("count", CountsOpens(std::move(opens)), 1).shuffleGrouping("sentences");  // task 1
    return b.build();
  };
  Job job(2, [&] { return topology(wordCountSentences(100), std::make_shared<std::atomic<int>>(0)); });
  // The job's worker launches its tasks without waiting for the follower's to come up.
  job.base.runtime.peerConnectTimeout = Duration::zero();
  auto gate = std::make_shared<OpensWhenLetGo::Gate>();
  auto followerOpens = std::make_shared<std::atomic<int>>(0);

  // Each link logs "micro-batch job over 2 workers: <why>" once when aborted; the job's first.
  setLogRepeatWindow(std::chrono::nanoseconds(0));  // the follower's line repeats the job's
  ScopedLogCapture captured;
  std::optional<MicroBatchWorker> follower;
  std::thread followerThread([&] {
    try {
      follower.emplace(runMicroBatchWorker(
          topology(std::make_shared<OpensWhenLetGo>(gate), followerOpens), job.config(),
          job.assignment(1)));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the follower threw: " << e.what();
    }
  });
  MicroBatchWorker lead = runMicroBatchWorker(job.build(), job.config(), job.assignment(0));
  ASSERT_TRUE(lead.coordinator());
  bool opening, bothAborted = false;
  {
    std::unique_lock lk(gate->mutex);
    opening = gate->cv.wait_for(lk, 60s, [&] { return gate->opening; });
  }
  if (opening) {
    lead.kill();
    bothAborted = captured.waitForLinesStartingWith("micro-batch job over 2 workers: ", 2, 60s);
  }
  // Whatever happened: the follower goes on.
  {
    std::lock_guard lk(gate->mutex);
    gate->letGo = true;
    gate->cv.notify_all();
  }
  followerThread.join();
  setLogRepeatWindow(std::chrono::seconds(1));
  ASSERT_TRUE(opening) << "the follower never opened its source";
  ASSERT_TRUE(bothAborted) << "the follower's link did not get ABORT";
  ASSERT_TRUE(follower);
  ASSERT_TRUE(follower->waitUntilDone(10s));
  EXPECT_NE(follower->error().find("killed"), std::string::npos) << follower->error();
  EXPECT_EQ(followerOpens->load(), 0) << "the follower launched its tasks after the job aborted";
}

TEST(MicroBatchOverWorkers, AJobThatCannotRunOverSeveralWorkersIsRefusedNamingWhy) {
  Job job(3, nullptr);
  job.build = [&] { return exactlyOnceWordCount(10, job.out()); };
  MicroBatch c = job.config();
  c.trigger = BatchTrigger::continuous();
  EXPECT_THROW(
      {
        try {
          runMicroBatchWorker(exactlyOnceWordCount(10, job.out()), c, job.assignment(0));
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("continuous trigger"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  WorkerAssignment a = job.assignment(0);
  a.endpoints.resize(9, a.endpoints[0]);  // 9 workers, 8 tasks
  EXPECT_THROW(runMicroBatchWorker(exactlyOnceWordCount(10, job.out()), job.config(), a),
               std::invalid_argument);
}

}  // namespace
}  // namespace gale
