// The windowed Kafka job of the cluster tests: words from a Kafka topic (record value: a word;
// record timestamp: its event time) counted per word in tumbling event-time windows
// (--window-ms) by gale's window operator, in append mode (a window's row is written once, when
// the watermark passes its end), into a FileSink (--output). It runs exactly-once, either as a
// continuous job (--mode exactly-once: barriers, the window's snapshot and the Kafka offsets in
// the checkpoint, the sink's two-phase commit) or as a micro-batch job (--mode micro-batch: each
// batch's offsets, window state and sink files committed together), its checkpoint in
// --checkpoint. On the cluster the micro-batch job runs in one worker, the exactly-once one over
// any number (docs/cluster.md); restarted workers, on the same host or another, resume from the
// checkpoint, so every window's row is written exactly once with its exact count.
#include <CLI/CLI.hpp>

#include "gale/cluster/worker.h"
#include "gale/connectors/file_sink.h"
#include "gale/connectors/kafka_source.h"
#include "gale/core/aggregate.h"
#include "gale/core/stateless.h"
#include "gale/core/window.h"
#include "gale/topology/topology.h"

int main(int argc, char** argv) {
  std::string bootstrap, topic, checkpoint, output, mode = "exactly-once";
  int64_t windowMs = 10000;
  CLI::App app{"cluster_kafka_windows: per-word counts of tumbling event-time windows of a Kafka "
               "topic, exactly-once, as a cluster worker"};
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->required();
  app.add_option("--topic", topic, "the topic of words")->required();
  app.add_option("--checkpoint", checkpoint, "checkpoint directory (shared by the hosts)")
      ->required();
  app.add_option("--output", output, "directory of the window rows (shared by the hosts)")
      ->required();
  app.add_option("--mode", mode, "exactly-once (continuous) or micro-batch")
      ->check(CLI::IsMember({"exactly-once", "micro-batch"}));
  app.add_option("--window-ms", windowMs, "window length")
      ->check(CLI::Range(int64_t{1}, int64_t{86400000}));
  CLI11_PARSE(app, argc, argv);

  gale::KafkaSource::Options in;
  in.bootstrapServers = bootstrap;
  in.subscribe = {topic};
  in.startingOffsets = "earliest";
  in.consumerProperties = {{"fetch.wait.max.ms", "5"}};
  gale::TopologyBuilder b;
  // The test produces each partition's records in event-time order: no delay is needed.
  b.setSpout("words", std::make_shared<gale::KafkaSource>(in), 1)
      .withWatermark("timestamp", std::chrono::milliseconds(0));
  // A tombstone or empty value has no word: nothing to count.
  b.setBolt("parse",
            gale::FlatMap({{"word", gale::Type::String}, {"ts", gale::Type::Timestamp}},
                          [](const gale::Tuple& t, std::vector<gale::Values>& rows) {
                            const auto* w = std::get_if<gale::Bytes>(&t.get("value"));
                            if (w && !w->data.empty())
                              rows.push_back({w->data, t.getTimestamp("timestamp")});
                          }),
            1)
      .shuffleGrouping("words");
  b.setBolt("window",
            *gale::windowed(gale::Tumbling(std::chrono::milliseconds(windowMs)), gale::Count{})
                 .keyBy({"word"})
                 .eventTime("ts")
                 .outputMode(gale::OutputMode::Append)
                 .build(),
            gale::cluster::parallelism("window", 2))
      // Key groups: a rebalance may change its task count, up to 128, keeping its windows.
      .maxParallelism(128)
      .fieldsGrouping("parse", {"word"});
  // No fsync: the tests kill processes, not the machine (the page cache keeps what was written).
  b.setBolt("sink", gale::FileSink(output, gale::FileFormat::Text, {.sync = false}), 1)
      .globalGrouping("window");
  gale::Topology topology = b.build();

  if (mode == "micro-batch") {
    gale::MicroBatch config{.trigger = gale::BatchTrigger::processingTime(
                                std::chrono::milliseconds(200)),
                            .checkpoint = checkpoint,
                            .syncCommits = false};
    if (auto rc = gale::cluster::runIfClusterWorker(topology, config)) return *rc;
    gale::runMicroBatch(topology, config).waitUntilDone();
    return 0;
  }
  gale::Continuous config;
  config.guarantee = gale::Guarantee::ExactlyOnce;
  config.checkpointInterval = std::chrono::milliseconds(200);
  config.checkpointDir = checkpoint;
  config.checkpointSync = false;
  if (auto rc = gale::cluster::runIfClusterWorker(topology, config)) return *rc;
  gale::runContinuous(topology, config).waitUntilDone();
}
