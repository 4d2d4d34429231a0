// The pages in a real browser: headless Chromium loads the UI of a running job, runs its
// scripts, and the test reads the rendered DOM (--dump-dom): every component is in the graph and
// the table, counters move between two loads, a hostile name renders as text, the micro-batch
// page shows its batches. A screenshot is written for docs/ui.md. Skipped where Chromium is
// missing (Debian: apt-get install chromium).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "checkpoint_dir_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/core/stateless.h"
#include "gale/ui/ui_server.h"
#include "ui_test_support.h"

#ifndef GALE_UI_SCREENSHOT
#define GALE_UI_SCREENSHOT "ui-screenshot.png"
#endif

namespace gale::ui {
namespace {

using namespace std::chrono_literals;
using namespace gale::ui::testing;
namespace fs = std::filesystem;

std::string findChromium() {
  if (const char* env = std::getenv("GALE_CHROMIUM")) return env;
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return name;
  }
  return "";
}

class Browser : public gale::testing::CheckpointDirTest {
 protected:
  void SetUp() override {
    chromium = findChromium();
    if (chromium.empty())
      GTEST_SKIP() << "Chromium not found: install Debian's 'chromium' package (or set "
                      "GALE_CHROMIUM) to run the browser tests";
    CheckpointDirTest::SetUp();
    fs::create_directories(dir);
  }

  // Runs headless Chromium on `url` with `extra` flags; returns its stdout (the DOM for
  // --dump-dom). A fresh profile each time; every background service off, so the browser
  // talks to nothing but the UI. --virtual-time-budget lets the page's timers (its one-second
  // refresh) run, pausing while its fetches are in flight.
  std::string chrome(const std::string& url, const std::string& extra) {
    fs::path profile = dir / ("profile-" + std::to_string(++runs));
    std::string cmd = "timeout 180 " + chromium +
                      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                      " --disable-background-networking --disable-component-update"
                      " --disable-sync --disable-extensions --disable-dev-shm-usage"
                      " --user-data-dir=" + profile.string() +
                      " --virtual-time-budget=4000 " + extra + " '" + url + "' 2>" +
                      (dir / "chromium.log").string();
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int rc = ::pclose(p);
    if (rc != 0) {
      std::ifstream log(dir / "chromium.log");
      std::string text((std::istreambuf_iterator<char>(log)), {});
      ADD_FAILURE() << "chromium exited with " << rc << ": " << text.substr(0, 2000);
    }
    return out;
  }
  std::string dom(const std::string& url) {
    return chrome(url, "--dump-dom --enable-logging=stderr --v=0");
  }
  // What the browser said (console messages included), for failure messages.
  std::string log() {
    std::ifstream in(dir / "chromium.log");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

  std::string chromium;
  int runs = 0;
};

// The page's status line (it says why it could not render).
std::string statusOf(const std::string& dom) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex(R"(<span id="status"[^>]*>([^<]*)<)"))) return m[1];
  return dom.substr(0, 2000);
}

