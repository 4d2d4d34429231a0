// Times gale-compare's YSB record generation alone, without a topology: the JSON text and the
// typed events, read as the spout reads them (GeneratorSource::read in chunks of 64). The
// pipelines' figures include this work on the spout's thread; this says how much of it is the
// generator's. Each record's values go back to the pool after it is read, as in the pipeline.
// Usage: ysb_source_bench [events per variant, default 5 000 000]
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "ysb.h"

int main(int argc, char** argv) {
  using namespace gale;
  using namespace gale::compare;
  const int64_t events = argc > 1 ? std::stoll(argv[1]) : 5'000'000;
  auto data = std::make_shared<const YsbData>();
  for (bool typed : {false, true}) {
    GeneratorSource::Options options;
    options.name = "ysb-events";
    options.total = events;
    options.unlimitedLookahead = events;
    YsbSource::EventTimeOptions eventTime;
    eventTime.fixedEventTimeStart = Timestamp{1'600'000'000'000'000};
    eventTime.typed = typed;
    YsbSource source(data, options, eventTime);
    source.open(SystemClock::instance());
    std::vector<SourceRecord> chunk;
    size_t values = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t offset = 0; offset < events;) {
      chunk.clear();
      offset += static_cast<int64_t>(source.read(0, offset, std::min(events, offset + 64), chunk));
      // Read something of every record, so the generation cannot be optimised away; then give
      // its values back to the pool, as the pipeline's fused chain does once it has processed
      // the tuple (the typed generator writes over a list the pool kept).
      for (SourceRecord& r : chunk) {
        values += r.values.size();
        recycleValues(std::move(r.values));
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s generator alone: %lld events in %.3f s = %.2f M events/s (%.0f ns/event; %zu values)\n",
                typed ? "typed" : "JSON ", static_cast<long long>(events), seconds,
                events / seconds / 1e6, seconds * 1e9 / events, values);
  }
}
