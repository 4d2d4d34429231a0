#include "gale/core/watermark.h"

#include <stdexcept>

namespace gale {

BoundedOutOfOrderness::BoundedOutOfOrderness(Duration delay, Duration idleTimeout)
    : delay_(delay.count()), idleTimeout_(idleTimeout.count()) {
  if (delay_ < 0) {
    throw std::invalid_argument("BoundedOutOfOrderness: delay must be >= 0, got " +
                                std::to_string(delay_) + " us");
  }
  if (idleTimeout_ < 0) {
    throw std::invalid_argument("BoundedOutOfOrderness: idleTimeout must be >= 0 (0 disables "
                                "idleness), got " + std::to_string(idleTimeout_) + " us");
  }
}

bool BoundedOutOfOrderness::observe(Timestamp eventTime, Timestamp now) {
  lastActivity_ = now;
  if (eventTime <= maxSeen_) return false;
  maxSeen_ = eventTime;
  // Saturating: an event time near the minimum must not wrap around.
  int64_t wm = maxSeen_.micros < kNoWatermark.micros + delay_ + 1 ? kNoWatermark.micros
                                                                   : maxSeen_.micros - delay_ - 1;
  if (wm <= current_.micros) return false;
  current_ = Timestamp{wm};
  return true;
}

std::optional<Timestamp> BoundedOutOfOrderness::onPeriodic(Timestamp) {
  if (current_ == lastEmitted_) return std::nullopt;
  lastEmitted_ = current_;
  return current_;
}

bool BoundedOutOfOrderness::idle(Timestamp now) const {
  if (idleTimeout_ == 0) return false;
  if (!lastActivity_) return false;
  return now.micros - lastActivity_->micros >= idleTimeout_;
}

void BoundedOutOfOrderness::restore(Timestamp maxEventTime) {
  maxSeen_ = kNoWatermark;
  current_ = kNoWatermark;
  lastEmitted_ = kNoWatermark;
  if (maxEventTime != kNoWatermark) observe(maxEventTime, Timestamp{0});
  lastActivity_.reset();
}

void WatermarkTracker::addInput(InputId input) { inputs_.try_emplace(input); }

std::optional<Timestamp> WatermarkTracker::update(InputId input, Timestamp wm) {
  Input& in = inputs_[input];
  in.idle = false;
  if (wm > in.wm) in.wm = wm;
  return recompute();
}

std::optional<Timestamp> WatermarkTracker::setIdle(InputId input, bool idle) {
  inputs_[input].idle = idle;
  return recompute();
}

std::optional<Timestamp> WatermarkTracker::recompute() {
  bool any = false;
  Timestamp c = policy_ == WatermarkPolicy::Min ? kEndOfTime : kNoWatermark;
  for (const auto& [id, in] : inputs_) {
    if (in.idle) continue;
    any = true;
    if (policy_ == WatermarkPolicy::Min) c = std::min(c, in.wm);
    else c = std::max(c, in.wm);
  }
  if (!any || c <= combined_) return std::nullopt;
  combined_ = c;
  return combined_;
}

}  // namespace gale
