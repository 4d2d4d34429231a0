// Fusion: which bolts run in their upstream's tasks (planFusion), and that a fused topology
// computes what the same topology computes with a channel between every pair of tasks.
#include "private/fusion.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "temp_dir_for_test.h"
#include "test_support.h"

namespace gale {
namespace {

using namespace testing;

auto counting() { return CountingSpout(10, 2, std::make_shared<CountingState>()); }
auto recording() { return RecordingBolt(std::make_shared<Seen>(), Fields{{"n", Type::Int64}}); }

int intoOf(const Topology& t, const FusionPlan& p, const std::string& name) {
  for (size_t i = 0; i < t.components().size(); ++i)
    if (t.components()[i].name == name) return p.into[i];
  return -2;
}

// src (spout) -> b with the given grouping and parallelisms.
struct Pair {
  Topology t;
  FusionPlan plan;
  std::vector<std::string> why;
};
Pair pair(Grouping g, int upP, int downP, bool enabled = true, std::vector<int> workers = {}) {
  TopologyBuilder b;
  b.setSpout("src", counting(), upP);
  InputSpec in;
  in.component = "src";
  in.grouping = g;
  if (g == Grouping::Fields || g == Grouping::PartialKey) in.fields = {"key"};
  b.setBolt("b", recording(), downP).grouping(in);
  Pair p{b.build(), {}, {}};
  p.plan = planFusion(p.t, enabled, workers, &p.why);
  return p;
}

TEST(FusionPlan, ShuffleAndLocalOrShuffleAtEqualParallelismAreFused) {
  for (Grouping g : {Grouping::Shuffle, Grouping::LocalOrShuffle}) {
    Pair p = pair(g, 3, 3);
    EXPECT_EQ(p.plan.into[1], 0) << groupingName(g) << ": " << p.why[1];
    // Task i of b runs in task i of src.
    EXPECT_EQ(p.plan.hostOf, (std::vector<TaskId>{0, 1, 2, 0, 1, 2}));
  }
}

TEST(FusionPlan, AnyGroupingButDirectIsFusedAtParallelismOne) {
  for (Grouping g : {Grouping::Fields, Grouping::All, Grouping::Global, Grouping::PartialKey}) {
    Pair p = pair(g, 1, 1);
    EXPECT_EQ(p.plan.into[1], 0) << groupingName(g) << ": " << p.why[1];
  }
}

TEST(FusionPlan, GroupingsThatSendToOtherTasksAreNotFused) {
  for (Grouping g : {Grouping::Fields, Grouping::All, Grouping::Global, Grouping::PartialKey}) {
    Pair p = pair(g, 2, 2);
    EXPECT_EQ(p.plan.into[1], -1) << groupingName(g);
    EXPECT_NE(p.why[1].find("parallelism > 1"), std::string::npos) << p.why[1];
    EXPECT_EQ(p.plan.hostOf, (std::vector<TaskId>{0, 1, 2, 3}));
  }
  Pair d = pair(Grouping::Direct, 1, 1);
  EXPECT_EQ(d.plan.into[1], -1);
  EXPECT_NE(d.why[1].find("direct"), std::string::npos) << d.why[1];
}

TEST(FusionPlan, UnequalParallelismIsNotFused) {
  Pair p = pair(Grouping::Shuffle, 1, 2);
  EXPECT_EQ(p.plan.into[1], -1);
  EXPECT_NE(p.why[1].find("parallelism 1 upstream, 2 here"), std::string::npos) << p.why[1];
}

TEST(FusionPlan, TheSwitchesTurnItOff) {
  EXPECT_EQ(pair(Grouping::Shuffle, 2, 2, /*enabled=*/false).plan.into[1], -1);
  {
    TopologyBuilder b;
    b.setSpout("src", counting(), 2);
    b.setBolt("b", recording(), 2).shuffleGrouping("src").disableFusion();
    Topology t = b.build();
    std::vector<std::string> why;
    EXPECT_EQ(planFusion(t, true, {}, &why).into[1], -1);
    EXPECT_EQ(why[1], "disableFusion()");
  }
  {
    TopologyBuilder b;
    b.setSpout("src", counting(), 2).disableFusion();
    b.setBolt("b", recording(), 2).shuffleGrouping("src");
    Topology t = b.build();
    EXPECT_EQ(planFusion(t, true, {}).into[1], -1);
  }
}

TEST(FusionPlan, ABoltReadingTwoComponentsIsNotFused) {
  TopologyBuilder b;
  b.setSpout("a", counting(), 1);
  b.setSpout("c", counting(), 1);
  b.setBolt("b", recording(), 1).shuffleGrouping("a").shuffleGrouping("c");
  Topology t = b.build();
  std::vector<std::string> why;
  EXPECT_EQ(intoOf(t, planFusion(t, true, {}, &why), "b"), -1);
  EXPECT_EQ(why[2], "it reads more than one component");
}

TEST(FusionPlan, TasksInDifferentWorkersAreNotFused) {
  // Tasks: src 0,1; b 2,3. Task 1 of src runs in worker 1, task 1 of b in worker 0.
  EXPECT_EQ(pair(Grouping::Shuffle, 2, 2, true, {0, 1, 0, 1}).plan.into[1], 0);
  Pair p = pair(Grouping::Shuffle, 2, 2, true, {0, 1, 0, 0});
  EXPECT_EQ(p.plan.into[1], -1);
  EXPECT_NE(p.why[1].find("another worker"), std::string::npos) << p.why[1];
}

TEST(FusionPlan, AChainRunsInItsHeadsTasks) {
  TopologyBuilder b;
  b.setSpout("src", counting(), 2);
  b.setBolt("one", recording(), 2).shuffleGrouping("src");
  b.setBolt("two", recording(), 2).localOrShuffleGrouping("one");
  b.setBolt("keyed", recording(), 2).fieldsGrouping("two", Fields{"n"});
  Topology t = b.build();
  FusionPlan p = planFusion(t, true, {});
  EXPECT_EQ(p.into, (std::vector<int>{-1, 0, 1, -1}));
  EXPECT_EQ(p.hostOf, (std::vector<TaskId>{0, 1, 0, 1, 0, 1, 6, 7}));
}

// ---- the runtime

// Adds 1000 to n and passes it on, anchored.
class AddBolt : public Bolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}, {"key", Type::Int64}});
  }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<AddBolt>(); }
  void execute(const Tuple& t, OutputCollector& out) override {
    out.emit(t, Values{t.getInt(0) + 1000, t.getInt(1)});
    out.ack(t);
  }
};

