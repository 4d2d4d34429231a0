// Runs an example's topology in continuous or micro-batch mode until its input ends (shared by
// the DStream examples stateful_network_word_count and hashtag_count).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gale/batch/microbatch.h"
#include "example_ui.h"
#include "gale/topology/runtime.h"

namespace gale::examples {

struct RunMode {
  bool microBatch = false;
  Duration batchInterval = std::chrono::seconds(1);  // micro-batch trigger / continuous tick
  int64_t maxRecordsPerBatch = 0;
  std::string checkpoint;  // micro-batch: empty = a fresh temporary directory, removed after
  ui::UiServer* ui = nullptr;  // --ui: the job is shown there while it runs, then its last state
};

inline void runEitherMode(const Topology& t, const RunMode& m, const std::string& name) {
  if (!m.microBatch) {
    Continuous c;
    c.tickInterval = m.batchInterval;
    auto rt = runContinuous(t, c);
    UiAttachment shown(m.ui, rt, name);
    rt.waitUntilDone();
    return;
  }
  namespace fs = std::filesystem;
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(m.batchInterval);
  cfg.maxRecordsPerBatch = m.maxRecordsPerBatch;
  cfg.checkpoint = m.checkpoint;
  if (cfg.checkpoint.empty()) {
    cfg.checkpoint = (fs::temp_directory_path() / ("gale-" + name + "-" + std::to_string(::getpid()))).string();
    fs::remove_all(cfg.checkpoint);
  }
  auto job = runMicroBatch(t, cfg);
  UiAttachment shown(m.ui, job);
  job.waitUntilDone();
  if (m.checkpoint.empty()) fs::remove_all(cfg.checkpoint);
}

}  // namespace gale::examples
