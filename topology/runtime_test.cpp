// The continuous runtime's control plane and limits: watermarks, batch alignment, end of stream
// and graceful stop, backpressure, malformed frames, operator errors, processing-time ticks.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include <zmq.hpp>

#include "gale/core/log.h"
#include "test_support.h"
#include "scoped_log_capture_for_test.h"

namespace gale {
namespace {

using namespace testing;

// A spout that plays a script: tuples, watermarks, batch markers, gates (waits until the test
// opens gate i) and the end of stream.
struct Step {
  enum Kind { TupleN, Wm, IdleWm, Begin, End, Gate, Eos } kind;
  int64_t v = 0;
};
struct Gates {
  std::atomic<int> open{0};  // gates 0..open-1 are open
};

class ScriptSpout : public Spout {
 public:
  ScriptSpout(std::vector<Step> script, std::shared_ptr<Gates> gates)
      : script_(std::move(script)), gates_(std::move(gates)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<ScriptSpout>(script_, gates_);
  }
  bool nextTuple(SpoutOutputCollector& out) override {
    if (pc_ >= script_.size()) return false;
    const Step& s = script_[pc_];
    switch (s.kind) {
      case Step::TupleN: out.emit(Values{s.v}, static_cast<MessageId>(s.v)); break;
      case Step::Wm: out.emitWatermark(Timestamp{s.v}); break;
      case Step::IdleWm: out.emitWatermark(Timestamp{s.v}, true); break;
      case Step::Begin: out.emitBatchBegin(static_cast<uint64_t>(s.v)); break;
      case Step::End: out.emitBatchEnd(static_cast<uint64_t>(s.v)); break;
      case Step::Gate:
        if (gates_->open.load() <= s.v) return false;
        break;
      case Step::Eos: out.emitEndOfStream(); break;
    }
    ++pc_;
    return true;
  }

 private:
  std::vector<Step> script_;
  std::shared_ptr<Gates> gates_;
  size_t pc_ = 0;
};

using S = Step;

std::vector<std::string> filter(const std::vector<std::string>& ev, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& e : ev)
    if (e.rfind(prefix, 0) == 0) out.push_back(e);
  return out;
}
ptrdiff_t indexOf(const std::vector<std::string>& ev, const std::string& e) {
  auto it = std::find(ev.begin(), ev.end(), e);
  return it == ev.end() ? -1 : it - ev.begin();
}

TEST(Watermarks, ABoltsInputWatermarkIsTheMinOverItsUpstreamTasks) {
  auto gates = std::make_shared<Gates>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("fast", ScriptSpout({{S::Wm, 100}, {S::Gate, 1}, {S::Wm, 300}, {S::Gate, 3},
                                  {S::Eos}}, gates), 1);
  b.setSpout("slow", ScriptSpout({{S::Gate, 0}, {S::Wm, 200}, {S::Gate, 2}, {S::Wm, 400},
                                  {S::Gate, 3}, {S::Eos}}, gates), 1);
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("fast").shuffleGrouping("slow");
  auto rt = runContinuous(b.build(), fastConfig());
  TaskId sink = 2;
  auto wms = [&] { return filter(seen->eventsOf(sink), "wm"); };
  using V = std::vector<std::string>;
  // Only "fast" has a watermark (100): the min waits for "slow".
  for (int gate = 1; gate <= 4; ++gate) {
    if (gate == 1) {
      EXPECT_TRUE(wms().empty());
    }
    gates->open = gate;
    if (gate < 4) {
      ASSERT_TRUE(eventually([&] { return wms().size() == static_cast<size_t>(gate); }));
    }
  }
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(10)));
  // min(100, 200), min(300, 200), min(300, 400), then both end: the end of time (with 400
  // between if "fast" happened to end first: an ended input holds nothing back).
  V got = wms();
  ASSERT_GE(got.size(), 4u);
  EXPECT_EQ(V(got.begin(), got.begin() + 3), (V{"wm100", "wm200", "wm300"}));
  if (got.size() == 5) {
    EXPECT_EQ(got[3], "wm400");
  }
  EXPECT_EQ(got.back(), "wm" + std::to_string(INT64_MAX));
  EXPECT_LE(got.size(), 5u);
}

