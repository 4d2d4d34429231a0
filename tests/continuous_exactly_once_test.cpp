// Exactly-once continuous mode in one process: a complete run, a run killed mid-checkpoint and
// resumed (operators' and a user bolt's state restored), an operator that throws, the settings it
// refuses, and asynchronous snapshots (one test kills a forked child inside their write).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "crash_test_util.h"
#include "exactly_once_word_count.h"
#include "gale/core/dedup.h"
#include "gale/core/state_codec.h"
#include "gale/topology/rescale.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

struct Dirs {
  Dirs() { fs::create_directories(out()); }
  std::string chk() const { return tmp.sub("chk"); }
  std::string out() const { return tmp.sub("out"); }
  TempDir tmp;
};

Continuous exactlyOnce(const Dirs& d, Duration interval = 10ms, bool unaligned = false) {
  return Continuous{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = interval,
                    .checkpointDir = d.chk(), .checkpointSync = false,
                    .unalignedCheckpoints = unaligned};
}

TEST(ExactlyOnceContinuous, AWordCountIntoTheFileSinkCommitsEveryCountOnce) {
  Dirs d;
  std::atomic<int> written{0};
  Continuous cfg = exactlyOnce(d);
  cfg.onCheckpointPoint = [&](CheckpointPoint p, uint64_t) {
    if (p == CheckpointPoint::CheckpointWritten) ++written;
  };
  runContinuous(exactlyOnceWordCount(3000, d.out()), cfg).waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), 3000);
  EXPECT_GE(written.load(), 1) << "at least the final checkpoint";
  EXPECT_EQ(StateStore::inspect(d.chk())->lastCommittedTxid(), static_cast<uint64_t>(written));
}

TEST(ExactlyOnceContinuous, ARunKilledWithACheckpointInFlightResumesFromTheLastCompletedOne) {
  Dirs d;
  const int64_t total = 20000;
  const double rate = 100000;  // 0.2 s of input, its end held until checkpoint 3 is in flight
  // Run 1 ends with checkpoint 3 in flight.
  runUntilBarrierThenKill(exactlyOnceWordCount(total, d.out(), nullptr, rate),
                          exactlyOnce(d, 5ms), 3);
  uint64_t after1 = StateStore::inspect(d.chk())->lastCommittedTxid();
  EXPECT_GE(after1, 2u);
  EXPECT_LE(after1, 3u);
  for (const auto& e : fs::directory_iterator(d.out())) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) == 0) {
      EXPECT_LE(std::stoull(name.substr(5)), after1) << name;
    }
  }
  // Run 2 resumes and finishes.
  runContinuous(exactlyOnceWordCount(total, d.out(), nullptr, rate), exactlyOnce(d, 5ms))
      .waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), total);
}

