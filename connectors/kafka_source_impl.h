// KafkaSource's state, shared by its two halves: kafka_source_partitions.cpp (which partitions
// there are and where their offsets start and end: metadata, startingOffsets/endingOffsets,
// discovery, the end-offset lookups) and kafka_source.cpp (fetching: each partition's queue and
// buffer, records and their tuples, the wake fd, seeks, pauses, data loss and commits).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gale/connectors/kafka_source.h"
#include "gale/core/log.h"
#include "kafka_common.h"

namespace gale::kafka_source_detail {

constexpr int64_t kNoEnd = std::numeric_limits<int64_t>::max();

// A fetched record as librdkafka handed it over: the tuple is built from it when read() serves
// it, once, instead of being built into the buffer and copied out of it (a record's key, value,
// topic and headers were allocated twice). Holding the message keeps its fetch buffer; records
// leave the buffer in offset order at each commit, so only the oldest buffers stay pinned.
struct Fetched {
  struct Free {
    void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
  };
  std::unique_ptr<rd_kafka_message_t, Free> m;
  int64_t originNanos = 0;  // when the source took it from librdkafka
  int64_t offset() const { return m->offset; }
};

struct Part {
  std::string topic;
  int32_t id = 0;
  rd_kafka_queue_t* queue = nullptr;
  std::mutex m;
  std::deque<Fetched> buf;       // fetched records, in offset order
  int64_t base = 0;              // reads below this offset need a seek (committed or skipped)
  int64_t fetched = 0;           // one past the last offset fetched (or the EOF position)
  int64_t start = 0;             // where fetching starts at open()
  int64_t end = kNoEnd;          // endingOffsets
  int64_t committed = 0;         // the runtime's last commit()
  int64_t lostBelow = 0;         // offsets below are gone and were skipped (failOnDataLoss=false)
  std::atomic<int64_t> latest{0};  // the broker's end offset when last asked (unbounded partitions)
  bool paused = false;
  int wakeFd = -1;               // notifyOnRecords(): librdkafka writes here on new records
  std::string fatal;             // data loss under failOnDataLoss: every call throws this
};


}  // namespace gale::kafka_source_detail

namespace gale {

struct KafkaSource::Impl {
  using Fetched = kafka_source_detail::Fetched;
  using Part = kafka_source_detail::Part;
  static constexpr int64_t kNoEnd = kafka_source_detail::kNoEnd;

  Options o;
  std::string name;
  mutable std::mutex mutex;  // resolve, open, close
  mutable std::mutex statsMutex;
  bool resolved = false;
  std::atomic<bool> opened{false};
  std::atomic<bool> closed{false};
  rd_kafka_t* rk = nullptr;
  std::vector<std::unique_ptr<Part>> parts;
  std::atomic<size_t> partCount{0};
  const Clock* clock = &SystemClock::instance();
  KafkaOffsetSpec starting, ending;
  bool bounded = false;
  // resumePartitionOrder(): these are numbered first, in this order (a checkpoint's numbering).
  std::vector<std::pair<std::string, int32_t>> order;
  Stats stats;
  std::atomic<uint64_t> errors{0};

  // Asks the broker for every partition's end offset each latestOffsetsInterval (Spark's
  // latestOffsets per trigger), so available() never blocks on a broker round trip.
  std::thread latestThread;
  std::mutex latestMutex;
  std::condition_variable latestCv;
  bool latestStop = false;

  std::mutex commitMutex;
  std::map<int, int64_t> pendingCommits;  // gale partition -> offset not yet sent to the broker
  int64_t lastCommitNanos = 0;

  ~Impl() { teardownLocked(); }

  std::string where(const Part& p) const {
    return "kafka source '" + name + "': topic '" + p.topic + "' partition " +
           std::to_string(p.id);
  }

  static void onError(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    self->errors.fetch_add(1);
    std::string msg = std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) +
                      ": " + reason;
    {
      std::lock_guard lk(self->statsMutex);
      self->stats.lastError = msg;
    }
    logWarn("kafka source '" + self->name + "': " + msg);
  }

  // A Part stays where it is once made (parts only grows, under `mutex`, by discovery).
  Part& part(int p) {
    std::lock_guard lk(mutex);
    resolveLocked();
    if (p < 0 || static_cast<size_t>(p) >= parts.size()) {
      throw std::out_of_range("kafka source '" + name + "': no partition " + std::to_string(p) +
                              " (it has " + std::to_string(parts.size()) + ")");
    }
    return *parts[p];
  }

  std::vector<Part*> allParts() {
    std::lock_guard lk(mutex);
    std::vector<Part*> out;
    for (auto& p : parts) out.push_back(p.get());
    return out;
  }

