// Test helpers for the operator library: a recording Emitter and tuple and row builders.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "gale/core/operator.h"
#include "gale/core/tuple.h"

namespace gale::testing {

struct Emitted {
  std::string stream;
  Values values;
  bool operator<(const Emitted& o) const {
    if (stream != o.stream) return stream < o.stream;
    return values < o.values;
  }
  bool operator==(const Emitted& o) const { return stream == o.stream && values == o.values; }
};

class RecordingEmitter : public Emitter {
 public:
  using Emitter::emit;
  void emit(std::string_view stream, Values values) override {
    rows.push_back({std::string(stream), std::move(values)});
  }
  std::vector<Values> on(std::string_view stream) const {
    std::vector<Values> v;
    for (const auto& r : rows)
      if (r.stream == stream) v.push_back(r.values);
    return v;
  }
  std::vector<Values> main() const { return on(kDefaultStream); }
  // Rows of the default stream, sorted (order within one firing is unspecified).
  std::vector<Values> sortedMain() const {
    auto v = main();
    std::sort(v.begin(), v.end());
    return v;
  }
  void clear() { rows.clear(); }
  std::vector<Emitted> rows;
};

inline Timestamp sec(int64_t s) { return Timestamp{s * 1000000}; }
inline Timestamp ms(int64_t m) { return Timestamp{m * 1000}; }

// The input most window tests feed: (word, ts, v) from component "src".
inline Tuple tup(const std::string& word, Timestamp ts, int64_t v = 1) {
  static const SchemaPtr schema = makeSchema("src", kDefaultStream, Fields{"word", "ts", "v"});
  return Tuple(schema, Values{word, ts, v});
}
// A keyed window's row (word, window start, window end, count), times in seconds.
inline Values row(const std::string& word, int64_t start, int64_t end, int64_t count) {
  return Values{word, sec(start), sec(end), count};
}

}  // namespace gale::testing
