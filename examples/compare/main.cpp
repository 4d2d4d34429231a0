// gale-compare: continuous vs micro-batch latency and throughput, same topology, same operators,
// same transport; only the run call differs. See docs/compare.md.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

#include "cli.h"
#include "gale/ui/ui_server.h"
#include "kafka_mode.h"
#include "runner.h"

namespace gc = gale::compare;

namespace {

const char* kDescription =
    R"(gale-compare: runs a pipeline in continuous mode and in micro-batch mode at several trigger
intervals and offered loads, for a fixed time each, and reports sustained throughput and
end-to-end latency (p50/p90/p99/p99.9/max). With no options: the YSB pipeline, continuous vs
micro-batch 100ms and 1s, at 10K and 100K events/s, about a minute in total.)";

const char* kFooter =
    R"(Latency: stateless and wordcount, per record (the generator's scheduled time -> sink); ysb, per
window result (the time it reaches the sink - the window's end - the watermark delay). In
micro-batch mode a row counts as arrived when its batch is output (the sink's onBatchEnd).
Files in DIR: results.csv, results.json, latency.svg, equality.txt.)";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  if (out.empty()) throw std::invalid_argument("empty list '" + s + "'");
  return out;
}

double parseLoad(const std::string& s) {
  if (s == "max") return 0;
  auto bad = [&] {
    return std::invalid_argument("bad load '" + s + "': use events/s such as 10000, 100K, 1M or max");
  };
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::logic_error&) {
    throw bad();
  }
  std::string unit = s.substr(used);
  if (unit == "K" || unit == "k") v *= 1e3;
  else if (unit == "M" || unit == "m") v *= 1e6;
  else if (!unit.empty()) throw bad();
  if (!(v > 0)) throw bad();
  return v;
}

struct Options {
  std::vector<gc::Pipeline> pipelines{gc::Pipeline::Ysb};
  std::vector<double> loads{10e3, 100e3};
  std::vector<gc::Mode> modes;
  bool continuous = true;
  gc::RunSettings settings;
  gc::PipelineOptions pipeline;
  int64_t checkEvents = 200'000;
  std::string out = "compare-out";
  int uiPort = -1;  // no UI
  std::string uiToken;
  bool kafka = false;
  std::vector<gc::KafkaPipeline> kafkaPipelines;
  gc::KafkaSettings kafkaSettings;
};

// The command line as typed; turned into Options once parsing is complete.
struct RawOptions {
  std::string pipeline = "ysb", loads = "10K,100K", intervals = "100ms,1s";
  bool noContinuous = false;
  bool sparkTiming = false;
  std::string window = "1s", watermarkDelay = "0", acking = "off", fusion = "on";
  std::string guarantee, checkpointInterval = "1s";  // guarantee "": from --acking
  double seconds = 0, warmup = 0;  // set from RunSettings' defaults
  int partitions = 1, parallelism = 1;
  int64_t checkEvents = 200'000;
  std::string out = "compare-out";
  int uiPort = -1;
  std::string uiToken;
  bool kafka = false;
  std::string bootstrap, kafkaPipelines = "all";
  int kafkaRounds = 1;
  int kafkaSinkTasks = 1;
  int kafkaPartitions = 4;
  int kafkaSpoutTasks = 1;
  bool kafkaStages = false;
  int kafkaParallelism = 0;
  int64_t throughputRecords = 100'000;
};

