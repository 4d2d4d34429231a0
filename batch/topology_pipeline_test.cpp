// Micro-batch mode through the real topology runtime: batch spouts, in-band batch markers,
// wrapped operator bolts, LMDB commits.
#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "click_view_join_for_test.h"
#include "batch_test_ops.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/aggregate.h"
#include "gale/core/dedup.h"
#include "gale/core/log.h"
#include "gale/core/stream_join.h"
#include "gale/core/window.h"
#include "job_wait_test_util.h"
#include "topology_pipeline.h"
#include "scoped_log_capture_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

struct TopologyBatchTest : testing::CheckpointDirTest {
  // Runs the topology `build` makes over a bounded input twice: in continuous mode (acking off)
  // into `cont`, and in micro-batch mode (available-now, `maxRecordsPerBatch`) into `batch`.
  // Returns the micro-batch job's progress.
  BatchProgress runBothModes(const std::function<Topology(MemoryStorePtr)>& build,
                             int64_t maxRecordsPerBatch, MemoryStorePtr cont,
                             MemoryStorePtr batch) {
    Continuous c;
    c.acking = false;
    auto running = runContinuous(build(cont), c);
    EXPECT_TRUE(running.waitUntilDone(20s));
    MicroBatch cfg;
    cfg.trigger = BatchTrigger::availableNow();
    cfg.checkpoint = dir.string();
    cfg.maxRecordsPerBatch = maxRecordsPerBatch;
    auto job = runMicroBatch(build(batch), cfg);
    EXPECT_TRUE(job.waitUntilDone(20s));
    return job.progress();
  }
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
    // Real time, generous: a loaded machine makes 2000 sleeps of 1 ms last long, not short.
    auto end = std::chrono::steady_clock::now() + 20s;
    while (job.progress().batches < n && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(1ms);
    return job.progress().batches;
  };
  EXPECT_EQ(waitBatches(1), 1u);
  clock.advance(100ms);  // a tick without data: no batch
  // The job must have seen that tick before the data arrives, or cutting at it would be right.
  ASSERT_TRUE(jobHasLooked(job));
  EXPECT_EQ(job.progress().batches, 1u);
  src->set({15});
  ASSERT_TRUE(jobHasLooked(job));  // data but no tick yet
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
  auto batchStore = std::make_shared<MemoryStore>();
  BatchProgress progress = runBothModes(build, 300, contStore, batchStore);
  ASSERT_FALSE(HasFailure());
  auto wm = progress.watermark;
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

// One partition of (key, ts) events whose visible length the test controls; record o has event
// time base + o * 10 ms.
class GrowingEvents : public Source {
 public:
  GrowingEvents(std::string key, Timestamp base) : key_(std::move(key)), base_(base) {}
  void set(int64_t avail) { avail_ = avail; }
  std::string name() const override { return "events-" + key_; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"key", Type::String}, {"ts", Type::Timestamp}});
  }
  int partitions() const override { return 1; }
  int64_t available(int) override { return avail_; }
  size_t read(int, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o)
      out.push_back({o, {Value{key_}, Value{Timestamp{base_.micros + o * 10'000}}}, 0});
    return static_cast<size_t>(to - from);
  }

 private:
  std::string key_;
  Timestamp base_;
  std::atomic<int64_t> avail_{0};
};

// Time passes while a batch is cut (here: the source's offsets query moves the manual clock one
// interval on, and its record arrives meanwhile). The tick that was checked found no data; the
// next tick is the following one, which the clock has already reached, so the record's batch runs
// now. Had the skipped tick been read after the cut, the next would be an interval later, and
// with nobody moving the clock again no batch would ever run.
class SlowToAskEvents : public Source {
 public:
  explicit SlowToAskEvents(ManualClock& clock) : clock_(clock) {}
  std::string name() const override { return "slow-to-ask"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"key", Type::String}, {"ts", Type::Timestamp}});
  }
  int partitions() const override { return 1; }
  int64_t available(int) override {
    if (asked_++ > 0) return 1;
    clock_.advance(100ms);  // the first query takes one trigger interval, and finds nothing
    return 0;
  }
  size_t read(int, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o) out.push_back({o, {Value{"k"}, Value{Timestamp{o}}}, 0});
    return static_cast<size_t>(to - from);
  }

 private:
  ManualClock& clock_;
  std::atomic<int> asked_{0};
};

