// Runs the real gale-compare binary briefly and checks what it leaves behind.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "svg_check.h"

namespace gale::compare {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(GaleCompare, AShortRunWritesTheTableCsvJsonAndAWellFormedChartAndChecksWindows) {
  auto dir = std::filesystem::temp_directory_path() / ("gale-compare-tool-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string cmd = std::string(GALE_COMPARE_BIN) +
                    " --pipeline ysb --loads 20K --intervals 100ms --seconds 1 --warmup 0.3"
                    " --check-events 20000 --out " + dir.string() + " > " + (dir.string() + ".out") +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = slurp(dir.string() + ".out");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("p99.9"), std::string::npos) << out;
  EXPECT_NE(out.find("window results: continuous == micro-batch 100ms over"), std::string::npos)
      << out;
  EXPECT_NE(out.find("chart: " + (dir / "latency.svg").string()), std::string::npos) << out;
  std::string svg = slurp(dir / "latency.svg");
  std::string why;
  EXPECT_TRUE(wellFormedSvg(svg, &why)) << why;
  EXPECT_NE(svg.find("micro-batch 100ms"), std::string::npos);
  std::string csv = slurp(dir / "results.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;  // header + 2 runs
  EXPECT_NE(slurp(dir / "results.json").find("\"mode\": \"continuous\""), std::string::npos);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(dir.string() + ".out");
}

// Continuous mode exactly-once beside micro-batch (both exactly-once): the continuous rows take
// checkpoints, say so, and compute the same windows.
TEST(GaleCompare, ContinuousExactlyOnceRunsBesideMicroBatchAndComputesTheSameWindows) {
  auto dir = std::filesystem::temp_directory_path() / ("gale-compare-eos-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string cmd = std::string(GALE_COMPARE_BIN) +
                    " --pipeline ysb,wordcount --loads 20K --intervals 100ms --seconds 1"
                    " --warmup 0.3 --guarantee exactly-once --checkpoint-interval 100ms"
                    " --check-events 20000 --out " + dir.string() + " > " + (dir.string() + ".out") +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = slurp(dir.string() + ".out");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("continuous: per-tuple, exactly-once (barrier checkpoints every 100ms"),
            std::string::npos) << out;
  EXPECT_NE(out.find("window results: continuous == micro-batch 100ms over"), std::string::npos)
      << out;
  std::string csv = slurp(dir / "results.csv");
  std::istringstream rows(csv);
  int continuousRows = 0;
  for (std::string line; std::getline(rows, line);) {
    if (line.find(",continuous,") == std::string::npos) continue;
    ++continuousRows;
    auto at = line.find(" checkpoints completed");
    ASSERT_NE(at, std::string::npos) << line;
    int n = std::stoi(line.substr(line.rfind(' ', at - 1) + 1));
    EXPECT_GE(n, 5) << line;  // 1.3 s at 100 ms
  }
  EXPECT_EQ(continuousRows, 2) << csv;
  std::filesystem::remove_all(dir);
  std::filesystem::remove(dir.string() + ".out");
}

TEST(GaleCompare, ABadFlagIsRejectedWithAMessageNamingIt) {
  std::string cmd = std::string(GALE_COMPARE_BIN) + " --loads 10Q > /dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_NE(rc, 0);
}

}  // namespace
}  // namespace gale::compare
