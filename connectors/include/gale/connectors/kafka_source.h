// Records from Kafka topics (Spark's readStream.format("kafka"), Storm's KafkaSpout), read through
// librdkafka. One gale partition per Kafka partition; a gale offset IS the Kafka offset, so the
// offsets a micro-batch job commits in its checkpoint are Kafka offsets, and a replay re-fetches
// exactly the records of the committed range.
//
// Where a partition starts: the offset the runtime resumes from (a micro-batch checkpoint, handed
// over through Source::commit before open()); else, when Options::groupId is set, that consumer
// group's committed offset (what a continuous-mode job committed up to its oldest incomplete
// tuple); else, in a run resumed from a checkpoint (resumePartitionOrder), its earliest offset:
// the partition came after the checkpoint, and Spark reads such new partitions from their start;
// else `startingOffsets`.
//
// The source fetches ahead into a bounded per-partition buffer (the partition is paused when it
// is full and resumed when the runtime commits), and serves read() and replays from it. The
// broker's consumer-group offsets are written on every commit (rate-limited) for lag monitoring
// with standard tools; a micro-batch job never trusts them for recovery.
//
// Tuple fields (Spark's): key (bytes, null when absent), value (bytes, null for a tombstone),
// topic, partition, offset, timestamp, timestampType (0 create time, 1 log-append time, -1 none),
// headers (null, or a JSON array [{"key":"k","value":"v"}, ...] as a string).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gale/core/source.h"

namespace gale {

class KafkaSource : public Source {
 public:
  struct Options {
    // "host:port,host:port" (Spark: kafka.bootstrap.servers). Required.
    std::string bootstrapServers;
    // Exactly one of the three ways to choose partitions (Spark: subscribe / subscribePattern /
    // assign): every partition of these topics; of the topics whose names match this ECMAScript
    // regex (resolved once, at the first metadata lookup); or these (topic, partition)s.
    std::vector<std::string> subscribe;
    std::string subscribePattern;
    std::vector<std::pair<std::string, int32_t>> assign;
    // "earliest", "latest", or Spark's JSON {"topic":{"0":23,"1":-2}} (-2 earliest, -1 latest;
    // partitions not named start at latest).
    std::string startingOffsets = "latest";
    // "" (unbounded), "latest" (the end at the first metadata lookup: a bounded job), or JSON as
    // above (-1 latest). A bounded source is finished() once every partition reached its end.
    std::string endingOffsets;
    // Offsets that are gone (retention, a recreated topic): true stops the job with a SourceError
    // naming topic, partition and range; false skips them, logs and counts (stats().lostRecords).
    bool failOnDataLoss = true;
    // At most this many offsets over all partitions per batch (split evenly over partitions);
    // in continuous mode, at most this many uncommitted offsets in flight. 0 = no limit.
    int64_t maxOffsetsPerTrigger = 0;
    // Passed to the librdkafka consumer as is (e.g. "fetch.wait.max.ms", "isolation.level",
    // "security.protocol"). gale sets enable.auto.commit=false, auto.offset.reset=error and
    // enable.partition.eof=true itself; these may not be overridden.
    std::map<std::string, std::string> consumerProperties;
    // The consumer group for offset commits (lag monitoring). When set, a new run also starts
    // where this group committed (continuous-mode resume); when empty the group is
    // "gale-" + name and is only written, never read back.
    std::string groupId;
    // For messages and metrics; default "kafka:" + the topics.
    std::string name;
    // Records fetched ahead per partition before the partition is paused.
    size_t maxBufferedRecords = 100000;
    // Metadata, watermark and committed-offset lookups, and how long read() waits for records
    // it must re-fetch (after a seek) before it gives up with a SourceError.
    std::chrono::milliseconds requestTimeout{10000};
    // How often an unbounded source asks the broker for its partitions' end offsets (Spark's
    // latestOffsets): available() reports them before the fetch has the records, so no partition
    // lags behind the others in a batch because its fetch answered later.
    std::chrono::milliseconds latestOffsetsInterval{100};
    // How often an unbounded source with subscribe / subscribePattern looks for partitions added
    // to its topics (and new topics matching the pattern) while it runs (Flink's
    // partition.discovery.interval.ms); 0 = never. New partitions are read from their earliest
    // offset.
    std::chrono::milliseconds partitionDiscoveryInterval{1000};
    // Group offsets are written to the broker at most this often.
    std::chrono::milliseconds commitInterval{100};
  };

  // Throws std::invalid_argument for bad options (no servers, not exactly one way to choose
  // partitions, unparsable starting/ending offsets), naming the option.
  explicit KafkaSource(Options options);
  ~KafkaSource() override;

  static Fields fields();

  std::string name() const override;
  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  // The first call looks up the metadata (topics, partitions, start and end offsets); throws
  // SourceError when the cluster cannot be reached or a topic does not exist. Grows when
  // partitions are discovered (partitionDiscoveryInterval).
  int partitions() const override;
  int64_t initialOffset(int partition) override;
  void open(const Clock& clock) override;
  void close() override;
  int64_t available(int partition) override;
  // What is fetched (available() is the broker's end offset, which read() waits for).
  int64_t ready(int partition) override;
  // Through librdkafka's queue IO events (rd_kafka_queue_io_event_enable) on the partition's
  // fetch queue, and on partition discovery: a continuous-mode spout with nothing to read waits
  // on the fd instead of polling the queue with back-off sleeps.
  bool notifyOnRecords(int partition, int fd) override;
  size_t read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) override;
  void commit(int partition, int64_t offset) override;
  // "topic/partition" per gale partition; resumePartitionOrder keeps a checkpoint's numbering
  // (a partition added to a topic that sorts among the known ones is numbered after them). The
  // runtime gives each partition to a spout task by this name (taskOfPartition), not by number:
  // worker processes number the partitions they discover while running each in its own order.
  std::vector<std::string> partitionIds() const override;
  void resumePartitionOrder(const std::vector<std::string>& ids) override;
  bool replayable() const override { return true; }
  bool finished() const override;

  // (topic, Kafka partition) of gale partition p.
  std::pair<std::string, int32_t> topicPartition(int partition) const;

  struct Stats {
    uint64_t records = 0;       // records fetched
    uint64_t lostRecords = 0;   // offsets skipped as gone (failOnDataLoss = false)
    uint64_t seeks = 0;         // re-fetches (a read outside the buffer)
    uint64_t pauses = 0;        // times a partition was paused on a full buffer
    uint64_t errors = 0;        // errors reported by librdkafka (broker down, ...)
    std::string lastError;
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gale
