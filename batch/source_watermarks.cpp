#include "source_watermarks.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <stdexcept>

namespace gale {

SourceWatermarks::SourceWatermarks(std::vector<SourceSpec> sources, WatermarkPolicy policy,
                                   Duration idleTimeout)
    : sources_(std::move(sources)),
      states_(sources_.size()),
      policy_(policy),
      idleTimeout_(idleTimeout.count()) {
  if (idleTimeout_ < 0) {
    throw std::invalid_argument("micro-batch watermark idle timeout must be >= 0 (0 = never idle)");
  }
}

void SourceWatermarks::restore(std::optional<Timestamp> global, const std::string& blob) {
  global_ = global;
  for (State& s : states_) s = State{};
  if (blob.empty()) {
    // A checkpoint from before per-source watermarks: every source continues from the job's.
    if (global) {
      for (size_t i = 0; i < sources_.size(); ++i)
        if (sources_[i].delay) states_[i].wm = global;
    }
    return;
  }
  // Lines "<micros> <name length> <name>\n": a source's own watermark under its name, a
  // partition's under "<name>#<partition>". Sources of the checkpoint that the topology no longer
  // has are ignored (the fingerprint check refuses another topology anyway).
  size_t pos = 0;
  auto bad = [&] {
    return std::runtime_error("malformed per-source watermarks in the checkpoint at byte " +
                              std::to_string(pos));
  };
  auto number = [&](int64_t& out, char end) {
    const char* first = blob.data() + pos;
    const char* last = blob.data() + blob.size();
    auto [p, ec] = std::from_chars(first, last, out);
    if (ec != std::errc() || p == last || *p != end) throw bad();
    pos = static_cast<size_t>(p - blob.data()) + 1;
  };
  while (pos < blob.size()) {
    int64_t micros = 0, len = 0;
    number(micros, ' ');
    number(len, ' ');
    if (len < 0 || static_cast<size_t>(len) + 1 > blob.size() - pos) throw bad();
    std::string name = blob.substr(pos, static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    if (blob[pos] != '\n') throw bad();
    ++pos;
    for (size_t i = 0; i < sources_.size(); ++i) {
      if (!sources_[i].delay) continue;
      const std::string& src = sources_[i].name;
      if (name == src) {
        states_[i].wm = Timestamp{micros};
      } else if (name.size() > src.size() + 1 && name.compare(0, src.size(), src) == 0 &&
                 name[src.size()] == '#') {
        int partition = 0;
        const char* first = name.data() + src.size() + 1;
        const char* last = name.data() + name.size();
        auto [p, ec] = std::from_chars(first, last, partition);
        if (ec != std::errc() || p != last) throw bad();
        states_[i].partitions[partition] = Partition{Timestamp{micros}, std::nullopt};
      }
    }
  }
}

std::optional<Timestamp> SourceWatermarks::partition(size_t i, int p) const {
  const auto& parts = states_.at(i).partitions;
  auto it = parts.find(p);
  if (it == parts.end()) return std::nullopt;
  return it->second.wm;
}

std::optional<Timestamp> SourceWatermarks::advance(
    const std::vector<std::optional<int64_t>>& maxEventTime, Timestamp now) {
  std::vector<PartitionMax> perPartition(maxEventTime.size());
  for (size_t i = 0; i < maxEventTime.size(); ++i)
    if (maxEventTime[i]) perPartition[i][0] = *maxEventTime[i];
  return advance(perPartition, now);
}

std::optional<Timestamp> SourceWatermarks::advance(const std::vector<PartitionMax>& maxEventTime,
                                                   Timestamp now) {
  if (maxEventTime.size() != sources_.size()) {
    throw std::logic_error("SourceWatermarks::advance: " + std::to_string(maxEventTime.size()) +
                           " sources reported, " + std::to_string(sources_.size()) + " expected");
  }
  auto idle = [&](Timestamp since) {
    return idleTimeout_ > 0 && now.micros - since.micros >= idleTimeout_;
  };
  std::optional<Timestamp> chosen;
  for (size_t i = 0; i < sources_.size(); ++i) {
    State& s = states_[i];
    if (!sources_[i].delay) continue;
    // A restored partition starts its idle clock now.
    for (auto& [p, part] : s.partitions)
      if (!part.lastData) part.lastData = now;
    const int64_t delay = sources_[i].delay->count();
    for (const auto& [p, t] : maxEventTime[i]) {
      Timestamp wm{t < std::numeric_limits<int64_t>::min() + delay
                       ? std::numeric_limits<int64_t>::min()
                       : t - delay};
      auto [it, fresh] = s.partitions.try_emplace(p, Partition{wm, now});
      it->second.lastData = now;
      if (!fresh && wm > it->second.wm) it->second.wm = wm;
    }
    // The slowest partition that is not idle; the source's own watermark never moves back.
    std::optional<Timestamp> low;
    for (const auto& [p, part] : s.partitions) {
      if (idle(*part.lastData)) continue;
      low = low ? std::min(*low, part.wm) : part.wm;
    }
    bool active = low.has_value();
    if (low && (!s.wm || *low > *s.wm)) s.wm = low;
    if (s.wm && s.partitions.empty()) {
      if (!s.restoredAt) s.restoredAt = now;
      active = !idle(*s.restoredAt);
    }
    if (!active) continue;
    if (!chosen) chosen = s.wm;
    else if (policy_ == WatermarkPolicy::Min) chosen = std::min(*chosen, *s.wm);
    else chosen = std::max(*chosen, *s.wm);
  }
  if (chosen && (!global_ || *chosen > *global_)) global_ = chosen;
  return global_;
}

std::string SourceWatermarks::snapshot() const {
  std::string out;
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (!states_[i].wm) continue;
    out += std::to_string(states_[i].wm->micros);
    out += ' ';
    out += std::to_string(sources_[i].name.size());
    out += ' ';
    out += sources_[i].name;
    out += '\n';
    for (const auto& [p, part] : states_[i].partitions) {
      std::string name = sources_[i].name + "#" + std::to_string(p);
      out += std::to_string(part.wm.micros) + ' ' + std::to_string(name.size()) + ' ' + name + '\n';
    }
  }
  return out;
}

}  // namespace gale
