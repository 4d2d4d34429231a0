// Shared by the frame decoder's tests (core/frame_test.cpp), its fuzz target and the fuzz seed
// generator (tests/fuzz/): the streams frames are decoded against and a handler that keeps what
// a decoder delivers.
#pragma once

#include <memory>
#include <vector>

#include "gale/core/frame.h"

namespace gale::testing {

// Three streams: typed string/int64, untyped, and typed double/bool/timestamp/bytes.
inline std::shared_ptr<SchemaRegistry> frameTestRegistry() {
  auto r = std::make_shared<SchemaRegistry>();
  r->add(makeSchema("spout", "default", Fields{{"word", Type::String}, {"n", Type::Int64}}));
  r->add(makeSchema("spout", "any", Fields{"a", "b", "c"}));
  r->add(makeSchema("bolt", "typed",
                    Fields{{"d", Type::Double}, {"b", Type::Bool}, {"t", Type::Timestamp},
                           {"x", Type::Bytes}}));
  return r;
}

struct Collect : FrameHandler {
  std::vector<Tuple> tuples;
  std::vector<Control> controls;
  std::vector<TaskId> sources;
  std::vector<bool> order;  // true = tuple
  void onTuple(TaskId src, Tuple&& t) override {
    sources.push_back(src);
    order.push_back(true);
    tuples.push_back(std::move(t));
  }
  void onControl(TaskId src, Control&& c) override {
    sources.push_back(src);
    order.push_back(false);
    controls.push_back(std::move(c));
  }
};

}  // namespace gale::testing
