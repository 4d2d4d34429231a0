#include "gale/core/copy_on_write_map.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace gale {
namespace {

using Map = CopyOnWriteMap<std::string, int64_t>;

template <class Entries>
std::map<std::string, int64_t> contents(const Entries& e) {
  std::map<std::string, int64_t> out;
  e.forEach([&](const std::string& k, int64_t v) { out[k] = v; });
  EXPECT_EQ(out.size(), e.size());
  return out;
}

std::string key(int i) { return "k" + std::to_string(i); }

TEST(CopyOnWriteMap, ReadsWhatWasWrittenAcrossGrowth) {
  Map m;
  for (int i = 0; i < 5000; ++i) m[key(i)] = i;
  for (int i = 0; i < 5000; i += 2) EXPECT_TRUE(m.erase(key(i)));
  EXPECT_FALSE(m.erase("absent"));
  EXPECT_FALSE(m.insert("k1", 7)) << "there: not replaced";
  EXPECT_TRUE(m.insert("k0", 7)) << "erased above";
  EXPECT_EQ(*m.find("k0"), 7);
  EXPECT_TRUE(m.erase("k0"));
  auto [v, inserted] = m.tryEmplace("k3");
  EXPECT_FALSE(inserted);
  EXPECT_EQ(*v, 3);
  Map copy = m;
  EXPECT_EQ(contents(copy), contents(m));
  EXPECT_EQ(m.size(), 2500u);
  EXPECT_GE(m.shardCount(), 2500u / 32);
  for (int i = 0; i < 5000; ++i) {
    const int64_t* v = m.find(key(i));
    if (i % 2) {
      ASSERT_NE(v, nullptr);
      EXPECT_EQ(*v, i);
    } else {
      EXPECT_EQ(v, nullptr);
    }
  }
}

// Updates, inserts (enough to grow the shards), erases and a clear after freeze(): the view
// keeps the state of the freeze. A view that read the live map would see them.
TEST(CopyOnWriteMap, AViewKeepsTheStateOfItsFreezeWhateverTheMapDoesAfterwards) {
  Map m;
  for (int i = 0; i < 1000; ++i) m[key(i)] = i;
  const auto before = contents(m);
  Map::View view = m.freeze();
  for (int i = 0; i < 1000; ++i) m[key(i)] += 1000;
  for (int i = 1000; i < 20000; ++i) m[key(i)] = i;
  for (int i = 0; i < 500; ++i) m.erase(key(i));
  EXPECT_EQ(contents(view), before);
  Map::View second = m.freeze();
  const auto atSecond = contents(m);
  m.clear();
  m["new"] = 1;
  EXPECT_EQ(contents(view), before);
  EXPECT_EQ(contents(second), atSecond);
  EXPECT_EQ(m.size(), 1u);
}

// Shards are copied only while a view may hold them; once every view is gone, writes go in place.
TEST(CopyOnWriteMap, ShardsAreCopiedOnlyWhileAViewIsAlive) {
  Map m;
  for (int i = 0; i < 1000; ++i) m[key(i)] = i;
  for (int i = 0; i < 1000; ++i) m[key(i)] += 1;
  EXPECT_EQ(m.shardCopies(), 0u) << "no view: in place";
  {
    Map::View view = m.freeze();
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(m.insert(key(i), 0));
    EXPECT_EQ(m.shardCopies(), 0u) << "an insert of a key that is there writes nothing";
    for (int i = 0; i < 1000; ++i) m[key(i)] += 1;
    EXPECT_GT(m.shardCopies(), 0u);
    EXPECT_LE(m.shardCopies(), m.shardCount()) << "each shard at most once per freeze";
  }
  uint64_t copies = m.shardCopies();
  for (int i = 0; i < 1000; ++i) m[key(i)] += 1;
  EXPECT_EQ(m.shardCopies(), copies) << "the view is gone: in place again";
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(*m.find(key(i)), i + 3);
}

// The task's thread writes while another thread reads the view (run under TSan in CI): the view
// reads the frozen state, and the writes after the view ends need no copy.
TEST(CopyOnWriteMap, AViewReadOnAnotherThreadWhileTheMapIsWrittenSeesItsFreeze) {
  Map m;
  for (int i = 0; i < 20000; ++i) m[key(i)] = i;
  const auto before = contents(m);
  for (int round = 0; round < 20; ++round) {
    Map::View view = m.freeze();
    std::map<std::string, int64_t> seen;
    std::thread reader([&seen, v = std::move(view)] { seen = contents(v); });
    for (int i = 0; i < 20000; i += 7) m[key(i)] += 1;
    reader.join();
    for (int i = 0; i < 20000; i += 7) m[key(i)] -= 1;  // back to `before`
    ASSERT_EQ(seen, before) << "round " << round;
  }
  EXPECT_EQ(contents(m), before);
}

// A view's end frees nothing of the map's (it may end on a low-priority thread, and freeing the
// task's memory there held the task's malloc arena lock): the shards it held are retired and the
// map's own writes free them, a few per write.
TEST(CopyOnWriteMap, ShardsAViewHeldAreFreedByTheMapsWritesAfterTheViewEnds) {
  Map m;
  for (int i = 0; i < 2000; ++i) m[key(i)] = i;
  Map::View view = m.freeze();
  for (int i = 0; i < 2000; ++i) m[key(i)] += 1;
  const size_t copies = m.shardCopies();
  ASSERT_GT(copies, 10u);
  EXPECT_EQ(m.retiredShards(), copies) << "the view holds every shard it was frozen with";
  std::thread([v = std::move(view)] { EXPECT_EQ(v.size(), 2000u); }).join();  // ends there
  EXPECT_EQ(m.retiredShards(), copies) << "the view's end freed nothing";
  m[key(0)] += 1;
  EXPECT_EQ(m.retiredShards(), copies - 4) << "a write frees a few";
  for (int i = 1; i < 2000 && m.retiredShards() > 0; ++i) m[key(i)] += 1;
  EXPECT_EQ(m.retiredShards(), 0u);
  EXPECT_EQ(*m.find(key(0)), 2);
  EXPECT_EQ(m.shardCopies(), copies) << "no view: in place";
}

// Two views of different freezes: a shard replaced after the second froze is held by the second
// only, so it stays while the second lives, though the first ended.
TEST(CopyOnWriteMap, AShardReplacedAfterALaterFreezeStaysWhileThatViewLives) {
  Map m;
  for (int i = 0; i < 2000; ++i) m[key(i)] = i;
  std::optional<Map::View> first = m.freeze();
  for (int i = 0; i < 2000; ++i) m[key(i)] = 1;  // copies of the shards `first` holds
  const size_t heldByFirst = m.retiredShards();
  const auto atSecond = contents(m);
  Map::View second = m.freeze();
  for (int i = 0; i < 2000; ++i) m[key(i)] = 2;  // copies of those `second` holds
  const size_t heldBySecond = m.retiredShards() - heldByFirst;
  ASSERT_GT(heldBySecond, 10u);
  first.reset();
  for (size_t n = 0; n < heldByFirst; ++n) m.erase("absent");
  EXPECT_EQ(m.retiredShards(), heldBySecond) << "those the first held are freed, not the others";
  EXPECT_EQ(contents(second), atSecond);
}

// A map destroyed before its view (an operator of a killed run, its checkpoint still being
// written): the view reads its state to the end, and the last view frees the shards.
TEST(CopyOnWriteMap, AViewOutlivesItsMap) {
  auto m = std::make_unique<Map>();
  for (int i = 0; i < 3000; ++i) (*m)[key(i)] = i;
  const auto before = contents(*m);
  Map::View view = m->freeze();
  for (int i = 0; i < 3000; i += 3) (*m)[key(i)] = -1;
  m.reset();
  std::map<std::string, int64_t> seen;
  std::thread([&seen, v = std::move(view)] { seen = contents(v); }).join();
  EXPECT_EQ(seen, before);
}

}  // namespace
}  // namespace gale
