#include "gale/state/state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gale/state/codec.h"
#include "state_test_util.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using testing::TempDir;
using ::testing::HasSubstr;

StateStoreOptions opts(std::string job = "job-a") {
  StateStoreOptions o;
  o.jobId = std::move(job);
  o.sync = false;  // tests do not need fsync; the commit path is the same
  return o;
}

// The message of the StateError `f` throws ("" if it does not throw).
template <class F>
std::string errorOf(F&& f) {
  try {
    f();
  } catch (const StateError& e) {
    return e.what();
  }
  return "";
}

// Runs f in a forked child and returns its exit code (f's return value).
template <class F>
int inChild(F&& f) {
  pid_t pid = fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = f();
    } catch (...) {
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(StateStore, ACommitRoundTripsStateSnapshotsOffsetsAndWatermarkAcrossReopen) {
  TempDir dir;
  ManualClock clock(Timestamp{1'000'000});
  {
    auto o = opts();
    o.clock = &clock;
    StateStore store(dir.path(), o);
    EXPECT_EQ(store.lastCommittedTxid(), 0u);
    EXPECT_FALSE(store.lastCommit());
    EXPECT_TRUE(store.committedOffsets().empty());
    KeyedState& counts = store.keyedState("counts", StateKind::Transactional);
    BatchCommit c = store.beginCommit(1);
    c.update(counts, "apple", addInt64(3)).update(counts, "pear", addInt64(5));
    c.putSnapshot("window#0", std::string("\0blob\xff", 6));
    c.setOffset("lines", 0, 100).setOffset("lines", 1, 42).setOffset("clicks", 0, 7);
    c.setWatermark(Timestamp{900});
    c.markSinkCommitted("out");
    CommitRecord r = c.commit();
    EXPECT_EQ(r.txid, 1u);
    EXPECT_EQ(r.time.micros, 1'000'000);
    EXPECT_EQ(r.stateUpdates, 2u);
    EXPECT_EQ(r.snapshots, 1u);
    EXPECT_GT(r.bytes, 0u);
    EXPECT_EQ(Codec<int64_t>::decode(*c.newValues(counts).at("pear")), 5);
  }
  StateStore store(dir.path(), opts());
  EXPECT_EQ(store.jobId(), "job-a");
  EXPECT_EQ(store.formatVersion(), kStateFormatVersion);
  EXPECT_EQ(store.createdAt().micros, 1'000'000);
  EXPECT_EQ(store.lastCommittedTxid(), 1u);
  auto last = store.lastCommit();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->offsets, (SourceOffsets{{"lines", {{0, 100}, {1, 42}}}, {"clicks", {{0, 7}}}}));
  EXPECT_EQ(store.committedWatermark(), Timestamp{900});
  EXPECT_EQ(store.snapshot("window#0"), std::string("\0blob\xff", 6));
  EXPECT_FALSE(store.snapshot("window#1"));
  EXPECT_EQ(store.sinkCommittedTxid("out"), 1u);
  EXPECT_EQ(store.sinkCommittedTxid("other"), 0u);
  TypedState<int64_t> counts(store.keyedState("counts", StateKind::Transactional));
  EXPECT_EQ(counts.get("apple"), 3);
  EXPECT_EQ(counts.multiGet({"pear", "plum", "apple"}),
            (std::vector<std::optional<int64_t>>{5, std::nullopt, 3}));
  EXPECT_EQ(counts.raw().txidOf("apple"), 1u);
}

TEST(StateStore, CommitsMustBeInStrictlyIncreasingTxidOrder) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  EXPECT_THAT(errorOf([&] { store.beginCommit(0); }), HasSubstr("txids start at 1"));
  BatchCommit first = store.beginCommit(5);
  BatchCommit same = store.beginCommit(5);  // both may be collected; only one can commit
  first.commit();
  EXPECT_THAT(errorOf([&] { same.commit(); }),
              HasSubstr("txid 5 is already committed"));
  EXPECT_THAT(errorOf([&] { store.beginCommit(4); }),
              HasSubstr("strictly increasing txid order"));
  EXPECT_THAT(errorOf([&] { store.beginCommit(5); }), HasSubstr("already committed"));
  EXPECT_THAT(errorOf([&] { first.commit(); }), HasSubstr("already committed"));
  EXPECT_THAT(errorOf([&] { first.setOffset("s", 0, 1); }), HasSubstr("already committed"));
  store.beginCommit(7).commit();  // gaps are allowed: txids only have to increase
  EXPECT_EQ(store.lastCommittedTxid(), 7u);
}