TEST(ExactlyOnceContinuous, AKilledAndResumedWindowedCountCommitsEachWindowOnce) {
  Dirs d;
  const int64_t total = 20000;
  const double rate = 100000;
  {
    InputEndHold hold;
    std::atomic<bool> reached{false};
    Continuous cfg = exactlyOnce(d, 5ms);
    cfg.onCheckpointPoint = [&](CheckpointPoint p, uint64_t id) {
      if (p == CheckpointPoint::CheckpointWritten && id == 4) reached = true;
    };
    auto rt = runContinuous(windowedWordCount(d.out(), total, rate), cfg);
    for (int i = 0; i < 60000 && !reached; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(reached.load());
    rt.kill();
  }
  ASSERT_LT(StateStore::inspect(d.chk())->lastCommittedTxid(), 100u);
  runContinuous(windowedWordCount(d.out(), total, rate), exactlyOnce(d, 5ms)).waitUntilDone();

  expectWindowsExactlyOnce(d.out(), total);
}

// Runs `topology` until a checkpoint after `after` was written, and kills it.
void runUntilCheckpointThenKill(Topology topology, Continuous cfg, uint64_t after) {
  InputEndHold hold;
  std::atomic<bool> reached{false};
  cfg.onCheckpointPoint = [&](CheckpointPoint p, uint64_t id) {
    if (p == CheckpointPoint::CheckpointWritten && id > after) reached = true;
  };
  auto rt = runContinuous(std::move(topology), cfg);
  for (int i = 0; i < 60000 && !reached; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(reached.load());
  rt.kill();
}

// The count (128 key groups) runs with 2 tasks, then 4, then 1, each run killed with windows
// open: each run restores the counts of every word wherever the previous run held them.
TEST(ExactlyOnceContinuous, AWindowedCountRescaledTwoToFourToOneCommitsEveryWindowOnce) {
  Dirs d;
  const int64_t total = 20000;
  const double rate = 100000;
  runUntilCheckpointThenKill(windowedWordCount(d.out(), total, rate, 2, 128), exactlyOnce(d, 5ms),
                             2);
  uint64_t first = StateStore::inspect(d.chk())->lastCommittedTxid();
  ASSERT_LT(first, 100u);
  runUntilCheckpointThenKill(windowedWordCount(d.out(), total, rate, 4, 128), exactlyOnce(d, 5ms),
                             first + 1);
  uint64_t second = StateStore::inspect(d.chk())->lastCommittedTxid();
  ASSERT_GT(second, first);
  auto inspect = StateStore::inspect(d.chk());
  EXPECT_TRUE(inspect->snapshot("count#3").has_value()) << "the second run had four count tasks";
  inspect.reset();
  runContinuous(windowedWordCount(d.out(), total, rate, 1, 128), exactlyOnce(d, 5ms))
      .waitUntilDone();
  expectWindowsExactlyOnce(d.out(), total);
}

TEST(ExactlyOnceContinuous, ACountWithoutKeyGroupsCannotResumeAtAnotherParallelism) {
  Dirs d;
  runUntilCheckpointThenKill(windowedWordCount(d.out(), 20000, 100000, 2), exactlyOnce(d, 5ms), 2);
  try {
    runContinuous(windowedWordCount(d.out(), 20000, 100000, 4), exactlyOnce(d, 5ms));
    FAIL() << "a checkpoint of two count tasks was resumed with four";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to job"), std::string::npos) << e.what();
  }
}

// Runs `job` (0.2 s of input) until checkpoint 3 is in flight, kills it, then runs it again on
// the same directory to the end; `between` runs after the kill.
void killMidCheckpointThenResume(const Dirs& d, const std::function<Topology()>& job,
                                 bool unaligned = false,
                                 const std::function<void()>& between = {}) {
  runUntilBarrierThenKill(job(), exactlyOnce(d, 5ms, unaligned), 3);
  ASSERT_GE(StateStore::inspect(d.chk())->lastCommittedTxid(), 2u);
  if (between) between();
  runContinuous(job(), exactlyOnce(d, 5ms, unaligned)).waitUntilDone();
}

// Unaligned checkpoints: every multi-input task (count and sink have two upstream tasks each)
// snapshots at its first barrier and stores what its other input sent before its barrier.
TEST(ExactlyOnceContinuous, AnUnalignedWordCountCommitsEveryCountOnce) {
  Dirs d;
  runContinuous(exactlyOnceWordCount(3000, d.out()), exactlyOnce(d, 10ms, true)).waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), 3000);
}

// Splits sentences into "word"s like SplitWords; its task 0 is slow (a queue builds in front of
// it), so what it emits before a barrier reaches count after split task 1's barrier: in flight.
class SlowFirstSplit final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"word"}); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<SlowFirstSplit>(); }
  void open(const OperatorContext& c) override { slow_ = c.taskIndex == 0; }
  void onTuple(const Tuple& t, Emitter& out) override {
    if (slow_) std::this_thread::sleep_for(20us);
    std::istringstream words(t.getString(0));
    for (std::string w; words >> w;) out.emit(Values{w});
  }

 private:
  bool slow_ = false;
};

// The word count of 20000 sentences with SlowFirstSplit, so unaligned checkpoints have tuples in
// flight.
Topology slowSplitWordCount(const Dirs& d) {
  TopologyBuilder b;
  b.setSpout("sentences", wordCountSentences(20000, 1e5), 2);
  b.setBolt("split", SlowFirstSplit{}, 2).shuffleGrouping("sentences").disableFusion();
  b.setBolt("count", CountWords{}, 2).fieldsGrouping("split", Fields{"word"});
  b.setBolt("sink", FileSink(d.out(), FileFormat::Text, {.sync = false}), 2)
      .fieldsGrouping("count", Fields{"word"});
  return b.build();
}

// The bytes of in-flight entries that belong to the last completed checkpoint (an entry names
// its checkpoint; an older one stays in the store and is not replayed).
size_t inFlightOfLastCheckpoint(const Dirs& d) {
  auto store = StateStore::inspect(d.chk());
  size_t bytes = 0;
  for (const char* task : {"count#0", "count#1", "sink#0", "sink#1"}) {
    auto entry = store->snapshot(std::string(task) + "/in-flight");
    if (!entry) continue;
    StateReader r(*entry, "in-flight");
    r.header("INFL", 2);
    if (r.varint("checkpoint id") == store->lastCommittedTxid()) bytes += entry->size();
  }
  return bytes;
}

