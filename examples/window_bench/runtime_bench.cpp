// window_runtime_bench: the keyed sliding-window sum of issue #3 (10 K keys, 10 s windows sliding
// by 1 s, bounded disorder) through the real runtimes, where window_bench calls ONE operator
// directly. Topology: GeneratorSource "events" (key, v, ts) with an in-band watermark
// (max ts - disorder) -> WindowOperator "window" (fields grouping on key) -> a counting sink.
//
// Two kinds of run, each in continuous mode and in micro-batch mode:
// - throughput: unlimited rate, a bounded number of events, event time = fixed start + g * step
//   minus a deterministic jitter in [0, disorder). Prints events/s (wall, from start to done, so
//   the final flush of open windows is included) and result rows.
// - fixed rate: event g is due at open + (g + 1) / rate and its event time is the wall-clock time
//   it is due (minus the jitter), as examples/compare/ysb.cpp does. A window ending at e can close
//   no earlier than wall time e + disorder (the watermark delay), so the latency of a result row
//   is (wall now when the sink sees it) - e - disorder; in micro-batch mode "sees" is the end of
//   the batch (its rows become visible together). p50/p99/p99.9 from gale::Histogram.
//
// Every event lies in exactly size/slide = 10 windows and all of them are emitted by the end of
// input, so the sum over all result rows must be 10 * the sum of v: each run checks it.
//
//   window_runtime_bench [--events N] [--keys K] [--step-us S] [--disorder-ms D]
//                        [--rate R] [--rate-seconds T] [--acking 0|1] [--only cont|mb]
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <stdlib.h>

#include "cli.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/core/histogram.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

using namespace std::chrono_literals;

namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Job {
  int64_t events = 0;
  int64_t keys = 10'000;
  int64_t stepUs = 5;           // throughput run: event time advances this much per event
  int64_t disorderUs = 500'000;
  double rate = 0;              // 0 = unlimited (throughput run)
};

// The event stream as a pure function of the global sequence number g, so replays are identical.
// With a rate, event time follows the wall clock of the schedule; that needs the wall time of
// open(), which is why this is a GeneratorSource subclass.
class WindowEvents : public gale::GeneratorSource {
 public:
  struct Shared {
    Job job;
    std::vector<std::string> names;
    std::atomic<int64_t> startWallMicros{0};
    int64_t eventTime(int64_t g) const {
      int64_t jitter =
          job.disorderUs > 0 ? static_cast<int64_t>(splitmix(g) % job.disorderUs) : 0;
      int64_t base = job.rate > 0
                         ? startWallMicros.load(std::memory_order_relaxed) +
                               static_cast<int64_t>((g + 1) * 1e6 / job.rate)
                         : 1'700'000'000'000'000 + g * job.stepUs;
      return base - jitter;
    }
  };

  static std::shared_ptr<WindowEvents> make(const Job& job) {
    auto shared = std::make_shared<Shared>();
    shared->job = job;
    for (int64_t k = 0; k < job.keys; ++k) shared->names.push_back("k" + std::to_string(k));
    Options o;
    o.name = "window-events";
    o.ratePerSecond = job.rate;
    o.total = job.events;
    // Unlimited: let a micro-batch take up to ~2 M records at once instead of the default 64 K.
    if (job.rate <= 0) o.unlimitedLookahead = int64_t{1} << 21;
    return std::make_shared<WindowEvents>(shared, o);
  }

  WindowEvents(std::shared_ptr<Shared> shared, Options o)
      : GeneratorSource(
            gale::Fields{{"key", gale::Type::String},
                         {"v", gale::Type::Int64},
                         {"ts", gale::Type::Timestamp}},
            [shared](int, int64_t g) -> gale::Values {
              uint64_t r = splitmix(static_cast<uint64_t>(g) ^ 0x5bd1e995ULL);
              return {shared->names[r % shared->names.size()], int64_t{g & 7},
                      gale::Timestamp{shared->eventTime(g)}};
            },
            o),
        shared_(std::move(shared)) {}

  void open(const gale::Clock& clock) override {
    shared_->startWallMicros.store(clock.now().micros);
    GeneratorSource::open(clock);
  }

 private:
  std::shared_ptr<Shared> shared_;
};

// What the sink saw, shared by the prototype and its (single) task.
struct SinkStats {
  std::mutex mutex;
  uint64_t rows = 0, late = 0, flushed = 0;
  int64_t sumOfSums = 0;
  gale::Histogram latency;  // nanoseconds
};

