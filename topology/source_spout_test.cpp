// A gale::Source run as a spout: partitions over tasks, replay by offset, commits, end of
// stream, origin times and in-band watermarks with idleness.
#include <gtest/gtest.h>

#include <condition_variable>
#include <set>

#include "test_support.h"

namespace gale {
namespace {

using namespace testing;

// Partition p holds `perPartition` records (ts = event time, p, offset). Records every
// partition's commits and how often each record was read.
class VectorSource : public Source {
 public:
  VectorSource(int partitions, int64_t perPartition, bool bounded = true)
      : parts_(partitions), per_(perPartition), bounded_(bounded), committed_(partitions) {
    for (auto& c : committed_) c = 0;
  }
  std::string name() const override { return "vector"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"ts", Type::Timestamp}, {"p", Type::Int64}, {"off", Type::Int64}});
  }
  int partitions() const override { return parts_; }
  void open(const Clock&) override { ++opened; }
  void close() override { ++closed; }
  int64_t available(int) override { return per_.load(); }
  void grow(int64_t n) { per_ += n; }
  size_t read(int p, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    size_t n = 0;
    for (int64_t o = from; o < to && o < per_; ++o, ++n) {
      if (goneEvery > 0 && o % goneEvery == 1) continue;  // gone before it was read
      SourceRecord r;
      r.offset = o;
      // Event time: mostly increasing, every 7th record 30 µs behind.
      r.values = Values{Timestamp{eventTime(p, o)}, int64_t{p}, o};
      r.originNanos = 1000 + o;
      out.push_back(std::move(r));
      ++reads;
    }
    return n;
  }
  static int64_t eventTime(int p, int64_t o) { return o * 10 + p - (o % 7 == 0 ? 30 : 0); }
  void commit(int p, int64_t offset) override {
    std::lock_guard l(mutex);
    EXPECT_GE(offset, committed_[static_cast<size_t>(p)]) << "commits went backwards";
    committed_[static_cast<size_t>(p)] = offset;
    ++commits;
  }
  bool finished() const override { return bounded_; }
  int64_t committed(int p) {
    std::lock_guard l(mutex);
    return committed_[static_cast<size_t>(p)];
  }
  std::atomic<int> opened{0}, closed{0};
  std::atomic<int64_t> reads{0};
  std::atomic<int64_t> commits{0};
  int64_t goneEvery = 0;  // > 0: offsets o with o % goneEvery == 1 are not read

 private:
  int parts_;
  std::atomic<int64_t> per_;
  bool bounded_;
  std::mutex mutex;
  std::vector<int64_t> committed_;
};

std::vector<std::string> filter(const std::vector<std::string>& ev, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& e : ev)
    if (e.rfind(prefix, 0) == 0) out.push_back(e);
  return out;
}

// Fails each record the first time it sees it with (off % 5 == 1); acks the rest; records the
// origin time of what it saw.
class FailFirstBolt : public RecordingBolt {
 public:
  using RecordingBolt::RecordingBolt;
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<FailFirstBolt>(seen_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    int64_t p = t.getInt("p"), off = t.getInt("off");
    if (t.originNanos() != 1000 + off) seen_->event(task_, "bad origin");
    seen_->add(task_, t.values());
    if (off % 5 == 1 && failed_.insert(p * 1'000'000 + off).second) return out.fail(t);
    out.ack(t);
  }

 private:
  std::set<int64_t> failed_;
};

