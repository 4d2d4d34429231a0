// The REST API and /metrics of a running job, over real HTTP: shapes, values equal to the
// runtime's metrics, windows, the token, the loopback bind, and a hostile component name.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "api.h"
#include "checkpoint_dir_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/core/stateless.h"
#include "gale/ui/ui_server.h"
#include "http_test_util.h"
#include "ui_test_support.h"

namespace gale::ui {
namespace {

using namespace std::chrono_literals;
using namespace gale::ui::testing;
using nlohmann::json;

// A raw request, as `curl -X POST` sends it (no Content-Length); returns the status line.
std::string rawRequest(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  ::send(fd, request.data(), request.size(), 0);
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    reply.append(buf, static_cast<size_t>(n));
    if (reply.find("\r\n") != std::string::npos) break;
  }
  ::close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

TEST(UiApi, TheSummaryListsTheJobInStormsShape) {
  FinishedJob job;
  UiServer ui(job.rt, {.token = "t"}, "word count");
  json s = getJson(ui.port(), "/api/v1/topology/summary");
  ASSERT_EQ(s["topologies"].size(), 1u);
  const json& t = s["topologies"][0];
  EXPECT_EQ(t["id"], "word_count-1");
  EXPECT_EQ(t["name"], "word count");
  EXPECT_EQ(t["mode"], "continuous");
  EXPECT_EQ(t["status"], "FINISHED");
  EXPECT_EQ(t["tasksTotal"], 6);  // 2 + 2 + 1 + the acker
  EXPECT_EQ(t["componentsTotal"], 3);
  EXPECT_TRUE(t["uptime"].is_string());
  EXPECT_EQ(ui.jobIds(), std::vector<std::string>{"word_count-1"});
}

// What the API says for ComponentMetrics::fusedInto: the host's name, or null.
json fusedIntoOf(const ComponentMetrics& c) {
  return c.fusedInto.empty() ? json(nullptr) : json(c.fusedInto);
}

TEST(UiApi, TopologyAndComponentValuesEqualTheRuntimesMetrics) {
  FinishedJob job;
  UiServer ui(job.rt, {.token = "t"});
  TopologyMetrics m = job.rt.metrics();
  json t = getJson(ui.port(), "/api/v1/topology/topology-1");
  ASSERT_EQ(t["spouts"].size(), 1u);
  ASSERT_EQ(t["bolts"].size(), 2u);
  auto check = [&](const json& row, const TaskMetrics& want, bool spout) {
    EXPECT_EQ(row["emitted"], want.emitted);
    EXPECT_EQ(row["transferred"], want.transferred);
    EXPECT_EQ(row["acked"], want.acked);
    EXPECT_EQ(row["failed"], want.failed);
    EXPECT_EQ(row["errors"], want.errors);
    EXPECT_EQ(row["queueDepth"], want.queueDepth());
    EXPECT_DOUBLE_EQ(row["capacity"].get<double>(), want.capacity);
    EXPECT_DOUBLE_EQ(row["busyTimeMsPerSecond"].get<double>(), want.busyTimeMsPerSecond);
    EXPECT_DOUBLE_EQ(row["backPressuredTimeMsPerSecond"].get<double>(),
                     want.backPressuredTimeMsPerSecond);
    EXPECT_DOUBLE_EQ(row["idleTimeMsPerSecond"].get<double>(), want.idleTimeMsPerSecond);
    const Histogram& lat = spout ? want.completeLatency : want.executeLatency;
    const json& l = row[spout ? "completeLatency" : "executeLatency"];
    EXPECT_EQ(l["count"], lat.count());
    EXPECT_DOUBLE_EQ(l["p99"].get<double>(), static_cast<double>(lat.percentile(0.99)) / 1e6);
    EXPECT_DOUBLE_EQ(l["p999"].get<double>(), static_cast<double>(lat.percentile(0.999)) / 1e6);
    if (!spout) {
      EXPECT_EQ(row["executed"], want.executed);
    }
  };
  for (const json& row : t["bolts"])
    EXPECT_EQ(row["fusedInto"], fusedIntoOf(*m.find(row["boltId"].get<std::string>())));
  const json& spout = t["spouts"][0];
  EXPECT_EQ(spout["spoutId"], "numbers");
  EXPECT_EQ(spout["tasks"], 2);
  check(spout, m.find("numbers")->total(), true);
  EXPECT_EQ(spout["acked"], 600);  // every tree completed
  EXPECT_EQ(spout["completeLatency"]["count"], 600);
  check(t["bolts"][0], m.find("double")->total(), false);
  check(t["bolts"][1], m.find("sink")->total(), false);
  EXPECT_EQ(t["bolts"][1]["executed"], 600);
  EXPECT_EQ(t["bolts"][0]["inputs"][0]["grouping"], "fields");
  EXPECT_EQ(t["system"][0]["boltId"], "__acker");
  // Topology stats: emitted over every component, acked at the spouts.
  ASSERT_EQ(t["topologyStats"].size(), 2u);
  const json& all = t["topologyStats"][1];
  EXPECT_EQ(all["window"], ":all-time");
  uint64_t emitted = 0;
  for (const auto& c : m.components) emitted += c.total().emitted;
  EXPECT_EQ(all["emitted"], emitted);
  EXPECT_EQ(all["acked"], 600);
  // The graph: every component, every subscription with its grouping.
  EXPECT_EQ(t["graph"]["nodes"].size(), 3u);
  ASSERT_EQ(t["graph"]["edges"].size(), 2u);
  EXPECT_EQ(t["graph"]["edges"][0],
            json({{"from", "numbers"}, {"to", "double"}, {"stream", "default"},
                  {"grouping", "fields"}, {"fields", {"n"}}}));
  EXPECT_EQ(t["graph"]["edges"][1]["grouping"], "global");
  EXPECT_TRUE(t["batch"].is_null());

  // Per task, on the component page.
  json c = getJson(ui.port(), "/api/v1/topology/topology-1/component/double");
  EXPECT_EQ(c["componentType"], "bolt");
  ASSERT_EQ(c["executorStats"].size(), 2u);
  const ComponentMetrics& d = *m.find("double");
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(c["executorStats"][i]["task"], d.tasks[i].task);
    EXPECT_EQ(c["executorStats"][i]["executed"], d.tasks[i].executed);
    EXPECT_EQ(c["executorStats"][i]["emitted"], d.tasks[i].emitted);
  }
  EXPECT_EQ(c["inputStats"][0]["component"], "numbers");
  EXPECT_EQ(c["outputStats"][0]["fields"], json({"n"}));
  // A job younger than 10 minutes: its window is all of it.
  ASSERT_EQ(c["boltStats"].size(), 2u);
  EXPECT_EQ(c["boltStats"][0]["window"], "600");
  EXPECT_EQ(c["boltStats"][0]["executed"], c["boltStats"][1]["executed"]);
}

TEST(UiApi, TheTenMinuteWindowCountsOnlyWhatHappenedInIt) {
  ManualClock clock(Timestamp{1'000'000'000'000});
  auto gate = std::make_shared<std::atomic<bool>>(false);
  RunningTopology rt = runContinuous(pipeline(GatedSpout(100, 40, gate)), fast());
  // Every counter the window test reads has reached the first part before the UI samples it.
  ASSERT_TRUE(eventually([&] {
    TopologyMetrics m = rt.metrics();
    return m.find("sink")->total().executed == 200 && m.find("numbers")->total().acked == 200;
  }));
  UiServer ui(rt, {.token = "t", .sampleInterval = 0ms, .clock = &clock});  // samples 200 now
  clock.advance(601s);
  ui.sampleNow();  // still 200
  gate->store(true);
  rt.waitUntilDone();
  clock.advance(1s);  // the window now starts after the first sample: 200 .. 280
  json c = getJson(ui.port(), "/api/v1/topology/topology-1/component/sink");
  EXPECT_EQ(c["boltStats"][0]["executed"], 80);
  EXPECT_EQ(c["boltStats"][0]["windowPretty"], "10m 0s");
  EXPECT_EQ(c["boltStats"][1]["executed"], 280);
  json t = getJson(ui.port(), "/api/v1/topology/topology-1");
  EXPECT_EQ(t["topologyStats"][0]["acked"], 80);
  EXPECT_EQ(t["topologyStats"][1]["acked"], 280);
  EXPECT_EQ(t["uptimeSeconds"], 602);
}

TEST(UiApi, EveryPostWithoutTheRightTokenIs401AndChangesNothing) {
  auto gate = std::make_shared<std::atomic<bool>>(false);
  RunningTopology rt = runContinuous(pipeline(GatedSpout(10, 10, gate)), fast());
  UiServer ui(rt, {.token = "s3cret-token"});
  const std::string base = "/api/v1/topology/topology-1";
  EXPECT_EQ(post(ui.port(), base + "/deactivate"), 401);
  EXPECT_EQ(post(ui.port(), base + "/deactivate", "wrong-token!"), 401);   // same length
  EXPECT_EQ(post(ui.port(), base + "/deactivate", "s3cret-token-and-more"), 401);
  EXPECT_EQ(post(ui.port(), base + "/deactivate", "s3cret"), 401);         // a prefix
  EXPECT_EQ(post(ui.port(), base + "/kill/0"), 401);
  EXPECT_EQ(post(ui.port(), base + "/activate", "nope"), 401);
  EXPECT_EQ(post(ui.port(), "/api/v1/topology/nosuch/deactivate"), 401);  // nothing leaks
  EXPECT_EQ(post(ui.port(), "/anything/else"), 401);
  EXPECT_EQ(rawRequest(ui.port(), "POST " + base + "/deactivate HTTP/1.1\r\nHost: x\r\n"
                                   "Connection: close\r\n\r\n"),
            "HTTP/1.1 401 Unauthorized");
  EXPECT_TRUE(rt.active());
  EXPECT_FALSE(rt.done());

  EXPECT_EQ(post(ui.port(), base + "/deactivate", "s3cret-token"), 200);
  EXPECT_FALSE(rt.active());
  EXPECT_EQ(getJson(ui.port(), base)["status"], "INACTIVE");
  EXPECT_EQ(post(ui.port(), base + "/activate", "s3cret-token", true), 200);  // Bearer works too
  EXPECT_TRUE(rt.active());
  EXPECT_EQ(post(ui.port(), "/api/v1/topology/nosuch/deactivate", "s3cret-token"), 404);
  EXPECT_EQ(post(ui.port(), base + "/kill/abc", "s3cret-token"), 404);
  gate->store(true);
  rt.waitUntilDone();
}

TEST(UiApi, WithoutAConfiguredTokenEveryPostIsRefused) {
  FinishedJob job;
  UiServer ui(job.rt, {});
  EXPECT_EQ(post(ui.port(), "/api/v1/topology/topology-1/deactivate"), 401);
  EXPECT_EQ(post(ui.port(), "/api/v1/topology/topology-1/deactivate", "x"), 401);
}

TEST(UiApi, KillDeactivatesThenEndsTheJobAfterTheWait) {
  RunningTopology rt = runContinuous(pipeline(PacedSpout(200us)), fast());
  UiServer ui(rt, {.token = "t"});
  EXPECT_EQ(post(ui.port(), "/api/v1/topology/topology-1/kill/0", "t"), 200);
  EXPECT_TRUE(rt.waitUntilDone(60s)) << "the kill did not end the job";
  json t = getJson(ui.port(), "/api/v1/topology/topology-1");
  EXPECT_EQ(t["status"], "KILLED");
  // Graceful: every tree the spouts started completed.
  EXPECT_EQ(t["spouts"][0]["acked"], t["spouts"][0]["emitted"]);
  EXPECT_EQ(t["spouts"][0]["failed"], 0);
}

TEST(UiApi, AKillWithAWaitLeavesTheJobRunningDeactivatedUntilTheServerGoes) {
  RunningTopology rt = runContinuous(pipeline(PacedSpout(200us)), fast());
  {
    UiServer ui(rt, {.token = "t"});
    EXPECT_EQ(post(ui.port(), "/api/v1/topology/topology-1/kill/3600", "t"), 200);
    EXPECT_FALSE(rt.active());
    EXPECT_EQ(getJson(ui.port(), "/api/v1/topology/topology-1")["status"], "KILLED");
  }  // the pending kill is dropped with the server, which does not hang for an hour
  EXPECT_FALSE(rt.done());
  rt.kill();
}

std::string percentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%%%02X", c);
    out += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string(buf);
  }
  return out;
}

