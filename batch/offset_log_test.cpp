// The offset log file (offset_log_file.h) and how the job uses it: entries survive a reopen, a
// torn last record is dropped, a damaged middle record is refused, a held flush holds back the
// external commit of an ExactReplaySink but not the next batch, and a checkpoint with its offset
// log still in LMDB (before offsets.log) is replayed.
#include <fstream>

#include "gale/batch/microbatch.h"
#include "gale/core/operator.h"
#include "gale/topology/topology.h"
#include "job_test_util.h"
#include "offset_log.h"
#include "offset_log_file.h"
#include "topology_pipeline.h"

namespace gale {
namespace {

using namespace gale::testing;

using OffsetLogFileTest = CheckpointDirTest;

std::string readBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void writeBytes(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// Waits (real time, generous) until pred holds; false on timeout so the test fails, not hangs.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10000ms) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(200us);
  }
  return true;
}

OffsetLogFile::Options syncedOptions() {
  OffsetLogFile::Options o;
  o.sync = true;
  return o;
}

TEST_F(OffsetLogFileTest, AppendedEntriesAreReadBackAfterReopenTheLastOfATxidWinning) {
  fs::create_directories(dir);
  {
    OffsetLogFile log(dir.string(), syncedOptions());
    EXPECT_TRUE(log.recovered().empty());
    log.start(0);
    log.append(1, "src\t10\n");
    log.append(2, "src\t20\n");
    log.append(2, "src\t20\n#end-of-input\n");  // a replay logs its txid again
    EXPECT_TRUE(eventually([&] { return log.durableThrough() == 2; }));
  }
  OffsetLogFile log(dir.string(), syncedOptions());
  EXPECT_EQ(log.recovered(), (std::map<uint64_t, std::string>{
                                 {1, "src\t10\n"}, {2, "src\t20\n#end-of-input\n"}}));
  EXPECT_EQ(log.durableThrough(), 2u);
}

// A machine crash may cut the last append (it was never published as durable): it is dropped
// and cut off the file, so the next append follows a whole record.
TEST_F(OffsetLogFileTest, ATornLastRecordIsDroppedAndCutOffAndTheLogGoesOn) {
  fs::create_directories(dir);
  const fs::path file = dir / kOffsetLogFile;
  {
    OffsetLogFile log(dir.string(), syncedOptions());
    log.append(1, "src\t10\n");
    log.append(2, "src\t20\n");
  }
  const std::string whole = readBytes(file);
  for (size_t cut : {size_t{3}, size_t{12}, size_t{25}}) {  // in the header, in the payload
    SCOPED_TRACE(cut);
    writeBytes(file, whole.substr(0, whole.size() - cut));
    {
      OffsetLogFile log(dir.string(), syncedOptions());
      EXPECT_EQ(log.recovered(), (std::map<uint64_t, std::string>{{1, "src\t10\n"}}));
      EXPECT_EQ(fs::file_size(file), whole.size() / 2);  // two records of the same size
      log.append(3, "src\t30\n");
    }
    OffsetLogFile log(dir.string(), syncedOptions());
    EXPECT_EQ(log.recovered(),
              (std::map<uint64_t, std::string>{{1, "src\t10\n"}, {3, "src\t30\n"}}));
  }
  // A whole last record whose bytes are wrong (a torn page) is dropped too, as is the zeroed
  // end of a file extended without its data.
  writeBytes(file, whole.substr(0, whole.size() - 1) + "X");
  EXPECT_EQ(OffsetLogFile(dir.string(), syncedOptions()).recovered().size(), 1u);
  writeBytes(file, whole + std::string(100, '\0'));
  EXPECT_EQ(OffsetLogFile(dir.string(), syncedOptions()).recovered().size(), 2u);
}

TEST_F(OffsetLogFileTest, ARecordFailingItsChecksumWithRecordsAfterItIsADamagedCheckpoint) {
  fs::create_directories(dir);
  const fs::path file = dir / kOffsetLogFile;
  {
    OffsetLogFile log(dir.string(), syncedOptions());
    log.append(1, "src\t10\n");
    log.append(2, "src\t20\n");
  }
  std::string bytes = readBytes(file);
  bytes[bytes.size() / 2 - 3] ^= 0x01;  // the first record's payload
  writeBytes(file, bytes);
  try {
    OffsetLogFile log(dir.string(), syncedOptions());
    FAIL() << "a damaged record was read";
  } catch (const CheckpointDamaged& e) {
    EXPECT_EQ(e.file(), file.string());
    EXPECT_NE(std::string(e.what()).find("fails its checksum, and records follow it"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(readBytes(file), bytes);  // left as it was
}

TEST_F(OffsetLogFileTest, AHeldFlushHoldsDurabilityAndItsReleasePublishesIt) {
  fs::create_directories(dir);
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::vector<uint64_t> flushed;
  OffsetLogFile::Options o = syncedOptions();
  o.onPoint = [&](OffsetLogPoint p, uint64_t txid) {
    if (p != OffsetLogPoint::BeforeFlush) return;
    std::unique_lock lk(m);
    cv.wait(lk, [&] { return release; });
  };
  o.durable = [&](uint64_t txid, int64_t nanos) {
    std::lock_guard lk(m);
    flushed.push_back(txid);
    EXPECT_GE(nanos, 0);
  };
  OffsetLogFile log(dir.string(), o);
  log.start(0);
  log.append(1, "src\t10\n");  // returns although its flush is held
  log.append(2, "src\t20\n");
  EXPECT_EQ(log.durableThrough(), 0u);
  {
    std::lock_guard lk(m);
    release = true;
    cv.notify_all();
  }
  EXPECT_TRUE(eventually([&] { return log.durableThrough() == 2; }));
  std::lock_guard lk(m);
  ASSERT_FALSE(flushed.empty());
  EXPECT_EQ(flushed.back(), 2u);
}

TEST_F(OffsetLogFileTest, CompactionEmptiesTheFileOnceEveryEntryIsCommittedOrRewritesTheLiveOnes) {
  fs::create_directories(dir);
  const fs::path file = dir / kOffsetLogFile;
  OffsetLogFile::Options o = syncedOptions();
  o.compactBytes = 200;
  {
    OffsetLogFile log(dir.string(), o);
    log.start(0);
    for (uint64_t t = 1; t <= 10; ++t) log.append(t, "src\t" + std::to_string(t * 10) + "\n");
    EXPECT_GT(log.fileBytes(), 200u);
    log.committed(10);
    EXPECT_TRUE(eventually([&] { return log.fileBytes() == 0; }));
    // Batches always in flight (the file never empties): the live entries are rewritten.
    for (uint64_t t = 11; t <= 200; ++t) {
      log.append(t, "src\t" + std::to_string(t * 10) + "\n");
      log.committed(t - 2);
    }
    EXPECT_TRUE(eventually([&] { return log.fileBytes() < 16 * 200; }));
  }
  OffsetLogFile log(dir.string(), o);
  ASSERT_FALSE(log.recovered().empty());
  EXPECT_EQ(log.recovered().rbegin()->first, 200u);
  EXPECT_EQ(log.recovered().at(199), "src\t1990\n");
  EXPECT_EQ(log.recovered().at(200), "src\t2000\n");
  // The file stayed under 16 x compactBytes: at most that many bytes of records (~27 each),
  // obsolete ones included until the next rewrite, not all 200.
  EXPECT_LT(log.recovered().size(), 16u * 200 / 27 + 1);
}

using OffsetLogJobTest = Fixture;

// A checkpoint written before offsets.log keeps its offset log in LMDB: its entries are still
// replayed, cut to the logged offsets, and erased by their commits.
TEST_F(OffsetLogJobTest, AnOffsetLogStillInLmdbFromAnOlderCheckpointIsReplayedAndThenErased) {
  {
    StateStoreOptions so;
    so.jobId = "sum-job";
    so.sync = false;
    StateStore store(dir.string(), so);
    KeyedState& old = store.keyedState(kOffsetLogState, StateKind::Plain);
    store.applyBeforeCommit(1, old,
                            {{offsetLogKey(1), [v = encodeOffsets({{"src", {40}}}, false)](auto) {
                                return std::optional<std::string>(v);
                              }}});
  }
  auto src = std::make_shared<GrowingSource>(1);
  src->add(0, 100);
  MicroBatch cfg;
  cfg.offsetLog = true;
  cfg.trigger = BatchTrigger::availableNow();
  auto job = start(src, cfg);
  job.waitUntilDone();
  auto store = StateStore::inspect(dir.string());
  auto log = store->commitLog();
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[0].offsets.at("src").at(0), 40);  // the logged end, not the 100 available
  EXPECT_EQ(log.back().offsets.at("src").at(0), 100);
  size_t left = 0;
  store->keyedState(kOffsetLogState, StateKind::Plain).forEach([&](auto, auto) {
    ++left;
    return true;
  });
  EXPECT_EQ(left, 0u);
}

// Batch 1 is logged to offsets.log and fails; its replay is cut to the logged offsets even when
// the file ends in a torn record (the next batch's append, cut by a crash).
TEST_F(OffsetLogJobTest, AReplayIsCutToTheFilesEntryWhenATornRecordFollowsIt) {
  auto src = std::make_shared<GrowingSource>(1);
  src->add(0, 40);
  MicroBatch cfg;
  cfg.offsetLog = true;
  shared->failNext = true;
  {
    auto job = start(src, cfg);
    EXPECT_THROW(job.waitUntilDone(), std::runtime_error);
  }
  resetTerminated();
  {
    std::ofstream out(dir / kOffsetLogFile, std::ios::binary | std::ios::app);
    out << std::string("\x30\0\0\0\x02\0\0\0\0\0\0\0abc", 15);  // a header cut short
  }
  src->add(0, 60);
  shared = std::make_shared<SumPipeline::Shared>();
  cfg.trigger = BatchTrigger::availableNow();
  auto job = start(src, cfg);
  job.waitUntilDone();
  auto log = StateStore::inspect(dir.string())->commitLog();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0].offsets.at("src").at(0), 40);
  EXPECT_EQ(log.back().offsets.at("src").at(0), 100);
}

TEST_F(OffsetLogJobTest, ADamagedOffsetLogRefusesTheJobNamingTheFile) {
  auto src = std::make_shared<GrowingSource>(1);
  MicroBatch cfg;
  cfg.offsetLog = true;
  {
    StateStoreOptions so;  // the checkpoint exists; its offset log is then damaged
    so.jobId = "sum-job";
    so.sync = false;
    StateStore store(dir.string(), so);
  }
  {
    OffsetLogFile log(dir.string(), syncedOptions());
    log.append(1, "src\t10\n");
    log.append(2, "src\t20\n");
  }
  std::string bytes = readBytes(dir / kOffsetLogFile);
  bytes[5] ^= 0x10;  // the first record's txid
  writeBytes(dir / kOffsetLogFile, bytes);
  try {
    start(src, cfg);
    FAIL() << "the job started on a damaged offset log";
  } catch (const CheckpointDamaged& e) {
    EXPECT_NE(std::string(e.what()).find(kOffsetLogFile), std::string::npos) << e.what();
  }
}

// --- a held flush, through the real topology runtime ---

struct Trace {
  std::mutex m;
  std::condition_variable cv;
  std::vector<uint64_t> upstreamEnded;  // batch ends seen by the bolt before the sink
  std::vector<uint64_t> sinkCommitted;  // the sink's "external commits" (its onBatchEnd)
  std::vector<uint64_t> appended;       // offset log entries written
  int sinkExecuted = 0;
  bool holdFlush = true;
};

class PassBolt : public Bolt {
 public:
  explicit PassBolt(std::shared_ptr<Trace> t) : t_(std::move(t)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<PassBolt>(t_); }
  void execute(const Tuple& in, OutputCollector& out) override { out.emit(in, {in.get(0)}); }
  void onBatchEnd(uint64_t txid, OutputCollector&) override {
    std::lock_guard lk(t_->m);
    t_->upstreamEnded.push_back(txid);
    t_->cv.notify_all();
  }
  std::shared_ptr<Trace> t_;
};

// Stands for the Kafka sink: its onBatchEnd is the external commit a replay cannot undo.
class CommittingSink : public Bolt, public ExactReplaySink {
 public:
  explicit CommittingSink(std::shared_ptr<Trace> t) : t_(std::move(t)) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<CommittingSink>(t_); }
  void execute(const Tuple&, OutputCollector&) override {
    std::lock_guard lk(t_->m);
    ++t_->sinkExecuted;
    t_->cv.notify_all();
  }
  void onBatchEnd(uint64_t txid, OutputCollector&) override {
    std::lock_guard lk(t_->m);
    t_->sinkCommitted.push_back(txid);
    t_->cv.notify_all();
  }
  std::shared_ptr<Trace> t_;
};

