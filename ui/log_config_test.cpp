// The change-log-level action: Storm's logconfig endpoint for gale's one logger. With the token it
// changes core/log's level at run time; without it, or with a bad body, nothing changes.
#include <gtest/gtest.h>

#include "api.h"
#include "gale/core/log.h"
#include "gale/ui/ui_server.h"
#include "http_test_util.h"
#include "scoped_log_capture_for_test.h"

namespace gale::ui {
namespace {

using namespace gale::ui::testing;

// Restores the process's level whatever a test did to it.
struct LogConfig : ::testing::Test {
  void SetUp() override { setLogLevel(LogLevel::Info); }
  void TearDown() override { setLogLevel(LogLevel::Info); }
};

std::string levelBody(const std::string& level) {
  return R"({"namedLoggerLevels": {"ROOT": {"target_level": ")" + level + R"("}}})";
}

TEST_F(LogConfig, WithTheTokenThePostChangesTheLevelAtRunTimeAndTheGetShowsIt) {
  FinishedJob job;
  UiServer ui(job.rt, {.token = "t"});
  const std::string path = "/api/v1/topology/topology-1/logconfig";
  EXPECT_EQ(getJson(ui.port(), path), logConfigJson(LogLevel::Info));
  EXPECT_EQ(post(ui.port(), path, "t", false, levelBody("DEBUG")), 200);
  EXPECT_EQ(logLevel(), LogLevel::Debug);
  EXPECT_EQ(getJson(ui.port(), path)["namedLoggerLevels"]["ROOT"]["target_level"], "DEBUG");
  EXPECT_EQ(getJson(ui.port(), "/api/v1/topology/topology-1")["logLevel"], "DEBUG");
  // The level takes effect: a debug line now reaches the sink, and after ERROR a warning does not.
  gale::testing::ScopedLogCapture captured;
  log(LogLevel::Debug, "a debug line");
  EXPECT_EQ(post(ui.port(), path, "t", true, levelBody("error")), 200);  // any case, Bearer too
  logWarn("a warning");
  EXPECT_EQ(logLevel(), LogLevel::Error);
  EXPECT_TRUE(captured.contains("a debug line"));
  EXPECT_FALSE(captured.contains("a warning"));
}

TEST_F(LogConfig, WithoutTheTokenThePostIs401AndTheLevelStays) {
  FinishedJob job;
  UiServer ui(job.rt, {.token = "t"});
  const std::string path = "/api/v1/topology/topology-1/logconfig";
  EXPECT_EQ(post(ui.port(), path, "", false, levelBody("DEBUG")), 401);
  EXPECT_EQ(post(ui.port(), path, "wrong", false, levelBody("DEBUG")), 401);
  EXPECT_EQ(logLevel(), LogLevel::Info);
  UiServer noToken(job.rt, {});
  EXPECT_EQ(post(noToken.port(), path, "t", false, levelBody("DEBUG")), 401);
  EXPECT_EQ(logLevel(), LogLevel::Info);
}

TEST_F(LogConfig, ABadBodyIs400WithTheReasonAndTheLevelStays) {
  FinishedJob job;
  UiServer ui(job.rt, {.token = "t"});
  const std::string path = "/api/v1/topology/topology-1/logconfig";
  for (const std::string& body :
       {std::string("not json"), std::string("{}"), std::string("[1]"), levelBody("TRACE"),
        levelBody(""), std::string(R"({"namedLoggerLevels": {"ROOT": {"target_level": 3}}})"),
        std::string(R"({"namedLoggerLevels": {"kafka": {"target_level": "DEBUG"}}})"),
        std::string(R"({"namedLoggerLevels": {"ROOT": {"target_level": "DEBUG", "timeout": 30}}})")})
    EXPECT_EQ(post(ui.port(), path, "t", false, body), 400) << body;
  EXPECT_EQ(logLevel(), LogLevel::Info);
  EXPECT_EQ(post(ui.port(), "/api/v1/topology/nosuch/logconfig", "t", false, levelBody("DEBUG")),
            404);
  EXPECT_EQ(logLevel(), LogLevel::Info);
}

TEST(LogConfigParse, NamesTheProblem) {
  std::string why;
  EXPECT_FALSE(parseLogConfig(R"({"namedLoggerLevels": {"ROOT": {"target_level": "TRACE"}}})", why));
  EXPECT_EQ(why, "unknown level 'TRACE': DEBUG, INFO, WARN or ERROR");
  EXPECT_FALSE(parseLogConfig(R"({"namedLoggerLevels": {"x": {}}})", why));
  EXPECT_EQ(why, "no logger 'x': gale has one, ROOT");
  EXPECT_EQ(parseLogConfig(R"({"namedLoggerLevels": {"ROOT": {"target_level": "Warn"}}})", why),
            LogLevel::Warn);
}

}  // namespace
}  // namespace gale::ui
