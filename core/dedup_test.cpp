// Deduplication: Spark's documented rules by hand, then a brute-force oracle over random disorder,
// watermarks and snapshot/restore points.
#include "gale/core/dedup.h"

#include <map>
#include <random>

#include <gtest/gtest.h>

#include "gale/core/state_codec.h"
#include "window_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;

const Fields kInput{{"guid", Type::String}, {"ts", Type::Timestamp}, {"v", Type::Int64}};
const SchemaPtr kSchema = makeSchema("events", kDefaultStream, kInput);

Tuple row(std::string guid, Timestamp ts, int64_t v = 0) {
  return Tuple(kSchema, Values{std::move(guid), ts, v});
}

TEST(Deduplicate, WithoutAWatermarkTheFirstRowOfEachKeyPassesAndStateGrows) {
  auto op = dropDuplicates(kInput, {"guid"});
  RecordingEmitter out;
  op.onTuple(row("a", sec(1), 1), out);
  op.onTuple(row("b", sec(2), 2), out);
  op.onTuple(row("a", sec(3), 3), out);
  op.onWatermark(sec(100), out);  // no event-time field: nothing expires
  op.onTuple(row("a", sec(200), 4), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{"a", sec(1), int64_t{1}}, {"b", sec(2), int64_t{2}}}));
  EXPECT_EQ(op.droppedDuplicates(), 2u);
  EXPECT_EQ(op.stateSize(), 2u);
}

// A snapshot's watermark, counters and held keys (key -> expiry), whatever their order.
struct Decoded {
  int64_t wm = 0;
  uint64_t duplicates = 0, late = 0;
  std::map<std::string, int64_t> held;
  friend bool operator==(const Decoded&, const Decoded&) = default;
};
Decoded decode(const std::string& bytes) {
  StateReader r(bytes, "test");
  r.header("DDUP", 1);
  Decoded d{r.svarint("wm"), r.varint("dups"), r.varint("late"), {}};
  for (uint64_t n = r.varint("n"); n > 0; --n) {
    std::string k = r.str("key");
    d.held[k] = r.svarint("expiry");
  }
  r.expectEnd();
  return d;
}

// Exactly-once continuous mode writes the asynchronous snapshot on another thread, later: it is
// the state when it was taken, whatever rows, duplicates and evictions came after.
TEST(Deduplicate, AnAsynchronousSnapshotIsTheStateWhenItWasTakenWhateverCameAfter) {
  auto op = dropDuplicates(kInput, {"guid", "ts"}, "ts");
  RecordingEmitter out;
  for (int i = 0; i < 500; ++i) op.onTuple(row("k" + std::to_string(i), sec(i)), out);
  op.onWatermark(sec(100), out);
  const Decoded atBarrier = decode(op.snapshot());
  AsyncSnapshot::Write write = op.snapshotAsync(1);
  for (int i = 500; i < 2000; ++i) op.onTuple(row("k" + std::to_string(i), sec(i)), out);
  op.onTuple(row("k600", sec(600)), out);  // a duplicate
  op.onWatermark(sec(300), out);           // evicts keys held when it was taken
  op.onTuple(row("k50", sec(50)), out);    // late
  const std::string written = write();
  EXPECT_EQ(decode(written), atBarrier);
  EXPECT_NE(decode(op.snapshot()), atBarrier) << "nothing changed after the snapshot";
  auto restored = dropDuplicates(kInput, {"guid", "ts"}, "ts");
  restored.restore(written);
  EXPECT_EQ(decode(restored.snapshot()), atBarrier);
}

TEST(Deduplicate, WithEventTimeAmongTheKeysStateIsDroppedOnceTheWatermarkPassesIt) {
  // Spark's guide: dropDuplicates("guid", "eventTime") with withWatermark("eventTime", ...).
  auto op = dropDuplicates(kInput, {"guid", "ts"}, "ts");
  RecordingEmitter out;
  op.onTuple(row("a", sec(10)), out);
  op.onTuple(row("a", sec(10)), out);  // duplicate
  op.onTuple(row("a", sec(11)), out);  // another event time: another key
  EXPECT_EQ(op.stateSize(), 2u);
  op.onWatermark(sec(10), out);
  EXPECT_EQ(op.stateSize(), 1u) << "the key at 10 s can have no on-time duplicate any more";
  op.onTuple(row("a", sec(10)), out);  // at the watermark: late, not a new row
  EXPECT_EQ(out.main().size(), 2u);
  EXPECT_EQ(out.on("late").size(), 1u);
  EXPECT_EQ(op.droppedLate(), 1u);
  EXPECT_EQ(op.droppedDuplicates(), 1u);
}

TEST(Deduplicate, WithinWatermarkDropsDuplicatesWithOtherEventTimesUntilTheDelayHasPassed) {
  // Spark 3.5's dropDuplicatesWithinWatermark("guid") with a 10 s watermark delay: the first
  // occurrence at 5 s holds "a" until the watermark reaches 15 s.
  auto op = dropDuplicatesWithinWatermark(kInput, {"guid"}, "ts", 10s);
  RecordingEmitter out;
  op.onTuple(row("a", sec(5), 1), out);
  op.onTuple(row("a", sec(9), 2), out);   // dropped though its event time differs
  op.onWatermark(sec(14), out);
  op.onTuple(row("a", sec(20), 3), out);  // still held (expires at 15 s)
  op.onWatermark(sec(15), out);
  EXPECT_EQ(op.stateSize(), 0u);
  op.onTuple(row("a", sec(21), 4), out);  // a new first occurrence
  EXPECT_EQ(out.main(), (std::vector<Values>{{"a", sec(5), int64_t{1}}, {"a", sec(21), int64_t{4}}}));
  EXPECT_EQ(op.droppedDuplicates(), 2u);
}

