// Point-of-sale records (product_id, amount, create_date) from a Kafka topic, three queries over
// them in one job, each printed by the console sink (a table per batch in micro-batch mode):
//
//   total     the total amount per product (Spark: groupBy("product_id").agg(sum("amount")),
//             complete output mode: every batch prints the whole table so far)
//   tumbling  the same per 5-minute tumbling window of create_date
//   sliding   the same per 10-minute window sliding by 5 minutes
//
// with a 10-minute watermark: a window is final, and printed once (append mode), when the
// watermark passes its end. The producer sets each Kafka record's timestamp to its create_date
// (as a Kafka producer's CreateTime), so the source's watermark follows create_date without
// parsing JSON; the windows themselves use the parsed create_date. A record whose create_date is
// not "YYYY-MM-DD HH:MM:SS" goes to the stream "bad_dates" and is printed with the reason.
//
//   pos_sales [micro-batch|continuous] [--ui PORT [--ui-token T]]
//
// Kafka is librdkafka's mock cluster in process, filled with the records below: nothing to set up.
#include <ctime>
#include <filesystem>
#include <iostream>
#include <string>

#include "example_ui.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/console_sink.h"
#include "gale/connectors/from_json.h"
#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_source.h"
#include "gale/core/chain.h"
#include "gale/core/stateless.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"

using namespace std::chrono_literals;

namespace {

// Seconds since the epoch of "YYYY-MM-DD HH:MM:SS" (UTC), or -1 when the text is not one.
int64_t parseDate(const std::string& s) {
  tm t{};
  char rest = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d %2d:%2d:%2d%c", &t.tm_year, &t.tm_mon, &t.tm_mday,
                  &t.tm_hour, &t.tm_min, &t.tm_sec, &rest) != 6 ||
      t.tm_mon < 1 || t.tm_mon > 12 || t.tm_mday < 1 || t.tm_mday > 31 || t.tm_hour > 23 ||
      t.tm_min > 59 || t.tm_sec > 60) {
    return -1;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return timegm(&t);
}

// (product_id, amount, create_date text) -> (product_id, amount, create_date timestamp); a bad
// date to the stream "bad_dates" as (create_date, reason).
class ParseDate final : public gale::Operator {
 public:
  void declareOutputFields(gale::OutputFieldsDeclarer& d) const override {
    d.declare(gale::Fields{{"product_id", gale::Type::String},
                           {"amount", gale::Type::Double},
                           {"create_date", gale::Type::Timestamp}});
    d.declareStream("bad_dates", gale::Fields{{"create_date", gale::Type::Any},
                                           {"reason", gale::Type::String}});
  }
  std::unique_ptr<gale::Operator> clone() const override { return std::make_unique<ParseDate>(); }
  void onTuple(const gale::Tuple& t, gale::Emitter& out) override {
    const gale::Value& date = t.get("create_date");
    int64_t secs = -1;
    if (auto* s = std::get_if<std::string>(&date)) secs = parseDate(*s);
    if (secs < 0) {
      out.emit("bad_dates", {date, std::string("create_date is not YYYY-MM-DD HH:MM:SS (UTC)")});
      return;
    }
    out.emit({t.get("product_id"), t.get("amount"), gale::Timestamp{secs * 1'000'000}});
  }
};

struct Sale {
  const char* product;
  double amount;
  const char* date;
};
// 2024-05-01, UTC. The last one is malformed on purpose.
const Sale kSales[] = {
    {"p1", 10.0, "2024-05-01 10:01:00"},  {"p2", 20.0, "2024-05-01 10:02:00"},
    {"p1", 5.5, "2024-05-01 10:04:00"},   {"p3", 7.25, "2024-05-01 10:06:00"},
    {"p2", 2.5, "2024-05-01 10:07:30"},   {"p1", 4.5, "2024-05-01 10:09:00"},
    {"p3", 12.75, "2024-05-01 10:11:00"}, {"p2", 30.0, "2024-05-01 10:13:00"},
    {"p1", 1.0, "2024-05-01 10:14:59"},   {"p3", 3.0, "2024-05-01 10:16:00"},
    {"p1", 9.0, "2024-05-01 10:21:00"},   {"p2", 0.5, "2024-05-01 10:24:00"},
    {"p2", 1.0, "yesterday"},
};

