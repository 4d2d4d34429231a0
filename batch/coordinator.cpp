#include "gale/batch/coordinator.h"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace gale {

std::string offsetsToString(const Offsets& offsets) {
  std::string s = "{";
  bool firstSource = true;
  for (const auto& [name, parts] : offsets) {
    if (!firstSource) s += ", ";
    firstSource = false;
    s += name + ": [";
    for (size_t p = 0; p < parts.size(); ++p) {
      if (p) s += ", ";
      s += std::to_string(parts[p]);
    }
    s += "]";
  }
  return s + "}";
}

BatchPlanner::BatchPlanner(std::vector<NamedSource> sources, int64_t maxRecordsPerBatch)
    : sources_(std::move(sources)), maxRecords_(maxRecordsPerBatch) {
  std::set<std::string> names;
  for (const auto& s : sources_) {
    if (!s.source) throw std::invalid_argument("BatchPlanner: source '" + s.name + "' is null");
    if (!names.insert(s.name).second) {
      throw std::invalid_argument("BatchPlanner: two sources are named '" + s.name +
                                  "'; names key the offset log, give each source its own");
    }
    if (s.source->partitions() < 1) {
      throw std::invalid_argument("BatchPlanner: source '" + s.name + "' has " +
                                  std::to_string(s.source->partitions()) + " partitions");
    }
    auto& pos = position_[s.name];
    for (int p = 0; p < s.source->partitions(); ++p) pos.push_back(s.source->initialOffset(p));
  }
}

void BatchPlanner::resume(uint64_t lastTxid, const Offsets& next) {
  for (const auto& [name, parts] : next) {
    auto it = position_.find(name);
    if (it == position_.end()) {
      throw std::runtime_error("the checkpoint records offsets for source '" + name +
                               "', which this topology does not have; use a new checkpoint "
                               "directory for a changed topology");
    }
    if (parts.size() > it->second.size()) {
      throw std::runtime_error("the checkpoint records " + std::to_string(parts.size()) +
                               " partitions for source '" + name + "' but it now has " +
                               std::to_string(it->second.size()) +
                               "; partitions cannot be removed from a running job");
    }
    // The others start where the source says (asked again: a source told its checkpoint's
    // partition order may have renumbered them since the planner was made).
    Source& src = *std::find_if(sources_.begin(), sources_.end(),
                                [&](const NamedSource& s) { return s.name == name; })
                       ->source;
    auto& pos = it->second;
    pos.resize(std::max(pos.size(), static_cast<size_t>(src.partitions())));
    for (size_t p = 0; p < pos.size(); ++p) {
      pos[p] = p < parts.size() ? parts[p] : src.initialOffset(static_cast<int>(p));
    }
  }
  lastTxid_ = lastTxid;
}

Offsets BatchPlanner::available() const {
  Offsets out;
  for (const auto& s : sources_) {
    auto& v = out[s.name];
    for (int p = 0; p < s.source->partitions(); ++p) v.push_back(s.source->available(p));
  }
  return out;
}

bool BatchPlanner::reached(const Offsets& target) const {
  for (const auto& [name, parts] : target) {
    auto it = position_.find(name);
    if (it == position_.end()) return false;
    for (size_t p = 0; p < parts.size(); ++p) {
      if (p >= it->second.size() || it->second[p] < parts[p]) return false;
    }
  }
  return true;
}

BatchPlan BatchPlanner::noDataBatch() {
  BatchPlan plan;
  plan.txid = ++lastTxid_;
  plan.ranges.resize(sources_.size());
  plan.start = plan.end = position_;
  return plan;
}

std::optional<BatchPlan> BatchPlanner::next(const Offsets* limit, std::optional<bool> endOfInput) {
  // Backlog per (source, partition).
  struct Slot {
    size_t source;
    int partition;
    int64_t from;
    int64_t backlog;
    int64_t take = 0;
  };
  std::vector<Slot> slots;
  int64_t total = 0;
  for (size_t i = 0; i < sources_.size(); ++i) {
    const auto& s = sources_[i];
    auto& pos = position_[s.name];
    // Partitions the source found while the job runs (Kafka's discovery) start at their initial
    // offset; the batch's end offsets then cover them.
    for (int p = static_cast<int>(pos.size()); p < s.source->partitions(); ++p)
      pos.push_back(s.source->initialOffset(p));
    const std::vector<int64_t>* lim = nullptr;
    if (limit) {
      auto it = limit->find(s.name);
      if (it != limit->end()) lim = &it->second;
    }
    for (int p = 0; p < static_cast<int>(pos.size()); ++p) {
      int64_t avail = s.source->available(p);
      if (lim) avail = p < static_cast<int>(lim->size()) ? std::min(avail, (*lim)[p]) : pos[p];
      int64_t backlog = std::max<int64_t>(0, avail - pos[p]);
      if (backlog > 0) {
        slots.push_back({i, p, pos[p], backlog});
        total += backlog;
      }
    }
  }
  if (total == 0) {
    if (endOfInput) {
      if (!*endOfInput) return std::nullopt;
    } else if (endOfInputCut_ || limit || !allFinishedAndRead()) {
      return std::nullopt;
    }
    endOfInputCut_ = true;
    BatchPlan plan;
    plan.txid = ++lastTxid_;
    plan.ranges.resize(sources_.size());
    plan.start = plan.end = position_;
    plan.endOfInput = true;
    return plan;
  }

  // Fair share under the limit: repeatedly give every partition with backlog an equal part of
  // what remains, so one hot partition cannot starve the others.
  int64_t budget = maxRecords_ > 0 ? std::min(maxRecords_, total) : total;
  while (budget > 0) {
    int64_t open = 0;
    for (auto& sl : slots) open += sl.take < sl.backlog;
    if (open == 0) break;
    int64_t share = std::max<int64_t>(1, budget / open);
    for (auto& sl : slots) {
      if (budget == 0) break;
      int64_t t = std::min({share, sl.backlog - sl.take, budget});
      sl.take += t;
      budget -= t;
    }
  }

  BatchPlan plan;
  plan.txid = ++lastTxid_;
  plan.ranges.resize(sources_.size());
  plan.start = position_;
  for (auto& sl : slots) {
    if (sl.take == 0) continue;
    plan.ranges[sl.source].push_back({sl.partition, sl.from, sl.from + sl.take});
    position_[sources_[sl.source].name][sl.partition] = sl.from + sl.take;
    plan.records += sl.take;
  }
  plan.end = position_;
  plan.endOfInput = endOfInput ? *endOfInput : allFinishedAndRead();
  endOfInputCut_ = endOfInputCut_ || plan.endOfInput;
  return plan;
}

bool BatchPlanner::allFinishedAndRead() const {
  for (const auto& s : sources_) {
    if (!s.source->finished()) return false;
    const auto& pos = position_.at(s.name);
    if (s.source->partitions() > static_cast<int>(pos.size())) return false;  // new ones to read
    for (size_t p = 0; p < pos.size(); ++p)
      if (pos[p] < s.source->available(static_cast<int>(p))) return false;
  }
  return true;
}

}  // namespace gale
