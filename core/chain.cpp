#include "gale/core/chain.h"

#include <set>
#include <stdexcept>

#include "gale/core/state_codec.h"

namespace gale {

// The emitter operator i writes to: the default stream goes into operator i + 1 (or, for the last
// operator, out of the chain); any other stream goes out of the chain under its own name.
class ChainOperator::Link final : public Emitter {
 public:
  Link(ChainOperator& chain, size_t index) : chain_(chain), index_(index) {}
  void emit(std::string_view stream, Values values) override {
    bool last = index_ + 1 == chain_.ops_.size();
    if (last || stream != kDefaultStream) {
      chain_.out_->emit(stream, std::move(values));
      return;
    }
    Tuple t(chain_.schemas_[index_], std::move(values));
    t.setOriginNanos(chain_.origin_);
    chain_.ops_[index_ + 1]->onTuple(t, *chain_.links_[index_ + 1]);
  }
  void emitBorrowed(std::string_view stream, Values& values) override {
    if (index_ + 1 == chain_.ops_.size() || stream != kDefaultStream)
      return chain_.out_->emitBorrowed(stream, values);
    Tuple t(chain_.schemas_[index_], std::move(values));
    t.setOriginNanos(chain_.origin_);
    struct GiveBack {
      Tuple& t;
      Values& values;
      ~GiveBack() { values = std::move(t.mutableValues()); }
    } giveBack{t, values};
    chain_.ops_[index_ + 1]->onTuple(t, *chain_.links_[index_ + 1]);
  }
  // The same tuple to the next operator: it already carries the origin of the chain's input.
  void forward(const Tuple& input) override {
    if (index_ + 1 == chain_.ops_.size()) return chain_.out_->forward(input);
    chain_.ops_[index_ + 1]->onTuple(input, *chain_.links_[index_ + 1]);
  }

 private:
  ChainOperator& chain_;
  size_t index_;
};

ChainOperator::ChainOperator(std::vector<OperatorPtr> operators) : ops_(std::move(operators)) {
  checkAndLink();
}

ChainOperator::~ChainOperator() = default;

void ChainOperator::checkAndLink() {
  if (ops_.empty()) throw std::invalid_argument("chain: needs at least one operator");
  std::set<std::string> side;
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (!ops_[i]) throw std::invalid_argument("chain: operator " + std::to_string(i) + " is null");
    OutputFieldsDeclarer d;
    ops_[i]->declareOutputFields(d);
    bool last = i + 1 == ops_.size();
    if (!last && !d.find(kDefaultStream))
      throw std::invalid_argument("chain: operator " + std::to_string(i) +
                                  " declares no default stream to feed operator " +
                                  std::to_string(i + 1));
    for (const auto& [name, fields] : d.streams()) {
      if (name == kDefaultStream) continue;
      if (!side.insert(name).second)
        throw std::invalid_argument("chain: two operators declare the side stream '" + name +
                                    "'; rename one (e.g. WindowBuilder::lateStream)");
    }
    const Fields* f = d.find(kDefaultStream);
    schemas_.push_back(makeSchema("chain#" + std::to_string(i), kDefaultStream,
                                  f ? *f : Fields{}));
    links_.push_back(std::make_unique<Link>(*this, i));
  }
}

void ChainOperator::declareOutputFields(OutputFieldsDeclarer& declarer) const {
  for (size_t i = 0; i < ops_.size(); ++i) {
    OutputFieldsDeclarer d;
    ops_[i]->declareOutputFields(d);
    for (const auto& [name, fields] : d.streams())
      if (name != kDefaultStream || i + 1 == ops_.size()) declarer.declareStream(name, fields);
  }
}

std::unique_ptr<Operator> ChainOperator::clone() const {
  std::vector<OperatorPtr> v;
  for (const auto& op : ops_) v.push_back(op->clone());
  return std::make_unique<ChainOperator>(std::move(v));
}

void ChainOperator::open(const OperatorContext& context) {
  for (auto& op : ops_) op->open(context);
}

void ChainOperator::onTuple(const Tuple& tuple, Emitter& out) {
  out_ = &out;
  origin_ = tuple.originNanos();
  ops_[0]->onTuple(tuple, *links_[0]);
}

// Operator i's timer or watermark output reaches operator i + 1 before operator i + 1 sees the
// same event, as it would across two tasks with in-band watermarks.
template <class F>
void ChainOperator::forEachInOrder(Emitter& out, F&& call) {
  out_ = &out;
  origin_ = 0;
  for (size_t i = 0; i < ops_.size(); ++i) call(*ops_[i], *links_[i]);
}

void ChainOperator::onWatermark(Timestamp watermark, Emitter& out) {
  forEachInOrder(out, [&](Operator& op, Emitter& e) { op.onWatermark(watermark, e); });
}
void ChainOperator::onProcessingTime(Timestamp now, Emitter& out) {
  forEachInOrder(out, [&](Operator& op, Emitter& e) { op.onProcessingTime(now, e); });
}
void ChainOperator::onEndOfInput(Emitter& out) {
  forEachInOrder(out, [&](Operator& op, Emitter& e) { op.onEndOfInput(e); });
}
void ChainOperator::onBatchBegin(uint64_t txid) {
  for (auto& op : ops_) op->onBatchBegin(txid);
}
void ChainOperator::onBatchEnd(uint64_t txid, Emitter& out) {
  forEachInOrder(out, [&](Operator& op, Emitter& e) { op.onBatchEnd(txid, e); });
}

bool ChainOperator::stateful() const {
  for (const auto& op : ops_)
    if (op->stateful()) return true;
  return false;
}

std::string ChainOperator::snapshot() const {
  StateWriter w;
  w.header("CHN1", 1);
  w.varint(ops_.size());
  for (const auto& op : ops_) w.str(op->stateful() ? op->snapshot() : std::string());
  return w.take();
}

void ChainOperator::restore(std::string_view bytes) {
  StateReader r(bytes, "chain snapshot");
  r.header("CHN1", 1);
  uint64_t n = r.count("operator count");
  if (n != ops_.size())
    r.fail("it holds " + std::to_string(n) + " operators but this chain has " +
           std::to_string(ops_.size()));
  std::vector<std::string> parts;
  for (uint64_t i = 0; i < n; ++i) parts.push_back(r.str("operator snapshot"));
  r.expectEnd();
  for (size_t i = 0; i < ops_.size(); ++i)
    if (ops_[i]->stateful()) ops_[i]->restore(parts[i]);
}

size_t ChainOperator::stateSize() const {
  size_t n = 0;
  for (const auto& op : ops_) n += op->stateSize();
  return n;
}

}  // namespace gale
