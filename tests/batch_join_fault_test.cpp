// Exactly-once under real crashes for incremental operator state: a forked child runs a
// micro-batch full outer join — whose state is committed incrementally, a head plus LMDB entries
// of its rows — into a txid-keyed file sink, and is killed with SIGKILL at each point of a
// commit, in the sink and after random delays; the parent restarts it until the input is done.
// The committed sink output must then be exactly the rows of the same join in continuous mode:
// a restored join that lost a row, kept an evicted one or forgot a match would differ.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/stream_join.h"
#include "crash_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

constexpr int64_t kEvents = 3000;  // per side
const Fields kFields{{"k", Type::String}, {"ts", Type::Timestamp}, {"v", Type::Int64}};

std::shared_ptr<GeneratorSource> side(const std::string& name, int keys) {
  GeneratorSource::Options o;
  o.name = name;
  o.partitions = 1;
  o.total = kEvents;
  auto gen = [keys](int, int64_t off) {
    return Values{"k" + std::to_string(off * 7 % keys), Timestamp{off * 1000}, off};
  };
  return std::make_shared<GeneratorSource>(kFields, gen, o);
}

Topology joinTopology(const Operator& sink) {
  TopologyBuilder b;
  b.setSpout("clicks", side("clicks", 20), 1).withWatermark("ts", 2ms);
  b.setSpout("views", side("views", 30), 1).withWatermark("ts", 2ms);
  b.setBolt("join", StreamJoin({"clicks", kFields, {"k"}, "ts"}, {"views", kFields, {"k"}, "ts"},
                               JoinType::FullOuter, between(-5ms, 5ms)), 2)
      .fieldsGrouping("clicks", Fields{"k"})
      .fieldsGrouping("views", Fields{"k"});
  b.setBolt("sink", sink, 1).shuffleGrouping("join");
  return b.build();
}

std::string line(const Values& values) {
  std::string s;
  for (const auto& v : values) s += toString(v) + "|";
  return s;
}
std::string rowLine(const Tuple& t) { return line(t.values()) + "\n"; }

// The child: runs until the input is done (exit 0) or it is killed.
[[noreturn]] void child(const std::string& chk, const std::string& out, KillAt kill,
                        uint64_t killTxid, int64_t perBatch) {
  int rc = 0;
  try {
    MicroBatch cfg;
    cfg.trigger = BatchTrigger::availableNow();
    cfg.checkpoint = chk;
    cfg.maxRecordsPerBatch = perBatch;
    cfg.maxBatchesInFlight = 2;  // overlapping batches: a kill may find two in flight
    cfg.syncCommits = false;     // a process kill loses nothing without fsync (docs/state.md)
    cfg.onCommitPoint = killAtCommitPoint(kill, killTxid);
    auto job = runMicroBatch(joinTopology(TxidFileSink(out, rowLine, kill, killTxid)), cfg);
    job.waitUntilDone();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
    rc = 3;
  }
  ::_exit(rc);
}

// The rows of the committed parts 1..last (a part beyond the last commit is not output yet).
std::multiset<std::string> committedRows(const std::string& chk, const std::string& out) {
  const uint64_t last = committedTxid(chk);
  std::multiset<std::string> rows;
  for (uint64_t t = 1; t <= last; ++t) {
    std::ifstream in(out + "/part-" + std::to_string(t) + "-0");
    EXPECT_TRUE(in.good()) << "batch " << t << " has no committed output";
    for (std::string l; std::getline(in, l);) rows.insert(l);
  }
  return rows;
}

TEST(BatchJoinFault, SigkillAtRandomPointsGivesTheContinuousRowsExactlyOnce) {
  fs::path base = fs::temp_directory_path() / ("gale-join-fault-" + std::to_string(::getpid()));
  std::mt19937_64 rng(20261130);
  std::vector<std::multiset<std::string>> episodesRows;
  int kills = 0, runs = 0, pointKills = 0;
  auto started = std::chrono::steady_clock::now();
  // Episodes (each from an empty checkpoint, restarted after every kill until the input is done)
  // repeat until enough kills landed: a kill after a random delay may come after the end.
  while (kills < 20) {
    fs::remove_all(base);
    std::string chk = (base / "chk").string(), out = (base / "out").string();
    fs::create_directories(out);
    const int64_t perBatch = 50 + static_cast<int64_t>(rng() % 150);
    bool finished = false;
    while (!finished) {
      ASSERT_LT(++runs, 400) << "no progress after many restarts";
      ASSERT_LT(std::chrono::steady_clock::now() - started, 100s);
      const uint64_t last = committedTxid(chk);
      KillAt kill = KillAt::Nowhere;
      uint64_t killTxid = 0;
      int delayMs = -1;
      if (kills < 20) {
        int mode = static_cast<int>(rng() % 7);
        if (mode < 5) {
          kill = static_cast<KillAt>(1 + mode);
          killTxid = last + 1 + rng() % 3;
        } else {
          delayMs = static_cast<int>(rng() % 60);
        }
      }
      ChildEnd end = runChild([&] { child(chk, out, kill, killTxid, perBatch); }, delayMs);
      ASSERT_NE(end, ChildEnd::Failed);
      if (end == ChildEnd::Killed) {
        ++kills;
        if (kill != KillAt::Nowhere) ++pointKills;
      } else {
        finished = true;
      }
    }
    episodesRows.push_back(committedRows(chk, out));
  }
  EXPECT_GE(pointKills, 8);

  // The reference, after the forks (no runtime threads in the parent while it forks).
  auto store = std::make_shared<MemoryStore>();
  Continuous c;
  c.acking = false;
  auto running = runContinuous(joinTopology(MemorySink(store)), c);
  ASSERT_TRUE(running.waitUntilDone(30s));
  std::multiset<std::string> expected;
  size_t nulls = 0;
  for (const auto& v : store->values()) {
    expected.insert(line(v));
    nulls += typeOf(v[0]) == Type::Null || typeOf(v[3]) == Type::Null;
  }
  ASSERT_GT(nulls, 0u);
  ASSERT_GE(expected.size() - nulls, 1000u);
  for (size_t e = 0; e < episodesRows.size(); ++e)
    EXPECT_TRUE(episodesRows[e] == expected) << "episode " << e << ": " << episodesRows[e].size()
                                             << " rows, expected " << expected.size();
  std::printf("join fault test: %zu episodes, %d runs, %d kills (%d at commit/sink points)\n",
              episodesRows.size(), runs, kills, pointKills);
  fs::remove_all(base);
}

}  // namespace
}  // namespace gale