Options toOptions(const RawOptions& r) {
  Options o;
  if (r.pipeline == "all") {
    o.pipelines = {gc::Pipeline::Stateless, gc::Pipeline::WordCount, gc::Pipeline::Ysb,
                   gc::Pipeline::YsbTyped};
  } else {
    o.pipelines.clear();
    for (auto& p : split(r.pipeline)) o.pipelines.push_back(gc::parsePipeline(p));
  }
  o.loads.clear();
  for (auto& l : split(r.loads)) o.loads.push_back(parseLoad(l));
  o.continuous = !r.noContinuous;
  gc::setMicroBatchWatermarkTiming(r.sparkTiming ? gale::WatermarkTiming::NextBatch
                                                 : gale::WatermarkTiming::EndOfBatch);
  o.settings.seconds = r.seconds;
  o.settings.warmupSeconds = r.warmup;
  o.pipeline.window = gc::parseDuration(r.window);
  if (o.pipeline.window.count() <= 0) throw std::invalid_argument("--window must be positive");
  o.pipeline.watermarkDelay = gc::parseDuration(r.watermarkDelay);
  o.settings.acking = r.guarantee.empty() ? r.acking == "on" : r.guarantee == "at-least-once";
  o.settings.exactlyOnce = r.guarantee == "exactly-once";
  o.settings.checkpointInterval = gc::parseDuration(r.checkpointInterval);
  if (o.settings.checkpointInterval.count() <= 0)
    throw std::invalid_argument("--checkpoint-interval must be positive");
  gc::setFusion(r.fusion == "on");
  o.pipeline.partitions = r.partitions;
  o.pipeline.parallelism = r.parallelism;
  o.checkEvents = r.checkEvents;
  o.out = r.out;
  o.uiPort = r.uiPort;
  o.uiToken = r.uiToken;
  o.kafka = r.kafka || !r.bootstrap.empty();
  if (o.kafka && !r.guarantee.empty())
    throw std::invalid_argument("--guarantee is for the generated pipelines; Kafka mode's "
                                "continuous runs are at-least-once (the sink's acking)");
  o.kafkaPipelines = gc::parseKafkaPipelines(r.kafkaPipelines);
  o.kafkaSettings.bootstrap = r.bootstrap;
  o.kafkaSettings.partitions = r.kafkaPartitions;
  o.kafkaSettings.spoutTasks = r.kafkaSpoutTasks;
  o.kafkaSettings.window = o.pipeline.window;
  o.kafkaSettings.throughputRecords = r.throughputRecords;
  o.kafkaSettings.stages = r.kafkaStages;
  o.kafkaSettings.rounds = r.kafkaRounds;
  o.kafkaSettings.sinkTasks = r.kafkaSinkTasks;
  if (r.kafkaSinkTasks == 0 && r.fusion != "on")
    throw std::invalid_argument(
        "--kafka-sink-tasks 0 needs --fusion on: only fused does each task's output reach the "
        "same (transactional) sink task, so that a replayed batch is written by the sink that "
        "wrote it before");
  o.kafkaSettings.parallelism = r.kafkaParallelism;
  if (o.continuous) o.modes.push_back(gc::Mode{});
  for (auto& s : split(r.intervals)) {
    gc::Mode m = gc::parseMode(s);
    if (!m.microBatch) {
      o.continuous = true;
      if (o.modes.empty() || o.modes.front().microBatch) o.modes.insert(o.modes.begin(), m);
    } else {
      o.modes.push_back(m);
    }
  }
  if (o.modes.empty()) throw std::invalid_argument("no mode to run (--no-continuous and no --intervals)");
  return o;
}

