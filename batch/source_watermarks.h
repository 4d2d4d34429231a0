// The watermark of a micro-batch job with several sources, as Spark computes it
// (MicroBatchExecution's WatermarkTracker):
//  - each source that declares a watermark keeps its own: the minimum over its partitions of
//    (max event time the partition had so far minus the source's delay), so a job over many
//    partitions drops nothing as late because one partition lags (Flink's per-partition
//    watermarks); it never moves back. A batch without data from a partition leaves that
//    partition's watermark where it was (it is not "idle" merely because this batch had nothing
//    of it); a partition that never had data takes no part (as a source in Spark);
//  - the job's watermark is the minimum over the sources that have a watermark (Spark's default
//    multipleWatermarkPolicy "min"), or the maximum with WatermarkPolicy::Max;
//  - a source that has never had data has no watermark yet and does not take part (Spark);
//  - optionally (Flink's withIdleness, off by default) a partition without data for `idleTimeout`
//    of processing time is left out of its source's minimum until it has data again, and a source
//    whose partitions are all idle is left out of the job's;
//  - the job's watermark never moves back.
// Pure bookkeeping, no threads: the micro-batch pipeline calls advance() once per batch, in txid
// order, with what every source's tasks saw in that batch.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/clock.h"
#include "gale/core/value.h"
#include "gale/core/watermark.h"

namespace gale {

class SourceWatermarks {
 public:
  struct SourceSpec {
    std::string name;                // the spout's component name (the key in snapshots)
    std::optional<Duration> delay;   // nullopt: the source declares no watermark
  };

  SourceWatermarks(std::vector<SourceSpec> sources, WatermarkPolicy policy,
                   Duration idleTimeout = Duration::zero());

  // Continues a committed job: `blob` is what snapshot() wrote (empty for a checkpoint written
  // before per-source watermarks were kept: every watermarked source then starts at `global`).
  // Throws std::runtime_error on a malformed blob.
  void restore(std::optional<Timestamp> global, const std::string& blob);

  // One batch: maxEventTime[i] maps each partition of source i that had data in this batch to
  // its max event time. `now` is the job's processing time (for idleness). Returns the job's
  // watermark after the batch (nullopt while no watermarked source has had data).
  using PartitionMax = std::map<int, int64_t>;
  std::optional<Timestamp> advance(const std::vector<PartitionMax>& maxEventTime, Timestamp now);
  // The same for sources of one partition each (nullopt: no data).
  std::optional<Timestamp> advance(const std::vector<std::optional<int64_t>>& maxEventTime,
                                   Timestamp now);

  std::optional<Timestamp> global() const { return global_; }
  // Source i's own watermark (nullopt: none yet).
  std::optional<Timestamp> source(size_t i) const { return states_.at(i).wm; }
  // Partition p of source i (nullopt: none yet).
  std::optional<Timestamp> partition(size_t i, int p) const;
  std::string snapshot() const;

 private:
  struct Partition {
    Timestamp wm;
    std::optional<Timestamp> lastData;  // processing time of the last batch with data
  };
  struct State {
    std::optional<Timestamp> wm;
    std::map<int, Partition> partitions;  // those that had data
    // A source restored from a checkpoint that kept no partition watermarks: its own watermark
    // counts (and goes idle) from this processing time until a partition has data.
    std::optional<Timestamp> restoredAt;
  };
  std::vector<SourceSpec> sources_;
  std::vector<State> states_;
  WatermarkPolicy policy_;
  int64_t idleTimeout_;
  std::optional<Timestamp> global_;
};

}  // namespace gale
