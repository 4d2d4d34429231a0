// The key-group snapshot ("GKGS") and its restore into another parallelism.
#include "gale/core/key_group.h"

#include <gtest/gtest.h>

#include "gale/core/state_codec.h"

namespace gale {
namespace {

// State that is only its groups: group g holds "g:<task that wrote it>".
struct Groups : KeyGroupedState {
  std::vector<std::string> keyGroupFields() const override { return {"key"}; }
  Split snapshotKeyGroups(uint32_t) const override { return split; }
  void restoreKeyGroups(const std::vector<Head>& h, const std::map<uint32_t, std::string_view>& g,
                        uint32_t) override {
    heads.clear();
    owned.clear();
    for (const Head& x : h) {
      heads.emplace_back(x.bytes);
      if (x.owner) owned.emplace_back(x.bytes);
    }
    groups.clear();
    for (const auto& [k, v] : g) groups[k] = std::string(v);
  }
  Split split;
  std::vector<std::string> heads, owned;
  std::map<uint32_t, std::string> groups;
};

std::string blob(uint32_t m, int p, int i) {
  Groups s;
  s.split.head = "head" + std::to_string(i) + "/" + std::to_string(p);
  KeyGroupRange r = keyGroupRange(i, p, m);
  for (uint32_t g = r.first; g < r.end; ++g)
    if (g % 3 != 0) s.split.groups[g] = std::to_string(g) + ":" + std::to_string(i);
  return encodeKeyGroupSnapshot(m, p, i, s.snapshotKeyGroups(m));
}

TEST(KeyGroupSnapshot, EachNewTaskGetsTheGroupsOfItsRangeAndTheHeadsOfTheOldTasksMeetingIt) {
  std::map<std::string, std::string> store{{"count#0", blob(8, 2, 0)}, {"count#1", blob(8, 2, 1)}};
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = store.find(k);
    return it == store.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  std::map<uint32_t, std::string> all;
  for (int j = 0; j < 3; ++j) {
    Groups into;
    restoreKeyGroupSnapshot(lookup, "count", j, 3, 8, into);
    KeyGroupRange mine = keyGroupRange(j, 3, 8);
    for (const auto& [g, v] : into.groups) {
      EXPECT_TRUE(mine.contains(g)) << "task " << j << " got group " << g;
      all[g] = v;
    }
    // Ranges of 3 over 8: [0,3) [3,6) [6,8); of 2: [0,4) [4,8). Task 1 meets both old tasks.
    std::vector<std::string> heads =
        j == 0 ? std::vector<std::string>{"head0/2"}
        : j == 1 ? std::vector<std::string>{"head0/2", "head1/2"}
                 : std::vector<std::string>{"head1/2"};
    EXPECT_EQ(into.heads, heads) << "task " << j;
    // Each old task's counters go to the one new task holding its first group (0 and 4).
    std::vector<std::string> owned = j == 0   ? std::vector<std::string>{"head0/2"}
                                     : j == 1 ? std::vector<std::string>{"head1/2"}
                                              : std::vector<std::string>{};
    EXPECT_EQ(into.owned, owned) << "task " << j;
  }
  std::map<uint32_t, std::string> want;
  for (uint32_t g = 0; g < 8; ++g)
    if (g % 3 != 0) want[g] = std::to_string(g) + ":" + (g < 4 ? "0" : "1");
  EXPECT_EQ(all, want);
  // No #0: a first run, nothing restored.
  Groups none;
  restoreKeyGroupSnapshot([](const std::string&) { return std::nullopt; }, "count", 0, 3, 8, none);
  EXPECT_TRUE(none.heads.empty());
}

TEST(KeyGroupSnapshot, StaleBlobsOfALargerParallelismAreIgnoredAndAMissingBlobIsRefused) {
  // P = 4 wrote #0..#3, then P = 2 rewrote #0 and #1: #2 and #3 are stale (never deleted).
  std::map<std::string, std::string> store{{"count#0", blob(8, 2, 0)}, {"count#1", blob(8, 2, 1)},
                                            {"count#2", blob(8, 4, 2)}, {"count#3", blob(8, 4, 3)}};
  std::vector<std::string> read;
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    read.push_back(k);
    auto it = store.find(k);
    return it == store.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  Groups one;
  restoreKeyGroupSnapshot(lookup, "count", 0, 1, 8, one);
  EXPECT_EQ(read, (std::vector<std::string>{"count#0", "count#1"}));
  EXPECT_EQ(one.heads, (std::vector<std::string>{"head0/2", "head1/2"}));
  for (const auto& [g, v] : one.groups) EXPECT_NE(v.substr(v.find(':')), ":2") << g;
  EXPECT_EQ(one.groups.size(), 5u);  // 1 2 4 5 7

  auto refused = [&](const std::string& why) {
    Groups into;
    try {
      restoreKeyGroupSnapshot(lookup, "count", 0, 1, 8, into);
      ADD_FAILURE() << "restored; expected: " << why;
    } catch (const SnapshotError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  store.erase("count#1");
  refused("'count#1' is missing");
  store["count#1"] = "a plain snapshot";
  refused("'count#1' is not a key-group snapshot");
  store["count#1"] = blob(8, 4, 1);  // a task of another parallelism
  refused("is not that of task 1 of 2");
  store["count#1"] = blob(8, 2, 1);
  store["count#0"] = blob(16, 2, 0);
  refused("it has 16 key groups, the component 8");
  store["count#0"] = blob(8, 2, 0).substr(0, 9);
  refused("count#0");
}

// rescaleMergesTasks (what `gale rebalance` asks) says exactly whether some new task's restore
// gets the heads of several old tasks.
TEST(KeyGroupSnapshot, ARescaleMergesTasksExactlyWhenSomeRestoreGetsSeveralHeads) {
  for (uint32_t m : {1u, 7u, 16u, 128u}) {
    for (int old = 1; old <= std::min<int>(static_cast<int>(m), 9); ++old) {
      std::map<std::string, std::string> blobs;
      for (int i = 0; i < old; ++i) blobs["c#" + std::to_string(i)] = blob(m, old, i);
      auto lookup = [&](const std::string& k) -> std::optional<std::string> {
        auto it = blobs.find(k);
        return it == blobs.end() ? std::nullopt : std::optional(it->second);
      };
      for (int n = 1; n <= std::min<int>(static_cast<int>(m), 9); ++n) {
        bool several = false;
        for (int t = 0; t < n; ++t) {
          Groups into;
          restoreKeyGroupSnapshot(lookup, "c", t, n, m, into);
          several = several || into.heads.size() > 1;
        }
        EXPECT_EQ(rescaleMergesTasks(m, old, n), several) << m << " groups, " << old << " -> " << n;
      }
    }
  }
  EXPECT_FALSE(rescaleMergesTasks(16, 2, 4));
  EXPECT_TRUE(rescaleMergesTasks(16, 2, 3));
  EXPECT_TRUE(rescaleMergesTasks(16, 2, 1));
}

}  // namespace
}  // namespace gale
