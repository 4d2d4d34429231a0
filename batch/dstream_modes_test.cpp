// The DStream operators of core/dstream*.h through the real runtimes: the same topology in
// continuous mode and in micro-batch mode.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/dstream.h"
#include "gale/core/dstream_batch.h"
#include "gale/core/stateless.h"
#include "gale/topology/runtime.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct DStreamModesTest : testing::CheckpointDirTest {
  // Runs `build` in continuous mode, then in micro-batch mode (available-now, batches of
  // `perBatch` records), each to completion.
  template <class Build>
  void runBoth(Build build, int64_t perBatch) {
    {
      Continuous c;
      c.acking = false;
      auto running = runContinuous(build(false), c);
      ASSERT_TRUE(running.waitUntilDone(30s));
    }
    MicroBatch cfg;
    cfg.trigger = BatchTrigger::availableNow();
    cfg.checkpoint = (dir / "checkpoint").string();
    cfg.maxRecordsPerBatch = perBatch;
    auto job = runMicroBatch(build(true), cfg);
    ASSERT_TRUE(job.waitUntilDone(30s));
  }
  // Runs `build` in micro-batch mode (batches of 100 records) until it fails, then again until
  // it completes, with `beforeRestart` in between.
  template <class Build, class Between>
  void failThenRestart(Build build, Between beforeRestart, const Clock* clock = nullptr) {
    MicroBatch cfg;
    cfg.trigger = BatchTrigger::availableNow();
    cfg.checkpoint = (dir / "checkpoint").string();
    cfg.maxRecordsPerBatch = 100;
    if (clock) cfg.clock = clock;
    {
      auto job = runMicroBatch(build(), cfg);
      EXPECT_THROW(job.waitUntilDone(30s), std::runtime_error);
    }
    resetTerminated();
    beforeRestart();
    auto job = runMicroBatch(build(), cfg);
    ASSERT_TRUE(job.waitUntilDone(30s));
  }
};

const Fields kFields{{"k", Type::String}, {"ts", Type::Timestamp}, {"v", Type::Int64}};

// In-order events, 1 ms of event time apart; `keys` distinct keys.
SourcePtr events(std::string name, int64_t total, int keys, int64_t offsetMs = 0) {
  GeneratorSource::Options o;
  o.name = name;
  o.partitions = 1;
  o.total = total;
  auto gen = [keys, offsetMs](int, int64_t off) {
    return Values{"k" + std::to_string(off * 7 % keys), Timestamp{(off + offsetMs) * 1000}, off % 10};
  };
  return std::make_shared<GeneratorSource>(kFields, gen, o);
}

std::multiset<std::string> lines(const MemoryStore& s) {
  std::multiset<std::string> rows;
  for (const auto& r : s.rows()) {
    std::string line = rowText(r.values);
    // A cogroup's columns are encoded rows: compare what they hold.
    for (const auto& v : r.values)
      if (typeOf(v) == Type::Bytes)
        for (const auto& row : cogroupRows(v)) line += " " + rowText(row);
    rows.insert(line);
  }
  return rows;
}

TEST_F(DStreamModesTest, WindowReduceByWindowUnionAndTheWindowedCogroupGiveTheSameRowsInBothModes) {
  std::map<bool, std::map<std::string, MemoryStorePtr>> stores;
  auto build = [&](bool micro) {
    auto& s = stores[micro];
    for (const char* n : {"window", "reduce", "reduceNoInverse", "cogroup", "join"})
      s[n] = std::make_shared<MemoryStore>();
    TopologyBuilder b;
    b.setSpout("a", events("a", 600, 5), 1).withWatermark("ts", 3ms);
    b.setSpout("b", events("b", 500, 7, 40), 1).withWatermark("ts", 3ms);
    b.setBolt("union", Union({{"a", kFields}, {"b", kFields}}), 2)
        .shuffleGrouping("a")
        .shuffleGrouping("b");
    b.setBolt("window", *window(kFields, 40ms, 20ms, EventTime("ts")), 1).shuffleGrouping("union");
    b.setBolt("reduce", *reduceByWindow("v", plus, minus, 40ms, 20ms, EventTime("ts")), 1)
        .shuffleGrouping("union");
    b.setBolt("reduceNoInverse", *reduceByWindow("v", plus, nullptr, 40ms, 20ms, EventTime("ts")), 1)
        .shuffleGrouping("union");
    b.setBolt("cogroup", Cogroup({"a", kFields, {"k"}, "ts"}, {"b", kFields, {"k"}, "ts"}, 50ms), 2)
        .fieldsGrouping("a", Fields{"k"})
        .fieldsGrouping("b", Fields{"k"});
    b.setBolt("join", windowedJoin({"a", kFields, {"k"}, "ts"}, {"b", kFields, {"k"}, "ts"},
                                   JoinType::FullOuter, 50ms), 2)
        .fieldsGrouping("a", Fields{"k"})
        .fieldsGrouping("b", Fields{"k"});
    for (auto& [n, store] : s) b.setBolt(n + "-sink", MemorySink(store), 1).shuffleGrouping(n);
    return b.build();
  };
  runBoth(build, 170);
  for (const auto& [n, cont] : stores[false]) {
    auto c = lines(*cont);
    EXPECT_EQ(lines(*stores[true][n]), c) << n;
    EXPECT_GT(c.size(), 20u) << n;
  }
  // window re-emits every row twice (length = 2 slides); the sums agree with and without inverse.
  EXPECT_EQ(stores[false]["window"]->size(), 2 * 1100u);
  EXPECT_EQ(lines(*stores[false]["reduce"]), lines(*stores[false]["reduceNoInverse"]));
}

