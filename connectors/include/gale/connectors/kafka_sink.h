// Writes tuples to Kafka (Spark's writeStream.format("kafka"), Flink's KafkaSink) through
// librdkafka: key, value, topic (fixed or from a field) and headers from tuple fields, the value
// either a field as is or a JSON object of named fields (to_json).
//
// Continuous mode: at-least-once with the idempotent producer (enable.idempotence, so producer
// retries add no duplicates). A tuple is acked only when its delivery report says the broker has
// it; a failed delivery fails the tuple and the spout replays it. This is why KafkaSink is a Bolt
// (it acks later than execute returns), not an Operator.
//
// Micro-batch mode: exactly-once. Each sink task has a transactional producer with a stable
// transactional.id (<transactionalIdPrefix>-<task index>) and writes batch txid T in one Kafka
// transaction that also writes a marker record (key = transactional.id, value = T) to the marker
// topic: the marker is committed atomically with the records. On start the task runs
// init_transactions (which fences a zombie of the same id and aborts its open transaction), then
// reads its last committed marker (read_committed): a replayed txid <= the marker was committed
// before the crash and is skipped. The job logs each batch's offsets before running it, so a
// replay carries the same records (docs/connectors.md has the protocol and why it is correct).
// Subscribe the sink with a deterministic grouping (fields or global, or parallelism 1), so a
// replayed tuple goes to the same task as the first time.
//
// Continuous mode, exactly-once (Continuous{.guarantee = ExactlyOnce}): a two-phase-commit sink
// by write-ahead. The records written since the last barrier are kept in memory; preCommit(id)
// files them under checkpoint id, and they are stored in the checkpoint itself (the task's
// snapshot); once checkpoint id completes, commit(id) writes every record pre-committed under an
// id <= id in one Kafka transaction with id as its txid marker, through the same transactional
// producer and marker as micro-batch mode. recover() after a restart commits the pre-committed
// records of the last completed checkpoint that are newer than the marker (the crash came
// between the checkpoint record and the Kafka commit) and skips those already in Kafka. Nothing
// reaches Kafka before its checkpoint completes (docs/connectors.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gale/core/operator.h"
#include "gale/core/two_phase_commit.h"
#include "gale/topology/component.h"

namespace gale {

class KafkaSink : public Bolt, public ExactReplaySink, public TwoPhaseCommitSink {
 public:
  struct Options {
    std::string bootstrapServers;  // required
    // The topic of every record, or the name of a (string) field holding it. Exactly one.
    std::string topic;
    std::string topicField;
    // The key: this field's value ("" = no key). Bytes and strings are written as they are,
    // other values as their text (gale::toString); null = no key.
    std::string keyField;
    // The value: this field (as the key), unless toJson names fields: then a JSON object of
    // them ({"name":value,...}, gale's JSON writer; bytes as strings).
    std::string valueField = "value";
    std::vector<std::string> toJson;
    // Each named field becomes a header of that name (value as the key's rule; null = no header).
    std::vector<std::string> headerFields;
    // Passed to the librdkafka producer (e.g. "linger.ms", "compression.type").
    std::map<std::string, std::string> producerProperties;
    // Micro-batch mode: transactional.id = prefix + "-" + task index; default "gale-" + the
    // component's name. Must be stable across restarts of the job and unique among jobs.
    std::string transactionalIdPrefix;
    // Micro-batch mode: the topic of the txid markers (must exist; compacted in production, so
    // it keeps one marker per transactional.id). Task i writes to partition i % its partitions.
    std::string markerTopic = "gale_sink_markers";
    // Transactions, init and flush wait at most this long.
    std::chrono::milliseconds timeout{30000};
    // Fault injection and tracing (micro-batch, and continuous exactly-once with the checkpoint
    // id as txid): called with "begin" before a transaction begins, and "before-kafka-commit" /
    // "after-kafka-commit" around its commit.
    std::function<void(const char* point, uint64_t txid)> onTransactionPoint;
  };

  // Throws std::invalid_argument for bad options (naming them).
  explicit KafkaSink(Options options);
  ~KafkaSink() override;

  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override;
  void prepare(const TopologyContext& context, OutputCollector& collector) override;
  void execute(const Tuple& input, OutputCollector& collector) override;
  void cleanup() override;
  void onBatchBegin(uint64_t txid, OutputCollector& collector) override;
  void onBatchEnd(uint64_t txid, OutputCollector& collector) override;
  void onEndOfStream(OutputCollector& collector) override;
  void onTick(Timestamp now, OutputCollector& collector) override;
  // Serves the delivery reports (which ack) whenever the task is idle, not only per execute() or
  // tick: a spout it is fused into, held at its limit of trees in flight, calls no execute()
  // until they come, and a tick is 100 ms away.
  void onIdle(OutputCollector& collector) override;
  // Continuous exactly-once (see above; called by the runtime on the task's thread).
  void recover(uint64_t lastCompletedCheckpoint) override;
  void preCommit(uint64_t checkpointId) override;
  void commit(uint64_t checkpointId) override;
  std::optional<std::string> preCommitState() override;
  void restorePreCommitState(const std::string& state) override;

  // Counters of all tasks of this sink (shared by clones).
  struct Stats {
    uint64_t produced = 0;        // records handed to the producer
    uint64_t delivered = 0;       // continuous: delivery reports OK
    uint64_t failed = 0;          // continuous: delivery reports with an error (tuple failed)
    uint64_t transactions = 0;    // micro-batch / exactly-once: committed transactions
    uint64_t skippedBatches = 0;  // micro-batch: replayed txids already in Kafka; exactly-once:
                                  // pre-committed checkpoints found already in Kafka on recovery
  };
  Stats stats() const;

 private:
  struct Shared;
  struct Task;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Task> task_;
};

}  // namespace gale