// Every option of gale-compare, in one place.
void defineOptions(CLI::App& app, RawOptions& r, Options& o) {
  gc::RunSettings defaults;
  r.seconds = defaults.seconds;
  r.warmup = defaults.warmupSeconds;
  app.description(kDescription);
  app.footer(kFooter);
  app.add_option("--pipeline", r.pipeline, "stateless | wordcount | ysb | ysb-typed | all, or a list: ysb,ysb-typed")
      ->capture_default_str();
  app.add_option("--loads", r.loads, "offered loads, events/s: 10000,100K,1M,max")->capture_default_str();
  app.add_option("--intervals", r.intervals,
                 "micro-batch trigger intervals: 0,100ms,1s (0 = the next batch as soon as the "
                 "previous one ended); continuous mode always runs too unless --no-continuous")
      ->capture_default_str();
  app.add_flag("--no-continuous", r.noContinuous, "only the micro-batch runs");
  app.add_flag("--spark-timing", r.sparkTiming,
               "micro-batch runs apply each batch's watermark in the next batch, as Spark does "
               "(default: at the end of the batch that moved it)");
  app.add_option("--seconds", r.seconds, "measured seconds per run")
      ->capture_default_str()
      ->check(gale::examples::positive<double>());
  app.add_option("--warmup", r.warmup, "warm-up seconds before measuring")
      ->capture_default_str()
      ->check(gale::examples::number<double>(0));
  app.add_option("--window", r.window, "ysb tumbling window size (YSB uses 10s)")->capture_default_str();
  app.add_option("--watermark-delay", r.watermarkDelay,
                 "ysb bounded out-of-orderness, subtracted from window latency")
      ->capture_default_str();
  auto* acking = app.add_option("--acking", r.acking, "continuous mode: Storm's acker")
                     ->capture_default_str()
                     ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--guarantee", r.guarantee,
                 "continuous mode: none | at-least-once (= --acking on) | exactly-once (barrier "
                 "checkpoints into LMDB, fsync'ed: the micro-batch runs' guarantee)")
      ->check(CLI::IsMember({"none", "at-least-once", "exactly-once"}))
      ->excludes(acking);
  app.add_option("--checkpoint-interval", r.checkpointInterval,
                 "continuous mode exactly-once: time between checkpoints")
      ->capture_default_str();
  app.add_option("--fusion", r.fusion,
                 "both modes: run consecutive components with compatible groupings in one task "
                 "(Continuous::fusion, docs/runtime.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--partitions", r.partitions, "source partitions = spout tasks")
      ->capture_default_str()
      ->check(gale::examples::positive<int>());
  app.add_option("--parallelism", r.parallelism, "tasks per bolt")
      ->capture_default_str()
      ->check(gale::examples::positive<int>());
  app.add_option("--check-events", r.checkEvents,
                 "events of the bounded window-equality runs (ysb; 0 = skip)")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(0));
  app.add_option("--out", r.out, "output directory")->capture_default_str();
  app.add_option("--ui", r.uiPort,
                 "serve the web UI at http://127.0.0.1:PORT/ (0: any free port): each run live, "
                 "then listed with its last metrics; it stays up after the report until Ctrl-C")
      ->check(gale::examples::number<int>(0, 65535));
  app.add_flag("--kafka", r.kafka,
               "Kafka mode: input topic -> gale -> output topic, latency measured by a consumer "
               "of the output topic, beside the no-engine floor; and Kafka -> gale -> Kafka "
               "throughput beside the cluster's own (an in-process mock cluster by default)");
  app.add_option("--bootstrap", r.bootstrap,
                 "Kafka mode against a real cluster at host:port (implies --kafka; the topics are "
                 "created there)");
  app.add_option("--kafka-pipelines", r.kafkaPipelines,
                 "Kafka mode: transform, window (tumbling --window, by Kafka timestamp), join "
                 "(stream-static), or all")
      ->capture_default_str();
  app.add_option("--kafka-partitions", r.kafkaPartitions,
                 "Kafka mode: partitions of every topic; the mock cluster keeps "
                 "at most 5 MB per partition, so a consumer ~1 s behind one at 100K/s loses records")
      ->capture_default_str()
      ->check(gale::examples::positive<int>());
  app.add_option("--kafka-spout-tasks", r.kafkaSpoutTasks,
                 "Kafka mode, continuous runs: tasks of the Kafka spout, each reading the "
                 "partitions p % tasks, with the stateless bolts fused into them (and the sink, "
                 "with one task); 0 = one per partition; micro-batch runs have one per partition")
      ->capture_default_str()
      ->check(gale::examples::number<int>(0));
  app.add_option("--kafka-parallelism", r.kafkaParallelism,
                 "Kafka mode: tasks of each bolt before the sink (0 = the spout tasks': the "
                 "stateless ones then run fused into the spout tasks); the sink has one task")
      ->capture_default_str()
      ->check(gale::examples::number<int>(0));
  app.add_flag("--kafka-stages", r.kafkaStages,
               "Kafka mode: split the continuous transform's latency into its stages (sent -> "
               "taken by the source -> the pipeline's Map -> arrival), carried in extra headers");
  app.add_option("--kafka-sink-tasks", r.kafkaSinkTasks,
                 "Kafka mode: 1 = one sink task behind a fields grouping; 0 = a sink task per "
                 "task before it (shuffle grouping: fused, one producer each)")
      ->capture_default_str()
      ->check(CLI::IsMember({0, 1}));
  app.add_option("--kafka-rounds", r.kafkaRounds,
                 "Kafka mode: rounds of each pipeline x load, the floor and gale alternating "
                 "(floor first in odd rounds, last in even ones); every round is reported with "
                 "its own ratios to the floor")
      ->capture_default_str()
      ->check(gale::examples::positive<int>());
  app.add_option("--throughput-records", r.throughputRecords,
                 "Kafka mode: records of the throughput runs (0 = skip them)")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(0));
  app.add_option("--ui-token", r.uiToken,
                 "token for the UI's deactivate / activate / kill (default: $GALE_UI_TOKEN)")
      ->envname("GALE_UI_TOKEN");
  // The values that need gale's own parsers (loads, durations, modes) are checked once all are
  // read; their errors are command-line errors too.
  app.callback([&r, &o] {
    try {
      o = toOptions(r);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError(e.what());
    }
  });
}