// Killed with a checkpoint in flight and resumed: the in-flight tuples of the last completed
// checkpoint are replayed into their tasks (with the replay switched off this fails).
TEST(ExactlyOnceContinuous, AnUnalignedRunKilledAndResumedReplaysTheInFlightTuplesOnce) {
  Dirs d;
  auto job = [&] { return slowSplitWordCount(d); };
  size_t inFlightBytes = 0;
  killMidCheckpointThenResume(d, job, true, [&] { inFlightBytes = inFlightOfLastCheckpoint(d); });
  EXPECT_GT(inFlightBytes, 0u) << "the last completed checkpoint held no in-flight tuples";
  expectExactlyOnce(d.chk(), d.out(), 20000);
}

// A key-grouped deduplication of the slow split's words, `tasks` tasks of 8 key groups.
Topology slowSplitDedup(const Dirs& d, int tasks) {
  TopologyBuilder b;
  b.setSpout("sentences", wordCountSentences(20000, 1e5), 2);
  b.setBolt("split", SlowFirstSplit{}, 2).shuffleGrouping("sentences").disableFusion();
  b.setBolt("dedup", dropDuplicates(Fields{"word"}, {"word"}), tasks).maxParallelism(8)
      .fieldsGrouping("split", Fields{"word"});
  b.setBolt("sink", FileSink(d.out(), FileFormat::Text, {.sync = false}), 1)
      .globalGrouping("dedup");
  return b.build();
}

// In-flight tuples were routed to the old tasks: an unaligned checkpoint holding some resumes at
// its own parallelism only, and says so.
TEST(ExactlyOnceContinuous, ARescaleFromAnUnalignedCheckpointWithInFlightTuplesIsRefused) {
  Dirs d;
  size_t inFlight = 0;
  for (int attempt = 0; attempt < 5 && inFlight == 0; ++attempt) {
    runUntilBarrierThenKill(slowSplitDedup(d, 2), exactlyOnce(d, 5ms, true), 3 + 3 * attempt);
    auto store = StateStore::inspect(d.chk());
    for (const char* task : {"dedup#0", "dedup#1"}) {
      auto entry = store->snapshot(std::string(task) + "/in-flight");
      if (!entry) continue;
      StateReader r(*entry, "in-flight");
      r.header("INFL", 2);
      if (r.varint("checkpoint id") == store->lastCommittedTxid()) inFlight += entry->size();
    }
    if (inFlight == 0) fs::remove_all(d.chk());
  }
  ASSERT_GT(inFlight, 0u) << "no checkpoint held tuples in flight to the deduplication";
  // What `gale rebalance --parallelism` asks first (rescale.h): the same refusal, naming the
  // component.
  std::string refused = rescaleRefusal(slowSplitDedup(d, 3), d.chk());
  EXPECT_NE(refused.find("'dedup'"), std::string::npos) << refused;
  EXPECT_NE(refused.find("resumes only at that parallelism"), std::string::npos) << refused;
  EXPECT_EQ(rescaleRefusal(slowSplitDedup(d, 2), d.chk()), "");
  try {
    runContinuous(slowSplitDedup(d, 3), exactlyOnce(d, 5ms, true)).waitUntilDone();
    FAIL() << "in-flight tuples of two tasks were resumed in three";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("'dedup#"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("resumes only at that parallelism"), std::string::npos)
        << e.what();
  }
  // At its own parallelism it resumes, replaying them.
  runContinuous(slowSplitDedup(d, 2), exactlyOnce(d, 5ms, true)).waitUntilDone();
}

// An aligned checkpoint has nothing in flight, and writes no in-flight entry for it.
TEST(ExactlyOnceContinuous, AnAlignedCheckpointWritesNoInFlightEntries) {
  Dirs d;
  runContinuous(exactlyOnceWordCount(3000, d.out()), exactlyOnce(d)).waitUntilDone();
  auto store = StateStore::inspect(d.chk());
  ASSERT_GE(store->lastCommittedTxid(), 1u);
  for (const auto& [key, bytes] : store->snapshots())
    EXPECT_EQ(key.find("/in-flight"), std::string::npos) << key;
}

