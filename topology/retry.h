// The spout side of failed trees (as Storm's KafkaSpout retry service): how many times each
// message failed, when its next replay is due (exponential backoff), and when it has failed too
// often and goes to the dead-letter stream instead. Owned by one spout task's thread.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "gale/topology/component.h"

namespace gale {

class RetrySchedule {
 public:
  // maxRetries < 0: unlimited. Backoff after the k-th failure: backoffMin * 2^(k-1), at most
  // backoffMax (nanoseconds of the runtime's clock).
  RetrySchedule(int maxRetries, int64_t backoffMinNanos, int64_t backoffMaxNanos)
      : maxRetries_(maxRetries), min_(backoffMinNanos), max_(backoffMaxNanos) {}

  struct Decision {
    bool deadLetter = false;  // failed maxRetries + 1 times: no more replays
    uint32_t attempts = 0;    // failed trees of this message so far
  };
  // A tree of `id` failed at `now`: either schedules its replay or says it is dead.
  Decision failed(MessageId id, int64_t now);
  // The message completed (or was dead-lettered): forget it.
  void forget(MessageId id);
  // Whether `id` failed before (its next emit is a replay whose values are worth keeping).
  bool failedBefore(MessageId id) const { return !attempts_.empty() && attempts_.count(id) > 0; }
  // Moves the ids whose backoff ended by `now` to `out`, earliest first.
  void takeDue(int64_t now, std::vector<MessageId>& out);
  size_t waiting() const { return due_.size(); }
  // Drops every scheduled replay (stopping: nothing is replayed any more).
  void clearWaiting() { due_.clear(); }

 private:
  int maxRetries_;
  int64_t min_, max_;
  std::unordered_map<MessageId, uint32_t> attempts_;
  std::multimap<int64_t, MessageId> due_;
};

}  // namespace gale
