// Exactly-once continuous mode under real crashes (the micro-batch counterpart is
// batch_fault_test.cpp): a forked child runs an exactly-once job — a running word count (in an
// Operator, or in a user's CheckpointedBolt), or a windowed word count — into the two-phase-commit file sink (and the windowed count into
// KafkaSink, on a mock cluster in a process of its own) and is killed with SIGKILL at random
// moments and at each point of a checkpoint
// (barrier in flight, snapshot taken, sink pre-committed, checkpoint record written, sink
// committed); the parent restarts it until the input is done. Each word's committed counts must
// then be exactly 1, 2, ..., its direct count (each window's row once, with its direct count):
// nothing lost, nothing written twice.
//
// GALE_FAULT_KILLS sets the number of kills per job (default 100; a fifth of it into Kafka).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "crash_test_util.h"
#include "exactly_once_word_count.h"
#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_sink.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

constexpr int64_t kSentences = 6000;
// 0.2 s of input per run, a checkpoint every 10 ms: about 20 checkpoints to kill in.
constexpr double kRate = 30000;
constexpr int kPoints = 5;  // CheckpointPoint::BarrierInjected .. SinkCommitted

// RunningCount counts in an Operator (CountWords), BoltCount in a user's CheckpointedBolt;
// UnalignedCount is RunningCount with unaligned checkpoints; AsyncCount counts in an operator
// whose snapshots are asynchronous (AsyncCountWords: written by the coordinator's thread).
enum class Job { RunningCount, BoltCount, UnalignedCount, AsyncCount, WindowedCount,
                 WindowedCountIntoKafka };

// The child: runs until the input is done (exit 0) or it is killed.
[[noreturn]] void child(Job job, const std::string& chk, const std::string& out, int killPoint,
                        uint64_t killId) {
  int rc = 0;
  try {
    Continuous cfg{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = 10ms,
                   .checkpointDir = chk, .checkpointSync = false,
                   .unalignedCheckpoints = job == Job::UnalignedCount};
    cfg.onCheckpointPoint = [killPoint, killId](CheckpointPoint p, uint64_t id) {
      if (static_cast<int>(p) == killPoint && id == killId) ::raise(SIGKILL);
    };
    bool running = job == Job::RunningCount || job == Job::UnalignedCount;
    Topology t = running ? exactlyOnceWordCount(kSentences, out, nullptr, kRate)
                 : job == Job::AsyncCount
                     ? exactlyOnceWordCount(kSentences, out, std::make_shared<AsyncCountWords>(),
                                            kRate)
                 : job == Job::BoltCount ? exactlyOnceBoltWordCount(kSentences, out, kRate)
                                         : windowedWordCount(out, kSentences, kRate);
    runContinuous(t, cfg).waitUntilDone();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
    rc = 3;
  }
  ::_exit(rc);
}

// Nothing is visible before its checkpoint completed: no committed part beyond the last one.
void expectNothingVisibleAfter(uint64_t completed, const std::string& out) {
  for (const auto& e : fs::directory_iterator(out)) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) != 0) continue;
    EXPECT_LE(std::stoull(name.substr(5)), completed) << name << " is visible";
  }
}

// The windowed count into Kafka (KafkaSink's write-ahead two-phase commit). librdkafka's mock
// cluster runs in a process of its own, forked before this process touches librdkafka, so the
// jobs are forked from a process without librdkafka threads. It answers line commands on a pipe:
// "create T" creates topic T, "read T" sends every read_committed record of T as
// "key<TAB>window_start<TAB>value" lines; each reply ends with ".".
class MockClusterProcess {
 public:
  MockClusterProcess() {
    int up[2], down[2];
    if (::pipe(up) != 0 || ::pipe(down) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      ::close(up[0]);
      ::close(down[1]);
      serve(::fdopen(down[0], "r"), ::fdopen(up[1], "w"));
    }
    ::close(up[1]);
    ::close(down[0]);
    in_ = ::fdopen(up[0], "r");
    out_ = ::fdopen(down[1], "w");
    bootstraps_ = line();
  }
  ~MockClusterProcess() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    std::fclose(in_);
    std::fclose(out_);
  }
  const std::string& bootstraps() const { return bootstraps_; }
  std::vector<std::string> command(const std::string& cmd) {
    std::fprintf(out_, "%s\n", cmd.c_str());
    std::fflush(out_);
    std::vector<std::string> reply;
    for (std::string l = line(); l != "."; l = line()) reply.push_back(l);
    return reply;
  }

 private:
  [[noreturn]] static void serve(FILE* in, FILE* out) {
    KafkaMockCluster mc;
    mc.createTopic("gale_sink_markers", 1);
    std::fprintf(out, "%s\n", mc.bootstraps().c_str());
    std::fflush(out);
    char buf[256];
    while (std::fgets(buf, sizeof buf, in)) {
      std::string cmd(buf);
      cmd.pop_back();
      std::string topic = cmd.substr(cmd.find(' ') + 1);
      if (cmd.rfind("create ", 0) == 0) mc.createTopic(topic, 3);
      if (cmd.rfind("read ", 0) == 0) {
        for (const auto& r : mc.consumeAll(topic, /*readCommitted=*/true)) {
          std::string start = r.headers.empty() ? "" : r.headers[0].second;
          std::fprintf(out, "%s\t%s\t%s\n", r.key.c_str(), start.c_str(), r.value.c_str());
        }
      }
      std::fprintf(out, ".\n");
      std::fflush(out);
    }
    ::_exit(0);
  }
  std::string line() {
    char buf[512];
    if (!std::fgets(buf, sizeof buf, in_)) throw std::runtime_error("the mock cluster died");
    std::string l(buf);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    return l;
  }
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
  std::string bootstraps_;
};