TEST_F(TopologyBatchTest, ATickCheckedWhileTheClockMovedOnIsFollowedByTheNextTickNotOneLater) {
  ManualClock clock(Timestamp{1'000'000});
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("events", std::make_shared<SlowToAskEvents>(clock), 1);
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("events");
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(100ms);
  cfg.checkpoint = dir.string();
  cfg.clock = &clock;
  auto job = runMicroBatch(b.build(), cfg);
  for (int i = 0; i < 20000 && job.progress().batches < 1 && !job.done(); ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(job.progress().batches, 1u) << "the tick the clock reached during the cut was skipped";
  job.stop();
  job.waitUntilDone();
  EXPECT_EQ(store->rows().size(), 1u);
}

TEST_F(TopologyBatchTest, TwoSourcesWithDataInAlternateBatchesKeepEachSourcesWatermark) {
  // Batch 1 has both sources (a at 100 s, b at 10 s), batch 2 only a, batch 3 only b. b's
  // watermark holds the job's back through batch 2 (it had no data, it is not idle), so b's
  // batch-3 rows are on time and its windows fire; the committed watermark never moves back.
  // (Before per-source watermarks, batch 2 followed a alone and batch 3's commit failed with
  // "the watermark would move back".)
  auto a = std::make_shared<GrowingEvents>("a", Timestamp{100'000'000});
  auto bsrc = std::make_shared<GrowingEvents>("b", Timestamp{10'000'000});
  auto store = std::make_shared<MemoryStore>();
  auto window = windowed(Tumbling(1s), Count{}).keyBy({"key"}).eventTime("ts")
                    .outputMode(OutputMode::Append).build();
  TopologyBuilder b;
  b.setSpout("a", a, 1).withWatermark("ts", 1s);
  b.setSpout("b", bsrc, 1).withWatermark("ts", 1s);
  b.setBolt("window", *window, 2).fieldsGrouping("a", Fields{"key"}).fieldsGrouping("b", Fields{"key"});
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("window");
  ManualClock clock(Timestamp{1'000'000});
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(100ms);
  cfg.checkpoint = dir.string();
  cfg.clock = &clock;
  auto job = runMicroBatch(b.build(), cfg);
  std::vector<int64_t> watermarks;
  auto batch = [&](uint64_t n) {
    clock.advance(100ms);
    for (int i = 0; i < 20000 && job.progress().batches < n && !job.done(); ++i)
      std::this_thread::sleep_for(1ms);
    ASSERT_FALSE(job.progress().failed) << job.progress().error;
    ASSERT_EQ(job.progress().batches, n);
    ASSERT_TRUE(job.progress().watermark.has_value());
    watermarks.push_back(job.progress().watermark->micros);
  };
  a->set(100);
  bsrc->set(100);
  batch(1);
  a->set(200);
  batch(2);
  bsrc->set(400);
  batch(3);
  job.stop();
  job.waitUntilDone();
  // b's max event times: 10.99 s, then 13.99 s; delay 1 s.
  EXPECT_EQ(watermarks, (std::vector<int64_t>{9'990'000, 9'990'000, 12'990'000}));
  std::multiset<std::string> rows;
  for (const auto& r : store->rows())
    rows.insert(toString(r.values[0]) + "@" + toString(r.values[1]) + "=" + toString(r.values[3]));
  std::multiset<std::string> expected;
  for (const auto& r : std::vector<std::pair<int64_t, int>>{{10, 100}, {11, 100}}) {
    expected.insert("b@" + toString(Value{Timestamp{r.first * 1'000'000}}) + "=" +
                    std::to_string(r.second));
  }
  EXPECT_EQ(rows, expected);

  // A restart continues every source's own watermark: a's data alone cannot move it past b's.
  auto job2 = runMicroBatch(b.build(), cfg);
  a->set(300);
  clock.advance(100ms);
  for (int i = 0; i < 20000 && job2.progress().batches < 1 && !job2.done(); ++i)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(job2.progress().batches, 1u) << job2.progress().error;
  EXPECT_EQ(job2.progress().watermark, Timestamp{12'990'000});
  job2.stop();
  job2.waitUntilDone();
}

TEST_F(TopologyBatchTest, DropDuplicatesGivesTheSameRowsInBothModes) {
  // Every event comes twice in a row (same guid and event time); dropDuplicates(guid, ts) keeps
  // one of each, whatever the watermark's timing, in continuous and in micro-batch mode.
  GeneratorSource::Options o;
  o.name = "events";
  o.partitions = 1;
  o.total = 4000;
  auto gen = [](int, int64_t off) {
    int64_t e = off / 2;
    return Values{"g" + std::to_string(e % 50), Timestamp{e * 1000}};
  };
  Fields fields{{"guid", Type::String}, {"ts", Type::Timestamp}};
  auto build = [&](MemoryStorePtr store) {
    TopologyBuilder b;
    b.setSpout("events", std::make_shared<GeneratorSource>(fields, gen, o), 1)
        .withWatermark("ts", 5ms);
    b.setBolt("dedup", dropDuplicates(fields, {"guid", "ts"}, "ts"), 2)
        .fieldsGrouping("events", Fields{"guid"});
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("dedup");
    return b.build();
  };
  auto rowsOf = [](const MemoryStore& s) {
    std::multiset<std::string> rows;
    for (const auto& r : s.rows()) rows.insert(toString(r.values[0]) + "@" + toString(r.values[1]));
    return rows;
  };
  auto contStore = std::make_shared<MemoryStore>();
  auto batchStore = std::make_shared<MemoryStore>();
  // 301 records per batch (odd): some pairs straddle two batches.
  BatchProgress progress = runBothModes(build, 301, contStore, batchStore);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(contStore->size(), 2000u);
  EXPECT_EQ(rowsOf(*batchStore), rowsOf(*contStore));
  auto contRows = rowsOf(*contStore);
  EXPECT_EQ(std::set<std::string>(contRows.begin(), contRows.end()).size(), 2000u);
}

TEST_F(TopologyBatchTest, AnIntervalLeftOuterJoinGivesTheSameRowsInBothModes) {
  // Two in-order sources: no row is late in either mode (the job watermark is the min over the
  // sources), so matched pairs and null rows (emitted at the end of input) are the same.
  auto source = [&](std::string name, int keys) {
    GeneratorSource::Options o;
    o.name = name;
    o.partitions = 1;
    o.total = 1000;
    auto gen = [keys](int, int64_t off) { return clickViewEvent(keys, off); };
    return std::make_shared<GeneratorSource>(kClickViewFields, gen, o);
  };
  auto build = [&](MemoryStorePtr store) {
    TopologyBuilder b;
    declareClickViewJoin(b, source("clicks", 20), source("views", 30), JoinType::LeftOuter);
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("join");
    return b.build();
  };
  auto contStore = std::make_shared<MemoryStore>();
  auto batchStore = std::make_shared<MemoryStore>();
  BatchProgress progress = runBothModes(build, 150, contStore, batchStore);
  ASSERT_FALSE(HasFailure());
  auto cont = rowsOf(*contStore);
  EXPECT_EQ(rowsOf(*batchStore), cont);
  size_t nulls = 0;
  for (const auto& r : contStore->rows()) nulls += typeOf(r.values[3]) == Type::Null;
  EXPECT_GT(nulls, 0u);
  EXPECT_GT(cont.size() - nulls, 100u);
}

// Every source's own watermark is committed with each batch (SourceWatermarks), so a batch
// replayed after a failure computes the same watermark as its first attempt (an exactly-once sink
// that skips replayed txids relies on the replay's output being the same).
TEST_F(TopologyBatchTest, AReplayedBatchHasTheSameWatermarkAsItsFirstAttempt) {
  // Partition 0: 50 records, the first one late in event time (1000 ms), then 1, 2, ... ms;
  // partition 1: 10 records. Batch 2 reads partition 0 alone; partition 1 (max 9 ms) holds the
  // source's watermark back (per-partition watermarks, no idle timeout).
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
  EXPECT_EQ(straight, 8'000);  // partition 1's max (9 ms) - 1 ms
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

// 13 records in one partition; those at offsets not divisible by 3 are malformed and go out on
// the "errors" stream (as a FileSource's do): 5 good, 8 errors.
class MixedSource : public Source {
 public:
  std::string name() const override { return "mixed"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
    d.declareStream("errors", Fields{"line", "reason"});
  }
  int partitions() const override { return 1; }
  int64_t available(int) override { return 13; }
  bool finished() const override { return true; }
  size_t read(int, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o) {
      if (o % 3 == 0)
        out.push_back({o, {o}, 0});
      else
        out.push_back({o, {"line " + std::to_string(o), std::string("malformed")}, 0, "errors"});
    }
    return static_cast<size_t>(to - from);
  }
};

// Emits a string where it declared an int64.
class WrongType final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
  }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<WrongType>(); }
  void onTuple(const Tuple& t, Emitter& out) override {
    out.emit(Values{"n=" + toString(t.values()[0])});
  }
};