struct RunResult {
  std::vector<int64_t> seen;  // what the last bolt executed, sorted
  TopologyMetrics metrics;
  size_t acked = 0;
};

RunResult runChain(bool fusion, bool disableOnAdd = false) {
  auto state = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("src", CountingSpout(2000, 7, state), 2);
  auto add = b.setBolt("add", AddBolt{}, 2).shuffleGrouping("src");
  if (disableOnAdd) add.disableFusion();
  b.setBolt("add2", AddBolt{}, 2).shuffleGrouping("add");
  b.setBolt("sink", RecordingBolt(seen), 2).fieldsGrouping("add2", Fields{"key"});
  Continuous c = fastConfig();
  c.fusion = fusion;
  auto rt = runContinuous(b.build(), c);
  EXPECT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  RunResult r;
  r.metrics = rt.metrics();
  r.acked = state->distinctAcked();
  std::lock_guard l(seen->mutex);
  for (auto& [task, v] : seen->tuples) r.seen.push_back(std::get<int64_t>(v[0]));
  std::sort(r.seen.begin(), r.seen.end());
  return r;
}

TEST(Fusion, AFusedTopologyComputesWhatTheUnfusedOneDoes) {
  RunResult fused = runChain(true), plain = runChain(false);
  ASSERT_EQ(fused.seen.size(), 2000u);
  EXPECT_EQ(fused.seen, plain.seen);
  EXPECT_EQ(fused.seen.front(), 2000);  // 0 + 1000 + 1000
  EXPECT_EQ(fused.acked, 2000u);        // every tree completed through the fused links
  EXPECT_EQ(plain.acked, 2000u);
}