// The mock cluster neither hides an open transaction from read_committed readers nor aborts it
// when the producer restarts (connectors/kafka_sink_test.cpp), so a kill inside the sink's Kafka
// transaction would show its records as committed; a real broker aborts them. The child
// therefore dies at once, or, inside a transaction, right after its commit.
std::mutex gTxnMutex;
bool gInTxn = false, gKillDue = false;

void killNow() {
  std::lock_guard lk(gTxnMutex);
  if (gInTxn) gKillDue = true;
  else ::raise(SIGKILL);
}

[[noreturn]] void kafkaChild(const std::string& bootstraps, const std::string& topic,
                             const std::string& chk, int killPoint, uint64_t killId,
                             int delayMs) {
  int rc = 0;
  try {
    if (delayMs >= 0) {
      std::thread([delayMs] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
        killNow();
      }).detach();
    }
    Continuous cfg{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = 10ms,
                   .checkpointDir = chk, .checkpointSync = false};
    cfg.onCheckpointPoint = [killPoint, killId](CheckpointPoint p, uint64_t id) {
      if (static_cast<int>(p) == killPoint && id == killId) killNow();
    };
    KafkaSink::Options o;
    o.bootstrapServers = bootstraps;
    o.topic = topic;
    o.keyField = "word";
    o.valueField = "count";
    o.headerFields = {"window_start"};
    o.transactionalIdPrefix = topic;  // one per episode (and checkpoint directory)
    o.producerProperties = {{"linger.ms", "1"}};
    o.onTransactionPoint = [](const char* point, uint64_t) {
      std::lock_guard lk(gTxnMutex);
      if (std::string_view(point) == "begin") gInTxn = true;
      if (std::string_view(point) != "after-kafka-commit") return;
      gInTxn = false;
      if (gKillDue) ::raise(SIGKILL);
    };
    TopologyBuilder b;
    addWindowedWordCount(b, kSentences, kRate);
    b.setBolt("kafka", KafkaSink(o), 1).globalGrouping("count");
    runContinuous(b.build(), cfg).waitUntilDone();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
    rc = 3;
  }
  ::_exit(rc);
}

// Each (word, window) row in Kafka at most once (`complete`: exactly once, with its direct count).
void expectKafkaWindowsOnce(MockClusterProcess& cluster, const std::string& topic,
                            bool complete) {
  std::map<std::string, int64_t> seen;
  for (const std::string& l : cluster.command("read " + topic)) {
    std::string key = l.substr(0, l.rfind('\t'));
    EXPECT_EQ(seen.count(key), 0u) << "window committed twice: " << key;
    seen[key] = std::stoll(l.substr(l.rfind('\t') + 1));
  }
  if (complete) {
    EXPECT_EQ(seen, directWindowCounts(kSentences));
  }
}

int killsWanted() {
  const char* v = std::getenv("GALE_FAULT_KILLS");
  return v ? std::max(1, std::atoi(v)) : 100;
}

