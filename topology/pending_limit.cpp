#include "pending_limit.h"

namespace gale {

void PendingLimit::update(int64_t now) {
  if (!adaptive_) return;
  if (windowStart_ == 0) {
    windowStart_ = now;
    completions_ = 0;
    return;
  }
  int64_t elapsed = now - windowStart_;
  bool enough = (completions_ >= kMinCompletions && elapsed >= minWindow()) ||
                (completions_ > 0 && elapsed >= target_);
  if (!enough) {
    // Nothing completed for a whole target latency: nothing to learn (idle, or stalled and then
    // the limit already holds the spout back); start a fresh window.
    if (completions_ == 0 && elapsed >= target_) windowStart_ = now;
    return;
  }
  double rate = static_cast<double>(completions_) / static_cast<double>(elapsed);  // per ns
  double want = rate * static_cast<double>(target_);
  // At most double or halve per measurement: one noisy window cannot swing it far.
  double lo = std::max<double>(static_cast<double>(kFloor), static_cast<double>(limit_) / 2);
  double hi = static_cast<double>(limit_) * 2;
  want = std::clamp(want, std::min(lo, hi), hi);
  limit_ = std::clamp<size_t>(static_cast<size_t>(want), std::min(kFloor, max_), max_);
  windowStart_ = now;
  completions_ = 0;
}

}  // namespace gale
