// stateful_network_word_count: Spark Streaming's StatefulNetworkWordCount — a running count per
// word over all batches so far (updateStateByKey), printed at each batch.
//
//   stateful_network_word_count                      # built-in sentences, continuous mode
//   stateful_network_word_count --micro-batch        # the same in micro-batch mode
//   nc -lk 9999 & stateful_network_word_count --host 127.0.0.1 --port 9999
#include <iostream>

#include <CLI/CLI.hpp>

#include "example_ui.h"

#include "stateful_network_word_count.h"

using namespace gale;
using namespace gale::examples;

int main(int argc, char** argv) {
  StatefulWordCountOptions o;
  o.sentencesPerSecond = 2000;  // a 10 s demo with a batch a second
  int64_t intervalMs = 1000;
  CLI::App app{"Running word counts (updateStateByKey) over a socket or the built-in sentences"};
  app.add_option("--host", o.host, "read lines from this TCP server instead of the built-in sentences");
  app.add_option("--port", o.port, "the TCP server's port")->check(CLI::Range(1, 65535));
  app.add_option("--sentences", o.sentences, "built-in sentences to generate (0 = unbounded)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rate", o.sentencesPerSecond, "built-in sentences per second (0 = unlimited)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--micro-batch", o.microBatch, "run in micro-batch mode (default: continuous)");
  app.add_option("--batch-interval-ms", intervalMs, "batch interval (micro-batch trigger, print interval)")
      ->check(CLI::PositiveNumber);
  app.add_option("--print", o.printRows, "rows printed per batch");
  app.add_option("--checkpoint", o.checkpoint, "micro-batch checkpoint directory (default: a temporary one)");
  UiFlags uiFlags;
  addUiOptions(app, uiFlags);
  if (auto rc = parseCommandLine(app, argc, argv)) return *rc;  // bad values: exit 2
  o.batchInterval = std::chrono::milliseconds(intervalMs);
  try {
    auto server = startUi(uiFlags);
    o.ui = server.get();
    runStatefulWordCount(o, std::cout);
    keepUiUntilInterrupted(server.get());
  } catch (const std::exception& e) {
    std::cerr << "stateful_network_word_count: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
