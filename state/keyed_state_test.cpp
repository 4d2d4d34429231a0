// Trident semantics of the three keyed state kinds, in both ways a batch reaches them: inside the
// batch's commit (BatchCommit) and ahead of it (applyBeforeCommit, where a crash before the commit
// record replays the batch).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "gale/state/codec.h"
#include "gale/state/state_store.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using testing::TempDir;
using ::testing::HasSubstr;

StateStoreOptions opts() {
  StateStoreOptions o;
  o.jobId = "keyed";
  o.sync = false;
  return o;
}

template <class F>
std::string errorOf(F&& f) {
  try {
    f();
  } catch (const StateError& e) {
    return e.what();
  }
  return "";
}

std::map<std::string, Update> adds(std::map<std::string, int64_t> deltas) {
  std::map<std::string, Update> out;
  for (auto& [k, d] : deltas) out[k] = addInt64(d);
  return out;
}

TEST(TransactionalState, AReplayedTxidIsSkippedForEveryKeyItAlreadyReached) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  TypedState<int64_t> counts(store.keyedState("counts", StateKind::Transactional));
  store.applyBeforeCommit(1, counts.raw(), adds({{"a", 2}, {"b", 3}}));
  store.beginCommit(1).commit();
  // Batch 2 reached the state, then the process died before the commit record: replayed.
  store.applyBeforeCommit(2, counts.raw(), adds({{"a", 10}, {"b", 20}}));
  auto again = store.applyBeforeCommit(2, counts.raw(), adds({{"a", 10}, {"b", 20}}));
  EXPECT_EQ(Codec<int64_t>::decode(*again.at("a")), 12);  // new values report the stored value
  BatchCommit c = store.beginCommit(2);
  c.apply(counts.raw(), adds({{"a", 10}, {"b", 20}, {"c", 1}}));
  CommitRecord r = c.commit();
  EXPECT_EQ(r.stateSkips, 2u);  // a and b already had batch 2
  EXPECT_EQ(r.stateUpdates, 1u);
  EXPECT_EQ(counts.get("a"), 12);
  EXPECT_EQ(counts.get("b"), 23);
  EXPECT_EQ(counts.get("c"), 1);
  EXPECT_EQ(counts.raw().txidOf("c"), 2u);
}

TEST(OpaqueState, AReplayWithOtherContentsIsRecomputedFromThePreviousValue) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  TypedState<int64_t> counts(store.keyedState("counts", StateKind::Opaque));
  store.beginCommit(1).apply(counts.raw(), adds({{"a", 5}, {"b", 5}})).commit();
  // First attempt of batch 2 reaches the state; the replay (an opaque source) reads other data.
  store.applyBeforeCommit(2, counts.raw(), adds({{"a", 100}, {"b", 1}}));
  EXPECT_EQ(counts.get("a"), 105);
  store.applyBeforeCommit(2, counts.raw(), adds({{"a", 7}, {"b", 2}}));
  EXPECT_EQ(counts.get("a"), 12);
  BatchCommit c = store.beginCommit(2);  // and once more, inside the commit itself
  c.apply(counts.raw(), adds({{"a", 1}, {"b", 3}}));
  c.commit();
  EXPECT_EQ(counts.get("a"), 6);
  EXPECT_EQ(counts.get("b"), 8);
  EXPECT_EQ(Codec<int64_t>::decode(*c.newValues(counts.raw()).at("b")), 8);
  // The next batch builds on the committed value, not on the discarded attempt.
  store.beginCommit(3).apply(counts.raw(), adds({{"a", 1}})).commit();
  EXPECT_EQ(counts.get("a"), 7);
}

TEST(PlainState, AReplayedTxidIsCountedTwice) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  TypedState<int64_t> counts(store.keyedState("counts", StateKind::Plain));
  store.applyBeforeCommit(1, counts.raw(), adds({{"a", 2}}));
  store.applyBeforeCommit(1, counts.raw(), adds({{"a", 2}}));  // the replay
  store.beginCommit(1).commit();
  EXPECT_EQ(counts.get("a"), 4);  // what transactional and opaque state exist to prevent
  EXPECT_EQ(counts.raw().txidOf("a"), 0u);
}

TEST(KeyedState, ADeleteAheadOfTheCommitLeavesATombstoneSoTheReplayStaysExact) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  KeyedState& s = store.keyedState("stock", StateKind::Transactional);
  store.beginCommit(1).put(s, "item", Codec<int64_t>::encode(1)).commit();
  // "take one; delete at zero"
  auto takeOne = [](std::optional<std::string_view> old) -> std::optional<std::string> {
    int64_t left = (old ? Codec<int64_t>::decode(*old) : 0) - 1;
    if (left == 0) return std::nullopt;
    return Codec<int64_t>::encode(left);
  };
  store.applyBeforeCommit(2, s, {{"item", takeOne}});
  EXPECT_FALSE(s.get("item"));
  EXPECT_EQ(s.entries(), 1u);  // the tombstone
  store.applyBeforeCommit(2, s, {{"item", takeOne}});  // replay: skipped, not -1
  EXPECT_FALSE(s.get("item"));
  store.beginCommit(2).commit();
  // A delete inside a commit removes the entry (a committed txid is never replayed).
  store.beginCommit(3).put(s, "item", "x").commit();
  store.beginCommit(4).erase(s, "item").commit();
  EXPECT_EQ(s.entries(), 0u);
}

