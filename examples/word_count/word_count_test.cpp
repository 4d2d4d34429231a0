#include "word_count.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "gale/connectors/generator_source.h"
#include "gale/core/state_codec.h"
#include "gale/topology/runtime.h"

namespace gale::examples {
namespace {

TEST(WordCount, ForEachWordSplitsOnNonLettersAndLowerCases) {
  std::vector<std::string> words;
  forEachWord("The cow's  jumped, over-the MOON!",
              [&](std::string_view w) { words.emplace_back(w); });
  EXPECT_EQ(words, (std::vector<std::string>{"the", "cow's", "jumped", "over", "the", "moon"}));
}

// Upper-case runs go through a buffer reused across the text, lower-case ones are views into
// it: neighbours of either kind, runs at both ends and texts with no word must all come out whole.
TEST(WordCount, ForEachWordGivesEveryRunWholeWhateverTheCaseOfItsNeighbours) {
  auto split = [](std::string_view text) {
    std::vector<std::string> words;
    forEachWord(text, [&](std::string_view w) { words.emplace_back(w); });
    return words;
  };
  using W = std::vector<std::string>;
  EXPECT_EQ(split("ABCDEFGHIJKLMNOPQRSTUVWXYZ a B cd EF"),
            (W{"abcdefghijklmnopqrstuvwxyz", "a", "b", "cd", "ef"}));
  EXPECT_EQ(split("x"), (W{"x"}));
  EXPECT_EQ(split("Q"), (W{"q"}));
  EXPECT_EQ(split(""), W{});
  EXPECT_EQ(split(" ,.!-"), W{});
  EXPECT_EQ(split("--it's 42nd--"), (W{"it's", "42nd"}));
  std::string withNul("ab\0CD", 5);  // any non-word byte ends a run
  EXPECT_EQ(split(withNul), (W{"ab", "cd"}));
}

// The direct count finds known words by a view and inserts new ones once: counts exact.
TEST(WordCount, CountDirectlyCountsEveryWordOnceWhateverItsCase) {
  WordCounts counts;
  countDirectly("The the THE cat", counts);
  countDirectly("cat's Cat", counts);
  EXPECT_EQ(counts, (WordCounts{{"the", 3}, {"cat", 2}, {"cat's", 1}}));
}

// sameWord's loads from both ends must see every byte: for every length 0 to 24, a difference at
// any one position is found, and equal words are equal.
TEST(WordCount, SameWordFindsADifferenceAtEveryPositionOfEveryLength) {
  for (size_t n = 0; n <= 24; ++n) {
    std::string a(n, 'a');
    for (size_t i = 0; i < n; ++i) a[i] = static_cast<char>('a' + i % 26);
    std::string b = a;
    EXPECT_TRUE(sameWord(a, b)) << n;
    EXPECT_FALSE(sameWord(a, a + "x")) << n;
    for (size_t i = 0; i < n; ++i) {
      std::string c = a;
      c[i] = '\'';
      EXPECT_FALSE(sameWord(a, c)) << n << " at " << i;
      EXPECT_FALSE(sameWord(c, a)) << n << " at " << i;
    }
  }
}

// The count's flat table against std::unordered_map: 20 000 distinct words (the table grows from
// 64 slots ten times, so entries are re-placed by their hash again and again), each counted
// 1 to 3 times in an interleaved order, words that are prefixes of each other and the empty word.
TEST(WordCount, TheWordTableCountsEveryWordExactlyAsAnUnorderedMapDoesThroughItsGrowth) {
  WordTable table;
  WordCounts expected;
  std::vector<std::string> words{"", "a", "ab", "abc", "b"};
  for (int i = 0; i < 20000; ++i) words.push_back("w" + std::to_string(i * 7919 % 20011));
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < words.size(); ++i) {
      if (static_cast<int>(i % 3) < round) continue;  // word i is counted (i % 3) + 1 times
      ++table[words[i]];
      ++expected[words[i]];
    }
  }
  ASSERT_EQ(table.size(), expected.size());
  WordCounts got;
  for (const auto& [w, n] : table.entries()) got.emplace(w, n);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(table["ab"], 3);  // a lookup after the growth finds the word, adds nothing
  EXPECT_EQ(table["not counted"], 0);
  EXPECT_EQ(table.size(), expected.size() + 1);
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

TEST(WordCount, CountsSurviveASnapshotAndACorruptSnapshotIsRefused) {
  auto report = std::make_shared<CountReport>();
  CountWords a(report, false), b(report, false);
  struct : Emitter {
    void emit(std::string_view, Values) override {}
  } none;
  SchemaPtr words = makeSchema("split", "default", Fields{{"word", Type::String}});
  for (const char* w : {"to", "be", "or", "not", "to", "be"})
    a.onTuple(Tuple(words, Values{std::string(w)}), none);
  std::string snap = a.snapshot();
  b.restore(snap);
  b.onEndOfInput(none);
  EXPECT_EQ(report->counts, (WordCounts{{"to", 2}, {"be", 2}, {"or", 1}, {"not", 1}}));
  EXPECT_THROW(b.restore(snap.substr(0, snap.size() - 1)), SnapshotError);
  EXPECT_THROW(b.restore(snap + "x"), SnapshotError);
}

// Exactly-once: a run killed after its second checkpoint and run again on the same directory
// reports the direct counts (the second run starts from the checkpoint's counts and offsets).
TEST(WordCount, AnExactlyOnceRunKilledAndResumedCountsEveryWordOnce) {
  const int64_t total = 20000;
  SentenceSource::Options o{.partitions = 3, .ratePerSecond = 100000, .total = total};
  auto chk = std::filesystem::temp_directory_path() /
             ("gale-word-count-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(chk);
  auto run = [&](std::shared_ptr<CountReport> report, std::atomic<bool>* second) {
    TopologyBuilder b;
    b.setSpout("sentences", std::make_shared<SentenceSource>(o), 2);
    b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
    b.setBolt("count", CountWords(report, false), 2).fieldsGrouping("split", {"word"});
    Continuous c{.guarantee = Guarantee::ExactlyOnce,
                 .checkpointInterval = std::chrono::milliseconds(5),
                 .checkpointDir = chk.string(),
                 .checkpointSync = false};
    c.onCheckpointPoint = [second](CheckpointPoint p, uint64_t id) {
      if (second && p == CheckpointPoint::CheckpointWritten && id == 2) *second = true;
    };
    return runContinuous(b.build(), c);
  };
  auto first = std::make_shared<CountReport>();
  {
    std::atomic<bool> second{false};
    auto rt = run(first, &second);
    for (int i = 0; i < 60000 && !second; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(second.load());
    rt.kill();
  }
  EXPECT_TRUE(first->counts.empty()) << "a killed run reports nothing";
  auto resumed = std::make_shared<CountReport>();
  ASSERT_TRUE(run(resumed, nullptr).waitUntilDone(std::chrono::seconds(60)));
  std::filesystem::remove_all(chk);
  WordCounts direct;
  for (int64_t g = 0; g < total; ++g) countDirectly(SentenceSource::sentenceAt(g), direct);
  EXPECT_EQ(resumed->counts, direct);
}

}  // namespace
}  // namespace gale::examples
