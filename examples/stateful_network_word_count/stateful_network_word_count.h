// Spark Streaming's StatefulNetworkWordCount, in gale: lines (from a TCP socket, or the built-in
// sentence generator when no host is given) -> words -> updateStateByKey(running sum) -> print()
// of every word's count at each batch. Runs in either mode. Shared by the program and its test.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gale/connectors/memory_sink.h"
#include "gale/core/value.h"
#include "gale/topology/topology.h"

namespace gale::ui {
class UiServer;
}

namespace gale::examples {

struct StatefulWordCountOptions {
  std::string host;                 // empty: the built-in sentence generator
  int port = 9999;
  int64_t sentences = 20000;        // generator: how many (0 = unbounded)
  double sentencesPerSecond = 0;    // generator: 0 = as fast as possible
  bool microBatch = false;
  Duration batchInterval = std::chrono::seconds(1);  // micro-batch trigger; continuous print interval
  int64_t maxRecordsPerBatch = 0;   // micro-batch: 0 = no limit
  size_t printRows = 10;
  std::string checkpoint;           // micro-batch: empty = a fresh temporary directory
  ui::UiServer* ui = nullptr;       // --ui: shows the job there
};

// The running sum of Spark's example: the new counts added to the state.
std::optional<Value> runningSum(const std::vector<Value>& fresh, const std::optional<Value>& state);

// lines -> words -> state -> print (to `print`) and, when given, every emitted state to `states`.
Topology statefulWordCountTopology(const StatefulWordCountOptions& o, std::ostream& print,
                                   MemoryStorePtr states = nullptr);

// Builds and runs the topology until its input ends (or for ever, for a socket or an unbounded
// generator). Throws what the job throws.
void runStatefulWordCount(const StatefulWordCountOptions& o, std::ostream& print,
                          MemoryStorePtr states = nullptr);

// The count per word of the generator's first n sentences, for checking.
std::map<std::string, int64_t> directWordCounts(int64_t sentences);
// The last state of each word in `states` (rows in emission / batch order).
std::map<std::string, int64_t> finalStates(const MemoryStore& states);

}  // namespace gale::examples
