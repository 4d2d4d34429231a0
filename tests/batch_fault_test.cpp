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

enum class KillAt { Nowhere, BeforeStateWrite, AfterStateWrite, AfterCommit, SinkBeforeRename,
                    SinkAfterRename };

// Writes each batch's rows to <dir>/part-<txid>-<task> through a temporary file and a rename, so
// a replayed txid replaces its file and a crash never leaves a half-written part.
class TxidFileSink final : public Operator {
 public:
  TxidFileSink(std::string dir, KillAt kill, uint64_t killTxid)
      : dir_(std::move(dir)), kill_(kill), killTxid_(killTxid) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<TxidFileSink>(dir_, kill_, killTxid_);
  }
  void open(const OperatorContext& c) override { task_ = c.taskIndex; }
  void onBatchBegin(uint64_t) override { rows_.clear(); }
  void onTuple(const Tuple& t, Emitter&) override {
    rows_ += t.getString(0) + " " + std::to_string(t.getInt(1)) + "\n";
  }
  void onBatchEnd(uint64_t txid, Emitter&) override {
    std::string part = dir_ + "/part-" + std::to_string(txid) + "-" + std::to_string(task_);
    {
      std::ofstream out(part + ".tmp", std::ios::trunc);
      out << rows_;
    }
    if (kill_ == KillAt::SinkBeforeRename && txid == killTxid_) ::raise(SIGKILL);
    fs::rename(part + ".tmp", part);
    if (kill_ == KillAt::SinkAfterRename && txid == killTxid_) ::raise(SIGKILL);
  }

 private:
  std::string dir_;
  KillAt kill_;
  uint64_t killTxid_;
  int task_ = 0;
  std::string rows_;
};

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
    b.setBolt("sink", TxidFileSink(out, kill, killTxid), 1).shuffleGrouping("count");
    MicroBatch cfg;
    cfg.trigger = BatchTrigger::availableNow();
    cfg.checkpoint = chk;
    cfg.maxRecordsPerBatch = kPerBatch;
    cfg.maxBatchesInFlight = 2;  // overlapping batches: a kill may find two in flight
    cfg.onCommitPoint = [kill, killTxid](CommitPoint p, uint64_t txid) {
      if (txid != killTxid) return;
      if ((p == CommitPoint::BeforeStateWrite && kill == KillAt::BeforeStateWrite) ||
          (p == CommitPoint::AfterStateWrite && kill == KillAt::AfterStateWrite) ||
          (p == CommitPoint::AfterCommit && kill == KillAt::AfterCommit)) {
        ::raise(SIGKILL);
      }
    };
    auto job = runMicroBatch(b.build(), cfg);
    job.waitUntilDone();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
    rc = 3;
  }
  ::_exit(rc);
}

uint64_t committedTxid(const std::string& chk) {
  if (!fs::exists(chk)) return 0;
  try {
    return StateStore::inspect(chk)->lastCommittedTxid();
  } catch (const std::exception&) {
    return 0;  // killed before the directory was initialized
  }
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
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) child(chk, out, kill, killTxid);
      if (delayMs >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
        ::kill(pid, SIGKILL);
      }
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      if (WIFSIGNALED(status)) {
        ASSERT_EQ(WTERMSIG(status), SIGKILL);
        ++kills;
        if (kill != KillAt::Nowhere) ++pointKills;
      } else {
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0) << "the child failed (see its stderr)";
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
