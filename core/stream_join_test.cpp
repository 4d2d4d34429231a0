// Stream-stream joins: the peers' documented examples by hand, the build-time rules, and a
// brute-force oracle (rows and the moment each is emitted) over random disorder, watermarks,
// join types, time conditions and snapshot/restore points.
#include "gale/core/stream_join.h"

#include <random>
#include <set>

#include <gtest/gtest.h>

#include "gale/core/state_codec.h"
#include "window_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;

const Fields kL{{"k", Type::String}, {"ts", Type::Timestamp}, {"lv", Type::Int64}};
const Fields kR{{"k", Type::String}, {"ts", Type::Timestamp}, {"rv", Type::Int64}};
const SchemaPtr kLeftSchema = makeSchema("left", kDefaultStream, kL);
const SchemaPtr kRightSchema = makeSchema("right", kDefaultStream, kR);

JoinSide leftSide() { return {"left", kL, {"k"}, "ts"}; }
JoinSide rightSide() { return {"right", kR, {"k"}, "ts"}; }
Tuple L(std::string k, Timestamp t, int64_t v) { return Tuple(kLeftSchema, {std::move(k), t, v}); }
Tuple R(std::string k, Timestamp t, int64_t v) { return Tuple(kRightSchema, {std::move(k), t, v}); }
Values row(std::string k, Timestamp lt, int64_t lv, std::string rk, Timestamp rt, int64_t rv) {
  return {std::move(k), lt, lv, std::move(rk), rt, rv};
}
Values leftOnly(std::string k, Timestamp t, int64_t v) { return {std::move(k), t, v, {}, {}, {}}; }
Values rightOnly(std::string k, Timestamp t, int64_t v) { return {{}, {}, {}, std::move(k), t, v}; }

TEST(StreamJoin, IntervalJoinAsInFlinksDocumentation) {
  // Flink's example: orange stream joined with green elements in [t - 2, t + 1].
  StreamJoin j(leftSide(), rightSide(), JoinType::Inner, between(-2s, 1s));
  RecordingEmitter out;
  for (int t : {0, 2, 3, 4, 5, 7}) j.onTuple(R("x", sec(t), t), out);
  j.onTuple(L("x", sec(5), 50), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("x", sec(5), 50, "x", sec(3), 3),
                                                   row("x", sec(5), 50, "x", sec(4), 4),
                                                   row("x", sec(5), 50, "x", sec(5), 5)}));
  out.clear();
  j.onTuple(L("y", sec(5), 1), out);  // another key: nothing
  EXPECT_TRUE(out.main().empty());
}

