// InputGate on its own: watermark alignment, idle inputs, batch barriers and end of stream,
// with a listener that records what the gate decided.
#include "private/input_gate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "private/runtime_shared.h"

namespace gale {
namespace {

class Recorder : public InputGate::Listener {
 public:
  std::vector<std::string> log;
  void deliver(Tuple& t) override { log.push_back("tuple " + std::to_string(t.getInt(0))); }
  void watermarkAdvanced(Timestamp wm) override {
    log.push_back(wm == kEndOfTime ? "wm end" : "wm " + std::to_string(wm.micros));
  }
  void batchBegun(uint64_t txid) override { log.push_back("begin " + std::to_string(txid)); }
  void batchAligned(uint64_t txid) override { log.push_back("end " + std::to_string(txid)); }
  void barrierAligned(uint64_t id) override { log.push_back("barrier " + std::to_string(id)); }
  void barrierCompleted(uint64_t id, std::vector<Tuple>&& inFlight) override {
    std::string s = "complete " + std::to_string(id) + " in-flight";
    for (const Tuple& t : inFlight) s += " " + std::to_string(t.getInt(0));
    log.push_back(s);
  }
  void inputsEnded() override { log.push_back("ended"); }
  void forward(const Control& c) override {
    std::string s = std::string("fwd ") + controlKindName(c.kind);
    if (c.kind == ControlKind::Watermark)
      s += " " + std::to_string(c.time) + (c.value == kIdleWatermark ? " idle" : "");
    if (c.kind == ControlKind::BatchBegin || c.kind == ControlKind::BatchEnd ||
        c.kind == ControlKind::Barrier)
      s += " " + std::to_string(c.value);
    log.push_back(s);
  }
};

Tuple intTuple(int64_t v) {
  static SchemaPtr schema = makeSchema("up", "default", Fields{{"n", Type::Int64}});
  return Tuple(schema, Values{v});
}
Control watermark(int64_t micros, bool idle = false) {
  Control c;
  c.kind = ControlKind::Watermark;
  c.time = micros;
  c.value = idle ? kIdleWatermark : 0;
  return c;
}

class InputGateTest : public ::testing::Test {
 protected:
  Recorder rec;
  InputGate gate{rec, "bolt task 9"};
  void SetUp() override {
    gate.addInput(3);
    gate.addInput(4);
  }
};

TEST_F(InputGateTest, TheInputWatermarkIsTheMinimumOverItsInputs) {
  gate.control(3, watermark(100));
  EXPECT_TRUE(rec.log.empty()) << "one input alone does not move the watermark";
  gate.control(4, watermark(50));
  gate.control(4, watermark(200));
  EXPECT_EQ(rec.log, (std::vector<std::string>{"wm 50", "fwd watermark 50", "wm 100",
                                               "fwd watermark 100"}));
  EXPECT_EQ(gate.inputWatermark(), 100);
}

TEST_F(InputGateTest, AnIdleInputNoLongerHoldsTheWatermarkBack) {
  gate.control(3, watermark(100));
  gate.control(4, watermark(10, /*idle=*/true));
  EXPECT_EQ(gate.inputWatermark(), 100);
  EXPECT_EQ(gate.idleInputs(), 1u);
  EXPECT_FALSE(gate.outputIdle());
  gate.control(3, watermark(100, /*idle=*/true));
  EXPECT_TRUE(gate.outputIdle()) << "every live input idle: the output is idle too";
  EXPECT_EQ(rec.log.back(), "fwd watermark 100 idle");
}

TEST_F(InputGateTest, ItemsAfterABatchEndWaitUntilEveryInputEndedThatBatch) {
  gate.tuple(3, intTuple(1));
  gate.control(3, Control{ControlKind::BatchEnd, 0, 7});
  gate.tuple(3, intTuple(2));                      // held: input 3 is past the barrier
  gate.tuple(4, intTuple(3));                      // input 4 is not: delivered
  EXPECT_EQ(gate.buffered(), 1u);
  gate.control(4, Control{ControlKind::BatchEnd, 0, 7});
  EXPECT_EQ(gate.buffered(), 0u);
  EXPECT_EQ(rec.log, (std::vector<std::string>{"tuple 1", "tuple 3", "end 7", "fwd batchEnd 7",
                                               "tuple 2"}));
}

TEST_F(InputGateTest, ItemsAfterACheckpointBarrierWaitUntilEveryInputDeliveredIt) {
  gate.tuple(4, intTuple(1));
  gate.control(4, Control{ControlKind::Barrier, 0, 12});
  gate.tuple(4, intTuple(2));                      // after the barrier: held
  gate.control(4, watermark(40));                  // markers too
  gate.tuple(3, intTuple(3));                      // before it: delivered
  EXPECT_EQ(gate.buffered(), 2u);
  gate.control(3, Control{ControlKind::Barrier, 0, 12});
  EXPECT_EQ(gate.buffered(), 0u);
  EXPECT_EQ(rec.log, (std::vector<std::string>{"tuple 1", "tuple 3", "barrier 12",
                                               "fwd barrier 12", "tuple 2"}));
}

// Unaligned checkpoints: nothing waits; the first barrier is the snapshot point and goes on at
// once; what the other input sends before its barrier is in flight.
TEST_F(InputGateTest, AnUnalignedBarrierHoldsNothingBackAndHandsOverTheOtherInputsTuplesInFlight) {
  gate.setUnalignedBarriers(true);
  gate.tuple(3, intTuple(1));
  gate.control(3, Control{ControlKind::Barrier, 0, 7});
  gate.tuple(3, intTuple(2));  // after input 3's barrier: not in flight, not held
  gate.tuple(4, intTuple(3));  // before input 4's barrier: in flight
  gate.tuple(4, intTuple(4));
  gate.control(4, Control{ControlKind::Barrier, 0, 7});
  gate.tuple(4, intTuple(5));
  EXPECT_EQ(rec.log, (std::vector<std::string>{"tuple 1", "barrier 7", "fwd barrier 7",
                                               "tuple 2", "tuple 3", "tuple 4",
                                               "complete 7 in-flight 3 4", "tuple 5"}));
  EXPECT_EQ(gate.buffered(), 0u);
}

TEST_F(InputGateTest, AnUnalignedCheckpointCompletesWhenTheInputsWithoutItsBarrierEnd) {
  gate.setUnalignedBarriers(true);
  gate.control(4, Control{ControlKind::Barrier, 0, 2});
  gate.tuple(3, intTuple(8));
  gate.control(3, Control{ControlKind::EndOfStream});
  EXPECT_EQ(rec.log, (std::vector<std::string>{"barrier 2", "fwd barrier 2", "tuple 8",
                                               "complete 2 in-flight 8"}));
  rec.log.clear();
  gate.control(4, Control{ControlKind::Barrier, 0, 3});  // the only live input: complete at once
  EXPECT_EQ(rec.log, (std::vector<std::string>{"barrier 3", "fwd barrier 3",
                                               "complete 3 in-flight"}));
}

// The final checkpoint, and any whose first barrier comes from an input whose data ended, is
// aligned: nothing may be processed after it unrecorded. Its other barriers align with it.
TEST_F(InputGateTest, AnUnalignedGateAlignsABarrierThatComesFirstFromAnInputWhoseDataEnded) {
  gate.setUnalignedBarriers(true);
  gate.control(4, watermark(kEndOfInputWatermark.micros));
  gate.control(4, Control{ControlKind::Barrier, 0, 5});
  gate.tuple(3, intTuple(1));
  gate.control(3, Control{ControlKind::Barrier, 0, 5});  // input 3's data has not ended
  EXPECT_EQ(rec.log, (std::vector<std::string>{"tuple 1", "barrier 5", "complete 5 in-flight",
                                               "fwd barrier 5"}));
}

TEST_F(InputGateTest, AHeldBackSecondBarrierAlignsAfterTheFirst) {
  gate.control(3, Control{ControlKind::BatchEnd, 0, 1});
  gate.tuple(3, intTuple(10));
  gate.control(3, Control{ControlKind::BatchEnd, 0, 2});  // held behind barrier 1
  gate.control(4, Control{ControlKind::BatchEnd, 0, 1});
  EXPECT_EQ(rec.log, (std::vector<std::string>{"end 1", "fwd batchEnd 1", "tuple 10"}));
  gate.control(4, Control{ControlKind::BatchEnd, 0, 2});
  EXPECT_EQ(rec.log.back(), "fwd batchEnd 2");
}

// A fused task's host delivers a lent tuple itself (BoltExecutor::runLent) only when the gate
// says it would deliver it at once and keep nothing: an input waiting for alignment and an
// unaligned checkpoint collecting its in-flight data must both say no.
TEST_F(InputGateTest, ATupleIsDeliverableAtOnceOnlyWhileItsInputIsNotHeldBackForAlignment) {
  EXPECT_TRUE(gate.deliversAtOnce(3));
  EXPECT_FALSE(gate.deliversAtOnce(5)) << "not an input";
  gate.control(3, Control{ControlKind::Barrier, 0, 12});
  EXPECT_FALSE(gate.deliversAtOnce(3)) << "input 3 is past the barrier: its tuples wait";
  EXPECT_TRUE(gate.deliversAtOnce(4));
  gate.control(4, Control{ControlKind::Barrier, 0, 12});
  EXPECT_TRUE(gate.deliversAtOnce(3));
  gate.control(4, Control{ControlKind::BatchEnd, 0, 7});
  EXPECT_FALSE(gate.deliversAtOnce(4)) << "input 4 ended batch 7 first: its tuples wait";
  gate.control(3, Control{ControlKind::BatchEnd, 0, 7});
  EXPECT_TRUE(gate.deliversAtOnce(4));
}

TEST_F(InputGateTest, NoTupleIsDeliverableAtOnceWhileAnUnalignedCheckpointCollectsItsInFlightData) {
  gate.setUnalignedBarriers(true);
  gate.control(3, Control{ControlKind::Barrier, 0, 12});
  EXPECT_FALSE(gate.deliversAtOnce(4)) << "input 4's tuples are the checkpoint's in-flight data";
  gate.control(4, Control{ControlKind::Barrier, 0, 12});
  EXPECT_TRUE(gate.deliversAtOnce(3));
  EXPECT_TRUE(gate.deliversAtOnce(4));
}

// A fused task's gate has one input, which deliversAtOnce answers by two compares: it must
// still say no while that input's own batch end or barrier holds it (during the callbacks the
// marker runs, where a bolt may emit) and yes again once the marker has been dealt with.
class AtOnceProbe : public Recorder {
 public:
  InputGate* gate = nullptr;
  void batchAligned(uint64_t txid) override { probe("end " + std::to_string(txid)); }
  void barrierAligned(uint64_t id) override { probe("barrier " + std::to_string(id)); }

