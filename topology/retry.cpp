#include "retry.h"

#include <algorithm>

namespace gale {

RetrySchedule::Decision RetrySchedule::failed(MessageId id, int64_t now) {
  uint32_t& n = attempts_[id];
  ++n;
  Decision d;
  d.attempts = n;
  if (maxRetries_ >= 0 && n > static_cast<uint32_t>(maxRetries_)) {
    d.deadLetter = true;
    attempts_.erase(id);
    return d;
  }
  int64_t delay = min_;
  for (uint32_t k = 1; k < n && delay < max_; ++k) delay = delay > max_ / 2 ? max_ : delay * 2;
  due_.emplace(now + std::min(delay, max_), id);
  return d;
}

void RetrySchedule::forget(MessageId id) {
  if (!attempts_.empty()) attempts_.erase(id);
}

void RetrySchedule::takeDue(int64_t now, std::vector<MessageId>& out) {
  auto end = due_.upper_bound(now);
  for (auto it = due_.begin(); it != end; ++it) out.push_back(it->second);
  due_.erase(due_.begin(), end);
}

}  // namespace gale