// A checkpoint without in-flight tuples leaves an older one's entry in the store: a run resumed
// from it must not replay them. Run 1 (unaligned) ends with in-flight tuples in its last
// checkpoint, run 2 (aligned) completes later checkpoints without any, run 3 resumes from those.
TEST(ExactlyOnceContinuous, AnOlderCheckpointsInFlightTuplesAreNotReplayedFromALaterOne) {
  Dirs d;
  runUntilBarrierThenKill(slowSplitWordCount(d), exactlyOnce(d, 5ms, true), 3);
  ASSERT_GT(inFlightOfLastCheckpoint(d), 0u) << "run 1's last checkpoint held no in-flight tuples";
  uint64_t after1 = StateStore::inspect(d.chk())->lastCommittedTxid();
  runUntilBarrierThenKill(slowSplitWordCount(d), exactlyOnce(d, 5ms), after1 + 2);
  ASSERT_GT(StateStore::inspect(d.chk())->lastCommittedTxid(), after1);
  EXPECT_EQ(inFlightOfLastCheckpoint(d), 0u);
  runContinuous(slowSplitWordCount(d), exactlyOnce(d, 5ms)).waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), 20000);
}

// A user's own Bolt (CheckpointedBolt): its counts come back from the checkpoint.
TEST(ExactlyOnceContinuous, AUserBoltsStateIsRestoredFromTheLastCompletedCheckpoint) {
  Dirs d;
  killMidCheckpointThenResume(d, [&] { return exactlyOnceBoltWordCount(20000, d.out(), 1e5); });
  EXPECT_TRUE(StateStore::inspect(d.chk())->snapshot("count#0").has_value());
  expectExactlyOnce(d.chk(), d.out(), 20000);
}

// The same kill and resume with the bolt's state left out of the checkpoint: the resumed counts
// start again from 0 (what the test above would see without CheckpointedBolt).
TEST(ExactlyOnceContinuous, WithoutItsStateInTheCheckpointAResumedBoltCountsFromZero) {
  Dirs d;
  killMidCheckpointThenResume(
      d, [&] { return exactlyOnceBoltWordCount(20000, d.out(), 1e5, /*checkpointed=*/false); });
  int restarted = 0;
  for (const auto& [word, counts] : committedCounts(d.out()))
    restarted += std::count(counts.begin() + 1, counts.end(), 1);
  EXPECT_GT(restarted, 0);
}

class UnrestorableBolt final : public Bolt, public CheckpointedBolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"word", "count"});
  }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<UnrestorableBolt>(); }
  void execute(const Tuple& t, OutputCollector& out) override { out.emit(t, Values{t.get(0), 1}); }
  std::string snapshotState(uint64_t id) override { return "state of " + std::to_string(id); }
  void restoreState(std::string_view) override { throw std::runtime_error("unreadable state"); }
};

TEST(ExactlyOnceContinuous, ABoltThatCannotRestoreItsStateStopsTheStartNamingTheTask) {
  Dirs d;
  auto build = [&] {
    return exactlyOnceWordCountWith(500, d.out(), 0, [](TopologyBuilder& b) {
      return b.setBolt("count", UnrestorableBolt{}, 2);
    });
  };
  runContinuous(build(), exactlyOnce(d)).waitUntilDone();  // writes its state, restores none
  uint64_t last = StateStore::inspect(d.chk())->lastCommittedTxid();
  ASSERT_EQ(StateStore::inspect(d.chk())->snapshot("count#1"), "state of " + std::to_string(last));
  try {
    runContinuous(build(), exactlyOnce(d)).waitUntilDone();
    FAIL() << "restored nothing";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("'count#"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unreadable state"), std::string::npos) << e.what();
  }
}

// Deduplication (gale's Deduplicate, keyed by word): its seen keys come back from the checkpoint,
// so a word that went out before the kill does not go out again.
TEST(ExactlyOnceContinuous, AKilledAndResumedDeduplicationCommitsEachWordOnce) {
  Dirs d;
  killMidCheckpointThenResume(d, [&] {
    TopologyBuilder b;
    b.setSpout("sentences", wordCountSentences(20000, 1e5), 2);
    b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
    b.setBolt("dedup", Deduplicate({.input = Fields{"word"}, .keys = {"word"}}), 2)
        .fieldsGrouping("split", Fields{"word"});
    b.setBolt("sink", FileSink(d.out(), FileFormat::Text, {.sync = false}), 1)
        .globalGrouping("dedup");
    return b.build();
  });
  std::map<std::string, int> seen;
  for (const auto& e : fs::directory_iterator(d.out())) {
    std::ifstream in(e.path());
    for (std::string w; in >> w;) ++seen[w];
  }
  std::vector<std::string> all;
  for (int64_t g = 0; g < 20000; ++g) all.push_back(SentenceSource::sentenceAt(g));
  std::map<std::string, int> once;
  for (const auto& [word, n] : directWordCount(all)) once[word] = 1;
  EXPECT_EQ(seen, once);
}

// The rebuilt topology keeps each component's settings: split, fusable into its spout (shuffle at
// equal parallelism), runs in the spout's tasks unless it disabled fusion.
TEST(ExactlyOnceContinuous, AComponentThatDisabledFusionRunsInItsOwnTasks) {
  for (bool fusion : {true, false}) {
    Dirs d;
    TopologyBuilder b;
    b.setSpout("sentences", wordCountSentences(500), 2);
    BoltDeclarer split = b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
    if (!fusion) split.disableFusion();
    b.setBolt("count", CountWords{}, 2).fieldsGrouping("split", Fields{"word"});
    auto rt = runContinuous(b.build(), exactlyOnce(d));
    rt.waitUntilDone();
    EXPECT_EQ(rt.metrics().find("split")->fusedInto, fusion ? "sentences" : "");
  }
}

// Counts like CountWords, but throws on one word.
class Picky final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"word", "count"});
  }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<Picky>(); }
  void onTuple(const Tuple& t, Emitter& out) override {
    if (t.getString(0) == "the") throw std::runtime_error("no 'the' here");
    out.emit(Values{t.getString(0), int64_t{1}});
  }
};

