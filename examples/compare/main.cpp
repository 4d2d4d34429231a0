// gale-compare: continuous vs micro-batch latency and throughput, same topology, same operators,
// same transport; only the run call differs. See docs/compare.md.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
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

#include "gale/ui/ui_server.h"
#include "runner.h"

namespace gc = gale::compare;

namespace {

std::atomic<bool> gInterrupted{false};
void onSignal(int) { gInterrupted = true; }

const char* kUsage = R"(usage: gale-compare [options]

Runs a pipeline in continuous mode and in micro-batch mode at several trigger intervals and
offered loads, for a fixed time each, and reports sustained throughput and end-to-end latency
(p50/p90/p99/p99.9/max). With no options: the YSB pipeline, continuous vs micro-batch 100ms and
1s, at 10K and 100K events/s, about a minute in total.

  --pipeline P      stateless | wordcount | ysb | all            (default ysb)
  --loads L         offered loads, events/s: 10000,100K,1M,max    (default 10K,100K)
  --intervals I     micro-batch trigger intervals: 0,100ms,1s      (default 100ms,1s)
                    (0 = the next batch as soon as the previous one ended);
                    continuous mode always runs too unless --no-continuous
  --no-continuous   only the micro-batch runs
  --seconds S       measured seconds per run                       (default 5)
  --warmup S        warm-up seconds before measuring               (default 1.5)
  --window D        ysb tumbling window size                       (default 1s; YSB uses 10s)
  --watermark-delay D  ysb bounded out-of-orderness, subtracted from window latency (default 0)
  --acking on|off   continuous mode: Storm's acker                 (default off)
  --partitions N    source partitions = spout tasks                (default 1)
  --parallelism N   tasks per bolt                                  (default 1)
  --check-events N  events of the bounded window-equality runs (ysb; 0 = skip) (default 200000)
  --out DIR         output directory                               (default ./compare-out)
  --ui PORT         the web UI at http://127.0.0.1:PORT/: each run live, then listed with its
                    last metrics; it stays up after the report until Ctrl-C (0 = any port)
  --ui-token T      enables the UI's deactivate/activate/kill (or set GALE_UI_TOKEN)
  --help            this text

Latency: stateless and wordcount, per record (the generator's scheduled time -> sink); ysb, per
window result (the time it reaches the sink - the window's end - the watermark delay). In
micro-batch mode a row counts as arrived when its batch is output (the sink's onBatchEnd).
Files in DIR: results.csv, results.json, latency.svg, equality.txt.
)";

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

double parsePositive(const std::string& flag, const std::string& s, bool allowZero = false) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size() && (v > 0 || (allowZero && v == 0))) return v;
  } catch (const std::logic_error&) {
  }
  throw std::invalid_argument(flag + " needs a " + (allowZero ? "non-negative" : "positive") +
                              " number, got '" + s + "'");
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
};