TEST(StateStore, OffsetsMergeAcrossBatchesAndMayNotMoveBackwards) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  store.beginCommit(1).setOffset("a", 0, 10).setOffset("a", 1, 20).commit();
  store.beginCommit(2).setOffset("a", 1, 25).setOffset("b", 0, 1).commit();  // a/0 unchanged
  EXPECT_EQ(store.committedOffsets(), (SourceOffsets{{"a", {{0, 10}, {1, 25}}}, {"b", {{0, 1}}}}));
  BatchCommit back = store.beginCommit(3);
  back.setOffset("a", 0, 9);
  EXPECT_THAT(errorOf([&] { back.commit(); }),
              HasSubstr("offset of source 'a' partition 0 would move back from 10 to 9"));
  EXPECT_EQ(store.lastCommittedTxid(), 2u);
  EXPECT_THAT(errorOf([&] { store.beginCommit(3).setOffset("a", -1, 0); }),
              HasSubstr("must be >= 0"));
}

TEST(StateStore, WatermarkMayNotMoveBackwardsAndIsKeptWhenUnset) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  store.beginCommit(1).setWatermark(Timestamp{100}).commit();
  store.beginCommit(2).commit();
  EXPECT_EQ(store.committedWatermark(), Timestamp{100});
  EXPECT_THAT(errorOf([&] { store.beginCommit(3).setWatermark(Timestamp{99}).commit(); }),
              HasSubstr("watermark would move back"));
  EXPECT_EQ(store.lastCommittedTxid(), 2u);
}

TEST(StateStore, AFailedCommitWritesNothingAndCanBeRetried) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  KeyedState& s = store.keyedState("s", StateKind::Plain);
  bool fail = true;
  BatchCommit c = store.beginCommit(1);
  c.update(s, "a", addInt64(1));
  c.update(s, "z", [&](std::optional<std::string_view>) -> std::optional<std::string> {
    if (fail) throw StateError("updater failed");
    return Codec<int64_t>::encode(2);
  });
  c.setOffset("src", 0, 10);
  EXPECT_THAT(errorOf([&] { c.commit(); }), HasSubstr("updater failed"));
  EXPECT_FALSE(s.get("a"));  // "a" was written before "z" failed, inside the aborted txn
  EXPECT_EQ(store.lastCommittedTxid(), 0u);
  fail = false;
  c.commit();
  EXPECT_EQ(TypedState<int64_t>(s).get("a"), 1);
  EXPECT_EQ(store.committedOffsets()["src"][0], 10);
}

TEST(StateStore, ASecondOpenerInTheSameProcessIsRefusedNamingThePid) {
  TempDir dir;
  auto first = std::make_unique<StateStore>(dir.path(), opts());
  std::string msg = errorOf([&] { StateStore second(dir.path(), opts()); });
  EXPECT_THAT(msg, HasSubstr("checkpoint directory " + dir.path() + " is in use by another job (pid " +
                             std::to_string(getpid()) + ")"));
  first.reset();
  StateStore again(dir.path(), opts());  // the lock goes with the store
  EXPECT_EQ(again.lastCommittedTxid(), 0u);
}

TEST(StateStore, ASecondOpenerInAForkedChildIsRefused) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  int rc = inChild([&] {
    std::string msg = errorOf([&] { StateStore second(dir.path(), opts()); });
    return msg.find("is in use by another job (pid " + std::to_string(getppid()) + ")") !=
                   std::string::npos
               ? 0
               : 1;
  });
  EXPECT_EQ(rc, 0);
}

