// Stream-stream joins on equality keys with an event-time condition, one operator for both modes
// (Flink's interval join and window join; Spark's stream-stream joins with a time range):
//
//   auto join = gale::StreamJoin(
//       {.input = "impressions", .fields = impFields, .keys = {"ad"}, .eventTime = "ts"},
//       {.input = "clicks", .fields = clickFields, .keys = {"ad"}, .eventTime = "ts"},
//       gale::JoinType::LeftOuter, gale::between(0s, 1h));   // click within an hour after
//   b.setBolt("join", join, 2).fieldsGrouping("impressions", {"ad"}).fieldsGrouping("clicks", {"ad"});
//
// Rules (the time condition is between(lower, upper): left.t + lower <= right.t <= left.t + upper,
// or sameTumblingWindow(size): both rows in the same event-time window):
//  - a row at or behind the watermark when it arrives is late: dropped, sent to the "late" stream
//    and counted (Spark drops late join input the same way);
//  - a row is joined with every stored row of the other side that has its key and meets the time
//    condition, so each matching pair is emitted once, when its second row arrives;
//  - a row is stored until the watermark guarantees no future match: a left row until the
//    watermark reaches left.t + upper, a right row until it reaches right.t - lower (for windows:
//    the window's last microsecond). Then it is evicted;
//  - an outer join emits a row that never matched, with nulls for the other side, when it is
//    evicted — when the watermark passes the end of its range, and not before; left semi emits a
//    left row (its fields only) once, at its first match.
// Output: the left fields, then the right fields (a right field whose name the left already has
// is renamed `<right input>_<name>`); left semi: the left fields.
// Without a time condition only an inner join is allowed (state grows for ever); an outer or
// semi join needs the time condition here and a watermark on every spout upstream (checked when
// the topology is built).
// In micro-batch mode the join's state is committed incrementally (IncrementalState): its rows
// are kept in entries of kRowsPerEntry consecutive row ids, and a batch rewrites (or erases) only
// the entries whose rows it stored, evicted, or — in an outer or semi join — first matched.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "gale/core/incremental_state.h"
#include "gale/core/join.h"
#include "gale/core/operator.h"
#include "gale/core/watermark.h"

namespace gale {

struct JoinSide {
  std::string input;               // the upstream component whose tuples are this side
  Fields fields;                   // that component's output fields
  std::vector<std::string> keys;   // equality keys (same count and order on both sides)
  std::string eventTime;           // event-time field (required with a time condition)
};

struct JoinTimeCondition {
  enum class Kind { None, Range, TumblingWindow } kind = Kind::None;
  int64_t lower = 0, upper = 0;  // Range, µs
  int64_t size = 0;              // TumblingWindow, µs
  bool lowerExclusive = false, upperExclusive = false;  // Range: < instead of <=
  // Flink's IntervalJoin.lowerBoundExclusive() / upperBoundExclusive(). They change which pairs
  // match, not when a row is evicted (at most 1 µs of watermark later than it could be).
  JoinTimeCondition lowerBoundExclusive() const {
    JoinTimeCondition c = *this;
    c.lowerExclusive = true;
    return c;
  }
  JoinTimeCondition upperBoundExclusive() const {
    JoinTimeCondition c = *this;
    c.upperExclusive = true;
    return c;
  }
};
// left.t + lower <= right.t <= left.t + upper (Flink's IntervalJoin.between); Spark's
// `right.t BETWEEN left.t - a AND left.t + b` is between(-a, b).
JoinTimeCondition between(Duration lower, Duration upper);
// Both rows in the same tumbling event-time window of `size` (Flink's window join).
JoinTimeCondition sameTumblingWindow(Duration size);

class StreamJoin final : public Operator, public IncrementalState {
 public:
  // Throws std::invalid_argument naming the side and field, or saying what to add.
  StreamJoin(JoinSide left, JoinSide right, JoinType type, JoinTimeCondition time = {});

  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  std::string checkPlacement(const std::vector<std::string>& inputs,
                             bool everySpoutUpstreamHasAWatermark) const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  bool stateful() const override { return true; }
  std::string snapshot() const override;
  void restore(std::string_view snapshot) override;
  size_t stateSize() const override { return sides_[0].rows + sides_[1].rows; }

  void trackChanges() override;
  std::string snapshotHead() const override;
  Changes takeChanges() override;
  void restoreIncremental(std::string_view head,
                          const std::vector<std::pair<std::string, std::string>>& entries) override;

  // Rows per IncrementalState entry: one LMDB write per changed group of rows instead of one per
  // row (rows are evicted roughly in the order they came, so a batch's changes cluster).
  static constexpr uint64_t kRowsPerEntry = 512;

  uint64_t droppedLate() const { return late_; }
  uint64_t droppedByWatermark() const override { return late_; }

 private:
  struct Row {
    uint64_t id;
    int64_t t;
    Values values;
    bool matched;
  };
  // Rows of one key, in id (= arrival) order.
  using Bucket = std::pair<const std::string, std::vector<Row>>;
  struct Side {
    std::unordered_map<std::string, std::vector<Row>> byKey;
    std::multimap<int64_t, std::pair<std::string, uint64_t>> byExpiry;  // expiry -> key, row id
    size_t rows = 0;
  };
  void store(int side, std::string key, Row row);
  int64_t expiryOf(int side, int64_t t) const;
  bool matches(int64_t leftT, int64_t rightT) const;
  void emitPair(const Values& left, const Values& right, Emitter& out) const;
  bool outer(int side) const;
  // Incremental snapshots: the entry of row `id` changed (the row came, got its first match, or
  // is gone).
  void stored(int side, const Bucket& bucket, uint64_t id);
  void changed(uint64_t id) { dirty_.insert(id / kRowsPerEntry); }
  void gone(uint64_t id);

  JoinSide side_[2];
  JoinType type_;
  JoinTimeCondition time_;
  std::vector<int> keyIdx_[2];
  int timeIdx_[2] = {-1, -1};
  Side sides_[2];
  uint64_t nextId_ = 0;
  Timestamp wm_ = kNoWatermark;
  uint64_t late_ = 0;
  // Incremental snapshots (trackChanges): the rows of each entry (id / kRowsPerEntry), in id
  // order, each located by its bucket — a hash-map node, stable while it holds the row — so a
  // row is encoded only when its entry is taken; and the entries changed since the last take.
  struct Loc {
    uint64_t id;
    const Bucket* bucket;  // null: evicted
    uint8_t side;
  };
  bool tracking_ = false;
  std::map<uint64_t, std::vector<Loc>> entries_;
  std::set<uint64_t> dirty_;
};

}  // namespace gale
