// Helpers shared by the sink tests: tuples of a schema and an emitter that must stay unused.
#pragma once

#include <stdexcept>
#include <string>

#include "gale/core/operator.h"
#include "gale/core/tuple.h"

namespace gale::testing {

// Sinks declare no streams, so emitting from one is a bug the tests must see.
class NoEmit final : public Emitter {
 public:
  void emit(std::string_view stream, Values) override {
    throw std::logic_error("a sink emitted on stream '" + std::string(stream) + "'");
  }
};

inline Tuple tupleOf(const SchemaPtr& schema, Values values, int64_t originNanos = 0) {
  Tuple t(schema, std::move(values));
  t.setOriginNanos(originNanos);
  return t;
}

}  // namespace gale::testing
