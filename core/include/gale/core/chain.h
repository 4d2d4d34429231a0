// Operator chaining (Flink's): several operators run in one task, each one's default-stream output
// fed straight into the next, with no queue, thread, hop or serialization between them. A chain is
// itself a gale::Operator, so it runs unchanged in either mode:
//
//   b.setBolt("prepare", gale::chain(parseJson, keepViews, project, joinCampaign), 2)
//
// What comes out: the last operator's streams, plus every other stream an inner operator declares
// (a parser's "errors", a window's "late") under its own name, so side outputs are never lost.
// Tuples inside the chain keep the origin time of the input that caused them (for latency).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gale/core/operator.h"

namespace gale {

class ChainOperator final : public Operator {
 public:
  // Throws std::invalid_argument if the chain is empty, an operator is null, an inner operator
  // declares no default stream to feed the next one, or two operators declare the same side stream.
  explicit ChainOperator(std::vector<OperatorPtr> operators);
  // Its links point into it: not copyable or movable (clone() makes another).
  ChainOperator(const ChainOperator&) = delete;
  ChainOperator& operator=(const ChainOperator&) = delete;
  ~ChainOperator() override;

  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  std::unique_ptr<Operator> clone() const override;
  void open(const OperatorContext& context) override;
  void onTuple(const Tuple& tuple, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  void onProcessingTime(Timestamp now, Emitter& out) override;
  void onEndOfInput(Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;

  bool stateful() const override;
  std::string snapshot() const override;
  void restore(std::string_view snapshot) override;
  size_t stateSize() const override;

  size_t size() const { return ops_.size(); }
  Operator& at(size_t i) { return *ops_.at(i); }

 private:
  class Link;
  void checkAndLink();
  template <class F>
  void forEachInOrder(Emitter& out, F&& call);

  std::vector<OperatorPtr> ops_;
  std::vector<SchemaPtr> schemas_;           // default-stream schema of op i (feeds op i + 1)
  std::vector<std::unique_ptr<Link>> links_;  // links_[i]: the emitter op i writes to
  Emitter* out_ = nullptr;                   // the task's emitter during a call
  int64_t origin_ = 0;                       // origin of the input being processed
};

// gale::chain(a, b, c): clones each operator (they stay usable by the caller).
template <class... Ops>
ChainOperator chain(const Ops&... ops) {
  std::vector<OperatorPtr> v;
  (v.push_back(ops.clone()), ...);
  return ChainOperator(std::move(v));
}

}  // namespace gale
