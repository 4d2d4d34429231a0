// The exactly-once continuous word count the system tests run (in-process and in killed child
// processes): sentences -> split -> running count per word -> FileSink (two-phase commit), and
// the check of its committed output against a direct count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../batch/batch_test_ops.h"
#include "gale/connectors/file_sink.h"
#include "gale/connectors/generator_source.h"
#include "gale/core/async_snapshot.h"
#include "gale/core/copy_on_write_map.h"
#include "gale/core/stateless.h"
#include "gale/core/window.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"

namespace gale::testing {

// Whether the sentence sources built here may say that their input ended. A test that needs
// checkpoint N before the input ends holds the end (InputEndHold): its input lasts 0.2 s, and on
// a loaded machine checkpoints (written at nice 10) come slower, so the job could end with fewer
// than N checkpoints and the test wait for one that never comes. Held, the spouts wait at the
// end of the input while checkpoints go on.
// How many holds there are: the end is held while any is. A count, so a hold taken inside
// another's scope (runUntilBarrierThenKill within a test that holds) does not let the outer go.
inline std::atomic<int>& inputEndHolds() {
  static std::atomic<int> holds{0};
  return holds;
}

// Holds the end of the input from construction until release() or destruction.
class InputEndHold {
 public:
  InputEndHold() { ++inputEndHolds(); }
  ~InputEndHold() { release(); }
  InputEndHold(const InputEndHold&) = delete;
  InputEndHold& operator=(const InputEndHold&) = delete;
  // Lets the input end as far as this hold goes; only the first call counts.
  void release() {
    if (!released_.exchange(true)) --inputEndHolds();
  }

 private:
  std::atomic<bool> released_{false};
};

// `cfg` releasing `hold` once checkpoint `id`'s barrier is injected (after calling the callback
// `cfg` had): a spout task injects every due barrier before it looks at its source again, so
// each sends that barrier.
inline Continuous releaseInputEndAtBarrier(Continuous cfg, uint64_t id, InputEndHold& hold) {
  cfg.onCheckpointPoint = [id, &hold, previous = std::move(cfg.onCheckpointPoint)](
                              CheckpointPoint p, uint64_t at) {
    if (previous) previous(p, at);
    if (p == CheckpointPoint::BarrierInjected && at >= id) hold.release();
  };
  return cfg;
}

class HoldableSentences final : public SentenceSource {
 public:
  using SentenceSource::SentenceSource;
  bool finished() const override {
    return inputEndHolds() == 0 && SentenceSource::finished();
  }
};

// `rate`: sentences per second (0: all at once). A restarted run's schedule starts again from
// its open(), so it waits until the schedule reaches the offsets it resumes at.
inline std::shared_ptr<SentenceSource> wordCountSentences(int64_t total, double rate = 0) {
  return std::make_shared<HoldableSentences>(
      SentenceSource::Options{.partitions = 3, .ratePerSecond = rate, .total = total});
}

// A user's own Bolt (not an Operator) counting words, "word" in, ("word", "count") out: its
// counts are checkpointed through CheckpointedBolt (Storm's IStatefulBolt shape).
// `checkpointed` = false leaves them out of the snapshot (restoreState ignores it), to show
// that a test of it fails without the state in the checkpoint.
class StatefulCountBolt final : public Bolt, public CheckpointedBolt {
 public:
  explicit StatefulCountBolt(bool checkpointed = true) : checkpointed_(checkpointed) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"word", "count"});
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<StatefulCountBolt>(checkpointed_);
  }
  void execute(const Tuple& t, OutputCollector& out) override {
    const std::string& w = t.getString(0);
    out.emit(t, Values{w, ++counts_[w]});
  }
  std::string snapshotState(uint64_t) override {
    std::string s;
    if (!checkpointed_) return s;
    for (const auto& [w, c] : counts_) s += w + "\t" + std::to_string(c) + "\n";
    return s;
  }
  void restoreState(std::string_view state) override {
    std::istringstream in{std::string(state)};
    std::string w;
    for (int64_t c; in >> w >> c;) counts_[w] = c;
  }

 private:
  bool checkpointed_;
  std::map<std::string, int64_t> counts_;
};