TEST_F(DStreamModesTest, UnionOfStreamsWithOtherFieldsIsRejectedWhenTheTopologyIsBuilt) {
  TopologyBuilder b;
  b.setSpout("a", events("a", 10, 2), 1);
  b.setSpout("b", events("b", 10, 2), 1);
  b.setBolt("union", Union({{"a", kFields}}), 1).shuffleGrouping("a").shuffleGrouping("b");
  try {
    b.build();
    FAIL() << "a union subscribed to an input it does not list must be rejected";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Union({{"a", kFields}, {"b", Fields{"k", "v", "ts"}}}), std::invalid_argument);
}

// Per-batch operators: what a batch is differs between the modes, but each row is in exactly
// one batch, a row-wise transform gives the same rows, and a per-batch join of a stream with a
// stream derived from it (both copies of a row are always in the same batch) too.
TEST_F(DStreamModesTest, PerBatchOperatorsSeeEachRowInExactlyOneBatchInBothModes) {
  std::mutex mutex;
  std::map<bool, std::multiset<int64_t>> seenRows;  // event time of every row foreachBatch saw
  std::map<bool, std::set<uint64_t>> batchIds;
  std::map<bool, std::map<std::string, MemoryStorePtr>> stores;
  std::map<bool, std::ostringstream> printed;
  const std::map<std::string, std::string> table{{"k0", "zero"}, {"k1", "one"}, {"k2", "two"}};
  auto build = [&](bool micro) {
    auto& s = stores[micro];
    s["transform"] = std::make_shared<MemoryStore>();
    s["join"] = std::make_shared<MemoryStore>();
    TopologyBuilder b;
    b.setSpout("a", events("a", 800, 5), 1).withWatermark("ts", 2ms);
    // "doubled": each row of a again, with v doubled.
    b.setBolt("doubled", Map(kFields, [](const Tuple& t) {
                Values v = t.values();
                v[2] = std::get<int64_t>(v[2]) * 2;
                return v;
              }), 1)
        .shuffleGrouping("a");
    b.setBolt("foreach", ForeachBatch([&, micro](const BatchInfo& info, const std::vector<Tuple>& rows) {
                std::lock_guard lk(mutex);
                EXPECT_EQ(info.microBatch, micro);
                EXPECT_TRUE(batchIds[micro].insert(info.id).second) << "batch id " << info.id << " twice";
                for (const auto& t : rows) seenRows[micro].insert(t.getTimestamp("ts").micros);
              }), 1)
        .shuffleGrouping("a");
    b.setBolt("transform", Transform(Fields{"k", "name"}, [&](const BatchInfo&, const std::vector<Tuple>& rows) {
                std::vector<Values> out;
                for (const auto& t : rows)
                  if (auto it = table.find(t.getString("k")); it != table.end())
                    out.push_back({t.get("k"), it->second});
                return out;
              }), 2)
        .shuffleGrouping("a");
    // Continuous mode: batches cut by event time, so a row and its double meet in one batch.
    BatchJoin join({"a", kFields, {"k", "ts"}, ""}, {"doubled", kFields, {"k", "ts"}, ""});
    join.eventTime(EventTime("ts"));
    b.setBolt("join", join, 2)
        .fieldsGrouping("a", Fields{"k"})
        .fieldsGrouping("doubled", Fields{"k"});
    b.setBolt("print", Print(3, &printed[micro]), 1).shuffleGrouping("a");
    b.setBolt("save", SaveAsTextFiles((dir / (micro ? "micro" : "cont") / "rows").string(), "txt"), 1)
        .shuffleGrouping("a");
    for (auto& [n, store] : s) b.setBolt(n + "-sink", MemorySink(store), 1).shuffleGrouping(n);
    return b.build();
  };
  runBoth(build, 130);
  std::multiset<int64_t> all;
  for (int64_t i = 0; i < 800; ++i) all.insert(i * 1000);
  for (bool micro : {false, true}) {
    SCOPED_TRACE(micro ? "micro-batch" : "continuous");
    EXPECT_EQ(seenRows[micro], all);
    EXPECT_EQ(stores[micro]["join"]->size(), 800u) << "every row meets its double in its batch";
    for (const auto& r : stores[micro]["join"]->rows())
      EXPECT_EQ(std::get<int64_t>(r.values[5]), 2 * std::get<int64_t>(r.values[2]));
    EXPECT_EQ(stores[micro]["transform"]->size(), 800u * 3 / 5);
    // print: one header per batch, at most 3 rows each.
    std::string out = printed[micro].str();
    size_t headers = 0;
    for (size_t p = out.find("Time: "); p != std::string::npos; p = out.find("Time: ", p + 1)) ++headers;
    EXPECT_GE(headers, micro ? 7u : 1u);
    // saveAsTextFiles: every row in exactly one batch directory.
    size_t saved = 0, dirs = 0;
    for (const auto& e : fs::directory_iterator(dir / (micro ? "micro" : "cont"))) {
      if (e.path().filename().string().rfind("rows-", 0) != 0) continue;
      ++dirs;
      EXPECT_EQ(e.path().extension(), ".txt");
      std::ifstream in(e.path() / "part-00000");
      for (std::string l; std::getline(in, l);) ++saved;
    }
    EXPECT_EQ(saved, 800u);
    EXPECT_GE(dirs, 1u);
  }
  EXPECT_EQ(lines(*stores[false]["transform"]), lines(*stores[true]["transform"]));
  EXPECT_EQ(lines(*stores[false]["join"]), lines(*stores[true]["join"]));
  EXPECT_GE(batchIds[true].size(), 7u) << "800 records in batches of 130";
}

