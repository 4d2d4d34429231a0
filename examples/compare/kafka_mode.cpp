#include "kafka_mode.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "gale/batch/microbatch.h"
#include "gale/connectors/from_json.h"
#include "gale/connectors/kafka_sink.h"
#include "gale/connectors/kafka_source.h"
#include "gale/core/aggregate.h"
#include "gale/core/join.h"
#include "gale/core/stateless.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"
#include "kafka_clients.h"

namespace gale::compare {

const char* kafkaPipelineName(KafkaPipeline p) {
  switch (p) {
    case KafkaPipeline::Transform: return "kafka-transform";
    case KafkaPipeline::Window: return "kafka-window";
    case KafkaPipeline::Join: return "kafka-join";
  }
  return "?";
}

std::vector<KafkaPipeline> parseKafkaPipelines(const std::string& list) {
  std::vector<KafkaPipeline> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "all") {
      out.insert(out.end(), {KafkaPipeline::Transform, KafkaPipeline::Window, KafkaPipeline::Join});
    } else if (item == "transform") {
      out.push_back(KafkaPipeline::Transform);
    } else if (item == "window") {
      out.push_back(KafkaPipeline::Window);
    } else if (item == "join") {
      out.push_back(KafkaPipeline::Join);
    } else {
      throw std::invalid_argument("unknown Kafka pipeline '" + item +
                                  "': use transform, window, join or all");
    }
  }
  if (out.empty()) throw std::invalid_argument("no Kafka pipeline given");
  return out;
}