TEST(Fusion, MetricsShowTheChainsAndFusedTasksReceiveNoFrames) {
  RunResult r = runChain(true);
  EXPECT_EQ(r.metrics.find("src")->fusedInto, "");
  EXPECT_EQ(r.metrics.find("add")->fusedInto, "src");
  EXPECT_EQ(r.metrics.find("add2")->fusedInto, "add");
  EXPECT_EQ(r.metrics.find("sink")->fusedInto, "") << "fields grouping at parallelism 2";
  TaskMetrics add = r.metrics.find("add")->total();
  EXPECT_EQ(add.executed, 2000u);
  EXPECT_EQ(add.framesReceived, 0u);
  EXPECT_GT(r.metrics.find("sink")->total().framesReceived, 0u);
}

// Keeps a copy of every input tuple and passes (n + 1000, key) on, unanchored.
class KeepingBolt : public Bolt {
 public:
  explicit KeepingBolt(std::shared_ptr<std::vector<Tuple>> kept) : kept_(std::move(kept)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}, {"key", Type::Int64}});
  }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<KeepingBolt>(kept_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    kept_->push_back(t);
    out.emit(Values{t.getInt(0) + 1000, t.getInt(1)});
  }

 private:
  std::shared_ptr<std::vector<Tuple>> kept_;
};

// Unanchored tuples to a fused task travel in one Tuple reused per stream (no Tuple and no
// schema copy per tuple): a task that keeps its inputs keeps them intact, every tuple arrives
// with its stream's schema and origin, and the metrics count each one once.
TEST(Fusion, UnanchoredTuplesToAFusedTaskArriveWholeAndAreCountedOnce) {
  auto kept = std::make_shared<std::vector<Tuple>>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("src", CountingSpout(2000, 7, std::make_shared<CountingState>(), false), 1);
  b.setBolt("keep", KeepingBolt(kept), 1).shuffleGrouping("src");
  b.setBolt("sink", RecordingBolt(seen), 1).fieldsGrouping("keep", Fields{"key"});
  Continuous c = fastConfig();
  c.acking = false;
  auto rt = runContinuous(b.build(), c);
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  TopologyMetrics m = rt.metrics();
  ASSERT_EQ(m.find("sink")->fusedInto, "keep");
  ASSERT_EQ(kept->size(), 2000u);
  for (int64_t n = 0; n < 2000; ++n) {
    const Tuple& t = (*kept)[static_cast<size_t>(n)];
    ASSERT_EQ(t.values(), (Values{n, n % 7})) << "input " << n << " changed after it was kept";
    EXPECT_EQ(t.sourceComponent(), "src");
    EXPECT_GT(t.originNanos(), 0);
  }
  ASSERT_EQ(seen->tuples.size(), 2000u);
  for (size_t i = 0; i < 2000; ++i)
    EXPECT_EQ(seen->tuples[i].second, (Values{int64_t(i) + 1000, int64_t(i) % 7}));
  for (const char* name : {"src", "keep"}) {
    TaskMetrics t = m.find(name)->total();
    EXPECT_EQ(t.emitted, 2000u) << name;
    EXPECT_EQ(t.transferred, 2000u) << name;
  }
  EXPECT_EQ(m.find("keep")->total().executed, 2000u);
  EXPECT_EQ(m.find("sink")->total().executed, 2000u);
}

// What a borrowing bolt and its sink saw: each output in order, whether the sink read the
// bolt's own list (lent in place) and whether the list came back to the bolt after the emit.
struct BorrowLog {
  std::mutex mutex;
  std::vector<Values> seen;
  std::atomic<const Value*> lent{nullptr};
  size_t readInPlace = 0, cameBack = 0;
};

// For input n, emits (n, a heap-sized string naming n) from one list it keeps across inputs.
class BorrowingBolt : public Bolt {
 public:
  explicit BorrowingBolt(std::shared_ptr<BorrowLog> log) : log_(std::move(log)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}, {"word", Type::String}});
  }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<BorrowingBolt>(log_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    int64_t n = t.getInt(0);
    std::string word = "a word longer than fifteen characters #" + std::to_string(n);
    if (scratch_.empty()) {
      scratch_ = {n, word};
    } else {
      scratch_[0] = n;
      std::get<std::string>(scratch_[1]).assign(word);
    }
    log_->lent = scratch_.data();
    out.emitBorrowed(kDefaultStream, t, scratch_);
    if (scratch_.size() == 2 && scratch_[0] == Value(n) && scratch_[1] == Value(word)) {
      std::lock_guard l(log_->mutex);
      ++log_->cameBack;
    } else {
      EXPECT_TRUE(scratch_.empty()) << "a list taken comes back empty, never half-changed";
    }
    out.ack(t);
  }

 private:
  std::shared_ptr<BorrowLog> log_;
  Values scratch_;
};

