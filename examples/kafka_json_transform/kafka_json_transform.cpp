// JSON events (city, domain, event) from a Kafka topic, transformed, and written to an output
// topic and to JSON files at once: two jobs over the same input, each with its own sink and its
// own checkpoint (as Spark runs two queries). Malformed events are printed with the reason.
//
//   kafka_json_transform [micro-batch|continuous] [--bootstrap host:port]
//
// With no --bootstrap it starts librdkafka's mock cluster in process and fills the input topic
// itself: nothing to set up. With --bootstrap the topics "events", "events_out" and
// "gale_sink_markers" must exist and "events" holds the input.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "example_ui.h"

#include "gale/batch/microbatch.h"
#include "gale/connectors/console_sink.h"
#include "gale/connectors/file_sink.h"
#include "gale/connectors/from_json.h"
#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_sink.h"
#include "gale/connectors/kafka_source.h"
#include "gale/core/stateless.h"
#include "gale/topology/runtime.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr int kEvents = 1000;

// Kafka "events" -> from_json -> upper-case city, domain without "www." -> `sink`.
gale::Topology pipeline(const std::string& bootstrap, const gale::Bolt* kafkaOut,
                        const gale::Operator* fileOut) {
  gale::KafkaSource::Options in;
  in.bootstrapServers = bootstrap;
  in.subscribe = {"events"};
  in.startingOffsets = "earliest";
  in.endingOffsets = "latest";  // a bounded job: it ends after what is in the topic now
  in.consumerProperties = {{"fetch.wait.max.ms", "5"}};
  gale::TopologyBuilder b;
  b.setSpout("events", std::make_shared<gale::KafkaSource>(in), 1);
  b.setBolt("parse",
            gale::FromJson({.field = "value",
                            .schema = gale::Fields{gale::FieldSpec{"city", gale::Type::String},
                                                   gale::FieldSpec{"domain", gale::Type::String},
                                                   gale::FieldSpec{"event", gale::Type::String}},
                            .keep = {"timestamp"}}),
            2)
      .shuffleGrouping("events");
  const gale::Fields out{gale::FieldSpec{"city", gale::Type::String},
                         gale::FieldSpec{"domain", gale::Type::String},
                         gale::FieldSpec{"event", gale::Type::String},
                         gale::FieldSpec{"time", gale::Type::Timestamp}};
  b.setBolt("transform",
            gale::Map(out,
                      [](const gale::Tuple& t) {
                        std::string city = t.getString("city");
                        for (auto& c : city) c = static_cast<char>(std::toupper(c));
                        std::string domain = t.getString("domain");
                        if (domain.rfind("www.", 0) == 0) domain = domain.substr(4);
                        return gale::Values{city, domain, t.get("event"), t.get("timestamp")};
                      }),
            2)
      .shuffleGrouping("parse");
  // Exactly-once into Kafka needs a replayed tuple to reach the same sink task: fields grouping.
  if (kafkaOut) b.setBolt("out", *kafkaOut, 1).fieldsGrouping("transform", {"city"});
  if (fileOut) b.setBolt("out", *fileOut, 1).globalGrouping("transform");
  if (kafkaOut) {  // one of the two jobs reports the malformed events
    // Whole cells (no truncation): the reason is the point.
    b.setBolt("bad",
              gale::ConsoleSink(gale::ConsoleSink::Options{.prefix = "bad events: ", .truncate = 0}),
              1)
        .globalGrouping("parse", gale::FromJson::kErrorStream);
  }
  return b.build();
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "micro-batch";
  std::string bootstrap;
  CLI::App app{"kafka_json_transform: JSON events from a Kafka topic, transformed, written to an "
               "output topic and to JSON files at once; against an in-process mock cluster unless "
               "--bootstrap names a real one",
               "kafka_json_transform"};
  app.add_option("mode", mode, "micro-batch or continuous")
      ->capture_default_str()
      ->check(CLI::IsMember({"micro-batch", "continuous"}));
  app.add_option("--bootstrap", bootstrap, "a real cluster's bootstrap servers (host:port)");
  gale::examples::UiFlags uiFlags;
  gale::examples::addUiOptions(app, uiFlags);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;
  const bool continuous = mode == "continuous";
  std::optional<gale::KafkaMockCluster> mock;
  if (bootstrap.empty()) {
    mock.emplace(3);
    bootstrap = mock->bootstraps();
    mock->createTopic("events", 2);
    mock->createTopic("events_out", 2);
    mock->createTopic("gale_sink_markers", 1);
    const char* cities[] = {"oslo", "bergen", "tromsø", "paris", "lima"};
    const char* events[] = {"view", "click", "purchase"};
    for (int i = 0; i < kEvents; ++i) {
      std::string json = std::string("{\"city\":\"") + cities[i % 5] + "\",\"domain\":\"www.site" +
                         std::to_string(i % 7) + ".com\",\"event\":\"" + events[i % 3] + "\"}";
      mock->produce("events", i % 2, "", json);
      if (i % 400 == 0) mock->produce("events", i % 2, "", "{\"city\":\"oslo\",");  // malformed
    }
    mock->flush();
    std::cout << "mock cluster at " << bootstrap << ": " << kEvents << " events (and 3 malformed)\n";
  }

  const fs::path dir = "kafka-json-transform-out";
  fs::remove_all(dir);
  gale::KafkaSink::Options ko;
  ko.bootstrapServers = bootstrap;
  ko.topic = "events_out";
  ko.keyField = "city";
  ko.toJson = {"city", "domain", "event", "time"};
  ko.transactionalIdPrefix = "kafka-json-transform";
  gale::KafkaSink kafkaSink(ko);
  gale::FileSink fileSink((dir / "files").string(), gale::FileFormat::JsonLines);
  gale::Topology toKafka = pipeline(bootstrap, &kafkaSink, nullptr);
  gale::Topology toFiles = pipeline(bootstrap, nullptr, &fileSink);

  auto server = gale::examples::startUi(uiFlags);
  using gale::examples::UiAttachment;
  if (continuous) {
    auto a = gale::runContinuous(toKafka, gale::Continuous{});
    UiAttachment shownA(server.get(), a, "to kafka");
    auto b = gale::runContinuous(toFiles, gale::Continuous{});
    UiAttachment shownB(server.get(), b, "to files");
    a.waitUntilDone(120s);
    b.waitUntilDone(120s);
  } else {
    // Two jobs, two checkpoints: each sink's progress is its own.
    auto a = gale::runMicroBatch(toKafka, {.checkpoint = (dir / "chk-kafka").string()});
    UiAttachment shownA(server.get(), a);
    auto b = gale::runMicroBatch(toFiles, {.checkpoint = (dir / "chk-files").string()});
    UiAttachment shownB(server.get(), b);
    a.waitUntilDone();
    b.waitUntilDone();
  }

  if (mock) {
    auto out = mock->consumeAll("events_out", /*readCommitted=*/true);
    std::cout << "events_out: " << out.size() << " records (read_committed)\n";
    for (size_t i = 0; i < out.size() && i < 3; ++i) {
      std::cout << "  " << out[i].key << " -> " << out[i].value << "\n";
    }
  }
  size_t lines = 0;
  for (const auto& f : fs::recursive_directory_iterator(dir / "files")) {
    if (!f.is_regular_file() || f.path().filename().string().rfind("part-", 0) != 0) continue;
    std::ifstream in(f.path());
    for (std::string l; std::getline(in, l);) ++lines;
  }
  std::cout << "files: " << lines << " JSON lines under " << (dir / "files").string() << "\n"
            << std::flush;
  gale::examples::keepUiUntilInterrupted(server.get());
  return 0;
}
