// The README's example: a windowed word count, run in continuous mode or, by changing one line,
// in micro-batch mode with exactly-once state. Usage: quickstart [continuous|micro-batch] [--ui PORT]
#include <chrono>
#include <filesystem>
#include <string>

#include "cli.h"  // CLI11 and the examples' exit codes (0 after --help, 2 on a bad argument)
#include "example_ui.h"  // --ui PORT

#include "gale/batch/microbatch.h"
#include "gale/connectors/console_sink.h"
#include "gale/connectors/generator_source.h"
#include "gale/core/stateless.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  std::string mode = "continuous";
  CLI::App app{"quickstart: 5 s tumbling-window word counts, printed, in either mode"};
  app.add_option("mode", mode, "continuous (default) or micro-batch")
      ->check(CLI::IsMember({"continuous", "micro-batch"}));
  gale::examples::UiFlags ui;
  gale::examples::addUiOptions(app, ui);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;

  gale::TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<gale::SentenceSource>(gale::SentenceSource::Options{
                              .total = 2000, .withEventTime = true, .eventTimeStep = 10ms}))
      .withWatermark("ts", 1s);
  b.setBolt("split", gale::splitWords("sentence", "word", {"ts"}), 2).shuffleGrouping("sentences");
  b.setBolt("count", *gale::windowed(gale::Tumbling(5s), gale::Count{}).keyBy({"word"})
                          .eventTime("ts").outputMode(gale::OutputMode::Append).build(), 2)
      .fieldsGrouping("split", {"word"});
  // Continuous mode prints each window as it fires; micro-batch mode a table per batch (Spark's).
  b.setBolt("print", gale::ConsoleSink(gale::ConsoleSink::Options{.numRows = 1000}), 1)
      .globalGrouping("count");
  gale::Topology topology = b.build();

  auto server = gale::examples::startUi(ui);
  if (mode == "micro-batch") {
    std::filesystem::remove_all("quickstart-chk");
    auto job = gale::runMicroBatch(topology, {.trigger = gale::BatchTrigger::availableNow(),
                                              .checkpoint = "quickstart-chk"});
    gale::examples::UiAttachment shown(server.get(), job);
    job.waitUntilDone();
  } else {
    auto job = gale::runContinuous(topology);
    gale::examples::UiAttachment shown(server.get(), job, "quickstart");
    job.waitUntilDone();
  }
  gale::examples::keepUiUntilInterrupted(server.get());
}