TEST(ExactlyOnceContinuous, AnOperatorThatThrowsStopsTheTopologyInsteadOfDroppingTheInput) {
  Dirs d;
  auto rt = runContinuous(exactlyOnceWordCount(500, d.out(), std::make_shared<Picky>()),
                          exactlyOnce(d));
  try {
    rt.waitUntilDone();
    FAIL() << "the topology ran to its end";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("exactly-once task 'count#"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("no 'the' here"), std::string::npos) << e.what();
  }
}

// Counts the end-of-input calls and the end-of-time watermarks it is given.
class EndCounter final : public Operator {
 public:
  explicit EndCounter(std::shared_ptr<std::atomic<int>> ends) : ends_(std::move(ends)) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override { return std::make_unique<EndCounter>(ends_); }
  void onTuple(const Tuple&, Emitter&) override {}
  void onWatermark(Timestamp wm, Emitter&) override {
    if (wm == kEndOfTime) ++*ends_;
  }
  void onEndOfInput(Emitter&) override { ++*ends_; }

 private:
  std::shared_ptr<std::atomic<int>> ends_;
};

TEST(ExactlyOnceContinuous, EachOperatorTaskSeesTheEndOfItsInputOnce) {
  Dirs d;
  auto ends = std::make_shared<std::atomic<int>>(0);
  TopologyBuilder b;
  b.setSpout("sentences", wordCountSentences(100), 2);
  b.setBolt("end", EndCounter(ends), 3).shuffleGrouping("sentences");
  runContinuous(b.build(), exactlyOnce(d)).waitUntilDone();
  EXPECT_EQ(ends->load(), 3 * 2) << "one end-of-time watermark and one onEndOfInput per task";
}

class Custom final : public Spout {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"x"}); }
  std::unique_ptr<Spout> clone() const override { return std::make_unique<Custom>(); }
  bool nextTuple(SpoutOutputCollector&) override { return false; }
};

// StatefulCountBolt whose first snapshot (of any task) waits until the test releases it: the
// checkpoint it belongs to cannot complete meanwhile.
class HeldCountBolt final : public Bolt, public CheckpointedBolt {
 public:
  struct Hold {
    std::mutex m;
    std::condition_variable cv;
    bool taken = false, released = false;
  };
  explicit HeldCountBolt(std::shared_ptr<Hold> hold) : hold_(std::move(hold)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    count_.declareOutputFields(d);
  }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<HeldCountBolt>(hold_); }
  void execute(const Tuple& t, OutputCollector& out) override { count_.execute(t, out); }
  std::string snapshotState(uint64_t id) override {
    std::unique_lock lk(hold_->m);
    if (!std::exchange(hold_->taken, true))
      hold_->cv.wait(lk, [&] { return hold_->released; });
    return count_.snapshotState(id);
  }
  void restoreState(std::string_view state) override { count_.restoreState(state); }

 private:
  std::shared_ptr<Hold> hold_;
  StatefulCountBolt count_;
};

