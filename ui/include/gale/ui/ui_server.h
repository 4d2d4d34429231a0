// The web UI, REST API and Prometheus endpoint of a running job, served from inside the job's
// process (cpp-httplib, one listening thread and a small worker pool):
//
//   gale::RunningTopology rt = gale::runContinuous(topology);
//   gale::ui::UiServer ui(rt, {.port = 8080, .token = "s3cret"});   // http://127.0.0.1:8080/
//   rt.waitUntilDone();
//
// Read-only endpoints need nothing; every POST (deactivate, activate, kill) needs the token in an
// `X-Gale-Token` header (or `Authorization: Bearer <token>`) and answers 401 without it. With no
// token configured, POSTs are refused altogether. The server binds 127.0.0.1 unless told otherwise.
// docs/ui.md lists the endpoints with an example response each.
//
// Lifetime: a RunningTopology is referenced, not owned: destroy the UiServer (or remove() the job)
// before the RunningTopology (declaring the UiServer after the job does that). A MicroBatchJob
// handle is shared, so it may end or be dropped at any time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gale/batch/microbatch.h"
#include "gale/core/clock.h"
#include "gale/core/histogram.h"
#include "gale/topology/runtime.h"

namespace gale::ui {

struct UiOptions {
  int port = 0;                    // 0: any free port (see UiServer::port())
  std::string bind = "127.0.0.1";  // "0.0.0.0" exposes the UI (and, with a token, its actions)
  std::string token;               // required by every POST; empty: POSTs are always refused
  // How often the windowed counters ("last 10 min") are sampled; 0: only by sampleNow().
  std::chrono::milliseconds sampleInterval{1000};
  // Time for uptimes and windows (a ManualClock in tests). nullptr: the system clock.
  const Clock* clock = nullptr;
};

// One finished run of a comparison (gale-compare --ui). The page at /#/compare lines the runs up
// as they complete: a results table, and per pipeline and load the latency histograms of the
// modes side by side.
struct ComparisonRun {
  std::string pipeline;  // "ysb", "wordcount", ...
  std::string mode;      // "continuous", "micro-batch 100ms", ...
  std::string load;      // "10K/s", "max"
  std::string knobs;     // what differs between the modes
  std::string latencyKind;  // "record" or "window"
  double throughput = 0;    // records/s
  bool sustained = true;
  Histogram latency;        // nanoseconds, the whole measured distribution
};

struct JobEntry;

class UiServer {
 public:
  // Starts serving at once; throws std::runtime_error naming the address when it cannot bind.
  explicit UiServer(UiOptions options);
  UiServer(RunningTopology& job, UiOptions options, std::string name = "topology");
  UiServer(MicroBatchJob job, UiOptions options);
  UiServer(const UiServer&) = delete;
  UiServer& operator=(const UiServer&) = delete;
  ~UiServer();  // stops serving; pending delayed kills are dropped

  // Adds a job; returns its id (the name made URL-safe, plus a sequence number).
  std::string add(RunningTopology& job, std::string name = "topology");
  std::string add(MicroBatchJob job);
  // Detaches a job: the UI keeps showing its last metrics as FINISHED, and never touches the
  // job again (so a RunningTopology may be destroyed after this returns). Unknown ids are ignored.
  void remove(const std::string& id);

  int port() const;
  std::string url() const;  // "http://127.0.0.1:<port>/"
  std::vector<std::string> jobIds() const;

  // The comparison page: how many runs are planned (0: unknown), and each run as it completes.
  void planComparison(size_t runs);
  void addComparisonRun(ComparisonRun run);

  // Takes one sample of every job's counters for the windowed ("600" = last 10 min) stats; the
  // sampler thread does this every sampleInterval.
  void sampleNow();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gale::ui