// CountWords with its counts in a CopyOnWriteMap, snapshotted asynchronously (AsyncSnapshot):
// frozen at the barrier, serialized on the checkpoint coordinator's thread. Its snapshot() and
// restore() use CountWords' format. An Observer lets a test watch the task and hold (or kill)
// the asynchronous write.
class AsyncCountWords final : public Operator, public AsyncSnapshot {
 public:
  using Counts = CopyOnWriteMap<std::string, int64_t>;
  struct Observer {
    virtual ~Observer() = default;
    // On the task's thread: after each tuple; at barrier `id`, with the counts just frozen.
    virtual void processed(int task) {}
    virtual void frozen(uint64_t id, int task, const Counts& counts) {}
    // On the coordinator's thread, before the frozen counts are serialized.
    virtual void writing(uint64_t id, int task) {}
  };
  explicit AsyncCountWords(std::shared_ptr<Observer> observer = nullptr)
      : observer_(std::move(observer)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"word", "count"});
  }
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<AsyncCountWords>(observer_);
  }
  void open(const OperatorContext& c) override { task_ = c.taskIndex; }
  void onTuple(const Tuple& t, Emitter& out) override {
    const std::string& w = t.getString(0);
    out.emit(Values{w, ++counts_[w]});
    if (observer_) observer_->processed(task_);
  }
  bool stateful() const override { return true; }
  std::string snapshot() const override { return encode(counts_); }
  Write snapshotAsync(uint64_t id) override {
    Counts::View view = counts_.freeze();
    if (observer_) observer_->frozen(id, task_, counts_);
    return [observer = observer_, view = std::move(view), id, task = task_] {
      if (observer) observer->writing(id, task);
      return encode(view);
    };
  }
  void restore(std::string_view snap) override {
    counts_.clear();
    for (const auto& [w, c] : decode(snap)) counts_[w] = c;
  }
  size_t stateSize() const override { return counts_.size(); }

  static std::map<std::string, int64_t> decode(std::string_view snap) {
    std::map<std::string, int64_t> counts;
    std::istringstream in{std::string(snap)};
    for (std::string line; std::getline(in, line);) {
      auto tab = line.find('\t');
      if (tab == std::string::npos) throw std::invalid_argument("AsyncCountWords: bad snapshot");
      counts[line.substr(0, tab)] = std::stoll(line.substr(tab + 1));
    }
    return counts;
  }
  template <class Entries>
  static std::string encode(const Entries& counts) {
    std::string s;
    counts.forEach([&](const std::string& w, int64_t c) {
      s += w + "\t" + std::to_string(c) + "\n";
    });
    return s;
  }

 private:
  std::shared_ptr<Observer> observer_;
  int task_ = 0;
  Counts counts_;
};

// Two spout tasks shuffled into split (fused into the spout tasks), counts keyed by word
// (`setCount` declares the "count" component) and a sink of two tasks keyed by word, each task
// of these two with two inputs to align: each word's counts go to one sink task, in order.
inline Topology exactlyOnceWordCountWith(
    int64_t total, const std::string& out, double rate,
    const std::function<BoltDeclarer(TopologyBuilder&)>& setCount) {
  TopologyBuilder b;
  b.setSpout("sentences", wordCountSentences(total, rate), 2);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  setCount(b).fieldsGrouping("split", Fields{"word"});
  b.setBolt("sink", FileSink(out, FileFormat::Text, {.sync = false}), 2)
      .fieldsGrouping("count", Fields{"word"});
  return b.build();
}