TEST(KeyedState, UpdatesOfOneKeyInOneBatchComposeInCallOrder) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  KeyedState& s = store.keyedState("s", StateKind::Opaque);
  BatchCommit c = store.beginCommit(1);
  c.put(s, "k", "a");
  c.update(s, "k", [](std::optional<std::string_view> old) -> std::optional<std::string> {
    return std::string(old.value_or("")) + "b";
  });
  c.commit();
  EXPECT_EQ(s.get("k"), "ab");
  std::vector<std::string> seen;
  s.forEach([&](std::string_view k, std::string_view v) {
    seen.push_back(std::string(k) + "=" + std::string(v));
    return true;
  });
  EXPECT_EQ(seen, std::vector<std::string>{"k=ab"});
}

TEST(KeyedState, ReopeningAStateWithAnotherKindIsRefused) {
  TempDir dir;
  {
    StateStore store(dir.path(), opts());
    store.keyedState("counts", StateKind::Opaque);
    EXPECT_THAT(errorOf([&] { store.keyedState("counts", StateKind::Plain); }),
                HasSubstr("is opaque, not plain"));
  }
  StateStore store(dir.path(), opts());
  std::string msg = errorOf([&] { store.keyedState("counts", StateKind::Transactional); });
  EXPECT_THAT(msg, HasSubstr("state 'counts' in checkpoint directory " + dir.path() +
                             " is opaque, not transactional"));
}

TEST(KeyedState, EmptyAndOversizedKeysAreRefusedBeforeAnythingIsWritten) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  KeyedState& s = store.keyedState("s", StateKind::Plain);
  BatchCommit c = store.beginCommit(1);
  EXPECT_THAT(errorOf([&] { c.put(s, "", "v"); }), HasSubstr("state 's': an empty key"));
  EXPECT_THAT(errorOf([&] { c.put(s, std::string(600, 'k'), "v"); }),
              HasSubstr("a key of 600 bytes is longer than LMDB's maximum key size of 511"));
  EXPECT_THAT(errorOf([&] { c.update(s, "k", Update{}); }), HasSubstr("empty Update"));
}

TEST(KeyedState, ABatchOlderThanAKeysTxidIsRefused) {
  TempDir dir;
  StateStore store(dir.path(), opts());
  KeyedState& s = store.keyedState("s", StateKind::Transactional);
  store.applyBeforeCommit(3, s, adds({{"k", 1}}));
  EXPECT_THAT(errorOf([&] { store.applyBeforeCommit(2, s, adds({{"k", 1}})); }),
              HasSubstr("written by batch 3, which is newer than batch 2"));
  store.beginCommit(3).commit();
  EXPECT_THAT(errorOf([&] { store.applyBeforeCommit(3, s, adds({{"k", 1}})); }),
              HasSubstr("already committed"));
}

TEST(KeyedState, StatesFromAnotherStoreAreRefused) {
  TempDir a, b;
  StateStore sa(a.path(), opts());
  StateStore sb(b.path(), opts());
  KeyedState& s = sb.keyedState("s", StateKind::Plain);
  EXPECT_THAT(errorOf([&] { sa.beginCommit(1).put(s, "k", "v"); }),
              HasSubstr("belongs to another StateStore"));
}

// Property: batches reach the state ahead of their commit record and "crash" at random (the
// commit record is not written, so the batch is replayed). A transactional state replayed with
// the same contents, and an opaque state replayed with other contents over the same keys, both
// end equal to an oracle that applied each committed batch exactly once.
TEST(KeyedState, RandomReplaysEndEqualToAnExactlyOnceOracle) {
  for (StateKind kind : {StateKind::Transactional, StateKind::Opaque}) {
    TempDir dir;
    StateStore store(dir.path(), opts());
    KeyedState& s = store.keyedState("counts", kind);
    std::mt19937 rng(kind == StateKind::Opaque ? 7 : 11);
    std::map<std::string, int64_t> oracle;
    for (uint64_t txid = 1; txid <= 200; ++txid) {
      std::map<std::string, int64_t> batch;
      int n = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < n; ++i) batch["k" + std::to_string(rng() % 20)] += 1 + rng() % 5;
      int attempts = static_cast<int>(rng() % 3);  // attempts that die before the commit record
      for (int a = 0; a < attempts; ++a) {
        store.applyBeforeCommit(txid, s, adds(batch));
        if (kind == StateKind::Opaque) {
          for (auto& [k, d] : batch) d = 1 + rng() % 5;  // the replay reads other data
        }
      }
      if (rng() % 2) {
        store.applyBeforeCommit(txid, s, adds(batch));
        store.beginCommit(txid).commit();
      } else {
        store.beginCommit(txid).apply(s, adds(batch)).commit();
      }
      for (auto& [k, d] : batch) oracle[k] += d;
    }
    TypedState<int64_t> typed(s);
    for (auto& [k, v] : oracle) EXPECT_EQ(typed.get(k), v) << stateKindName(kind) << " " << k;
  }
}

}  // namespace
}  // namespace gale