class BorrowSink : public Bolt {
 public:
  explicit BorrowSink(std::shared_ptr<BorrowLog> log) : log_(std::move(log)) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<BorrowSink>(log_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    std::lock_guard l(log_->mutex);
    log_->seen.push_back(t.values());
    log_->readInPlace += t.values().data() == log_->lent.load();
    out.ack(t);
  }

 private:
  std::shared_ptr<BorrowLog> log_;
};

struct BorrowRun {
  std::shared_ptr<BorrowLog> log = std::make_shared<BorrowLog>();
  TopologyMetrics metrics;
  size_t acked = 0;
};
BorrowRun runBorrowing(bool fusion, bool acking) {
  BorrowRun r;
  auto state = std::make_shared<CountingState>();
  TopologyBuilder b;
  b.setSpout("src", CountingSpout(2000, 7, state, acking), 1);
  b.setBolt("borrow", BorrowingBolt(r.log), 1).shuffleGrouping("src");
  b.setBolt("sink", BorrowSink(r.log), 1).shuffleGrouping("borrow");
  Continuous c = fastConfig();
  c.fusion = fusion;
  c.acking = acking;
  auto rt = runContinuous(b.build(), c);
  EXPECT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  r.metrics = rt.metrics();
  r.acked = state->distinctAcked();
  return r;
}

// emitBorrowed: to a fused task, unanchored, the sink reads the bolt's own list and the list
// comes back; anchored (acking on) or through a channel (fusion off) the list is taken (moved
// into the tuple, not copied) and comes back empty. Either way every tuple arrives once, in order, whole (a later reuse of the list
// changes no tuple already read), and emitted / transferred / executed count each once.
TEST(Fusion, BorrowedValuesToAFusedTaskAreReadInPlaceAndArriveOnceInOrderWhole) {
  for (auto [fusion, acking] : {std::pair{true, false}, {true, true}, {false, false}}) {
    SCOPED_TRACE(std::string("fusion ") + (fusion ? "on" : "off") + ", acking " +
                 (acking ? "on" : "off"));
    BorrowRun r = runBorrowing(fusion, acking);
    ASSERT_EQ(r.metrics.find("sink")->fusedInto, fusion ? "borrow" : "");
    ASSERT_EQ(r.log->seen.size(), 2000u);
    for (int64_t n = 0; n < 2000; ++n)
      ASSERT_EQ(r.log->seen[static_cast<size_t>(n)],
                (Values{n, "a word longer than fifteen characters #" + std::to_string(n)}));
    bool inPlace = fusion && !acking;
    if (inPlace) {
      EXPECT_EQ(r.log->readInPlace, 2000u);
    }
    EXPECT_EQ(r.log->cameBack, inPlace ? 2000u : 0u);
    TaskMetrics borrow = r.metrics.find("borrow")->total();
    EXPECT_EQ(borrow.emitted, 2000u);
    EXPECT_EQ(borrow.transferred, 2000u);
    EXPECT_EQ(borrow.executed, 2000u);
    EXPECT_EQ(r.metrics.find("sink")->total().executed, 2000u);
    if (acking) {
      EXPECT_EQ(r.acked, 2000u);
    }
  }
}

// One partition of `n` records (event time 10 µs × offset, in order; offset), read in chunks.
class OrderedSource : public Source {
 public:
  explicit OrderedSource(int64_t n) : n_(n) {}
  std::string name() const override { return "ordered"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"ts", Type::Timestamp}, {"off", Type::Int64}});
  }
  int partitions() const override { return 1; }
  int64_t available(int) override { return n_; }
  size_t read(int, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    size_t k = 0;
    for (int64_t o = from; o < to && o < n_; ++o, ++k) {
      SourceRecord r;
      r.offset = o;
      r.values = Values{Timestamp{o * 10}, o};
      out.push_back(std::move(r));
    }
    return k;
  }
  bool finished() const override { return true; }

 private:
  int64_t n_;
};

// Per stage of a 1:1 chain: where each watermark and barrier fell in its tuple stream, and
// whether the tuples came whole, once and in order.
struct MarkerLog {
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> markers;  // "wm<micros>@<tuples before it>"
  std::map<std::string, int64_t> tuples;
  std::map<std::string, std::string> firstError;
};

