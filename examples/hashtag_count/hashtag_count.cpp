#include "hashtag_count.h"

#include <algorithm>
#include <sstream>

#include "gale/connectors/generator_source.h"
#include "gale/core/dstream.h"
#include "gale/core/dstream_batch.h"
#include "gale/core/stateless.h"
#include "run_either_mode.h"

namespace gale::examples {

namespace {
const std::vector<std::string>& tags() {
  static const std::vector<std::string> t = {
      "#gale", "#streaming", "#spark", "#flink", "#storm", "#cpp", "#kafka", "#zeromq",
      "#lmdb", "#latency", "#exactlyonce", "#watermark", "#windows", "#joins", "#dedup", "#state",
      "#backpressure", "#checkpoint", "#microbatch", "#continuous"};
  return t;
}
uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}
}  // namespace

Values tweetAt(int64_t g, int tweetsPerSecond) {
  uint64_t h = mix(static_cast<uint64_t>(g) + 1);
  const size_t n = tags().size();
  // The min of two draws: low indexes are popular.
  std::string text = "tweet " + std::to_string(g);
  for (int i = 0; i < static_cast<int>(h % 3); ++i) {
    size_t a = (h >> (8 + 16 * i)) % n, b = (h >> (16 + 16 * i)) % n;
    text += " " + tags()[std::min(a, b)];
  }
  int64_t ts = g * 1'000'000 / tweetsPerSecond + static_cast<int64_t>((h >> 48) % 500) * 1000;
  return Values{text, Timestamp{ts}};
}

std::vector<std::string> hashtagsOf(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w.size() > 1 && w[0] == '#') v.push_back(w);
  return v;
}

Topology hashtagCountTopology(const HashtagCountOptions& o, std::ostream& print,
                              MemoryStorePtr counts, MemoryStorePtr tops) {
  GeneratorSource::Options go;
  go.name = "tweets";
  go.partitions = 2;
  go.total = o.tweets > 0 ? o.tweets : -1;
  go.ratePerSecond = o.rate;
  const int perSecond = o.tweetsPerSecond;
  auto tweets = std::make_shared<GeneratorSource>(
      Fields{{"text", Type::String}, {"ts", Type::Timestamp}},
      [perSecond](int p, int64_t off) { return tweetAt(off * 2 + p, perSecond); }, go);
  TopologyBuilder b;
  b.setSpout("tweets", tweets, 2).withWatermark("ts", o.watermarkDelay);
  b.setBolt("tags", FlatMap(Fields{{"tag", Type::String}, {"ts", Type::Timestamp}, {"one", Type::Int64}},
                            [](const Tuple& t, std::vector<Values>& rows) {
                              for (auto& tag : hashtagsOf(t.getString(0)))
                                rows.push_back({tag, t.get(1), int64_t{1}});
                            }),
            2)
      .shuffleGrouping("tweets");
  // reduceByKeyAndWindow(_ + _, _ - _, Minutes(5), Seconds(1)) of the seeds.
  b.setBolt("counts", *reduceByKeyAndWindow({"tag"}, "one", plus, minus, o.window, o.slide, EventTime("ts")), 2)
      .fieldsGrouping("tags", Fields{"tag"});
  // The top tags of each window that closed in this batch. A window's rows come from both count
  // tasks; in continuous mode the batch is cut by event time (window_end - 1 µs <= watermark), so
  // each window is ranked once with all of its tags.
  const size_t top = o.top;
  Transform rank(Fields{{"window_end", Type::Timestamp}, {"rank", Type::Int64}, {"tag", Type::String},
                        {"count", Type::Int64}},
                 [top](const BatchInfo&, const std::vector<Tuple>& rows) {
                   std::map<int64_t, std::vector<std::pair<int64_t, std::string>>> byWindow;
                   for (const auto& t : rows)
                     byWindow[t.getTimestamp("window_end").micros].push_back(
                         {-t.getInt("value"), t.getString("tag")});
                   std::vector<Values> out;
                   for (auto& [end, v] : byWindow) {
                     std::sort(v.begin(), v.end());
                     for (size_t i = 0; i < v.size() && i < top; ++i)
                       out.push_back({Timestamp{end}, static_cast<int64_t>(i + 1), v[i].second, -v[i].first});
                   }
                   return out;
                 });
  rank.eventTime(EventTime([](const Tuple& t) {
    return Timestamp{t.getTimestamp("window_end").micros - 1};
  }));
  b.setBolt("top", rank, 1).shuffleGrouping("counts");
  b.setBolt("print", Print(o.top, &print), 1).shuffleGrouping("top");
  if (counts) b.setBolt("counts-sink", MemorySink(counts), 1).shuffleGrouping("counts");
  if (tops) b.setBolt("top-sink", MemorySink(tops), 1).shuffleGrouping("top");
  return b.build();
}

void runHashtagCount(const HashtagCountOptions& o, std::ostream& print, MemoryStorePtr counts,
                     MemoryStorePtr tops) {
  Topology t = hashtagCountTopology(o, print, std::move(counts), std::move(tops));
  runEitherMode(t, {o.microBatch, o.batchInterval, o.maxRecordsPerBatch, o.checkpoint, o.ui}, "hashtag-count");
}

TagWindowCounts directTagWindowCounts(const HashtagCountOptions& o) {
  TagWindowCounts m;
  const int64_t slide = o.slide.count(), window = o.window.count();
  for (int64_t g = 0; g < o.tweets; ++g) {
    Values v = tweetAt(g, o.tweetsPerSecond);
    int64_t ts = std::get<Timestamp>(v[1]).micros;
    for (const auto& tag : hashtagsOf(std::get<std::string>(v[0])))
      for (int64_t s = ts / slide * slide; s > ts - window; s -= slide) ++m[{tag, s}];
  }
  return m;
}

}  // namespace gale::examples
