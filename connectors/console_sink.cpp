#include "gale/connectors/console_sink.h"

#include <iostream>

namespace gale {

namespace {
// One lock for everything printed to std::cout by console sinks, whoever built them.
std::shared_ptr<std::mutex> coutLock() {
  static auto lock = std::make_shared<std::mutex>();
  return lock;
}
}  // namespace

ConsoleSink::ConsoleSink(std::string prefix) : ConsoleSink(&std::cout, std::move(prefix), coutLock()) {}

ConsoleSink::ConsoleSink(std::ostream& out, std::string prefix)
    : ConsoleSink(&out, std::move(prefix), std::make_shared<std::mutex>()) {}

ConsoleSink::ConsoleSink(std::ostream* out, std::string prefix, std::shared_ptr<std::mutex> lock)
    : out_(out), prefix_(std::move(prefix)), lock_(std::move(lock)) {}

std::unique_ptr<Operator> ConsoleSink::clone() const {
  return std::unique_ptr<Operator>(new ConsoleSink(out_, prefix_, lock_));
}

void ConsoleSink::onTuple(const Tuple& tuple, Emitter&) {
  std::string line = prefix_ + tuple.toString();
  if (inBatch_) {
    pending_.push_back(std::move(line));
    return;
  }
  line += '\n';
  std::lock_guard lock(*lock_);
  *out_ << line << std::flush;
}

void ConsoleSink::onBatchBegin(uint64_t) {
  pending_.clear();
  inBatch_ = true;
}

void ConsoleSink::onBatchEnd(uint64_t txid, Emitter&) {
  std::string text = prefix_ + "batch " + std::to_string(txid) + "\n";
  for (const auto& l : pending_) {
    text += l;
    text += '\n';
  }
  pending_.clear();
  inBatch_ = false;
  std::lock_guard lock(*lock_);
  *out_ << text << std::flush;
}

}  // namespace gale
