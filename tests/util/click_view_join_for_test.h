// The interval join of the micro-batch incremental-state tests (batch/): two sides, "clicks" and
// "views", of (k, ts, v) events, offset o with key k<o*7 % keys> and event time o ms, joined on k
// within 5 ms either way by a StreamJoin of 2 tasks; and the rows a MemoryStore got, as lines to
// compare between runs.
#pragma once

#include <chrono>
#include <set>
#include <string>

#include "gale/connectors/memory_sink.h"
#include "gale/core/stream_join.h"
#include "gale/topology/topology.h"

namespace gale::testing {

inline const Fields kClickViewFields{
    {"k", Type::String}, {"ts", Type::Timestamp}, {"v", Type::Int64}};

// Offset `off` of a side with `keys` keys.
inline Values clickViewEvent(int keys, int64_t off) {
  return Values{"k" + std::to_string(off * 7 % keys), Timestamp{off * 1000}, off};
}

inline StreamJoin clickViewJoin(JoinType type) {
  using std::chrono::milliseconds;
  return StreamJoin({"clicks", kClickViewFields, {"k"}, "ts"},
                    {"views", kClickViewFields, {"k"}, "ts"}, type,
                    between(milliseconds(-5), milliseconds(5)));
}

// The two spouts (watermarks 2 ms behind) and "join"; the caller adds what reads "join".
inline void declareClickViewJoin(TopologyBuilder& b, SourcePtr clicks, SourcePtr views,
                                 JoinType type) {
  b.setSpout("clicks", std::move(clicks), 1).withWatermark("ts", std::chrono::milliseconds(2));
  b.setSpout("views", std::move(views), 1).withWatermark("ts", std::chrono::milliseconds(2));
  b.setBolt("join", clickViewJoin(type), 2)
      .fieldsGrouping("clicks", Fields{"k"})
      .fieldsGrouping("views", Fields{"k"});
}

// Each row as "v1|v2|...|", in any order.
inline std::multiset<std::string> rowsOf(const MemoryStore& s) {
  std::multiset<std::string> rows;
  for (const auto& r : s.rows()) {
    std::string line;
    for (const auto& v : r.values) line += toString(v) + "|";
    rows.insert(line);
  }
  return rows;
}

}  // namespace gale::testing
