#include "gale/connectors/memory_sink.h"

#include <stdexcept>

namespace gale {

std::vector<MemoryStore::Row> MemoryStore::rows() const {
  std::lock_guard lock(mutex_);
  std::vector<Row> out = continuous_;
  out.reserve(continuous_.size() + batchRows_);
  for (const auto& [key, rows] : batches_) out.insert(out.end(), rows.begin(), rows.end());
  return out;
}

std::vector<Values> MemoryStore::values() const {
  std::vector<Values> out;
  for (auto& r : rows()) out.push_back(std::move(r.values));
  return out;
}

size_t MemoryStore::size() const {
  std::lock_guard lock(mutex_);
  return continuous_.size() + batchRows_;
}

std::vector<MemoryStore::Row> MemoryStore::batch(uint64_t txid) const {
  std::lock_guard lock(mutex_);
  std::vector<Row> out;
  for (auto it = batches_.lower_bound({txid, INT32_MIN}); it != batches_.end() && it->first.first == txid;
       ++it) {
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

std::vector<uint64_t> MemoryStore::txids() const {
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> out;
  for (const auto& [key, rows] : batches_)
    if (out.empty() || out.back() != key.first) out.push_back(key.first);
  return out;
}

uint64_t MemoryStore::replacedBatches() const {
  std::lock_guard lock(mutex_);
  return replaced_;
}

bool MemoryStore::waitForSize(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return continuous_.size() + batchRows_ >= n; });
}

Histogram MemoryStore::latency() const {
  std::lock_guard lock(mutex_);
  return latency_;
}

void MemoryStore::clear() {
  std::lock_guard lock(mutex_);
  continuous_.clear();
  batches_.clear();
  batchRows_ = 0;
  replaced_ = 0;
  latency_.reset();
}

void MemoryStore::append(Row row, int64_t latencyNanos) {
  {
    std::lock_guard lock(mutex_);
    continuous_.push_back(std::move(row));
    if (latencyNanos >= 0) latency_.record(latencyNanos);
  }
  changed_.notify_all();
}

void MemoryStore::publishBatch(uint64_t txid, int taskIndex, std::vector<Row> rows,
                               const std::vector<int64_t>& latencies) {
  {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = batches_.try_emplace({txid, taskIndex});
    if (!inserted) {
      ++replaced_;
      batchRows_ -= it->second.size();
    }
    batchRows_ += rows.size();
    it->second = std::move(rows);
    for (int64_t l : latencies) latency_.record(l);
  }
  changed_.notify_all();
}

MemorySink::MemorySink(MemoryStorePtr store, Options options)
    : store_(std::move(store)), options_(options) {
  if (!store_) {
    throw std::invalid_argument(
        "MemorySink: the store is null; pass std::make_shared<gale::MemoryStore>()");
  }
}

std::unique_ptr<Operator> MemorySink::clone() const {
  return std::make_unique<MemorySink>(store_, options_);
}

void MemorySink::open(const OperatorContext& context) {
  taskIndex_ = context.taskIndex;
  clock_ = context.clock ? context.clock : &SystemClock::instance();
}

void MemorySink::onTuple(const Tuple& tuple, Emitter&) {
  MemoryStore::Row row{tuple.values(), tuple.sourceComponent() + ":" + tuple.sourceStream(),
                       tuple.originNanos(), taskIndex_};
  if (inBatch_) {
    pending_.push_back(std::move(row));
    return;
  }
  int64_t latency = -1;
  if (options_.recordLatency && row.originNanos != 0) latency = clock_->monoNanos() - row.originNanos;
  store_->append(std::move(row), latency);
}

void MemorySink::onBatchBegin(uint64_t txid) {
  // A batch that began and never ended (the attempt failed) is dropped here: its rows were
  // never published, and the replay starts from an empty buffer.
  pending_.clear();
  inBatch_ = true;
  txid_ = txid;
}

void MemorySink::onBatchEnd(uint64_t txid, Emitter&) {
  if (!inBatch_ || txid != txid_) {
    throw std::logic_error("MemorySink: onBatchEnd(" + std::to_string(txid) +
                           ") without a matching onBatchBegin (current batch " +
                           (inBatch_ ? std::to_string(txid_) : std::string("none")) + ")");
  }
  std::vector<int64_t> latencies;
  if (options_.recordLatency) {
    // The batch's rows become visible now, so that is when their latency ends.
    const int64_t now = clock_->monoNanos();
    latencies.reserve(pending_.size());
    for (const auto& r : pending_)
      if (r.originNanos != 0) latencies.push_back(now - r.originNanos);
  }
  store_->publishBatch(txid, taskIndex_, std::move(pending_), latencies);
  pending_ = {};
  inBatch_ = false;
}

}  // namespace gale
