// Exactly-once under real crashes: a forked child runs a micro-batch word count (the topology
// runtime, LMDB commits, a txid-keyed file sink) and is killed with SIGKILL at random moments and
// at each point of a commit and of the sink; the parent restarts it until the input is done. The
// committed state and the committed sink output must then equal a direct count: nothing lost,
// nothing counted twice.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "../batch/batch_test_ops.h"
#include "crash_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

constexpr int kPartitions = 3;
constexpr int64_t kSentences = 12000;
constexpr int64_t kPerBatch = 150;

std::string wordAndCount(const Tuple& t) {
  return t.getString(0) + " " + std::to_string(t.getInt(1)) + "\n";
}

std::shared_ptr<SentenceSource> sentences() {
  SentenceSource::Options o;
  o.partitions = kPartitions;
  o.total = kSentences;
  return std::make_shared<SentenceSource>(o);
}

// The child: runs until the input is done (exit 0) or it is killed.
[[noreturn]] void child(const std::string& chk, const std::string& out, KillAt kill,
                        uint64_t killTxid) {
  int rc = 0;
  try {
    TopologyBuilder b;
    b.setSpout("sentences", sentences(), 2);
    b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
    b.setBolt("count", CountWords{}, 2).fieldsGrouping("split", Fields{"word"});
    b.setBolt("sink", TxidFileSink(out, wordAndCount, kill, killTxid), 1).shuffleGrouping("count");
    MicroBatch cfg;
    cfg.trigger = BatchTrigger::availableNow();
    cfg.checkpoint = chk;
    cfg.maxRecordsPerBatch = kPerBatch;
    cfg.maxBatchesInFlight = 2;  // overlapping batches: a kill may find two in flight
    cfg.onCommitPoint = killAtCommitPoint(kill, killTxid);
    auto job = runMicroBatch(b.build(), cfg);
    job.waitUntilDone();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
    rc = 3;
  }
  ::_exit(rc);
}

// Checks one finished episode against the oracle: committed state, offsets and sink output.
void verifyExactlyOnce(const std::string& chk, const std::string& out, uint64_t totalBatches) {
  // The oracle: a direct count of every sentence.
  std::vector<std::string> all;
  auto src = sentences();
  for (int64_t g = 0; g < kSentences; ++g) all.push_back(SentenceSource::sentenceAt(g));
  auto oracle = directWordCount(all);

  // Committed state: the count operators' snapshots.
  auto store = StateStore::inspect(chk);
  EXPECT_EQ(store->lastCommittedTxid(), totalBatches);
  std::map<std::string, int64_t> state;
  for (const auto& [key, blob] : store->snapshots()) {
    CountWords c;
    c.restore(blob);
    for (auto& [w, n] : c.counts()) {
      EXPECT_EQ(state.count(w), 0u) << w << " counted by two tasks";
      state[w] = n;
    }
  }
  EXPECT_EQ(state, oracle);
  auto offsets = store->committedOffsets().at("sentences");
  int64_t consumed = 0;
  for (auto& [p, o] : offsets) consumed += o;
  EXPECT_EQ(consumed, kSentences);

  // Committed sink output: the latest count of each word over parts 1..T, in txid order; and no
  // part beyond the last commit.
  std::map<std::string, int64_t> sink;
  for (uint64_t t = 1; t <= totalBatches; ++t) {
    std::ifstream in(out + "/part-" + std::to_string(t) + "-0");
    ASSERT_TRUE(in.good()) << "batch " << t << " has no committed output";
    std::string w;
    int64_t n;
    while (in >> w >> n) sink[w] = n;
  }
  EXPECT_EQ(sink, oracle);
  for (const auto& e : fs::directory_iterator(out)) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) != 0 || name.find(".tmp") != std::string::npos) continue;
    uint64_t t = std::stoull(name.substr(5));
    EXPECT_LE(t, totalBatches) << name;
  }
}

TEST(BatchFault, SigkillAtRandomPointsLosesNothingAndCountsNothingTwice) {
  fs::path base = fs::temp_directory_path() / ("gale-batch-fault-" + std::to_string(::getpid()));
  std::mt19937_64 rng(20261121);
  const uint64_t totalBatches = (kSentences + kPerBatch - 1) / kPerBatch;
  int kills = 0, runs = 0, pointKills = 0, episodes = 0;
  auto started = std::chrono::steady_clock::now();
  // An episode runs the job from an empty checkpoint until it finished, restarting it after each
  // kill, and is then checked against the oracle. A kill after a random delay may come too late
  // (the job already finished: how likely depends on the machine's speed), so episodes repeat
  // until enough kills landed.
  while (kills < 30) {
    ++episodes;
    fs::remove_all(base);
    std::string chk = (base / "chk").string(), out = (base / "out").string();
    fs::create_directories(out);
    bool finished = false;
    while (!finished) {
      ASSERT_LT(++runs, 400) << "no progress after many restarts";
      ASSERT_LT(std::chrono::steady_clock::now() - started, 120s);
      uint64_t last = committedTxid(chk);
      // Mostly kill (at a commit point, in the sink, or after a random delay) until 30 kills,
      // then let the job finish.
      KillAt kill = KillAt::Nowhere;
      uint64_t killTxid = 0;
      int delayMs = -1;
      if (kills < 30) {
        int mode = static_cast<int>(rng() % 7);
        if (mode < 5 && last + 1 <= totalBatches) {
          kill = static_cast<KillAt>(1 + mode);
          killTxid = std::min(totalBatches, last + 1 + rng() % 3);
        } else {
          delayMs = static_cast<int>(rng() % 80);
        }
      }
      ChildEnd end = runChild([&] { child(chk, out, kill, killTxid); }, delayMs);
      ASSERT_NE(end, ChildEnd::Failed);
      if (end == ChildEnd::Killed) {
        ++kills;
        if (kill != KillAt::Nowhere) ++pointKills;
      } else {
        finished = committedTxid(chk) == totalBatches;
      }
    }
    verifyExactlyOnce(chk, out, totalBatches);
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GE(pointKills, 10);
  std::printf("batch fault test: %d episodes, %d runs, %d kills (%d at commit/sink points)\n",
              episodes, runs, kills, pointKills);
  fs::remove_all(base);
}

}  // namespace
}  // namespace gale
