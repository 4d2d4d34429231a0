#include "acker.h"

namespace gale {

std::pair<AckerTable::Entry*, int> AckerTable::entry(uint64_t root) {
  for (int b = 0; b < kBuckets; ++b) {
    auto it = buckets_[b].find(root);
    if (it != buckets_[b].end()) return {&it->second, b};
  }
  return {&buckets_[0][root], 0};
}

AckerTable::Done AckerTable::settle(uint64_t root, Entry* e, int bucket) {
  Done d;
  if (!e->initSeen) return d;  // acks may overtake the spout's init: wait for it
  if (e->failed || e->value == 0) {
    d.done = true;
    d.ok = !e->failed;
    d.spoutTask = e->spoutTask;
    if (e->failed) {
      auto r = reasons_[bucket].find(root);
      if (r != reasons_[bucket].end()) {
        d.reason = std::move(r->second);
        reasons_[bucket].erase(r);
      }
    }
    buckets_[bucket].erase(root);
  }
  return d;
}

AckerTable::Done AckerTable::init(uint64_t root, uint64_t xorOfEdges, TaskId spoutTask) {
  auto [e, b] = entry(root);
  e->value ^= xorOfEdges;
  e->spoutTask = spoutTask;
  e->initSeen = true;
  return settle(root, e, b);
}

AckerTable::Done AckerTable::ack(uint64_t root, uint64_t value) {
  auto [e, b] = entry(root);
  e->value ^= value;
  return settle(root, e, b);
}

AckerTable::Done AckerTable::fail(uint64_t root, std::string_view reason) {
  auto [e, b] = entry(root);
  if (!e->failed && !reason.empty()) reasons_[b].emplace(root, reason);  // the first one counts
  e->failed = true;
  return settle(root, e, b);
}

void AckerTable::rotate() {
  expired_ += buckets_[kBuckets - 1].size();
  for (int b = kBuckets - 1; b > 0; --b) {
    buckets_[b].swap(buckets_[b - 1]);
    reasons_[b].swap(reasons_[b - 1]);
  }
  buckets_[0].clear();
  reasons_[0].clear();
}

size_t AckerTable::size() const {
  size_t n = 0;
  for (const auto& b : buckets_) n += b.size();
  return n;
}

}  // namespace gale
