// Word count and YSB in 1, 2 and 3 worker processes over tcp loopback against one process, in
// one run (docs/benchmarks.md, "Across processes"). Word count: sentences -> split x2 -> count x2;
// YSB: gale-compare's pipeline (JSON events -> parse, keep views, project, join to campaigns x2 ->
// 1 s event-time windows per campaign x2 -> sink); acking on in both. Their tasks go round robin
// over the workers as in cluster mode (roundRobinTasks), so with 2 or 3 workers most tuples and
// acks cross a process boundary. Worker 0 (the spout) runs in this process; the others are this
// program re-executed with --worker, which write what they measured to a file this process
// merges. The word counts, and the YSB window counts, must equal a direct count of the same
// input, or the program exits 1.
#include <unistd.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <thread>

#include "gale/cluster/worker.h"
#include "gale/connectors/generator_source.h"
#include "gale/topology/topology.h"
#include "pipelines.h"  // examples/compare: the YSB pipeline
#include "word_count.h"

using namespace gale;
using namespace gale::examples;

namespace {

struct Run {
  bool ysb = false;         // false: word count
  int workers = 1;          // 0: everything in one process, inproc channels
  int64_t sentences = 0;    // input records (sentences, or YSB events)
  double rate = 0;          // records/s; 0: as fast as it goes
  int basePort = 0;
  int seconds = 0;          // paced YSB: window latencies after this long are not measured
};

// YSB: 1 s windows; saturated runs get fixed event times (five windows' worth of events from a
// window-aligned start, so the direct count knows them), paced runs the wall clock.
constexpr int64_t kYsbWindowMicros = 1'000'000;
constexpr int64_t kYsbStartMicros = 1'600'000'000'000'000;

compare::PipelineOptions ysbOptions(const Run& r) {
  compare::PipelineOptions o;
  o.pipeline = compare::Pipeline::Ysb;
  o.total = r.sentences;
  o.ratePerSecond = r.rate;
  o.parallelism = 2;
  o.window = Duration{kYsbWindowMicros};
  if (r.rate <= 0)
    o.eventTime = {Timestamp{kYsbStartMicros},
                   Duration{std::max<int64_t>(1, 5 * kYsbWindowMicros / r.sentences)}};
  return o;
}

// What one process measured. Word count: counts and latency (sentence due -> count updated);
// YSB: window results and latency (window end -> result at the sink), and the events read.
struct Results {
  std::shared_ptr<CountReport> words = std::make_shared<CountReport>();
  std::shared_ptr<compare::RunMeasurements> ysb = std::make_shared<compare::RunMeasurements>();
  compare::WindowResults windows;  // merged from every process
  Histogram latencyNanos;          // merged from every process
};

Topology topology(const Run& r, Results& results) {
  if (r.ysb) {
    static auto data = std::make_shared<const compare::YsbData>();
    return compare::buildTopology(ysbOptions(r), results.ysb, data).topology;
  }
  std::shared_ptr<CountReport> report = results.words;
  TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<SentenceSource>(SentenceSource::Options{
                              .ratePerSecond = r.rate, .total = r.sentences}), 1);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  b.setBolt("count", CountWords(report, false), 2).fieldsGrouping("split", {"word"});
  return b.build();
}

WorkerAssignment assignment(const Run& r, int self, const Topology& t) {
  WorkerAssignment a;
  for (int w = 0; w < r.workers; ++w)
    a.endpoints.push_back("tcp://127.0.0.1:" + std::to_string(r.basePort + 100 * w));
  a.workerOfTask = cluster::roundRobinTasks(totalTasks(t, Continuous{}), r.workers);
  a.self = self;
  return a;
}

// Counts, window results and latency buckets, one "w <word> <count>", "r <campaign> <window
// start> <count>" or "b <bucket upper> <n>" per line.
void writeReport(const Run& r, Results& results, const std::string& file) {
  std::ofstream out(file);
  for (auto& [w, n] : results.words->counts) out << "w " << w << " " << n << "\n";
  for (auto& [key, n] : results.ysb->windowResults())
    out << "r " << key.first << " " << key.second << " " << n << "\n";
  Histogram h = r.ysb ? results.ysb->mergedLatency() : results.words->latencyNanos;
  uint64_t below = 0;
  for (int b = 0; b < Histogram::kBuckets && below < h.count(); ++b) {
    uint64_t upTo = h.countAtOrBelow(Histogram::bucketUpper(b));
    if (upTo > below) out << "b " << Histogram::bucketUpper(b) << " " << upTo - below << "\n";
    below = upTo;
  }
}

