// RedisSink against a real redis-server that each test starts on a free 127.0.0.1 port in a
// temporary directory (skipped, saying so, when redis-server is not installed; CI installs it).
#include "gale/connectors/redis_sink.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "gale/batch/microbatch.h"
#include "gale/connectors/memory_stream.h"
#include "gale/connectors/redis_server.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"
#include "sink_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::NoEmit;
using testing::tupleOf;

// (campaign, window start in ms) -> count.
using Windows = std::map<std::pair<std::string, int64_t>, int64_t>;

class RedisSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RedisServer::binary().empty()) {
      GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server); "
                      "CI installs it";
    }
    dir_ = fs::temp_directory_path() / ("gale-redis-sink-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    server_ = std::make_unique<RedisServer>((dir_ / "redis").string());
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  RedisSink::Options options() const {
    RedisSink::Options o;
    o.port = server_->port();
    o.initialBackoff = 5ms;
    o.maxBackoff = 50ms;
    o.timeout = 60s;  // generous: a loaded machine restarts redis-server slowly
    return o;
  }

  // A command's reply as text (nil: "").
  std::string query(std::vector<std::string> args) {
    redisContext* c = redisConnect("127.0.0.1", server_->port());
    EXPECT_TRUE(c && !c->err);
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), nullptr));
    std::string s;
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) s = r->str;
    if (r && r->type == REDIS_REPLY_INTEGER) s = std::to_string(r->integer);
    if (r && r->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < r->elements; ++i) s += std::string(i ? "," : "") + r->element[i]->str;
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return s;
  }

  // What YSB's data collection reads, counts only.
  Windows readBack(const std::vector<std::string>& campaigns) {
    Windows w;
    for (const auto& [k, v] : readRedisWindows("127.0.0.1", server_->port(), campaigns)) {
      w[k] = v.seenCount;
    }
    return w;
  }

  fs::path dir_;
  std::unique_ptr<RedisServer> server_;
};

const SchemaPtr kRows = makeSchema("window", "default",
                                   Fields{{"campaign_id", Type::String},
                                          {"window_start", Type::Timestamp},
                                          {"count", Type::Int64}});

Tuple row(const std::string& campaign, int64_t windowMillis, int64_t count) {
  return tupleOf(kRows, {campaign, Timestamp{windowMillis * 1000}, count});
}

OperatorContext contextOf(int taskIndex, const Clock& clock) {
  OperatorContext c;
  c.component = "redis";
  c.taskIndex = taskIndex;
  c.clock = &clock;
  return c;
}

