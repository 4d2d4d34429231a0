// Storm's acker: per spout tuple (root) the XOR of every edge id created and acked in its tuple
// tree. The tree is complete when the spout's init arrived and the XOR is back to zero. State is
// bounded in time: entries live in rotating buckets and vanish after about one message timeout
// (the spout times the tree out on its own, so a vanished entry only means "no early answer").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gale/core/tuple.h"

namespace gale {

class AckerTable {
 public:
  struct Done {
    bool done = false;  // the tree finished: tell `spoutTask`
    bool ok = false;
    TaskId spoutTask = -1;
    std::string reason;  // of the first Fail, when !ok
  };

  Done init(uint64_t root, uint64_t xorOfEdges, TaskId spoutTask);
  Done ack(uint64_t root, uint64_t value);
  // `reason`: who failed the tree and why (the Fail's payload), handed on with the TreeDone.
  Done fail(uint64_t root, std::string_view reason = {});
  // Drops the oldest bucket; call every messageTimeout / (kBuckets - 1).
  void rotate();
  size_t size() const;
  uint64_t expired() const { return expired_; }

  static constexpr int kBuckets = 3;

 private:
  struct Entry {
    uint64_t value = 0;
    TaskId spoutTask = -1;
    bool initSeen = false;
    bool failed = false;
  };
  // Finds the entry in any bucket, or creates it in the newest.
  std::pair<Entry*, int> entry(uint64_t root);
  Done settle(uint64_t root, Entry* e, int bucket);

  std::array<std::unordered_map<uint64_t, Entry>, kBuckets> buckets_;  // [0] newest
  // Reasons of failed trees, kept apart so the common entry stays small; bucket b holds the
  // reasons of the entries in buckets_[b] (entries do not move between buckets).
  std::array<std::unordered_map<uint64_t, std::string>, kBuckets> reasons_;
  uint64_t expired_ = 0;
};

}  // namespace gale
