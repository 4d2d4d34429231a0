// Fault injection with real SIGKILL: a forked child counts words of a deterministic source with
// exactly-once state (the counts and the input offset committed together), and is killed -9 at
// random moments and at explicit points (before the state write, between the state write and the
// commit, after the commit). After every kill the committed state must equal an oracle over the
// committed offset; after the last restart the child finishes and the counts equal the oracle
// over the whole input: nothing lost, nothing counted twice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

#include "gale/state/codec.h"
#include "gale/state/state_store.h"
#include "state_test_util.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using testing::TempDir;

constexpr int64_t kRecords = 200000;
constexpr const char* kSource = "words";

// The deterministic source: record i is one word out of 50.
constexpr uint64_t kWords = 50;

enum class Mode {
  Atomic,          // state + offsets in one BatchCommit; batch sizes differ on every attempt
  AtomicOpaque,    // same with opaque state
  AheadOfCommit,   // transactional state applied ahead of the commit record (fixed batch cut)
};

StateKind kindOf(Mode m) {
  return m == Mode::AtomicOpaque ? StateKind::Opaque : StateKind::Transactional;
}

constexpr int64_t kFixedBatch = 300;

// Where a child kills itself: at `point` of batch `txid` (point 3 = between the state applied
// ahead of the commit and the commit record, AheadOfCommit mode only).
struct KillPlan {
  int point = -1;  // -1: no self-kill; 0..2: CommitPoint; 3: between apply and commit record
  uint64_t txid = 0;
};

void suicide() { ::kill(::getpid(), SIGKILL); }

// The child: resumes from the committed offset and counts the rest of the input.
[[noreturn]] void runChild(const std::string& dir, Mode mode, KillPlan plan, uint32_t seed) {
  try {
    StateStoreOptions o;
    o.jobId = "crash-wordcount";
    o.sync = false;  // a process kill loses nothing with MDB_NOSYNC (the OS has the pages)
    o.initialMapSize = 256 << 10;  // the map grows during the run, under the kills as well
    o.onCommitPoint = [plan](CommitPoint p, uint64_t txid) {
      if (static_cast<int>(p) == plan.point && txid == plan.txid) suicide();
    };
    StateStore store(dir, o);
    KeyedState& counts = store.keyedState("counts", kindOf(mode));
    std::mt19937 rng(seed);
    auto offsets = store.committedOffsets();
    int64_t offset = offsets.count(kSource) ? offsets[kSource][0] : 0;
    for (uint64_t txid = store.lastCommittedTxid() + 1; offset < kRecords; ++txid) {
      int64_t size = mode == Mode::AheadOfCommit ? kFixedBatch : 1 + rng() % 600;
      int64_t end = std::min(kRecords, offset + size);
      std::map<std::string, int64_t> batch;
      for (int64_t i = offset; i < end; ++i) ++batch[testing::wordAt(i, kWords)];
      std::map<std::string, Update> updates;
      for (auto& [w, n] : batch) updates[w] = addInt64(n);
      BatchCommit c = store.beginCommit(txid);
      if (mode == Mode::AheadOfCommit) {
        store.applyBeforeCommit(txid, counts, std::move(updates));
        if (plan.point == 3 && plan.txid == txid) suicide();
      } else {
        c.apply(counts, std::move(updates));
      }
      c.setOffset(kSource, 0, end);
      c.commit();
      offset = end;
    }
    _exit(0);
  } catch (const std::exception& e) {
    fprintf(stderr, "child failed: %s\n", e.what());
    _exit(2);
  }
}

// The store, or nullptr when the first child was killed before it created its data file (then
// nothing can have been committed). The data file is built complete under another name and
// renamed into place, so a kill never leaves an empty or half-initialized data.mdb: whenever
// data.mdb exists, it must open.
std::unique_ptr<StateStore> inspectIfCreated(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/data.mdb")) return nullptr;
  return StateStore::inspect(dir);
}

struct Checked {
  int64_t offset = 0;
  bool pendingBatchApplied = false;
};