// Counts result rows, sums their sums (the correctness check) and, for a fixed-rate run, records
// wall now - window_end - disorder per row. Rows whose window ends after now - disorder were not
// closed by a watermark but flushed by the end of input; they are counted, not timed.
class CountingSink final : public gale::Operator {
 public:
  CountingSink(std::shared_ptr<SinkStats> stats, bool timed, int64_t disorderUs)
      : stats_(std::move(stats)), timed_(timed), disorderUs_(disorderUs) {}
  void declareOutputFields(gale::OutputFieldsDeclarer&) const override {}
  std::unique_ptr<gale::Operator> clone() const override {
    return std::make_unique<CountingSink>(stats_, timed_, disorderUs_);
  }
  void onTuple(const gale::Tuple& t, gale::Emitter&) override {
    if (t.sourceStream() != gale::kDefaultStream) {
      std::lock_guard lock(stats_->mutex);
      ++stats_->late;
      return;
    }
    int64_t end = t.getTimestamp("window_end").micros;
    int64_t sum = t.getInt("sum_v");
    if (inBatch_) pending_.push_back({end, sum});
    else publish(end, sum);
  }
  void onBatchBegin(uint64_t) override {
    inBatch_ = true;
    pending_.clear();
  }
  void onBatchEnd(uint64_t, gale::Emitter&) override {
    for (const auto& [end, sum] : pending_) publish(end, sum);
    pending_.clear();
  }

 private:
  void publish(int64_t end, int64_t sum) {
    int64_t now = gale::SystemClock::instance().now().micros;
    std::lock_guard lock(stats_->mutex);
    ++stats_->rows;
    stats_->sumOfSums += sum;
    if (!timed_) return;
    int64_t us = now - end - disorderUs_;
    // 1 ms of slack: the watermark is max ts - disorder at microsecond resolution.
    if (us < -1000) ++stats_->flushed;
    else stats_->latency.record(std::max<int64_t>(0, us) * 1000);
  }

  std::shared_ptr<SinkStats> stats_;
  bool timed_;
  int64_t disorderUs_;
  bool inBatch_ = false;
  std::vector<std::pair<int64_t, int64_t>> pending_;
};

