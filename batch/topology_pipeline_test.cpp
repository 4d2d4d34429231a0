// Micro-batch mode through the real topology runtime: batch spouts, in-band batch markers,
// wrapped operator bolts, LMDB commits.
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

#include "batch_test_ops.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/aggregate.h"
#include "gale/core/window.h"
#include "topology_pipeline.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

struct TopologyBatchTest : ::testing::Test {
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("gale-tp-test-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
  }
  void TearDown() override {
    resetTerminated();
    fs::remove_all(dir);
  }
  fs::path dir;
};

// A sentence source whose visible length the test controls (so a second run can find more data).
class GrowingSentences : public Source {
 public:
  explicit GrowingSentences(int partitions) : avail_(partitions) {}
  // The test thread grows the source while the job's threads read it.
  void set(std::vector<int64_t> avail) {
    std::lock_guard lk(mutex_);
    avail_ = std::move(avail);
  }
  std::string name() const override { return "growing-sentences"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"sentence"});
  }
  int partitions() const override {
    std::lock_guard lk(mutex_);
    return static_cast<int>(avail_.size());
  }
  int64_t available(int p) override {
    std::lock_guard lk(mutex_);
    return avail_[p];
  }
  size_t read(int p, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o) out.push_back({o, {sentence(p, o)}, 0});
    return static_cast<size_t>(to - from);
  }
  Value sentence(int p, int64_t o) const {
    return SentenceSource::sentenceAt(o * partitions() + p);
  }
  std::vector<std::string> all() const {
    std::vector<int64_t> avail;
    {
      std::lock_guard lk(mutex_);
      avail = avail_;
    }
    std::vector<std::string> v;
    for (int p = 0; p < static_cast<int>(avail.size()); ++p)
      for (int64_t o = 0; o < avail[p]; ++o) v.push_back(std::get<std::string>(sentence(p, o)));
    return v;
  }
  mutable std::mutex mutex_;
  std::vector<int64_t> avail_;
};

// The latest count per word over the committed batches of a memory store (txid order).
std::map<std::string, int64_t> latestCounts(const MemoryStore& store) {
  std::map<std::string, int64_t> m;
  for (uint64_t txid : store.txids()) {
    for (const auto& row : store.batch(txid)) {
      m[std::get<std::string>(row.values[0])] = std::get<int64_t>(row.values[1]);
    }
  }
  return m;
}

Topology wordCount(SourcePtr src, MemoryStorePtr store, int spoutTasks = 2) {
  TopologyBuilder b;
  b.setSpout("sentences", src, spoutTasks);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  b.setBolt("count", CountWords{}, 2).fieldsGrouping("split", Fields{"word"});
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("count");
  return b.build();
}

TEST_F(TopologyBatchTest, WordCountAvailableNowEqualsADirectCountWithEveryBatchCommitted) {
  auto src = std::make_shared<GrowingSentences>(3);
  src->set({400, 350, 377});
  auto store = std::make_shared<MemoryStore>();
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 200;
  cfg.name = "wc";
  auto job = runMicroBatch(wordCount(src, store), cfg);
  ASSERT_TRUE(job.waitUntilDone(20s));
  auto p = job.progress();
  EXPECT_EQ(p.records, 1127u);
  EXPECT_EQ(p.batches, 6u);  // ceil(1127 / 200)
  EXPECT_EQ(p.lastTxid, 6u);
  EXPECT_EQ(latestCounts(*store), directWordCount(src->all()));
  EXPECT_EQ(store->txids().size(), 6u);
  EXPECT_EQ(store->replacedBatches(), 0u);
  resetTerminated();
  auto st = StateStore::inspect(dir.string());
  auto log = st->commitLog();
  ASSERT_EQ(log.size(), 6u);
  for (size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i].txid, i + 1);
  EXPECT_EQ(log.back().offsets.at("sentences"), (PartitionOffsets{{0, 400}, {1, 350}, {2, 377}}));
  EXPECT_EQ(st->snapshots().size(), 2u);  // count#0 and count#1
  EXPECT_EQ(st->sinkCommittedTxid("sink"), 6u);
}