void readReport(const std::string& file, Results& results) {
  std::ifstream in(file);
  std::string kind, word;
  int64_t a = 0, n = 0;
  while (in >> kind) {
    if (kind == "w" && in >> word >> n) results.words->counts[word] += n;
    if (kind == "r" && in >> word >> a >> n) results.windows[{word, a}] += n;
    if (kind == "b" && in >> a >> n) results.latencyNanos.recordN(a, static_cast<uint64_t>(n));
  }
}

// A paced YSB run measures the windows that close while events arrive: those the end of input
// flushes early are left out.
void limitMeasurement(const Run& r, Results& results) {
  if (r.ysb && r.rate > 0)
    results.ysb->setMeasurementEnd(SystemClock::steadyNanos() +
                                   int64_t{r.seconds} * 1'000'000'000);
}

// A configuration's first port: workers bind base + task. Below 32768, Linux's first ephemeral
// port, so that no outgoing connection holds one of them.
int basePort(std::mt19937& rng) { return 20000 + static_cast<int>(rng() % 120) * 100; }

// Runs one configuration; returns input records/s and fills `results` with every process's
// results.
double runOnce(const Run& r, const char* self, Results& results) {
  Topology t = topology(r, results);
  limitMeasurement(r, results);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<pid_t, std::string>> children;
  if (r.workers == 0) {
    runContinuous(t, Continuous{}).waitUntilDone();
  } else {
    for (int w = 1; w < r.workers; ++w) {
      std::string out = "/tmp/gale-cluster-bench-" + std::to_string(::getpid()) + "-" +
                        std::to_string(w);
      std::vector<std::string> args{self, "--worker", std::to_string(w), "--workers",
                                    std::to_string(r.workers), "--base-port",
                                    std::to_string(r.basePort), "--sentences",
                                    std::to_string(r.sentences), "--rate-sentences",
                                    std::to_string(r.rate), "--report", out};
      if (r.ysb) args.push_back("--ysb-worker");
      if (r.seconds > 0) args.insert(args.end(), {"--seconds", std::to_string(r.seconds)});
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      pid_t pid = ::fork();
      if (pid == 0) {
        ::execv(self, argv.data());
        ::_exit(127);
      }
      children.push_back({pid, out});
    }
    // A worker that fails would leave this one waiting for its tasks forever: look at the
    // children while waiting.
    std::optional<RunningTopology> started;
    try {
      started.emplace(runWorker(t, Continuous{}, assignment(r, 0, t)));
    } catch (const std::exception& e) {
      // Its workers would wait for it forever.
      for (auto& [pid, out] : children) ::kill(pid, SIGKILL);
      std::fprintf(stderr, "worker 0 failed to start: %s\n", e.what());
      std::exit(1);
    }
    RunningTopology& rt = *started;
    while (!rt.waitUntilDone(std::chrono::milliseconds(200)))
      for (auto& [pid, out] : children) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          pid = 0;  // reaped
          if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "a worker process failed (status %d)\n", status);
            std::exit(1);
          }
        }
      }
  }
  bool ok = true;
  for (auto& [pid, out] : children) {
    int status = 0;
    if (pid == 0) continue;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!ok) {
    std::fprintf(stderr, "a worker process failed\n");
    std::exit(1);
  }
  for (auto& [key, n] : results.ysb->windowResults()) results.windows[key] += n;
  results.latencyNanos.merge(r.ysb ? results.ysb->mergedLatency() : results.words->latencyNanos);
  for (auto& [pid, out] : children) {
    readReport(out, results);
    std::remove(out.c_str());
  }
  if (r.ysb) return static_cast<double>(r.sentences) / s;
  int64_t words = 0;
  for (auto& [w, n] : results.words->counts) words += n;
  return static_cast<double>(words) / s;
}

// The YSB oracle: views per campaign per window, from the generator's definition.
compare::WindowResults directYsbCount(const Run& r) {
  compare::YsbData data;
  int64_t step = ysbOptions(r).eventTime.eventTimeStep.count();
  compare::WindowResults out;
  for (int64_t g = 0; g < r.sentences; ++g) {
    if (!data.isView(g)) continue;
    int64_t t = (kYsbStartMicros + g * step) / 1000 * 1000;  // YSB's millisecond event_time
    ++out[{data.campaignOf(g), t / kYsbWindowMicros * kYsbWindowMicros}];
  }
  return out;
}

const char* const kNames[] = {"one process (inproc)", "1 worker process (tcp)",
                              "2 worker processes (tcp)", "3 worker processes (tcp)"};

