// The one way an operator's input is processed inside a bolt, whoever calls it: OperatorBolt's
// execute (Out = the OutputCollector it is given), or the bolt task itself calling an
// OperatorBolt's operator without the bolt (Out = BoltExecutor, whose same-named calls skip the
// collector's virtual call: see docs/runtime.md, "Fusion").
#pragma once

#include <string_view>
#include <utility>

#include "gale/core/operator.h"
#include "gale/core/tuple.h"
#include "gale/topology/component.h"

namespace gale {

// An operator's Emitter while it processes `anchor`: every output is anchored to it, so a
// failure downstream fails the input's tuple tree. It calls the collector's own emitTuple and
// emitBorrowedTuple (a friend of both Outs), passing its member as the anchor list.
template <class Out>
class AnchoredEmitter final : public Emitter {
 public:
  AnchoredEmitter(Out& out, const Tuple& anchor) : out_(out), anchor_(&anchor) {}
  void emit(std::string_view stream, Values values) override {
    out_.emitTuple(-1, stream, &anchor_, 1, std::move(values));
  }
  void emitBorrowed(std::string_view stream, Values& values) override {
    out_.emitBorrowedTuple(stream, anchor_, values);
  }

 private:
  Out& out_;
  const Tuple* anchor_;
};

// Outputs anchored to the input, the input acked when onTuple returns. A throw propagates, and
// the input is not acked: the task logs it, counts it and fails the input.
template <class Out>
inline void runOperator(Operator& op, const Tuple& input, Out& out) {
  AnchoredEmitter<Out> e(out, input);
  op.onTuple(input, e);
  out.ack(input);
}

}  // namespace gale