TEST(SourceSpout, EveryRecordIsAckedFailedOnesAreReReadAndCommitsReachTheEnd) {
  auto src = std::make_shared<VectorSource>(3, 400);
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("records", src, 2);
  // By offset, so a replayed record meets the task that failed it (which then acks it).
  b.setBolt("sink", FailFirstBolt(seen), 2).fieldsGrouping("records", {"off"});
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(20)));
  std::map<std::pair<int64_t, int64_t>, int> times;
  for (auto& [task, v] : seen->tuples) ++times[{std::get<int64_t>(v[1]), std::get<int64_t>(v[2])}];
  ASSERT_EQ(times.size(), 1200u);
  for (auto& [rec, n] : times) EXPECT_EQ(n, rec.second % 5 == 1 ? 2 : 1);
  for (int p = 0; p < 3; ++p) EXPECT_EQ(src->committed(p), 400) << "partition " << p;
  EXPECT_EQ(src->reads.load(), 1200 + 240) << "a replay re-reads exactly the failed record";
  EXPECT_EQ(src->opened.load(), 1);
  EXPECT_EQ(src->closed.load(), 1);
  for (auto& [task, e] : seen->events) EXPECT_NE(e, "bad origin");
  auto m = rt.metrics();
  EXPECT_EQ(m.find("records")->total().acked, 1200u);
  EXPECT_EQ(m.find("records")->total().failed, 240u);
  EXPECT_GT(m.find("records")->total().completeLatency.count(), 0u);
}

// Throws on every record at an offset ending in 7: a poison record, whatever the attempt.
class PoisonBolt : public RecordingBolt {
 public:
  using RecordingBolt::RecordingBolt;
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<PoisonBolt>(seen_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    if (t.getInt("off") % 10 == 7) throw std::runtime_error("poison");
    out.ack(t);
  }
};

TEST(SourceSpout, APoisonRecordIsDeadLetteredAndCommittedPastSoTheBoundedRunEnds) {
  auto src = std::make_shared<VectorSource>(2, 100);
  auto dead = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("records", src, 1);
  b.setBolt("sink", PoisonBolt(std::make_shared<Seen>()), 2).shuffleGrouping("records");
  b.setBolt("dlq", RecordingBolt(dead), 1).shuffleGrouping("records", kDeadLetterStream);
  Continuous c = fastConfig();
  c.maxRetries = 2;
  c.retryBackoffMin = c.retryBackoffMax = std::chrono::milliseconds(1);
  auto rt = runContinuous(b.build(), c);
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(20)));
  for (int p = 0; p < 2; ++p) EXPECT_EQ(src->committed(p), 100) << "partition " << p;
  EXPECT_EQ(dead->count.load(), 20);  // 10 poison offsets per partition
  EXPECT_EQ(src->reads.load(), 200 + 20 * 2) << "each poison record re-read twice";
  auto m = rt.metrics().find("records")->total();
  EXPECT_EQ(m.deadLettered, 20u);
  EXPECT_EQ(m.acked, 180u);
  EXPECT_EQ(m.failed, 60u);
}

// Every partition holds `n` records that exist (available) but partition 0 has none at hand
// (ready) until release(): reading them waits for release(), as a Kafka read waits for a fetch.
class StalledPartitionSource : public VectorSource {
 public:
  explicit StalledPartitionSource(int64_t n) : VectorSource(2, n) {}
  int64_t ready(int p) override { return p == 0 && !released_ ? 0 : available(p); }
  size_t read(int p, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    if (p == 0) {
      std::unique_lock l(m_);
      cv_.wait(l, [&] { return released_.load(); });
    }
    return VectorSource::read(p, from, to, out);
  }
  void release() {
    std::lock_guard l(m_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<bool> released_{false};
};

TEST(SourceSpout, ARecordAtHandIsEmittedWhileAnotherPartitionWaitsForItsRecords) {
  auto src = std::make_shared<StalledPartitionSource>(100);
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("records", src, 1);  // one task reads both partitions
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("records");
  auto rt = runContinuous(b.build(), fastConfig());
  // Partition 1's records come although partition 0's read would wait: the spout reads up to
  // ready(), not available().
  bool partition1 = eventually([&] { return seen->count.load() == 100; });
  src->release();
  ASSERT_TRUE(partition1) << "partition 1 waited behind partition 0's records";
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(20)));
  EXPECT_EQ(seen->count.load(), 200);
}