TEST(Watermarks, AnIdleUpstreamDoesNotHoldTheWatermarkBack) {
  auto gates = std::make_shared<Gates>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("busy", ScriptSpout({{S::Wm, 100}, {S::Wm, 500}, {S::Gate, 0}, {S::Eos}}, gates), 1);
  b.setSpout("quiet", ScriptSpout({{S::IdleWm, 0}, {S::Gate, 0}, {S::Eos}}, gates), 1);
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("busy").shuffleGrouping("quiet");
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(eventually([&] { return indexOf(seen->eventsOf(2), "wm500") >= 0; }));
  gates->open = 1;
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(10)));
}

TEST(Watermarks, ABoltForwardsItsWatermarkAfterWhatItsHookEmitted) {
  // "mid" emits a tuple in onWatermark; "sink" must see that tuple before the watermark.
  struct EmitOnWatermark : RecordingBolt {
    using RecordingBolt::RecordingBolt;
    std::unique_ptr<Bolt> clone() const override {
      return std::make_unique<EmitOnWatermark>(seen_, out_);
    }
    void execute(const Tuple& t, OutputCollector& out) override { out.ack(t); }
    void onWatermark(Timestamp wm, OutputCollector& out) override {
      if (wm.micros < INT64_MAX) out.emit(Values{wm.micros});
    }
  };
  auto gates = std::make_shared<Gates>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("src", ScriptSpout({{S::Wm, 7}, {S::Wm, 9}, {S::Eos}}, gates), 1);
  b.setBolt("mid", EmitOnWatermark(std::make_shared<Seen>(), Fields{"n"}), 1)
      .shuffleGrouping("src");
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("mid");
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(10)));
  auto ev = seen->eventsOf(2);
  EXPECT_EQ(ev, (std::vector<std::string>{"t7", "wm7", "t9", "wm9",
                                          "wm" + std::to_string(INT64_MAX), "eos"}));
}

TEST(BatchAlignment, ItemsFromAnUpstreamThatEndedTheBatchWaitUntilAllHave) {
  auto gates = std::make_shared<Gates>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("fast", ScriptSpout({{S::Begin, 1}, {S::TupleN, 1}, {S::TupleN, 2}, {S::End, 1},
                                  {S::Begin, 2}, {S::TupleN, 10}, {S::End, 2}, {S::Eos}}, gates),
             1);
  b.setSpout("slow", ScriptSpout({{S::Begin, 1}, {S::TupleN, 100}, {S::Gate, 0},
                                  {S::TupleN, 101}, {S::End, 1}, {S::Begin, 2}, {S::End, 2},
                                  {S::Eos}}, gates), 1);
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("fast").shuffleGrouping("slow");
  auto rt = runContinuous(b.build(), fastConfig());
  // fast's batch 2 is held back while slow is still in batch 1.
  ASSERT_TRUE(eventually([&] {
    auto m = rt.metrics();
    return m.find("sink")->total().bufferedItems >= 3;  // begin2, t10, end2 (+ eos)
  }));
  auto before = seen->eventsOf(2);
  EXPECT_EQ(indexOf(before, "t10"), -1) << "a tuple of batch 2 overtook batch 1's alignment";
  EXPECT_EQ(indexOf(before, "end1"), -1);
  gates->open = 1;
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(10)));
  auto ev = seen->eventsOf(2);
  ASSERT_GE(indexOf(ev, "t101"), 0);
  EXPECT_LT(indexOf(ev, "t101"), indexOf(ev, "end1"));
  EXPECT_LT(indexOf(ev, "end1"), indexOf(ev, "begin2"));
  EXPECT_LT(indexOf(ev, "begin2"), indexOf(ev, "t10"));
  EXPECT_LT(indexOf(ev, "t10"), indexOf(ev, "end2"));
  EXPECT_LT(indexOf(ev, "end2"), indexOf(ev, "eos"));
  EXPECT_EQ(filter(ev, "begin").size(), 2u) << "onBatchBegin runs once per txid";
  EXPECT_EQ(filter(ev, "end").size(), 2u) << "onBatchEnd runs once per txid";
  EXPECT_EQ(rt.metrics().find("sink")->total().bufferedItems, 0u);
}