TEST(StateStore, TheLockOfAKilledJobIsReleased) {
  TempDir dir;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  if (pid == 0) {
    StateStore store(dir.path(), opts());
    store.beginCommit(1).setOffset("s", 0, 5).commit();
    char c = 1;
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  EXPECT_THAT(errorOf([&] { StateStore s(dir.path(), opts()); }),
              HasSubstr("in use by another job (pid " + std::to_string(pid) + ")"));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  StateStore store(dir.path(), opts());
  EXPECT_EQ(store.committedOffsets()["s"][0], 5);
}

TEST(StateStore, ADirectoryOfAnotherJobIsRefusedSayingWhatToDo) {
  TempDir dir;
  { StateStore store(dir.path(), opts("wordcount-v1")); }
  std::string msg = errorOf([&] { StateStore store(dir.path(), opts("sessions")); });
  EXPECT_THAT(msg, HasSubstr("belongs to job 'wordcount-v1', not to job 'sessions'"));
  EXPECT_THAT(msg, HasSubstr("give this job its own checkpoint directory"));
  EXPECT_THAT(errorOf([&] { StateStore store(dir.path(), opts("")); }),
              HasSubstr("jobId is empty"));
}

TEST(StateStore, ADirectoryOfAnotherFormatVersionIsRefused) {
  TempDir dir;
  { StateStore store(dir.path(), opts()); }
  testing::putRawFormatVersion(dir.path(), 99);  // as a future gale would
  std::string msg = errorOf([&] { StateStore store(dir.path(), opts()); });
  EXPECT_THAT(msg, HasSubstr("written in state format version 99"));
  EXPECT_THAT(msg, HasSubstr("start from a new checkpoint directory"));
  EXPECT_THAT(errorOf([&] { StateStore::inspect(dir.path()); }), HasSubstr("version 99"));
}

TEST(StateStore, AMissingDirectoryIsCreatedWithItsParents) {
  TempDir dir;
  std::string nested = dir.sub("a/b/chk");
  StateStore store(nested, opts());
  store.beginCommit(1).commit();
  EXPECT_TRUE(std::filesystem::exists(nested + "/data.mdb"));
  EXPECT_TRUE(std::filesystem::exists(nested + "/gale.lock"));
}

TEST(StateStore, AFileInTheWayIsRefused) {
  TempDir dir;
  std::ofstream(dir.sub("chk")) << "not a directory";
  EXPECT_THAT(errorOf([&] { StateStore s(dir.sub("chk"), opts()); }),
              HasSubstr(dir.sub("chk") + " exists but is not a directory (a file is in the way)"));
  EXPECT_THAT(errorOf([&] { StateStore s(dir.sub("chk/inner"), opts()); }),
              HasSubstr("cannot create checkpoint directory " + dir.sub("chk/inner")));
}

TEST(StateStore, ANonEmptyForeignDirectoryIsRefused) {
  TempDir dir;
  std::ofstream(dir.sub("notes.txt")) << "my files";
  EXPECT_THAT(errorOf([&] { StateStore s(dir.path(), opts()); }),
              HasSubstr("is not empty and is not a gale checkpoint directory"));
  EXPECT_FALSE(std::filesystem::exists(dir.sub("gale.lock")));  // nothing was left behind
}

// Permission errors need a user the kernel checks: as root, the check runs in a child that drops
// to "nobody".
TEST(StateStore, AReadOnlyDirectoryIsRefusedNamingThePath) {
  TempDir dir;
  std::filesystem::create_directory(dir.sub("ro"));
  std::filesystem::permissions(dir.sub("ro"), std::filesystem::perms::owner_read |
                                                  std::filesystem::perms::owner_exec |
                                                  std::filesystem::perms::group_read |
                                                  std::filesystem::perms::group_exec |
                                                  std::filesystem::perms::others_read |
                                                  std::filesystem::perms::others_exec);
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  int rc = inChild([&] {
    if (geteuid() == 0 && setuid(65534) != 0) return 3;
    std::string inside = errorOf([&] { StateStore s(dir.sub("ro"), opts()); });
    std::string below = errorOf([&] { StateStore s(dir.sub("ro/chk"), opts()); });
    bool ok1 = inside.find("lock file " + dir.sub("ro") + "/gale.lock") != std::string::npos &&
               inside.find("Permission denied") != std::string::npos;
    bool ok2 = below.find("cannot create checkpoint directory " + dir.sub("ro/chk")) !=
                   std::string::npos &&
               below.find("Permission denied") != std::string::npos;
    if (!ok1) fprintf(stderr, "inside: %s\n", inside.c_str());
    if (!ok2) fprintf(stderr, "below: %s\n", below.c_str());
    return ok1 && ok2 ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
}

TEST(StateStore, TheMapGrowsWhenFullAndKeepsEveryCommit) {
  TempDir dir;
  auto o = opts();
  o.initialMapSize = 64 << 10;
  o.maxMapSize = 64 << 20;
  StateStore store(dir.path(), o);
  KeyedState& s = store.keyedState("blobs", StateKind::Opaque);
  std::string value(1000, 'x');
  for (uint64_t t = 1; t <= 8; ++t) {
    BatchCommit c = store.beginCommit(t);
    for (int i = 0; i < 500; ++i) c.put(s, "k" + std::to_string(t) + "-" + std::to_string(i), value);
    c.setOffset("src", 0, static_cast<int64_t>(t));
    c.commit();
  }
  EXPECT_GT(store.mapSize(), size_t{4} << 20);
  EXPECT_EQ(s.entries(), 4000u);
  EXPECT_EQ(s.get("k8-499"), value);
  EXPECT_EQ(store.lastCommittedTxid(), 8u);
}

TEST(StateStore, AFullMapAtTheMaximumFailsSayingHowToRaiseItAndLosesNothing) {
  TempDir dir;
  auto o = opts();
  o.initialMapSize = 64 << 10;
  o.maxMapSize = 1 << 20;
  {
    StateStore store(dir.path(), o);
    KeyedState& s = store.keyedState("blobs", StateKind::Plain);
    store.beginCommit(1).put(s, "small", "v").setOffset("src", 0, 1).commit();
    BatchCommit big = store.beginCommit(2);
    for (int i = 0; i < 2000; ++i) big.put(s, "k" + std::to_string(i), std::string(1000, 'y'));
    big.setOffset("src", 0, 2);
    std::string msg = errorOf([&] { big.commit(); });
    EXPECT_THAT(msg, HasSubstr("the LMDB map is full at 1 MiB"));
    EXPECT_THAT(msg, HasSubstr("StateStoreOptions::maxMapSize"));
    EXPECT_THAT(msg, HasSubstr("Raise maxMapSize"));
    EXPECT_THAT(msg, HasSubstr("nothing of batch 2 was written"));
    EXPECT_EQ(store.lastCommittedTxid(), 1u);
    EXPECT_EQ(s.entries(), 1u);
    // Still usable: a batch that fits commits.
    store.beginCommit(2).put(s, "next", "w").setOffset("src", 0, 2).commit();
  }
  o.maxMapSize = 64 << 20;  // raised, as the message says: the big batch now fits
  StateStore store(dir.path(), o);
  KeyedState& s = store.keyedState("blobs", StateKind::Plain);
  EXPECT_EQ(s.get("small"), "v");
  EXPECT_EQ(s.get("next"), "w");
  BatchCommit big = store.beginCommit(3);
  for (int i = 0; i < 2000; ++i) big.put(s, "k" + std::to_string(i), std::string(1000, 'y'));
  big.commit();
  EXPECT_EQ(s.entries(), 2002u);
}

TEST(StateStore, TheCommitLogIsIterableAndTrimmedToTheRetention) {
  TempDir dir;
  auto o = opts();
  o.commitLogRetention = 5;
  StateStore store(dir.path(), o);
  for (uint64_t t = 1; t <= 12; ++t) {
    store.beginCommit(t).setOffset("src", 0, static_cast<int64_t>(10 * t)).commit();
  }
  auto log = store.commitLog();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log.front().txid, 8u);
  EXPECT_EQ(log.back().txid, 12u);
  EXPECT_EQ(log.back().offsets.at("src").at(0), 120);
  auto tail = store.commitLog(10, 2);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].txid, 10u);
  EXPECT_EQ(tail[1].txid, 11u);
}