// Flink's checkpointTimeout: a checkpoint held up past it is aborted (counted in the metrics),
// the next ones complete, and every count is still committed once: the held task's late report
// of the aborted checkpoint is dropped, and the sink commits its output with a later one.
TEST(ExactlyOnceContinuous, ACheckpointHeldPastItsTimeoutIsAbortedAndTheRunStaysExact) {
  Dirs d;
  auto hold = std::make_shared<HeldCountBolt::Hold>();
  Continuous cfg = exactlyOnce(d);
  cfg.checkpointTimeout = 2s;
  auto rt = runContinuous(exactlyOnceWordCountWith(20000, d.out(), 2e4,
                                                   [&](TopologyBuilder& b) {
                                                     return b.setBolt("count",
                                                                      HeldCountBolt(hold), 2);
                                                   }),
                          cfg);
  for (int i = 0; i < 60000 && rt.metrics().checkpointsTimedOut == 0; ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_GE(rt.metrics().checkpointsTimedOut, 1u) << "the held checkpoint was not aborted";
  {
    std::lock_guard lk(hold->m);
    hold->released = true;
  }
  hold->cv.notify_all();
  rt.waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), 20000);
}

TEST(ExactlyOnceContinuous, SettingsItCannotHonourAreRefusedClearly) {
  Dirs d;
  Continuous noDir = exactlyOnce(d);
  noDir.checkpointDir.clear();
  EXPECT_THROW(runContinuous(exactlyOnceWordCount(10, d.out()), noDir), std::invalid_argument);
  Continuous zero = exactlyOnce(d, 0ms);
  EXPECT_THROW(runContinuous(exactlyOnceWordCount(10, d.out()), zero), std::invalid_argument);
  Continuous noTimeout = exactlyOnce(d);
  noTimeout.checkpointTimeout = 0ms;
  EXPECT_THROW(runContinuous(exactlyOnceWordCount(10, d.out()), noTimeout),
               std::invalid_argument);

  TopologyBuilder b;
  b.setSpout("custom", Custom{});
  b.setBolt("sink", FileSink(d.out(), FileFormat::Text), 1).shuffleGrouping("custom");
  try {
    runContinuous(b.build(), exactlyOnce(d));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'custom' is a custom Spout"), std::string::npos);
  }
  // Over several workers (runWorker; topology_exactly_once_workers_test): an assignment that
  // does not cover every task is refused as in at-least-once mode.
  WorkerAssignment short3{.workerOfTask = std::vector<int>(3, 0),
                          .endpoints = {"ipc://" + d.tmp.sub("w")}};
  EXPECT_THROW(runWorker(exactlyOnceWordCount(10, d.out()), exactlyOnce(d), short3),
               std::invalid_argument);
}

// Asynchronous snapshots (AsyncSnapshot + CopyOnWriteMap): the word count's counts are frozen
// at the barrier and serialized on the checkpoint coordinator's thread while the count tasks go
// on. The checkpoint holds the state at the barrier, a resumed run is exact, and a SIGKILL during
// the asynchronous write leaves the previous checkpoint in force.
constexpr int64_t kAsyncSentences = 20000;
constexpr double kAsyncRate = 1e5;  // 0.2 s of input

// `total` -1: an unbounded input, for a run that is killed and never resumed.
Topology asyncWordCount(const Dirs& d, std::shared_ptr<AsyncCountWords::Observer> o = nullptr,
                        int64_t total = kAsyncSentences) {
  return exactlyOnceWordCount(total, d.out(), std::make_shared<AsyncCountWords>(o), kAsyncRate);
}

std::map<std::string, int64_t> contents(const AsyncCountWords::Counts& counts) {
  std::map<std::string, int64_t> out;
  counts.forEach([&](const std::string& w, int64_t c) { out[w] = c; });
  return out;
}

// Holds the asynchronous write of checkpoint `hold` of each count task until that task has
// processed `after` more words since its barrier, and keeps its counts at the barrier.
struct HoldTheWrite final : AsyncCountWords::Observer {
  HoldTheWrite(uint64_t hold, int64_t after) : hold(hold), after(after) {}
  void processed(int task) override {
    std::lock_guard lk(m);
    ++words[task];
    cv.notify_all();
  }
  void frozen(uint64_t id, int task, const AsyncCountWords::Counts& counts) override {
    auto c = contents(counts);
    std::lock_guard lk(m);
    atBarrier[id][task] = std::move(c);
    if (id == hold) wordsAtBarrier[task] = words[task];
  }
  void writing(uint64_t id, int task) override {
    if (id != hold) return;
    std::unique_lock lk(m);
    changedAfter[task] =
        cv.wait_for(lk, 60s, [&] { return words[task] >= wordsAtBarrier[task] + after; });
  }
  const uint64_t hold;
  const int64_t after;
  std::mutex m;
  std::condition_variable cv;
  std::map<int, int64_t> words, wordsAtBarrier;
  // checkpoint id -> task -> its counts at that checkpoint's barrier
  std::map<uint64_t, std::map<int, std::map<std::string, int64_t>>> atBarrier;
  std::map<int, bool> changedAfter;
};

