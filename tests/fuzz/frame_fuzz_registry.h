// The streams the frame fuzz target decodes against, shared with the seed generator so that the
// seed frames are frames of these streams: every value type, typed and untyped fields.
#pragma once

#include <memory>

#include "gale/core/frame.h"

namespace gale::fuzz {

inline std::shared_ptr<const SchemaRegistry> frameRegistry() {
  auto r = std::make_shared<SchemaRegistry>();
  r->add(makeSchema("spout", "default", Fields{{"word", Type::String}, {"n", Type::Int64}}));
  r->add(makeSchema("spout", "any", Fields{"a", "b", "c"}));
  r->add(makeSchema("bolt", "typed",
                    Fields{{"d", Type::Double}, {"b", Type::Bool}, {"t", Type::Timestamp},
                           {"x", Type::Bytes}}));
  return r;
}

}  // namespace gale::fuzz
