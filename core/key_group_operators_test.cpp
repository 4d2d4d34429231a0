// Keyed windows and deduplication split by key group and restored into another parallelism: one
// operator fed everything is the oracle; two fed by key group are snapshotted mid-stream,
// restored into n and fed the rest. What they emit together must be what the oracle emits.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "gale/core/dedup.h"
#include "gale/core/key_group.h"
#include "gale/core/state_codec.h"
#include "gale/core/window.h"
#include "window_test_util.h"

namespace gale {
namespace {

using testing::RecordingEmitter;

constexpr uint32_t kGroups = 16;

struct Step {
  enum Kind { Tuple, Watermark, ProcessingTime } kind;
  std::string key;
  int64_t ts = 0, v = 0;
};

std::vector<Step> script(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Step> steps;
  int64_t maxSeen = 0, now = 0;
  for (int i = 0; i < 400; ++i) {
    int64_t ts = i / 4 + static_cast<int64_t>(rng() % 6);
    maxSeen = std::max(maxSeen, ts);
    steps.push_back({Step::Tuple, "k" + std::to_string(rng() % 23), ts,
                     static_cast<int64_t>(rng() % 9) + 1});
    if (rng() % 4 == 0)
      steps.push_back({Step::Watermark, "", maxSeen - static_cast<int64_t>(rng() % 8)});
    if (rng() % 6 == 0) steps.push_back({Step::ProcessingTime, "", now += 2});
  }
  return steps;
}

int taskOf(const std::string& key, int parallelism) {
  return taskOfKeyGroup(keyGroupOf(hashKeyValues(Values{key}), kGroups), kGroups, parallelism);
}

void feed(const Step& s, std::vector<std::unique_ptr<Operator>>& ops, Emitter& out) {
  if (s.kind == Step::Tuple) {
    ops[static_cast<size_t>(taskOf(s.key, static_cast<int>(ops.size())))]->onTuple(
        testing::tup(s.key, Timestamp{s.ts}, s.v), out);
    return;
  }
  for (auto& op : ops) {
    if (s.kind == Step::Watermark) op->onWatermark(Timestamp{s.ts}, out);
    else op->onProcessingTime(Timestamp{s.ts}, out);
  }
}

void end(std::vector<std::unique_ptr<Operator>>& ops, Emitter& out) {
  for (auto& op : ops) op->onWatermark(kEndOfTime, out);
  for (auto& op : ops) op->onEndOfInput(out);
}

// The key-grouped snapshots of `ops` ("op#i"), restored into `n` fresh clones of `proto`.
std::vector<std::unique_ptr<Operator>> rescale(const Operator& proto,
                                               const std::vector<std::unique_ptr<Operator>>& ops,
                                               int n) {
  std::map<std::string, std::string> store;
  for (size_t i = 0; i < ops.size(); ++i) {
    auto& s = dynamic_cast<KeyGroupedState&>(*ops[i]);
    store["op#" + std::to_string(i)] = encodeKeyGroupSnapshot(
        kGroups, static_cast<int>(ops.size()), static_cast<int>(i), s.snapshotKeyGroups(kGroups));
  }
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = store.find(k);
    return it == store.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  std::vector<std::unique_ptr<Operator>> out;
  for (int j = 0; j < n; ++j) {
    out.push_back(proto.clone());
    restoreKeyGroupSnapshot(lookup, "op", j, n, kGroups,
                            dynamic_cast<KeyGroupedState&>(*out.back()));
  }
  return out;
}

struct Outcome {
  std::vector<Values> rows, late, final;  // sorted; `final`: what the end of input emitted
  uint64_t dropped = 0, duplicates = 0;
};

// Parallelism `from` up to step `cut`, then `to`; from == 0: the oracle (one operator throughout).
Outcome run(const Operator& proto, const std::vector<Step>& steps, size_t cut, int from, int to) {
  std::vector<std::unique_ptr<Operator>> ops;
  for (int i = 0; i < std::max(from, 1); ++i) ops.push_back(proto.clone());
  RecordingEmitter out, last;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (from > 0 && i == cut) ops = rescale(proto, ops, to);
    feed(steps[i], ops, out);
  }
  end(ops, last);
  Outcome r;
  for (auto* e : {&out, &last}) {
    for (auto& v : e->main()) r.rows.push_back(v);
    for (auto& v : e->on("late")) r.late.push_back(v);
  }
  r.final = last.sortedMain();
  std::sort(r.rows.begin(), r.rows.end());
  std::sort(r.late.begin(), r.late.end());
  for (auto& op : ops) {
    r.dropped += op->droppedByWatermark();
    if (auto* d = dynamic_cast<Deduplicate*>(op.get())) r.duplicates += d->droppedDuplicates();
  }
  return r;
}

std::string describe(const WindowKind& w, OutputMode m, const Trigger& t, uint64_t seed) {
  return w.describe() + " " + outputModeName(m) + " trigger " + std::to_string(t.kind) +
         " seed " + std::to_string(seed);
}

TEST(WindowKeyGroups, TwoTasksRestoredIntoFourAndIntoOneEmitTheRowsOfOneUnsplitWindow) {
  struct Case {
    WindowKind window;
    OutputMode mode;
    Trigger trigger;
  };
  const std::vector<Case> cases = {
      {Tumbling(Duration(10)), OutputMode::Append, Trigger::eventTime()},
      {Tumbling(Duration(10)), OutputMode::Update, Trigger::eventTime()},
      {Tumbling(Duration(10)), OutputMode::Update, Trigger::processingTime(Duration(3))},
      {Tumbling(Duration(10)), OutputMode::Update, Trigger::countPerKey(3)},
      {Tumbling(Duration(10)), OutputMode::Complete, Trigger::eventTime()},
      {Sliding(Duration(10), Duration(4)), OutputMode::Append, Trigger::eventTime()},
      {Sliding(Duration(10), Duration(4)), OutputMode::Update, Trigger::eventTime()},
      {Sliding(Duration(10), Duration(4)), OutputMode::Complete, Trigger::eventTime()},
      {Session(Duration(4)), OutputMode::Append, Trigger::eventTime()},
      {Session(Duration(4)), OutputMode::Update, Trigger::processingTime(Duration(3))},
      {Session(Duration(4)), OutputMode::Complete, Trigger::eventTime()},
      {GlobalWindow(), OutputMode::Update, Trigger::processingTime(Duration(5))},
      {CountTumbling(3), OutputMode::Update, Trigger::eventTime()},
  };
  int compared = 0;
  for (const Case& c : cases) {
    auto b = windowed(c.window, Count{}, Sum{"v"}).keyBy({"word"}).outputMode(c.mode)
                 .trigger(c.trigger);
    if (!c.window.isCount())
      b.eventTime("ts").allowedLateness(Duration(
          c.mode == OutputMode::Complete || c.window.kind == WindowKind::Global ? 0 : 3));
    std::unique_ptr<Operator> proto = b.build();
    const bool slidingUpdate = c.window.kind == WindowKind::Sliding && c.mode == OutputMode::Update;
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      std::vector<Step> steps = script(seed);
      const size_t cut = steps.size() / 2;
      Outcome oracle = run(*proto, steps, cut, 0, 0);
      ASSERT_FALSE(oracle.rows.empty());
      for (int to : {4, 1, 3}) {
        std::string what = describe(c.window, c.mode, c.trigger, seed) + " 2 -> " +
                           std::to_string(to);
        if (slidingUpdate && to != 4) {
          // One new task would merge two old tasks' dirty tracking, which sliding panes share.
          EXPECT_THROW(run(*proto, steps, cut, 2, to), SnapshotError) << what;
          continue;
        }
        Outcome split = run(*proto, steps, cut, 2, to);
        if (c.mode == OutputMode::Complete) {
          // Each task writes its own part of the table at every firing: compare the final one.
          ASSERT_EQ(split.final, oracle.final) << what;
        } else {
          ASSERT_EQ(split.rows, oracle.rows) << what;
        }
        ASSERT_EQ(split.late, oracle.late) << what;
        ASSERT_EQ(split.dropped, oracle.dropped) << what << ": late rows counted once";
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 13 * 3 * 3 - 2 * 3);
}

TEST(WindowKeyGroups, TasksWhoseWatermarksDifferAreNotMerged) {
  std::unique_ptr<Operator> proto =
      windowed(Tumbling(Duration(10)), Count{}).keyBy({"word"}).eventTime("ts").build();
  std::vector<std::unique_ptr<Operator>> ops;
  RecordingEmitter out;
  for (int i = 0; i < 2; ++i) ops.push_back(proto->clone());
  ops[0]->onWatermark(Timestamp{5}, out);
  ops[1]->onWatermark(Timestamp{7}, out);
  EXPECT_THROW(rescale(*proto, ops, 1), SnapshotError);
  EXPECT_NO_THROW(rescale(*proto, ops, 2));
}

TEST(DedupKeyGroups, ADuplicateSeenBeforeARescaleIsStillDroppedAfterIt) {
  Fields in{"word", "ts", "v"};
  std::vector<std::unique_ptr<Operator>> protos;
  protos.push_back(std::make_unique<Deduplicate>(dropDuplicates(in, {"word"})));
  protos.push_back(std::make_unique<Deduplicate>(
      dropDuplicatesWithinWatermark(in, {"word"}, "ts", Duration(20))));
  for (const auto& proto : protos) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      std::vector<Step> steps = script(seed);
      for (auto& s : steps) s.key = s.key.empty() ? "" : s.key + std::to_string(s.ts / 40);
      const size_t cut = steps.size() / 2;
      Outcome oracle = run(*proto, steps, cut, 0, 0);
      ASSERT_FALSE(oracle.rows.empty());
      for (auto [from, to] : {std::pair{2, 3}, std::pair{3, 1}, std::pair{2, 4}}) {
        Outcome split = run(*proto, steps, cut, from, to);
        std::string what = std::to_string(from) + " -> " + std::to_string(to) + " seed " +
                           std::to_string(seed);
        ASSERT_EQ(split.rows, oracle.rows) << what;
        ASSERT_EQ(split.late, oracle.late) << what;
        ASSERT_EQ(split.dropped, oracle.dropped) << what;
        ASSERT_EQ(split.duplicates, oracle.duplicates) << what << ": duplicates counted once";
        ASSERT_GT(oracle.duplicates, 0u);
      }
    }
  }
}

}  // namespace
}  // namespace gale
