#include "windowed_word_count.h"

#include "gale/core/stateless.h"

namespace gale::examples {

namespace {
SentenceSource::Options sourceOptions(const WindowedWordCountOptions& o) {
  SentenceSource::Options s;
  s.partitions = 2;
  s.total = o.sentences;
  s.withEventTime = true;
  s.eventTimeStep = o.eventTimeStep;
  return s;
}
}  // namespace

Topology windowedWordCountTopology(const WindowedWordCountOptions& o, MemoryStorePtr results,
                                   MemoryStorePtr late) {
  TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<SentenceSource>(sourceOptions(o)), 1)
      .withWatermark("ts", o.watermarkDelay);
  b.setBolt("split", splitWords("sentence", "word", {"ts"}), o.parallelism)
      .shuffleGrouping("sentences");
  b.setBolt("count",
            *windowed(Tumbling(o.window), Count{})
                 .keyBy({"word"})
                 .eventTime("ts")
                 .outputMode(o.mode)
                 .build(),
            o.parallelism)
      .fieldsGrouping("split", {"word"});
  b.setBolt("results", MemorySink(std::move(results)), 1).globalGrouping("count");
  b.setBolt("late", MemorySink(std::move(late)), 1).globalGrouping("count", "late");
  return b.build();
}

WindowCounts expectedWindowCounts(const WindowedWordCountOptions& o) {
  WindowCounts counts;
  const int64_t w = o.window.count();
  for (int64_t g = 0; g < o.sentences; ++g) {
    int64_t ts = g * o.eventTimeStep.count();
    int64_t start = ts / w * w;
    const std::string& s = SentenceSource::sentenceAt(g);
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      size_t j = i;
      while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j > i) ++counts[{s.substr(i, j - i), start}];
      i = j;
    }
  }
  return counts;
}

WindowCounts collectWindowCounts(const MemoryStore& results) {
  WindowCounts counts;
  for (const auto& v : results.values())
    counts[{std::get<std::string>(v[0]), std::get<Timestamp>(v[1]).micros}] = std::get<int64_t>(v[3]);
  return counts;
}

}  // namespace gale::examples