TEST(StreamJoin, ExclusiveBoundsAsFlinksLowerAndUpperBoundExclusive) {
  // The same orange and green elements; exclusive bounds drop the pairs at the bound.
  auto run = [](JoinTimeCondition c) {
    StreamJoin j(leftSide(), rightSide(), JoinType::Inner, c);
    RecordingEmitter out;
    for (int t : {0, 2, 3, 4, 5, 7}) j.onTuple(R("x", sec(t), t), out);
    j.onTuple(L("x", sec(5), 50), out);
    std::vector<int64_t> matched;
    for (const auto& r : out.sortedMain()) matched.push_back(std::get<int64_t>(r[5]));
    return matched;
  };
  EXPECT_EQ(run(between(-2s, 1s)), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(run(between(-2s, 1s).lowerBoundExclusive()), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(run(between(-2s, 0s).upperBoundExclusive()), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(run(between(-3s, 2s).lowerBoundExclusive().upperBoundExclusive()),
            (std::vector<int64_t>{3, 4, 5}));
  EXPECT_THROW(StreamJoin(leftSide(), rightSide(), JoinType::Inner,
                          between(1s, 1s).upperBoundExclusive()),
               std::invalid_argument);
  EXPECT_THROW(StreamJoin(leftSide(), rightSide(), JoinType::Inner,
                          sameTumblingWindow(1s).lowerBoundExclusive()),
               std::invalid_argument);
}

TEST(StreamJoin, ALeftOuterRowIsEmittedWithNullsWhenTheWatermarkPassesItsRangeAndNotBefore) {
  // Spark's ad example: impressions left outer join clicks with click within 1 h after.
  StreamJoin j(leftSide(), rightSide(), JoinType::LeftOuter, between(0s, 3600s));
  RecordingEmitter out;
  j.onTuple(L("ad1", sec(0), 1), out);
  j.onTuple(L("ad2", sec(0), 2), out);
  j.onTuple(R("ad1", sec(100), 7), out);  // ad1 clicked
  EXPECT_EQ(out.main(), (std::vector<Values>{row("ad1", sec(0), 1, "ad1", sec(100), 7)}));
  j.onWatermark(sec(3599), out);
  EXPECT_EQ(out.main().size(), 1u) << "ad2 can still be clicked at 3600 s";
  j.onWatermark(sec(3600), out);
  EXPECT_EQ(out.main().back(), leftOnly("ad2", sec(0), 2));
  EXPECT_EQ(out.main().size(), 2u) << "ad1 matched: no null row for it";
  // The click at 100 s matched impressions in [100 s - 1 h, 100 s]; none of those can arrive after
  // watermark 100 s, so it was evicted then.
  EXPECT_EQ(j.stateSize(), 0u);
}

TEST(StreamJoin, RightOuterFullOuterAndLeftSemi) {
  auto run = [](JoinType type) {
    StreamJoin j(leftSide(), rightSide(), type, between(-1s, 1s));
    RecordingEmitter out;
    j.onTuple(L("a", sec(10), 1), out);
    j.onTuple(R("a", sec(10), 2), out);
    j.onTuple(R("a", sec(11), 3), out);  // matches the same left row again
    j.onTuple(L("b", sec(10), 4), out);
    j.onTuple(R("c", sec(10), 5), out);
    j.onWatermark(sec(100), out);
    return out.sortedMain();
  };
  auto sorted = [](std::vector<Values> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  auto ab = row("a", sec(10), 1, "a", sec(10), 2), ac = row("a", sec(10), 1, "a", sec(11), 3);
  EXPECT_EQ(run(JoinType::Inner), sorted({ab, ac}));
  EXPECT_EQ(run(JoinType::LeftOuter), sorted({ab, ac, leftOnly("b", sec(10), 4)}));
  EXPECT_EQ(run(JoinType::RightOuter), sorted({ab, ac, rightOnly("c", sec(10), 5)}));
  EXPECT_EQ(run(JoinType::FullOuter),
            sorted({ab, ac, leftOnly("b", sec(10), 4), rightOnly("c", sec(10), 5)}));
  EXPECT_EQ(run(JoinType::LeftSemi), (std::vector<Values>{{"a", sec(10), int64_t{1}}}));
}

TEST(StreamJoin, WindowJoinMatchesRowsOfTheSameTumblingWindowOnly) {
  StreamJoin j(leftSide(), rightSide(), JoinType::FullOuter, sameTumblingWindow(10s));
  RecordingEmitter out;
  j.onTuple(L("a", sec(9), 1), out);
  j.onTuple(R("a", sec(10), 2), out);  // next window: no match
  j.onTuple(R("a", sec(0), 3), out);   // same window [0, 10)
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", sec(9), 1, "a", sec(0), 3)}));
  j.onWatermark(Timestamp{9'999'999}, out);  // [0, 10 s) is complete
  EXPECT_EQ(j.stateSize(), 1u);
  j.onWatermark(sec(30), out);
  EXPECT_EQ(out.main().back(), rightOnly("a", sec(10), 2));
}

TEST(StreamJoin, LateRowsGoToTheLateStreamAndANullKeyMatchesNothing) {
  StreamJoin j(leftSide(), rightSide(), JoinType::LeftOuter, between(-1s, 1s));
  RecordingEmitter out;
  j.onWatermark(sec(10), out);
  j.onTuple(L("a", sec(10), 1), out);
  EXPECT_EQ(out.on("late").size(), 1u);
  EXPECT_EQ(j.droppedLate(), 1u);
  j.onTuple(Tuple(kRightSchema, {Value{}, sec(20), int64_t{2}}), out);
  j.onTuple(Tuple(kLeftSchema, {Value{}, sec(20), int64_t{3}}), out);
  EXPECT_TRUE(out.main().empty());
  j.onWatermark(sec(50), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{Value{}, sec(20), int64_t{3}, Value{}, Value{}, Value{}}}));
}

TEST(StreamJoin, OutputFieldsRenameTheRightSidesCollidingNames) {
  StreamJoin j(leftSide(), rightSide(), JoinType::Inner, between(0s, 1s));
  OutputFieldsDeclarer d;
  j.declareOutputFields(d);
  EXPECT_EQ(d.find(kDefaultStream)->names(),
            (std::vector<std::string>{"k", "ts", "lv", "right_k", "right_ts", "rv"}));
}

TEST(StreamJoin, BadJoinsAreRejectedSayingWhatToAdd) {
  auto msg = [](auto fn) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg([] { StreamJoin(leftSide(), rightSide(), JoinType::LeftOuter); })
                .find("add one, e.g. between("),
            std::string::npos);
  EXPECT_NE(msg([] { StreamJoin(leftSide(), {"right", kR, {"nope"}, "ts"}, JoinType::Inner); })
                .find("right key 'nope'"),
            std::string::npos);
  EXPECT_NE(msg([] { StreamJoin(leftSide(), {"right", kR, {"k"}, ""}, JoinType::Inner, between(0s, 1s)); })
                .find("right side's event-time field"),
            std::string::npos);
  EXPECT_NE(msg([] { StreamJoin(leftSide(), rightSide(), JoinType::Inner, between(2s, 1s)); })
                .find("lower <= upper"),
            std::string::npos);
  StreamJoin outer(leftSide(), rightSide(), JoinType::LeftOuter, between(0s, 1s));
  EXPECT_NE(outer.checkPlacement({"left", "right"}, false).find("add .withWatermark"),
            std::string::npos);
  EXPECT_EQ(outer.checkPlacement({"left", "right"}, true), "");
  EXPECT_NE(outer.checkPlacement({"left"}, true).find("'right' is not among"), std::string::npos);
  StreamJoin inner(leftSide(), rightSide(), JoinType::Inner);
  EXPECT_EQ(inner.checkPlacement({"left", "right"}, false), "");
}

TEST(StreamJoin, ACorruptSnapshotIsRefused) {
  StreamJoin j(leftSide(), rightSide(), JoinType::Inner, between(0s, 1s));
  RecordingEmitter out;
  j.onTuple(L("a", sec(1), 1), out);
  std::string snap = j.snapshot();
  StreamJoin k(leftSide(), rightSide(), JoinType::Inner, between(0s, 1s));
  EXPECT_THROW(k.restore(snap.substr(0, snap.size() - 2)), SnapshotError);
  EXPECT_EQ(k.stateSize(), 0u);
  k.restore(snap);
  k.onTuple(R("a", sec(1), 2), out);
  EXPECT_EQ(out.main().size(), 1u);
}

// ---- oracle ----
struct Ev {
  int kind;  // 0 left, 1 right, 2 watermark
  std::string k;
  int64_t t;
  int64_t v;
};

// (event index at which it is emitted, row) for every output row, computed from the whole input
// by definition rather than by keeping state.
std::multiset<std::pair<size_t, Values>> oracle(const std::vector<Ev>& evs, JoinType type,
                                                const JoinTimeCondition& c) {
  auto match = [&](int64_t l, int64_t r) {
    if (c.kind == JoinTimeCondition::Kind::Range) {
      return (c.lowerExclusive ? l + c.lower < r : l + c.lower <= r) &&
             (c.upperExclusive ? r < l + c.upper : r <= l + c.upper);
    }
    auto w = [&](int64_t x) { return x >= 0 ? x / c.size : -((-x + c.size - 1) / c.size); };
    return w(l) == w(r);
  };
  auto expiry = [&](int side, int64_t t) {
    if (c.kind == JoinTimeCondition::Kind::Range) return side == 0 ? t + c.upper : t - c.lower;
    int64_t w = t >= 0 ? t / c.size : -((-t + c.size - 1) / c.size);
    return w * c.size + c.size - 1;
  };
  std::vector<int64_t> wmAt(evs.size());  // the watermark when event i arrives
  std::vector<bool> onTime(evs.size());
  int64_t wm = INT64_MIN;
  for (size_t i = 0; i < evs.size(); ++i) {
    wmAt[i] = wm;
    if (evs[i].kind == 2) wm = std::max(wm, evs[i].t);
    else onTime[i] = evs[i].t > wmAt[i];
  }
  std::multiset<std::pair<size_t, Values>> out;
  std::vector<size_t> firstMatch(evs.size(), SIZE_MAX);
  for (size_t i = 0; i < evs.size(); ++i) {
    if (evs[i].kind != 0 || !onTime[i]) continue;
    for (size_t j = 0; j < evs.size(); ++j) {
      if (evs[j].kind != 1 || !onTime[j] || evs[j].k != evs[i].k || !match(evs[i].t, evs[j].t))
        continue;
      size_t at = std::max(i, j);
      firstMatch[i] = std::min(firstMatch[i], at);
      firstMatch[j] = std::min(firstMatch[j], at);
      if (type != JoinType::LeftSemi)
        out.insert({at, row(evs[i].k, Timestamp{evs[i].t}, evs[i].v, evs[j].k, Timestamp{evs[j].t},
                            evs[j].v)});
    }
  }
  for (size_t i = 0; i < evs.size(); ++i) {
    if (evs[i].kind == 2 || !onTime[i]) continue;
    const int side = evs[i].kind;
    if (type == JoinType::LeftSemi && side == 0 && firstMatch[i] != SIZE_MAX)
      out.insert({firstMatch[i], Values{evs[i].k, Timestamp{evs[i].t}, evs[i].v}});
    bool outerSide = type == JoinType::FullOuter || (side == 0 && type == JoinType::LeftOuter) ||
                     (side == 1 && type == JoinType::RightOuter);
    if (!outerSide || firstMatch[i] != SIZE_MAX) continue;
    for (size_t w = i + 1; w < evs.size(); ++w) {
      if (evs[w].kind == 2 && evs[w].t >= expiry(side, evs[i].t)) {
        out.insert({w, side == 0 ? leftOnly(evs[i].k, Timestamp{evs[i].t}, evs[i].v)
                                 : rightOnly(evs[i].k, Timestamp{evs[i].t}, evs[i].v)});
        break;
      }
    }
  }
  return out;
}

// Records the index of the event being processed with each row.
struct IndexedEmitter : Emitter {
  using Emitter::emit;
  void emit(std::string_view stream, Values v) override {
    if (stream == kDefaultStream) rows.insert({index, std::move(v)});
  }
  size_t index = 0;
  std::multiset<std::pair<size_t, Values>> rows;
};

struct Trial {
  JoinType type;
  JoinTimeCondition c;
  std::vector<Ev> evs;
};

// A random join type, time condition and input: three keys, bounded disorder, watermarks that
// sometimes make rows late, then a watermark that flushes everything.
Trial randomTrial(std::mt19937_64& rng) {
  const JoinType types[] = {JoinType::Inner, JoinType::LeftOuter, JoinType::RightOuter,
                            JoinType::FullOuter, JoinType::LeftSemi};
  {
    JoinType type = types[rng() % 5];
    JoinTimeCondition c = rng() % 3 == 0
                              ? sameTumblingWindow(Duration(1'000 * (1 + static_cast<int64_t>(rng() % 4))))
                              : between(Duration(-static_cast<int64_t>(rng() % 4) * 1'000),
                                        Duration(static_cast<int64_t>(rng() % 4) * 1'000));
    if (c.kind == JoinTimeCondition::Kind::Range && c.lower < c.upper) {
      // Event times are multiples of 500 µs, so rows often sit exactly on a bound.
      if (rng() % 3 == 0) c = c.lowerBoundExclusive();
      if (rng() % 3 == 0) c = c.upperBoundExclusive();
    }
    std::vector<Ev> evs;
    int64_t front = 0, wm = -1'000'000;
    for (int i = 0; i < 120; ++i) {
      int r = static_cast<int>(rng() % 10);
      if (r == 0) {
        wm = std::max(wm, front - static_cast<int64_t>(rng() % 4) * 1'000);
        evs.push_back({2, "", wm, 0});
        continue;
      }
      front += static_cast<int64_t>(rng() % 3) * 500;
      int64_t t = front - static_cast<int64_t>(rng() % 6) * 500;
      evs.push_back({r % 2, std::string(1, static_cast<char>('a' + rng() % 3)), t, i});
    }
    evs.push_back({2, "", front + 100'000, 0});  // flush: everything expires
    return {type, c, std::move(evs)};
  }
}

void feed(StreamJoin& j, const Ev& e, Emitter& out) {
  if (e.kind == 2) j.onWatermark(Timestamp{e.t}, out);
  else if (e.kind == 0) j.onTuple(L(e.k, Timestamp{e.t}, e.v), out);
  else j.onTuple(R(e.k, Timestamp{e.t}, e.v), out);
}

TEST(StreamJoin, RandomInputsMatchABruteForceOracleRowForRowAndMomentForMoment) {
  std::mt19937_64 rng(99);
  for (int trial = 0; trial < 400; ++trial) {
    auto [type, c, evs] = randomTrial(rng);
    StreamJoin j(leftSide(), rightSide(), type, c);
    IndexedEmitter out;
    const size_t restoreAt = rng() % evs.size();
    for (size_t i = 0; i < evs.size(); ++i) {
      if (i == restoreAt) {
        StreamJoin fresh(leftSide(), rightSide(), type, c);
        fresh.restore(j.snapshot());
        j = std::move(fresh);
      }
      out.index = i;
      feed(j, evs[i], out);
    }
    ASSERT_EQ(out.rows, oracle(evs, type, c))
        << "trial " << trial << " type " << joinTypeName(type) << " restore at " << restoreAt;
    ASSERT_EQ(j.stateSize(), 0u) << "trial " << trial;
  }
}

// ---- incremental snapshots (micro-batch mode) ----

// What the micro-batch runtime keeps in the job's state store: the head and the entries.
struct Stored {
  std::string head;
  std::map<std::string, std::string> entries;
  void commit(StreamJoin& j) {
    head = j.snapshotHead();
    for (auto& [k, v] : j.takeChanges()) {
      if (v) entries[k] = *v;
      else entries.erase(k);
    }
  }
  std::vector<std::pair<std::string, std::string>> all() const {
    return {entries.begin(), entries.end()};
  }
};

// Batches end at random events; each batch end commits only the changed entries, and at random
// batch ends the join is restored from the stored head and entries. The rows must still match
// the oracle, and the stored entries must always be exactly the rows the join holds.
TEST(StreamJoin, IncrementalSnapshotsRestoredAtRandomBatchesMatchTheOracle) {
  std::mt19937_64 rng(4242);
  size_t restores = 0;
  for (int trial = 0; trial < 400; ++trial) {
    auto [type, c, evs] = randomTrial(rng);
    StreamJoin j(leftSide(), rightSide(), type, c);
    j.trackChanges();
    Stored stored;
    IndexedEmitter out;
    for (size_t i = 0; i < evs.size(); ++i) {
      out.index = i;
      feed(j, evs[i], out);
      if (rng() % 4 != 0 && i + 1 < evs.size()) continue;
      stored.commit(j);  // a batch ends
      StreamJoin probe(leftSide(), rightSide(), type, c);
      probe.restoreIncremental(stored.head, stored.all());
      ASSERT_EQ(probe.stateSize(), j.stateSize()) << "trial " << trial << " event " << i;
      if (rng() % 2 == 0) {
        j = std::move(probe);
        ++restores;
      }
    }
    ASSERT_EQ(out.rows, oracle(evs, type, c))
        << "trial " << trial << " type " << joinTypeName(type);
    EXPECT_TRUE(stored.entries.empty()) << "every row was evicted, so every entry was erased";
  }
  EXPECT_GT(restores, 1000u);
}

TEST(StreamJoin, ABatchRewritesOnlyTheEntriesOfTheRowsItStoredEvictedOrFirstMatched) {
  constexpr int64_t n = StreamJoin::kRowsPerEntry;
  StreamJoin j(leftSide(), rightSide(), JoinType::LeftOuter, between(0s, 10s));
  j.trackChanges();
  RecordingEmitter out;
  // Four entries of left rows; row i has event time i ms and key "a" or "b".
  for (int64_t i = 0; i < 4 * n; ++i) j.onTuple(L(i % 2 ? "a" : "b", ms(i), i), out);
  Stored stored;
  stored.commit(j);
  ASSERT_EQ(stored.entries.size(), 4u);
  EXPECT_TRUE(j.takeChanges().empty()) << "nothing changed since";

  j.onTuple(L("c", ms(4 * n), 0), out);  // a new row: only the fifth entry
  auto changes = j.takeChanges();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes.begin()->second.has_value());

  // Rows up to 1.5 entries evicted: the first entry is erased, the second rewritten.
  j.onWatermark(ms(n + n / 2 - 1 + 10'000), out);
  changes = j.takeChanges();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_FALSE(changes.begin()->second.has_value());
  EXPECT_TRUE(std::next(changes.begin())->second.has_value());

  // A right row matching the last left row only (the one within 10 s before it, key "a"):
  // the first match of outer-join rows rewrites their entry, and a second match does not.
  j.onTuple(R("a", ms(4 * n - 1 + 10'000), 1), out);
  changes = j.takeChanges();
  EXPECT_EQ(changes.size(), 2u) << "the fourth entry (a first match) and the right row's";
  j.onTuple(R("a", ms(4 * n - 1 + 10'000), 2), out);
  changes = j.takeChanges();
  EXPECT_EQ(changes.size(), 1u) << "only the new right row's entry";

  // Stored and evicted within one batch: its entry is erased (it was never written).
  j.onWatermark(ms(100 * n), out);
  for (const auto& [k, v] : j.takeChanges()) EXPECT_FALSE(v.has_value());
}

TEST(StreamJoin, AWholeSnapshotFromBeforeIncrementalCommitsRestoresAndWritesEveryRowOnce) {
  StreamJoin j(leftSide(), rightSide(), JoinType::FullOuter, between(-5s, 5s));
  RecordingEmitter out;
  j.onTuple(L("a", sec(1), 1), out);
  j.onTuple(R("b", sec(2), 2), out);
  StreamJoin k(leftSide(), rightSide(), JoinType::FullOuter, between(-5s, 5s));
  k.restoreIncremental(j.snapshot(), {});
  Stored stored;
  stored.commit(k);
  EXPECT_EQ(stored.entries.size(), 1u);
  StreamJoin m(leftSide(), rightSide(), JoinType::FullOuter, between(-5s, 5s));
  m.restoreIncremental(stored.head, stored.all());
  EXPECT_EQ(m.stateSize(), 2u);
  m.onTuple(R("a", sec(3), 3), out);
  EXPECT_EQ(out.main().back(), row("a", sec(1), 1, "a", sec(3), 3));
  EXPECT_THROW(m.restoreIncremental(j.snapshot(), stored.all()), SnapshotError);
}

TEST(StreamJoin, CorruptIncrementalStateIsRefusedNamingWhatIsWrong) {
  StreamJoin j(leftSide(), rightSide(), JoinType::Inner, between(0s, 1s));
  j.trackChanges();
  RecordingEmitter out;
  j.onTuple(L("a", sec(1), 1), out);
  j.onTuple(L("a", sec(1), 2), out);
  Stored stored;
  stored.commit(j);
  auto expectRefused = [&](std::string head, std::vector<std::pair<std::string, std::string>> e,
                           const std::string& needle) {
    StreamJoin k(leftSide(), rightSide(), JoinType::Inner, between(0s, 1s));
    try {
      k.restoreIncremental(head, e);
      ADD_FAILURE() << "accepted; expected '" << needle << "'";
    } catch (const SnapshotError& err) {
      EXPECT_NE(std::string(err.what()).find(needle), std::string::npos) << err.what();
    }
    EXPECT_EQ(k.stateSize(), 0u);
  };
  auto all = stored.all();
  ASSERT_EQ(all.size(), 1u);
  expectRefused(stored.head.substr(0, stored.head.size() - 1), all, "next row id");
  auto badKey = all;
  badKey[0].first = "x";
  expectRefused(stored.head, badKey, "not an entry number");
  auto otherEntry = all;
  otherEntry[0].first[7] = 1;  // its rows belong to entry 0
  expectRefused(stored.head, otherEntry, "out of order");
  auto truncated = all;
  truncated[0].second.pop_back();
  expectRefused(stored.head, truncated, "row entry is corrupt");
}

}  // namespace
}  // namespace gale