TEST(Deduplicate, BadConfigurationsAreRejectedNamingTheField) {
  auto msg = [](auto fn) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  {
    EXPECT_NE(msg([] { dropDuplicates(kInput, {"nope"}); }).find("'nope'"), std::string::npos);
    EXPECT_NE(msg([] { dropDuplicates(kInput, {}); }).find("no key fields"), std::string::npos);
    EXPECT_NE(msg([] { dropDuplicates(kInput, {"guid"}, "when"); }).find("'when'"),
              std::string::npos);
    EXPECT_NE(msg([] { dropDuplicatesWithinWatermark(kInput, {"guid"}, "", 1s); })
                  .find("needs an event-time field"),
              std::string::npos);
  }
}

TEST(Deduplicate, ACorruptSnapshotIsRefusedAndLeavesTheStateAsItWas) {
  auto op = dropDuplicates(kInput, {"guid"});
  RecordingEmitter out;
  op.onTuple(row("a", sec(1)), out);
  std::string snap = op.snapshot();
  auto other = dropDuplicates(kInput, {"guid"});
  other.onTuple(row("z", sec(1)), out);
  EXPECT_THROW(other.restore(snap.substr(0, snap.size() - 1)), SnapshotError);
  EXPECT_THROW(other.restore(snap + "x"), SnapshotError);
  EXPECT_EQ(other.stateSize(), 1u);
  other.restore(snap);
  other.onTuple(row("a", sec(2)), out);
  EXPECT_EQ(other.droppedDuplicates(), 1u);
}

// The oracle: a row is late when its event time is at or behind the watermark; otherwise it is a
// duplicate when the last row of its key that went through is still held: for dropDuplicates
// with event time among the keys always (the same key has the same event time, so the row is
// on time exactly when its twin still is), for the within-watermark variant while that row's
// event time + delay is after the watermark, and without event time for ever.
struct Event {
  bool isWatermark;
  std::string guid;
  int64_t ts;
};

std::vector<Values> oracle(const std::vector<Event>& evs, bool within, int64_t delay, bool timed) {
  std::vector<Values> outRows;
  std::vector<std::pair<std::string, int64_t>> passed;  // key, ts of the rows that went through
  int64_t wm = INT64_MIN;
  for (const Event& e : evs) {
    if (e.isWatermark) {
      wm = std::max(wm, e.ts);
      continue;
    }
    if (timed && e.ts <= wm) continue;
    bool dup = false;
    for (auto it = passed.rbegin(); it != passed.rend(); ++it) {
      bool same = within || !timed ? it->first == e.guid : it->first == e.guid && it->second == e.ts;
      if (!same) continue;
      dup = within ? it->second + delay > wm : true;
      break;
    }
    if (dup) continue;
    passed.emplace_back(e.guid, e.ts);
    outRows.push_back(Values{e.guid, Timestamp{e.ts}, int64_t{0}});
  }
  return outRows;
}

TEST(Deduplicate, RandomDisorderWatermarksAndRestoresMatchABruteForceOracle) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int variant = static_cast<int>(rng() % 3);  // 0: no time, 1: time in keys, 2: within
    const int64_t delay = static_cast<int64_t>(rng() % 4) * 1'000'000;
    std::vector<Event> evs;
    int64_t front = 0, wm = INT64_MIN;
    for (int i = 0; i < 200; ++i) {
      if (rng() % 8 == 0) {
        wm = std::max(wm, front - static_cast<int64_t>(rng() % 5) * 1'000'000);
        evs.push_back({true, "", wm});
        continue;
      }
      front += static_cast<int64_t>(rng() % 3) * 500'000;
      int64_t ts = front - static_cast<int64_t>(rng() % 6) * 500'000;  // disorder, some late
      evs.push_back({false, std::string(1, static_cast<char>('a' + rng() % 6)), ts});
    }
    auto make = [&] {
      if (variant == 0) return dropDuplicates(kInput, {"guid"});
      if (variant == 1) return dropDuplicates(kInput, {"guid", "ts"}, "ts");
      return dropDuplicatesWithinWatermark(kInput, {"guid"}, "ts", Duration(delay));
    };
    Deduplicate op = make();
    RecordingEmitter out;
    const size_t restoreAt = rng() % evs.size();
    for (size_t i = 0; i < evs.size(); ++i) {
      if (i == restoreAt) {  // a restarted task continues from the snapshot
        Deduplicate fresh = make();
        fresh.restore(op.snapshot());
        op = std::move(fresh);
      }
      if (evs[i].isWatermark) op.onWatermark(Timestamp{evs[i].ts}, out);
      else op.onTuple(row(evs[i].guid, Timestamp{evs[i].ts}), out);
    }
    ASSERT_EQ(out.main(), oracle(evs, variant == 2, delay, variant != 0))
        << "trial " << trial << " variant " << variant;
  }
}

}  // namespace
}  // namespace gale
