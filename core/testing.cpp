#include "gale/core/testing.h"

#include <algorithm>
#include <stdexcept>

#include "gale/core/watermark.h"

namespace gale {

struct OperatorHarness::Recorder : Emitter {
  using Emitter::emit;
  void emit(std::string_view stream, Values values) override {
    rows[std::string(stream)].push_back(std::move(values));
  }
  std::map<std::string, std::vector<Values>> rows;
};

OperatorHarness::OperatorHarness(const Operator& op, int taskIndex, int parallelism,
                                 const Clock* clock)
    : proto_(op.clone()), out_(std::make_shared<Recorder>()) {
  if (clock) context_.clock = clock;
  context_.component = "operator-under-test";
  context_.taskIndex = taskIndex;
  context_.parallelism = parallelism;
  op_ = proto_->clone();
  op_->open(context_);
}

OperatorHarness& OperatorHarness::input(std::string component, Fields fields, std::string stream) {
  if (defaultInput_.empty()) defaultInput_ = component;
  inputs_[component] = makeSchema(component, std::move(stream), std::move(fields));
  return *this;
}

void OperatorHarness::process(Values values) {
  if (defaultInput_.empty()) {
    throw std::logic_error("OperatorHarness: declare an input first with input(component, fields)");
  }
  process(defaultInput_, std::move(values));
}

void OperatorHarness::process(const std::string& component, Values values) {
  auto it = inputs_.find(component);
  if (it == inputs_.end()) {
    throw std::logic_error("OperatorHarness: no input '" + component + "' was declared");
  }
  std::string why = it->second->fields.mismatch(values);
  if (!why.empty()) throw std::invalid_argument("OperatorHarness input '" + component + "': " + why);
  op_->onTuple(Tuple(it->second, std::move(values)), *out_);
}

void OperatorHarness::watermark(Timestamp watermark) { op_->onWatermark(watermark, *out_); }
void OperatorHarness::processingTime(Timestamp now) { op_->onProcessingTime(now, *out_); }
void OperatorHarness::endOfInput() {
  op_->onWatermark(kEndOfTime, *out_);  // as the runtime does at the end of a bounded input
  op_->onEndOfInput(*out_);
}
void OperatorHarness::batchBegin(uint64_t txid) { op_->onBatchBegin(txid); }
void OperatorHarness::batchEnd(uint64_t txid) { op_->onBatchEnd(txid, *out_); }

std::vector<Values> OperatorHarness::output(const std::string& stream) const {
  auto it = out_->rows.find(stream);
  return it == out_->rows.end() ? std::vector<Values>{} : it->second;
}

std::vector<Values> OperatorHarness::sortedOutput(const std::string& stream) const {
  auto v = output(stream);
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<Values> OperatorHarness::take(const std::string& stream) {
  auto v = output(stream);
  out_->rows.erase(stream);
  return v;
}

void OperatorHarness::clear() { out_->rows.clear(); }

std::string OperatorHarness::snapshot() const { return op_->snapshot(); }

void OperatorHarness::restore(const std::string& snapshot) {
  auto fresh = proto_->clone();
  fresh->open(context_);
  fresh->restore(snapshot);
  op_ = std::move(fresh);
}

}  // namespace gale