  // maxOffsetsPerTrigger: how far past the last commit a partition may be read.
  int64_t cap(const Part& p) const {
    int64_t share =
        std::max<int64_t>(1, o.maxOffsetsPerTrigger / static_cast<int64_t>(partCount.load()));
    return p.committed > kNoEnd - share ? kNoEnd : p.committed + share;
  }

  void checkFatal(const Part& p) {
    if (!p.fatal.empty()) throw SourceFatalError(p.fatal);
  }

  // Which partitions there are and where they start and end (kafka_source_partitions.cpp).

  // The partitions of the subscribed topics (or of the topics matching subscribePattern) in the
  // broker's metadata now. At the start a missing topic is an error; later (discovery) it is not.
  std::vector<std::pair<std::string, int32_t>> subscribedPartitions(rd_kafka_t* client, int timeout,
                                                                    bool atStart);

  // Creates the consumer and looks up partitions and offsets. Caller holds `mutex`.
  void resolveLocked();

  // `tps` (sorted) with the resumed order's partitions first, as they were numbered, and the
  // others (added since) after them.
  std::vector<std::pair<std::string, int32_t>> inResumedOrder(
      std::vector<std::pair<std::string, int32_t>> tps);

  // Partitions added to the subscribed topics (or new topics matching the pattern) while the job
  // runs: read from their earliest offset (as Spark and Flink do), numbered after the known ones
  // whatever their names (a partition that sorts before the known ones too: numbers never move
  // while the job runs). Every checkpoint that keys offsets by number records this numbering
  // (partitionIds()), and a restart hands it back (resumePartitionOrder), so each partition
  // resumes by topic and partition.
  void discoverPartitions(rd_kafka_t* reader);

  // The client of the lookups of a running source (end offsets, discovery), apart from the
  // consumer that fetches (as Spark's offset reader is): on the consumer's own connections these
  // requests held its fetches back (continuous-mode p99 at 10 K records/s: ~50 ms, 1.5-3 ms with
  // a client of their own).
  rd_kafka_t* newOffsetReader();

  void startLatestThread();

  void stopLatestThread();

  // Fetching (kafka_source.cpp).

  // Restarts fetching of one partition at `offset`. An unassign + assign of that partition
  // rather than a seek: a seek is refused for a partition whose fetcher stopped on an error
  // (an out-of-range offset under auto.offset.reset=error).
  void seekLocked(Part& p, int64_t offset);

  void setPausedLocked(Part& p, bool pause);

  // Offsets at `offset` are gone: the broker's log starts later (retention) or ends earlier (a
  // recreated topic).
  void dataLossLocked(Part& p, int64_t offset, const std::string& why);

  using Owned = std::unique_ptr<rd_kafka_message_t, Fetched::Free>;
  // Takes `m` (destroys it unless it is a record kept in the buffer). True: a record was kept.
  bool handleLocked(Part& p, Owned owned, int64_t nowNanos);

  // The tuple of a fetched record (Spark's fields; KafkaSource::fields()).
  static SourceRecord recordOf(const Part& p, const Fetched& f);

  // Moves what librdkafka fetched into the buffer, waiting up to `timeoutMs` for the first
  // message. That wait is a single-message consume: a batch consume with a timeout waits until
  // its batch is full or the time is up, so records that arrived early would sit out the timeout.
  void drainLocked(Part& p, int timeoutMs = 0);

  // `limit(p)` (an end offset) for partition `partition` after moving what librdkafka fetched
  // into its buffer, capped by maxOffsetsPerTrigger and never below what was committed.
  template <class F>
  int64_t afterDrain(int partition, F&& limit);

  // Releases the consumer (a closed source can be opened again: it looks everything up anew).
  void teardownLocked();

  // notifyOnRecords(): librdkafka writes an eventfd increment to p.wakeFd when a message (a
  // record, EOF, an error) is put on the partition's empty queue; drainLocked() empties it, so
  // the next message writes again. Under p.m; the write happens under the queue's lock, so once
  // this returns with -1 nothing more is written to the old fd.
  static void wireWakeLocked(Part& p);

  // A partition was discovered: every registered reader looks at partitions() again now.
  void wakeAllReaders();

  // Before a queue goes (close, teardown): nothing may be written to a reader's fd after it.
  // The held messages go first: a consumer must not be destroyed while its messages are held.
  static void destroyQueueLocked(Part& p);

  // Sends the runtime's commits to the broker (group offsets, for lag monitoring), at most every
  // commitInterval unless `force`.
  void flushCommits(bool force);
};

}  // namespace gale
