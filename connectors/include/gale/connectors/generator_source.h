// Deterministic, replayable generated input: the source behind examples, tests and benchmarks.
//
// A GeneratorSource has N partitions and a pure function (partition, offset) -> Values, so reading
// a range twice gives the same records (a transactional source, replayable across restarts too).
// With a rate, records follow a fixed schedule from open(): record g of the global sequence
// (g = offset * partitions + partition, i.e. round-robin over partitions) is due at
// open + (g + 1) / rate. available() only shows records that are due, and every record's
// originNanos is the time it was DUE, not the time it was read, so a pipeline that falls behind
// the schedule shows the lag in its latency figures (no coordinated omission).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gale/core/source.h"

namespace gale {

class GeneratorSource : public Source {
 public:
  // Must be pure and thread-safe: different partitions are read concurrently, and a replay must
  // produce the same values.
  using Generator = std::function<Values(int partition, int64_t offset)>;

  struct Options {
    std::string name = "generator";
    int partitions = 1;
    // Records per second over all partitions; 0 = unlimited (records exist as fast as they are
    // read, and originNanos is the time of the read).
    double ratePerSecond = 0;
    // Total records over all partitions; -1 = unbounded. A bounded source is finished() once
    // all of them are due.
    int64_t total = -1;
    // Unlimited and unbounded, available(p) can not be "everything": it runs this many records
    // ahead of the highest offset read or committed so far in p, so a runtime that cuts batches
    // from available() still gets bounded batches (and one that resumes past the lookahead, having
    // committed where it resumes, still sees records).
    int64_t unlimitedLookahead = 65536;
  };

  // Throws std::invalid_argument on a bad option (no partitions, negative rate or total, a
  // generator that is empty), naming the option.
  GeneratorSource(Fields fields, Generator generator, Options options);

  std::string name() const override { return options_.name; }
  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  int partitions() const override { return options_.partitions; }

  // Starts the schedule at clock.monoNanos(). Reads before open() throw SourceError.
  void open(const Clock& clock) override;

  int64_t available(int partition) override;
  // Records past available(partition) are not due yet and are not returned.
  size_t read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) override;
  // Moves the unlimited lookahead's base up to `offset` (the offset a restart resumes at).
  void commit(int partition, int64_t offset) override;
  bool replayable() const override { return true; }
  bool finished() const override;

  // The monotonic time at which offset `offset` of `partition` is due (rate > 0 only).
  int64_t dueNanos(int partition, int64_t offset) const;
  // How many records (over all partitions) are due at monotonic time `nowNanos`.
  int64_t dueCount(int64_t nowNanos) const;

  const Options& options() const { return options_; }
  const Fields& fields() const { return fields_; }

 private:
  void checkPartition(int partition, const char* what) const;
  int64_t availableAt(int partition, int64_t dueTotal) const;
  void raiseHigh(int partition, int64_t offset);

  Fields fields_;
  Generator generator_;
  Options options_;
  const Clock* clock_ = nullptr;
  int64_t startNanos_ = 0;
  // Per partition, the highest offset read + 1 or committed (the unlimited lookahead's base).
  std::unique_ptr<std::atomic<int64_t>[]> readHigh_;
};

// Sentences for word count: field "sentence" (string), and optionally "ts" (timestamp, event
// time). Sentence and event time are functions of the global sequence number, so replays and
// reruns are identical.
class SentenceSource : public GeneratorSource {
 public:
  struct Options {
    std::string name = "sentences";
    int partitions = 1;
    double ratePerSecond = 0;
    int64_t total = -1;
    // Adds field "ts": eventTimeStart + g * eventTimeStep for global sequence number g.
    bool withEventTime = false;
    Timestamp eventTimeStart{0};
    Duration eventTimeStep{1000};
  };

  explicit SentenceSource(Options options);
  SentenceSource() : SentenceSource(Options{}) {}

  // The built-in sentences, in the order the generator indexes them.
  static const std::vector<std::string>& sentences();
  // The sentence of global sequence number g (what offset o of partition p carries, with
  // g = o * partitions + p).
  static const std::string& sentenceAt(int64_t g);
};

}  // namespace gale