bool rendered(const std::string& dom) {
  return std::regex_search(dom, std::regex(R"(<body[^>]*data-renders="[1-9])"));
}

// The emitted counter of `component` in the components table.
int64_t emittedIn(const std::string& dom, const std::string& component) {
  std::smatch m;
  std::regex row("<tr data-component=\"" + component +
                 "\"[^>]*>.*?data-field=\"emitted\" data-value=\"([0-9]+)\"");
  if (!std::regex_search(dom, m, row)) return -1;
  return std::stoll(m[1]);
}

TEST_F(Browser, ThePageShowsEveryComponentInTheGraphAndTheTableAndCountersMove) {
  RunningTopology rt = runContinuous(pipeline(PacedSpout(500us)), Continuous{});
  UiServer ui(rt, {.token = "t"}, "paced numbers");
  ASSERT_TRUE(eventually([&] { return rt.metrics().find("sink")->total().executed > 0; }));

  std::string first = dom(ui.url());
  ASSERT_TRUE(rendered(first)) << statusOf(first) << "\n" << log();
  for (const char* c : {"numbers", "double", "sink"}) {
    EXPECT_TRUE(std::regex_search(
        first, std::regex(std::string("<g class=\"node [^\"]*\" data-component=\"") + c + "\"")))
        << "no graph node for " << c;
    EXPECT_NE(first.find(std::string("<tr data-component=\"") + c + "\""), std::string::npos)
        << "no table row for " << c;
    // Flink's busy / back-pressured / idle time per task, in the table.
    EXPECT_TRUE(std::regex_search(
        first, std::regex(std::string("<tr data-component=\"") + c +
                          "\".*?data-field=\"idle\" data-value=\"[0-9.]+\">[0-9]+ ms/s<")))
        << "no idle time for " << c;
  }
  EXPECT_NE(first.find("data-from=\"numbers\" data-to=\"double\""), std::string::npos);
  EXPECT_NE(first.find(">fields(n)<"), std::string::npos);  // the grouping on the edge
  EXPECT_NE(first.find(">paced numbers<"), std::string::npos);
  EXPECT_NE(first.find("<option value=\"INFO\" selected=\"true\">"), std::string::npos)
      << "the log level selector does not show the process's level";
  int64_t before = emittedIn(first, "numbers");
  ASSERT_GE(before, 0) << first.substr(0, 3000);

  uint64_t seen = rt.metrics().find("numbers")->total().emitted;
  ASSERT_TRUE(eventually([&] { return rt.metrics().find("numbers")->total().emitted > seen; }));
  std::string second = dom(ui.url());
  ASSERT_TRUE(rendered(second));
  EXPECT_GT(emittedIn(second, "numbers"), before) << "the counters did not move";

  // The screenshot in docs/ui.md.
  fs::path shot = GALE_UI_SCREENSHOT;
  fs::remove(shot);
  chrome(ui.url(), "--hide-scrollbars --window-size=1500,1250 --screenshot=" + shot.string());
  ASSERT_TRUE(fs::exists(shot)) << "no screenshot at " << shot;
  std::ifstream png(shot, std::ios::binary);
  char magic[4] = {};
  png.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  rt.kill();
}

TEST_F(Browser, AFusedBoltIsDrawnDashedAndLabelledWithItsHost) {
  auto gate = std::make_shared<std::atomic<bool>>(true);
  RunningTopology rt = runContinuous(fusedPipeline(GatedSpout(50, 0, gate)), Continuous{});
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  ASSERT_EQ(rt.metrics().find("sink")->fusedInto, "double");
  UiServer ui(rt, {});
  std::string d = dom(ui.url());
  ASSERT_TRUE(rendered(d)) << statusOf(d) << "\n" << log();
  EXPECT_TRUE(std::regex_search(
      d, std::regex("<g class=\"node bolt[^\"]* fused\" data-component=\"sink\" "
                    "data-fused-into=\"double\"")))
      << "the fused bolt is not marked";
  EXPECT_NE(d.find("class=\"fused-label\">fused into double<"), std::string::npos);
  EXPECT_TRUE(std::regex_search(d, std::regex("<g class=\"node bolt\" data-component=\"double\" "
                                              "transform")))
      << "the host is drawn as fused";
}

TEST_F(Browser, AHostileNameRendersAsTextAndRunsNothing) {
  const std::string hostile = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">";
  RunningTopology rt = runContinuous(pipeline(PacedSpout(1ms), hostile), Continuous{});
  UiServer ui(rt, {}, "<script>document.title='pwned'</script>");
  std::string d = dom(ui.url());
  ASSERT_TRUE(rendered(d)) << statusOf(d) << "\n" << log();
  EXPECT_FALSE(std::regex_search(d, std::regex(R"(<body[^>]*data-pwned)")))
      << "the hostile name ran as markup";
  EXPECT_EQ(d.find("<img"), std::string::npos);
  EXPECT_NE(d.find("<title>gale</title>"), std::string::npos);
  EXPECT_EQ(d.find("<script>document"), std::string::npos);
  // Shown as text, in the graph, the table and the job list.
  EXPECT_NE(d.find("&lt;script&gt;document.title='pwned'&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(d.find("&lt;img src=x onerror="), std::string::npos);
  rt.kill();
}

TEST_F(Browser, TheMicroBatchPageShowsItsBatches) {
  SentenceSource::Options so;
  so.total = 2000;
  so.partitions = 2;
  TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<SentenceSource>(so), 2);
  b.setBolt("split", splitWords("sentence", "word"), 2).shuffleGrouping("sentences");
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = (dir / "chk").string();
  cfg.maxRecordsPerBatch = 250;
  cfg.name = "sentences";
  MicroBatchJob job = runMicroBatch(b.build(), cfg);
  ASSERT_TRUE(job.waitUntilDone(60s));
  UiServer ui(job, {});
  std::string d = dom(ui.url());
  ASSERT_TRUE(rendered(d)) << statusOf(d) << "\n" << log();
  EXPECT_NE(d.find("<section id=\"batches\">"), std::string::npos);
  for (int txid = 1; txid <= 8; ++txid)
    EXPECT_NE(d.find("<tr data-txid=\"" + std::to_string(txid) + "\">"), std::string::npos)
        << "no row for batch " << txid;
  EXPECT_NE(d.find("data-field=\"batches\" data-value=\"8\""), std::string::npos);
  // The checkpoint directory's summary: its commit log, newest first.
  EXPECT_NE(d.find("<section id=\"checkpoint\">"), std::string::npos);
  EXPECT_NE(d.find("data-field=\"lastCommittedTxid\" data-value=\"8\""), std::string::npos);
  for (int txid = 1; txid <= 8; ++txid)
    EXPECT_NE(d.find("<tr data-commit=\"" + std::to_string(txid) + "\">"), std::string::npos)
        << "no commit log row for " << txid;
  EXPECT_NE(d.find("sentences/0=1,000 sentences/1=1,000"), std::string::npos)
      << "no source offsets in the commit log";
  for (const char* c : {"sentences", "split"})
    EXPECT_NE(d.find(std::string("<tr data-component=\"") + c + "\""), std::string::npos);
}

// A finished run of gale-compare as it reaches the UI: 1000 latencies around `nanos`.
ComparisonRun comparisonRun(const std::string& mode, const std::string& load, int64_t nanos) {
  ComparisonRun r{.pipeline = "ysb", .mode = mode, .load = load, .knobs = "k",
                  .latencyKind = "window", .throughput = 9000};
  for (int i = 0; i < 1000; ++i) r.latency.record(nanos + nanos * (i % 10) / 10);
  return r;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(Browser, TheComparisonPageBuildsUpAsTheRunsComplete) {
  UiServer ui({});
  ui.planComparison(4);
  ui.addComparisonRun(comparisonRun("continuous", "10K/s", 300'000));
  ui.addComparisonRun(comparisonRun("micro-batch 100ms", "10K/s", 80'000'000));
  std::string first = dom(ui.url() + "#/compare");
  ASSERT_TRUE(rendered(first)) << statusOf(first) << "\n" << log();
  EXPECT_NE(first.find(">2 of 4 runs done"), std::string::npos);
  EXPECT_EQ(count(first, "<tr data-run="), 2u);
  EXPECT_NE(first.find("<tr data-run=\"ysb|10K/s|continuous\">"), std::string::npos);
  EXPECT_NE(first.find("<tr data-run=\"ysb|10K/s|micro-batch 100ms\">"), std::string::npos);
  // One histogram chart for the group, with the bars of both modes side by side.
  EXPECT_EQ(count(first, "data-group=\""), 1u);
  EXPECT_NE(first.find("data-mode=\"continuous\""), std::string::npos);
  EXPECT_NE(first.find("data-mode=\"micro-batch 100ms\""), std::string::npos);
  EXPECT_TRUE(std::regex_search(first, std::regex(R"(data-field="p99" data-value="0\.5[0-9]*">)")))
      << "the continuous run's p99 (~0.54 ms) is not in the table";

  ui.addComparisonRun(comparisonRun("continuous", "100K/s", 500'000));
  ui.addComparisonRun(comparisonRun("micro-batch 100ms", "100K/s", 120'000'000));
  std::string second = dom(ui.url() + "#/compare");
  ASSERT_TRUE(rendered(second));
  EXPECT_NE(second.find(">4 of 4 runs done"), std::string::npos);
  EXPECT_EQ(count(second, "<tr data-run="), 4u);
  EXPECT_EQ(count(second, "data-group=\""), 2u);
  EXPECT_NE(second.find("data-group=\"ysb @ 100K/s\""), std::string::npos);
}

}  // namespace
}  // namespace gale::ui