TEST_F(RedisSinkTest, WritesEachWindowAsTheYahooBenchmarkDoesWithTheTimeItWasWritten) {
  ManualClock clock(Timestamp{1'700'000'000'000'000});
  auto sink = RedisSink(options()).clone();
  sink->open(contextOf(0, clock));
  NoEmit out;
  sink->onTuple(row("c1", 10'000, 7), out);
  EXPECT_EQ(query({"HGET", "c1", "10000"}), "window:c1:10000");
  EXPECT_EQ(query({"HGET", "c1", "windows"}), "windows:c1");
  EXPECT_EQ(query({"LRANGE", "windows:c1", "0", "-1"}), "10000");
  EXPECT_EQ(query({"HGET", "window:c1:10000", "seen_count"}), "7");
  EXPECT_EQ(query({"HGET", "window:c1:10000", "time_updated"}), "1700000000000");
  // An update of the same window (Update mode, or a replayed row) sets, never adds, and does not
  // list the window twice.
  clock.advance(5ms);
  sink->onTuple(row("c1", 10'000, 9), out);
  EXPECT_EQ(query({"HGET", "window:c1:10000", "seen_count"}), "9");
  EXPECT_EQ(query({"HGET", "window:c1:10000", "time_updated"}), "1700000000005");
  EXPECT_EQ(query({"LRANGE", "windows:c1", "0", "-1"}), "10000");
}

TEST_F(RedisSinkTest, AReplayedTxidChangesNothingWhileANewTxidIsWritten) {
  ManualClock clock(Timestamp{1'000'000'000});
  RedisSink proto(options());
  auto sink = proto.clone();
  sink->open(contextOf(0, clock));
  NoEmit out;
  sink->onBatchBegin(1);
  sink->onTuple(row("c1", 0, 3), out);
  sink->onTuple(row("c2", 0, 4), out);
  EXPECT_EQ(query({"EXISTS", "c1"}), "0") << "a batch is written at its end";
  sink->onBatchEnd(1, out);
  EXPECT_EQ(query({"HGET", "window:c1:0", "seen_count"}), "3");
  EXPECT_EQ(query({"HGET", "gale:redis_sink", "0"}), "1");

  // The job crashed after the Redis write and before its commit: batch 1 runs again (in a new
  // sink, as after a restart) — even with different counts, nothing changes.
  clock.advance(1s);
  auto restarted = proto.clone();
  restarted->open(contextOf(0, clock));
  restarted->onBatchBegin(1);
  restarted->onTuple(row("c1", 0, 30), out);
  restarted->onTuple(row("c3", 0, 1), out);
  restarted->onBatchEnd(1, out);
  EXPECT_EQ(query({"HGET", "window:c1:0", "seen_count"}), "3");
  EXPECT_EQ(query({"HGET", "window:c1:0", "time_updated"}), "1000000");
  EXPECT_EQ(query({"EXISTS", "c3"}), "0");
  EXPECT_EQ(proto.stats().skippedBatches, 1u);

  restarted->onBatchBegin(2);
  restarted->onTuple(row("c1", 0, 5), out);
  restarted->onBatchEnd(2, out);
  EXPECT_EQ(query({"HGET", "window:c1:0", "seen_count"}), "5");
  EXPECT_EQ(query({"HGET", "window:c1:0", "time_updated"}), "1001000");
  EXPECT_EQ(query({"HGET", "gale:redis_sink", "0"}), "2");

  // Another task's marker is its own: its txid 1 is written.
  auto other = proto.clone();
  other->open(contextOf(1, clock));
  other->onBatchBegin(1);
  other->onTuple(row("c9", 0, 2), out);
  other->onBatchEnd(1, out);
  EXPECT_EQ(query({"HGET", "window:c9:0", "seen_count"}), "2");
  EXPECT_EQ(proto.stats().batches, 3u);
  EXPECT_EQ(proto.stats().rows, 4u);
}

TEST_F(RedisSinkTest, AServerRestartIsRetriedWithBackoffAndLosesNothing) {
  ManualClock clock;
  RedisSink proto(options());
  auto sink = proto.clone();
  sink->open(contextOf(0, clock));
  NoEmit out;
  sink->onBatchBegin(1);
  sink->onTuple(row("c1", 0, 1), out);
  sink->onBatchEnd(1, out);

  // Restarted between writes: the sink's connection is dead; it reconnects.
  server_->kill();
  server_->start();
  sink->onBatchBegin(2);
  sink->onTuple(row("c2", 0, 2), out);
  sink->onBatchEnd(2, out);
  EXPECT_GE(proto.stats().reconnects, 1u);

  // Down during a write: the write waits, retrying, until the server is back.
  server_->kill();
  std::thread restarter([&] {
    for (int i = 0; i < 60'000 && proto.stats().connectionErrors < 3; ++i) {
      std::this_thread::sleep_for(1ms);  // waiting for a condition, not for time
    }
    server_->start();
  });
  sink->onBatchBegin(3);
  sink->onTuple(row("c3", 0, 3), out);
  sink->onBatchEnd(3, out);
  restarter.join();
  EXPECT_GE(proto.stats().connectionErrors, 3u);
  EXPECT_NE(proto.lastError().find("127.0.0.1:" + std::to_string(server_->port())),
            std::string::npos)
      << proto.lastError();
  EXPECT_EQ(readBack({"c1", "c2", "c3"}),
            (Windows{{{"c1", 0}, 1}, {{"c2", 0}, 2}, {{"c3", 0}, 3}}));
  EXPECT_EQ(query({"HGET", "gale:redis_sink", "0"}), "3");
}

TEST_F(RedisSinkTest, AServerThatStaysDownFailsTheWriteNamingIt) {
  RedisSink::Options o = options();
  o.timeout = 100ms;
  auto sink = RedisSink(o).clone();
  ManualClock clock;
  sink->open(contextOf(0, clock));
  server_->kill();
  NoEmit out;
  try {
    sink->onTuple(row("c1", 0, 1), out);
    FAIL() << "the write succeeded with no server";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("gave up writing to Redis"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(o.port)), std::string::npos)
        << e.what();
  }
}

TEST(RedisSinkOptions, BadOptionsAndNullKeysAreRejectedWithTheirName) {
  RedisSink::Options o;
  o.port = 0;
  EXPECT_THROW(RedisSink{o}, std::invalid_argument);
  o = {};
  o.markerKey = "";
  EXPECT_THROW(RedisSink{o}, std::invalid_argument);
  o = {};
  o.maxBackoff = 1ms;
  EXPECT_THROW(RedisSink{o}, std::invalid_argument);
  auto sink = RedisSink(RedisSink::Options{}).clone();
  ManualClock clock;
  sink->open(contextOf(0, clock));
  NoEmit out;
  try {
    sink->onTuple(tupleOf(kRows, {Value{}, Timestamp{0}, int64_t{1}}), out);
    FAIL() << "a null key was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("campaign_id"), std::string::npos) << e.what();
  }
}

// ---- A job: events -> count per campaign in 10 s tumbling windows -> Redis ----

const Fields kEvents{{"campaign_id", Type::String}, {"ts", Type::Timestamp}};

std::vector<Values> events(int from, int to) {
  std::vector<Values> v;
  for (int g = from; g < to; ++g) {
    v.push_back({"campaign-" + std::to_string(g * 7 % 5), Timestamp{int64_t{g} * 97'000}});
  }
  return v;
}

Windows oracle(int n) {
  Windows w;
  for (int g = 0; g < n; ++g) {
    ++w[{"campaign-" + std::to_string(g * 7 % 5), int64_t{g} * 97 / 10'000 * 10'000}];
  }
  return w;
}

const std::vector<std::string> kCampaigns = {"campaign-0", "campaign-1", "campaign-2",
                                             "campaign-3", "campaign-4"};

Topology countsInto(std::shared_ptr<Source> source, const RedisSink& sink) {
  TopologyBuilder b;
  b.setSpout("events", std::move(source)).withWatermark("ts", 0s);
  b.setBolt("window", *windowed(Tumbling(10s), Count{}).keyBy({"campaign_id"}).eventTime("ts")
                           .outputMode(OutputMode::Append).build(), 2)
      .fieldsGrouping("events", {"campaign_id"});
  b.setBolt("redis", sink, 2).fieldsGrouping("window", {"campaign_id"});
  return b.build();
}

TEST_F(RedisSinkTest, AJobWritesTheSameWindowsAsADirectCountInBothModes) {
  for (const char* mode : {"continuous", "micro-batch"}) {
    SCOPED_TRACE(mode);
    query({"FLUSHALL"});
    auto source = std::make_shared<MemoryStream>("events", kEvents);
    source->addData(events(0, 2000));
    source->finish();
    RedisSink sink(options());
    Topology t = countsInto(source, sink);
    if (std::string(mode) == "continuous") {
      ASSERT_TRUE(runContinuous(t).waitUntilDone(120s));
    } else {
      auto job = runMicroBatch(t, {.checkpoint = (dir_ / "chk").string()});
      ASSERT_TRUE(job.waitUntilDone(120s));
    }
    EXPECT_EQ(readBack(kCampaigns), oracle(2000));
  }
}

TEST_F(RedisSinkTest, AMicroBatchJobSurvivesARedisRestartMidRunWithExactResults) {
  auto source = std::make_shared<MemoryStream>("events", kEvents);
  RedisSink sink(options());
  auto job = runMicroBatch(countsInto(source, sink), {.checkpoint = (dir_ / "chk").string()});
  source->addData(events(0, 600));
  job.processAllAvailable();
  source->addData(events(600, 1200));
  job.processAllAvailable();
  ASSERT_GT(sink.stats().rows, 0u) << "windows were written before the restart";

  server_->kill();
  std::atomic<bool> restarted{false};
  std::thread restarter([&] {
    for (int i = 0; i < 60'000 && sink.stats().connectionErrors < 1; ++i) {
      std::this_thread::sleep_for(1ms);  // waiting for a condition, not for time
    }
    server_->start();
    restarted = true;
  });
  source->addData(events(1200, 2000));
  source->finish();
  bool done = job.waitUntilDone(120s);
  restarter.join();
  ASSERT_TRUE(done);
  EXPECT_TRUE(restarted);
  EXPECT_GE(sink.stats().connectionErrors, 1u);
  EXPECT_EQ(readBack(kCampaigns), oracle(2000));
}

TEST_F(RedisSinkTest, AContinuousJobSurvivesARedisRestartMidRunAtLeastOnce) {
  auto source = std::make_shared<MemoryStream>("events", kEvents);
  RedisSink sink(options());
  auto job = runContinuous(countsInto(source, sink));
  source->addData(events(0, 1200));
  for (int i = 0; i < 60'000 && sink.stats().rows == 0; ++i) {
    std::this_thread::sleep_for(1ms);  // waiting for a condition, not for time
  }
  ASSERT_GT(sink.stats().rows, 0u) << "windows were written before the restart";

  server_->kill();
  std::thread restarter([&] {
    for (int i = 0; i < 60'000 && sink.stats().connectionErrors < 1; ++i) {
      std::this_thread::sleep_for(1ms);
    }
    server_->start();
  });
  source->addData(events(1200, 2000));
  source->finish();
  bool done = job.waitUntilDone(120s);
  restarter.join();
  ASSERT_TRUE(done);
  EXPECT_GE(sink.stats().connectionErrors, 1u);
  EXPECT_EQ(readBack(kCampaigns), oracle(2000));
}

}  // namespace
}  // namespace gale
