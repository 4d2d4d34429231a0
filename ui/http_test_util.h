// Helpers of the UI's HTTP tests: GET a JSON document, POST with or without the token, and a
// small finished job whose metrics no longer move.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "gale/topology/runtime.h"
#include "ui_test_support.h"

namespace gale::ui::testing {

using nlohmann::json;
using namespace std::chrono_literals;

inline Continuous fast() {
  Continuous c;
  c.metricsInterval = 10ms;
  return c;
}

inline json getJson(int port, const std::string& path, int expectStatus = 200) {
  httplib::Client cli("127.0.0.1", port);
  auto res = cli.Get(path.c_str());
  EXPECT_TRUE(res) << path;
  if (!res) return nullptr;
  EXPECT_EQ(res->status, expectStatus) << path << ": " << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  return json::parse(res->body);
}

// POSTs `body` (JSON when not empty) with the token in X-Gale-Token (or as a Bearer token);
// returns the status, -1 when there is no answer.
inline int post(int port, const std::string& path, const std::string& token = "",
                bool bearer = false, const std::string& body = "") {
  httplib::Client cli("127.0.0.1", port);
  httplib::Headers h;
  if (!token.empty()) {
    if (bearer) {
      h.emplace("Authorization", "Bearer " + token);
    } else {
      h.emplace("X-Gale-Token", token);
    }
  }
  auto res = cli.Post(path.c_str(), h, body, body.empty() ? "text/plain" : "application/json");
  return res ? res->status : -1;
}

// The job of most tests: 2 x 300 numbers through two bolts, finished, so its metrics are final.
struct FinishedJob {
  std::shared_ptr<std::atomic<bool>> gate = std::make_shared<std::atomic<bool>>(true);
  RunningTopology rt = runContinuous(pipeline(GatedSpout(300, 0, gate)), fast());
  FinishedJob() { rt.waitUntilDone(); }
};

}  // namespace gale::ui::testing