// Spark's foreachBatch rule: a batch whose function failed is run again, after the restart,
// with the same id and the same rows, so a function idempotent per batch id writes exactly once.
TEST_F(DStreamModesTest, AFailedForeachBatchIsRunAgainWithTheSameBatchIdAndRows) {
  std::mutex mutex;
  std::map<uint64_t, std::multiset<int64_t>> written;  // idempotent per id: a replay overwrites
  std::map<uint64_t, std::multiset<int64_t>> failedAttempt;
  bool failOnce = true;
  auto build = [&] {
    TopologyBuilder b;
    b.setSpout("a", events("a", 600, 5), 1).withWatermark("ts", 2ms);
    b.setBolt("foreach", ForeachBatch([&](const BatchInfo& info, const std::vector<Tuple>& rows) {
                std::multiset<int64_t> ts;
                for (const auto& t : rows) ts.insert(t.getTimestamp("ts").micros);
                std::lock_guard lk(mutex);
                if (info.id == 3 && failOnce) {
                  failOnce = false;
                  failedAttempt[info.id] = ts;
                  throw std::runtime_error("the sink is down");
                }
                written[info.id] = ts;
              }), 1)
        .shuffleGrouping("a");
    return b.build();
  };
  failThenRestart(build, [&] { ASSERT_EQ(failedAttempt.size(), 1u); });
  EXPECT_EQ(written.at(3), failedAttempt.at(3)) << "the replay has the failed attempt's rows";
  std::multiset<int64_t> all, got;
  for (int64_t i = 0; i < 600; ++i) all.insert(i * 1000);
  for (const auto& [id, ts] : written) got.insert(ts.begin(), ts.end());
  EXPECT_EQ(got, all) << "every row written once";
}


// saveAsTextFiles through a crash: batch 3's files are written, then the batch fails (a sibling
// foreachBatch throws), the job restarts later on the clock and replays batch 3, which replaces
// its files under the same name instead of adding a second directory.
TEST_F(DStreamModesTest, SaveAsTextFilesReplacesAReplayedBatchsFilesAfterARestart) {
  const fs::path out = dir / "out";
  ManualClock clock(Timestamp{1'000'000'000});
  bool failOnce = true;
  auto build = [&] {
    TopologyBuilder b;
    b.setSpout("a", events("a", 500, 5), 1).withWatermark("ts", 2ms);
    b.setBolt("save", SaveAsTextFiles((out / "rows").string(), "txt"), 1).shuffleGrouping("a");
    b.setBolt("fail", ForeachBatch([&](const BatchInfo& info, const std::vector<Tuple>&) {
                if (info.id != 3 || !failOnce) return;
                failOnce = false;
                // Wait (bounded) until save wrote batch 3, so the replay has something to replace.
                const fs::path third = out / "rows-1000002.txt" / "part-00000";
                for (int i = 0; i < 20000 && !fs::exists(third); ++i)
                  std::this_thread::sleep_for(1ms);
                ASSERT_TRUE(fs::exists(third));
                throw std::runtime_error("the other sink is down");
              }), 1)
        .shuffleGrouping("a");
    return b.build();
  };
  failThenRestart(build, [&] { clock.advance(1000s); }, &clock);
  std::multiset<std::string> rows;
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(out)) {
    if (e.path().filename().string()[0] == '.') continue;
    dirs.push_back(e.path().filename().string());
    std::ifstream in(e.path() / "part-00000");
    for (std::string l; std::getline(in, l);) rows.insert(l);
  }
  std::sort(dirs.begin(), dirs.end());
  EXPECT_EQ(rows.size(), 500u);
  EXPECT_EQ(std::set<std::string>(rows.begin(), rows.end()).size(), 500u) << "no row twice";
  ASSERT_GE(dirs.size(), 5u);
  EXPECT_EQ(dirs[2], "rows-1000002.txt") << "batch 3 kept its first time";
  EXPECT_EQ(dirs[3].substr(0, 9), "rows-2000") << "batch 4 ran after the restart";
}

}  // namespace
}  // namespace gale