// /proc/net/tcp lists listening sockets with their address in hex (127.0.0.1 = 0100007F).
std::string listeningAddressOf(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  char want[8];
  std::snprintf(want, sizeof want, "%04X", port);
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string sl, local, remote, st;
    s >> sl >> local >> remote >> st;
    auto colon = local.find(':');
    if (colon != std::string::npos && local.substr(colon + 1) == want && st == "0A")
      return local.substr(0, colon);
  }
  return "";
}

TEST(UiApi, TheServerBindsLoopbackByDefaultAndSaysWhyWhenItCannotBind) {
  FinishedJob job;
  UiServer ui(job.rt, {});
  EXPECT_EQ(listeningAddressOf(ui.port()), "0100007F");
  EXPECT_EQ(ui.url(), "http://127.0.0.1:" + std::to_string(ui.port()) + "/");
  try {
    UiServer second(job.rt, {.port = ui.port()});
    FAIL() << "a second server bound a port in use";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(ui.port())),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(UiServer(job.rt, {.bind = "203.0.113.7"}), std::runtime_error);  // not ours
}

TEST(UiApi, AHostileComponentNameComesBackExactlyAsJsonNeverAsMarkup) {
  const std::string hostile = "<script>alert(\"x\")</script>\\";
  auto gate = std::make_shared<std::atomic<bool>>(true);
  RunningTopology rt = runContinuous(pipeline(GatedSpout(20, 0, gate), hostile), fast());
  rt.waitUntilDone();
  UiServer ui(rt, {}, "<img src=x onerror=alert(1)>");
  json s = getJson(ui.port(), "/api/v1/topology/summary");
  EXPECT_EQ(s["topologies"][0]["name"], "<img src=x onerror=alert(1)>");
  std::string id = s["topologies"][0]["id"];
  EXPECT_EQ(id, "_img_src_x_onerror_alert_1__-1");  // ids are URL-safe
  json t = getJson(ui.port(), "/api/v1/topology/" + id);
  EXPECT_EQ(t["bolts"][1]["boltId"], hostile);
  EXPECT_EQ(t["graph"]["edges"][1]["to"], hostile);
  json c = getJson(ui.port(), "/api/v1/topology/" + id + "/component/" +
                                  percentEncode(hostile));
  EXPECT_EQ(c["name"], hostile);
  EXPECT_EQ(c["boltStats"][1]["executed"], 40);
  // The pages only allow their own scripts.
  httplib::Client cli("127.0.0.1", ui.port());
  auto page = cli.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("script-src 'self'"),
            std::string::npos);
  EXPECT_EQ(page->body.find(hostile), std::string::npos);
  // Prometheus label values are escaped (quote and backslash).
  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("component=\"<script>alert(\\\"x\\\")</script>\\\\\""),
            std::string::npos);
}