TEST_F(TopologyBatchTest, AnEmitThatDoesNotFitTheDeclaredFieldsStopsTheJobInBothModesAlike) {
  for (bool microBatch : {true, false}) {
    SCOPED_TRACE(microBatch ? "micro-batch" : "continuous");
    auto store = std::make_shared<MemoryStore>();
    TopologyBuilder b;
    b.setSpout("src", std::make_shared<MixedSource>(), 1);
    b.setBolt("wrong", WrongType{}, 1).shuffleGrouping("src");
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("wrong");
    MicroBatch cfg;
    cfg.trigger = microBatch ? BatchTrigger::availableNow() : BatchTrigger::continuous();
    cfg.checkpoint = (dir / (microBatch ? "mb" : "c")).string();
    cfg.name = microBatch ? "bad-mb" : "bad-c";
    auto job = runMicroBatch(b.build(), cfg);
    // Before: continuous mode with acking replayed the record forever (this timed out).
    try {
      job.waitUntilDone(20s);
      ADD_FAILURE() << "the job ended without an error";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(
                    "component 'wrong' emitted on stream 'default' values that do not fit"),
                std::string::npos)
          << e.what();
    }
    EXPECT_TRUE(job.progress().failed);
    EXPECT_TRUE(store->rows().empty());
    resetTerminated();
  }
}