TEST(SourceSpout, WatermarksTrailTheMaxEventTimeByTheDelayAndNeverGoBack) {
  auto src = std::make_shared<VectorSource>(2, 500);
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  WatermarkSpec w;
  w.field = "ts";
  w.delay = Duration(50);
  w.everyTuples = 20;
  b.setSpout("records", src, 2).withWatermark(w);
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("records");
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(20)));
  auto ev = seen->eventsOf(2);
  int64_t last = INT64_MIN;
  int64_t maxEventSoFar = INT64_MIN;
  size_t watermarks = 0;
  for (auto& e : ev) {
    if (e.rfind("wm", 0) == 0) {
      int64_t wm = std::stoll(e.substr(2));
      EXPECT_GT(wm, last);
      last = wm;
      if (wm == INT64_MAX) continue;
      ++watermarks;
      // No tuple seen after this watermark may be more than the delay behind what came before:
      // the watermark is at most max event time (of the slowest task) - delay.
      EXPECT_LE(wm, maxEventSoFar - 50) << "watermark " << wm << " ran ahead";
    } else if (e[0] == 't') {
      // "t@<ts>": RecordingBolt prints the first value.
      maxEventSoFar = std::max<int64_t>(maxEventSoFar, std::stoll(e.substr(2)));
    }
  }
  EXPECT_GE(watermarks, 5u) << "watermarks were not emitted while data flowed";
  EXPECT_EQ(last, INT64_MAX);
}

TEST(SourceSpout, AnIdleSpoutTaskDoesNotHoldBackTheWatermark) {
  // One partition, two tasks: task 1 never has data. Unbounded, so nothing ends.
  auto src = std::make_shared<VectorSource>(1, 100, /*bounded=*/false);
  auto seen = std::make_shared<Seen>();
  ManualClock clock(Timestamp{1'000'000});
  TopologyBuilder b;
  WatermarkSpec w;
  w.field = "ts";
  w.everyTuples = 10;
  w.idleTimeout = std::chrono::seconds(5);
  b.setSpout("records", src, 2).withWatermark(w);
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("records");
  Continuous c = fastConfig();
  c.clock = &clock;
  auto rt = runContinuous(b.build(), c);
  ASSERT_TRUE(eventually([&] { return seen->count.load() == 100; }));
  EXPECT_TRUE(filter(seen->eventsOf(2), "wm").empty())
      << "the watermark advanced although task 1 had not reported";
  clock.advance(std::chrono::seconds(6));
  // Both tasks are idle now. Core's WatermarkTracker rule: when every input is idle the
  // combined watermark stays where it is. Data again on task 0 makes it active at once, and
  // task 1, still idle, no longer holds it back.
  src->grow(10);
  ASSERT_TRUE(eventually([&] { return !filter(seen->eventsOf(2), "wm").empty(); }));
  int64_t wm = std::stoll(filter(seen->eventsOf(2), "wm").back().substr(2));
  EXPECT_GE(wm, VectorSource::eventTime(0, 99) - 1);  // Flink's max - delay - 1 µs
  EXPECT_LE(wm, VectorSource::eventTime(0, 109) - 1);
  rt.kill();
}

// Idleness is opt-in (Flink's withIdleness): without it a quiet partition holds the watermark
// back however long it is quiet, so its late-arriving records are never dropped as late.
TEST(SourceSpout, WithoutIdlenessAQuietPartitionHoldsTheWatermarkBackForGood) {
  struct OneQuietPartition : VectorSource {
    OneQuietPartition() : VectorSource(2, 100, /*bounded=*/false) {}
    int64_t available(int p) override { return p == 1 ? 0 : VectorSource::available(p); }
  };
  auto src = std::make_shared<OneQuietPartition>();
  auto seen = std::make_shared<Seen>();
  ManualClock clock(Timestamp{1'000'000});
  TopologyBuilder b;
  b.setSpout("records", src, 1).withWatermark(WatermarkSpec{.field = "ts", .everyTuples = 10});
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("records");
  Continuous c = fastConfig();
  c.clock = &clock;
  auto rt = runContinuous(b.build(), c);
  ASSERT_TRUE(eventually([&] { return seen->count.load() == 100; }));
  clock.advance(std::chrono::hours(1));
  src->grow(10);  // partition 0 moves on; partition 1 is still quiet
  ASSERT_TRUE(eventually([&] { return seen->count.load() == 110; }));
  // A watermark after those records would reach the sink before these (one channel, in order).
  src->grow(10);
  ASSERT_TRUE(eventually([&] { return seen->count.load() == 120; }));
  EXPECT_TRUE(filter(seen->eventsOf(1), "wm").empty())  // task 1: the sink
      << "the watermark advanced past the quiet partition without idleness asked for";
  rt.kill();
}

