// Damaged checkpoints: an empty, truncated or bit-flipped data.mdb is a CheckpointDamaged naming
// the file and the ways out (never a crash, never a silent fresh start); the explicit start-over
// moves the damaged directory aside; version 1 checkpoints (no checksums) are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "gale/state/codec.h"
#include "gale/state/state_store.h"
#include "state_test_util.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using testing::TempDir;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

StateStoreOptions opts() {
  StateStoreOptions o;
  o.jobId = "damage-job";
  o.sync = false;
  return o;
}

// Three commits of counts, a snapshot and a sink; "apple" is counted 3 times.
void fill(const std::string& dir) {
  StateStore store(dir, opts());
  KeyedState& counts = store.keyedState("counts", StateKind::Transactional);
  for (uint64_t t = 1; t <= 3; ++t) {
    BatchCommit c = store.beginCommit(t);
    c.update(counts, "apple", addInt64(1));
    c.update(counts, "pear-" + std::to_string(t), addInt64(static_cast<int64_t>(t)));
    c.putSnapshot("window#0", "snapshot-marker-" + std::to_string(t));
    c.setOffset("lines", 0, static_cast<int64_t>(10 * t));
    c.markSinkCommitted("files");
    c.commit();
  }
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Flips one bit in every copy of `needle` in the file (old copies stay behind in free pages; one
// copy is the live one).
void flipIn(const std::string& path, const std::string& needle, size_t at = 0) {
  std::string bytes = readFile(path);
  int copies = 0;
  for (size_t pos = bytes.find(needle); pos != std::string::npos; pos = bytes.find(needle, pos + 1)) {
    bytes[pos + at] ^= 0x01;
    ++copies;
  }
  ASSERT_GT(copies, 0) << needle;
  writeFile(path, bytes);
}

template <class F>
std::string damageOf(F&& f) {
  try {
    f();
  } catch (const CheckpointDamaged& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a CheckpointDamaged: ") + e.what();
  }
  return "";
}

void expectWaysOut(const std::string& msg, const std::string& dir) {
  EXPECT_THAT(msg, HasSubstr("checkpoint file " + dir + "/data.mdb is damaged"));
  EXPECT_THAT(msg, HasSubstr("restore the checkpoint directory " + dir + " from a backup"));
  EXPECT_THAT(msg, HasSubstr("startOverIfDamaged"));
}

TEST(DamagedCheckpoint, AnEmptyDataFileIsAnErrorNamingTheFileAndTheWaysOutNotAFreshStart) {
  TempDir dir;
  fill(dir.path());
  fs::resize_file(dir.sub("data.mdb"), 0);
  std::string msg = damageOf([&] { StateStore s(dir.path(), opts()); });
  expectWaysOut(msg, dir.path());
  EXPECT_THAT(msg, HasSubstr("empty (0 bytes)"));
  EXPECT_THAT(damageOf([&] { StateStore::inspect(dir.path()); }), HasSubstr("empty (0 bytes)"));
  EXPECT_EQ(fs::file_size(dir.sub("data.mdb")), 0u);  // left as it was
}

TEST(DamagedCheckpoint, ATruncatedDataFileIsAnErrorNotASigbus) {
  TempDir dir;
  fill(dir.path());
  uint64_t size = fs::file_size(dir.sub("data.mdb"));
  for (uint64_t cut : {size - 1, size / 2, uint64_t{4097}, uint64_t{100}}) {
    std::string copy = dir.sub("cut" + std::to_string(cut));
    fs::create_directory(copy);
    fs::copy_file(dir.sub("data.mdb"), copy + "/data.mdb");
    fs::resize_file(copy + "/data.mdb", cut);
    std::string msg = damageOf([&] { StateStore s(copy, opts()); });
    expectWaysOut(msg, copy);
    EXPECT_THAT(msg, ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("too short")));
    EXPECT_THAT(damageOf([&] { StateStore::inspect(copy); }), HasSubstr("is damaged"));
  }
}

TEST(DamagedCheckpoint, AFlippedBitInAValueFailsItsChecksumNamingDatabaseAndKey) {
  TempDir dir;
  fill(dir.path());
  flipIn(dir.sub("data.mdb"), "snapshot-marker-3", 3);
  std::string msg = damageOf([&] { StateStore s(dir.path(), opts()); });
  expectWaysOut(msg, dir.path());
  EXPECT_THAT(msg, HasSubstr("the record under key 'window#0' in database 'snapshots' fails its "
                             "checksum"));
}

TEST(DamagedCheckpoint, AFlippedBitInAKeyIsCaughtBecauseTheKeySeedsTheChecksum) {
  TempDir dir;
  fill(dir.path());
  flipIn(dir.sub("data.mdb"), "apple", 0);  // "apple" -> "`pple": the first key, still in order
  std::string msg = damageOf([&] { StateStore s(dir.path(), opts()); });
  expectWaysOut(msg, dir.path());
  EXPECT_THAT(msg, HasSubstr("fails its checksum"));
}

TEST(DamagedCheckpoint, ADamageFoundOnlyWhenReadingIsStillAnErrorWithoutVerifyOnOpen) {
  TempDir dir;
  fill(dir.path());
  flipIn(dir.sub("data.mdb"), "snapshot-marker-3", 3);
  StateStoreOptions o = opts();
  o.verifyOnOpen = false;  // only the meta pages and the size are checked up front
  StateStore store(dir.path(), o);
  EXPECT_EQ(store.lastCommittedTxid(), 3u);
  std::string msg = damageOf([&] { store.snapshot("window#0"); });
  EXPECT_THAT(msg, HasSubstr("'window#0' in database 'snapshots' fails its checksum"));
}

TEST(DamagedCheckpoint, StartOverMovesTheDamagedDirectoryAsideKeepsItAndStartsFromNothing) {
  TempDir dir;
  std::string chk = dir.sub("chk");
  fill(chk);
  fs::resize_file(chk + "/data.mdb", 0);
  StateStoreOptions o = opts();
  o.startOverIfDamaged = true;
  ManualClock clock(Timestamp{1'700'000'000'000'000});
  o.clock = &clock;
  {
    StateStore store(chk + "/", o);
    EXPECT_EQ(store.lastCommittedTxid(), 0u);
    EXPECT_EQ(store.movedAsideTo(), chk + ".damaged-20231114T221320Z");
    KeyedState& counts = store.keyedState("counts", StateKind::Transactional);
    store.beginCommit(1).update(counts, "apple", addInt64(1)).commit();
  }
  ASSERT_TRUE(fs::exists(chk + ".damaged-20231114T221320Z/data.mdb"));
  EXPECT_EQ(fs::file_size(chk + ".damaged-20231114T221320Z/data.mdb"), 0u);
  EXPECT_EQ(StateStore::verify(chk).lastCommittedTxid, 1u);
  // A healthy checkpoint is not moved, whatever the option says.
  StateStore again(chk, o);
  EXPECT_EQ(again.lastCommittedTxid(), 1u);
  EXPECT_EQ(again.movedAsideTo(), "");
}

TEST(DamagedCheckpoint, VerifyChecksEveryRecordOfADeepTreeWithOverflowValues) {
  TempDir dir;
  {
    StateStore store(dir.path(), opts());
    KeyedState& counts = store.keyedState("counts", StateKind::Opaque);
    KeyedState& plain = store.keyedState("plain", StateKind::Plain);
    for (uint64_t t = 1; t <= 5; ++t) {
      BatchCommit c = store.beginCommit(t);
      for (int k = 0; k < 4000; ++k) c.update(counts, "key-" + std::to_string(k), addInt64(1));
      c.put(plain, "big", std::string(20000 + t, 'x'));  // an overflow value
      c.putSnapshot("op#0", std::string(9000, static_cast<char>('a' + t)));
      c.commit();
    }
    store.keyedState("empty", StateKind::Plain);
  }
  CheckpointReport r = StateStore::verify(dir.path());
  EXPECT_EQ(r.lastCommittedTxid, 5u);
  EXPECT_EQ(r.records.at("state:counts"), 4000u);
  EXPECT_EQ(r.records.at("state:plain"), 1u);
  EXPECT_EQ(r.records.at("state:empty"), 0u);
  EXPECT_EQ(r.records.at("commits"), 5u);
  EXPECT_EQ(r.records.at("states"), 3u);
  EXPECT_EQ(r.records.at("meta"), 3u);
  EXPECT_GT(r.livePages, 40u);
  EXPECT_EQ(r.fileBytes, (r.lastPage + 1) * r.pageSize);
  // The walk's page count equals LMDB's own statistics.
  MDB_env* env;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  ASSERT_EQ(mdb_env_open(env, dir.path().c_str(), MDB_RDONLY, 0644), 0);
  MDB_txn* txn;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
  uint64_t pages = 0;
  for (const char* name : {"meta", "commits", "snapshots", "sinks", "states", "state:counts",
                           "state:plain", "state:empty"}) {
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, name, 0, &dbi), 0) << name;
    MDB_stat st;
    mdb_stat(txn, dbi, &st);
    pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  }
  MDB_stat st;
  mdb_stat(txn, 0, &st);  // the free list
  pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  mdb_stat(txn, 1, &st);  // the main database
  pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  mdb_txn_abort(txn);
  mdb_env_close(env);
  EXPECT_EQ(r.livePages, pages);
}

TEST(DamagedCheckpoint, AFormatVersion1CheckpointWithoutChecksumsIsRefusedSayingWhatToDo) {
  TempDir dir;
  fill(dir.path());
  testing::putRawFormatVersion(dir.path(), 1);  // as gale 1 stored it: 4 raw bytes
  std::string msg;
  try {
    StateStore s(dir.path(), opts());
  } catch (const CheckpointDamaged& e) {
    FAIL() << "an old format is not damage: " << e.what();
  } catch (const StateError& e) {
    msg = e.what();
  }
  EXPECT_THAT(msg, HasSubstr("state format version 1, which keeps no checksums"));
  EXPECT_THAT(msg, HasSubstr("Finish the job with the gale version that wrote it"));
}

TEST(DamagedCheckpoint, ALeftoverOfAKilledCreationIsReplacedAndNeverMistakenForACheckpoint) {
  TempDir dir;
  writeFile(dir.sub("data.mdb.creating"), "half a file");
  writeFile(dir.sub("data.mdb.creating-lock"), "");
  {
    StateStore store(dir.path(), opts());
    EXPECT_EQ(store.lastCommittedTxid(), 0u);
    EXPECT_EQ(store.formatVersion(), kStateFormatVersion);
  }
  EXPECT_FALSE(fs::exists(dir.sub("data.mdb.creating")));
  EXPECT_FALSE(fs::exists(dir.sub("data.mdb.creating-lock")));
  EXPECT_EQ(StateStore::verify(dir.path()).records.at("meta"), 3u);
}

// lock.mdb holds LMDB's reader table, no data: the first process to open the environment
// initializes it again, so garbage in it costs nothing.
TEST(DamagedCheckpoint, AGarbageLockFileIsRebuiltByTheFirstOpener) {
  TempDir dir;
  fill(dir.path());
  std::string lock = readFile(dir.sub("lock.mdb"));
  ASSERT_FALSE(lock.empty());
  for (char& c : lock) c = static_cast<char>(0xA5);
  writeFile(dir.sub("lock.mdb"), lock);
  StateStore store(dir.path(), opts());
  EXPECT_EQ(store.lastCommittedTxid(), 3u);
  EXPECT_EQ(TypedState<int64_t>(store.keyedState("counts", StateKind::Transactional)).get("apple"),
            3);
}

// gale-state verifies a running job's checkpoint: the walk pins the snapshot it checks, so pages
// the job frees and reuses meanwhile are never mistaken for damage.
TEST(DamagedCheckpoint, VerifyingWhileAnotherProcessCommitsFindsNoFalseDamage) {
  TempDir dir;
  { StateStore create(dir.path(), opts()); }
  pid_t pid = fork();
  if (pid == 0) {
    try {
      StateStoreOptions o = opts();
      o.initialMapSize = 256 << 10;  // the map grows under the verifier too
      StateStore store(dir.path(), o);
      KeyedState& counts = store.keyedState("counts", StateKind::Opaque);
      std::string filler(1500, 'f');
      for (uint64_t t = 1; t <= 400; ++t) {
        BatchCommit c = store.beginCommit(t);
        for (int k = 0; k < 30; ++k) c.update(counts, "k" + std::to_string((t * 7 + k) % 500), addInt64(1));
        c.putSnapshot("op#0", filler + std::to_string(t));
        c.setOffset("src", 0, static_cast<int64_t>(t));
        c.commit();
      }
      _exit(0);
    } catch (...) {
      _exit(2);
    }
  }
  int verified = 0, status = 0;
  std::vector<std::string> failures;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    try {
      StateStore::verify(dir.path());
      ++verified;
    } catch (const std::exception& e) {
      failures.push_back(e.what());
    }
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures, first: " << failures[0];
  EXPECT_GT(verified, 0);
  printf("%d verifications while the job committed\n", verified);
  EXPECT_EQ(StateStore::verify(dir.path()).lastCommittedTxid, 400u);
}

}  // namespace
}  // namespace gale