// The counts by an Operator (null: CountWords).
inline Topology exactlyOnceWordCount(int64_t total, const std::string& out,
                                     std::shared_ptr<const Operator> count = nullptr,
                                     double rate = 0) {
  return exactlyOnceWordCountWith(total, out, rate, [&](TopologyBuilder& b) {
    return b.setBolt("count", count ? *count : static_cast<const Operator&>(CountWords{}), 2);
  });
}

// The counts by a user's StatefulCountBolt.
inline Topology exactlyOnceBoltWordCount(int64_t total, const std::string& out, double rate = 0,
                                         bool checkpointed = true) {
  return exactlyOnceWordCountWith(total, out, rate, [&](TopologyBuilder& b) {
    return b.setBolt("count", StatefulCountBolt(checkpointed), 2);
  });
}

// Every committed "word<TAB>count" line of `out` in checkpoint order, per word.
inline std::map<std::string, std::vector<int64_t>> committedCounts(const std::string& out) {
  std::vector<std::string> parts;
  for (const auto& e : std::filesystem::directory_iterator(out)) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) == 0) parts.push_back(name);
  }
  std::sort(parts.begin(), parts.end());  // part-<checkpoint, zero-padded>-<task>
  std::map<std::string, std::vector<int64_t>> seen;
  for (const auto& name : parts) {
    std::ifstream in(std::filesystem::path(out) / name);
    std::string w;
    int64_t n;
    while (in >> w >> n) seen[w].push_back(n);
  }
  return seen;
}

// Each word's committed counts, in the order committed, checked by `check` against its direct
// count n over the first `total` sentences; and the checkpoint consumed every sentence. A fatal
// failure in `check` ends the checks, as an ASSERT in a loop would.
using CountsCheck = std::function<void(const std::string& word,
                                       const std::vector<int64_t>& counts, int64_t n)>;
inline void expectCommittedCounts(const std::string& chk, const std::string& out, int64_t total,
                                  const CountsCheck& check) {
  std::vector<std::string> all;
  for (int64_t g = 0; g < total; ++g) all.push_back(SentenceSource::sentenceAt(g));
  auto oracle = directWordCount(all);
  auto seen = committedCounts(out);
  ASSERT_EQ(seen.size(), oracle.size());
  for (const auto& [word, n] : oracle) {
    check(word, seen[word], n);
    if (::testing::Test::HasFatalFailure()) return;
  }
  SourceOffsets offsets = StateStore::inspect(chk)->committedOffsets();
  int64_t consumed = 0;
  for (auto [p, off] : offsets["sentences"]) consumed += off;
  EXPECT_EQ(consumed, total);
}

// Exactly once: each word's committed counts are 1, 2, ..., its direct count (a lost record
// leaves a gap, a replayed one repeats a count), and the checkpoint consumed every sentence.
inline void expectExactlyOnce(const std::string& chk, const std::string& out, int64_t total) {
  expectCommittedCounts(chk, out, total, [](const std::string& word,
                                            const std::vector<int64_t>& counts, int64_t n) {
    std::vector<int64_t> expected;
    for (int64_t i = 1; i <= n; ++i) expected.push_back(i);
    ASSERT_EQ(counts, expected) << "word '" << word << "'";
  });
  if (::testing::Test::HasFatalFailure()) return;
  for (const auto& e : std::filesystem::directory_iterator(out))
    EXPECT_NE(e.path().filename().string()[0], '.') << "left uncommitted: " << e.path();
}

// The windowed word count's operator: event-time tumbling windows (50 ms), append mode.
inline OperatorPtr windowedCount() {
  return windowed(Tumbling(std::chrono::milliseconds(50)), Count{})
      .keyBy({"word"})
      .eventTime("ts")
      .outputMode(OutputMode::Append)
      .build();
}

