// Micro-batch word count with exactly-once LMDB state (Trident's persistentAggregate), and the
// micro-batch benchmark.
//
//   microbatch_word_count [--checkpoint DIR] [--sentences N]
//       counts N generated sentences (available-now), prints the 10 most frequent words; run it
//       again on the same checkpoint and it resumes (nothing counted twice). --ui PORT: the
//       web UI of the job (batches, checkpoint, metrics), kept up after it until Ctrl-C.
//   microbatch_word_count --bench [--seconds S] [--rate R]
//       word count and keyed window sum, trigger intervals 0 / 100 ms / 1 s: events/s, record
//       arrival -> commit latency p50/p99, share of time in LMDB commits.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>

#include "cli.h"
#include "example_ui.h"
#include "gale/batch/microbatch.h"
#include "gale/batch/trident.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/aggregate.h"
#include "gale/core/state_codec.h"
#include "gale/core/window.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void splitWords(const gale::Tuple& t, std::vector<gale::Values>& out) {
  const std::string& s = t.getString(0);
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back({s.substr(i, j - i)});
    i = j;
  }
}

// sentence -> (word): the split as one operator, so a word tuple does not carry its sentence.
class SplitWords final : public gale::Operator {
 public:
  void declareOutputFields(gale::OutputFieldsDeclarer& d) const override {
    d.declare(gale::Fields{"word"});
  }
  gale::OperatorPtr clone() const override { return std::make_unique<SplitWords>(); }
  void onTuple(const gale::Tuple& t, gale::Emitter& out) override {
    rows_.clear();
    splitWords(t, rows_);
    for (auto& r : rows_) out.emit(std::move(r));
  }

 private:
  std::vector<gale::Values> rows_;
};

// Counts rows without keeping them (the benchmark's sink).
class CountingSink final : public gale::Operator {
 public:
  explicit CountingSink(std::shared_ptr<std::atomic<uint64_t>> n) : n_(std::move(n)) {}
  void declareOutputFields(gale::OutputFieldsDeclarer&) const override {}
  gale::OperatorPtr clone() const override { return std::make_unique<CountingSink>(n_); }
  void onTuple(const gale::Tuple&, gale::Emitter&) override { n_->fetch_add(1, std::memory_order_relaxed); }

 private:
  std::shared_ptr<std::atomic<uint64_t>> n_;
};

gale::Topology wordCountTopology(gale::SourcePtr src, const gale::Operator& sink, int tasks) {
  gale::TridentTopology t;
  t.newStream("sentences", std::move(src), tasks)
      .apply("split", SplitWords{}, tasks)
      .groupBy(gale::Fields{"word"})
      .persistentAggregate({"counts", gale::StateKind::Opaque},
                           gale::CombinerAggregator::count(), "count", tasks)
      .newValuesStream()
      .sink("out", sink);
  return t.build();
}

