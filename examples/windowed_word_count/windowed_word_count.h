// The windowed word count: sentences with event times -> split into words (keeping the event
// time) -> a keyed tumbling-window count per word -> a sink; late words go to a second sink.
// Shared by the example program and its test.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/window.h"
#include "gale/topology/topology.h"

namespace gale::examples {

struct WindowedWordCountOptions {
  int64_t sentences = 20000;
  Duration eventTimeStep = std::chrono::milliseconds(1);  // between consecutive sentences
  Duration window = std::chrono::seconds(5);
  Duration watermarkDelay = std::chrono::seconds(2);
  OutputMode mode = OutputMode::Append;
  int parallelism = 2;
};

// (word, window start micros) -> count
using WindowCounts = std::map<std::pair<std::string, int64_t>, int64_t>;

Topology windowedWordCountTopology(const WindowedWordCountOptions& o, MemoryStorePtr results,
                                   MemoryStorePtr late);
// The same counts computed directly from the generator's sentences, for checking.
WindowCounts expectedWindowCounts(const WindowedWordCountOptions& o);
// The counts in the result rows (word, window_start, window_end, count); in update mode the
// last row of each (word, window) wins.
WindowCounts collectWindowCounts(const MemoryStore& results);

}  // namespace gale::examples