// Counts only grow: 200 words counted after the barrier before the write make a view that read
// the live counts differ from the state at the barrier.
TEST(AsyncSnapshot, TheCheckpointHoldsTheStateAtTheBarrierThoughRecordsAfterItChangedItDuringTheWrite) {
  Dirs d;
  auto hold = std::make_shared<HoldTheWrite>(2, 200);
  // Checkpoint 3's barrier is held and the run killed. The input is unbounded: on a loaded
  // machine 0.2 s of it could be used up before checkpoint 2's barrier, and the write would wait
  // for words that never come. Checkpoint 2 is complete, and usually the last: the barrier of 3
  // has left the held spout task, so on a loaded machine checkpoint 3 may complete before the
  // kill lands. Either way the last checkpoint must hold the counts at its own barrier.
  runUntilBarrierThenKill(asyncWordCount(d, hold, -1), exactlyOnce(d, 5ms), 3);
  auto store = StateStore::inspect(d.chk());
  const uint64_t last = store->lastCommittedTxid();
  ASSERT_TRUE(last == 2 || last == 3) << last;
  for (int task : {0, 1}) {
    SCOPED_TRACE("count#" + std::to_string(task));
    std::lock_guard lk(hold->m);
    EXPECT_TRUE(hold->changedAfter[task]) << "the task counted no words while its write waited";
    ASSERT_FALSE(hold->atBarrier[last][task].empty());
    auto stored = store->snapshot("count#" + std::to_string(task));
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(AsyncCountWords::decode(*stored), hold->atBarrier[last][task]);
  }
}

TEST(AsyncSnapshot, AKilledAndResumedRunRestoresTheAsynchronousSnapshotAndCommitsEveryCountOnce) {
  Dirs d;
  runUntilBarrierThenKill(asyncWordCount(d), exactlyOnce(d, 5ms), 3);
  auto store = StateStore::inspect(d.chk());
  ASSERT_GE(store->lastCommittedTxid(), 2u);
  EXPECT_FALSE(store->snapshot("count#0").value_or("").empty());
  store.reset();
  runContinuous(asyncWordCount(d), exactlyOnce(d, 5ms)).waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), kAsyncSentences);
}

// The process dies inside the asynchronous write of checkpoint 3.
struct KillInTheWrite final : AsyncCountWords::Observer {
  void writing(uint64_t id, int) override {
    if (id == 3) ::raise(SIGKILL);
  }
};

TEST(AsyncSnapshot, ASigkillDuringTheAsynchronousWriteLeavesThePreviousCheckpointInForce) {
  Dirs d;
  ChildEnd end = runChild(
      [&] {
        InputEndHold hold;
        runContinuous(asyncWordCount(d, std::make_shared<KillInTheWrite>()),
                      releaseInputEndAtBarrier(exactlyOnce(d, 5ms), 3, hold))
            .waitUntilDone();
        ::_exit(0);
      },
      -1);
  ASSERT_EQ(end, ChildEnd::Killed);
  EXPECT_EQ(committedTxid(d.chk()), 2u);
  for (const auto& e : fs::directory_iterator(d.out())) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) == 0) {
      EXPECT_LE(std::stoull(name.substr(5)), 2u) << name;
    }
  }
  runContinuous(asyncWordCount(d), exactlyOnce(d, 5ms)).waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), kAsyncSentences);
}

