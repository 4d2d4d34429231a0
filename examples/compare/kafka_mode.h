// gale-compare --kafka: the latency comparison on a Kafka pipeline (issue #8).
//
// Records are produced into an input topic at the offered load, each with its scheduled send
// time (wall-clock µs) in the header "sent". The job reads them with KafkaSource, runs one of
// three pipelines and writes its results with KafkaSink to an output topic, copying a reference
// time into the result's "sent" header: the input's send time (transform, join) or the window's
// end (window). A consumer of the output topic measures latency = arrival - that time. Beside
// gale's rows, the same records go through the same cluster with no engine (the floor): a relay
// consumes the input topic and produces each record to the output topic as it is.
//
// Then throughput: Kafka -> gale -> Kafka (the transform, a bounded job over a pre-filled topic)
// in each mode, beside the cluster's own produce, consume and relay (consume -> produce) rates
// measured in the same run.
//
// Default: librdkafka's mock cluster in process; KafkaSettings::bootstrap points at a real one
// (the tool creates its topics there with the admin API).
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "report.h"
#include "runner.h"

namespace gale::compare {

enum class KafkaPipeline { Transform, Window, Join };
// "kafka-transform", "kafka-window", "kafka-join"
const char* kafkaPipelineName(KafkaPipeline p);
// "transform", "window", "join" or "all"; throws std::invalid_argument listing them.
std::vector<KafkaPipeline> parseKafkaPipelines(const std::string& list);

struct KafkaSettings {
  std::string bootstrap;  // "" = an in-process mock cluster
  // Of every topic. The mock cluster keeps at most 5 MB per partition (about
  // 90 000 records here): at 100 K records/s a consumer more than ~1 s behind one partition
  // loses records (gale's source stops with its data-loss error), so use several.
  int partitions = 4;
  // Continuous mode: tasks of the Kafka spout, each reading the partitions p % spoutTasks (0 =
  // one per partition), each with Continuous's limit of trees in flight (4 096) per partition it
  // reads. Default 1: one task reads every partition, as the floor's relay does on its one
  // thread, and the stateless bolts and the sink run fused into it; a task per partition put
  // six task threads on two cores and raised the tail (docs/benchmarks.md, "The 100K/s tail's
  // cause"). Micro-batch mode keeps a spout task per partition.
  int spoutTasks = 1;
  Duration window = std::chrono::seconds(1);  // kafka-window: tumbling, by Kafka timestamp
  // Tasks of each bolt before the sink (parse, transform, join, window); 0 = as many as the spout
  // has, so the stateless ones run fused into the spout tasks and only parsed tuples cross a
  // channel; 1 = one task each (a parse/transform/sink chain on one thread behind the spout
  // tasks). The sink has one task.
  int parallelism = 0;
  // Tasks of the sink: 1 = one task behind a fields grouping on `ad`; 0 = as many as the bolt
  // before it, shuffle grouping, so it runs fused into those tasks (one producer each).
  int sinkTasks = 1;
  int64_t throughputRecords = 100'000;        // 0 = no throughput runs
  Duration drainTimeout = std::chrono::seconds(60);  // for the last results after the producer
  // kafka-transform in continuous mode: each result also carries, in headers, when the source
  // took its record from librdkafka ("taken") and when the pipeline's Map ran ("mapped"), and the
  // meter splits the latency into sent -> taken -> mapped -> arrival (KafkaRun::stages).
  bool stages = false;
  // Rounds of each pipeline x load: the floor and gale's modes one after the other, again and
  // again, the floor first in odd rounds and last in even ones (A B B A ...), so a ratio is
  // taken between runs seconds apart and a drift of the machine's load is met by both sides.
  // Every round is reported on its own (no pooled best): with rounds > 1 a row's pipeline is
  // named "<pipeline> r<round>".
  int rounds = 1;
};

// One latency run: gale in one mode, or the floor (mode "no engine (floor)").
struct KafkaRun {
  ResultRow row;
  uint64_t produced = 0;  // input records produced
  uint64_t results = 0;   // output records consumed
  uint64_t counted = 0;   // input records the results account for (a window's count)
  // With KafkaSettings::stages, of a continuous transform run: "sent -> taken p50 / p99 ...".
  std::string stages;
  int round = 1;
  // Of a continuous run, from the job's metrics sampled over the measured seconds: how long its
  // spout tasks were held at their limit of trees in flight (not reading their partitions: a
  // tail of the engine's own), the lowest limit, and the deepest inbox of the sink and ackers.
  std::string engine;
};

struct KafkaThroughput {
  std::string what;  // "produce", "consume", "relay (no engine)", "gale continuous", ...
  uint64_t records = 0;
  double seconds = 0;
  // CPU time the whole process (the in-process mock broker included) used for the run: much
  // less sensitive to other load on the machine than `seconds`.
  double cpuSeconds = 0;
  double perSecond() const { return seconds > 0 ? static_cast<double>(records) / seconds : 0; }
  double cpuMicrosPerRecord() const { return records ? cpuSeconds * 1e6 / records : 0; }
};

struct KafkaReport {
  std::string cluster;  // "mock cluster (in process)" or the bootstrap servers
  std::vector<KafkaRun> latency;
  std::vector<KafkaThroughput> throughput;
};

using KafkaLog = std::function<void(const std::string&)>;

// Continuous runs use acking whatever `settings` say: KafkaSink is at-least-once only with it.
// The settings the Kafka runs actually use (for the knobs printed).
RunSettings kafkaRunSettings(RunSettings settings);

// Every pipeline x load x (floor, then each mode), then the throughput runs. Throws on a cluster
// that cannot be reached, a job that fails, or results that do not arrive within drainTimeout.
KafkaReport runKafkaComparison(const std::vector<KafkaPipeline>& pipelines,
                               const std::vector<double>& loads, const std::vector<Mode>& modes,
                               const RunSettings& settings, const KafkaSettings& kafka,
                               const KafkaLog& log = {});

// The latency table (writeTable) with the counts, then the throughput lines.
void writeKafkaReport(std::ostream& out, const KafkaReport& report);

// The continuous job gale-compare runs for `p` (topics "in" and "out"): its tests check the
// layout KafkaSettings asks for (the spout's and the sink's tasks and grouping).
Topology kafkaPipelineTopology(KafkaPipeline p, const std::string& bootstrap,
                               const KafkaSettings& k);
// The Continuous settings of a continuous run over `partitions` partitions: the limit of trees
// in flight per spout task is Continuous's default per partition the task reads.
Continuous kafkaContinuousConfig(const KafkaSettings& k, int partitions);

}  // namespace gale::compare