TEST(UiApi, UnknownTopologiesAndComponentsAre404WithAMessage) {
  FinishedJob job;
  UiServer ui(job.rt, {});
  json e = getJson(ui.port(), "/api/v1/topology/nosuch", 404);
  EXPECT_EQ(e["errorMessage"], "no topology 'nosuch'");
  json c = getJson(ui.port(), "/api/v1/topology/topology-1/component/nosuch", 404);
  EXPECT_EQ(c["errorMessage"], "topology 'topology-1' has no component 'nosuch'");
  getJson(ui.port(), "/nothing/here", 404);
}

TEST(UiApi, ARemovedJobStaysVisibleWithItsLastMetricsAndTakesNoActions) {
  auto gate = std::make_shared<std::atomic<bool>>(true);
  auto rt = std::make_unique<RunningTopology>(
      runContinuous(pipeline(GatedSpout(50, 0, gate)), fast()));
  rt->waitUntilDone();
  UiServer ui({.token = "t"});
  std::string id = ui.add(*rt, "first");
  uint64_t executed = rt->metrics().find("sink")->total().executed;
  ui.remove(id);
  rt.reset();  // the UI must not touch it any more
  json t = getJson(ui.port(), "/api/v1/topology/" + id);
  EXPECT_EQ(t["status"], "FINISHED");
  EXPECT_EQ(t["bolts"][1]["executed"], executed);
  EXPECT_EQ(post(ui.port(), "/api/v1/topology/" + id + "/deactivate", "t"), 409);
}