// A task without partitions can never have data: without idleness it is idle at once (Flink's
// reader without splits), so it does not hold its consumers back.
TEST(SourceSpout, WithoutIdlenessATaskWithoutPartitionsDoesNotHoldTheWatermarkBack) {
  auto src = std::make_shared<VectorSource>(1, 100, /*bounded=*/false);
  auto seen = std::make_shared<Seen>();
  ManualClock clock(Timestamp{1'000'000});  // never advanced
  TopologyBuilder b;
  b.setSpout("records", src, 2).withWatermark(WatermarkSpec{.field = "ts", .everyTuples = 10});
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("records");
  Continuous c = fastConfig();
  c.clock = &clock;
  auto rt = runContinuous(b.build(), c);
  ASSERT_TRUE(eventually([&] { return !filter(seen->eventsOf(2), "wm").empty(); }))
      << "task 1 (no partitions) held the watermark back";
  rt.kill();
}

TEST(SourceSpout, ANegativeIdleTimeoutIsRefused) {
  TopologyBuilder b;
  b.setSpout("records", std::make_shared<VectorSource>(1, 1), 1)
      .withWatermark(WatermarkSpec{.field = "ts", .idleTimeout = std::chrono::seconds(-1)});
  b.setBolt("sink", RecordingBolt(std::make_shared<Seen>()), 1).shuffleGrouping("records");
  EXPECT_THROW(b.build(), std::invalid_argument);
}

// Counts the reads of a manual clock (any thread).
class CountingClock final : public Clock {
 public:
  Timestamp now() const override {
    ++reads;
    return inner.now();
  }
  int64_t monoNanos() const override {
    ++reads;
    return inner.monoNanos();
  }
  ManualClock inner{Timestamp{1'000'000}};
  mutable std::atomic<int64_t> reads{0};
};

// Counts what a spout emits.
struct CountingCollector final : SpoutOutputCollector {
  int64_t tuples = 0, watermarks = 0;
  std::set<std::pair<int64_t, int64_t>> seen;  // (partition, offset) of each tuple, when recorded
  bool recordOffsets = false;
  int64_t throwAtOffset = -1;                   // >= 0: emitting this offset throws
  void emitWatermark(Timestamp, bool) override { ++watermarks; }
  void emitBatchBegin(uint64_t) override {}
  void emitBatchEnd(uint64_t) override {}
  void emitBarrier(uint64_t) override {}
  void emitEndOfStream() override {}

 protected:
  void emitTuple(TaskId, std::string_view, Values&& v, std::optional<MessageId>,
                 int64_t) override {
    if (recordOffsets || throwAtOffset >= 0) {
      const int64_t p = std::get<int64_t>(v[1]), off = std::get<int64_t>(v[2]);
      if (off == throwAtOffset) throw std::runtime_error("record does not fit");
      if (recordOffsets) {
        EXPECT_TRUE(seen.emplace(p, off).second) << p << "@" << off << " twice";
      }
    }
    ++tuples;
  }
};

// Remembers what was committed when it opened.
class ResumeSource final : public VectorSource {
 public:
  ResumeSource() : VectorSource(2, 10) {}
  void open(const Clock& c) override {
    atOpen = {committed(0), committed(1)};
    VectorSource::open(c);
  }
  std::vector<int64_t> atOpen;
};