TEST_F(TopologyBatchTest, AJobOverABoundedSourceEndsOnItsOwnOnceTheEndOfInputIsCommitted) {
  // A processing-time trigger never stops by itself; the end of a bounded input does, as in
  // continuous mode. The last window-less word counts still equal a direct count.
  SentenceSource::Options so;
  so.partitions = 2;
  so.total = 900;
  auto src = std::make_shared<SentenceSource>(so);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("sentences", src, 2);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  b.setBolt("count", CountWords{}, 2).fieldsGrouping("split", Fields{"word"});
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("count");
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(20ms);
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 300;
  auto job = runMicroBatch(b.build(), cfg);
  ASSERT_TRUE(job.waitUntilDone(20s)) << "the job did not end at the end of its bounded input";
  EXPECT_EQ(job.progress().records, 900u);
  std::vector<std::string> all;
  for (int64_t g = 0; g < 900; ++g) all.push_back(SentenceSource::sentenceAt(g));
  EXPECT_EQ(latestCounts(*store), directWordCount(all));
  resetTerminated();
}

TEST_F(TopologyBatchTest, OverlappingBatchesThroughTheRuntimeCommitInTxidOrderWithExactResults) {
  auto src = std::make_shared<GrowingSentences>(4);
  src->set({500, 500, 500, 500});
  auto store = std::make_shared<MemoryStore>();
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 100;
  cfg.maxBatchesInFlight = 4;
  std::vector<uint64_t> order;
  std::mutex m;
  cfg.onCommitPoint = [&](CommitPoint p, uint64_t txid) {
    if (p != CommitPoint::AfterCommit) return;
    std::lock_guard lk(m);
    order.push_back(txid);
  };
  auto job = runMicroBatch(wordCount(src, store, 3), cfg);
  ASSERT_TRUE(job.waitUntilDone(20s));
  std::vector<uint64_t> expected(20);
  for (uint64_t i = 0; i < 20; ++i) expected[i] = i + 1;
  EXPECT_EQ(order, expected);
  EXPECT_EQ(latestCounts(*store), directWordCount(src->all()));
}

TEST_F(TopologyBatchTest, ARestartContinuesFromTheCommittedSnapshotsAndOffsets) {
  auto src = std::make_shared<GrowingSentences>(2);
  src->set({300, 300});
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 250;
  auto store1 = std::make_shared<MemoryStore>();
  {
    auto job = runMicroBatch(wordCount(src, store1), cfg);
    ASSERT_TRUE(job.waitUntilDone(20s));
  }
  resetTerminated();
  src->set({500, 420});
  auto store2 = std::make_shared<MemoryStore>();
  auto job = runMicroBatch(wordCount(src, store2), cfg);
  ASSERT_TRUE(job.waitUntilDone(20s));
  EXPECT_EQ(job.progress().records, 320u);
  EXPECT_EQ(store2->txids().front(), 4u);  // 600 records in 3 batches before
  auto counts = latestCounts(*store1);
  for (auto& [w, c] : latestCounts(*store2)) counts[w] = c;
  EXPECT_EQ(counts, directWordCount(src->all()));
}

TEST_F(TopologyBatchTest, ProcessingTimeTriggerWithAManualClockCutsOnlyOnTicksWithNewData) {
  auto src = std::make_shared<GrowingSentences>(1);
  auto store = std::make_shared<MemoryStore>();
  ManualClock clock(Timestamp{1'000'000});
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(100ms);
  cfg.checkpoint = dir.string();
  cfg.clock = &clock;
  auto job = runMicroBatch(wordCount(src, store, 1), cfg);
  src->set({10});
  clock.advance(100ms);
  auto waitBatches = [&](uint64_t n) {
    for (int i = 0; i < 2000 && job.progress().batches < n; ++i) std::this_thread::sleep_for(1ms);
    return job.progress().batches;
  };
  EXPECT_EQ(waitBatches(1), 1u);
  clock.advance(100ms);  // a tick without data: no batch
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(job.progress().batches, 1u);
  src->set({15});
  std::this_thread::sleep_for(20ms);  // data but no tick yet
  EXPECT_EQ(job.progress().batches, 1u);
  clock.advance(100ms);
  EXPECT_EQ(waitBatches(2), 2u);
  job.stop();
  job.waitUntilDone();
  EXPECT_EQ(job.progress().records, 15u);
  EXPECT_EQ(latestCounts(*store), directWordCount(src->all()));
}

