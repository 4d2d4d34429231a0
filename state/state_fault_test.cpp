// Fault injection on the checkpoint file itself: a word count commits half of a deterministic
// input, then each trial damages a copy of its data.mdb (random bit flips, a truncation at a
// random length, or an empty file) and a forked child reopens it and counts the rest. Required
// of every trial: a clear error (CheckpointDamaged naming the file) or a correct result (the
// counts equal an oracle over the whole input); never a crash (a signal, caught because each
// trial is its own process), never a wrong count.
//
//   GALE_FAULT_TRIALS=300 GALE_FAULT_SEED=7 build/state/state_fault_test
// runs more trials (default 60) with another seed (default 1); docs/reliability.md records a run.
// GALE_FAULT_VERIFY_ON_OPEN=0 turns the page walk on open off (the test then fails: LMDB crashes);
// GALE_FAULT_MAX_FLIPS=1 makes every flip trial a single-bit one (the subtlest damage).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>

#include "gale/state/codec.h"
#include "gale/state/state_store.h"
#include "state_test_util.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

constexpr int64_t kRecords = 20000;
constexpr int64_t kCommittedBefore = 10000;
constexpr int64_t kBatch = 400;
constexpr const char* kSource = "words";

constexpr uint64_t kWords = 300;

StateStoreOptions opts() {
  StateStoreOptions o;
  o.jobId = "fault-wordcount";
  o.sync = false;
  return o;
}

// Counts records from the committed offset up to `upTo`, one commit per batch, with the offset
// and a snapshot (the records counted so far) in the same commit.
void countUpTo(StateStore& store, int64_t upTo) {
  KeyedState& counts = store.keyedState("counts", StateKind::Transactional);
  auto offsets = store.committedOffsets();
  int64_t offset = offsets.count(kSource) ? offsets[kSource][0] : 0;
  auto snap = store.snapshot("count#0");
  if (offset != (snap ? std::stoll(*snap) : 0)) throw std::logic_error("snapshot != offset");
  for (uint64_t txid = store.lastCommittedTxid() + 1; offset < upTo; ++txid) {
    int64_t end = std::min(upTo, offset + kBatch);
    std::map<std::string, int64_t> batch;
    for (int64_t i = offset; i < end; ++i) ++batch[testing::wordAt(i, kWords)];
    BatchCommit c = store.beginCommit(txid);
    for (auto& [w, n] : batch) c.update(counts, w, addInt64(n));
    c.setOffset(kSource, 0, end).putSnapshot("count#0", std::to_string(end));
    c.commit();
    offset = end;
  }
}

enum Outcome { Correct = 0, Damaged = 3, WrongCount = 4, OtherStateError = 5, Unexpected = 6 };

// The child: reopen, resume, count the rest, compare with the oracle.
[[noreturn]] void trialChild(const std::string& dir) {
  alarm(60);  // a hang ends in SIGALRM: counted with the crashes
  try {
    StateStoreOptions o = opts();
    // GALE_FAULT_VERIFY_ON_OPEN=0 shows what the record checksums alone catch (docs/reliability.md).
    const char* verify = std::getenv("GALE_FAULT_VERIFY_ON_OPEN");
    o.verifyOnOpen = !(verify && std::string(verify) == "0");
    StateStore store(dir, o);
    countUpTo(store, kRecords);
    std::map<std::string, int64_t> got;
    store.keyedState("counts", StateKind::Transactional).forEach([&](auto k, auto v) {
      got[std::string(k)] = Codec<int64_t>::decode(v);
      return true;
    });
    auto offsets = store.committedOffsets();
    bool ok = got == testing::wordOracle(kRecords, kWords) && offsets[kSource][0] == kRecords &&
              store.snapshot("count#0") == std::to_string(kRecords);
    _exit(ok ? Correct : WrongCount);
  } catch (const CheckpointDamaged& e) {
    std::string msg = e.what();
    bool clear = msg.find(dir + "/data.mdb is damaged") != std::string::npos &&
                 msg.find("startOverIfDamaged") != std::string::npos;
    if (!clear) fprintf(stderr, "unclear damage message: %s\n", e.what());
    _exit(clear ? Damaged : Unexpected);
  } catch (const StateError& e) {
    fprintf(stderr, "state error: %s\n", e.what());
    _exit(OtherStateError);
  } catch (const std::exception& e) {
    fprintf(stderr, "unexpected: %s\n", e.what());
    _exit(Unexpected);
  }
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int envInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

TEST(CheckpointFaults, FlippedTruncatedOrEmptiedDataFilesGiveAClearErrorOrTheCorrectCountNeverACrash) {
  const int trials = envInt("GALE_FAULT_TRIALS", 60);
  const uint32_t seed = static_cast<uint32_t>(envInt("GALE_FAULT_SEED", 1));
  const int maxFlips = std::max(1, envInt("GALE_FAULT_MAX_FLIPS", 8));  // 1: single-bit damage
  TempDir dir;
  std::string pristine = dir.sub("pristine");
  {
    StateStore store(pristine, opts());
    countUpTo(store, kCommittedBefore);
  }
  const std::string original = readFile(pristine + "/data.mdb");
  ASSERT_GT(original.size(), 8192u);
  std::mt19937_64 rng(seed);
  const char* kinds[] = {"bit flips", "truncation", "empty file"};
  std::map<std::string, std::map<std::string, int>> table;  // kind -> outcome -> trials
  int crashes = 0, wrong = 0, unexpected = 0;
  for (int t = 0; t < trials; ++t) {
    std::string trial = dir.sub("trial" + std::to_string(t));
    fs::create_directory(trial);
    std::string bytes = original;
    int kind = rng() % 10 < 6 ? 0 : (rng() % 4 != 0 ? 1 : 2);
    if (kind == 0) {
      int flips = 1 + static_cast<int>(rng() % static_cast<uint64_t>(maxFlips));
      for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
    } else if (kind == 1) {
      bytes.resize(rng() % bytes.size());
    } else {
      bytes.clear();
    }
    std::ofstream(trial + "/data.mdb", std::ios::binary) << bytes;
    pid_t pid = fork();
    if (pid == 0) trialChild(trial);
    int status = 0;
    waitpid(pid, &status, 0);
    std::string outcome;
    if (WIFSIGNALED(status)) {
      outcome = std::string("crash (") + strsignal(WTERMSIG(status)) + ")";
      ++crashes;
    } else {
      switch (WEXITSTATUS(status)) {
        case Correct: outcome = "correct result"; break;
        case Damaged: outcome = "CheckpointDamaged"; break;
        case WrongCount: outcome = "WRONG COUNT"; ++wrong; break;
        case OtherStateError: outcome = "other StateError"; break;
        default: outcome = "unexpected error"; ++unexpected; break;
      }
    }
    ++table[kinds[kind]][outcome];
    if (outcome != "correct result" && outcome != "CheckpointDamaged") {
      ADD_FAILURE() << "trial " << t << " (" << kinds[kind] << "): " << outcome;
    }
    fs::remove_all(trial);
  }
  printf("%d trials (seed %u):\n", trials, seed);
  for (auto& [kind, outcomes] : table) {
    printf("  %-11s", kind.c_str());
    for (auto& [o, n] : outcomes) printf("  %s: %d", o.c_str(), n);
    printf("\n");
  }
  EXPECT_EQ(crashes, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(unexpected, 0);
}

}  // namespace
}  // namespace gale