 private:
  void probe(const std::string& what) {
    log.push_back(what + (gate->deliversAtOnce(3) ? " at once" : " held"));
  }
};

TEST(InputGateSoleInput, ASoleInputIsHeldWhileItsMarkersCallbacksRunAndDeliversAtOnceAfter) {
  AtOnceProbe probe;
  InputGate gate{probe, "bolt task 9"};
  probe.gate = &gate;
  EXPECT_FALSE(gate.deliversAtOnce(-1)) << "no input yet";
  gate.addInput(3);
  EXPECT_TRUE(gate.deliversAtOnce(3));
  EXPECT_FALSE(gate.deliversAtOnce(4)) << "not an input";
  gate.control(3, Control{ControlKind::BatchEnd, 0, 7});
  EXPECT_TRUE(gate.deliversAtOnce(3));
  gate.control(3, Control{ControlKind::Barrier, 0, 12});
  EXPECT_TRUE(gate.deliversAtOnce(3));
  gate.setUnalignedBarriers(true);
  gate.control(3, Control{ControlKind::Barrier, 0, 13});
  EXPECT_TRUE(gate.deliversAtOnce(3));
  std::vector<std::string> aligned;
  for (const std::string& l : probe.log)
    if (l.rfind("fwd", 0) != 0 && l.rfind("complete", 0) != 0) aligned.push_back(l);
  EXPECT_EQ(aligned,
            (std::vector<std::string>{"end 7 held", "barrier 12 held", "barrier 13 held"}));
}

TEST_F(InputGateTest, ABatchBeginIsForwardedOncePerNewTxid) {
  gate.control(3, Control{ControlKind::BatchBegin, 0, 5});
  gate.control(4, Control{ControlKind::BatchBegin, 0, 5});
  gate.control(4, Control{ControlKind::BatchBegin, 0, 4});
  EXPECT_EQ(rec.log, (std::vector<std::string>{"begin 5", "fwd batchBegin 5"}));
}

TEST_F(InputGateTest, AnEndedInputDoesNotHoldBackBarriersOrWatermarks) {
  gate.control(3, Control{ControlKind::EndOfStream});
  EXPECT_FALSE(gate.ended());
  gate.control(4, watermark(70));
  EXPECT_EQ(gate.inputWatermark(), 70);
  gate.control(4, Control{ControlKind::BatchEnd, 0, 3});
  EXPECT_EQ(rec.log.back(), "fwd batchEnd 3");
}

TEST_F(InputGateTest, WhenEveryInputEndedTheWatermarkReachesTheEndOfTimeOnceAndTheEndGoesOn) {
  gate.control(3, watermark(5));
  gate.control(4, Control{ControlKind::EndOfStream});
  gate.control(3, Control{ControlKind::EndOfStream});
  EXPECT_TRUE(gate.ended());
  EXPECT_EQ(gate.inputWatermark(), kEndOfTime.micros);
  std::vector<std::string> tail(rec.log.end() - 3, rec.log.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"wm end", "ended", "fwd endOfStream"}));
}

TEST_F(InputGateTest, AMarkerFromATaskThatIsNotAnInputIsRefused) {
  EXPECT_FALSE(gate.control(8, watermark(1)));
  EXPECT_FALSE(gate.control(-1, watermark(1)));
  EXPECT_TRUE(rec.log.empty());
  gate.tuple(8, intTuple(4));  // tuples were checked by the frame reader: delivered
  EXPECT_EQ(rec.log, (std::vector<std::string>{"tuple 4"}));
}

}  // namespace
}  // namespace gale