// Fails (throws) on multiples of 7.
class Picky : public Bolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<Picky>(); }
  void execute(const Tuple& t, OutputCollector& out) override {
    int64_t n = t.getInt(size_t{0});
    if (n % 7 == 0) throw std::runtime_error("<b>no " + std::to_string(n) + "</b>");
    out.ack(t);
  }
};

TEST(UiApi, ComponentErrorsAreCountedWithTheLastMessage) {
  auto gate = std::make_shared<std::atomic<bool>>(true);
  TopologyBuilder b;
  b.setSpout("numbers", GatedSpout(70, 0, gate), 1);
  b.setBolt("picky", Picky{}, 1).shuffleGrouping("numbers");
  RunningTopology rt = runContinuous(b.build(), fast());
  rt.waitUntilDone();
  UiServer ui(rt, {});
  json t = getJson(ui.port(), "/api/v1/topology/topology-1");
  const json& picky = t["bolts"][0];
  EXPECT_EQ(picky["errors"], 10);
  EXPECT_EQ(picky["failed"], 10);
  EXPECT_EQ(picky["lastError"], "execute threw: <b>no 63</b>");
  EXPECT_TRUE(picky["lastErrorTime"].is_number());
  EXPECT_EQ(t["spouts"][0]["failed"], 10);
  EXPECT_EQ(t["spouts"][0]["lastError"], "");
  json c = getJson(ui.port(), "/api/v1/topology/topology-1/component/picky");
  EXPECT_EQ(c["executorStats"][0]["lastError"], "execute threw: <b>no 63</b>");
}

