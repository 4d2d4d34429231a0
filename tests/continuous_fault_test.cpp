// Exactly-once continuous mode under real crashes (the micro-batch counterpart is
// batch_fault_test.cpp): a forked child runs an exactly-once job — a running word count, or a
// windowed word count — into the two-phase-commit file sink and is killed with SIGKILL at random moments and at each point of a checkpoint
// (barrier in flight, snapshot taken, sink pre-committed, checkpoint record written, sink
// committed); the parent restarts it until the input is done. Each word's committed counts must
// then be exactly 1, 2, ..., its direct count (each window's row once, with its direct count):
// nothing lost, nothing written twice.
//
// GALE_FAULT_KILLS sets the number of kills per job (default 100).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "exactly_once_word_count.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

constexpr int64_t kSentences = 6000;
// 0.2 s of input per run, a checkpoint every 10 ms: about 20 checkpoints to kill in.
constexpr double kRate = 30000;
constexpr int kPoints = 5;  // CheckpointPoint::BarrierInjected .. SinkCommitted

enum class Job { RunningCount, WindowedCount };

// The child: runs until the input is done (exit 0) or it is killed.
[[noreturn]] void child(Job job, const std::string& chk, const std::string& out, int killPoint,
                        uint64_t killId) {
  int rc = 0;
  try {
    Continuous cfg{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = 10ms,
                   .checkpointDir = chk, .checkpointSync = false};
    cfg.onCheckpointPoint = [killPoint, killId](CheckpointPoint p, uint64_t id) {
      if (static_cast<int>(p) == killPoint && id == killId) ::raise(SIGKILL);
    };
    Topology t = job == Job::RunningCount ? exactlyOnceWordCount(kSentences, out, nullptr, kRate)
                                          : windowedWordCount(out, kSentences, kRate);
    runContinuous(t, cfg).waitUntilDone();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
    rc = 3;
  }
  ::_exit(rc);
}

uint64_t completedCheckpoint(const std::string& chk) {
  if (!fs::exists(chk)) return 0;
  try {
    return StateStore::inspect(chk)->lastCommittedTxid();
  } catch (const std::exception&) {
    return 0;  // killed before the directory was initialized
  }
}

// Nothing is visible before its checkpoint completed: no committed part beyond the last one.
void expectNothingVisibleAfter(uint64_t completed, const std::string& out) {
  for (const auto& e : fs::directory_iterator(out)) {
    std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) != 0) continue;
    EXPECT_LE(std::stoull(name.substr(5)), completed) << name << " is visible";
  }
}

int killsWanted() {
  const char* v = std::getenv("GALE_FAULT_KILLS");
  return v ? std::max(1, std::atoi(v)) : 100;
}

void killAndRestartUntilDone(Job job) {
  fs::path base = fs::temp_directory_path() / ("gale-cont-fault-" + std::to_string(::getpid()));
  std::mt19937_64 rng(20261130);
  const int wanted = killsWanted();
  int kills = 0, runs = 0, episodes = 0;
  int atPoint[kPoints] = {};
  auto started = std::chrono::steady_clock::now();
  // An episode runs the job from an empty checkpoint directory until it finished, restarting it
  // after each kill, and is then checked. A kill point may not be reached (the checkpoint id
  // chosen is past the end) and a delayed kill may come after the end: episodes repeat until
  // enough kills landed.
  const std::string chk = (base / "chk").string(), out = (base / "out").string();
  while (kills < wanted) {
    ++episodes;
    fs::remove_all(base);
    fs::create_directories(out);
    for (bool finished = false; !finished;) {
      ASSERT_LT(++runs, 40 * wanted + 100) << "no progress after many restarts";
      ASSERT_LT(std::chrono::steady_clock::now() - started, 600s);
      uint64_t last = completedCheckpoint(chk);
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
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) child(job, chk, out, killPoint, killId);
      if (delayMs >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
        ::kill(pid, SIGKILL);
      }
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      if (WIFSIGNALED(status)) {
        ASSERT_EQ(WTERMSIG(status), SIGKILL);
        ++kills;
        if (killPoint >= 0) ++atPoint[killPoint];
        expectNothingVisibleAfter(completedCheckpoint(chk), out);
        if (::testing::Test::HasFailure()) break;
      } else {
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0) << "the child failed (see its stderr)";
        finished = true;
      }
    }
    if (::testing::Test::HasFailure()) break;
    if (job == Job::RunningCount)
      expectExactlyOnce(chk, out, kSentences);
    else
      expectWindowsExactlyOnce(out, kSentences);
    if (::testing::Test::HasFailure()) break;
  }
  for (int p = 0; p < kPoints; ++p)
    EXPECT_GE(atPoint[p], 1) << "no kill at " << checkpointPointName(static_cast<CheckpointPoint>(p));
  std::printf("continuous fault test, %s: %d episodes, %d runs, %d kills (at %s %d, %s %d, %s %d, "
              "%s %d, %s %d; the rest after a random delay)\n",
              job == Job::RunningCount ? "running count" : "windowed count", episodes, runs, kills,
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

TEST(ContinuousFault, AWindowedCountKilledAtRandomMomentsAndCheckpointPointsCommitsEachWindowOnce) {
  killAndRestartUntilDone(Job::WindowedCount);
}

}  // namespace
}  // namespace gale
