// Results of a comparison run and the ways gale-compare shows them: a terminal table, CSV, JSON
// and an SVG chart that needs no external tool.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "gale/core/histogram.h"

namespace gale::compare {

struct ResultRow {
  std::string pipeline;     // "stateless", "wordcount", "ysb"
  std::string mode;         // "continuous", "micro-batch 100ms", ...
  std::string knobs;        // what differs: trigger interval, exactly-once state on/off, acking
  double offeredPerSec = 0; // 0 = as fast as possible
  double seconds = 0;       // measured duration
  uint64_t records = 0;     // records through the pipeline in the measured run
  double throughput = 0;    // records/s sustained
  bool sustained = true;    // false: the engine fell behind the offered load
  std::string latencyKind;  // "record" (origin -> sink) or "window" (result at sink - window end)
  int64_t latencyOffsetNanos = 0;  // already subtracted when recorded (the watermark delay); stated
  uint64_t samples = 0;
  int64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;  // nanoseconds
  Histogram latency;  // the whole distribution, nanoseconds (for the web UI's histograms)

  void setLatency(const Histogram& h);
};

std::string loadLabel(double offeredPerSec);
// "812 µs", "1.4 ms", "2.1 s"
std::string formatNanos(int64_t nanos);

void writeTable(std::ostream& out, const std::vector<ResultRow>& rows);
void writeCsv(std::ostream& out, const std::vector<ResultRow>& rows);
void writeJson(std::ostream& out, const std::vector<ResultRow>& rows);
// Latency percentiles per mode (colour) and offered load (group), log scale.
void writeSvgChart(std::ostream& out, const std::vector<ResultRow>& rows, const std::string& title);

}  // namespace gale::compare
