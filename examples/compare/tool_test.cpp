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

TEST(GaleCompare, ABadFlagIsRejectedWithAMessageNamingIt) {
  std::string cmd = std::string(GALE_COMPARE_BIN) + " --loads 10Q > /dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_NE(rc, 0);
}

}  // namespace
}  // namespace gale::compare
