#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "measurement.h"
#include "report.h"
#include "svg_check.h"

namespace gale::compare {
namespace {

TEST(TaskRecorder, KnownDelaysGiveKnownPercentiles) {
  ManualClock clock(Timestamp{1'000'000});
  RunMeasurements run(clock);
  TaskRecorder& task = run.newTask();
  // 1000 records: delay i microseconds for i = 1..1000, measured against the manual clock.
  for (int i = 1; i <= 1000; ++i) {
    int64_t origin = clock.monoNanos();
    clock.advance(Duration(i));
    task.recordArrival(origin);
  }
  Histogram h = run.mergedLatency();
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(run.records(), 1000u);
  // Relative error of the histogram is under 1/64.
  EXPECT_NEAR(h.percentile(0.50), 500'000, 500'000 / 60);
  EXPECT_NEAR(h.percentile(0.99), 990'000, 990'000 / 60);
  EXPECT_NEAR(h.percentile(0.999), 999'000, 999'000 / 60);
  EXPECT_EQ(h.max(), 1'000'000);
}

TEST(TaskRecorder, WindowLatencyIsArrivalMinusWindowEndAndWarmupIsNotRecorded) {
  ManualClock clock(Timestamp{50'000'000});
  RunMeasurements run(clock);
  TaskRecorder& a = run.newTask();
  run.setWarmupEnd(clock.monoNanos() + 1000);  // the first microsecond is warm-up
  a.recordWindowResult(Timestamp{49'000'000});  // during warm-up: not recorded
  clock.advance(Duration(2));
  TaskRecorder& b = run.newTask();  // a task that starts late still honours the warm-up
  a.recordWindowResult(Timestamp{49'990'000});  // 10'002 µs late
  b.recordWindowResult(Timestamp{50'000'000});  // 2 µs late
  Histogram h = run.mergedLatency();
  ASSERT_EQ(h.count(), 2u);
  EXPECT_EQ(h.min(), 2'000);
  EXPECT_EQ(h.max(), 10'002'000);
}

TEST(TaskRecorder, WindowLatencyOffsetIsSubtractedAtRecordTimeAndNeverNegative) {
  ManualClock clock(Timestamp{100'000'000});
  RunMeasurements run(clock);
  run.setWindowLatencyOffset(5'000'000'000);  // a 5 s watermark delay
  TaskRecorder& t = run.newTask();
  // Results 5 s + i ms after their window ends: i ms beyond the delay, recorded precisely.
  for (int i = 1; i <= 100; ++i) t.recordWindowResult(Timestamp{100'000'000 - 5'000'000 - i * 1000});
  t.recordWindowResult(Timestamp{100'000'000});  // earlier than the delay: clamped to 0
  Histogram h = run.mergedLatency();
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 100'000'000);
  EXPECT_NEAR(h.percentile(0.5), 50'000'000, 50'000'000 / 60);
}

TEST(CompareWindowResults, ReportsTheFirstDifferenceAndIgnoresUnfinishedWindows) {
  WindowResults a{{{"c1", 0}, 5}, {{"c1", 10}, 7}, {{"c2", 20}, 1}};
  WindowResults b{{{"c1", 0}, 5}, {{"c1", 10}, 7}};
  EXPECT_EQ(compareWindowResults(a, b, 10), "");
  EXPECT_NE(compareWindowResults(a, b, 20).find("missing from the second run"), std::string::npos);
  b[{"c1", 10}] = 8;
  EXPECT_NE(compareWindowResults(a, b, 10).find("7 vs 8"), std::string::npos);
}

std::vector<ResultRow> sampleRows() {
  std::vector<ResultRow> rows;
  const char* modes[] = {"continuous", "micro-batch 100ms", "micro-batch 1s"};
  for (double load : {10e3, 100e3, 0.0}) {
    int k = 1;
    for (const char* m : modes) {
      ResultRow r;
      r.pipeline = "ysb";
      r.mode = m;
      r.offeredPerSec = load;
      r.throughput = load ? load : 2e6;
      r.sustained = load != 0.0 || k == 1;
      Histogram h;
      for (int i = 1; i <= 1000; ++i) h.record(int64_t{k} * 100'000 * i);
      r.setLatency(h);
      rows.push_back(r);
      k *= 10;
    }
  }
  return rows;
}

TEST(SvgChart, IsWellFormedSvgWithOneBarPerModeAndLoad) {
  std::ostringstream out;
  writeSvgChart(out, sampleRows(), "YSB <latency> & load");
  std::string svg = out.str();
  std::string why;
  EXPECT_TRUE(wellFormedSvg(svg, &why)) << why;
  // 9 result bars + 3 legend swatches + the background.
  size_t rects = 0;
  for (size_t p = 0; (p = svg.find("<rect", p)) != std::string::npos; ++p) ++rects;
  EXPECT_EQ(rects, 9u + 3u + 1u);
  EXPECT_NE(svg.find("YSB &lt;latency&gt; &amp; load"), std::string::npos);
  EXPECT_NE(svg.find("NOT SUSTAINED"), std::string::npos);
}

double attribute(const std::string& svg, size_t at, const std::string& name) {
  size_t p = svg.find(name + "=\"", at) + name.size() + 2;
  return std::stod(svg.substr(p, svg.find('"', p) - p));
}

TEST(SvgChart, EveryModeOfTheLegendIsDrawnInsideThePicture) {
  std::ostringstream out;
  writeSvgChart(out, sampleRows(), "legend");
  const std::string svg = out.str();
  const double width = attribute(svg, svg.find("<svg"), "width");
  const double height = attribute(svg, svg.find("<svg"), "height");
  for (const std::string mode : {"continuous", "micro-batch 100ms", "micro-batch 1s"}) {
    SCOPED_TRACE(mode);
    size_t text = svg.find(">" + mode + "</text>");
    ASSERT_NE(text, std::string::npos) << "the legend lacks the mode";
    size_t start = svg.rfind("<text", text);
    double x = attribute(svg, start, "x"), y = attribute(svg, start, "y");
    EXPECT_LE(x + 7.0 * mode.size(), width) << "the text runs past the right edge";
    EXPECT_LT(y, height);
    size_t swatch = svg.rfind("<rect", start);
    EXPECT_EQ(attribute(svg, swatch, "width"), 12.0) << "no swatch before the text";
    EXPECT_LE(attribute(svg, swatch, "x") + 12, width);
  }
}

TEST(SvgChart, TheCheckerRejectsBrokenSvg) {
  std::string why;
  EXPECT_FALSE(wellFormedSvg("<svg><g></svg>", &why));
  EXPECT_FALSE(wellFormedSvg("<svg x=1></svg>", &why));
  EXPECT_FALSE(wellFormedSvg("<html></html>", &why));
}

TEST(Report, CsvAndJsonCarryEveryRow) {
  auto rows = sampleRows();
  std::ostringstream csv, json, table;
  writeCsv(csv, rows);
  writeJson(json, rows);
  writeTable(table, rows);
  size_t lines = 0;
  for (char c : csv.str()) lines += c == '\n';
  EXPECT_EQ(lines, rows.size() + 1);
  size_t objects = 0;
  for (size_t p = 0; (p = json.str().find("\"pipeline\"", p)) != std::string::npos; ++p) ++objects;
  EXPECT_EQ(objects, rows.size());
  EXPECT_NE(table.str().find("NOT SUSTAINED"), std::string::npos);
}

// Names and knobs are any text: the JSON stays valid and gives them back as they were.
TEST(Report, JsonEscapesEveryStringAndParsesBack) {
  auto rows = sampleRows();
  rows[0].pipeline = "word\"count\"";
  rows[0].knobs = "path=C:\\tmp\nsep=\t\x01";
  std::ostringstream out;
  writeJson(out, rows);
  nlohmann::json parsed = nlohmann::json::parse(out.str());
  ASSERT_EQ(parsed.size(), rows.size());
  EXPECT_EQ(parsed[0]["pipeline"], rows[0].pipeline);
  EXPECT_EQ(parsed[0]["knobs"], rows[0].knobs);
  EXPECT_EQ(parsed[0]["mode"], rows[0].mode);
  EXPECT_EQ(parsed[0]["latency_kind"], rows[0].latencyKind);
  EXPECT_EQ(parsed[0]["p99_ns"], rows[0].p99);
}

}  // namespace
}  // namespace gale::compare