TEST_F(OffsetLogJobTest, AHeldFlushDelaysTheSinksCommitButNotTheNextBatchsCutAndRun) {
  auto t = std::make_shared<Trace>();
  auto src = std::make_shared<GrowingSource>(1);
  src->add(0, 10);
  TopologyBuilder b;
  b.setSpout("src", src, 1);
  b.setBolt("pass", PassBolt(t), 1).shuffleGrouping("src");
  b.setBolt("sink", CommittingSink(t), 1).shuffleGrouping("pass");
  MicroBatch cfg;
  cfg.checkpoint = dir.string();
  cfg.syncCommits = true;       // the flush is real, and the sink waits for it
  cfg.maxBatchesInFlight = 2;   // the next batch may be cut while one waits for its commit
  // Each component on a thread of its own: fused into the sink's thread, the bolt before it
  // would wait with it (the Kafka compare's layout: there the next batch is cut, and runs once
  // the sink has committed).
  cfg.runtime.fusion = false;
  cfg.onOffsetLog = [t](OffsetLogPoint p, uint64_t txid) {
    std::unique_lock lk(t->m);
    if (p == OffsetLogPoint::AfterAppend) t->appended.push_back(txid);
    if (p == OffsetLogPoint::BeforeFlush) t->cv.wait(lk, [&] { return !t->holdFlush; });
    t->cv.notify_all();
  };
  auto job = runMicroBatch(b.build(), cfg);
  auto waitFor = [&](auto pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lk(t->m);
    return t->cv.wait_for(lk, timeout, pred);
  };
  ASSERT_TRUE(waitFor([&] { return !t->appended.empty(); }));
  src->add(0, 10);  // batch 2's data, while batch 1's flush is held
  ASSERT_TRUE(waitFor([&] {
    return std::count(t->upstreamEnded.begin(), t->upstreamEnded.end(), 2u) == 1;
  })) << "batch 2 was not cut and run while batch 1's flush was held: appended "
         << t->appended.size() << ", upstream ended " << t->upstreamEnded.size()
         << ", in flight " << job.progress().lastTxid;
  // Batch 2's tuples are on their way to the sink: without the wait for durability it would
  // commit batch 1 and run them; with it, it holds at batch 1's end. (A bounded wait for what
  // must not happen.)
  waitFor([&] { return !t->sinkCommitted.empty() || t->sinkExecuted == 20; }, 1s);
  {
    std::lock_guard lk(t->m);
    EXPECT_TRUE(t->sinkCommitted.empty()) << "the sink committed before its batch was durable";
    EXPECT_EQ(t->sinkExecuted, 10);
    EXPECT_EQ(t->appended, (std::vector<uint64_t>{1, 2}));
    t->holdFlush = false;
    t->cv.notify_all();
  }
  ASSERT_TRUE(waitFor([&] { return t->sinkCommitted.size() == 2; }));
  EXPECT_EQ(t->sinkCommitted, (std::vector<uint64_t>{1, 2}));
  ASSERT_TRUE(eventually([&] { return job.progress().lastTxid == 2; }));
  job.stop();
  job.waitUntilDone();
  EXPECT_GE(job.progress().offsetLogFlushNanos.count(), 1u);
}

