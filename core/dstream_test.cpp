#include "gale/core/dstream.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "gale/core/state_codec.h"
#include "window_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using testing::RecordingEmitter;
using testing::sec;
using testing::tup;

TEST(ReduceByKeyAndWindow, EmitsEveryKeyOfEachSlidingWindowWhenTheWatermarkPassesItsEnd) {
  auto op = reduceByKeyAndWindow({"word"}, "v", plus, minus, 10s, 5s, EventTime("ts"));
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1), 1), out);
  op->onTuple(tup("a", sec(7), 2), out);
  op->onTuple(tup("b", sec(12), 4), out);
  op->onWatermark(Timestamp{sec(10).micros - 1}, out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"a", sec(-5), sec(5), int64_t{1}},
                                                   {"a", sec(0), sec(10), int64_t{3}}}));
  out.clear();
  op->onWatermark(sec(100), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"a", sec(5), sec(15), int64_t{2}},
                                                   {"b", sec(5), sec(15), int64_t{4}},
                                                   {"b", sec(10), sec(20), int64_t{4}}}));
  EXPECT_EQ(op->stateSize(), 0u) << "keys whose window is empty are dropped";
}

TEST(ReduceByKeyAndWindow, IsComputedIncrementallyWithTheInverseFunction) {
  int reduces = 0, inverses = 0;
  auto op = reduceByKeyAndWindow(
      {}, "v", [&](const Value& a, const Value& b) { ++reduces; return plus(a, b); },
      [&](const Value& a, const Value& b) { ++inverses; return minus(a, b); }, 100s, 1s,
      EventTime("ts"));
  RecordingEmitter out;
  for (int s = 0; s < 300; ++s) op->onTuple(tup("x", sec(s), s), out);
  reduces = 0;
  op->onWatermark(sec(400), out);
  // 300 slices, 100-slice windows: about one reduce and one inverse per slide, not 100 reduces.
  EXPECT_LE(reduces, 400);
  EXPECT_GE(inverses, 250);
  auto rows = out.main();
  ASSERT_EQ(rows.size(), 399u);
  // The window ending at 150 s holds slices 50..149: sum = 50 + ... + 149.
  for (const auto& r : rows) {
    if (std::get<Timestamp>(r[1]) == sec(150)) {
      EXPECT_EQ(r[2], Value{int64_t{9950}});
    }
  }
}

TEST(ReduceByKeyAndWindow, MatchesABruteForceSumOverRandomDisorderedInput) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    auto op = reduceByKeyAndWindow({"word"}, "v", plus, minus, Duration(12), Duration(4),
                                   EventTime("ts"));
    std::unique_ptr<Operator> twin = op->clone();
    std::vector<std::tuple<std::string, int64_t, int64_t>> accepted;
    RecordingEmitter out, tout;
    int64_t maxSeen = 0;
    for (int i = 0; i < 200; ++i) {
      int64_t ts = i / 3 + static_cast<int64_t>(rng() % 5);
      std::string w(1, static_cast<char>('a' + rng() % 3));
      int64_t v = static_cast<int64_t>(rng() % 10);
      size_t lateBefore = out.on("late").size();
      op->onTuple(tup(w, Timestamp{ts}, v), out);
      twin->onTuple(tup(w, Timestamp{ts}, v), tout);
      if (out.on("late").size() == lateBefore) accepted.emplace_back(w, ts, v);
      maxSeen = std::max(maxSeen, ts);
      if (rng() % 4 == 0) {
        Timestamp wm{maxSeen - static_cast<int64_t>(rng() % 6)};
        op->onWatermark(wm, out);
        twin->onWatermark(wm, tout);
      }
      if (rng() % 9 == 0) {
        auto fresh = twin->clone();
        fresh->restore(twin->snapshot());
        twin = std::move(fresh);
      }
    }
    op->onEndOfInput(out);
    twin->onEndOfInput(tout);
    ASSERT_EQ(out.sortedMain(), tout.sortedMain()) << "restored twin, seed " << seed;
    ASSERT_EQ(out.on("late").size(), tout.on("late").size()) << "restored twin, seed " << seed;
    std::map<std::pair<std::string, int64_t>, int64_t> expect;  // (key, window start) -> sum
    for (auto& [w, ts, v] : accepted)
      for (int64_t s = ts / 4 * 4 - 8; s <= ts; s += 4)
        if (ts >= s && ts < s + 12) expect[{w, s}] += v;
    std::map<std::pair<std::string, int64_t>, int64_t> got;
    for (const auto& r : out.main()) {
      auto key = std::make_pair(std::get<std::string>(r[0]), std::get<Timestamp>(r[1]).micros);
      ASSERT_FALSE(got.count(key)) << "window emitted twice";
      got[key] = std::get<int64_t>(r[3]);
    }
    ASSERT_EQ(got, expect) << "seed " << seed;
  }
}