// ---- micro-batch

using MicroBatchUi = gale::testing::CheckpointDirTest;

Topology sentences(int64_t total) {
  SentenceSource::Options so;
  so.total = total;
  so.partitions = 2;
  TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<SentenceSource>(so), 2);
  b.setBolt("split", splitWords("sentence", "word"), 2).shuffleGrouping("sentences");
  return b.build();
}

TEST_F(MicroBatchUi, BatchesShowProgressRecentBatchesOffsetsAndTheExecutorsMetrics) {
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 250;
  cfg.name = "sentences";
  MicroBatchJob job = runMicroBatch(sentences(1000), cfg);
  ASSERT_TRUE(job.waitUntilDone(60s));
  UiServer ui(job, {.token = "t"});
  BatchProgress p = job.progress();
  json b = getJson(ui.port(), "/api/v1/topology/sentences-1/batches");
  EXPECT_EQ(b["batches"], p.batches);
  EXPECT_EQ(b["lastTxid"], 4);
  EXPECT_EQ(b["rows"], 1000);
  ASSERT_EQ(b["recent"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b["recent"][i]["txid"], p.recent[i].txid);
    EXPECT_EQ(b["recent"][i]["rows"], p.recent[i].records);
    EXPECT_DOUBLE_EQ(b["recent"][i]["commitMs"].get<double>(),
                     static_cast<double>(p.recent[i].commitNanos) / 1e6);
  }
  EXPECT_EQ(b["committedOffsets"]["sentences"], json({500, 500}));
  EXPECT_EQ(b["batchLatency"]["count"], 4);
  json t = getJson(ui.port(), "/api/v1/topology/sentences-1");
  EXPECT_EQ(t["mode"], "micro-batch");
  EXPECT_EQ(t["status"], "FINISHED");
  EXPECT_EQ(t["batch"]["rows"], 1000);
  EXPECT_EQ(t["graph"]["nodes"].size(), 2u);
  EXPECT_EQ(t["bolts"][0]["executed"], 1000);  // each sentence split once
  // Continuous mode has no batches.
  FinishedJob cont;
  std::string id = ui.add(cont.rt, "cont");
  EXPECT_TRUE(getJson(ui.port(), "/api/v1/topology/" + id + "/batches").is_null());
}

