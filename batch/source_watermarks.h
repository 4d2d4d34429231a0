// The watermark of a micro-batch job with several sources, as Spark computes it
// (MicroBatchExecution's WatermarkTracker):
//  - each source that declares a watermark keeps its own: max event time seen through the batch
//    minus the source's delay. A batch without data from a source leaves that source's watermark
//    where it was (the source is not "idle" merely because this batch had nothing of it);
//  - the job's watermark is the minimum over the sources that have a watermark (Spark's default
//    multipleWatermarkPolicy "min"), or the maximum with WatermarkPolicy::Max;
//  - a source that has never had data has no watermark yet and does not take part (Spark);
//  - optionally (Flink's withIdleness, off by default) a source without data for `idleTimeout` of
//    processing time is left out of the minimum until it has data again;
//  - the job's watermark never moves back.
// Pure bookkeeping, no threads: the micro-batch pipeline calls advance() once per batch, in txid
// order, with what every source's tasks saw in that batch.
#pragma once

#include <cstdint>
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

  // One batch: maxEventTime[i] is the max event time source i had in this batch (nullopt: no
  // data). `now` is the job's processing time (for idleness). Returns the job's watermark after
  // the batch (nullopt while no watermarked source has had data).
  std::optional<Timestamp> advance(const std::vector<std::optional<int64_t>>& maxEventTime,
                                   Timestamp now);

  std::optional<Timestamp> global() const { return global_; }
  // Source i's own watermark (nullopt: none yet).
  std::optional<Timestamp> source(size_t i) const { return states_.at(i).wm; }
  std::string snapshot() const;

 private:
  struct State {
    std::optional<Timestamp> wm;
    std::optional<Timestamp> lastData;  // processing time of the last batch with data
  };
  std::vector<SourceSpec> sources_;
  std::vector<State> states_;
  WatermarkPolicy policy_;
  int64_t idleTimeout_;
  std::optional<Timestamp> global_;
};

}  // namespace gale
