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
  // Lines "<micros> <name length> <name>\n"; sources of the checkpoint that the topology no
  // longer has are ignored (the fingerprint check refuses another topology anyway).
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
    for (size_t i = 0; i < sources_.size(); ++i)
      if (sources_[i].name == name && sources_[i].delay) states_[i].wm = Timestamp{micros};
  }
}

std::optional<Timestamp> SourceWatermarks::advance(
    const std::vector<std::optional<int64_t>>& maxEventTime, Timestamp now) {
  if (maxEventTime.size() != sources_.size()) {
    throw std::logic_error("SourceWatermarks::advance: " + std::to_string(maxEventTime.size()) +
                           " sources reported, " + std::to_string(sources_.size()) + " expected");
  }
  for (size_t i = 0; i < sources_.size(); ++i) {
    State& s = states_[i];
    if (!sources_[i].delay) continue;
    if (!maxEventTime[i]) {
      // No data: the watermark stays. A restored source starts its idle clock now.
      if (s.wm && !s.lastData) s.lastData = now;
      continue;
    }
    s.lastData = now;
    int64_t delay = sources_[i].delay->count();
    int64_t t = *maxEventTime[i];
    int64_t wm = t < std::numeric_limits<int64_t>::min() + delay
                     ? std::numeric_limits<int64_t>::min()
                     : t - delay;
    if (!s.wm || wm > s.wm->micros) s.wm = Timestamp{wm};
  }
  std::optional<Timestamp> chosen;
  for (size_t i = 0; i < sources_.size(); ++i) {
    const State& s = states_[i];
    if (!s.wm) continue;
    if (idleTimeout_ > 0 && s.lastData && now.micros - s.lastData->micros >= idleTimeout_) continue;
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
  }
  return out;
}

}  // namespace gale
