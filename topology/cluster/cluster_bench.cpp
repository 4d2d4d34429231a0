// Word count in 1, 2 and 3 worker processes over tcp loopback against one process, in one run
// (docs/benchmarks.md, "Across processes"). The topology is word_count's (sentences -> split x2
// -> count x2, acking on); its tasks go round robin over the workers as in cluster mode
// (roundRobinTasks), so with 2 or 3 workers most tuples and acks cross a process boundary.
// Worker 0 (the spout) runs in this process; the others are this program re-executed with
// --worker, which write their counts and latency histogram to a file this process merges. The
// counts must equal a direct count of the same sentences, or the program exits 1.
#include <unistd.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "gale/cluster/worker.h"
#include "gale/connectors/generator_source.h"
#include "gale/topology/topology.h"
#include "word_count.h"

using namespace gale;
using namespace gale::examples;

namespace {

struct Run {
  int workers = 1;          // 0: everything in one process, inproc channels
  int64_t sentences = 0;
  double rate = 0;          // sentences/s; 0: as fast as it goes
  int basePort = 0;
};

Topology topology(const Run& r, std::shared_ptr<CountReport> report) {
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

// Counts and latency buckets, one "word count" or "b <bucket upper> <n>" per line.
void writeReport(const CountReport& report, const std::string& file) {
  std::ofstream out(file);
  for (auto& [w, n] : report.counts) out << "w " << w << " " << n << "\n";
  const Histogram& h = report.latencyNanos;
  uint64_t below = 0;
  for (int b = 0; b < Histogram::kBuckets && below < h.count(); ++b) {
    uint64_t upTo = h.countAtOrBelow(Histogram::bucketUpper(b));
    if (upTo > below) out << "b " << Histogram::bucketUpper(b) << " " << upTo - below << "\n";
    below = upTo;
  }
}

void readReport(const std::string& file, CountReport& report) {
  std::ifstream in(file);
  std::string kind, word;
  int64_t a = 0, n = 0;
  while (in >> kind) {
    if (kind == "w" && in >> word >> n) report.counts[word] += n;
    if (kind == "b" && in >> a >> n) report.latencyNanos.recordN(a, static_cast<uint64_t>(n));
  }
}

// Runs one configuration; returns words/s and fills `report` with every process's results.
double runOnce(const Run& r, const char* self, CountReport& report) {
  auto local = std::make_shared<CountReport>();
  Topology t = topology(r, local);
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
    runWorker(t, Continuous{}, assignment(r, 0, t)).waitUntilDone();
  }
  bool ok = true;
  for (auto& [pid, out] : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!ok) {
    std::fprintf(stderr, "a worker process failed\n");
    std::exit(1);
  }
  report.merge(local->counts, local->latencyNanos);
  for (auto& [pid, out] : children) {
    readReport(out, report);
    std::remove(out.c_str());
  }
  int64_t words = 0;
  for (auto& [w, n] : report.counts) words += n;
  return static_cast<double>(words) / s;
}

}  // namespace

int main(int argc, char** argv) {
  Run r;
  int worker = -1;
  std::string reportFile;
  double wordRate = 100000;
  int seconds = 3;
  CLI::App app{"cluster_bench: word count in 1, 2 and 3 worker processes over tcp vs one process"};
  app.add_option("--sentences", r.sentences, "sentences for the saturated runs")
      ->default_val(300000)->check(CLI::Range(int64_t{1000}, int64_t{100000000}));
  app.add_option("--rate", wordRate, "offered words/s of the latency runs")
      ->capture_default_str()->check(CLI::Range(1000.0, 1e8));
  app.add_option("--seconds", seconds, "length of the latency runs")->capture_default_str()
      ->check(CLI::Range(1, 600));
  // A worker process of the run (internal).
  app.add_option("--worker", worker)->group("");
  app.add_option("--workers", r.workers)->group("");
  app.add_option("--base-port", r.basePort)->group("");
  app.add_option("--rate-sentences", r.rate)->group("");
  app.add_option("--report", reportFile)->group("");
  CLI11_PARSE(app, argc, argv);

  if (worker > 0) {
    auto report = std::make_shared<CountReport>();
    Topology t = topology(r, report);
    runWorker(t, Continuous{}, assignment(r, worker, t)).waitUntilDone();
    writeReport(*report, reportFile);
    return 0;
  }

  WordCounts direct;
  for (int64_t g = 0; g < r.sentences; ++g) countDirectly(SentenceSource::sentenceAt(g), direct);
  int64_t words = 0;
  for (auto& [w, n] : direct) words += n;
  double perSentence = static_cast<double>(words) / static_cast<double>(r.sentences);
  std::printf("word count, acking on, parallelism 2 per bolt; %lld sentences = %lld words\n",
              static_cast<long long>(r.sentences), static_cast<long long>(words));
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  for (int workers : {0, 1, 2, 3}) {
    const char* name[] = {"one process (inproc)", "1 worker process (tcp)",
                          "2 worker processes (tcp)", "3 worker processes (tcp)"};
    Run saturated{workers, r.sentences, 0, 20000 + static_cast<int>(rng() % 400) * 100};
    CountReport a;
    double wps = runOnce(saturated, argv[0], a);
    if (a.counts != direct) {
      std::fprintf(stderr, "%s: counts differ from the direct count\n", name[workers]);
      return 1;
    }
    Run paced{workers, static_cast<int64_t>(wordRate / perSentence * seconds),
              wordRate / perSentence, 20000 + static_cast<int>(rng() % 400) * 100};
    CountReport b;
    runOnce(paced, argv[0], b);
    const Histogram& h = b.latencyNanos;
    std::printf("  %-26s saturated %9.0f words/s | %.0f K words/s offered: p50 %7.1f us  "
                "p99 %8.1f us  (n=%llu)\n",
                name[workers], wps, wordRate / 1e3, h.percentile(0.5) / 1e3,
                h.percentile(0.99) / 1e3, static_cast<unsigned long long>(h.count()));
  }
  return 0;
}
