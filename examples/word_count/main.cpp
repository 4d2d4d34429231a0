// word_count: sentences in, split (shuffle), count (fields grouping on "word"), results out.
//
//   word_count                      built-in sentence generator, bounded; prints the top words
//                                   and checks them against a direct count of the same input
//   word_count --no-check           the same without that check (the engine's work alone, for
//                                   instruction counts: the check counts every word again)
//   word_count --socket host:port   lines from a TCP server (e.g. `nc -lk 9999`), prints every
//                                   count update until Ctrl-C (Spark's NetworkWordCount)
//   word_count --bench              throughput and latency figures (docs/benchmarks.md)
//   word_count --ui-cost            the same with and without the web UI open and polled,
//                                   interleaved, and the ratios (docs/benchmarks.md)
//   word_count --guarantees         the same job with no guarantee, at-least-once (acking) and
//                                   exactly-once (checkpoints): throughput and latency of each
//   word_count --ui 8080 [--rate N] the web UI at http://127.0.0.1:8080/ while it runs (and
//                                   after, until Ctrl-C); --ui-token T (or GALE_UI_TOKEN)
//                                   enables its deactivate / activate / kill buttons
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gale/connectors/console_sink.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/socket_source.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"
#include "cli.h"
#include "example_ui.h"
#include "ui_watcher.h"
#include "word_count.h"

using namespace gale;
using namespace gale::examples;