TEST(ReduceByKeyAndWindow, ATupleForAnEmittedWindowGoesToTheLateStream) {
  auto op = countByWindow(10s, 5s, EventTime("ts"));
  RecordingEmitter out;
  op->onTuple(tup("a", sec(12)), out);
  op->onWatermark(sec(20), out);
  op->onTuple(tup("a", sec(18)), out);
  EXPECT_EQ(out.on("late").size(), 1u);
  EXPECT_EQ(op->lateCount(), 1u);
  op->onTuple(tup("a", sec(21)), out);
  EXPECT_EQ(out.on("late").size(), 1u);
}

TEST(ReduceByKeyAndWindow, CountByValueAndWindowCountsEachDistinctValue) {
  auto op = countByValueAndWindow({"word"}, 4s, 2s, EventTime("ts"));
  RecordingEmitter out;
  for (const char* w : {"x", "y", "x"}) op->onTuple(tup(w, sec(1)), out);
  op->onWatermark(Timestamp{sec(2).micros - 1}, out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"x", sec(-2), sec(2), int64_t{2}},
                                                   {"y", sec(-2), sec(2), int64_t{1}}}));
  OutputFieldsDeclarer d;
  op->declareOutputFields(d);
  EXPECT_EQ(d.find(kDefaultStream)->names(),
            (std::vector<std::string>{"word", "window_start", "window_end", "count"}));
}

TEST(ReduceByKeyAndWindow, BadConfigurationAndCorruptSnapshotsAreClearErrors) {
  EXPECT_THROW(reduceByKeyAndWindow({}, "v", plus, minus, 10s, 3s, EventTime("ts")),
               std::invalid_argument);
  EXPECT_THROW(reduceByKeyAndWindow({}, "v", nullptr, minus, 10s, 5s, EventTime("ts")),
               std::invalid_argument);
  EXPECT_THROW(reduceByKeyAndWindow({}, "v", plus, minus, 10s, 5s, EventTime()),
               std::invalid_argument);
  auto op = countByWindow(10s, 5s, EventTime("ts"));
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  std::string snap = op->snapshot();
  for (size_t n = 0; n < snap.size(); ++n)
    EXPECT_THROW(op->clone()->restore(snap.substr(0, n)), SnapshotError);
  EXPECT_THROW(plus(Value{std::string("a")}, Value{int64_t{1}}), std::invalid_argument);
}

TEST(UpdateStateByKey, KeepsARunningStatePerKeyAndDropsKeysWhenTheFunctionSaysSo) {
  // Running sum; a key whose sum reaches >= 10 is emitted once more, then removed.
  UpdateStateByKey op({"word"}, "v", [](const std::vector<Value>& fresh, const std::optional<Value>& st)
                          -> std::optional<Value> {
    if (st && std::get<int64_t>(*st) >= 10) return std::nullopt;
    int64_t sum = st ? std::get<int64_t>(*st) : 0;
    for (const auto& v : fresh) sum += std::get<int64_t>(v);
    return Value{sum};
  });
  RecordingEmitter out;
  op.onTuple(tup("a", sec(0), 4), out);
  op.onTuple(tup("a", sec(0), 3), out);
  op.onTuple(tup("b", sec(0), 1), out);
  EXPECT_TRUE(out.rows.empty()) << "updates happen at the processing-time tick";
  op.onProcessingTime(sec(1), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"a", int64_t{7}}, {"b", int64_t{1}}}));
  out.clear();
  op.onTuple(tup("a", sec(0), 5), out);
  auto fresh = op.clone();
  fresh->restore(op.snapshot());
  RecordingEmitter out2;
  op.onProcessingTime(sec(2), out);
  fresh->onProcessingTime(sec(2), out2);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"a", int64_t{12}}, {"b", int64_t{1}}}));
  EXPECT_EQ(out2.sortedMain(), out.sortedMain());
  out.clear();
  op.onProcessingTime(sec(3), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"b", int64_t{1}}}));
  EXPECT_EQ(op.stateSize(), 1u);
  EXPECT_THROW(op.restore("GUSK\x01\x05"), SnapshotError);
}

}  // namespace
}  // namespace gale
