// A replayable source: records split into partitions and addressed by offset (Kafka's model and
// Spark's Source). Both runtimes read the same object: continuous mode through a spout that
// tracks each record by (partition, offset) and re-reads it on failure; micro-batch mode by cutting
// offset ranges into batches and committing the end offsets with the batch's state.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gale/core/clock.h"
#include "gale/core/operator.h"
#include "gale/core/value.h"

namespace gale {

struct SourceRecord {
  int64_t offset = 0;
  Values values;
  // Monotonic nanoseconds at which the record was due (a generator's schedule) or arrived
  // (a socket or file). 0 = unknown. Latency is measured from here, so a generator that falls
  // behind its schedule shows the delay instead of hiding it (no coordinated omission).
  int64_t originNanos = 0;
  // The stream the record goes out on: empty = the default stream. A source may declare more
  // streams (e.g. FileSource's "errors" for malformed input) and return their records in the
  // same offset sequence, so every offset still yields exactly one record and replays stay exact.
  std::string stream;
};

// Thrown by a source that cannot serve a read (a dead connection, a missing file). The message
// names the source and the partition.
class SourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A source that cannot go on at all (records it must deliver are gone and it was told to fail
// on data loss). Both runtimes stop the job with it; a plain SourceError from a continuous-mode
// spout is logged and the read retried (a broker may come back), which would stall here.
class SourceFatalError : public SourceError {
 public:
  using SourceError::SourceError;
};

// Thread-safety: different partitions may be read concurrently from different threads (one
// reader per partition at a time); available() may be called from any thread.
class Source {
 public:
  virtual ~Source() = default;

  // A name for messages, metrics and the offset log (e.g. "socket:localhost:9999").
  virtual std::string name() const = 0;
  virtual void declareOutputFields(OutputFieldsDeclarer& declarer) const = 0;
  // May grow while the source runs (Kafka's discovered partitions; never shrinks): both runtimes
  // pick new partitions up, starting them at initialOffset().
  virtual int partitions() const = 0;

  // Starts the source (connect, start a generator's schedule). Called once before reads.
  virtual void open(const Clock& clock) {}
  virtual void close() {}

  // Where a reader with no recorded position starts in `partition` (a fresh micro-batch
  // checkpoint, or a continuous-mode spout). 0 for sources that number from the start; a Kafka
  // source answers its startingOffsets (or its consumer group's committed offset).
  virtual int64_t initialOffset(int partition) { return 0; }
  // One past the last offset that can be read now in `partition`.
  virtual int64_t available(int partition) = 0;
  // One past the last offset read() returns without waiting (<= available()). A source whose
  // available() runs ahead of the records at hand (Kafka reports the broker's end offset, so
  // that a micro-batch's ranges do not depend on fetch timing) says here what it already holds:
  // a continuous-mode spout reads up to it, so a record at hand is emitted at once instead of
  // waiting behind records still on the wire.
  virtual int64_t ready(int partition) { return available(partition); }
  // Lets an idle reader block instead of polling: after this call the source writes an eventfd
  // increment (8 bytes, the value 1) to `fd` (non-blocking) whenever records, or anything else
  // read() or ready() must see, arrive for `partition` after a ready() / read() found none
  // waiting, and when it adds partitions (partitions() grows). fd -1 stops it; the caller must
  // do that before it closes `fd`. Returns false when the source cannot (the reader then polls).
  // Call after open().
  virtual bool notifyOnRecords(int partition, int fd) { return false; }
  // Appends the records with offsets in [from, to) of `partition` to `out`, in offset order, and
  // returns how many it appended (fewer when some are gone, e.g. a bounded socket buffer).
  virtual size_t read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) = 0;
  // The records before `offset` are committed and will not be read again. A micro-batch job and
  // an exactly-once continuous job also call it before open() with the offsets they resume from,
  // so a source that fetches or looks ahead (Kafka, an unbounded generator) starts there.
  virtual void commit(int partition, int64_t offset) {}

  // Stable names of the partitions in their current numbering (Kafka: "topic/partition"), for a
  // source whose numbering can change between runs (partitions added to a topic sort among the
  // known ones); empty when the numbers themselves are stable. A micro-batch checkpoint records
  // them, and a restart hands them back through resumePartitionOrder().
  virtual std::vector<std::string> partitionIds() const { return {}; }
  // Before open(): number these partitions 0, 1, ... as listed (the order the checkpoint's
  // offsets are keyed by) and any others after them. Throws SourceError when a listed partition
  // no longer exists.
  virtual void resumePartitionOrder(const std::vector<std::string>& ids) {}

  // True when re-reading a range returns the same records (a transactional source); false when
  // it may return others (an opaque source, e.g. a socket whose buffer was lost on restart).
  virtual bool replayable() const { return true; }
  // True for a bounded source once available() will not grow any more.
  virtual bool finished() const { return false; }
};

using SourcePtr = std::shared_ptr<Source>;

}  // namespace gale
