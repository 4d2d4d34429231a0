// The Yahoo Streaming Benchmark as its authors defined it: JSON ad events from the Kafka topic
// "ad-events" -> parse -> keep views -> project (ad_id, event_time) -> join ad_id to its campaign
// (the static 100 x 10 table) -> count per campaign in 10 s event-time tumbling windows -> Redis
// (campaign -> window -> seen_count, time_updated; see gale/connectors/redis_sink.h).
//
//   ysb_kafka_redis [micro-batch|continuous] [--events N] [--redis host:port] [--ui PORT]
//
// Kafka is librdkafka's mock cluster in process, filled with N events (event times 5 ms apart).
// With no --redis it starts its own redis-server on a free 127.0.0.1 port (only redis-server must
// be installed). At the end it reads the windows back from Redis the way YSB's data collection does
// and compares them with a direct count of the same events: it prints "equal" and exits 0, or the
// differences and exits 1.
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "example_ui.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/from_json.h"
#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_source.h"
#include "gale/connectors/redis_server.h"
#include "gale/connectors/redis_sink.h"
#include "gale/core/chain.h"
#include "gale/core/join.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"
#include "pipelines.h"
#include "ysb.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kStartMillis = 1'700'000'000'000;  // fixed event times: every run is the same
constexpr int64_t kStepMillis = 5;
constexpr int64_t kWindowMillis = 10'000;

gale::Topology ysb(const std::string& bootstrap, std::shared_ptr<const gale::compare::YsbData> data,
                   const gale::RedisSink& sink) {
  gale::KafkaSource::Options in;
  in.bootstrapServers = bootstrap;
  in.subscribe = {"ad-events"};
  in.startingOffsets = "earliest";
  in.endingOffsets = "latest";  // a bounded run over what the topic holds now
  in.consumerProperties = {{"fetch.wait.max.ms", "5"}};
  const gale::Fields events{{"user_id", gale::Type::String},    {"page_id", gale::Type::String},
                            {"ad_id", gale::Type::String},      {"ad_type", gale::Type::String},
                            {"event_type", gale::Type::String}, {"event_time", gale::Type::String},
                            {"ip_address", gale::Type::String}};
  gale::TopologyBuilder b;
  // The Kafka record timestamp is the event's event_time: the watermark needs no JSON parsing.
  b.setSpout("ad-events", std::make_shared<gale::KafkaSource>(in), 1).withWatermark("timestamp", 0s);
  b.setBolt("prepare",
            gale::chain(gale::FromJson({.field = "value", .schema = events}),
                        gale::compare::KeepEquals(events, "event_type", "view"),
                        gale::compare::YsbProject(),
                        gale::StaticJoin(data->campaignTable(), "ad_id",
                                         gale::Fields{{"ad_id", gale::Type::String},
                                                      {"event_time", gale::Type::Timestamp}})),
            2)
      .shuffleGrouping("ad-events");
  b.setBolt("window",
            *gale::windowed(gale::Tumbling(std::chrono::milliseconds(kWindowMillis)), gale::Count{})
                 .keyBy({"campaign_id"})
                 .eventTime("event_time")
                 .outputMode(gale::OutputMode::Append)
                 .build(),
            2)
      .fieldsGrouping("prepare", {"campaign_id"});
  // A replayed batch must reach the same sink task (its txid marker is per task): fields grouping.
  b.setBolt("redis", sink, 2).fieldsGrouping("window", {"campaign_id"});
  return b.build();
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "micro-batch";
  int64_t n = 20'000;
  std::string redis;
  CLI::App app{"ysb_kafka_redis: the Yahoo Streaming Benchmark pipeline, Kafka (in-process mock "
               "cluster) in, Redis out, checked against a direct count",
               "ysb_kafka_redis"};
  app.add_option("mode", mode, "micro-batch (exactly-once) or continuous (at-least-once)")
      ->capture_default_str()
      ->check(CLI::IsMember({"micro-batch", "continuous"}));
  app.add_option("--events", n, "ad events to produce")->capture_default_str()->check(
      CLI::Range(int64_t{1}, int64_t{10'000'000}));
  app.add_option("--redis", redis, "a running Redis (host:port); default: start redis-server");
  gale::examples::UiFlags uiFlags;
  gale::examples::addUiOptions(app, uiFlags);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;

  const fs::path dir = "ysb-kafka-redis-out";
  fs::remove_all(dir);
  std::optional<gale::RedisServer> server;
  gale::RedisSink::Options ro;
  // Every run starts afresh (a new checkpoint, txids from 1), so it is a new job to the sink: a
  // marker of its own, or a Redis that holds an earlier run's markers would skip its batches.
  ro.markerKey = "gale:ysb_kafka_redis:" + std::to_string(gale::SystemClock::instance().now().micros);
  try {
    if (redis.empty()) {
      server.emplace((dir / "redis").string());
      ro.port = server->port();
      std::cout << "redis-server started on 127.0.0.1:" << ro.port << "\n";
    } else {
      auto colon = redis.rfind(':');
      ro.host = redis.substr(0, colon);
      ro.port = colon == std::string::npos ? 6379 : std::stoi(redis.substr(colon + 1));
    }
  } catch (const std::exception& e) {
    std::cerr << "ysb_kafka_redis: " << e.what() << "\n";
    return 1;
  }

  auto data = std::make_shared<const gale::compare::YsbData>();
  gale::KafkaMockCluster kafka(1);
  kafka.createTopic("ad-events", 1);
  std::map<std::pair<std::string, int64_t>, int64_t> expected;  // the direct count
  for (int64_t g = 0; g < n; ++g) {
    int64_t t = kStartMillis + g * kStepMillis;
    kafka.produce("ad-events", 0, "", data->event(g, t), {}, t);
    if (data->isView(g)) ++expected[{data->campaignOf(g), t / kWindowMillis * kWindowMillis}];
  }
  kafka.flush();
  std::cout << "kafka (mock) at " << kafka.bootstraps() << ": " << n << " events in 'ad-events'\n";

  gale::RedisSink sink(ro);
  gale::Topology topology = ysb(kafka.bootstraps(), data, sink);
  auto ui = gale::examples::startUi(uiFlags);
  if (mode == "continuous") {
    auto job = gale::runContinuous(topology);
    gale::examples::UiAttachment shown(ui.get(), job, "ysb_kafka_redis");
    job.waitUntilDone(300s);
  } else {
    auto job = gale::runMicroBatch(
        topology, {.checkpoint = (dir / "chk").string(), .name = "ysb_kafka_redis"});
    gale::examples::UiAttachment shown(ui.get(), job);
    job.waitUntilDone();
  }

  auto windows = gale::readRedisWindows(ro.host, ro.port, data->campaignIds);
  int64_t differences = 0;
  for (const auto& [key, count] : expected) {
    auto it = windows.find(key);
    int64_t got = it == windows.end() ? 0 : it->second.seenCount;
    if (got != count && ++differences <= 5) {
      std::cout << "differs: campaign " << key.first << " window " << key.second << ": redis "
                << got << ", direct count " << count << "\n";
    }
  }
  std::cout << "redis: " << windows.size() << " windows of " << data->campaignIds.size()
            << " campaigns; " << sink.stats().rows << " rows written in " << sink.stats().batches
            << " batches\n";
  const bool equal = differences == 0 && windows.size() == expected.size();
  if (equal) {
    std::cout << "equal to the direct count of the same events\n";
  } else {
    std::cout << "NOT equal to the direct count (" << expected.size() << " windows)\n";
  }
  std::cout.flush();
  gale::examples::keepUiUntilInterrupted(ui.get());
  return equal ? 0 : 1;
}