int runExample(const std::string& chk, int64_t sentences, bool progressJson,
               const gale::examples::UiFlags& uiFlags) {
  gale::SentenceSource::Options so;
  so.total = sentences;
  so.partitions = 2;
  auto src = std::make_shared<gale::SentenceSource>(so);
  auto store = std::make_shared<gale::MemoryStore>();
  gale::MicroBatch cfg;
  cfg.trigger = gale::BatchTrigger::availableNow();
  cfg.checkpoint = chk;
  cfg.maxRecordsPerBatch = 10000;
  cfg.name = "microbatch_word_count";
  if (progressJson) {
    // Spark's StreamingQueryProgress, one JSON line per committed batch, on stderr.
    cfg.onProgress = [](const gale::BatchRecord& r) {
      std::fprintf(stderr, "%s\n", gale::progressJson("microbatch_word_count", r).c_str());
    };
  }
  gale::installSignalHandlers();
  auto server = gale::examples::startUi(uiFlags);
  auto job = gale::runMicroBatch(wordCountTopology(src, gale::MemorySink(store), 1), cfg);
  gale::examples::UiAttachment shown(server.get(), job);
  gale::awaitAnyTermination();
  auto p = job.progress();
  std::printf("committed %llu batches (last txid %llu), %llu sentences in this run\n",
              (unsigned long long)p.batches, (unsigned long long)p.lastTxid,
              (unsigned long long)p.records);
  gale::resetTerminated();
  job = {};
  auto st = gale::StateStore::inspect(chk);
  std::vector<std::pair<int64_t, std::string>> top;
  st->keyedState("counts", gale::StateKind::Opaque).forEach([&](std::string_view k, std::string_view v) {
    top.emplace_back(std::get<int64_t>(gale::decodeValues(v).at(0)),
                     std::get<std::string>(gale::decodeValues(k).at(0)));
    return true;
  });
  std::sort(top.rbegin(), top.rend());
  for (size_t i = 0; i < std::min<size_t>(10, top.size()); ++i) {
    std::printf("%8lld %s\n", (long long)top[i].first, top[i].second.c_str());
  }
  std::fflush(stdout);
  gale::examples::keepUiUntilInterrupted(server.get());
  return 0;
}

struct BenchResult {
  double eventsPerSec = 0;
  double wordsPerSec = 0;
  gale::BatchProgress p;
};

void printResult(const char* what, const char* trigger, const BenchResult& r) {
  double commitShare = r.p.runNanos ? 100.0 * r.p.commitTotalNanos / r.p.runNanos : 0;
  std::printf("%-22s %-9s %10.0f ev/s %11.0f out/s  batches %5llu  latency p50 %8.1f ms  p99 %8.1f ms"
              "  commit p50 %6.2f ms  LMDB share %5.1f %%\n",
              what, trigger, r.eventsPerSec, r.wordsPerSec, (unsigned long long)r.p.batches,
              r.p.recordNanos.percentile(0.5) / 1e6, r.p.recordNanos.percentile(0.99) / 1e6,
              r.p.commitNanos.percentile(0.5) / 1e6, commitShare);
  std::fflush(stdout);
}

gale::BatchTrigger triggerFor(int ms) {
  return ms == 0 ? gale::BatchTrigger::unspecified()
                 : gale::BatchTrigger::processingTime(std::chrono::milliseconds(ms));
}

// Offers `rate` records/s for `seconds`, then stops gracefully and reads the progress.
template <typename MakeTopology>
BenchResult runRated(MakeTopology make, gale::SourcePtr src, int intervalMs, double seconds,
                     std::shared_ptr<std::atomic<uint64_t>> outRows, int64_t maxRecords) {
  std::string chk = (fs::temp_directory_path() / ("gale-mb-bench-" + std::to_string(::getpid()))).string();
  fs::remove_all(chk);
  gale::MicroBatch cfg;
  cfg.trigger = triggerFor(intervalMs);
  cfg.checkpoint = chk;
  cfg.syncCommits = true;
  cfg.maxBatchesInFlight = 1;
  cfg.maxRecordsPerBatch = maxRecords;
  auto job = gale::runMicroBatch(make(src), cfg);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  job.stop();
  job.waitUntilDone();
  BenchResult r;
  r.p = job.progress();
  double secs = r.p.runNanos / 1e9;
  r.eventsPerSec = r.p.records / secs;
  r.wordsPerSec = outRows->load() / secs;
  gale::resetTerminated();
  fs::remove_all(chk);
  return r;
}