TEST_F(TopologyBatchTest, WindowOutputPerBatchMatchesContinuousModeForTheSameOperator) {
  // Event time advances 1 ms per record (in order, so no tuple is late in either mode); words
  // counted in 50 ms tumbling windows, append mode.
  GeneratorSource::Options o;
  o.name = "events";
  o.partitions = 1;
  o.total = 2000;
  auto gen = [](int p, int64_t off) {
    int64_t g = off + p;
    return Values{std::string(1, static_cast<char>('a' + g % 5)), Timestamp{g * 1000}};
  };
  Fields fields{{"word", Type::String}, {"ts", Type::Timestamp}};
  auto window = windowed(Tumbling(50ms), Count{})
                    .keyBy({"word"})
                    .eventTime("ts")
                    .outputMode(OutputMode::Append)
                    .build();
  auto build = [&](MemoryStorePtr store) {
    TopologyBuilder b;
    b.setSpout("events", std::make_shared<GeneratorSource>(fields, gen, o), 1)
        .withWatermark("ts", 5ms);
    b.setBolt("window", *window, 2).fieldsGrouping("events", Fields{"word"});
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("window");
    return b.build();
  };
  auto contStore = std::make_shared<MemoryStore>();
  {
    Continuous c;
    c.acking = false;
    auto running = runContinuous(build(contStore), c);
    ASSERT_TRUE(running.waitUntilDone(20s));
  }
  auto batchStore = std::make_shared<MemoryStore>();
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 300;
  auto job = runMicroBatch(build(batchStore), cfg);
  ASSERT_TRUE(job.waitUntilDone(20s));
  auto wm = job.progress().watermark;
  ASSERT_TRUE(wm.has_value());
  // Continuous mode also fires the windows left at the end of input; micro-batch mode keeps them
  // in state for the next run. Every window that closed before the last batch watermark matches.
  auto rowsUpTo = [&](const MemoryStore& s) {
    std::multiset<std::string> rows;
    for (const auto& r : s.rows()) {
      if (std::get<Timestamp>(r.values[2]) <= *wm) {
        rows.insert(toString(r.values[0]) + "@" + toString(r.values[1]) + "=" +
                    toString(r.values[3]));
      }
    }
    return rows;
  };
  auto batchRows = rowsUpTo(*batchStore);
  EXPECT_EQ(batchRows, rowsUpTo(*contStore));
  EXPECT_EQ(batchRows.size(), batchStore->size());  // micro-batch emitted no window past it
  EXPECT_GT(batchRows.size(), 100u);
  EXPECT_GE(wm->micros, 1'900'000);  // max event time 1999 ms - 5 ms delay
}

