// The micro-batch link's messages (batch_link.h): every field survives a round trip, an erase
// stays an erase, and a damaged or foreign message is refused (the link drops it) instead of
// being read as something else.
#include "batch_link.h"

#include <gtest/gtest.h>

#include "gale/core/state_codec.h"

namespace gale::batchlink {
namespace {

TEST(BatchLinkCodec, PlansResultsAndStartPayloadsRoundTripAndAMalformedMessageIsDropped) {
  BatchPlan plan;
  plan.txid = 42;
  plan.ranges = {{{0, 10, 20}, {3, -1, 7}}, {}};
  plan.start = {{"a", {10, 0, 0, -1}}, {"b", {}}};
  plan.end = {{"a", {20, 0, 0, 7}}, {"b", {}}};
  plan.records = 18;
  plan.endOfInput = true;
  std::string bytes = encode(plan);
  ASSERT_EQ(kindOf(bytes), Kind::Plan);
  BatchPlan back = decodePlan(bytes);
  EXPECT_EQ(back.txid, 42u);
  EXPECT_EQ(back.ranges, plan.ranges);
  EXPECT_EQ(back.start, plan.start);
  EXPECT_EQ(back.end, plan.end);
  EXPECT_EQ(back.records, 18);
  EXPECT_TRUE(back.endOfInput);
  EXPECT_FALSE(back.replay);

  Result r{.txid = 7, .tasks = 3};
  r.result.snapshots = {{"count#1", std::string("\0\1x", 3)}, {"$source-watermarks", "w"}};
  r.result.watermark = Timestamp{-5};
  r.result.sinks = {"sink"};
  r.result.originSamples = {{123, 4}, {0, 1}};
  r.result.stateEntries = 9;
  r.result.unrouted = 2;
  r.result.eventTimeMin = -3;
  r.result.eventTimeMax = 1'000'000'000'000;
  r.result.eventTimeSum = 2.5;
  r.result.eventTimeCount = 2;
  r.result.operators["count"] = {5, 6, 1};
  r.result.entryChanges["$entries:join"] = {{"1#k", "v"}, {"1#gone", std::nullopt}};
  Result rb = decodeResult(encode(r));
  EXPECT_EQ(rb.txid, 7u);
  EXPECT_EQ(rb.tasks, 3);
  EXPECT_EQ(rb.result.snapshots, r.result.snapshots);
  EXPECT_EQ(rb.result.watermark, r.result.watermark);
  EXPECT_EQ(rb.result.sinks, r.result.sinks);
  ASSERT_EQ(rb.result.originSamples.size(), 2u);
  EXPECT_EQ(rb.result.originSamples[0].originNanos, 123);
  EXPECT_EQ(rb.result.originSamples[0].weight, 4u);
  EXPECT_EQ(rb.result.stateEntries, 9u);
  EXPECT_EQ(rb.result.unrouted, 2u);
  EXPECT_EQ(rb.result.eventTimeMin, -3);
  EXPECT_EQ(rb.result.eventTimeMax, 1'000'000'000'000);
  EXPECT_EQ(rb.result.eventTimeSum, 2.5);
  EXPECT_EQ(rb.result.eventTimeCount, 2u);
  EXPECT_EQ(rb.result.operators.at("count").rowsEmitted, 6u);
  EXPECT_EQ(rb.result.operators.at("count").droppedByWatermark, 1u);
  EXPECT_EQ(rb.result.entryChanges, r.result.entryChanges);  // the erase stays an erase
  Result none = decodeResult(encode(Result{.txid = 1, .tasks = 1}));
  EXPECT_FALSE(none.result.watermark);

  BatchResult keyed;
  keyed.keyed["trident"].updates["k"] = [](std::optional<std::string_view>) {
    return std::optional<std::string>("v");
  };
  EXPECT_THROW(encode(Result{.txid = 1, .tasks = 1, .result = keyed}), std::logic_error);

  Start s;
  s.lastTxid = 11;
  s.watermark = Timestamp{99};
  s.snapshots = {{"count#0", "a"}};
  s.entries["$entries:join"] = {{"0#a", "1"}, {"1#b", ""}};
  s.offsets = {{"words", {{0, 5}, {2, 8}}}};
  s.partitionOrders = {{"words", "t/0\nt/1\n"}};
  Start sb = decodeStart(encodeStart(s));
  EXPECT_EQ(sb.lastTxid, 11u);
  EXPECT_EQ(sb.watermark, s.watermark);
  EXPECT_EQ(sb.snapshots, s.snapshots);
  EXPECT_EQ(sb.entries, s.entries);
  EXPECT_EQ(sb.offsets, s.offsets);
  EXPECT_EQ(sb.partitionOrders, s.partitionOrders);

  Watermark w = decodeWatermark(encode(Watermark{.txid = 3, .watermark = std::nullopt,
                                                 .snapshot = "ws"}));
  EXPECT_EQ(w.txid, 3u);
  EXPECT_FALSE(w.watermark);
  EXPECT_EQ(w.snapshot, "ws");
  Status st = decodeStatus(encode(Status{.committed = 8, .held = {9, 10}, .done = true}));
  EXPECT_EQ(st.committed, 8u);
  EXPECT_EQ(st.held, (std::vector<uint64_t>{9, 10}));
  EXPECT_TRUE(st.done);
  EventTime e = decodeEventTime(encode(
      EventTime{.txid = 4, .spoutTask = 2, .source = 1, .maxEvent = {{0, -7}}, .endOfInput = true}));
  EXPECT_EQ(e.txid, 4u);
  EXPECT_EQ(e.spoutTask, 2);
  EXPECT_EQ(e.source, 1u);
  EXPECT_EQ(e.maxEvent, (std::map<int, int64_t>{{0, -7}}));
  EXPECT_TRUE(e.endOfInput);

  // Damaged: cut short, one byte more, another kind, an unknown kind, nothing.
  EXPECT_THROW(decodeResult(encode(r).substr(0, 20)), SnapshotError);
  EXPECT_THROW(decodePlan(encode(plan) + "x"), SnapshotError);
  EXPECT_THROW(decodePlan(encode(Watermark{.txid = 1})), SnapshotError);
  EXPECT_THROW(kindOf("Z"), SnapshotError);
  EXPECT_THROW(kindOf(""), SnapshotError);
  EXPECT_THROW(decodeStart(encode(plan)), SnapshotError);
}

}  // namespace
}  // namespace gale::batchlink
