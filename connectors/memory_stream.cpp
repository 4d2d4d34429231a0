#include "gale/connectors/memory_stream.h"

#include <stdexcept>

#include "gale/core/clock.h"

namespace gale {

MemoryStream::MemoryStream(std::string name, Fields fields, int partitions)
    : name_(std::move(name)), fields_(std::move(fields)) {
  if (partitions < 1) {
    throw std::invalid_argument("MemoryStream '" + name_ + "': partitions must be at least 1");
  }
  parts_.resize(static_cast<size_t>(partitions));
}

int64_t MemoryStream::addData(std::vector<Values> rows, int partition) {
  for (const Values& r : rows) {
    std::string why = fields_.mismatch(r);
    if (!why.empty()) throw std::invalid_argument("MemoryStream '" + name_ + "': " + why);
  }
  const int64_t now = SystemClock::steadyNanos();
  std::lock_guard lk(mutex_);
  if (partition < 0 || partition >= static_cast<int>(parts_.size())) {
    throw std::invalid_argument("MemoryStream '" + name_ + "': no partition " +
                                std::to_string(partition));
  }
  if (finished_) throw std::logic_error("MemoryStream '" + name_ + "': addData after finish()");
  auto& p = parts_[static_cast<size_t>(partition)];
  for (Values& r : rows) p.push_back({std::move(r), now});
  return static_cast<int64_t>(p.size());
}

void MemoryStream::finish() {
  std::lock_guard lk(mutex_);
  finished_ = true;
}

int64_t MemoryStream::available(int partition) {
  std::lock_guard lk(mutex_);
  return static_cast<int64_t>(parts_.at(static_cast<size_t>(partition)).size());
}

size_t MemoryStream::read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) {
  std::lock_guard lk(mutex_);
  const auto& p = parts_.at(static_cast<size_t>(partition));
  if (from < 0 || to > static_cast<int64_t>(p.size()) || from > to) {
    throw SourceError("MemoryStream '" + name_ + "' partition " + std::to_string(partition) +
                      ": offsets [" + std::to_string(from) + ", " + std::to_string(to) +
                      ") are not all there (" + std::to_string(p.size()) + " rows)");
  }
  for (int64_t o = from; o < to; ++o) {
    const Stored& s = p[static_cast<size_t>(o)];
    out.push_back({o, s.values, s.originNanos, {}});
  }
  return static_cast<size_t>(to - from);
}

bool MemoryStream::finished() const {
  std::lock_guard lk(mutex_);
  return finished_;
}

}  // namespace gale
