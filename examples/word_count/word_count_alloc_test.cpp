// Heap allocations per word in steady state, for the word count of `word_count --bench` (one
// spout task, split and count fused into it, acking off): this binary replaces the global
// operator new to count its calls. Two runs of different lengths: their difference is what the
// extra words cost, without start-up and shutdown.
#include <gtest/gtest.h>

#include "counting_new.h"
#include "gale/connectors/generator_source.h"
#include "gale/topology/runtime.h"
#include "word_count.h"

namespace gale::examples {
namespace {

struct Counted {
  uint64_t allocations = 0;
  int64_t words = 0;
};

Counted countWords(int64_t sentences) {
  SentenceSource::Options o;
  o.total = sentences;
  auto report = std::make_shared<CountReport>();
  TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<SentenceSource>(o), 1);
  b.setBolt("split", SplitWords{}, 1).shuffleGrouping("sentences");
  b.setBolt("count", CountWords(report, false), 1).fieldsGrouping("split", {"word"});
  Topology t = b.build();
  Continuous c;
  c.acking = false;
  uint64_t before = gHeapAllocations.load();
  auto rt = runContinuous(t, c);
  EXPECT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  rt.stop();
  Counted r;
  r.allocations = gHeapAllocations.load() - before;
  for (auto& [w, n] : report->counts) r.words += n;
  return r;
}

TEST(WordCountAllocations, InSteadyStateOnlyTheSentencesStringIsAllocated) {
  Counted small = countWords(20'000);
  Counted large = countWords(120'000);
  ASSERT_GT(large.words, small.words);
  double perWord = static_cast<double>(large.allocations - small.allocations) /
                   static_cast<double>(large.words - small.words);
  std::cout << "heap allocations per word in steady state: " << perWord << "\n";
  RecordProperty("allocations_per_word", std::to_string(perWord));
  // 1.30 before values were recycled (a vector per word, a vector and a string per sentence);
  // what is left is the sentence's string, 1 per 6.65 words.
  EXPECT_LE(perWord, 0.16);
}

}  // namespace
}  // namespace gale::examples