// YSB saturated (events/s, windows checked) and paced (window latency) in each configuration.
int ysbRuns(int64_t events, double rate, int seconds, const char* self, std::mt19937& rng) {
  std::printf("YSB, acking on, parallelism 2 per bolt, 1 s windows; %lld events saturated\n",
              static_cast<long long>(events));
  compare::WindowResults direct = directYsbCount(Run{true, 0, events});
  for (int workers : {0, 1, 2, 3}) {
    Run saturated{true, workers, events, 0, basePort(rng)};
    Results a;
    double eps = runOnce(saturated, self, a);
    if (a.windows != direct) {
      std::fprintf(stderr, "%s: YSB window counts differ from the direct count (%zu windows, "
                   "%zu expected)\n", kNames[workers], a.windows.size(), direct.size());
      return 1;
    }
    Run paced{true, workers, static_cast<int64_t>(rate * seconds), rate,
              basePort(rng), seconds};
    Results b;
    runOnce(paced, self, b);
    const Histogram& h = b.latencyNanos;
    if (h.count() == 0) {
      std::printf("  %-26s saturated %9.0f events/s | no window closed while events arrived "
                  "(a longer --seconds)\n", kNames[workers], eps);
      continue;
    }
    std::printf("  %-26s saturated %9.0f events/s | %.0f K events/s offered: window latency "
                "p50 %7.1f ms  p99 %7.1f ms  (n=%llu)\n",
                kNames[workers], eps, rate / 1e3, h.percentile(0.5) / 1e6,
                h.percentile(0.99) / 1e6, static_cast<unsigned long long>(h.count()));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Run r;
  int worker = -1;
  std::string reportFile, pipeline = "all";
  double wordRate = 100000, ysbRate = 50000;
  int64_t events = 1'000'000;
  int seconds = 3;
  CLI::App app{"cluster_bench: word count and YSB in 1, 2 and 3 worker processes over tcp vs "
               "one process"};
  app.add_option("--pipeline", pipeline, "wordcount, ysb or all")->capture_default_str()
      ->check(CLI::IsMember({"wordcount", "ysb", "all"}));
  app.add_option("--sentences", r.sentences, "sentences for the saturated word count runs")
      ->default_val(300000)->check(CLI::Range(int64_t{1000}, int64_t{100000000}));
  app.add_option("--rate", wordRate, "offered words/s of the word count latency runs")
      ->capture_default_str()->check(CLI::Range(1000.0, 1e8));
  app.add_option("--ysb-events", events, "events for the saturated YSB runs")
      ->capture_default_str()->check(CLI::Range(int64_t{10000}, int64_t{100000000}));
  app.add_option("--ysb-rate", ysbRate, "offered events/s of the YSB latency runs")
      ->capture_default_str()->check(CLI::Range(1000.0, 1e8));
  app.add_option("--seconds", seconds, "length of the latency runs")->capture_default_str()
      ->check(CLI::Range(1, 600));
  // A worker process of the run (internal).
  app.add_option("--worker", worker)->group("");
  app.add_option("--workers", r.workers)->group("");
  app.add_option("--base-port", r.basePort)->group("");
  app.add_option("--rate-sentences", r.rate)->group("");
  app.add_option("--report", reportFile)->group("");
  app.add_flag("--ysb-worker", r.ysb)->group("");
  CLI11_PARSE(app, argc, argv);

  if (worker > 0) {
    r.seconds = seconds;
    Results results;
    Topology t = topology(r, results);
    limitMeasurement(r, results);
    runWorker(t, Continuous{}, assignment(r, worker, t)).waitUntilDone();
    writeReport(r, results, reportFile);
    return 0;
  }

  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  if (pipeline != "wordcount" && ysbRuns(events, ysbRate, seconds, argv[0], rng) != 0) return 1;
  if (pipeline == "ysb") return 0;
  WordCounts direct;
  for (int64_t g = 0; g < r.sentences; ++g) countDirectly(SentenceSource::sentenceAt(g), direct);
  int64_t words = 0;
  for (auto& [w, n] : direct) words += n;
  double perSentence = static_cast<double>(words) / static_cast<double>(r.sentences);
  std::printf("word count, acking on, parallelism 2 per bolt; %lld sentences = %lld words\n",
              static_cast<long long>(r.sentences), static_cast<long long>(words));
  for (int workers : {0, 1, 2, 3}) {
    Run saturated{false, workers, r.sentences, 0, basePort(rng)};
    Results a;
    double wps = runOnce(saturated, argv[0], a);
    if (a.words->counts != direct) {
      std::fprintf(stderr, "%s: counts differ from the direct count\n", kNames[workers]);
      return 1;
    }
    Run paced{false, workers, static_cast<int64_t>(wordRate / perSentence * seconds),
              wordRate / perSentence, basePort(rng)};
    Results b;
    runOnce(paced, argv[0], b);
    const Histogram& h = b.latencyNanos;
    std::printf("  %-26s saturated %9.0f words/s | %.0f K words/s offered: p50 %7.1f us  "
                "p99 %8.1f us  (n=%llu)\n",
                kNames[workers], wps, wordRate / 1e3, h.percentile(0.5) / 1e3,
                h.percentile(0.99) / 1e3, static_cast<unsigned long long>(h.count()));
  }
  return 0;
}