// Passes (ts, off) on unanchored, by emit or emitBorrowed (from a list it keeps). Checkpointed,
// so that exactly-once mode tells it where each barrier falls (snapshotState).
class MarkingBolt : public Bolt, public CheckpointedBolt {
 public:
  MarkingBolt(std::shared_ptr<MarkerLog> log, bool borrowed, bool last)
      : log_(std::move(log)), borrowed_(borrowed), last_(last) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    if (!last_) d.declare(Fields{{"ts", Type::Timestamp}, {"off", Type::Int64}});
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<MarkingBolt>(log_, borrowed_, last_);
  }
  void prepare(const TopologyContext& ctx, OutputCollector&) override { name_ = ctx.component; }
  void execute(const Tuple& t, OutputCollector& out) override {
    int64_t off = t.getInt(1);
    Timestamp ts = std::get<Timestamp>(t.values()[0]);
    std::string bad;
    if (off != n_ || ts.micros != off * 10)
      bad = "tuple " + std::to_string(n_) + " came as " + toString(t.values()[0]) + ", " +
            std::to_string(off);
    else if (ts.micros <= wm_)
      bad = "tuple " + std::to_string(off) + " came after watermark " + std::to_string(wm_);
    if (!bad.empty()) {
      std::lock_guard l(log_->mutex);
      log_->firstError.try_emplace(name_, bad);
    }
    ++n_;
    if (!last_) {
      if (borrowed_) {
        scratch_ = t.values();
        out.emitBorrowed(kDefaultStream, scratch_);
      } else {
        out.emit(Values{ts, off});
      }
    }
    out.ack(t);
  }
  void onWatermark(Timestamp wm, OutputCollector&) override {
    wm_ = wm.micros;
    mark("wm" + std::to_string(wm.micros));
  }
  std::string snapshotState(uint64_t id) override {
    mark("barrier" + std::to_string(id));
    return std::to_string(n_);
  }
  void restoreState(std::string_view) override { ADD_FAILURE() << "nothing resumes here"; }
  void onEndOfStream(OutputCollector&) override {
    std::lock_guard l(log_->mutex);
    log_->tuples[name_] = n_;
  }

 private:
  void mark(const std::string& what) {
    std::lock_guard l(log_->mutex);
    log_->markers[name_].push_back(what + "@" + std::to_string(n_));
  }
  std::shared_ptr<MarkerLog> log_;
  bool borrowed_, last_;
  std::string name_;
  int64_t n_ = 0, wm_ = INT64_MIN;
  Values scratch_;
};

// The fused call skips the input gate for data only: a watermark or checkpoint barrier must still
// fall between the same two tuples at every stage of a fused chain (src -> a -> b -> c, one task
// each, exactly-once continuous with checkpoints every millisecond), with every tuple executed
// once, in order, whole, and counted once. Run with plain and borrowed emits.
TEST(Fusion, AFusedChainKeepsEveryWatermarkAndBarrierBetweenTheSameTuplesAtEveryStage) {
  constexpr int64_t kN = 20000;
  for (bool borrowed : {false, true}) {
    SCOPED_TRACE(borrowed ? "emitBorrowed" : "emit");
    auto log = std::make_shared<MarkerLog>();
    TempDir tmp;
    TopologyBuilder b;
    b.setSpout("src", std::make_shared<OrderedSource>(kN), 1)
        .withWatermark(WatermarkSpec{.field = "ts", .everyTuples = 97});
    b.setBolt("a", MarkingBolt(log, borrowed, false), 1).shuffleGrouping("src");
    b.setBolt("b", MarkingBolt(log, borrowed, false), 1).shuffleGrouping("a");
    b.setBolt("c", MarkingBolt(log, borrowed, true), 1).shuffleGrouping("b");
    Continuous c = fastConfig();
    c.guarantee = Guarantee::ExactlyOnce;
    c.checkpointInterval = std::chrono::milliseconds(1);
    c.checkpointDir = tmp.sub("chk");
    c.checkpointSync = false;
    auto rt = runContinuous(b.build(), c);
    ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
    TopologyMetrics m = rt.metrics();
    ASSERT_EQ(m.find("a")->fusedInto, "src");
    ASSERT_EQ(m.find("b")->fusedInto, "a");
    ASSERT_EQ(m.find("c")->fusedInto, "b");
    std::lock_guard l(log->mutex);
    for (const char* stage : {"a", "b", "c"}) {
      EXPECT_EQ(log->firstError[stage], "") << stage;
      EXPECT_EQ(log->tuples[stage], kN) << stage;
      EXPECT_EQ(m.find(stage)->total().executed, uint64_t(kN)) << stage;
    }
    for (const char* stage : {"src", "a", "b"}) {
      EXPECT_EQ(m.find(stage)->total().emitted, uint64_t(kN)) << stage;
      EXPECT_EQ(m.find(stage)->total().transferred, uint64_t(kN)) << stage;
    }
    const std::vector<std::string>& at = log->markers["a"];
    EXPECT_GT(std::count_if(at.begin(), at.end(),
                            [](const std::string& e) { return e.rfind("wm", 0) == 0; }),
              kN / 97 / 2);
    EXPECT_GE(std::count_if(at.begin(), at.end(),
                            [](const std::string& e) { return e.rfind("barrier", 0) == 0; }),
              1);
    EXPECT_EQ(log->markers["b"], at);
    EXPECT_EQ(log->markers["c"], at);
  }
}