std::atomic<bool> gInterrupted{false};
void onSignal(int) { gInterrupted = true; }

class ProgressLine {
 public:
  ProgressLine() : tty_(isatty(2)) {}
  void show(const gc::Progress& p) {
    if (!tty_) return;
    char buf[256];
    std::snprintf(buf, sizeof buf, "\r%-10s %-20s %-8s %5.1f/%.1f s %s %12llu records %11.0f /s ",
                  p.pipeline.c_str(), p.mode.c_str(), p.load.c_str(), p.elapsed, p.total,
                  p.warmingUp ? "(warm-up)" : "         ",
                  static_cast<unsigned long long>(p.records), p.rate);
    std::cerr << buf << std::flush;
  }
  void done(const gc::ResultRow& r) {
    if (tty_) std::cerr << "\r" << std::string(110, ' ') << "\r";
    std::cerr << r.pipeline << " " << r.mode << " @ " << gc::loadLabel(r.offeredPerSec) << ": "
              << static_cast<uint64_t>(r.throughput) << " records/s, p99 " << gc::formatNanos(r.p99)
              << " (" << r.samples << " samples)" << (r.sustained ? "" : "  NOT SUSTAINED") << "\n";
  }

 private:
  bool tty_;
};

// The output files of a run: results.csv, results.json and latency.svg.
void writeFiles(const Options& o, const std::vector<gc::ResultRow>& rows, const std::string& title) {
  auto path = [&](const char* name) { return (std::filesystem::path(o.out) / name).string(); };
  std::ofstream(path("results.csv")) << [&] {
    std::ostringstream s;
    gc::writeCsv(s, rows);
    return s.str();
  }();
  std::ofstream(path("results.json")) << [&] {
    std::ostringstream s;
    gc::writeJson(s, rows);
    return s.str();
  }();
  {
    std::ofstream svg(path("latency.svg"));
    gc::writeSvgChart(svg, rows, title);
    if (!svg) throw std::runtime_error("cannot write " + path("latency.svg"));
  }
  std::cout << "raw numbers: " << path("results.csv") << ", " << path("results.json") << "\n"
            << "chart: " << path("latency.svg") << "\n" << std::flush;
}

