#include "word_count.h"

#include <gtest/gtest.h>

#include "gale/connectors/generator_source.h"
#include "gale/topology/runtime.h"

namespace gale::examples {
namespace {

TEST(WordCount, ForEachWordSplitsOnNonLettersAndLowerCases) {
  std::vector<std::string> words;
  forEachWord("The cow's  jumped, over-the MOON!", [&](const std::string& w) { words.push_back(w); });
  EXPECT_EQ(words, (std::vector<std::string>{"the", "cow's", "jumped", "over", "the", "moon"}));
}

void expectTopologyCountEqualsDirectCount(bool acking) {
  SentenceSource::Options o;
  o.partitions = 3;
  o.total = 5000;
  auto report = std::make_shared<CountReport>();
  TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<SentenceSource>(o), 2);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  b.setBolt("count", CountWords(report), 3).fieldsGrouping("split", {"word"});
  Continuous c;
  c.acking = acking;
  auto rt = runContinuous(b.build(), c);
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(30)));
  WordCounts direct;
  for (int64_t g = 0; g < 5000; ++g) countDirectly(SentenceSource::sentenceAt(g), direct);
  ASSERT_FALSE(direct.empty());
  EXPECT_EQ(report->counts, direct);
  EXPECT_GT(report->latencyNanos.count(), 0u);
  int64_t words = 0;
  for (auto& [w, n] : direct) words += n;
  EXPECT_EQ(rt.metrics().find("count")->total().executed, static_cast<uint64_t>(words));
}

TEST(WordCount, TheTopologysCountsEqualADirectCountOfTheSameInputWithAcking) {
  expectTopologyCountEqualsDirectCount(true);
}

TEST(WordCount, TheTopologysCountsEqualADirectCountOfTheSameInputWithoutAcking) {
  expectTopologyCountEqualsDirectCount(false);
}

}  // namespace
}  // namespace gale::examples