namespace {

std::atomic<bool> gInterrupted{false};
void onSignal(int) { gInterrupted = true; }

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

Topology wordCountTopology(SourcePtr source, std::shared_ptr<CountReport> report,
                           bool emitUpdates, bool printUpdates, int parallelism) {
  TopologyBuilder b;
  b.setSpout("sentences", std::move(source), 1);
  b.setBolt("split", SplitWords{}, parallelism).shuffleGrouping("sentences");
  auto count = b.setBolt("count", CountWords(report, emitUpdates), parallelism)
                   .fieldsGrouping("split", {"word"});
  // GALE_WC_COUNT_APART=1: the count on a thread of its own (spout and split fused, the peer's
  // --chaining layout), to measure the cross-thread hop (docs/benchmarks.md).
  if (const char* apart = std::getenv("GALE_WC_COUNT_APART"); apart && std::strcmp(apart, "0"))
    count.disableFusion();
  if (printUpdates) b.setBolt("print", ConsoleSink{}, 1).globalGrouping("count");
  return b.build();
}

// GALE_FUSION=0 turns Continuous::fusion off (to measure what fusion gives).
void fusionFromEnvironment(Continuous& c) {
  if (const char* f = std::getenv("GALE_FUSION")) c.fusion = std::strcmp(f, "0") != 0;
}

// check: count the same input again directly afterwards and compare (the exit status says
// whether they are equal); without it the run is the engine's work alone.
int runGenerated(int64_t sentences, Guarantee guarantee, Duration checkpointInterval, double rate,
                 int parallelism, bool check, const UiFlags& uiFlags) {
  SentenceSource::Options o;
  o.partitions = 2;
  o.total = sentences;
  o.ratePerSecond = rate;
  auto report = std::make_shared<CountReport>();
  Topology t =
      wordCountTopology(std::make_shared<SentenceSource>(o), report, false, false, parallelism);
  auto start = std::chrono::steady_clock::now();
  Continuous config;
  config.guarantee = guarantee;
  // Exactly-once: a fresh checkpoint directory per run (removed at the end), so the counts are
  // of this run's input.
  std::filesystem::path chk = std::filesystem::temp_directory_path() /
                              ("gale-word-count-" + std::to_string(::getpid()));
  std::filesystem::remove_all(chk);
  config.checkpointDir = chk.string();
  config.checkpointInterval = checkpointInterval;
  fusionFromEnvironment(config);
  auto server = startUi(uiFlags);
  auto rt = runContinuous(t, config);
  UiAttachment shown(server.get(), rt, "word count");
  rt.waitUntilDone();
  double s = seconds(std::chrono::steady_clock::now() - start);
  if (guarantee == Guarantee::ExactlyOnce)
    std::printf("checkpoints completed: %llu\n",
                static_cast<unsigned long long>(StateStore::inspect(chk.string())->lastCommittedTxid()));
  std::filesystem::remove_all(chk);
  auto m = rt.metrics();
  for (const auto& c : m.components) {
    TaskMetrics tm = c.total();
    std::printf("  %-10s executed %9llu  emitted %9llu  frames in %7llu  blocked flushes %llu\n",
                c.name.c_str(), static_cast<unsigned long long>(tm.executed),
                static_cast<unsigned long long>(tm.emitted),
                static_cast<unsigned long long>(tm.framesReceived),
                static_cast<unsigned long long>(tm.blockedFlushes));
  }

  std::vector<std::pair<std::string, int64_t>> top(report->counts.begin(), report->counts.end());
  std::sort(top.begin(), top.end(), [](auto& a, auto& b) { return a.second > b.second; });
  int64_t words = 0;  // as counted by the engine
  for (auto& [w, n] : report->counts) words += n;
  std::printf("%lld sentences, %lld words in %.2f s; top words:\n",
              static_cast<long long>(sentences), static_cast<long long>(words), s);
  for (size_t i = 0; i < top.size() && i < 10; ++i)
    std::printf("  %-12s %lld\n", top[i].first.c_str(), static_cast<long long>(top[i].second));
  bool same = true;
  if (check) {
    WordCounts direct;
    for (int64_t g = 0; g < sentences; ++g) countDirectly(SentenceSource::sentenceAt(g), direct);
    same = report->counts == direct;
    std::printf("equal to a direct count of the same input: %s\n", same ? "yes" : "NO");
  } else {
    std::printf("not checked against a direct count (--no-check)\n");
  }
  std::fflush(stdout);
  keepUiUntilInterrupted(server.get());
  return same ? 0 : 1;
}

int runSocket(const std::string& hostPort, const UiFlags& uiFlags) {
  auto colon = hostPort.rfind(':');  // checked by hostPort() on the command line
  std::string host = hostPort.substr(0, colon);
  int port = std::atoi(hostPort.c_str() + colon + 1);
  auto report = std::make_shared<CountReport>();
  Topology t = wordCountTopology(std::make_shared<SocketSource>(host, port), report, true, true, 2);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  std::fprintf(stderr, "reading lines from %s:%d; Ctrl-C stops\n", host.c_str(), port);
  auto server = startUi(uiFlags);
  auto rt = runContinuous(t, Continuous{});
  UiAttachment shown(server.get(), rt, "word count");
  while (!gInterrupted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  rt.stop();
  return 0;
}

// ---------------------------------------------------------------- benchmark

struct RunResult {
  double wordsPerSecond = 0;
  Histogram latency;
  int64_t words = 0;
  uint64_t uiPolls = 0;  // with the UI: requests it answered during the run
};

int64_t wordsIn(int64_t sentences) {
  int64_t n = 0;
  for (int64_t g = 0; g < sentences; ++g)
    forEachWord(SentenceSource::sentenceAt(g), [&](std::string_view) { ++n; });
  return n;
}

// How a benchmark run is reliable: Continuous::guarantee, and for exactly-once the checkpoint
// interval (checkpoints go to a fresh directory under $TMPDIR, fsync'ed, removed afterwards).
struct GuaranteeSetting {
  Guarantee guarantee = Guarantee::AtLeastOnce;
  Duration checkpointInterval = std::chrono::seconds(1);
};

// Bounded run as fast as it goes (rate 0) or at a fixed rate for a duration; withUi: with the
// web UI attached and polled every second all along (UiWatcher).
RunResult runTopology(GuaranteeSetting g, double sentencesPerSecond, int64_t sentences,
                      int* checkpoints = nullptr, bool withUi = false) {
  SentenceSource::Options o;
  o.partitions = 1;
  o.total = sentences;
  o.ratePerSecond = sentencesPerSecond;
  auto report = std::make_shared<CountReport>();
  Topology t = wordCountTopology(std::make_shared<SentenceSource>(o), report, false, false, 1);
  Continuous c;
  c.guarantee = g.guarantee;
  std::filesystem::path chk = std::filesystem::temp_directory_path() /
                              ("gale-word-count-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(chk);
  c.checkpointDir = chk.string();
  c.checkpointInterval = g.checkpointInterval;
  auto written = std::make_shared<std::atomic<int>>(0);
  c.onCheckpointPoint = [written](CheckpointPoint p, uint64_t) {
    if (p == CheckpointPoint::CheckpointWritten) ++*written;
  };
  if (const char* spin = std::getenv("GALE_IDLE_SPIN_US"))
    c.idleSpin = std::chrono::microseconds(std::atoll(spin));
  fusionFromEnvironment(c);
  if (const char* budget = std::getenv("GALE_SPIN_BUDGET_US"))
    c.spinBudget = std::chrono::microseconds(std::atoll(budget));
  auto start = std::chrono::steady_clock::now();
  auto rt = runContinuous(t, c);
  std::unique_ptr<UiWatcher> ui = withUi ? std::make_unique<UiWatcher>(rt) : nullptr;
  rt.waitUntilDone();
  double s = seconds(std::chrono::steady_clock::now() - start);
  uint64_t uiPolls = ui ? ui->polls() : 0;
  ui.reset();
  if (std::getenv("GALE_VERBOSE")) {
    for (const auto& cm : rt.metrics().components) {
      TaskMetrics m = cm.total();
      std::printf("    %-10s frames in %8llu  blocked %6llu  execute %s\n", cm.name.c_str(),
                  static_cast<unsigned long long>(m.framesReceived),
                  static_cast<unsigned long long>(m.blockedFlushes),
                  m.executeLatency.summary(1e3, "us").c_str());
    }
  }
  std::filesystem::remove_all(chk);
  if (checkpoints) *checkpoints = *written;
  RunResult r;
  for (auto& [w, n] : report->counts) r.words += n;
  r.wordsPerSecond = static_cast<double>(r.words) / s;
  r.latency = report->latencyNanos;
  r.uiPolls = uiPolls;
  return r;
}

void printLatency(const char* what, const Histogram& h) {
  std::printf("  %-34s p50 %8.1f us  p99 %8.1f us  p99.9 %8.1f us  (n=%llu)\n", what,
              h.percentile(0.5) / 1e3, h.percentile(0.99) / 1e3, h.percentile(0.999) / 1e3,
              static_cast<unsigned long long>(h.count()));
}

void runLatency(double words, double wordsPerSentence, int seconds) {
  // Latency at a fixed offered rate, on the generator's schedule (no coordinated omission).
  double rate = words / wordsPerSentence;
  int64_t n = static_cast<int64_t>(rate * seconds);
  for (bool acking : {false, true}) {
    RunResult r = runTopology({acking ? Guarantee::AtLeastOnce : Guarantee::None}, rate, n);
    std::printf("  %.0f K words/s offered, acking %-3s %10.0f words/s done\n", words / 1e3,
                acking ? "on" : "off", r.wordsPerSecond);
    printLatency("  end-to-end latency", r.latency);
  }
}

int runBench(int64_t sentences, bool latencyOnly) {
  int64_t words = wordsIn(sentences);
  // The baseline: split and count in one thread, no engine.
  auto t0 = std::chrono::steady_clock::now();
  WordCounts direct;
  for (int64_t g = 0; g < sentences; ++g) countDirectly(SentenceSource::sentenceAt(g), direct);
  double bareS = seconds(std::chrono::steady_clock::now() - t0);
  double bare = static_cast<double>(words) / bareS;
  std::printf("word count, %lld sentences = %lld words, %u hardware threads\n",
              static_cast<long long>(sentences), static_cast<long long>(words),
              std::thread::hardware_concurrency());
  std::printf("  bare single-threaded loop          %10.0f words/s\n", bare);
  double wordsPerSentence = static_cast<double>(words) / static_cast<double>(sentences);
  if (latencyOnly) {
    runLatency(100000, wordsPerSentence, 3);
    return 0;
  }

  RunResult off = runTopology({Guarantee::None}, 0, sentences);
  std::printf("  topology, acking off               %10.0f words/s  (%.2fx the bare loop)\n",
              off.wordsPerSecond, off.wordsPerSecond / bare);
  printLatency("  end-to-end latency, saturated", off.latency);
  RunResult on = runTopology({Guarantee::AtLeastOnce}, 0, sentences);
  std::printf("  topology, acking on                %10.0f words/s  (%.2fx the bare loop)\n",
              on.wordsPerSecond, on.wordsPerSecond / bare);
  printLatency("  end-to-end latency, saturated", on.latency);

  runLatency(100000, wordsPerSentence, 3);
  return 0;
}

// The cost of each guarantee on the same job: saturated throughput, then latency at a fixed
// offered rate, for none / at-least-once / exactly-once, in one run (compare the ratios).
int runGuarantees(int64_t sentences, Duration interval, double offeredWords) {
  int64_t words = wordsIn(sentences);
  double wordsPerSentence = static_cast<double>(words) / static_cast<double>(sentences);
  std::printf("word count, %lld sentences = %lld words; exactly-once: a checkpoint every %lld ms "
              "(fsync'ed)\n",
              static_cast<long long>(sentences), static_cast<long long>(words),
              static_cast<long long>(toMicros(interval) / 1000));
  const std::pair<Guarantee, const char*> modes[] = {{Guarantee::None, "none"},
                                                    {Guarantee::AtLeastOnce, "at-least-once"},
                                                    {Guarantee::ExactlyOnce, "exactly-once"}};
  double base = 0;
  for (auto [g, name] : modes) {
    int checkpoints = 0;
    RunResult r = runTopology({g, interval}, 0, sentences, &checkpoints);
    if (g == Guarantee::None) base = r.wordsPerSecond;
    std::printf("  %-14s saturated %10.0f words/s (%.2fx none)  p50 %9.1f us  p99 %9.1f us"
                "  checkpoints %d%s\n",
                name, r.wordsPerSecond, r.wordsPerSecond / base, r.latency.percentile(0.5) / 1e3,
                r.latency.percentile(0.99) / 1e3, checkpoints,
                r.words == words ? "" : "  WRONG COUNT");
  }
  double rate = offeredWords / wordsPerSentence;
  int64_t n = static_cast<int64_t>(rate * 5);  // 5 s at the offered rate
  for (auto [g, name] : modes) {
    int checkpoints = 0;
    RunResult r = runTopology({g, interval}, rate, n, &checkpoints);
    std::printf("  %-14s %.0f K words/s offered: p50 %9.1f us  p99 %9.1f us  p99.9 %9.1f us"
                "  checkpoints %d\n",
                name, offeredWords / 1e3, r.latency.percentile(0.5) / 1e3,
                r.latency.percentile(0.99) / 1e3, r.latency.percentile(0.999) / 1e3, checkpoints);
  }
  return 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The UI's cost (issue 10: within 5 %): rounds of saturated runs (throughput) and fixed-rate runs
// (p99 latency), each once without and once with the UI open and polled every second, the order
// alternating per round so that drift in the machine's load falls on both alike.
int runUiCost(int64_t sentences, int rounds) {
  int64_t words = wordsIn(sentences);
  double wordsPerSentence = static_cast<double>(words) / static_cast<double>(sentences);
  double rate = 100000 / wordsPerSentence;  // 100 K words/s, as --bench's latency part
  int64_t rateSentences = static_cast<int64_t>(rate * 3);
  std::printf("word count with and without the web UI (polled every second: summary, topology, "
              "/metrics), acking on, %d rounds; %lld sentences saturated, 3 s at 100 K words/s\n",
              rounds, static_cast<long long>(sentences));
  std::vector<double> tput[2], p99[2];
  for (int round = 0; round < rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      bool withUi = (round + k) % 2 == 1;
      RunResult sat = runTopology({Guarantee::AtLeastOnce}, 0, sentences, nullptr, withUi);
      RunResult lat = runTopology({Guarantee::AtLeastOnce}, rate, rateSentences, nullptr, withUi);
      double p = lat.latency.percentile(0.99) / 1e3;
      tput[withUi].push_back(sat.wordsPerSecond);
      p99[withUi].push_back(p);
      std::printf("  round %d  UI %-3s %10.0f words/s  p99 at 100 K words/s %8.1f us  (UI "
                  "requests answered: %llu)\n",
                  round + 1, withUi ? "on" : "off", sat.wordsPerSecond, p,
                  static_cast<unsigned long long>(sat.uiPolls + lat.uiPolls));
      std::fflush(stdout);
    }
  }
  double t0 = median(tput[0]), t1 = median(tput[1]), l0 = median(p99[0]), l1 = median(p99[1]);
  std::printf("median throughput: UI off %.0f, on %.0f words/s: on/off %.3f\n", t0, t1, t1 / t0);
  std::printf("median p99: UI off %.1f, on %.1f us: on/off %.3f\n", l0, l1, l1 / l0);
  bool within = t1 >= 0.95 * t0 && l1 <= 1.05 * l0;
  std::printf("within 5 %%: %s\n", within ? "yes" : "no");
  return 0;
}

struct Options {
  int64_t sentences = 0;  // 0: the mode's default
  bool noAcking = false, bench = false, latency = false, guarantees = false, uiCost = false;
  bool noCheck = false;
  int rounds = 3;
  std::string guarantee = "at-least-once";
  int checkpointMs = 1000;
  std::string socket;
  double rate = 0;  // sentences/s; 0: as fast as it goes
  int parallelism = 2;
  UiFlags ui;
};

// Every option of word_count, in one place.
void defineOptions(CLI::App& app, Options& o) {
  app.description(
      "word_count: sentences -> split -> count in continuous mode. Without options: counts 100 K "
      "generated sentences and checks the counts against a direct count.");
  app.add_option("--sentences", o.sentences,
                 "generated sentences (default 100000; 1000000 with --bench)")
      ->check(gale::examples::positive<int64_t>());
  auto* noAcking = app.add_flag("--no-acking", o.noAcking,
                                "run without Storm's acker (--guarantee none)");
  app.add_option("--guarantee", o.guarantee,
                 "none, at-least-once (default: Storm's acker) or exactly-once (checkpoints "
                 "into a temporary directory)")
      ->check(CLI::IsMember({"none", "at-least-once", "exactly-once"}))
      ->excludes(noAcking);
  auto* bench = app.add_flag("--bench", o.bench,
                             "throughput and latency beside a bare loop (docs/benchmarks.md)");
  auto* latency = app.add_flag("--latency", o.latency, "only the latency part of --bench");
  auto* guarantees = app.add_flag(
      "--guarantees", o.guarantees,
      "throughput and latency with no guarantee, at-least-once and exactly-once "
      "(docs/benchmarks.md)");
  auto* uiCost = app.add_flag("--ui-cost", o.uiCost,
                              "throughput and p99 with and without the web UI open and polled "
                              "every second, interleaved (docs/benchmarks.md)")
                     ->excludes(bench, latency, guarantees);
  app.add_option("--rounds", o.rounds, "--ui-cost: rounds of one run without and one with the UI")
      ->capture_default_str()
      ->check(gale::examples::positive<int>())
      ->needs(uiCost);
  app.add_flag("--no-check", o.noCheck,
               "skip the direct count the engine's counts are checked against after the run "
               "(to measure the engine's work alone, e.g. instructions per word)")
      ->excludes(bench, latency, guarantees, uiCost);
  app.add_option("--checkpoint-interval-ms", o.checkpointMs,
                 "exactly-once's checkpoint interval (default 1000)")
      ->check(gale::examples::positive<int>());
  app.add_option("--socket", o.socket,
                 "count lines from a TCP server (e.g. `nc -lk 9999`) until Ctrl-C")
      ->check(hostPort())
      ->excludes(bench, latency, guarantees);
  app.add_option("--rate", o.rate, "generated sentences per second (default: as fast as it goes)")
      ->check(gale::examples::number<double>(0))
      ->excludes(bench, latency, guarantees);
  app.add_option("--parallelism", o.parallelism,
                 "tasks of split and of count (default 2; --bench uses 1)")
      ->check(gale::examples::number<int>(1, 64))
      ->excludes(bench, latency, guarantees);
  addUiOptions(app, o.ui)->excludes(bench, latency, guarantees, uiCost);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app;
  defineOptions(app, o);
  if (auto rc = parseCommandLine(app, argc, argv)) return *rc;
  try {
    if (!o.socket.empty()) return runSocket(o.socket, o.ui);
    if (o.uiCost) return runUiCost(o.sentences > 0 ? o.sentences : 1'000'000, o.rounds);
    if (o.guarantees)
      return runGuarantees(o.sentences > 0 ? o.sentences : 1'000'000,
                           std::chrono::milliseconds(o.checkpointMs), 100000);
    if (o.bench || o.latency) return runBench(o.sentences > 0 ? o.sentences : 1'000'000, o.latency);
    Guarantee g = o.noAcking || o.guarantee == "none" ? Guarantee::None
                  : o.guarantee == "exactly-once"     ? Guarantee::ExactlyOnce
                                                      : Guarantee::AtLeastOnce;
    return runGenerated(o.sentences > 0 ? o.sentences : 100'000, g,
                        std::chrono::milliseconds(o.checkpointMs), o.rate, o.parallelism, !o.noCheck,
                        o.ui);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "word_count: %s\n", e.what());
    return 1;
  }
}