Options parseArgs(int argc, char** argv) {
  Options o;
  o.pipeline.window = std::chrono::seconds(1);
  if (const char* t = std::getenv("GALE_UI_TOKEN")) o.uiToken = t;
  std::vector<std::string> intervals{"100ms", "1s"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value (see --help)");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--pipeline") {
      std::string v = value();
      if (v == "all") o.pipelines = {gc::Pipeline::Stateless, gc::Pipeline::WordCount, gc::Pipeline::Ysb};
      else {
        o.pipelines.clear();
        for (auto& p : split(v)) o.pipelines.push_back(gc::parsePipeline(p));
      }
    } else if (a == "--loads") {
      o.loads.clear();
      for (auto& l : split(value())) o.loads.push_back(parseLoad(l));
    } else if (a == "--intervals") {
      intervals = split(value());
    } else if (a == "--no-continuous") {
      o.continuous = false;
    } else if (a == "--seconds") {
      o.settings.seconds = parsePositive(a, value());
    } else if (a == "--warmup") {
      o.settings.warmupSeconds = parsePositive(a, value(), true);
    } else if (a == "--window") {
      o.pipeline.window = gc::parseDuration(value());
      if (o.pipeline.window.count() <= 0) throw std::invalid_argument("--window must be positive");
    } else if (a == "--watermark-delay") {
      o.pipeline.watermarkDelay = gc::parseDuration(value());
    } else if (a == "--acking") {
      std::string v = value();
      if (v != "on" && v != "off") throw std::invalid_argument("--acking takes on or off, got '" + v + "'");
      o.settings.acking = v == "on";
    } else if (a == "--partitions") {
      o.pipeline.partitions = static_cast<int>(parsePositive(a, value()));
    } else if (a == "--parallelism") {
      o.pipeline.parallelism = static_cast<int>(parsePositive(a, value()));
    } else if (a == "--check-events") {
      o.checkEvents = static_cast<int64_t>(parsePositive(a, value(), true));
    } else if (a == "--out") {
      o.out = value();
    } else if (a == "--ui") {
      std::string v = value();
      double port = parsePositive(a, v, true);
      if (port > 65535 || port != static_cast<int>(port))
        throw std::invalid_argument("--ui needs a port 0-65535, got '" + v + "'");
      o.uiPort = static_cast<int>(port);
    } else if (a == "--ui-token") {
      o.uiToken = value();
    } else {
      throw std::invalid_argument("unknown option '" + a + "' (see --help)");
    }
  }
  if (o.continuous) o.modes.push_back(gc::Mode{});
  for (auto& s : intervals) {
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

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parseArgs(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "gale-compare: " << e.what() << "\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(o.out);
    std::unique_ptr<gale::ui::UiServer> ui;
    if (o.uiPort >= 0) {
      ui = std::make_unique<gale::ui::UiServer>(
          gale::ui::UiOptions{.port = o.uiPort, .token = o.uiToken});
      o.settings.ui = ui.get();
      std::cerr << "web UI: " << ui->url() << "\n";
    }
    auto data = std::make_shared<const gc::YsbData>();
    std::vector<gc::ResultRow> rows;
    ProgressLine line;

    std::cout << "gale-compare: " << o.settings.warmupSeconds << " s warm-up + "
              << o.settings.seconds << " s measured per run; " << std::thread::hardware_concurrency()
              << " hardware threads\n";
    for (const auto& m : o.modes) std::cout << "  " << m.label() << ": " << gc::knobsOf(m, o.settings) << "\n";
    for (auto p : o.pipelines)
      if (p == gc::Pipeline::Ysb)
        std::cout << "  ysb: " << gc::formatDuration(o.pipeline.window)
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
    bool ysb = false;
    for (auto p : o.pipelines) ysb |= p == gc::Pipeline::Ysb;
    if (ysb && o.checkEvents > 0 && o.modes.size() > 1) {
      std::cerr << "window equality check: " << o.checkEvents << " events through every mode...\n";
      gc::Mode reference = o.modes.front();
      gc::BoundedWindows ref = gc::runBoundedYsb(o.pipeline, reference, o.checkEvents, data,
                                                 o.settings.acking);
      size_t compared = 0;
      for (const auto& [k, v] : ref.windows) compared += k.second <= ref.lastCompleteWindowStart;
      for (size_t i = 1; i < o.modes.size(); ++i) {
        gc::BoundedWindows other =
            gc::runBoundedYsb(o.pipeline, o.modes[i], o.checkEvents, data, o.settings.acking);
        int64_t upTo = std::min(ref.lastCompleteWindowStart, other.lastCompleteWindowStart);
        std::string diff = gc::compareWindowResults(ref.windows, other.windows, upTo);
        if (compared == 0) {
          diff = "no complete window to compare (use more --check-events)";
        }
        if (diff.empty()) {
          eq << "window results: " << reference.label() << " == " << o.modes[i].label() << " over "
             << compared << " windows (" << o.checkEvents << " events)\n";
        } else {
          allEqual = false;
          eq << "window results: " << reference.label() << " != " << o.modes[i].label() << ": "
             << diff << "\n";
        }
      }
    }
    std::cout << eq.str();

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
    std::ofstream(path("equality.txt")) << eq.str();
    {
      std::ofstream svg(path("latency.svg"));
      gc::writeSvgChart(svg, rows, "gale: continuous vs micro-batch end-to-end latency");
      if (!svg) throw std::runtime_error("cannot write " + path("latency.svg"));
    }
    std::cout << "raw numbers: " << path("results.csv") << ", " << path("results.json") << "\n"
              << "chart: " << path("latency.svg") << "\n" << std::flush;
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