// The committed state must equal the oracle over the committed offset (or, ahead of the commit,
// over the committed offset plus the batch applied ahead of its commit record).
Checked checkAgainstOracle(const std::string& dir, Mode mode) {
  Checked c;
  auto store = inspectIfCreated(dir);
  if (!store) return c;
  auto offsets = store->committedOffsets();
  c.offset = offsets.count(kSource) ? offsets[kSource][0] : 0;
  std::map<std::string, int64_t> stored;
  if (store->lastCommittedTxid() > 0 || !store->states().empty()) {
    store->keyedState("counts", kindOf(mode)).forEach([&](std::string_view k, std::string_view v) {
      stored[std::string(k)] = Codec<int64_t>::decode(v);
      return true;
    });
  }
  if (stored == testing::wordOracle(c.offset, kWords)) return c;
  if (mode == Mode::AheadOfCommit &&
      stored == testing::wordOracle(std::min(kRecords, c.offset + kFixedBatch), kWords)) {
    c.pendingBatchApplied = true;
    return c;
  }
  ADD_FAILURE() << "state after a kill differs from the exactly-once oracle at committed offset "
                << c.offset;
  return c;
}

void killRepeatedly(Mode mode, int kills, uint32_t seed) {
  TempDir dir;
  std::mt19937 rng(seed);
  int killed = 0, runs = 0, pendingSeen = 0;
  std::map<int, int> byPoint;
  int64_t lastOffset = 0;
  while (killed < kills && runs < kills * 6) {
    ++runs;
    uint64_t last = 0;
    if (auto store = inspectIfCreated(dir.path())) last = store->lastCommittedTxid();
    KillPlan plan;
    bool randomDelay = rng() % 3 == 0;
    if (!randomDelay) {
      plan.point = static_cast<int>(rng() % (mode == Mode::AheadOfCommit ? 4 : 3));
      plan.txid = last + 1 + rng() % 4;
    }
    pid_t pid = fork();
    if (pid == 0) runChild(dir.path(), mode, plan, rng());
    if (randomDelay) {
      // A kill at a random moment: that is what a real crash is.
      timespec ts{0, static_cast<long>(rng() % 8'000'000)};
      nanosleep(&ts, nullptr);
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++killed;
      ++byPoint[randomDelay ? -1 : plan.point];
    } else {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed, status " << status;
    }
    Checked c = checkAgainstOracle(dir.path(), mode);
    EXPECT_GE(c.offset, lastOffset) << "the committed offset moved back";
    lastOffset = c.offset;
    pendingSeen += c.pendingBatchApplied;
    if (c.offset == kRecords) {
      // Finished before enough kills landed (a delayed kill can come too late on a fast
      // machine): start again from an empty directory.
      std::filesystem::remove_all(dir.path());
      lastOffset = 0;
    }
  }
  // The last restart runs to the end.
  pid_t pid = fork();
  if (pid == 0) runChild(dir.path(), mode, KillPlan{}, rng());
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "final child status " << status;
  Checked end = checkAgainstOracle(dir.path(), mode);
  EXPECT_EQ(end.offset, kRecords);
  EXPECT_FALSE(end.pendingBatchApplied);
  EXPECT_GE(killed, kills / 2) << "too few kills landed";
  // The explicit kill points were all exercised.
  for (int p = 0; p < (mode == Mode::AheadOfCommit ? 4 : 3); ++p) {
    EXPECT_GT(byPoint[p], 0) << "kill point " << p << " never hit";
  }
  if (mode == Mode::AheadOfCommit) {
    EXPECT_GT(pendingSeen, 0) << "no kill landed between the state write and the commit record";
  }
  ::testing::Test::RecordProperty("kills", killed);
  printf("%d kills (random moment: %d, before-state-write: %d, after-state-write: %d, after-commit: %d, between apply and commit record: %d), %d runs\n", killed, byPoint[-1], byPoint[0], byPoint[1], byPoint[2], byPoint[3], runs);
}

TEST(StateCrash, KilledRepeatedlyWithStateAndOffsetsInOneCommitCountsEveryRecordExactlyOnce) {
  killRepeatedly(Mode::Atomic, 40, 1);
}

TEST(StateCrash, KilledRepeatedlyWithOpaqueStateCountsEveryRecordExactlyOnce) {
  killRepeatedly(Mode::AtomicOpaque, 25, 2);
}

TEST(StateCrash, KilledBetweenStateWriteAndCommitRecordTransactionalStateSkipsTheReplay) {
  killRepeatedly(Mode::AheadOfCommit, 40, 3);
}

}  // namespace
}  // namespace gale