TEST(SourceSpout, AnExactlyOnceResumeIsCommittedToTheSourceBeforeItOpens) {
  // So that a source that looks or fetches ahead (an unbounded generator, Kafka) starts where
  // the recovery resumes, as in a micro-batch job.
  auto src = std::make_shared<ResumeSource>();
  SourceSpout spout(src);
  spout.resumeFromCheckpoint({{0, 4}, {1, 7}});
  ManualClock clock;
  TopologyContext context;
  context.clock = &clock;
  context.acking = false;
  CountingCollector out;
  spout.open(context, out);
  EXPECT_EQ(src->atOpen, (std::vector<int64_t>{4, 7}));
  while (out.tuples < 6 + 3) ASSERT_TRUE(spout.nextTuple(out));
  EXPECT_EQ(src->reads.load(), 6 + 3) << "read from the resumed offsets only";
}

TEST(SourceSpout, ReadsTheClockPerChunkOfRecordsNotPerRecord) {
  // Two clock reads per record (the watermark's now and the partition's last-data time) were a
  // fifth of a typed YSB run; now a chunk of 64 records costs three.
  const int64_t records = 6'400;
  CountingClock clock;
  WatermarkSpec w;
  w.field = "ts";
  SourceSpout spout(std::make_shared<VectorSource>(1, records), w);
  TopologyContext context;
  context.clock = &clock;
  context.acking = false;
  CountingCollector out;
  spout.open(context, out);
  clock.reads = 0;
  while (out.tuples < records) ASSERT_TRUE(spout.nextTuple(out));
  EXPECT_GT(out.watermarks, 0);
  EXPECT_LE(clock.reads.load(), records / 64 * 3) << "clock reads for " << records << " records";
}

TEST(SourceSpout, WithAckingOffEveryRecordIsCommittedOncePerChunkNotPerRecordAndGapsAreSkipped) {
  // Acking off, a record is done as it leaves: the chunk's records are committed together
  // (a commit per record was ~14 instructions a word of the word count, docs/benchmarks.md).
  const int64_t records = 6'400;
  auto src = std::make_shared<VectorSource>(2, records);
  src->goneEvery = 100;  // 64 records of each partition are gone: the gaps are skipped
  ManualClock clock{Timestamp{1'000'000}};
  SourceSpout spout(src, std::nullopt);
  TopologyContext context;
  context.clock = &clock;
  context.acking = false;
  CountingCollector out;
  out.recordOffsets = true;
  spout.open(context, out);
  const int64_t present = 2 * (records - records / 100);
  while (out.tuples < present) ASSERT_TRUE(spout.nextTuple(out));
  EXPECT_EQ(out.tuples, present);
  for (int p = 0; p < 2; ++p) {
    EXPECT_EQ(src->committed(p), records) << "partition " << p;
    for (int64_t o = 0; o < records; ++o)
      EXPECT_EQ(out.seen.count({p, o}), o % 100 == 1 ? 0u : 1u) << p << "@" << o;
  }
  // One commit per chunk of 64 offsets, gaps included.
  EXPECT_LE(src->commits.load(), 2 * (records / 64)) << "commits for " << 2 * records
                                                     << " offsets";
  for (int i = 0; i < 3; ++i) spout.nextTuple(out);  // the end of the stream
  EXPECT_EQ(out.tuples, present) << "nothing emitted twice";
}

TEST(SourceSpout, WithAckingOffAnEmitThrowingMidChunkStillCommitsTheRecordsThatLeftBeforeIt) {
  // A record that does not fit the declared fields throws out of nextTuple (the executor
  // counts and logs it); the records of its chunk that left before it are done and must be
  // committed, as they were when each record was committed as it left.
  auto src = std::make_shared<VectorSource>(1, 1'000);
  ManualClock clock{Timestamp{1'000'000}};
  SourceSpout spout(src, std::nullopt);
  TopologyContext context;
  context.clock = &clock;
  context.acking = false;
  CountingCollector out;
  out.throwAtOffset = 10;
  spout.open(context, out);
  EXPECT_THROW(spout.nextTuple(out), std::runtime_error);
  EXPECT_EQ(out.tuples, 10);
  EXPECT_EQ(src->committed(0), 10) << "offsets 0..9 left and are committed; 10 is not";
}

}  // namespace
}  // namespace gale
