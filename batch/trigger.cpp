#include "gale/batch/trigger.h"

#include <stdexcept>

namespace gale {

BatchTrigger BatchTrigger::processingTime(Duration interval) {
  if (interval.count() <= 0) {
    throw std::invalid_argument("BatchTrigger::processingTime: the interval must be positive (got " +
                                std::to_string(interval.count()) +
                                " us); use BatchTrigger::unspecified() for back-to-back batches");
  }
  return {Kind::ProcessingTime, interval};
}

std::string BatchTrigger::toString() const {
  switch (kind) {
    case Kind::Unspecified: return "unspecified";
    case Kind::ProcessingTime: return "processingTime(" + std::to_string(interval.count()) + "us)";
    case Kind::AvailableNow: return "availableNow";
    case Kind::Continuous: return "continuous";
  }
  return "?";
}

TriggerSchedule::TriggerSchedule(BatchTrigger trigger) : trigger_(trigger) {
  if (trigger_.kind == BatchTrigger::Kind::ProcessingTime && trigger_.interval.count() <= 0) {
    trigger_ = BatchTrigger::processingTime(trigger_.interval);  // throws with the message
  }
}

Timestamp TriggerSchedule::nextTick(Timestamp t) const {
  // Spark's nextBatchTime: the first multiple of the interval strictly after t.
  int64_t iv = trigger_.interval.count();
  int64_t q = t.micros / iv;
  if (t.micros < 0 && t.micros % iv != 0) --q;
  return Timestamp{(q + 1) * iv};
}

bool TriggerSchedule::due(Timestamp now) const {
  if (running_) return false;
  return now >= next_;
}

std::optional<Timestamp> TriggerSchedule::nextDue() const {
  if (running_) return std::nullopt;
  return next_;
}

void TriggerSchedule::started(Timestamp now) {
  running_ = true;
  if (trigger_.kind == BatchTrigger::Kind::ProcessingTime) {
    // The batch started at `now` owns the tick it started in; the next one is the following tick.
    next_ = nextTick(now);
  } else {
    next_ = now;
  }
}

void TriggerSchedule::finished(Timestamp now) {
  running_ = false;
  if (trigger_.kind != BatchTrigger::Kind::ProcessingTime) {
    next_ = now;
  } else if (now > next_) {
    ++overruns_;
  }
  // Processing time keeps next_: if the batch overran, now >= next_ and the next batch is due at
  // once; otherwise it waits for its tick.
}

void TriggerSchedule::skipped(Timestamp now) {
  next_ = trigger_.kind == BatchTrigger::Kind::ProcessingTime ? nextTick(now) : now;
}

}  // namespace gale