TEST(StateStore, SinksRecordTheLastBatchTheyWrote) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  store.beginCommit(1).markSinkCommitted("files").commit();
  store.markSinkCommitted("kafka", 1);
  store.markSinkCommitted("kafka", 2);
  EXPECT_EQ(store.sinks(), (std::map<std::string, uint64_t>{{"files", 1}, {"kafka", 2}}));
  EXPECT_THAT(errorOf([&] { store.markSinkCommitted("kafka", 1); }),
              HasSubstr("already recorded the later batch 2"));
}

TEST(StateStore, CommitPointsAreReportedInOrderAndAFailureBeforeTheCommitWritesNothing) {
  TempDir dir;
  std::vector<std::string> seen;
  bool failAfterWrite = false;
  auto o = opts();
  o.onCommitPoint = [&](CommitPoint p, uint64_t txid) {
    seen.push_back(std::string(commitPointName(p)) + ":" + std::to_string(txid));
    if (failAfterWrite && p == CommitPoint::AfterStateWrite) throw StateError("injected");
  };
  StateStore store(dir.path(), o);
  KeyedState& s = store.keyedState("s", StateKind::Transactional);
  store.beginCommit(1).put(s, "k", "v").commit();
  EXPECT_EQ(seen, (std::vector<std::string>{"before-state-write:1", "after-state-write:1",
                                            "after-commit:1"}));
  failAfterWrite = true;
  EXPECT_THAT(errorOf([&] { store.beginCommit(2).put(s, "k", "w").commit(); }),
              HasSubstr("injected"));
  EXPECT_EQ(s.get("k"), "v");
  EXPECT_EQ(store.lastCommittedTxid(), 1u);
}