TEST_F(MicroBatchUi, TheCheckpointIsWhatGaleStateReadsFromTheDirectory) {
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(10ms);
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 10;
  cfg.name = "sentences";
  MicroBatchJob job = runMicroBatch(sentences(1'000'000), cfg);
  UiServer ui(job, {});
  const std::string path = "/api/v1/topology/sentences-1/checkpoint";
  // While it runs: read from the job's own store, the newest 20 commits.
  json live;
  ASSERT_TRUE(eventually([&] {
    live = getJson(ui.port(), path);
    return live["lastCommittedTxid"].get<uint64_t>() >= 25;
  }));
  EXPECT_EQ(live["directory"], dir.string());
  ASSERT_EQ(live["commits"].size(), 20u);
  EXPECT_EQ(live["commits"][19]["txid"], live["lastCommittedTxid"]);
  const json& offsets = live["commits"][19]["offsets"]["sentences"];
  EXPECT_EQ(offsets["0"].get<int64_t>() + offsets["1"].get<int64_t>(),
            10 * live["lastCommittedTxid"].get<int64_t>());  // 10 records a batch
  job.stop();
  ASSERT_TRUE(job.waitUntilDone(60s));

  json c = getJson(ui.port(), path);
  auto store = StateStore::inspect(dir.string());  // safe now: the job closed its environment
  EXPECT_EQ(c["jobId"], store->jobId());
  EXPECT_EQ(c["formatVersion"], store->formatVersion());
  EXPECT_EQ(c["createdMicros"], store->createdAt().micros);
  EXPECT_EQ(c["lastCommittedTxid"], store->lastCommittedTxid());
  std::vector<CommitRecord> log = store->commitLog(store->lastCommittedTxid() - 19);
  ASSERT_EQ(c["commits"].size(), log.size());
  for (size_t i = 0; i < log.size(); ++i) {
    const json& r = c["commits"][i];
    EXPECT_EQ(r["txid"], log[i].txid);
    EXPECT_EQ(r["timeMicros"], log[i].time.micros);
    EXPECT_EQ(r["stateUpdates"], log[i].stateUpdates);
    EXPECT_EQ(r["bytes"], log[i].bytes);
    for (const auto& [source, parts] : log[i].offsets)
      for (const auto& [p, off] : parts) EXPECT_EQ(r["offsets"][source][std::to_string(p)], off);
  }
  std::vector<StateInfo> states = store->states();
  ASSERT_EQ(c["states"].size(), states.size());
  for (size_t i = 0; i < states.size(); ++i) {
    EXPECT_EQ(c["states"][i]["name"], states[i].name);
    EXPECT_EQ(c["states"][i]["entries"], states[i].entries);
    EXPECT_EQ(c["states"][i]["bytes"], states[i].bytes);
  }
  for (const auto& [key, blob] : store->snapshots()) EXPECT_EQ(c["snapshots"][key], blob.size());
  EXPECT_EQ(c["sinks"].size(), store->sinks().size());
  // Continuous mode has no checkpoint; unknown jobs are 404.
  FinishedJob cont;
  std::string id = ui.add(cont.rt, "cont");
  EXPECT_TRUE(getJson(ui.port(), "/api/v1/topology/" + id + "/checkpoint").is_null());
  getJson(ui.port(), "/api/v1/topology/nosuch/checkpoint", 404);
}

TEST_F(MicroBatchUi, DeactivateAndActivatePauseAndResumeBatches) {
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(10ms);
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 10;
  MicroBatchJob job = runMicroBatch(sentences(1'000'000), cfg);
  UiServer ui(job, {.token = "t"});
  std::string base = "/api/v1/topology/" + ui.jobIds()[0];
  EXPECT_EQ(post(ui.port(), base + "/deactivate"), 401);
  EXPECT_EQ(post(ui.port(), base + "/deactivate", "t"), 200);
  EXPECT_TRUE(job.progress().paused);
  EXPECT_EQ(getJson(ui.port(), base)["status"], "INACTIVE");
  EXPECT_EQ(post(ui.port(), base + "/activate", "t"), 200);
  EXPECT_FALSE(job.progress().paused);
  uint64_t before = job.progress().batches;
  EXPECT_TRUE(eventually([&] { return job.progress().batches > before; }));
  EXPECT_EQ(post(ui.port(), base + "/kill/0", "t"), 200);
  EXPECT_TRUE(job.waitUntilDone(60s));
  EXPECT_EQ(getJson(ui.port(), base)["status"], "KILLED");
}

