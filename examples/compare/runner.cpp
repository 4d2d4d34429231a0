#include "runner.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "gale/batch/microbatch.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"
#include "gale/ui/ui_server.h"

namespace gale::compare {

std::string formatDuration(Duration d) {
  int64_t us = d.count();
  if (us == 0) return "0";
  if (us % 1'000'000 == 0) return std::to_string(us / 1'000'000) + "s";
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

Duration parseDuration(const std::string& text) {
  auto bad = [&] {
    return std::invalid_argument("bad duration '" + text +
                                 "': use e.g. 0, 250us, 100ms, 1s or 2.5s");
  };
  if (text == "0") return Duration{0};
  size_t unitAt = text.find_first_not_of("0123456789.");
  if (unitAt == 0 || unitAt == std::string::npos) throw bad();
  double v = 0;
  try {
    size_t used = 0;
    v = std::stod(text.substr(0, unitAt), &used);
    if (used != unitAt) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  std::string unit = text.substr(unitAt);
  double scale = unit == "us" ? 1 : unit == "ms" ? 1e3 : unit == "s" ? 1e6 : -1;
  if (scale < 0 || v < 0) throw bad();
  return Duration{static_cast<int64_t>(std::llround(v * scale))};
}

std::string Mode::label() const {
  return microBatch ? "micro-batch " + formatDuration(interval) : "continuous";
}

Mode parseMode(const std::string& text) {
  if (text == "continuous" || text == "cont") return Mode{};
  try {
    return Mode{true, parseDuration(text)};
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("bad interval '" + text +
                                "': use 'continuous' or a micro-batch trigger interval such as "
                                "0, 100ms, 1s");
  }
}

namespace {
WatermarkTiming gMicroBatchTiming = WatermarkTiming::EndOfBatch;
bool gFusion = true;
}  // namespace

void setMicroBatchWatermarkTiming(WatermarkTiming timing) { gMicroBatchTiming = timing; }
void setFusion(bool on) { gFusion = on; }

std::string knobsOf(const Mode& mode, const RunSettings& settings) {
  if (!mode.microBatch && settings.exactlyOnce)
    return "continuous: per-tuple, exactly-once (barrier checkpoints every " +
           formatDuration(settings.checkpointInterval) +
           " into LMDB state, temp directory, fsync per checkpoint), acking off, watermark at "
           "every move" + (gFusion ? "" : ", fusion off");
  if (!mode.microBatch)
    return std::string("continuous: per-tuple, acking ") +
           (settings.acking ? "on (at-least-once)" : "off (at-most-once)") +
           ", no state store, watermark at every move" + (gFusion ? "" : ", fusion off");
  return "micro-batch: trigger " +
         (mode.interval.count() ? formatDuration(mode.interval) : std::string("0 (back to back)")) +
         ", exactly-once LMDB state (temp checkpoint, fsync per commit), acking off, 1 batch "
         "in flight, " +
         (gMicroBatchTiming == WatermarkTiming::NextBatch
              ? std::string("Spark's watermark timing (applied in the next batch, no-data batches)")
              : std::string("gale's watermark timing (windows fire at the end of the batch that "
                            "moved the watermark)")) +
         (gFusion ? "" : ", fusion off");
}

Continuous continuousConfig(bool acking) {
  Continuous c;
  c.acking = acking;
  c.fusion = gFusion;
  return c;
}

namespace {

int64_t monoNow() { return SystemClock::steadyNanos(); }

// `checkpointDir`: exactly-once's, if settings ask for it.
Continuous continuousConfig(const RunSettings& settings, const std::string& checkpointDir) {
  Continuous c = compare::continuousConfig(settings.acking);
  if (settings.exactlyOnce) {
    c.guarantee = Guarantee::ExactlyOnce;
    c.checkpointInterval = settings.checkpointInterval;
    c.checkpointDir = checkpointDir + "/chk";
  }
  return c;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "gale-compare-XXXXXX").string();
  if (!mkdtemp(tmpl.data()))
    throw std::runtime_error("gale-compare: cannot create a checkpoint directory under " +
                             std::filesystem::temp_directory_path().string());
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

MicroBatch microBatchConfig(const Mode& mode, const std::string& dir) {
  MicroBatch mb;
  mb.trigger = mode.interval.count() ? BatchTrigger::processingTime(mode.interval)
                                     : BatchTrigger::unspecified();
  mb.checkpoint = dir + "/chk";
  mb.name = "gale-compare " + mode.label();
  mb.watermarkTiming = gMicroBatchTiming;
  mb.runtime = continuousConfig(false);
  return mb;
}

namespace {

// One running job in either mode, behind one face.
class AnyRun {
 public:
  AnyRun(const Topology& t, const Mode& mode, const RunSettings& settings,
         ui::UiServer* ui = nullptr, const std::string& name = "")
      : ui_(ui) {
    if (mode.microBatch || settings.exactlyOnce) dir_ = std::make_unique<TempDir>();
    if (mode.microBatch) {
      MicroBatch config = microBatchConfig(mode, dir_->path);
      if (!name.empty()) config.name = name;
      job_ = runMicroBatch(t, config);
      if (ui_) uiId_ = ui_->add(job_);
    } else {
      running_ = std::make_unique<RunningTopology>(
          runContinuous(t, continuousConfig(settings, dir_ ? dir_->path : "")));
      if (ui_) uiId_ = ui_->add(*running_, name.empty() ? mode.label() : name);
    }
  }
  ~AnyRun() {
    try {
      stopNow();
    } catch (...) {
      // Destructors do not throw; stopNow() already reported a failure to its caller if it was
      // called explicitly.
    }
  }
  // Ends the run without draining a backlog (the measurement is over).
  void stopNow() {
    // The UI keeps the run's last metrics and lets go of the job before it goes.
    if (ui_ && !uiId_.empty()) ui_->remove(uiId_);
    if (running_) {
      running_->kill();
      running_.reset();
      if (dir_) checkpoints_ = StateStore::inspect(dir_->path + "/chk")->lastCommittedTxid();
    }
    if (job_) {
      MicroBatchJob job = job_;
      job_ = MicroBatchJob();
      job.stop();
      if (!job.waitUntilDone(std::chrono::seconds(60)))
        throw std::runtime_error("gale-compare: the micro-batch job did not stop within 60 s");
    }
  }
  // Micro-batch: records in committed batches; continuous: nothing to ask (0).
  uint64_t committedRecords() const { return job_ ? job_.progress().records : 0; }
  void checkFailed() {
    if (job_ && job_.done()) job_.waitUntilDone();  // rethrows the job's error
  }
  RunningTopology* continuous() { return running_.get(); }
  // Continuous exactly-once, after stopNow(): the checkpoints the run completed.
  uint64_t checkpointsCompleted() const { return checkpoints_; }

 private:
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<RunningTopology> running_;
  MicroBatchJob job_;
  ui::UiServer* ui_ = nullptr;
  std::string uiId_;
  uint64_t checkpoints_ = 0;
};

}  // namespace

ResultRow runOnce(const PipelineOptions& po, const Mode& mode, const RunSettings& settings,
                  std::shared_ptr<const YsbData> data, const ProgressFn& progress) {
  if (settings.seconds <= 0) throw std::invalid_argument("--seconds must be positive");
  auto m = std::make_shared<RunMeasurements>();
  BuiltPipeline built = buildTopology(po, m, data);

  ResultRow row;
  row.pipeline = pipelineName(po.pipeline);
  row.mode = mode.label();
  row.knobs = knobsOf(mode, settings);
  row.offeredPerSec = po.ratePerSecond;
  row.latencyKind = built.latencyKind;
  row.latencyOffsetNanos = m->windowLatencyOffset();

  // Nothing recorded until the warm-up ends.
  int64_t start = monoNow();
  m->setWarmupEnd(INT64_MAX);
  AnyRun run(built.topology, mode, settings, settings.ui,
             row.pipeline + " " + row.mode + " @ " + loadLabel(po.ratePerSecond));

  Progress p{row.pipeline, row.mode, loadLabel(po.ratePerSecond)};
  p.total = settings.warmupSeconds + settings.seconds;
  int64_t warmupEnd = start + static_cast<int64_t>(settings.warmupSeconds * 1e9);
  int64_t end = warmupEnd + static_cast<int64_t>(settings.seconds * 1e9);
  bool measuring = false;
  uint64_t inputs0 = 0, lastInputs = 0;
  int64_t due0 = 0, lastT = start;
  for (;;) {
    int64_t now = monoNow();
    if (!measuring && now >= warmupEnd) {
      measuring = true;
      m->setWarmupEnd(now);
      warmupEnd = now;
      inputs0 = m->inputs();
      if (po.ratePerSecond > 0) due0 = built.source->dueCount(now);
    }
    if (now >= end) break;
    run.checkFailed();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (progress) {
      int64_t t = monoNow();
      uint64_t in = m->inputs();
      p.elapsed = (t - start) / 1e9;
      p.warmingUp = !measuring;
      p.records = in;
      p.rate = t > lastT ? (in - lastInputs) * 1e9 / (t - lastT) : 0;
      lastInputs = in;
      lastT = t;
      progress(p);
    }
  }
  int64_t t1 = monoNow();
  m->setMeasurementEnd(t1);
  uint64_t inputs1 = m->inputs();
  int64_t due1 = po.ratePerSecond > 0 ? built.source->dueCount(t1) : 0;
  run.checkFailed();
  run.stopNow();
  if (!mode.microBatch && settings.exactlyOnce)
    row.knobs += "; " + std::to_string(run.checkpointsCompleted()) + " checkpoints completed";

  row.seconds = (t1 - warmupEnd) / 1e9;
  row.records = inputs1 - inputs0;
  row.throughput = row.records / row.seconds;
  row.setLatency(m->mergedLatency());
  if (row.latencyKind == "window" && po.ratePerSecond <= 0) {
    // At "max" the generator's event time is synthetic (1 µs per event), not the wall clock, so
    // "result at the sink - window end" measures nothing: report no latency (n/a), not a made-up one.
    row.setLatency(Histogram{});
  }
  if (po.ratePerSecond > 0) {
    // Not sustained: consumed less than 95 % of what came due while measuring, or the backlog
    // at the end exceeds what the mode holds back by design (a micro-batch waits up to two
    // intervals: the one being collected and the one being processed).
    double due = static_cast<double>(due1 - due0);
    double backlog = static_cast<double>(due1) - static_cast<double>(inputs1);
    double allowed = po.ratePerSecond * std::max(1.0, 3.0 * mode.interval.count() / 1e6);
    row.sustained = row.records >= 0.95 * due && backlog <= allowed;
  }
  return row;
}

BoundedWindows runBoundedYsb(const PipelineOptions& base, const Mode& mode, int64_t events,
                             std::shared_ptr<const YsbData> data, const RunSettings& settings) {
  if (events < 1) throw std::invalid_argument("runBoundedYsb: events must be >= 1");
  PipelineOptions po = base;
  if (!isYsb(po.pipeline)) po.pipeline = Pipeline::Ysb;
  po.ratePerSecond = 0;
  po.total = events;
  // The same events in every run: event times from a fixed, window-aligned start, about five
  // windows' worth.
  int64_t window = po.window.count();
  int64_t startMicros = (int64_t{1'600'000'000'000'000} / window) * window;
  int64_t step = std::max<int64_t>(1, window * 5 / events);
  po.eventTime.fixedEventTimeStart = Timestamp{startMicros};
  po.eventTime.eventTimeStep = Duration{step};

  auto m = std::make_shared<RunMeasurements>();
  BuiltPipeline built = buildTopology(po, m, data);
  AnyRun run(built.topology, mode, settings);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto timedOut = [&] { return std::chrono::steady_clock::now() > deadline; };
  if (RunningTopology* r = run.continuous()) {
    // Bounded input: the run ends by itself once every record went through.
    if (!r->waitUntilDone(std::chrono::seconds(120)))
      throw std::runtime_error("gale-compare: the bounded continuous run did not finish in 120 s");
  } else {
    while (run.committedRecords() < static_cast<uint64_t>(events)) {
      run.checkFailed();
      if (timedOut())
        throw std::runtime_error(
            "gale-compare: the bounded micro-batch run did not commit every record in 120 s (" +
            std::to_string(run.committedRecords()) + " of " + std::to_string(events) + ")");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  run.stopNow();

  BoundedWindows out;
  out.windows = m->windowResults();
  // The watermark after the last event fires every window that ends at or before it; the window
  // holding the last event is complete only where the end of input closes it (continuous mode).
  int64_t lastEvent = (startMicros + (events - 1) * step) / 1000 * 1000;
  int64_t watermark = lastEvent - po.watermarkDelay.count();
  out.lastCompleteWindowStart = (watermark + 1) / window * window - window;
  return out;
}

}  // namespace gale::compare