// Readers run while batches commit and the map grows under them: every read sees one whole batch
// (both keys from the same txid), never a mix and never an error.
TEST(StateStore, ReadsSeeWholeCommittedBatchesWhileAWriterCommitsAndTheMapGrows) {
  TempDir dir;
  auto o = opts();
  o.initialMapSize = 64 << 10;
  StateStore store(dir.path(), o);
  KeyedState& s = store.keyedState("pair", StateKind::Opaque);
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      TypedState<int64_t> typed(s);
      while (!done) {
        auto v = typed.multiGet({"a", "b"});
        if (v[0] != v[1]) ++torn;
        if (v[0] && static_cast<uint64_t>(*v[0]) > store.lastCommittedTxid()) ++torn;
        ++reads;
      }
    });
  }
  std::string filler(2000, 'f');
  for (uint64_t t = 1; t <= 150; ++t) {
    BatchCommit c = store.beginCommit(t);
    c.put(s, "a", Codec<int64_t>::encode(static_cast<int64_t>(t)));
    for (int i = 0; i < 20; ++i) c.put(s, "f" + std::to_string(t * 100 + i), filler);
    c.put(s, "b", Codec<int64_t>::encode(static_cast<int64_t>(t)));
    c.commit();
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(store.mapSize(), size_t{64} << 10);
}

TEST(StateStore, InspectionTakesNoLockAndRefusesWhatIsNotACheckpoint) {
  TempDir dir;
  StateStore job(dir.path(), opts());
  KeyedState& s = job.keyedState("counts", StateKind::Transactional);
  job.beginCommit(1).put(s, "k", "v").setOffset("src", 0, 3).commit();
  auto view = StateStore::inspect(dir.path());  // the job still holds the lock
  EXPECT_EQ(view->lastCommittedTxid(), 1u);
  EXPECT_EQ(view->jobId(), "job-a");
  auto states = view->states();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].name, "counts");
  EXPECT_EQ(states[0].kind, StateKind::Transactional);
  EXPECT_EQ(states[0].entries, 1u);
  EXPECT_GT(states[0].bytes, 0u);
  EXPECT_THAT(errorOf([&] { view->beginCommit(2); }), HasSubstr("inspection only"));
  EXPECT_THAT(errorOf([&] { StateStore::inspect(dir.sub("missing")); }),
              HasSubstr("does not exist"));
  std::filesystem::create_directory(dir.sub("empty"));
  EXPECT_THAT(errorOf([&] { StateStore::inspect(dir.sub("empty")); }),
              HasSubstr("is not a gale checkpoint directory"));
}

TEST(Codec, AValueOfTheWrongSizeIsAClearError) {
  EXPECT_EQ(Codec<int64_t>::decode(Codec<int64_t>::encode(-42)), -42);
  EXPECT_EQ(Codec<double>::decode(Codec<double>::encode(2.5)), 2.5);
  EXPECT_THAT(errorOf([] { Codec<int64_t>::decode("abc"); }),
              HasSubstr("3 bytes is not a valid int64"));
}

}  // namespace
}  // namespace gale
