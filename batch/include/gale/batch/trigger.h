// When a micro-batch job cuts its next batch: Spark's triggers, as pure decisions over a Clock so
// that tests drive them with a ManualClock and never sleep.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "gale/core/value.h"

namespace gale {

// Named BatchTrigger, not Trigger: gale::Trigger is the window operator's early-firing rule
// (core/window.h), and a job may use both.
struct BatchTrigger {
  enum class Kind {
    // The next batch is cut as soon as the previous one has finished (Spark's default).
    Unspecified,
    // Batches start on multiples of `interval` (aligned to the epoch, as Spark's
    // ProcessingTimeExecutor). A batch that overruns its interval is followed by the next one at
    // once; a tick that finds no new data starts no batch.
    ProcessingTime,
    // Everything available when the job starts is processed, in as many batches as
    // maxRecordsPerBatch requires, and then the job stops. Data arriving later is left for the
    // next run.
    AvailableNow,
    // The topology is handed to continuous mode (runContinuous); no batches, no txids.
    Continuous,
  };
  Kind kind = Kind::Unspecified;
  Duration interval{0};

  static BatchTrigger unspecified() { return {}; }
  static BatchTrigger processingTime(Duration interval);
  static BatchTrigger availableNow() { return {Kind::AvailableNow, Duration{0}}; }
  static BatchTrigger continuous() { return {Kind::Continuous, Duration{0}}; }

  std::string toString() const;
};

// The decision of one trigger, separated from the job's threads. The job asks `due(now)` whether a
// batch may be cut now; when it cut one it calls `started(now)`, and when that batch finished
// `finished(now)`. With no new data at a due time the job calls `skipped(now)`.
class TriggerSchedule {
 public:
  explicit TriggerSchedule(BatchTrigger trigger);

  const BatchTrigger& trigger() const { return trigger_; }
  // True when a batch may start at `now` (the job still checks that there is new data).
  bool due(Timestamp now) const;
  // When the next batch becomes due; nullopt while it waits for the running batch to finish.
  std::optional<Timestamp> nextDue() const;

  void started(Timestamp now);
  void finished(Timestamp now);
  // A due time passed with no new data: processing time waits for the next tick; unspecified
  // and available-now stay due (the job looks again after MicroBatch::idlePoll of real time, so an
  // idle job neither spins nor depends on a ManualClock being advanced).
  void skipped(Timestamp now);

  // How many batches started after their tick had already passed because the previous batch
  // overran the interval (Spark logs "falling behind"; we count).
  uint64_t overruns() const { return overruns_; }

 private:
  Timestamp nextTick(Timestamp t) const;

  BatchTrigger trigger_;
  bool running_ = false;
  Timestamp next_{INT64_MIN};
  uint64_t overruns_ = 0;
};

}  // namespace gale
