// Running one pipeline in one mode at one offered load for a fixed time, and the bounded runs
// that check both modes compute the same windows. The same topology-building function serves
// every mode (pipelines.h); only the run call differs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gale/batch/microbatch.h"
#include "pipelines.h"
#include "report.h"

namespace gale::ui {
class UiServer;
}

namespace gale::compare {

struct Mode {
  bool microBatch = false;
  Duration interval{0};  // micro-batch trigger interval; 0 = the next batch as soon as possible
  std::string label() const;  // "continuous", "micro-batch 100ms", "micro-batch 0"
};
// "0", "100ms", "1s", "250us", "continuous"; throws std::invalid_argument saying what is accepted.
Mode parseMode(const std::string& text);
std::string formatDuration(Duration d);
// "100ms", "1s", "2.5s", "300us", "0"; throws std::invalid_argument on anything else.
Duration parseDuration(const std::string& text);

// The watermark timing of every micro-batch run (gale's by default; --spark-timing: Spark's, with
// no-data batches). Stated in each row's knobs.
void setMicroBatchWatermarkTiming(WatermarkTiming timing);
// Continuous::fusion of every run, both modes (on by default; --fusion off). Stated in the knobs.
void setFusion(bool on);
// The continuous runs' Continuous: `acking`, and the fusion setFusion asked for.
Continuous continuousConfig(bool acking);

struct RunSettings {
  double seconds = 6;          // measured time
  double warmupSeconds = 1.5;  // before it (latencies not recorded, throughput not counted)
  bool acking = false;         // continuous mode: Storm's acker on or off
  // Continuous mode exactly-once (Guarantee::ExactlyOnce, instead of `acking`): barriers, the
  // operators' snapshots and the source offsets written to LMDB (a temporary directory, fsync per
  // checkpoint) every checkpointInterval, as micro-batch mode commits each batch.
  bool exactlyOnce = false;
  Duration checkpointInterval = std::chrono::seconds(1);
  // --ui: every run is shown in this web UI while it runs, and stays listed (with its last
  // metrics) after it ended, so the modes can be compared side by side.
  ui::UiServer* ui = nullptr;
};

// What the progress line shows, about every 200 ms.
struct Progress {
  std::string pipeline, mode, load;
  double elapsed = 0, total = 0;
  bool warmingUp = false;
  uint64_t records = 0;
  double rate = 0;  // records/s over the last interval
};
using ProgressFn = std::function<void(const Progress&)>;

// Runs `pipeline` in `mode` for warm-up + seconds and returns its row: throughput over the
// measured time, latency percentiles, sustained or not (see docs/compare.md).
ResultRow runOnce(const PipelineOptions& pipeline, const Mode& mode, const RunSettings& settings,
                  std::shared_ptr<const YsbData> data, const ProgressFn& progress = {});

// The window results of a bounded YSB run (pipeline.pipeline if it is ysb-typed, else ysb) over
// `events` events with fixed event times (the same events in every run), and the last window
// start that is complete in every mode.
struct BoundedWindows {
  WindowResults windows;
  int64_t lastCompleteWindowStart = 0;
};
// `settings`: only its continuous-mode guarantee (acking, exactlyOnce) is used.
BoundedWindows runBoundedYsb(const PipelineOptions& pipeline, const Mode& mode, int64_t events,
                             std::shared_ptr<const YsbData> data,
                             const RunSettings& settings = {});

// A temporary checkpoint directory, removed with the object.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The configuration of a micro-batch run in `mode` with its checkpoint under `dir`.
MicroBatch microBatchConfig(const Mode& mode, const std::string& dir);

// The knobs that differ between the modes, stated in the output.
std::string knobsOf(const Mode& mode, const RunSettings& settings);

}  // namespace gale::compare