// gale's window operator snapshots asynchronously too (a copy at the barrier, encoded on the
// writer's thread). This one kills the process inside the write of checkpoint 3, after encoding:
// if continuous mode took the window's snapshot synchronously the child would never die.
class KillInTheWindowWrite final : public Operator, public AsyncSnapshot {
 public:
  explicit KillInTheWindowWrite(std::shared_ptr<const Operator> proto)
      : proto_(std::move(proto)), op_(proto_->clone()) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { op_->declareOutputFields(d); }
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<KillInTheWindowWrite>(proto_);
  }
  void open(const OperatorContext& c) override { op_->open(c); }
  void onTuple(const Tuple& t, Emitter& out) override { op_->onTuple(t, out); }
  void onWatermark(Timestamp wm, Emitter& out) override { op_->onWatermark(wm, out); }
  void onProcessingTime(Timestamp now, Emitter& out) override { op_->onProcessingTime(now, out); }
  void onEndOfInput(Emitter& out) override { op_->onEndOfInput(out); }
  bool stateful() const override { return true; }
  std::string snapshot() const override { return op_->snapshot(); }
  void restore(std::string_view bytes) override { op_->restore(bytes); }
  Write snapshotAsync(uint64_t id) override {
    Write inner = dynamic_cast<AsyncSnapshot&>(*op_).snapshotAsync(id);
    return [inner = std::move(inner), id] {
      std::string bytes = inner();
      if (id == 3) ::raise(SIGKILL);
      return bytes;
    };
  }

 private:
  std::shared_ptr<const Operator> proto_;
  OperatorPtr op_;
};

Topology windowedWordCountKilledInWrite(const std::string& out, int64_t total, double rate) {
  TopologyBuilder b;
  addWindowedWordCount(b, total, rate, 2, 0,
                       std::make_unique<KillInTheWindowWrite>(windowedCount()));
  b.setBolt("sink", FileSink(out, FileFormat::Text, {.sync = false}), 1).globalGrouping("count");
  return b.build();
}

TEST(AsyncSnapshot, AWindowKilledDuringItsAsynchronousWriteResumesFromThePreviousCheckpoint) {
  Dirs d;
  const int64_t total = 20000;
  const double rate = 100000;
  ChildEnd end = runChild(
      [&] {
        InputEndHold hold;
        runContinuous(windowedWordCountKilledInWrite(d.out(), total, rate),
                      releaseInputEndAtBarrier(exactlyOnce(d, 5ms), 3, hold))
            .waitUntilDone();
        ::_exit(0);
      },
      -1);
  ASSERT_EQ(end, ChildEnd::Killed) << "the window's snapshot was not taken asynchronously";
  EXPECT_EQ(committedTxid(d.chk()), 2u);
  for (const auto& e : fs::directory_iterator(d.out())) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) == 0) {
      EXPECT_LE(std::stoull(name.substr(5)), 2u) << name;
    }
  }
  runContinuous(windowedWordCount(d.out(), total, rate), exactlyOnce(d, 5ms)).waitUntilDone();
  expectWindowsExactlyOnce(d.out(), total);
}

// A user's bolt whose counts snapshot asynchronously (CheckpointedBolt + AsyncSnapshot). Its
// whole snapshotState() throws here, so the test below fails if continuous mode called it.
class AsyncCountBolt final : public Bolt, public CheckpointedBolt, public AsyncSnapshot {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"word", "count"});
  }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<AsyncCountBolt>(); }
  void execute(const Tuple& t, OutputCollector& out) override {
    const std::string& w = t.getString(0);
    out.emit(t, Values{w, ++counts_[w]});
  }
  std::string snapshotState(uint64_t) override {
    throw std::logic_error("continuous mode must take the asynchronous snapshot");
  }
  Write snapshotAsync(uint64_t) override {
    return [view = counts_.freeze()] { return AsyncCountWords::encode(view); };
  }
  void restoreState(std::string_view state) override {
    counts_.clear();
    for (const auto& [w, c] : AsyncCountWords::decode(state)) counts_[w] = c;
  }

 private:
  AsyncCountWords::Counts counts_;
};

TEST(AsyncSnapshot, AUserBoltsAsynchronousSnapshotIsWrittenAndRestoredExactly) {
  Dirs d;
  auto job = [&] {
    return exactlyOnceWordCountWith(kAsyncSentences, d.out(), kAsyncRate, [](TopologyBuilder& b) {
      return b.setBolt("count", AsyncCountBolt{}, 2);
    });
  };
  runUntilBarrierThenKill(job(), exactlyOnce(d, 5ms), 3);
  auto store = StateStore::inspect(d.chk());
  ASSERT_GE(store->lastCommittedTxid(), 2u);
  EXPECT_FALSE(store->snapshot("count#0").value_or("").empty());
  store.reset();
  runContinuous(job(), exactlyOnce(d, 5ms)).waitUntilDone();
  expectExactlyOnce(d.chk(), d.out(), kAsyncSentences);
}

}  // namespace
}  // namespace gale
