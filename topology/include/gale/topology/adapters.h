// The bridges from gale's mode-agnostic pieces to continuous mode: a gale::Operator runs as a
// bolt (OperatorBolt) and a gale::Source runs as a spout (SourceSpout). TopologyBuilder makes
// them for setBolt(name, Operator) and setSpout(name, SourcePtr); the micro-batch runtime finds
// the Operator / Source again through Topology::components().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/operator.h"
#include "gale/core/source.h"
#include "gale/core/watermark.h"
#include "gale/topology/component.h"

namespace gale {

// In-band watermarks of a SourceSpout: Flink's bounded out-of-orderness (core's
// BoundedOutOfOrderness) per source partition: a partition's watermark = max event time seen in
// it - delay - 1 µs, and the task's is the minimum over its partitions (Flink's per-split
// watermarks), so a lagging partition's records are not late because another one ran ahead.
// Idleness is opt-in, as Flink's withIdleness (Spark has none): by default a partition without
// data holds the task's watermark back however long it is quiet, so a slow partition's records
// are never late because it looked idle. With `idleTimeout` > 0, a partition that read nothing
// for that long (counted from open()) is left out of the minimum until it has data again.
// The watermark is emitted when it moved and either `everyTuples` tuples or `every` time passed
// since the last one. A task whose partitions are all idle emits its watermark marked idle, which
// its consumers leave out of their min over inputs until it emits data again. A task without
// partitions (more tasks than partitions) is idle: at once without idleness (as Flink's reader
// without splits), else after idleTimeout from open().
struct WatermarkSpec {
  std::string field;  // an event-time field (timestamp or int64 micros) of the source's stream
  Duration delay{0};
  uint64_t everyTuples = 1000;
  Duration every = std::chrono::milliseconds(5);
  Duration idleTimeout = Duration::zero();  // 0: no idleness; < 0 is refused
};

// Runs a gale::Operator as a bolt: onTuple per input (outputs anchored to the input, input acked
// when onTuple returns; if it throws, the runtime logs and counts the error and fails the input),
// onWatermark per watermark advance, onEndOfInput at end of stream, onProcessingTime per tick.
// Outputs of watermark/tick/end hooks are unanchored (they belong to no single input).
class OperatorBolt final : public Bolt {
 public:
  explicit OperatorBolt(std::shared_ptr<const Operator> prototype);
  const std::shared_ptr<const Operator>& prototype() const { return prototype_; }
  // The task's own instance (after prepare), e.g. for tests and metrics.
  Operator* instance() const { return op_.get(); }

  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  std::unique_ptr<Bolt> clone() const override;
  void prepare(const TopologyContext& context, OutputCollector& collector) override;
  void execute(const Tuple& input, OutputCollector& collector) override;
  void onWatermark(Timestamp watermark, OutputCollector& collector) override;
  void onBatchBegin(uint64_t txid, OutputCollector& collector) override;
  void onBatchEnd(uint64_t txid, OutputCollector& collector) override;
  void onEndOfStream(OutputCollector& collector) override;
  void onTick(Timestamp now, OutputCollector& collector) override;

 private:
  std::shared_ptr<const Operator> prototype_;
  OperatorPtr op_;
};

// Runs a gale::Source as a spout. Task i of n reads the partitions p with p % n == i (also those
// the source adds while it runs, e.g. Kafka's discovered partitions); each record
// is emitted with msgId = (partition << 48 | offset) and its originNanos; a failed record is
// re-read from its offset and emitted again; the acked prefix of each partition is committed
// (Source::commit). When the source is finished() and every record is read and acked, the task
// emits EndOfStream. All tasks share the one Source object, opened once and closed by the last.
class SourceSpout final : public Spout {
 public:
  static constexpr int kOffsetBits = 48;
  static MessageId messageId(int partition, int64_t offset) {
    return (static_cast<uint64_t>(partition) << kOffsetBits) | static_cast<uint64_t>(offset);
  }