// A spout task resumes from its own max event time, not from the committed (minimum) watermark:
// a batch replayed after a failure then computes the same watermark as its first attempt (an
// exactly-once sink that skips replayed txids relies on the replay's output being the same).
TEST_F(TopologyBatchTest, AReplayedBatchHasTheSameWatermarkAsItsFirstAttempt) {
  // Partition 0: 50 records, the first one late in event time (1000 ms), then 1, 2, ... ms;
  // partition 1: 10 records. Batch 2 reads partition 0 alone, so its watermark is task 0's own
  // max event time.
  struct TsSource final : Source {
    std::string name() const override { return "ts"; }
    void declareOutputFields(OutputFieldsDeclarer& d) const override {
      d.declare(Fields{{"word", Type::String}, {"ts", Type::Timestamp}});
    }
    int partitions() const override { return 2; }
    int64_t available(int p) override { return p == 0 ? 50 : 10; }
    size_t read(int p, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
      for (int64_t o = from; o < to; ++o) {
        int64_t ms = (p == 0 && o == 0) ? 1000 : o;
        out.push_back({o, {std::string("k"), Timestamp{ms * 1000}}, 1});
      }
      return static_cast<size_t>(to - from);
    }
    bool finished() const override { return true; }
  };
  static std::atomic<bool> failTxid2{false};
  struct FailOnce final : Operator {
    void declareOutputFields(OutputFieldsDeclarer&) const override {}
    std::unique_ptr<Operator> clone() const override { return std::make_unique<FailOnce>(); }
    void onTuple(const Tuple&, Emitter&) override {}
    void onBatchEnd(uint64_t txid, Emitter&) override {
      if (txid == 2 && failTxid2.exchange(false)) throw std::runtime_error("fail batch 2 once");
    }
  };
  auto build = [&] {
    TopologyBuilder b;
    b.setSpout("events", std::make_shared<TsSource>(), 2).withWatermark("ts", 1ms);
    b.setBolt("sink", FailOnce{}, 1).shuffleGrouping("events");
    return b.build();
  };
  auto watermarkOf2 = [&](bool failFirst) {
    fs::remove_all(dir);
    MicroBatch cfg;
    cfg.trigger = BatchTrigger::availableNow();
    cfg.checkpoint = dir.string();
    cfg.maxRecordsPerBatch = 20;  // batch 1: 10 + 10; batches 2, 3: 20 of partition 0
    failTxid2 = failFirst;
    if (failFirst) {
      EXPECT_THROW(runMicroBatch(build(), cfg).waitUntilDone(), std::runtime_error);
      resetTerminated();
    }
    runMicroBatch(build(), cfg).waitUntilDone();
    resetTerminated();
    for (const auto& c : StateStore::inspect(dir.string())->commitLog()) {
      if (c.txid == 2) return c.watermark.value_or(Timestamp{-1}).micros;
    }
    return int64_t{-2};
  };
  int64_t straight = watermarkOf2(false);
  EXPECT_EQ(straight, 999'000);  // task 0's max (1000 ms) - 1 ms; task 1 idle
  EXPECT_EQ(watermarkOf2(true), straight);
}

TEST_F(TopologyBatchTest, AnOperatorThatThrowsFailsTheJobAndTheBatchIsNotCommitted) {
  auto src = std::make_shared<GrowingSentences>(1);
  src->set({50});
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("sentences", src, 1);
  b.setBolt("split", SplitWords{}, 1).shuffleGrouping("sentences");
  b.setBolt("count", CountWords(true, SentenceSource::sentenceAt(0).substr(0, SentenceSource::sentenceAt(0).find(' '))), 1)
      .shuffleGrouping("split");
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.name = "thrower";
  auto job = runMicroBatch(b.build(), cfg);
  try {
    job.waitUntilDone(20s);
    FAIL() << "the job must fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("refused word"), std::string::npos) << e.what();
  }
  EXPECT_EQ(job.progress().batches, 0u);
  resetTerminated();
  EXPECT_EQ(StateStore::inspect(dir.string())->lastCommittedTxid(), 0u);
}

class CustomSpout : public Spout {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"x"}); }
  std::unique_ptr<Spout> clone() const override { return std::make_unique<CustomSpout>(); }
  bool nextTuple(SpoutOutputCollector&) override { return false; }
};

TEST_F(TopologyBatchTest, ACustomSpoutIsRefusedBecauseBatchesNeedReplayableSources) {
  TopologyBuilder b;
  b.setSpout("mine", CustomSpout{}, 1);
  b.setBolt("split", SplitWords{}, 1).shuffleGrouping("mine");
  MicroBatch cfg;
  cfg.checkpoint = dir.string();
  cfg.name = "custom";
  try {
    runMicroBatch(b.build(), cfg);
    FAIL();
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'custom'"), std::string::npos) << m;
    EXPECT_NE(m.find("spout 'mine'"), std::string::npos) << m;
  }
}

TEST_F(TopologyBatchTest, ACheckpointOfAnotherTopologyIsRefused) {
  auto src = std::make_shared<GrowingSentences>(1);
  auto store = std::make_shared<MemoryStore>();
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.name = "job-a";
  runMicroBatch(wordCount(src, store, 1), cfg).waitUntilDone();
  resetTerminated();
  cfg.name = "job-b";
  try {
    runMicroBatch(wordCount(src, store, 2), cfg);  // another parallelism: another structure
    FAIL();
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("'job-b'"), std::string::npos) << e.what();
  }
}

TEST_F(TopologyBatchTest, ContinuousTriggerRunsTheTopologyInContinuousMode) {
  GeneratorSource::Options o;
  o.total = 100;
  auto gen = [](int, int64_t off) { return Values{SentenceSource::sentenceAt(off)}; };
  auto src = std::make_shared<GeneratorSource>(Fields{"sentence"}, gen, o);
  auto store = std::make_shared<MemoryStore>();
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::continuous();
  cfg.name = "cont";
  auto job = runMicroBatch(wordCount(src, store, 1), cfg);
  ASSERT_TRUE(job.waitUntilDone(20s));
  EXPECT_TRUE(store->txids().empty());  // no batches
  std::vector<std::string> all;
  for (int i = 0; i < 100; ++i) all.push_back(SentenceSource::sentenceAt(i));
  std::map<std::string, int64_t> last;
  for (const auto& r : store->rows()) last[toString(r.values[0])] = std::get<int64_t>(r.values[1]);
  EXPECT_EQ(last, directWordCount(all));
}

}  // namespace
}  // namespace gale