TEST(GracefulStop, StopDrainsEveryInFlightTupleAndEndsTheStreamEverywhere) {
  auto st = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  auto seen2 = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(INT64_MAX, 10, st, true, false), 2);
  b.setBolt("mid", RecordingBolt(seen, Fields{"n", "key"}), 2).shuffleGrouping("numbers");
  struct Forward : RecordingBolt {
    using RecordingBolt::RecordingBolt;
    std::unique_ptr<Bolt> clone() const override { return std::make_unique<Forward>(seen_); }
  };
  b.setBolt("sink", RecordingBolt(seen2), 1).shuffleGrouping("numbers");
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(eventually([&] { return seen->count.load() > 5000; }));
  rt.stop();
  EXPECT_EQ(seen->count.load(), st->emitted.load()) << "stop() lost tuples in flight";
  EXPECT_EQ(seen2->count.load(), st->emitted.load());
  EXPECT_EQ(st->completed.load(), st->emitted.load()) << "trees in flight did not complete";
  for (TaskId t : {2, 3}) EXPECT_EQ(filter(seen->eventsOf(t), "eos").size(), 1u);
  EXPECT_EQ(filter(seen2->eventsOf(4), "eos").size(), 1u);
  EXPECT_TRUE(rt.done());
}

constexpr int kInboxBatchFrames = 8;  // runtime.cpp's inbox drain batch

TEST(Backpressure, ASlowBoltSlowsTheSpoutAndBoundsMemoryAndQueuesWithoutLoss) {
  // The spout can emit millions per second; the bolt takes ~50 µs per tuple.
  struct SlowBolt : RecordingBolt {
    using RecordingBolt::RecordingBolt;
    std::unique_ptr<Bolt> clone() const override { return std::make_unique<SlowBolt>(seen_); }
    void execute(const Tuple& t, OutputCollector& out) override {
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      while (std::chrono::steady_clock::now() < until) {
      }
      ++seen_->count;
      out.ack(t);
    }
  };
  auto rssBytes = [] {
    std::ifstream f("/proc/self/statm");
    long pages = 0, resident = 0;
    f >> pages >> resident;
    return resident * sysconf(_SC_PAGESIZE);
  };
  auto st = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(INT64_MAX, 10, st, /*reliable=*/false, false), 1);
  // Its own task: backpressure is about the channel between two tasks (fused, the spout would
  // simply call the bolt).
  b.setBolt("slow", SlowBolt(seen), 1).shuffleGrouping("numbers").disableFusion();
  Continuous c = fastConfig();
  c.acking = false;
  c.highWaterMark = 4;
  c.maxItemsPerFrame = 128;
  long rss0 = rssBytes();
  auto rt = runContinuous(b.build(), c);
  uint64_t maxDepth = 0;
  long maxRss = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < end) {
    auto m = rt.metrics();
    maxDepth = std::max(maxDepth, m.find("slow")->total().queueDepth());
    maxRss = std::max(maxRss, rssBytes());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int64_t emittedWhileRunning = st->emitted.load();
  rt.stop();
  auto m = rt.metrics();
  // Slowed: in 2 s a free spout emits millions; here it stays near the bolt's pace.
  EXPECT_LT(emittedWhileRunning, 200000) << "the spout was not slowed down";
  EXPECT_GT(m.find("numbers")->total().blockedFlushes, 0u);
  // Bounded: frames in flight to the bolt stay within the channel's high-water marks (sender +
  // receiver side) plus the frames of the inbox batch being executed, and memory does not grow
  // with the backlog.
  EXPECT_LE(maxDepth, static_cast<uint64_t>(2 * c.highWaterMark + kInboxBatchFrames + 2));
  EXPECT_LT(maxRss - rss0, 64l << 20) << "resident memory grew by " << (maxRss - rss0);
  // Nothing dropped.
  EXPECT_EQ(seen->count.load(), st->emitted.load());
}

TEST(MalformedFrames, AreCountedAtTheInboxAndDoNotDisturbTheTopology) {
  auto st = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  auto gates = std::make_shared<Gates>();
  TopologyBuilder b;
  b.setSpout("numbers", ScriptSpout({{S::TupleN, 1}, {S::Gate, 0}, {S::TupleN, 2}, {S::Eos}},
                                    gates), 1);
  // Its own task and inbox (fused, it would have none to send garbage to).
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("numbers").disableFusion();
  Continuous c = fastConfig();
  c.transport = TransportScheme::Tcp;
  testing::ScopedLogCapture quiet;
  auto rt = runContinuous(b.build(), c);
  std::string endpoint = rt.endpointOf(1);
  ASSERT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;
  {
    zmq::context_t ctx;
    zmq::socket_t raw(ctx, zmq::socket_type::push);
    raw.set(zmq::sockopt::linger, 1000);
    raw.connect(endpoint);
    raw.send(zmq::buffer(std::string("garbage")));
    raw.send(zmq::buffer(std::string(64, '\xff')));
    raw.send(zmq::buffer(std::string(24, '\0')));
  }
  ASSERT_TRUE(eventually([&] { return rt.metrics().find("sink")->total().malformedFrames == 3; }));
  gates->open = 1;
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(10)));
  EXPECT_EQ(seen->count.load(), 2);
  EXPECT_EQ(rt.metrics().find("sink")->total().malformedFrames, 3u);
}