int runBench(double seconds, double rate) {
  // At most 2 s of offered input per batch, so an overloaded run shows its throughput without one
  // endless batch.
  int64_t maxRecords = static_cast<int64_t>(rate * 2);
  std::printf("micro-batch benchmark: %.0f s per run, offered %.0f events/s, 2 partitions, synced LMDB commits\n",
              seconds, rate);
  for (int ms : {0, 100, 1000}) {
    auto out = std::make_shared<std::atomic<uint64_t>>(0);
    gale::SentenceSource::Options so;
    so.partitions = 2;
    so.ratePerSecond = rate;
    auto src = std::make_shared<gale::SentenceSource>(so);
    auto r = runRated([&](gale::SourcePtr s) { return wordCountTopology(s, CountingSink(out), 2); },
                      src, ms, seconds, out, maxRecords);
    char trig[16];
    std::snprintf(trig, sizeof trig, "%d ms", ms);
    printResult("word count (sentences)", trig, r);
  }
  for (int ms : {0, 100, 1000}) {
    auto out = std::make_shared<std::atomic<uint64_t>>(0);
    gale::GeneratorSource::Options go;
    go.name = "events";
    go.partitions = 2;
    go.ratePerSecond = rate;
    auto start = gale::SystemClock::instance().now().micros;
    auto gen = [start, rate](int p, int64_t off) {
      int64_t g = off * 2 + p;
      return gale::Values{int64_t{g % 10000}, int64_t{1},
                          gale::Timestamp{start + static_cast<int64_t>(g * 1e6 / rate)}};
    };
    auto src = std::make_shared<gale::GeneratorSource>(
        gale::Fields{{"key", gale::Type::Int64}, {"value", gale::Type::Int64}, {"ts", gale::Type::Timestamp}},
        gen, go);
    auto window = gale::windowed(gale::Tumbling(1s), gale::Sum{"value"})
                      .keyBy({"key"})
                      .eventTime("ts")
                      .outputMode(gale::OutputMode::Append)
                      .build();
    auto make = [&](gale::SourcePtr s) {
      gale::TopologyBuilder b;
      b.setSpout("events", s, 2).withWatermark("ts", 100ms);
      b.setBolt("window", *window, 2).fieldsGrouping("events", gale::Fields{"key"});
      b.setBolt("out", CountingSink(out), 1).shuffleGrouping("window");
      return b.build();
    };
    auto r = runRated(make, src, ms, seconds, out, maxRecords);
    char trig[16];
    std::snprintf(trig, sizeof trig, "%d ms", ms);
    printResult("keyed window sum", trig, r);
  }
  return 0;
}

struct Options {
  std::string checkpoint = "microbatch_word_count.chk";
  int64_t sentences = 100000;
  bool bench = false;
  bool progressJson = false;
  double seconds = 5, rate = 1e6;
  gale::examples::UiFlags ui;
};

// Every option of microbatch_word_count, in one place.
void defineOptions(CLI::App& app, Options& o) {
  app.description(
      "microbatch_word_count: word count with exactly-once LMDB state in micro-batch mode; run it "
      "again on the same checkpoint and it resumes. --bench: the micro-batch benchmark.");
  app.add_option("--checkpoint", o.checkpoint, "checkpoint directory")->capture_default_str();
  app.add_option("--sentences", o.sentences, "generated sentences to count")
      ->capture_default_str()
      ->check(gale::examples::positive<int64_t>());
  app.add_flag("--progress-json", o.progressJson,
               "print each committed batch's progress record as a JSON line on stderr");
  app.add_flag("--bench", o.bench,
               "word count and keyed window sum at trigger intervals 0, 100 ms and 1 s");
  app.add_option("--seconds", o.seconds, "--bench: seconds per run")
      ->capture_default_str()
      ->check(gale::examples::positive<double>());
  app.add_option("--rate", o.rate, "--bench: offered events/s")
      ->capture_default_str()
      ->check(gale::examples::positive<double>());
  gale::examples::addUiOptions(app, o.ui)->excludes("--bench");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app;
  defineOptions(app, o);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;
  try {
    return o.bench ? runBench(o.seconds, o.rate) : runExample(o.checkpoint, o.sentences, o.progressJson, o.ui);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "microbatch_word_count: %s\n", e.what());
    return 1;
  }
}
