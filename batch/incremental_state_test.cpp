// Incremental operator state in micro-batch mode (IncrementalState, here a stream join): each
// batch commits the join's small head and only the entries (groups of rows) holding a row it
// stored, first matched or evicted, into the job's LMDB state; a restart restores the join
// exactly from them. Tested against the same
// topology run once in continuous mode, over restarts and failed (uncommitted) batches at random
// points.
#include <filesystem>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "click_view_join_for_test.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/stream_join.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using testing::kClickViewFields;
using testing::rowsOf;

// One side's events (clickViewEvent). The test decides how far it is readable and whether it has
// ended.
class Events final : public Source {
 public:
  Events(std::string name, int keys) : name_(std::move(name)), keys_(keys) {}
  void set(int64_t available, bool finished) {
    available_ = available;
    finished_ = finished;
  }
  std::string name() const override { return name_; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(kClickViewFields); }
  int partitions() const override { return 1; }
  int64_t available(int) override { return available_; }
  size_t read(int, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o)
      out.push_back({o, testing::clickViewEvent(keys_, o), 0});
    return static_cast<size_t>(to - from);
  }
  bool finished() const override { return finished_; }

 private:
  std::string name_;
  int keys_;
  std::atomic<int64_t> available_{0};
  std::atomic<bool> finished_{false};
};

// Passes the join's rows on; throws at the end of batch `failAt` while armed, so that batch and
// every later one stay uncommitted (a crash before the commit, as far as the checkpoint can tell).
class FailAt final : public Operator {
 public:
  struct Shared {
    std::atomic<uint64_t> failAt{0};
  };
  FailAt(Fields fields, std::shared_ptr<Shared> shared)
      : fields_(std::move(fields)), shared_(std::move(shared)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(fields_); }
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<FailAt>(fields_, shared_);
  }
  void onTuple(const Tuple& t, Emitter& out) override { out.emit(t.values()); }
  void onBatchEnd(uint64_t txid, Emitter&) override {
    if (txid == shared_->failAt) throw std::runtime_error("injected failure in batch " +
                                                         std::to_string(txid));
  }

 private:
  Fields fields_;
  std::shared_ptr<Shared> shared_;
};

struct IncrementalStateTest : testing::CheckpointDirTest {

  Topology topology(MemoryStorePtr store) {
    TopologyBuilder b;
    testing::declareClickViewJoin(b, clicks, views, JoinType::FullOuter);
    OutputFieldsDeclarer d;
    testing::clickViewJoin(JoinType::FullOuter).declareOutputFields(d);
    b.setBolt("fail", FailAt(*d.find(kDefaultStream), failures), 1).shuffleGrouping("join");
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("fail");
    return b.build();
  }

  std::shared_ptr<Events> clicks = std::make_shared<Events>("clicks", 20);
  std::shared_ptr<Events> views = std::make_shared<Events>("views", 30);
  std::shared_ptr<FailAt::Shared> failures = std::make_shared<FailAt::Shared>();
};

TEST_F(IncrementalStateTest, AJoinRestartedAndFailedAtRandomBatchesGivesTheContinuousRows) {
  constexpr int64_t kEvents = 1000;
  clicks->set(kEvents, true);
  views->set(kEvents, true);
  auto contStore = std::make_shared<MemoryStore>();
  {
    Continuous c;
    c.acking = false;
    auto running = runContinuous(topology(contStore), c);
    ASSERT_TRUE(running.waitUntilDone(30s));
  }
  const std::multiset<std::string> expected = rowsOf(*contStore);
  size_t nulls = 0;
  for (const auto& r : contStore->rows()) nulls += typeOf(r.values[0]) == Type::Null ||
                                                   typeOf(r.values[3]) == Type::Null;
  ASSERT_GT(nulls, 0u);
  ASSERT_GT(expected.size() - nulls, 100u);

  std::mt19937_64 rng(7);
  for (int round = 0; round < 3; ++round) {
    fs::remove_all(dir);
    auto store = std::make_shared<MemoryStore>();
    int64_t upTo = 0;
    int runs = 0, failed = 0;
    bool checkedEntries = false, retry = false;
    while (true) {
      // Each run reads a random further stretch (a run after a failure the same one again); the
      // last one reaches the end of the input.
      if (!retry) upTo = std::min(kEvents, upTo + 100 + static_cast<int64_t>(rng() % 300));
      retry = false;
      const bool last = upTo == kEvents;
      clicks->set(upTo, last);
      views->set(upTo, last);
      MicroBatch cfg;
      cfg.trigger = BatchTrigger::availableNow();
      cfg.checkpoint = dir.string();
      cfg.maxRecordsPerBatch = 40 + static_cast<int64_t>(rng() % 80);
      cfg.maxBatchesInFlight = 1 + static_cast<int>(rng() % 2);
      uint64_t lastTxid = 0;
      if (fs::exists(dir)) lastTxid = StateStore::inspect(dir.string())->lastCommittedTxid();
      failures->failAt = rng() % 2 ? lastTxid + 1 + rng() % 3 : 0;
      auto job = runMicroBatch(topology(store), cfg);
      ++runs;
      try {
        job.waitUntilDone();
      } catch (const std::runtime_error& e) {
        ASSERT_NE(std::string(e.what()).find("injected failure"), std::string::npos) << e.what();
        ++failed;
        failures->failAt = 0;
        resetTerminated();
        retry = true;  // the next run replays from the last commit
        continue;
      }
      resetTerminated();
      if (!last && !checkedEntries) {
        // Mid-way: the committed join state is a small head per task plus its entries.
        auto inspect = StateStore::inspect(dir.string());
        size_t entries = 0;
        inspect->keyedState("$entries:join", StateKind::Plain)
            .forEach([&](std::string_view, std::string_view) { return ++entries, true; });
        for (int task = 0; task < 2; ++task) {
          auto head = inspect->snapshot("join#" + std::to_string(task));
          ASSERT_TRUE(head.has_value());
          EXPECT_LT(head->size(), 40u) << "the head holds no rows";
        }
        EXPECT_GT(entries, 0u);
        checkedEntries = true;
      }
      if (last) break;
    }
    EXPECT_EQ(rowsOf(*store), expected) << "round " << round << ": " << runs << " runs, "
                                        << failed << " failed";
    EXPECT_TRUE(checkedEntries);
    auto inspect = StateStore::inspect(dir.string());
    size_t left = 0;
    inspect->keyedState("$entries:join", StateKind::Plain)
        .forEach([&](std::string_view, std::string_view) { return ++left, true; });
    EXPECT_EQ(left, 0u) << "the end of input evicted every row, so every entry was erased";
  }
}

}  // namespace
}  // namespace gale