// An operator that throws on every 10th tuple.
struct Picky : Operator {
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<Picky>(); }
  void onTuple(const Tuple& t, Emitter& out) override {
    if (t.getInt("n") % 10 == 3) throw std::runtime_error("n ends in 3");
    out.emit(Values{t.getInt("n")});
  }
};

TEST(OperatorBolt, AnOperatorExceptionFailsTheInputAndIsLoggedAndCountedWithTheComponent) {
  auto gates = std::make_shared<Gates>();
  std::vector<Step> script;
  for (int i = 0; i < 50; ++i) script.push_back({S::TupleN, i});
  script.push_back({S::Gate, 0});
  auto seen = std::make_shared<Seen>();
  testing::ScopedLogCapture captured;
  TopologyBuilder b;
  b.setSpout("numbers", ScriptSpout(script, gates), 1);
  b.setBolt("picky", Picky{}, 1).shuffleGrouping("numbers");
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("picky");
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(eventually([&] {
    auto m = rt.metrics();
    return m.find("picky")->total().executed == 50 && m.find("numbers")->total().failed == 5 &&
           m.find("numbers")->total().acked == 45;
  }));
  gates->open = 1;
  rt.kill();
  auto m = rt.metrics();
  EXPECT_EQ(m.find("picky")->total().errors, 5u);
  EXPECT_EQ(m.find("picky")->total().failed, 5u);
  EXPECT_EQ(seen->count.load(), 45);
  std::vector<std::string> logged = captured.lines();
  ASSERT_FALSE(logged.empty());
  EXPECT_NE(logged[0].find("component 'picky'"), std::string::npos) << logged[0];
  EXPECT_NE(logged[0].find("n ends in 3"), std::string::npos) << logged[0];
}

// OperatorBolt::execute under any collector (the task calls the operator itself; an exactly-once
// or micro-batch wrapper calls execute): each output anchored to the input, by emit and by
// emitBorrowed, the input acked once, after them; a throw propagates unacked.
TEST(OperatorBolt, ExecuteAnchorsEachOutputToItsInputAndAcksTheInputAfterThem) {
  struct Twice : Operator {
    void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
    std::unique_ptr<Operator> clone() const override { return std::make_unique<Twice>(); }
    void onTuple(const Tuple& t, Emitter& out) override {
      if (t.getInt("n") < 0) throw std::runtime_error("negative");
      out.emit(kDefaultStream, Values{t.getInt("n")});
      Values lent{t.getInt("n") + 1};
      out.emitBorrowed(kDefaultStream, lent);
    }
  };
  struct Recorder final : OutputCollector {
    const Tuple* input = nullptr;
    std::vector<std::string> log;
    void ack(const Tuple& t) override { log.push_back(&t == input ? "ack" : "ack other"); }
    void fail(const Tuple&) override { log.push_back("fail"); }
   protected:
    void emitTuple(TaskId, std::string_view, const Tuple* const* anchors, size_t n,
                   Values&& v) override {
      bool anchored = n == 1 && anchors[0] == input;
      log.push_back(std::to_string(std::get<int64_t>(v.at(0))) +
                    (anchored ? " anchored" : " unanchored"));
    }
  };
  OperatorBolt bolt(std::make_shared<Twice>());
  Recorder out;
  TopologyContext ctx;
  ctx.component = "twice";
  bolt.prepare(ctx, out);
  SchemaPtr schema = makeSchema("src", kDefaultStream, Fields{"n"});
  Tuple in(schema, Values{int64_t{5}});
  out.input = &in;
  bolt.execute(in, out);
  EXPECT_EQ(out.log, (std::vector<std::string>{"5 anchored", "6 anchored", "ack"}));
  out.log.clear();
  Tuple bad(schema, Values{int64_t{-1}});
  out.input = &bad;
  EXPECT_THROW(bolt.execute(bad, out), std::runtime_error);
  EXPECT_TRUE(out.log.empty());
}