gale::Topology buildTopology(const Job& job, std::shared_ptr<SinkStats> stats) {
  gale::TopologyBuilder b;
  b.setSpout("events", WindowEvents::make(job), 1)
      .withWatermark("ts", gale::Duration{job.disorderUs});
  b.setBolt("window",
            *gale::windowed(gale::Sliding(10s, 1s), gale::Sum{"v"})
                 .keyBy({"key"})
                 .eventTime("ts")
                 .outputMode(gale::OutputMode::Append)
                 .build(),
            1)
      .fieldsGrouping("events", gale::Fields{"key"});
  b.setBolt("sink", CountingSink(stats, job.rate > 0, job.disorderUs), 1)
      .shuffleGrouping("window")
      .shuffleGrouping("window", "late");
  return b.build();
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gale-winbench-XXXXXX").string();
    if (!mkdtemp(tmpl.data()))
      throw std::runtime_error("window_runtime_bench: cannot create a checkpoint directory under " +
                               std::filesystem::temp_directory_path().string());
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

void runOnce(const Job& job, bool microBatch, bool acking) {
  auto stats = std::make_shared<SinkStats>();
  gale::Topology topology = buildTopology(job, stats);
  std::string mode;
  auto t0 = std::chrono::steady_clock::now();
  if (microBatch) {
    TempDir dir;
    gale::MicroBatch mb;
    mb.trigger = job.rate > 0 ? gale::BatchTrigger::processingTime(1s)
                              : gale::BatchTrigger::unspecified();
    mode = job.rate > 0 ? "micro-batch, trigger 1 s" : "micro-batch, back-to-back batches";
    mb.checkpoint = dir.path + "/chk";
    mb.name = "window_runtime_bench";
    mb.runtime.acking = false;
    auto run = gale::runMicroBatch(topology, mb);
    // A streaming job runs until stopped, also after its bounded input ended: stop it once the
    // batch that carried the end of input (watermark at the end of time, every window flushed)
    // is committed. Polled every 5 ms; bounded so that a stuck job is reported, not a hang.
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!run.waitUntilDone(5ms)) {
      auto p = run.progress();
      if (p.records == static_cast<uint64_t>(job.events) && p.watermark &&
          p.watermark->micros >= INT64_MAX - 1) {
        run.stop();
        run.waitUntilDone();
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        run.stop();
        throw std::runtime_error("the micro-batch job did not finish within 60 s: " +
                                 std::to_string(p.batches) + " batches, " +
                                 std::to_string(p.records) + " records committed");
      }
    }
    auto p = run.progress();
    mode += ", " + std::to_string(p.batches) + " batches";
  } else {
    gale::Continuous c;
    c.acking = acking;
    mode = std::string("continuous, acking ") + (acking ? "on" : "off");
    gale::runContinuous(topology, c).waitUntilDone();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t sumV = 0;
  for (int64_t g = 0; g < job.events; ++g) sumV += g & 7;
  std::lock_guard lock(stats->mutex);
  bool ok = stats->sumOfSums == 10 * sumV && stats->late == 0;
  std::printf("%s run, %s:\n", job.rate > 0 ? "fixed-rate" : "throughput", mode.c_str());
  std::printf("  %lld events in %.2f s wall = %.3f M events/s; %llu result rows, %llu late; "
              "check %s (sum of sums %lld, expected %lld)\n",
              static_cast<long long>(job.events), secs, job.events / secs / 1e6,
              static_cast<unsigned long long>(stats->rows),
              static_cast<unsigned long long>(stats->late), ok ? "OK" : "FAILED",
              static_cast<long long>(stats->sumOfSums), static_cast<long long>(10 * sumV));
  if (job.rate > 0)
    std::printf("  window end + disorder -> result row at the sink (wall): %s "
                "(%llu rows flushed by end of input, not timed)\n",
                stats->latency.summary(1e6, " ms").c_str(),
                static_cast<unsigned long long>(stats->flushed));
  std::fflush(stdout);
  if (!ok) std::exit(1);
}

struct Options {
  int64_t events = 5'000'000, keys = 10'000;
  int64_t stepUs = 5;  // 200 K events/s of event time = 20 per key
  int64_t disorderMs = 500;
  int64_t rate = 1'000'000, rateSeconds = 4;
  int acking = 0;
  std::string only;  // "": both runtimes
};

// Every option of window_runtime_bench, in one place.
void defineOptions(CLI::App& app, Options& o) {
  app.description(
      "window_runtime_bench: the keyed sliding-window sum through the continuous and micro-batch "
      "runtimes: a throughput run, then a fixed-rate latency run, in each.");
  app.add_option("--events", o.events, "events of the throughput run")
      ->capture_default_str()
      ->check(gale::examples::positive<int64_t>());
  app.add_option("--keys", o.keys, "distinct keys")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(1, int64_t{100'000'000}));
  app.add_option("--step-us", o.stepUs, "event time between consecutive events, microseconds")
      ->capture_default_str()
      ->check(gale::examples::positive<int64_t>());
  app.add_option("--disorder-ms", o.disorderMs, "bounded disorder = the watermark delay")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(0, int64_t{86'400'000}));
  app.add_option("--rate", o.rate, "events/s of the fixed-rate run (0 = skip it)")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(0, int64_t{1'000'000'000}));
  app.add_option("--rate-seconds", o.rateSeconds, "seconds of the fixed-rate run (0 = skip it)")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(0, int64_t{86'400}));
  app.add_option("--acking", o.acking, "continuous mode: Storm's acker")
      ->capture_default_str()
      ->check(gale::examples::number<int>(0, 1));
  app.add_option("--only", o.only, "only one runtime")->check(CLI::IsMember({"cont", "mb"}));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app;
  defineOptions(app, o);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;
  Job job;
  job.events = o.events;
  job.keys = o.keys;
  job.stepUs = o.stepUs;
  job.disorderUs = o.disorderMs * 1000;
  const bool acking = o.acking != 0;
  const bool cont = o.only != "mb", mb = o.only != "cont";  // --only: "", "cont" or "mb"
  std::printf("window_runtime_bench: keyed Sliding(10s, 1s) Sum{v}, %lld keys, disorder %lld ms, "
              "watermark = max ts - disorder; spout, window and sink 1 task each\n",
              static_cast<long long>(job.keys), static_cast<long long>(job.disorderUs / 1000));
  try {
    if (cont) runOnce(job, false, acking);
    if (mb) runOnce(job, true, acking);
    if (o.rate > 0 && o.rateSeconds > 0) {
      Job fixed = job;
      fixed.rate = static_cast<double>(o.rate);
      fixed.events = o.rate * o.rateSeconds;
      if (cont) runOnce(fixed, false, acking);
      if (mb) runOnce(fixed, true, acking);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "window_runtime_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
