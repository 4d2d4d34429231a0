// A stream-static join (Spark's stream.join(staticDf, "user_id", "left_outer")): login events
// from a Kafka topic, each joined with its user's row of a table read once from a CSV file, and
// printed by the console sink (a table per batch in micro-batch mode). A login of a user the
// table lacks keeps its row with nulls; a malformed event is printed with the reason.
//
//   login_join [micro-batch|continuous] [--users file.csv] [--ui PORT [--ui-token T]]
//
// Kafka is librdkafka's mock cluster in process, filled with the logins below; with no --users
// the example writes its own users.csv (user_id,name,country,signup_date) first: nothing to set up.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "example_ui.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/console_sink.h"
#include "gale/connectors/csv.h"
#include "gale/connectors/from_json.h"
#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_source.h"
#include "gale/core/chain.h"
#include "gale/core/join.h"
#include "gale/topology/runtime.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* kUsersCsv =
    "user_id,name,country,signup_date\n"
    "1,Kari Nordmann,NO,2019-03-01\n"
    "2,Ola Nordmann,NO,2020-07-15\n"
    "3,\"Quispe, Rosa\",PE,2021-01-09\n"
    "4,Jean Dupont,FR,2022-11-30\n";

// user 99 is not in the table; the last event is malformed.
constexpr int kLoginUsers[] = {1, 3, 2, 1, 4, 99, 3, 1, 2, 4};
constexpr int64_t kFirstLoginMillis = 1'714'550'400'000;  // 2024-05-01 08:00:00 UTC

gale::Topology logins(const std::string& bootstrap, std::shared_ptr<gale::StaticTable> users) {
  gale::KafkaSource::Options in;
  in.bootstrapServers = bootstrap;
  in.subscribe = {"logins"};
  in.startingOffsets = "earliest";
  in.endingOffsets = "latest";  // a bounded job over what the topic holds now
  in.maxOffsetsPerTrigger = 4;  // micro-batch: a few batches
  in.consumerProperties = {{"fetch.wait.max.ms", "5"}};
  gale::TopologyBuilder b;
  b.setSpout("logins", std::make_shared<gale::KafkaSource>(in), 1);
  const gale::Fields event{{"user_id", gale::Type::Int64},
                           {"ip", gale::Type::String},
                           {"device", gale::Type::String}};
  b.setBolt("join",
            gale::chain(gale::FromJson({.field = "value", .schema = event, .keep = {"timestamp"}}),
                        gale::StaticJoin(users, "user_id",
                                         gale::Fields{"timestamp", "user_id", "ip", "device"},
                                         gale::JoinType::LeftOuter)),
            2)
      .shuffleGrouping("logins");
  b.setBolt("print",
            gale::ConsoleSink(gale::ConsoleSink::Options{.prefix = "logins: ", .numRows = 100}), 1)
      .globalGrouping("join");
  b.setBolt("print-bad",
            gale::ConsoleSink(gale::ConsoleSink::Options{.prefix = "bad event: ", .truncate = 0}),
            1)
      .globalGrouping("join", gale::FromJson::kErrorStream);
  return b.build();
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "micro-batch";
  std::string usersPath;
  CLI::App app{"login_join: login events from Kafka (in-process mock cluster) joined with a user "
               "table read from a CSV file",
               "login_join"};
  app.add_option("mode", mode, "micro-batch or continuous")
      ->capture_default_str()
      ->check(CLI::IsMember({"micro-batch", "continuous"}));
  app.add_option("--users", usersPath,
                 "the user table (CSV with a header: user_id,name,country; more columns ignored); "
                 "default: write and use login-join-out/users.csv")
      ->check(CLI::ExistingFile);
  gale::examples::UiFlags uiFlags;
  gale::examples::addUiOptions(app, uiFlags);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;

  const fs::path dir = "login-join-out";
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (usersPath.empty()) {
    usersPath = (dir / "users.csv").string();
    std::ofstream(usersPath) << kUsersCsv;
  }
  std::shared_ptr<gale::StaticTable> users;
  try {
    users = gale::readCsvTable(usersPath, {"user_id", gale::Type::Int64},
                               gale::Fields{{"name", gale::Type::String},
                                            {"country", gale::Type::String}});
  } catch (const std::exception& e) {
    std::cerr << "login_join: " << e.what() << "\n";
    return 1;
  }
  std::cout << "users: " << users->size() << " rows from " << usersPath << "\n";

  gale::KafkaMockCluster kafka(1);
  kafka.createTopic("logins", 1);
  int64_t millis = kFirstLoginMillis;
  for (size_t i = 0; i < std::size(kLoginUsers); ++i, millis += 60'000) {
    std::string json = "{\"user_id\":" + std::to_string(kLoginUsers[i]) + ",\"ip\":\"10.0.0." +
                       std::to_string(i + 1) + "\",\"device\":\"" +
                       (i % 3 == 0 ? "phone" : "laptop") + "\"}";
    kafka.produce("logins", 0, "", json, {}, millis);
  }
  kafka.produce("logins", 0, "", "{\"user_id\":\"seven\"}", {}, millis);
  kafka.flush();
  std::cout << "kafka (mock) at " << kafka.bootstraps() << ": " << std::size(kLoginUsers) + 1
            << " login events in 'logins'\n";

  gale::Topology topology = logins(kafka.bootstraps(), users);
  auto server = gale::examples::startUi(uiFlags);
  if (mode == "continuous") {
    auto job = gale::runContinuous(topology);
    gale::examples::UiAttachment shown(server.get(), job, "login_join");
    job.waitUntilDone(120s);
  } else {
    auto job = gale::runMicroBatch(topology,
                                   {.checkpoint = (dir / "chk").string(), .name = "login_join"});
    gale::examples::UiAttachment shown(server.get(), job);
    job.waitUntilDone();
  }
  gale::examples::keepUiUntilInterrupted(server.get());
  return 0;
}