TEST(UiCompare, EachRunHasItsPercentilesAndAHistogramThatCountsEverySample) {
  UiServer ui({});
  EXPECT_EQ(getJson(ui.port(), "/api/v1/compare"), json({{"planned", 0}, {"runs", json::array()}}));
  ui.planComparison(3);
  ComparisonRun r{.pipeline = "wordcount", .mode = "micro-batch 1s", .load = "10K/s",
                  .latencyKind = "record", .throughput = 9990.5, .sustained = false};
  for (int64_t ns : {1'500, 40'000, 40'000, 3'000'000, 700'000'000}) r.latency.record(ns);
  ui.addComparisonRun(r);
  json c = getJson(ui.port(), "/api/v1/compare");
  EXPECT_EQ(c["planned"], 3);
  ASSERT_EQ(c["runs"].size(), 1u);
  const json& run = c["runs"][0];
  EXPECT_EQ(run["mode"], "micro-batch 1s");
  EXPECT_EQ(run["sustained"], false);
  EXPECT_DOUBLE_EQ(run["throughput"].get<double>(), 9990.5);
  EXPECT_EQ(run["latency"]["count"], 5);
  EXPECT_DOUBLE_EQ(run["latency"]["p99"].get<double>(),
                   static_cast<double>(r.latency.percentile(0.99)) / 1e6);
  // The same buckets for every run, 1 µs .. 100 s at 1-2-5 and one above; every sample counted
  // once, in the bucket of its bound.
  const json& h = run["histogram"];
  ASSERT_EQ(h.size(), 3u * 8 + 1 + 1);  // 8 decades from 1 µs, then 100 s and above it
  EXPECT_DOUBLE_EQ(h.front()["le"].get<double>(), 0.001);
  EXPECT_DOUBLE_EQ(h[h.size() - 2]["le"].get<double>(), 100'000.0);
  EXPECT_TRUE(h.back()["le"].is_null());
  std::map<double, uint64_t> counts;
  uint64_t total = 0;
  for (const auto& b : h) {
    total += b["count"].get<uint64_t>();
    if (!b["le"].is_null()) counts[b["le"].get<double>()] = b["count"];
  }
  EXPECT_EQ(total, 5u);
  EXPECT_EQ(counts[0.002], 1u);   // 1.5 µs
  EXPECT_EQ(counts[0.05], 2u);    // 40 µs twice
  EXPECT_EQ(counts[5.0], 1u);     // 3 ms
  EXPECT_EQ(counts[1000.0], 1u);  // 700 ms
  EXPECT_EQ(getJson(ui.port(), "/api/v1/topology/summary")["comparison"],
            json({{"planned", 3}, {"runs", 1}}));
}

// ---- Prometheus

std::string metricsOf(int port) {
  httplib::Client cli("127.0.0.1", port);
  auto res = cli.Get("/metrics");
  EXPECT_TRUE(res);
  if (!res) return "";
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  return res->body;
}

TEST(UiPrometheus, CountersGaugesAndHistogramsCarryTheRuntimesValues) {
  FinishedJob job;
  UiServer ui(job.rt, {});
  std::string text = metricsOf(ui.port());
  TopologyMetrics m = job.rt.metrics();
  const ComponentMetrics& sink = *m.find("sink");
  std::string l = "{topology=\"topology-1\",component=\"sink\",task=\"" +
                  std::to_string(sink.tasks[0].task) + "\"}";
  EXPECT_NE(text.find("# TYPE gale_tuples_executed_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("gale_tuples_executed_total" + l + " 600\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gale_tuples_acked_total" + l + " 600\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE gale_task_capacity_ratio gauge\n"), std::string::npos);
  char idle[64];
  std::snprintf(idle, sizeof idle, " %.9g\n", sink.tasks[0].idleTimeMsPerSecond / 1000);
  EXPECT_NE(text.find("gale_task_idle_ratio" + l + idle), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE gale_task_busy_ratio gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE gale_task_backpressured_ratio gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE gale_execute_latency_seconds histogram\n"), std::string::npos);
  // The +Inf bucket and _count are the histogram's count; buckets never decrease.
  const Histogram& h = sink.tasks[0].executeLatency;
  std::string inf = "gale_execute_latency_seconds_bucket{topology=\"topology-1\",component=\"sink\","
                    "task=\"" + std::to_string(sink.tasks[0].task) + "\",le=\"+Inf\"} " +
                    std::to_string(h.count()) + "\n";
  EXPECT_NE(text.find(inf), std::string::npos) << text;
  EXPECT_NE(text.find("gale_execute_latency_seconds_count" + l + " " + std::to_string(h.count())),
            std::string::npos);
  // Each family's HELP/TYPE appears once.
  size_t first = text.find("# TYPE gale_tuples_emitted_total");
  EXPECT_EQ(text.find("# TYPE gale_tuples_emitted_total", first + 1), std::string::npos);
}

TEST(UiApi, AFusedBoltNamesItsHostInTheComponentTopologyAndGraphDocuments) {
  auto gate = std::make_shared<std::atomic<bool>>(true);
  RunningTopology rt = runContinuous(fusedPipeline(GatedSpout(300, 0, gate)), fast());
  ASSERT_TRUE(rt.waitUntilDone(60s));
  UiServer ui(rt, {});
  TopologyMetrics m = rt.metrics();
  ASSERT_EQ(m.find("sink")->fusedInto, "double");  // the runtime fused it
  json t = getJson(ui.port(), "/api/v1/topology/topology-1");
  ASSERT_EQ(t["bolts"].size(), 2u);
  for (const json& row : t["bolts"])
    EXPECT_EQ(row["fusedInto"], fusedIntoOf(*m.find(row["boltId"].get<std::string>())));
  EXPECT_EQ(t["bolts"][1]["fusedInto"], "double");
  EXPECT_TRUE(t["bolts"][0]["fusedInto"].is_null());
  for (const json& n : t["graph"]["nodes"])
    EXPECT_EQ(n["fusedInto"], fusedIntoOf(*m.find(n["id"].get<std::string>()))) << n;
  json c = getJson(ui.port(), "/api/v1/topology/topology-1/component/sink");
  EXPECT_EQ(c["fusedInto"], "double");
  EXPECT_EQ(c["total"]["fusedInto"], "double");
  EXPECT_EQ(c["total"]["executed"], 600);  // 300 per spout task, executed in double's tasks
  EXPECT_TRUE(getJson(ui.port(), "/api/v1/topology/topology-1/component/double")["fusedInto"]
                  .is_null());
  std::string text = metricsOf(ui.port());
  EXPECT_NE(text.find("# TYPE gale_component_fused_into_info gauge\n"), std::string::npos);
  EXPECT_NE(text.find("gale_component_fused_into_info{topology=\"topology-1\",component=\"sink\","
                      "host=\"double\"} 1\n"),
            std::string::npos)
      << text;
  // Only fused components have the info metric.
  EXPECT_EQ(text.find("gale_component_fused_into_info{topology=\"topology-1\",component=\"double\""),
            std::string::npos);
}

TEST(UiPrometheus, PromtoolAcceptsTheExpositionOfBothModes) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "promtool not found: install Debian's 'prometheus' package to check /metrics";
  auto dir = std::filesystem::temp_directory_path() /
             ("gale-ui-prom-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  FinishedJob job;
  UiServer ui(job.rt, {}, "word \"count\"");
  auto gate = std::make_shared<std::atomic<bool>>(true);
  RunningTopology fused = runContinuous(fusedPipeline(GatedSpout(50, 0, gate)), fast());
  ASSERT_TRUE(fused.waitUntilDone(60s));
  ui.add(fused, "fused");
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = (dir / "chk").string();
  MicroBatchJob mb = runMicroBatch(sentences(300), cfg);
  ASSERT_TRUE(mb.waitUntilDone(60s));
  ui.add(mb);
  std::string text = metricsOf(ui.port());
  EXPECT_NE(text.find("gale_batches_committed_total{"), std::string::npos);
  EXPECT_NE(text.find("gale_batch_duration_seconds_bucket{"), std::string::npos);
  EXPECT_NE(text.find("gale_component_fused_into_info{"), std::string::npos);
  std::string file = (dir / "metrics.txt").string();
  {
    std::ofstream out(file);
    out << text;
  }
  std::string cmd = "promtool check metrics < " + file + " > " + file + ".out 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream lint(file + ".out");
  std::string problems((std::istreambuf_iterator<char>(lint)), {});
  EXPECT_EQ(rc, 0) << problems;
  EXPECT_EQ(problems, "") << "promtool's lint found problems";
  resetTerminated();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gale::ui