  explicit SourceSpout(SourcePtr source, std::optional<WatermarkSpec> watermark = std::nullopt,
                       size_t readChunk = 64);
  ~SourceSpout() override;
  const SourcePtr& source() const { return shared_->source; }
  const std::optional<WatermarkSpec>& watermark() const { return watermark_; }

  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  std::unique_ptr<Spout> clone() const override;
  void open(const TopologyContext& context, SpoutOutputCollector& collector) override;
  bool nextTuple(SpoutOutputCollector& collector) override;
  void ack(MessageId msgId) override;
  void fail(MessageId msgId) override;
  void close() override;
  // An eventfd the source writes to when records arrive for this task's partitions
  // (Source::notifyOnRecords), or -1 when the source cannot for one of them or the task has
  // none (the task polls, as it does for sources that cannot tell).
  int wakeFd() const override { return wakeOk_ && !parts_.empty() ? wakeFd_ : -1; }

  // Records that could not be re-read for a replay (gone from an opaque source).
  uint64_t lostRecords() const { return lost_; }

  // Exactly-once continuous mode (the checkpointing spout wrapping this one). Before open():
  // read from `resumeAt` (partition -> offset; other partitions from Source::initialOffset), pass
  // it to Source::commit before the source opens, and leave later commits to completed
  // checkpoints.
  void resumeFromCheckpoint(std::map<int, int64_t> resumeAt);
  // Per partition this task reads, the next offset to emit (one past the last record emitted).
  std::map<int, int64_t> positions() const;

 private:
  // Shared by every clone: the Source is opened once and closed once.
  struct Shared {
    SourcePtr source;
    std::once_flag opened;
    std::mutex mutex;
    int openTasks = 0;
  };
  // One partition this task reads. `done` holds, for offsets [base, next), whether the record
  // was acked; the front run of acked records is committed.
  struct Partition {
    int id = 0;
    int64_t base = 0;
    int64_t next = 0;
    std::deque<bool> done;
    std::optional<BoundedOutOfOrderness> watermark;  // this partition's, with a WatermarkSpec
    int64_t lastDataNanos = 0;
  };

  void noteDone(Partition& p, int64_t offset);
  // Passes the offsets from p.next up to `to`, whose records are gone.
  void skipGone(Partition& p, int64_t to);
  // Takes this task's share of the partitions the source has beyond knownPartitions_.
  void adoptNewPartitions();
  // `now` / `monoNanos`: the clock, read once per chunk of records (a read per record was a fifth
  // of a typed YSB run's time).
  bool emitRecord(Partition& p, SourceRecord& rec, bool replay, Timestamp now, int64_t monoNanos);
  void maybeEmitWatermark();
  // The minimum over the partitions that are not idle; nullopt when all are idle.
  std::optional<Timestamp> taskWatermark(int64_t nowNanos) const;
  Partition* partitionOf(MessageId id, int64_t& offset);
  // Asks the source to write to wakeFd_ when records arrive for `p`; wakeOk_ stays true only
  // while every partition of this task is registered.
  void registerWake(const Partition& p);

  std::shared_ptr<Shared> shared_;
  std::optional<WatermarkSpec> watermark_;
  size_t readChunk_;

  SpoutOutputCollector* out_ = nullptr;
  const Clock* clock_ = nullptr;
  bool acking_ = true;
  int taskIndex_ = 0;
  int parallelism_ = 1;
  int knownPartitions_ = 0;
  std::vector<Partition> parts_;
  size_t cursor_ = 0;
  std::deque<MessageId> replay_;
  std::vector<SourceRecord> buf_;
  bool ended_ = false;
  uint64_t lost_ = 0;
  bool checkpointed_ = false;
  std::map<int, int64_t> resumeAt_;
  // Watermark state (the generators are per partition); idleness is decided here (with an
  // idleTimeout: no data read for that long, counted from open() so a partition without data
  // goes idle too).
  int eventField_ = -1;
  Timestamp emitted_ = kNoWatermark;  // the last watermark sent
  uint64_t sinceWatermark_ = 0;
  int64_t lastWatermarkNanos_ = 0;
  int64_t openNanos_ = 0;
  bool idle_ = false;
  int wakeFd_ = -1;  // eventfd (wakeFd()); registered with the source for every partition in parts_
  bool wakeOk_ = false;
};

}  // namespace gale