namespace {

using namespace std::chrono_literals;

constexpr const char* kMarkerTopic = "gale-compare-markers";

// The "sent" header's value out of KafkaSource's headers field ([{"key":"sent","value":"123"}]).
int64_t sentOf(const Tuple& t) {
  const auto* headers = std::get_if<std::string>(&t.get("headers"));
  static constexpr std::string_view key = "{\"key\":\"sent\",\"value\":\"";
  size_t at = headers ? headers->find(key) : std::string::npos;
  if (at == std::string::npos) throw std::invalid_argument("an input record has no 'sent' header");
  return std::stoll(headers->substr(at + key.size()));
}

std::shared_ptr<const StaticTable> campaigns() {
  auto table = std::make_shared<StaticTable>(Fields{{"campaign", Type::String}});
  for (int i = 0; i < 100; ++i)
    table->add(Value(std::string("ad-" + std::to_string(i))),
               Values{std::string("campaign-" + std::to_string(i % 10))});
  return table;
}

// Kafka `in` -> parse the JSON value, take the send time from the header -> the pipeline ->
// KafkaSink to `out` with the reference time in the header "sent". The same function for both
// modes (`microBatch`: a spout task per partition; continuous: KafkaSettings::spoutTasks);
// bounded: the source ends at the input's end now (the throughput runs).
// `stages` (transform only): the results also carry the "taken" and "mapped" headers.
Topology kafkaTopology(KafkaPipeline p, const std::string& bootstrap, const std::string& in,
                       const std::string& out, const KafkaSettings& k, bool microBatch,
                       bool bounded, const std::string& transactionalIdPrefix,
                       bool stages = false) {
  const int spouts = microBatch ? k.partitions : continuousSpoutTasks(k),
            tasks = k.parallelism > 0 ? k.parallelism : spouts;
  const Duration window = k.window;
  KafkaSource::Options so;
  so.bootstrapServers = bootstrap;
  so.subscribe = {in};
  so.startingOffsets = "earliest";
  if (bounded) so.endingOffsets = "latest";
  so.consumerProperties = kafkaConsumerProperties();
  TopologyBuilder b;
  SpoutDeclarer spout = b.setSpout("in", std::make_shared<KafkaSource>(so), spouts);
  // Every partition gets records all along and a sentinel at the end, so no partition is ever
  // idle: no idleness (the default), so a fetch stall on a loaded machine cannot make a
  // partition look idle and its records late (delay 0). A window closes only when every spout
  // task's watermark passed its end, and a task sends its watermark at most every `every`: 1 ms
  // (Flink's setAutoWatermarkInterval; gale's default of 5 ms added up to 5 ms to a result).
  if (p == KafkaPipeline::Window)
    spout.withWatermark(WatermarkSpec{.field = "timestamp", .delay = Duration(0),
                                      .every = std::chrono::milliseconds(1)});
  b.setBolt("parse",
            FromJson({.field = "value",
                      .schema = Fields{{"ad", Type::String}, {"event", Type::String}},
                      .keep = {"headers", "timestamp"}}),
            tasks)
      .shuffleGrouping("in");
  Fields parsed{{"ad", Type::String}, {"event", Type::String}, {"sent", Type::Int64},
                {"timestamp", Type::Timestamp}};
  stages = stages && p == KafkaPipeline::Transform;
  if (stages) {
    parsed = Fields{{"ad", Type::String}, {"event", Type::String}, {"sent", Type::Int64},
                    {"timestamp", Type::Timestamp}, {kTakenHeader, Type::Int64},
                    {kMappedHeader, Type::Int64}};
  }
  // The source stamps a record's origin (monotonic) when it takes it from librdkafka.
  const int64_t wallMinusMono = wallMicros() - SystemClock::steadyNanos() / 1000;
  b.setBolt("sent", Map(parsed, [stages, wallMinusMono](const Tuple& t) {
              Values v{t.get("ad"), t.get("event"), sentOf(t), t.get("timestamp")};
              if (stages) {
                v.emplace_back(t.originNanos() / 1000 + wallMinusMono);
                v.emplace_back(wallMicros());
              }
              return v;
            }), tasks)
      .shuffleGrouping("parse");
  KafkaSink::Options ko;
  ko.bootstrapServers = bootstrap;
  ko.topic = out;
  ko.keyField = "ad";
  ko.headerFields = {"sent"};
  if (stages) ko.headerFields = {"sent", kTakenHeader, kMappedHeader};
  ko.producerProperties = kafkaProducerProperties();
  ko.transactionalIdPrefix = transactionalIdPrefix;
  ko.markerTopic = kMarkerTopic;
  std::string last = "sent";
  switch (p) {
    case KafkaPipeline::Transform:
      ko.toJson = {"ad", "event"};
      break;
    case KafkaPipeline::Join:
      b.setBolt("join", StaticJoin(campaigns(), "ad", Fields{{"ad", Type::String},
                                                              {"sent", Type::Int64}}), tasks)
          .shuffleGrouping("sent");
      ko.toJson = {"ad", "campaign"};
      last = "join";
      break;
    case KafkaPipeline::Window:
      b.setBolt("count", *windowed(Tumbling(window), Count{}).keyBy({"ad"}).eventTime("timestamp")
                              .outputMode(OutputMode::Append).build(), tasks)
          .fieldsGrouping("sent", Fields{"ad"});
      // A window result's reference time is the window's end: it cannot be complete before.
      b.setBolt("result", Map(Fields{{"ad", Type::String}, {"count", Type::Int64},
                                     {"sent", Type::Int64}},
                              [](const Tuple& t) {
                                return Values{t.get("ad"), t.get("count"),
                                              t.getTimestamp("window_end").micros};
                              }), tasks)
          .shuffleGrouping("count");
      ko.toJson = {"ad", "count"};
      last = "result";
      break;
  }
  if (k.sinkTasks == 1) {
    // Fields grouping: a replayed batch's tuple reaches the same (transactional) sink task.
    b.setBolt("out", KafkaSink(ko), 1).fieldsGrouping(last, Fields{"ad"});
  } else {
    // A sink task per task before it, shuffle grouping at equal parallelism: fused (gale-compare
    // refuses this with --fusion off), so each record is produced on the thread of the task
    // before it, and task i's tuples always reach sink task i: a replayed batch reaches the same
    // transactional sink task too.
    b.setBolt("out", KafkaSink(ko), tasks).shuffleGrouping(last);
  }
  return b.build();
}

// A job in either mode, stopped (without draining) when it goes. `continuous`: its settings.
class KafkaJob {
 public:
  KafkaJob(const Topology& t, const Mode& mode, const Continuous& continuous) {
    if (mode.microBatch) {
      dir_ = std::make_unique<TempDir>();
      job_ = runMicroBatch(t, microBatchConfig(mode, dir_->path));
    } else {
      running_ = std::make_unique<RunningTopology>(runContinuous(t, continuous));
    }
  }
  ~KafkaJob() {
    try {
      if (running_) running_->kill();
      if (job_) {
        job_.stop();
        job_.waitUntilDone(60s);
      }
    } catch (const std::exception&) {
      // The job's error: reported by checkFailed() / waitUntilDone() to whoever asked.
    }
  }
  // Bounded runs: until the source's end is through. Rethrows the job's error.
  bool waitUntilDone(Duration timeout) {
    return running_ ? running_->waitUntilDone(timeout)
                    : job_.waitUntilDone(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  }
  void checkFailed() {
    if (job_ && job_.done()) job_.waitUntilDone();
    if (running_ && !running_->error().empty()) throw std::runtime_error(running_->error());
  }
  const RunningTopology* continuous() const { return running_.get(); }
  // A micro-batch job's durability writes: the offset log's fdatasyncs (off the job's thread)
  // and the LMDB commits (on it), p50 / p99 / max over the run.
  std::string durability() const {
    if (!job_) return "";
    BatchProgress p = job_.progress();
    auto dist = [](const Histogram& h) {
      return formatNanos(h.percentile(0.5)) + " / " + formatNanos(h.percentile(0.99)) + " / " +
             formatNanos(h.max());
    };
    return "offset log flushes (p50 / p99 / max) " + dist(p.offsetLogFlushNanos) + " over " +
           std::to_string(p.offsetLogFlushNanos.count()) + "; LMDB commits " +
           dist(p.commitNanos) + " over " + std::to_string(p.commitNanos.count()) + " batches";
  }

 private:
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<RunningTopology> running_;
  MicroBatchJob job_;
};

// Samples a continuous job's metrics once per metrics interval (100 ms) while the wall clock is
// in [fromMicros, toMicros): KafkaRun::engine.
class EngineProbe {
 public:
  EngineProbe(const RunningTopology& job, int64_t fromMicros, int64_t toMicros)
      : job_(job), from_(fromMicros), to_(toMicros), thread_([this] { run(); }) {}
  ~EngineProbe() { stop(); }
  void stop() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::string summary() const {
    if (samples_ == 0) return "";
    std::ostringstream s;
    // The metric counts both ways a spout task waits for the engine: at its limit of trees in
    // flight, and blocked sending into a full channel (Executor::flush).
    s << std::fixed << std::setprecision(1)
      << "spout tasks back-pressured (at their limit of trees in flight or on a full channel) "
      << heldMs_ << " task-ms over " << samples_ << " samples about 100 ms apart (worst interval "
      << worstHeld_ << " ms/s), lowest limit " << minLimit_ << ", most in flight " << maxPending_
      << "; deepest inbox (frames): sink " << sinkQueue_ << ", acker " << ackerQueue_;
    return s.str();
  }