gale::Topology sales(const std::string& bootstrap) {
  gale::KafkaSource::Options in;
  in.bootstrapServers = bootstrap;
  in.subscribe = {"pos"};
  in.startingOffsets = "earliest";
  in.endingOffsets = "latest";  // a bounded job over what the topic holds now
  in.maxOffsetsPerTrigger = 4;  // micro-batch: several batches, so the tables evolve
  in.consumerProperties = {{"fetch.wait.max.ms", "5"}};
  gale::TopologyBuilder b;
  b.setSpout("pos", std::make_shared<gale::KafkaSource>(in), 1).withWatermark("timestamp", 10min);
  b.setBolt("parse",
            gale::chain(gale::FromJson({.field = "value",
                                        .schema = gale::Fields{{"product_id", gale::Type::String},
                                                               {"amount", gale::Type::Double},
                                                               {"create_date", gale::Type::String}}}),
                        ParseDate()),
            1)
      .shuffleGrouping("pos");
  auto sumPerProduct = [](gale::WindowKind w, gale::OutputMode mode) {
    return gale::windowed(w, gale::Sum{"amount"})
        .keyBy({"product_id"})
        .eventTime("create_date")
        .outputMode(mode)
        .build();
  };
  const gale::ConsoleSink::Options all{.numRows = 100};
  b.setBolt("total",
            gale::chain(*sumPerProduct(gale::GlobalWindow(), gale::OutputMode::Complete),
                        gale::Select({"product_id", "sum_amount"})),
            1)
      .fieldsGrouping("parse", {"product_id"});
  b.setBolt("tumbling", *sumPerProduct(gale::Tumbling(5min), gale::OutputMode::Append), 1)
      .fieldsGrouping("parse", {"product_id"});
  b.setBolt("sliding", *sumPerProduct(gale::Sliding(10min, 5min), gale::OutputMode::Append), 1)
      .fieldsGrouping("parse", {"product_id"});
  for (const char* query : {"total", "tumbling", "sliding"}) {
    auto o = all;
    o.prefix = std::string(query) + ": ";
    b.setBolt(std::string("print-") + query, gale::ConsoleSink(o), 1).globalGrouping(query);
  }
  b.setBolt("print-errors", gale::ConsoleSink(gale::ConsoleSink::Options{.prefix = "bad record: ",
                                                                         .truncate = 0}),
            1)
      .globalGrouping("parse", "bad_dates");
  b.setBolt("print-bad-json",
            gale::ConsoleSink(gale::ConsoleSink::Options{.prefix = "bad JSON: ", .truncate = 0}), 1)
      .globalGrouping("parse", gale::FromJson::kErrorStream);
  return b.build();
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "micro-batch";
  CLI::App app{"pos_sales: total amount per product, and per 5-minute tumbling and 10/5-minute "
               "sliding windows with a 10-minute watermark, from a Kafka topic (in-process mock "
               "cluster)",
               "pos_sales"};
  app.add_option("mode", mode, "micro-batch or continuous")
      ->capture_default_str()
      ->check(CLI::IsMember({"micro-batch", "continuous"}));
  gale::examples::UiFlags uiFlags;
  gale::examples::addUiOptions(app, uiFlags);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;

  gale::KafkaMockCluster kafka(1);
  kafka.createTopic("pos", 1);
  int64_t sentMillis = 0;  // the record timestamp: create_date, or for a bad one the last good
  for (const Sale& s : kSales) {
    std::string json = std::string("{\"product_id\":\"") + s.product +
                       "\",\"amount\":" + std::to_string(s.amount) + ",\"create_date\":\"" +
                       s.date + "\"}";
    if (int64_t secs = parseDate(s.date); secs >= 0) sentMillis = secs * 1000;
    kafka.produce("pos", 0, s.product, json, {}, sentMillis);
  }
  kafka.flush();
  std::cout << "kafka (mock) at " << kafka.bootstraps() << ": " << std::size(kSales)
            << " POS records in 'pos'\n";

  gale::Topology topology = sales(kafka.bootstraps());
  auto server = gale::examples::startUi(uiFlags);
  if (mode == "continuous") {
    auto job = gale::runContinuous(topology);
    gale::examples::UiAttachment shown(server.get(), job, "pos_sales");
    job.waitUntilDone(120s);
  } else {
    std::filesystem::remove_all("pos-sales-chk");
    auto job = gale::runMicroBatch(topology, {.checkpoint = "pos-sales-chk", .name = "pos_sales"});
    gale::examples::UiAttachment shown(server.get(), job);
    job.waitUntilDone();
  }
  gale::examples::keepUiUntilInterrupted(server.get());
  return 0;
}
