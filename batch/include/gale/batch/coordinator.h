// The batch coordinator's bookkeeping, free of threads and transport: cutting sources into
// batches (offset ranges per partition, from Source::available) under strictly increasing txids,
// and releasing finished batches for commit strictly in txid order even when they finish out of
// order.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gale/core/source.h"

namespace gale {

// Source name -> the next offset to read, per partition (index = partition). This is what a
// commit records for a batch: the end offsets of its ranges.
using Offsets = std::map<std::string, std::vector<int64_t>>;

std::string offsetsToString(const Offsets& offsets);

struct PartitionRange {
  int partition = 0;
  int64_t from = 0;  // first offset of the batch
  int64_t to = 0;    // one past the last
  friend bool operator==(const PartitionRange&, const PartitionRange&) = default;
};

struct BatchPlan {
  uint64_t txid = 0;
  // Per source, in the order the planner was given its sources: the non-empty ranges.
  std::vector<std::vector<PartitionRange>> ranges;
  Offsets start;  // offsets before the batch
  Offsets end;    // offsets after it (what its commit records)
  int64_t records = 0;
  bool replay = false;  // re-cut of a batch recorded before a restart
  // After this batch every source is finished() and read to its end: the batch-end watermark goes
  // to the end of time and operators get onEndOfInput, as at the end of a bounded stream in
  // continuous mode, so both modes emit the same final windows.
  bool endOfInput = false;
};

struct NamedSource {
  std::string name;
  SourcePtr source;
};

class BatchPlanner {
 public:
  // maxRecordsPerBatch <= 0: no limit. Source names must be unique (they key the offset log).
  BatchPlanner(std::vector<NamedSource> sources, int64_t maxRecordsPerBatch);

  // Continue after a commit: the next batch gets txid lastTxid + 1 and starts at `next`
  // (partitions missing from `next` start at Source::initialOffset). Throws std::runtime_error naming the source when
  // the offsets cannot belong to these sources (unknown source, fewer partitions than recorded).
  void resume(uint64_t lastTxid, const Offsets& next);

  // Cuts the next batch from what is available now; nullopt when there is nothing new. With
  // `limit`, no range goes past it (available-now: the offsets seen when the job started).
  // One exception to "nothing new, no batch": when every source has finished and was read to its
  // end but no batch said so yet, an empty batch with endOfInput is cut, once.
  // `endOfInput`, when given (the replay of a logged batch), is the plan's flag whatever the
  // sources say now, and with `true` an empty end-of-input batch is cut even under a limit.
  std::optional<BatchPlan> next(const Offsets* limit = nullptr,
                                std::optional<bool> endOfInput = std::nullopt);

  // A batch without data (Spark's no-data batch: it only carries the watermark to the state
  // operators), at the current position.
  BatchPlan noDataBatch();

  // The current available() of every partition.
  Offsets available() const;
  // True when every partition has been cut up to `target`.
  bool reached(const Offsets& target) const;

  uint64_t lastTxid() const { return lastTxid_; }
  const Offsets& position() const { return position_; }
  const std::vector<NamedSource>& sources() const { return sources_; }

 private:
  std::vector<NamedSource> sources_;
  int64_t maxRecords_;
  bool allFinishedAndRead() const;

  uint64_t lastTxid_ = 0;
  Offsets position_;
  bool endOfInputCut_ = false;
};

// Batches may finish out of order (they overlap in the pipeline); commits must not. Each
// registered txid is released by `popReady` only once it and every txid before it finished.
template <typename Result>
class CommitSequencer {
 public:
  // Registers a started batch. Txids must be strictly increasing.
  void started(uint64_t txid) {
    if (!order_.empty() && txid <= order_.back().first) {
      throw std::logic_error("CommitSequencer: txid " + std::to_string(txid) +
                             " started after txid " + std::to_string(order_.back().first));
    }
    order_.emplace_back(txid, std::nullopt);
  }
  // Marks a started batch finished. Throws for a txid that was not started or finished twice.
  void finished(uint64_t txid, Result result) {
    for (auto& [t, r] : order_) {
      if (t == txid) {
        if (r) throw std::logic_error("CommitSequencer: txid " + std::to_string(txid) +
                                      " finished twice");
        r = std::move(result);
        return;
      }
    }
    throw std::logic_error("CommitSequencer: txid " + std::to_string(txid) +
                           " finished but was never started");
  }
  // The next batch to commit, if it has finished (the oldest started one).
  std::optional<std::pair<uint64_t, Result>> popReady() {
    if (order_.empty() || !order_.front().second) return std::nullopt;
    std::pair<uint64_t, Result> out{order_.front().first, std::move(*order_.front().second)};
    order_.erase(order_.begin());
    return out;
  }
  size_t inFlight() const { return order_.size(); }

 private:
  std::vector<std::pair<uint64_t, std::optional<Result>>> order_;
};

}  // namespace gale