TEST_F(TopologyBatchTest, SourceErrorRecordsNobodySubscribesToAreCountedInTheJobsProgress) {
  ScopedLogCapture captured;
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("src", std::make_shared<MixedSource>(), 1);
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("src");
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 5;
  auto job = runMicroBatch(b.build(), cfg);
  ASSERT_TRUE(job.waitUntilDone(20s));
  EXPECT_EQ(store->rows().size(), 5u);
  EXPECT_EQ(job.progress().records, 13u);
  EXPECT_EQ(job.progress().unroutedRecords, 8u) << "before: 8 of 13 records vanished uncounted";
  flushLogRepeats();
  size_t lines =
      captured.count("component 'src' emitted on stream 'errors', which no component subscribes");
  EXPECT_GE(lines, 1u) << "logged";
  EXPECT_LE(lines, 2u) << "rate-limited: a line and a count, not a line per record";
}

// A windowed count of 16 key groups runs with 2 tasks, then 4, then 1, a run per chunk of a
// growing input: the windows open at the end of each run continue in the next with the counts
// of every word, wherever it was counted before.
// (word, ts) events, event g at g ms; the test sets how many are visible (an unbounded source:
// a run ends when it has read them, with its windows still open).
class GrowingWords : public Source {
 public:
  static Values at(int64_t g) {
    return Values{std::string(1, static_cast<char>('a' + g * 7 % 13)), Timestamp{g * 1000}};
  }
  void set(int64_t n) { n_ = n; }
  std::string name() const override { return "events"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"word", Type::String}, {"ts", Type::Timestamp}});
  }
  int partitions() const override { return 1; }
  int64_t available(int) override { return n_; }
  size_t read(int, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o) out.push_back({o, at(o), 0});
    return static_cast<size_t>(to - from);
  }
  std::atomic<int64_t> n_{0};
};

TEST_F(TopologyBatchTest, ARescaledWindowKeepsItsCountsAcrossARestart) {
  auto src = std::make_shared<GrowingWords>();
  auto window = windowed(Tumbling(50ms), Count{})
                    .keyBy({"word"})
                    .eventTime("ts")
                    .outputMode(OutputMode::Append)
                    .build();
  auto build = [&](MemoryStorePtr store, int tasks) {
    TopologyBuilder b;
    b.setSpout("events", src, 1).withWatermark("ts", 5ms);
    b.setBolt("window", *window, tasks).maxParallelism(16).fieldsGrouping("events", Fields{"word"});
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("window");
    return b.build();
  };
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 150;
  std::map<std::string, int64_t> committed;  // "word@start" -> count
  std::optional<Timestamp> wm;
  for (auto [total, tasks] : {std::pair<int64_t, int>{725, 2}, {1410, 4}, {2000, 1}}) {
    resetTerminated();
    auto store = std::make_shared<MemoryStore>();
    src->set(total);
    auto job = runMicroBatch(build(store, tasks), cfg);
    ASSERT_TRUE(job.waitUntilDone(20s)) << tasks << " tasks";
    wm = job.progress().watermark;
    for (const auto& r : store->rows()) {
      std::string key = toString(r.values[0]) + "@" + toString(r.values[1]);
      EXPECT_EQ(committed.count(key), 0u) << "a window twice: " << key;
      committed[key] = std::get<int64_t>(r.values[3]);
    }
  }
  ASSERT_TRUE(wm.has_value());
  std::map<std::string, int64_t> direct;
  for (int64_t g = 0; g < 2000; ++g) {
    int64_t end = (g / 50 + 1) * 50 * 1000;
    if (end - 1 > wm->micros) continue;  // not final yet
    Values v = GrowingWords::at(g);
    ++direct[toString(v[0]) + "@" + toString(Value{Timestamp{g / 50 * 50 * 1000}})];
  }
  EXPECT_EQ(committed, direct);
  EXPECT_GT(direct.size(), 300u);
}

}  // namespace
}  // namespace gale