int runKafkaMode(const Options& o) {
  std::cout << "gale-compare --kafka: " << o.settings.warmupSeconds << " s warm-up + "
            << o.settings.seconds << " s measured per run; " << o.kafkaSettings.partitions
            << " partition(s) per topic, read by "
            << (o.kafkaSettings.spoutTasks > 0
                    ? std::to_string(std::min(o.kafkaSettings.spoutTasks, o.kafkaSettings.partitions))
                    : std::string("one per partition"))
            << " spout task(s) in continuous mode; " << std::thread::hardware_concurrency()
            << " hardware threads\n";
  for (const auto& m : o.modes)
    std::cout << "  " << m.label() << ": " << gc::knobsOf(m, gc::kafkaRunSettings(o.settings)) << "\n";
  std::cout << std::flush;
  gc::KafkaReport report =
      gc::runKafkaComparison(o.kafkaPipelines, o.loads, o.modes, o.settings, o.kafkaSettings,
                             [](const std::string& what) { std::cerr << what << "\n"; });
  std::cout << "\n";
  gc::writeKafkaReport(std::cout, report);
  std::vector<gc::ResultRow> rows;
  for (const auto& r : report.latency) rows.push_back(r.row);
  writeFiles(o, rows, "gale on Kafka: continuous vs micro-batch vs no engine, end-to-end latency");
  for (const auto& r : report.latency)
    if (r.counted != r.produced) return 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  RawOptions raw;
  Options o;
  CLI::App app;
  defineOptions(app, raw, o);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;
  try {
    std::filesystem::create_directories(o.out);
    std::unique_ptr<gale::ui::UiServer> ui;
    if (o.uiPort >= 0) {
      ui = std::make_unique<gale::ui::UiServer>(
          gale::ui::UiOptions{.port = o.uiPort, .token = o.uiToken});
      o.settings.ui = ui.get();
      ui->planComparison(o.pipelines.size() * o.loads.size() * o.modes.size());
      std::cerr << "web UI: " << ui->url() << " (the comparison builds up at " << ui->url()
                << "#/compare)\n";
    }
    if (o.kafka) return runKafkaMode(o);
    auto data = std::make_shared<const gc::YsbData>();
    std::vector<gc::ResultRow> rows;
    ProgressLine line;

    std::cout << "gale-compare: " << o.settings.warmupSeconds << " s warm-up + "
              << o.settings.seconds << " s measured per run; " << std::thread::hardware_concurrency()
              << " hardware threads\n";
    for (const auto& m : o.modes) std::cout << "  " << m.label() << ": " << gc::knobsOf(m, o.settings) << "\n";
    for (auto p : o.pipelines)
      if (gc::isYsb(p))
        std::cout << "  " << gc::pipelineName(p) << ": " << gc::formatDuration(o.pipeline.window)
                  << " tumbling event-time windows, watermark delay "
                  << gc::formatDuration(o.pipeline.watermarkDelay)
                  << " (subtracted from window latency)\n";
    std::cout << std::flush;

    for (auto p : o.pipelines) {
      for (double load : o.loads) {
        for (const auto& mode : o.modes) {
          gc::PipelineOptions po = o.pipeline;
          po.pipeline = p;
          po.ratePerSecond = load;
          gc::ResultRow r = gc::runOnce(po, mode, o.settings, data,
                                        [&](const gc::Progress& pr) { line.show(pr); });
          line.done(r);
          if (ui) {
            ui->addComparisonRun({.pipeline = r.pipeline, .mode = r.mode,
                                  .load = gc::loadLabel(r.offeredPerSec), .knobs = r.knobs,
                                  .latencyKind = r.latencyKind, .throughput = r.throughput,
                                  .sustained = r.sustained, .latency = r.latency});
          }
          rows.push_back(r);
        }
      }
    }

    std::cout << "\n";
    gc::writeTable(std::cout, rows);
    std::cout << "latency: stateless/wordcount per record (scheduled time -> sink); ysb per window "
                 "result (sink - window end - watermark delay); micro-batch rows arrive at batch end\n";

    // Window equality: the same bounded input through every mode.
    std::ostringstream eq;
    bool allEqual = true;
    for (auto p : o.pipelines) {
      if (!gc::isYsb(p) || o.checkEvents <= 0 || o.modes.size() < 2) continue;
      std::cerr << "window equality check (" << gc::pipelineName(p) << "): " << o.checkEvents
                << " events through every mode...\n";
      gc::PipelineOptions po = o.pipeline;
      po.pipeline = p;
      gc::Mode reference = o.modes.front();
      gc::BoundedWindows ref =
          gc::runBoundedYsb(po, reference, o.checkEvents, data, o.settings);
      size_t compared = 0;
      for (const auto& [k, v] : ref.windows) compared += k.second <= ref.lastCompleteWindowStart;
      for (size_t i = 1; i < o.modes.size(); ++i) {
        gc::BoundedWindows other =
            gc::runBoundedYsb(po, o.modes[i], o.checkEvents, data, o.settings);
        int64_t upTo = std::min(ref.lastCompleteWindowStart, other.lastCompleteWindowStart);
        std::string diff = gc::compareWindowResults(ref.windows, other.windows, upTo);
        if (compared == 0) {
          diff = "no complete window to compare (use more --check-events)";
        }
        if (diff.empty()) {
          eq << gc::pipelineName(p) << " window results: " << reference.label()
             << " == " << o.modes[i].label() << " over " << compared << " windows ("
             << o.checkEvents << " events)\n";
        } else {
          allEqual = false;
          eq << gc::pipelineName(p) << " window results: " << reference.label()
             << " != " << o.modes[i].label() << ": " << diff << "\n";
        }
      }
    }
    std::cout << eq.str();

    std::ofstream((std::filesystem::path(o.out) / "equality.txt").string()) << eq.str();
    writeFiles(o, rows, "gale: continuous vs micro-batch end-to-end latency");
    if (ui) {
      std::signal(SIGINT, onSignal);
      std::signal(SIGTERM, onSignal);
      std::cerr << "the web UI stays at " << ui->url() << " until Ctrl-C\n";
      while (!gInterrupted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return allEqual ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "\ngale-compare: " << e.what() << "\n";
    return 1;
  }
}