 private:
  void run() {
    std::unique_lock lk(m_);
    while (!cv_.wait_for(lk, 100ms, [this] { return stop_; })) {
      const int64_t now = wallMicros();
      if (now < from_ || now >= to_) continue;
      // Each rate covers the time since the last sample, not a nominal 100 ms: the wait drifts.
      const double sinceLastS = (now - (lastSample_ ? lastSample_ : now - 100'000)) / 1e6;
      lastSample_ = now;
      lk.unlock();
      const TopologyMetrics m = job_.metrics();
      lk.lock();
      ++samples_;
      if (const ComponentMetrics* in = m.find("in")) {
        for (const TaskMetrics& t : in->tasks) {
          heldMs_ += t.backPressuredTimeMsPerSecond * sinceLastS;  // ms/s over that time
          worstHeld_ = std::max(worstHeld_, t.backPressuredTimeMsPerSecond);
          minLimit_ = std::min<uint64_t>(minLimit_, t.pendingLimit);
          maxPending_ = std::max<uint64_t>(maxPending_, t.pending);
        }
      }
      if (const ComponentMetrics* out = m.find("out"))
        for (const TaskMetrics& t : out->tasks) sinkQueue_ = std::max(sinkQueue_, t.queueDepth());
      if (const ComponentMetrics* a = m.find("__acker"))
        for (const TaskMetrics& t : a->tasks) ackerQueue_ = std::max(ackerQueue_, t.queueDepth());
    }
  }

  const RunningTopology& job_;
  const int64_t from_, to_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  int64_t lastSample_ = 0;
  uint64_t samples_ = 0, minLimit_ = UINT64_MAX, maxPending_ = 0, sinkQueue_ = 0, ackerQueue_ = 0;
  double heldMs_ = 0, worstHeld_ = 0;
  std::thread thread_;  // last: starts once the rest is set
};

std::string topicName(const std::string& what) {
  static int n = 0;
  return "gale-compare-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + "-" + what;
}

const char* kFloorMode = "no engine (floor)";

// User + system CPU time of every thread of this process so far.
double processCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// One latency run: the floor (mode == nullptr) or gale in `mode`.
KafkaRun latencyRun(KafkaCluster& cluster, KafkaPipeline p, double load, const Mode* mode,
                    const RunSettings& settings, const KafkaSettings& k, int round,
                    const KafkaLog& log) {
  const std::string in = topicName("in"), out = topicName("out");
  cluster.createTopic(in, k.partitions);
  cluster.createTopic(out, k.partitions);
  KafkaRun run;
  run.row.pipeline = kafkaPipelineName(p);
  if (k.rounds > 1) run.row.pipeline += " r" + std::to_string(round);
  run.round = round;
  run.row.mode = mode ? mode->label() : kFloorMode;
  run.row.knobs = mode ? knobsOf(*mode, kafkaRunSettings(settings)) + "; KafkaSink " +
                             (mode->microBatch ? "transactional (exactly-once)"
                                               : "idempotent; " +
                                                     std::to_string(continuousSpoutTasks(k)) +
                                                     " spout task(s), each with up to " +
                                                     std::to_string(kafkaContinuousConfig(k)
                                                                        .maxSpoutPending) +
                                                     " trees in flight")
                       : "consume -> produce as is, same client settings";
  run.row.offeredPerSec = load;
  run.row.seconds = settings.seconds;
  run.row.latencyKind = mode && p == KafkaPipeline::Window ? "window" : "record";
  if (log) log(run.row.pipeline + " " + run.row.mode + " @ " + loadLabel(load) + " ...");

  OutputMeter meter(cluster.bootstrap(), out, k.partitions);
  std::unique_ptr<Relay> relay;
  std::unique_ptr<KafkaJob> job;
  if (mode) {
    job = std::make_unique<KafkaJob>(kafkaTopology(p, cluster.bootstrap(), in, out, k,
                                                   mode->microBatch, false, in,
                                                   k.stages && !mode->microBatch),
                                     *mode, kafkaContinuousConfig(k));
  } else {
    relay = std::make_unique<Relay>(cluster.bootstrap(), in, out, k.partitions);
  }
  PacedProducer producer(cluster.bootstrap(), in, k.partitions);
  const int64_t start = wallMicros();
  const auto warmup = static_cast<int64_t>(settings.warmupSeconds * 1e6);
  const int64_t end = start + warmup + static_cast<int64_t>(settings.seconds * 1e6);
  meter.measureBetween(start + warmup, end);
  std::unique_ptr<EngineProbe> probe;
  if (job && job->continuous())
    probe = std::make_unique<EngineProbe>(*job->continuous(), start + warmup, end);
  run.produced = producer.run(load, settings.warmupSeconds + settings.seconds);
  // Windows close only when later event time arrives: one record per partition far past the
  // last window (its own window never closes, so it is not counted).
  if (mode && p == KafkaPipeline::Window)
    producer.sentinels(wallMicros() + 3 * toMicros(k.window));
  const auto deadline = std::chrono::steady_clock::now() + k.drainTimeout;
  while (meter.counted() < run.produced && std::chrono::steady_clock::now() < deadline) {
    if (job) job->checkFailed();
    std::this_thread::sleep_for(5ms);
  }
  // The meter stops first: what a stopping job flushes is not part of the run.
  meter.stop();
  if (probe) {
    probe->stop();
    run.engine = probe->summary();
    probe.reset();
  }
  if (job && mode && mode->microBatch) run.engine = job->durability();
  job.reset();
  if (relay) relay->stop();
  run.results = meter.results();
  run.counted = meter.counted();
  if (meter.missingHeader())
    throw std::runtime_error(run.row.pipeline + " " + run.row.mode + ": " +
                             std::to_string(meter.missingHeader()) + " results without a header");
  run.row.records = run.produced;
  run.row.throughput = static_cast<double>(run.counted) / (settings.warmupSeconds + settings.seconds);
  run.row.sustained = run.counted == run.produced;
  run.row.setLatency(meter.latencyNanos());
  if (meter.stageNanos(0).count() > 0) {
    const char* names[] = {"sent -> taken by the source", "taken -> Map",
                           "Map -> arrival (sink, broker, fetch)"};
    for (int i = 0; i < 3; ++i) {
      const Histogram& h = meter.stageNanos(i);
      run.stages += std::string(i ? "; " : "") + names[i] + " " +
                    formatNanos(h.percentile(0.5)) + " / " + formatNanos(h.percentile(0.9)) +
                    " / " + formatNanos(h.percentile(0.99));
    }
  }
  return run;
}

// The cluster's own rates and gale's (bounded transform jobs over the same pre-filled topic).
std::vector<KafkaThroughput> throughputRuns(KafkaCluster& cluster, const std::vector<Mode>& modes,
                                            const KafkaSettings& k, const KafkaLog& log) {
  std::vector<KafkaThroughput> out;
  const auto n = static_cast<uint64_t>(k.throughputRecords);
  const std::string in = topicName("tp-in");
  // The mock cluster keeps at most 5 MB per partition (about 90 000 of these records): spread the
  // records so that none is dropped before it is read.
  KafkaSettings tk = k;
  if (cluster.isMock())
    tk.partitions = std::max<int>(k.partitions, static_cast<int>(n / 50'000) + 1);
  cluster.createTopic(in, tk.partitions);
  auto timed = [&](const std::string& what, const std::function<uint64_t()>& f) {
    if (log) log("throughput: " + what + " ...");
    auto t0 = std::chrono::steady_clock::now();
    double cpu0 = processCpuSeconds();
    uint64_t records = f();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back({what, records, s, processCpuSeconds() - cpu0});
  };
  // Waits until `m` has read n records; returns how many it read.
  auto readBack = [&](const OutputMeter& m) {
    auto deadline = std::chrono::steady_clock::now() + k.drainTimeout;
    while (m.results() < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    return m.results();
  };
  auto drain = [&](const std::string& topic) {
    OutputMeter m(cluster.bootstrap(), topic, tk.partitions);
    return readBack(m);
  };
  timed("produce", [&] { return PacedProducer(cluster.bootstrap(), in, tk.partitions).run(0, 0, n); });
  timed("consume", [&] { return drain(in); });
  timed("relay (no engine)", [&] {
    const std::string to = topicName("tp-relay");
    cluster.createTopic(to, tk.partitions);
    Relay relay(cluster.bootstrap(), in, to, tk.partitions);
    return drain(to);
  });
  for (const Mode& mode : modes) {
    const std::string to = topicName("tp-out");
    cluster.createTopic(to, tk.partitions);
    timed("gale " + mode.label(), [&] {
      // The output is read while the job writes it, as the relay's is: reading it only after
      // the job ended added the whole read-back (~0.7 s of ~2.5 s for 200 000 records) to gale.
      OutputMeter m(cluster.bootstrap(), to, tk.partitions);
      KafkaJob job(kafkaTopology(KafkaPipeline::Transform, cluster.bootstrap(), in, to, tk,
                                 mode.microBatch, true, to),
                   mode, kafkaContinuousConfig(tk));
      if (!job.waitUntilDone(k.drainTimeout))
        throw std::runtime_error("gale-compare: the bounded " + mode.label() +
                                 " job did not end within the drain timeout");
      return readBack(m);
    });
    if (out.back().records != n) {
      KafkaClient c(RD_KAFKA_CONSUMER, cluster.bootstrap(), {});
      std::string offsets;
      for (int p = 0; p < tk.partitions; ++p) {
        int64_t low = 0, high = 0;
        rd_kafka_query_watermark_offsets(c.get(), to.c_str(), p, &low, &high, 10000);
        offsets += " [" + std::to_string(low) + ", " + std::to_string(high) + ")";
      }
      throw std::runtime_error("gale-compare: gale " + mode.label() + " wrote " +
                               std::to_string(out.back().records) + " of " + std::to_string(n) +
                               " records (the output topic's offsets:" + offsets + ")");
    }
  }
  return out;
}

std::string ratioText(double ratio) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << ratio << "x";
  return s.str();
}

}  // namespace

Topology kafkaPipelineTopology(KafkaPipeline p, const std::string& bootstrap,
                               const KafkaSettings& k) {
  return kafkaTopology(p, bootstrap, "in", "out", k, false, false, "in");
}

int continuousSpoutTasks(const KafkaSettings& k) {
  if (k.partitions < 1 || k.spoutTasks < 0)
    throw std::invalid_argument("gale-compare --kafka: " + std::to_string(k.partitions) +
                                " partition(s) and " + std::to_string(k.spoutTasks) +
                                " spout task(s): needs at least one partition and 0 or more "
                                "spout tasks (0 = one per partition)");
  return k.spoutTasks > 0 ? std::min(k.spoutTasks, k.partitions) : k.partitions;
}

Continuous kafkaContinuousConfig(const KafkaSettings& k) {
  const int partitions = k.partitions, spouts = continuousSpoutTasks(k);
  // Acking on (KafkaSink is at-least-once only with it; without, a record whose produce fails, a
  // full local queue under load, is lost) and --fusion as every run has it.
  Continuous c = continuousConfig(true);
  // One task over four partitions holds as many trees in flight as four tasks did: with 4 096
  // (41 ms at 100 K/s) a delivery round trip slowed by a loaded machine held the one task.
  c.maxSpoutPending *= static_cast<size_t>((partitions + spouts - 1) / spouts);
  return c;
}

RunSettings kafkaRunSettings(RunSettings settings) {
  settings.acking = true;
  return settings;
}

KafkaReport runKafkaComparison(const std::vector<KafkaPipeline>& pipelines,
                               const std::vector<double>& loads, const std::vector<Mode>& modes,
                               const RunSettings& settings, const KafkaSettings& kafka,
                               const KafkaLog& log) {
  KafkaCluster cluster(kafka.bootstrap);
  cluster.createTopic(kMarkerTopic, 1);
  KafkaReport report;
  report.cluster = cluster.describe();
  for (KafkaPipeline p : pipelines) {
    for (double load : loads) {
      for (int round = 1; round <= std::max(1, kafka.rounds); ++round) {
        auto floor = [&] { return latencyRun(cluster, p, load, nullptr, settings, kafka, round, log); };
        const size_t first = report.latency.size();
        if (round % 2 == 1) report.latency.push_back(floor());
        for (const Mode& m : modes)
          report.latency.push_back(latencyRun(cluster, p, load, &m, settings, kafka, round, log));
        // Even rounds run the floor last; it is listed first all the same.
        if (round % 2 == 0) report.latency.insert(report.latency.begin() + first, floor());
      }
    }
  }
  if (kafka.throughputRecords > 0) report.throughput = throughputRuns(cluster, modes, kafka, log);
  return report;
}

void writeKafkaReport(std::ostream& out, const KafkaReport& report) {
  out << "cluster: " << report.cluster << "\n";
  std::vector<ResultRow> rows;
  for (const auto& r : report.latency) rows.push_back(r.row);
  writeTable(out, rows);
  out << "latency: arrival at a consumer of the output topic (read_committed) - the result's "
         "\"sent\" header: the input's scheduled send time, or for kafka-window results the "
         "window's end; the floor relays each input record as it is\n";
  for (const auto& r : report.latency)
    out << "  " << r.row.pipeline << " " << r.row.mode << " @ " << loadLabel(r.row.offeredPerSec)
        << ": " << r.produced << " produced, " << r.results << " results accounting for "
        << r.counted << (r.counted == r.produced ? " (all)" : " (MISSING SOME)") << "\n";
  // Each run's p99 beside the floor's of its own round (same pipeline and load).
  for (const auto& r : report.latency) {
    if (r.row.mode == kFloorMode) continue;
    for (const auto& f : report.latency) {
      if (f.row.mode != kFloorMode || f.row.pipeline != r.row.pipeline ||
          f.row.offeredPerSec != r.row.offeredPerSec || f.round != r.round || f.row.p99 <= 0)
        continue;
      out << "  p99 beside the floor's, " << r.row.pipeline << " @ " << loadLabel(r.row.offeredPerSec)
          << ": " << r.row.mode << " " << formatNanos(r.row.p99) << " / " << formatNanos(f.row.p99)
          << " = " << ratioText(static_cast<double>(r.row.p99) / static_cast<double>(f.row.p99))
          << "\n";
    }
  }
  for (const auto& r : report.latency)
    if (!r.engine.empty())
      out << "  engine of " << r.row.pipeline << " " << r.row.mode << " @ "
          << loadLabel(r.row.offeredPerSec) << ": " << r.engine << "\n";
  for (const auto& r : report.latency) {
    if (r.stages.empty()) continue;
    out << "  stages (p50 / p90 / p99) of " << r.row.pipeline << " " << r.row.mode << " @ "
        << loadLabel(r.row.offeredPerSec) << ": " << r.stages << "\n";
  }
  if (report.throughput.empty()) return;
  double relay = 0;
  for (const auto& t : report.throughput)
    if (t.what == "relay (no engine)") relay = t.perSecond();
  out << "throughput (Kafka -> Kafka, " << report.throughput.front().records
      << " records; CPU: user + system time of the whole process, the mock broker included):\n";
  for (const auto& t : report.throughput) {
    out << "  " << std::left << std::setw(28) << t.what << std::right << std::setw(12)
        << static_cast<uint64_t>(t.perSecond()) << " records/s, " << std::setw(5)
        << std::fixed << std::setprecision(1) << t.cpuMicrosPerRecord() << std::defaultfloat
        << " µs CPU per record";
    if (t.what.rfind("gale ", 0) == 0 && relay > 0)
      out << "  (" << static_cast<int>(100 * t.perSecond() / relay) << " % of the relay)";
    out << "\n";
  }
}

}  // namespace gale::compare