// Passes (n, key) on: by emit for even n, by emitBorrowed (from a list it keeps) for odd n.
struct PassOperator : Operator {
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}, {"key", Type::Int64}});
  }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<PassOperator>(); }
  void onTuple(const Tuple& t, Emitter& out) override {
    if (t.getInt(0) % 2 == 0) return out.emit(t.values());
    kept = t.values();
    out.emitBorrowed(kDefaultStream, kept);
  }
  Values kept;
};

// Fails each input with n % 10 == 3 the first time it sees it, acks the rest.
class FailOnceBolt : public Bolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<FailOnceBolt>(); }
  void execute(const Tuple& t, OutputCollector& out) override {
    if (t.getInt(0) % 10 == 3 && failedOnce_.insert(t.getInt(0)).second)
      out.fail(t);
    else
      out.ack(t);
  }

 private:
  std::set<int64_t> failedOnce_;
};

// A fused operator's outputs are anchored to its input (runOperator's AnchoredEmitter, by emit
// and by emitBorrowed): a failure further down the chain fails the spout's tuple, which is
// replayed and then acked. Lost anchors would leave those trees acked at the first pass.
TEST(Fusion, AFusedOperatorsOutputsStayAnchoredSoAFailureDownstreamReplaysTheSpoutTuple) {
  auto state = std::make_shared<CountingState>();
  TopologyBuilder b;
  b.setSpout("src", CountingSpout(200, 7, state), 1);
  b.setBolt("pass", PassOperator{}, 1).shuffleGrouping("src");
  b.setBolt("sink", FailOnceBolt{}, 1).shuffleGrouping("pass");
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  TopologyMetrics m = rt.metrics();
  ASSERT_EQ(m.find("pass")->fusedInto, "src");
  ASSERT_EQ(m.find("sink")->fusedInto, "pass");
  std::lock_guard l(state->mutex);
  std::map<int64_t, int> wantFailed;
  for (int64_t n = 3; n < 200; n += 10) wantFailed[n] = 1;
  EXPECT_EQ(state->failed, wantFailed);
  ASSERT_EQ(state->acked.size(), 200u);
  for (auto [n, times] : state->acked) EXPECT_EQ(times, 1) << n;
  EXPECT_EQ(m.find("pass")->total().executed, 220u);
  EXPECT_EQ(m.find("pass")->total().acked, 220u);
  EXPECT_EQ(m.find("sink")->total().executed, 220u);
  EXPECT_EQ(m.find("sink")->total().failed, 20u);
}

TEST(Fusion, DisableFusionGivesABoltItsOwnTasksAndInbox) {
  RunResult r = runChain(true, /*disableOnAdd=*/true);
  EXPECT_EQ(r.metrics.find("add")->fusedInto, "");
  EXPECT_GT(r.metrics.find("add")->total().framesReceived, 0u);
  EXPECT_EQ(r.metrics.find("add2")->fusedInto, "") << "its upstream 'add' hosts nothing";
  ASSERT_EQ(r.seen.size(), 2000u);
}

}  // namespace
}  // namespace gale