// Event-time tumbling windows (50 ms) of word counts, append mode (sentence g has event time
// g ms), up to the "count" component (windowedCount(), or `count`); a sink subscribes to it.
// `countTasks` and `keyGroups` (maxParallelism, 0: none) of the windowed count.
inline void addWindowedWordCount(TopologyBuilder& b, int64_t total, double rate,
                                 int countTasks = 2, uint32_t keyGroups = 0,
                                 OperatorPtr count = nullptr) {
  b.setSpout("sentences",
             std::make_shared<HoldableSentences>(SentenceSource::Options{
                 .partitions = 3, .ratePerSecond = rate, .total = total, .withEventTime = true,
                 .eventTimeStep = std::chrono::milliseconds(1)}),
             2)
      // A spout task reads its partitions in turn, 64 records at a time: its event times are
      // out of order by up to ~200 ms, which the delay covers (no row is late).
      .withWatermark("ts", std::chrono::seconds(1));
  b.setBolt("split", splitWords("sentence", "word", {"ts"}), 2).shuffleGrouping("sentences");
  if (!count) count = windowedCount();
  b.setBolt("count", *count, countTasks)
      .maxParallelism(keyGroups)
      .fieldsGrouping("split", Fields{"word"});
}

// The windowed word count into the file sink.
inline Topology windowedWordCount(const std::string& out, int64_t total, double rate,
                                  int countTasks = 2, uint32_t keyGroups = 0) {
  TopologyBuilder b;
  addWindowedWordCount(b, total, rate, countTasks, keyGroups);
  b.setBolt("sink", FileSink(out, FileFormat::Text, {.sync = false}), 1).globalGrouping("count");
  return b.build();
}

// "word<TAB>window_start" -> the direct count of the windowed word count.
inline std::map<std::string, int64_t> directWindowCounts(int64_t total) {
  // Sentence g has event time g ms (eventTimeStep), window [g/50*50, +50) ms.
  std::map<std::string, int64_t> expected;
  for (int64_t g = 0; g < total; ++g) {
    std::string start = toString(Value{Timestamp{g / 50 * 50 * 1000}});
    std::istringstream words(SentenceSource::sentenceAt(g));
    for (std::string w; words >> w;) ++expected[w + "\t" + start];
  }
  return expected;
}

// Each (word, window) row of the windowed count committed exactly once, with its direct count.
inline void expectWindowsExactlyOnce(const std::string& out, int64_t total) {
  std::map<std::string, int64_t> expected = directWindowCounts(total);
  std::map<std::string, int64_t> seen;
  for (const auto& e : std::filesystem::directory_iterator(out)) {
    std::string name = e.path().filename().string();
    ASSERT_EQ(name.rfind("part-", 0), 0u) << "left uncommitted: " << name;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {
      // word, window_start, window_end, count
      std::string key = line.substr(0, line.find('\t', line.find('\t') + 1));
      EXPECT_EQ(seen.count(key), 0u) << "window committed twice: " << key;
      seen[key] = std::stoll(line.substr(line.rfind('\t') + 1));
    }
  }
  EXPECT_EQ(seen, expected);
}

// Runs `topology` until checkpoint `id`'s barrier left a spout task, holds that task there and
// kills the topology: the run ends with checkpoint `id` in flight and its input unread.
inline void runUntilBarrierThenKill(Topology topology, Continuous cfg, uint64_t id) {
  InputEndHold hold;
  std::mutex m;
  std::condition_variable cv;
  bool reached = false, released = false;
  cfg.onCheckpointPoint = [&](CheckpointPoint p, uint64_t at) {
    if (p != CheckpointPoint::BarrierInjected || at != id) return;
    std::unique_lock lk(m);
    reached = true;
    cv.notify_all();
    cv.wait(lk, [&] { return released; });
  };
  auto rt = runContinuous(std::move(topology), cfg);
  bool ok;
  {
    std::unique_lock lk(m);
    ok = cv.wait_for(lk, std::chrono::seconds(60), [&] { return reached; });
    released = true;
    cv.notify_all();
  }
  rt.kill();
  ASSERT_TRUE(ok) << "checkpoint " << id << "'s barrier was never injected";
}

}  // namespace gale::testing