// Over several workers a follower's sink cannot see the coordinator's flush: the coordinator's
// link sends a plan (TopologyPipeline::uncommittedPlans) only once its entry is durable.
TEST_F(OffsetLogJobTest, ACoordinatorHandsFollowersOnlyPlansWhoseEntryIsDurable) {
  auto t = std::make_shared<Trace>();
  auto src = std::make_shared<GrowingSource>(1);
  TopologyBuilder b;
  b.setSpout("src", src, 1);
  b.setBolt("sink", CommittingSink(t), 1).shuffleGrouping("src");
  TopologyPipeline pipeline(b.build(), Continuous{});
  RecoveredState recovered;
  recovered.offsetLogDurable = 0;
  std::atomic<int> finished{0};
  pipeline.start(recovered, [&](uint64_t, BatchResult) { ++finished; }, [](std::exception_ptr) {});
  BatchPlan plan;
  plan.txid = 1;
  plan.ranges = {{}};
  pipeline.dispatch(plan);
  EXPECT_TRUE(pipeline.uncommittedPlans().empty());
  pipeline.offsetLogDurable(1);
  ASSERT_EQ(pipeline.uncommittedPlans().size(), 1u);
  EXPECT_EQ(pipeline.uncommittedPlans()[0]->txid, 1u);
  EXPECT_TRUE(eventually([&] { return finished.load() == 1; }));
  pipeline.stop();
}

}  // namespace
}  // namespace gale