TEST(OperatorBolt, ProcessingTimeTicksFollowTheConfiguredClock) {
  struct Ticks : Operator {
    std::shared_ptr<std::vector<int64_t>> seen;
    std::shared_ptr<std::mutex> mu;
    Ticks(std::shared_ptr<std::vector<int64_t>> s, std::shared_ptr<std::mutex> m)
        : seen(std::move(s)), mu(std::move(m)) {}
    void declareOutputFields(OutputFieldsDeclarer&) const override {}
    std::unique_ptr<Operator> clone() const override { return std::make_unique<Ticks>(seen, mu); }
    void onTuple(const Tuple&, Emitter&) override {}
    void onProcessingTime(Timestamp now, Emitter&) override {
      std::lock_guard l(*mu);
      seen->push_back(now.micros);
    }
  };
  auto ticks = std::make_shared<std::vector<int64_t>>();
  auto mu = std::make_shared<std::mutex>();
  auto count = [&] {
    std::lock_guard l(*mu);
    return ticks->size();
  };
  ManualClock clock(Timestamp{1'000'000});
  auto gates = std::make_shared<Gates>();
  TopologyBuilder b;
  b.setSpout("numbers", ScriptSpout({{S::Gate, 0}}, gates), 1);
  b.setBolt("ticks", Ticks(ticks, mu), 1).shuffleGrouping("numbers");
  Continuous c = fastConfig();
  c.clock = &clock;
  c.tickInterval = std::chrono::milliseconds(100);
  auto rt = runContinuous(b.build(), c);
  // Let the executor run many loop turns with the clock standing still: no tick.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(count(), 0u) << "a tick fired although the clock did not move";
  clock.advance(std::chrono::milliseconds(100));
  ASSERT_TRUE(eventually([&] { return count() == 1; }));
  clock.advance(std::chrono::milliseconds(100));
  ASSERT_TRUE(eventually([&] { return count() == 2; }));
  rt.kill();
  std::lock_guard l(*mu);
  EXPECT_EQ(*ticks, (std::vector<int64_t>{1'100'000, 1'200'000}));
}

TEST(Runtime, AComponentThatFailsToPrepareStopsTheStartWithItsName) {
  struct Broken : RecordingBolt {
    using RecordingBolt::RecordingBolt;
    std::unique_ptr<Bolt> clone() const override { return std::make_unique<Broken>(seen_); }
    void prepare(const TopologyContext&, OutputCollector&) override {
      throw std::runtime_error("no database");
    }
  };
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(10, 1, std::make_shared<CountingState>()), 1);
  b.setBolt("db", Broken(std::make_shared<Seen>()), 1).shuffleGrouping("numbers");
  try {
    runContinuous(b.build(), fastConfig());
    FAIL() << "started although a bolt failed to prepare";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("component 'db'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos) << e.what();
  }
}

TEST(Runtime, ABadConfigurationIsRejected) {
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(10, 1, std::make_shared<CountingState>()), 1);
  Continuous c;
  c.numAckers = 0;
  EXPECT_THROW(runContinuous(b.build(), c), std::invalid_argument);
}

TEST(Runtime, EmittingAnUndeclaredStreamThrowsAtTheEmitAndStopsTheTopologyNamingTheComponent) {
  struct Wrong : RecordingBolt {
    using RecordingBolt::RecordingBolt;
    std::unique_ptr<Bolt> clone() const override { return std::make_unique<Wrong>(seen_, out_); }
    void execute(const Tuple& t, OutputCollector& out) override {
      try {
        out.emit("nope", t, Values{int64_t{1}});
      } catch (const std::invalid_argument& e) {
        seen_->event(task_, e.what());
      }
      out.ack(t);
    }
  };
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(1, 1, std::make_shared<CountingState>()), 1);
  b.setBolt("wrong", Wrong(seen, Fields{{"n", Type::Int64}}), 1).shuffleGrouping("numbers");
  auto rt = runContinuous(b.build(), fastConfig());
  // Caught by the bolt or not, the emit is a bug in the component: the topology stops.
  EXPECT_THROW(rt.waitUntilDone(std::chrono::seconds(10)), std::runtime_error);
  auto ev = seen->eventsOf(1);
  ASSERT_GE(ev.size(), 1u);
  EXPECT_NE(ev[0].find("component 'wrong' emitted on stream 'nope'"), std::string::npos) << ev[0];
  EXPECT_NE(rt.error().find("component 'wrong' emitted on stream 'nope'"), std::string::npos);
}

}  // namespace
}  // namespace gale
