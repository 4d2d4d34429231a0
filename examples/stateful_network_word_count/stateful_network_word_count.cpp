#include "stateful_network_word_count.h"

#include <sstream>

#include "gale/connectors/generator_source.h"
#include "gale/connectors/socket_source.h"
#include "gale/core/dstream.h"
#include "gale/core/dstream_batch.h"
#include "gale/core/stateless.h"
#include "run_either_mode.h"

namespace gale::examples {

namespace {
// Spark's example splits on spaces.
template <class F>
void forEachWord(const std::string& line, F f) {
  std::istringstream in(line);
  for (std::string w; in >> w;) f(w);
}
}  // namespace

std::optional<Value> runningSum(const std::vector<Value>& fresh, const std::optional<Value>& state) {
  int64_t sum = state ? std::get<int64_t>(*state) : 0;
  for (const auto& v : fresh) sum += std::get<int64_t>(v);
  return Value{sum};
}

Topology statefulWordCountTopology(const StatefulWordCountOptions& o, std::ostream& print,
                                   MemoryStorePtr states) {
  SourcePtr lines;
  if (!o.host.empty()) {
    lines = std::make_shared<SocketSource>(o.host, o.port);
  } else {
    SentenceSource::Options so;
    so.total = o.sentences > 0 ? o.sentences : -1;
    so.ratePerSecond = o.sentencesPerSecond;
    lines = std::make_shared<SentenceSource>(so);
  }
  TopologyBuilder b;
  b.setSpout("lines", lines, 1);
  b.setBolt("words", FlatMap(Fields{{"word", Type::String}, {"one", Type::Int64}},
                             [](const Tuple& t, std::vector<Values>& rows) {
                               forEachWord(t.getString(0), [&](const std::string& w) {
                                 rows.push_back({w, int64_t{1}});
                               });
                             }),
            2)
      .shuffleGrouping("lines");
  b.setBolt("state", UpdateStateByKey({"word"}, "one", runningSum, "count"), 2)
      .fieldsGrouping("words", Fields{"word"});
  // Continuous mode has no watermark here: print a batch per processing-time tick.
  Print p(o.printRows, &print);
  p.continuousBatches(ContinuousBatches::ProcessingTime);
  b.setBolt("print", p, 1).shuffleGrouping("state");
  if (states) b.setBolt("states", MemorySink(states), 1).shuffleGrouping("state");
  return b.build();
}

void runStatefulWordCount(const StatefulWordCountOptions& o, std::ostream& print,
                          MemoryStorePtr states) {
  Topology t = statefulWordCountTopology(o, print, std::move(states));
  runEitherMode(t, {o.microBatch, o.batchInterval, o.maxRecordsPerBatch, o.checkpoint, o.ui}, "stateful-word-count");
}

std::map<std::string, int64_t> directWordCounts(int64_t sentences) {
  std::map<std::string, int64_t> m;
  for (int64_t g = 0; g < sentences; ++g)
    forEachWord(SentenceSource::sentenceAt(g), [&](const std::string& w) { ++m[w]; });
  return m;
}

std::map<std::string, int64_t> finalStates(const MemoryStore& states) {
  std::map<std::string, int64_t> m;
  for (const auto& r : states.rows()) m[std::get<std::string>(r.values[0])] = std::get<int64_t>(r.values[1]);
  return m;
}

}  // namespace gale::examples