// `cluster`: the Kafka job's (each episode writes a topic of its own).
void killAndRestartUntilDone(Job job, MockClusterProcess* cluster = nullptr) {
  const bool kafka = job == Job::WindowedCountIntoKafka;
  fs::path base = fs::temp_directory_path() / ("gale-cont-fault-" + std::to_string(::getpid()));
  std::mt19937_64 rng(20261130);
  // Fewer kills into Kafka: each run starts a transactional producer.
  const int wanted = kafka ? std::max(1, killsWanted() / 5) : killsWanted();
  int kills = 0, runs = 0, episodes = 0;
  int atPoint[kPoints] = {};
  auto started = std::chrono::steady_clock::now();
  // An episode runs the job from an empty checkpoint directory until it finished, restarting it
  // after each kill, and is then checked. A kill point may not be reached (the checkpoint id
  // chosen is past the end) and a delayed kill may come after the end: episodes repeat until
  // enough kills landed.
  const std::string chk = (base / "chk").string(), out = (base / "out").string();
  while (kills < wanted) {
    std::string topic = "out-" + std::to_string(++episodes);
    if (kafka) cluster->command("create " + topic);
    fs::remove_all(base);
    fs::create_directories(out);
    for (bool finished = false; !finished;) {
      ASSERT_LT(++runs, 40 * wanted + 100) << "no progress after many restarts";
      ASSERT_LT(std::chrono::steady_clock::now() - started, 600s);
      uint64_t last = committedTxid(chk);
      int killPoint = -1;
      uint64_t killId = 0;
      int delayMs = -1;
      if (kills < wanted) {
        int mode = static_cast<int>(rng() % (kPoints + 2));
        if (mode < kPoints) {
          killPoint = mode;
          killId = last + 1 + rng() % 4;
        } else {
          delayMs = static_cast<int>(rng() % 250);
        }
      }
      // The Kafka child times its own delayed kill (it must not die inside a transaction).
      ChildEnd end = runChild(
          [&] {
            if (kafka) kafkaChild(cluster->bootstraps(), topic, chk, killPoint, killId, delayMs);
            child(job, chk, out, killPoint, killId);
          },
          kafka ? -1 : delayMs);
      ASSERT_NE(end, ChildEnd::Failed);
      if (end == ChildEnd::Killed) {
        ++kills;
        if (killPoint >= 0) ++atPoint[killPoint];
        if (kafka) expectKafkaWindowsOnce(*cluster, topic, /*complete=*/false);
        else expectNothingVisibleAfter(committedTxid(chk), out);
        if (::testing::Test::HasFailure()) break;
      } else {
        finished = true;
      }
    }
    if (::testing::Test::HasFailure()) break;
    if (job == Job::RunningCount || job == Job::BoltCount || job == Job::UnalignedCount ||
        job == Job::AsyncCount)
      expectExactlyOnce(chk, out, kSentences);
    else if (kafka)
      expectKafkaWindowsOnce(*cluster, topic, /*complete=*/true);
    else
      expectWindowsExactlyOnce(out, kSentences);
    if (::testing::Test::HasFailure()) break;
  }
  for (int p = 0; p < kPoints; ++p)
    EXPECT_GE(atPoint[p], 1) << "no kill at " << checkpointPointName(static_cast<CheckpointPoint>(p));
  std::printf("continuous fault test, %s: %d episodes, %d runs, %d kills (at %s %d, %s %d, %s %d, "
              "%s %d, %s %d; the rest after a random delay)\n",
              job == Job::RunningCount ? "running count"
              : job == Job::BoltCount  ? "running count in a user's bolt"
              : job == Job::UnalignedCount ? "running count, unaligned checkpoints"
              : job == Job::AsyncCount ? "running count, asynchronous snapshots"
              : kafka                  ? "windowed count into Kafka"
                                       : "windowed count",
              episodes, runs, kills,
              checkpointPointName(CheckpointPoint(0)), atPoint[0],
              checkpointPointName(CheckpointPoint(1)), atPoint[1],
              checkpointPointName(CheckpointPoint(2)), atPoint[2],
              checkpointPointName(CheckpointPoint(3)), atPoint[3],
              checkpointPointName(CheckpointPoint(4)), atPoint[4]);
  fs::remove_all(base);
}

TEST(ContinuousFault, SigkillAtRandomMomentsAndAtEachCheckpointPointLosesNothingAndWritesNothingTwice) {
  killAndRestartUntilDone(Job::RunningCount);
}

TEST(ContinuousFault, AUserBoltsCheckpointedCountsKilledAtRandomMomentsAndCheckpointPointsAreExact) {
  killAndRestartUntilDone(Job::BoltCount);
}

TEST(ContinuousFault, UnalignedCheckpointsKilledAtRandomMomentsAndCheckpointPointsLoseAndRepeatNothing) {
  killAndRestartUntilDone(Job::UnalignedCount);
}

TEST(ContinuousFault, AsynchronousSnapshotsKilledAtRandomMomentsAndCheckpointPointsLoseAndRepeatNothing) {
  killAndRestartUntilDone(Job::AsyncCount);
}

TEST(ContinuousFault, AWindowedCountKilledAtRandomMomentsAndCheckpointPointsCommitsEachWindowOnce) {
  killAndRestartUntilDone(Job::WindowedCount);
}

TEST(ContinuousFault, AWindowedCountIntoKafkaKilledAtRandomMomentsAndCheckpointPointsCommitsEachWindowOnce) {
  MockClusterProcess cluster;  // before this process touches librdkafka
  killAndRestartUntilDone(Job::WindowedCountIntoKafka, &cluster);
}

}  // namespace
}  // namespace gale
