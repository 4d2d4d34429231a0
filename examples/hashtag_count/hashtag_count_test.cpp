#include "hashtag_count.h"

#include <gtest/gtest.h>

#include <sstream>

#include "gale/batch/microbatch.h"

namespace gale::examples {
namespace {

using namespace std::chrono_literals;

// 40 s of tweets, 10 s windows sliding by 1 s (the program's 300 s / 1 s, shrunk to run briefly).
void expectCountsEqualADirectCountAndTopsRanked(bool microBatch) {
  HashtagCountOptions o;
  o.tweets = 4000;
  o.window = 10s;
  o.slide = 1s;
  o.top = 3;
  o.microBatch = microBatch;
  o.batchInterval = 20ms;
  o.maxRecordsPerBatch = 900;
  std::ostringstream printed;
  auto counts = std::make_shared<MemoryStore>();
  auto tops = std::make_shared<MemoryStore>();
  runHashtagCount(o, printed, counts, tops);
  resetTerminated();
  TagWindowCounts got;
  for (const auto& r : counts->rows()) {
    auto key = std::make_pair(std::get<std::string>(r.values[0]), std::get<Timestamp>(r.values[1]).micros);
    ASSERT_FALSE(got.count(key)) << "a (tag, window) emitted twice";
    got[key] = std::get<int64_t>(r.values[3]);
  }
  TagWindowCounts want = directTagWindowCounts(o);
  ASSERT_GT(want.size(), 200u);
  EXPECT_EQ(got, want);
  // Each window's top 3: ranks 1..3, counts not increasing, and the true top count first.
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> byEnd;  // end -> (rank, count)
  for (const auto& r : tops->rows())
    byEnd[std::get<Timestamp>(r.values[0]).micros].push_back(
        {std::get<int64_t>(r.values[1]), std::get<int64_t>(r.values[3])});
  std::map<int64_t, int64_t> best;  // window end -> max count
  for (const auto& [k, n] : want) best[k.second + o.window.count()] = std::max(best[k.second + o.window.count()], n);
  EXPECT_EQ(byEnd.size(), best.size()) << "every window ranked once";
  for (auto& [end, v] : byEnd) {
    ASSERT_EQ(v.size(), 3u) << "window ending " << end;
    for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i].first, static_cast<int64_t>(i + 1));
    EXPECT_EQ(v[0].second, best[end]);
    EXPECT_GE(v[0].second, v[1].second);
    EXPECT_GE(v[1].second, v[2].second);
  }
  EXPECT_NE(printed.str().find("Time: "), std::string::npos);
}

TEST(HashtagCount, WindowCountsEqualADirectCountAndEachWindowsTopIsRankedInContinuousMode) {
  expectCountsEqualADirectCountAndTopsRanked(false);
}

TEST(HashtagCount, WindowCountsEqualADirectCountAndEachWindowsTopIsRankedInMicroBatchMode) {
  expectCountsEqualADirectCountAndTopsRanked(true);
}

TEST(HashtagCount, TweetsCarryHashtagsWithPopularOnes) {
  std::map<std::string, int> n;
  for (int64_t g = 0; g < 2000; ++g)
    for (const auto& t : hashtagsOf(std::get<std::string>(tweetAt(g, 100)[0]))) ++n[t];
  EXPECT_GT(n["#gale"], 3 * n["#continuous"]);
  EXPECT_EQ(hashtagsOf("a #b c # #d"), (std::vector<std::string>{"#b", "#d"}));
}

}  // namespace
}  // namespace gale::examples
