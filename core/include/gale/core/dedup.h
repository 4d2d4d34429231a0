// Streaming deduplication, as Spark Structured Streaming defines it, in one operator for both
// modes:
//
//   dropDuplicates(input, {"guid", "ts"}, "ts")          // Spark's dropDuplicates("guid", "ts")
//   dropDuplicatesWithinWatermark(input, {"guid"}, "ts", 10s)   // Spark 3.5's
//
// The first row of each key goes through unchanged; later rows with the same key are dropped.
//  - dropDuplicates: with an event-time field, rows at or behind the watermark are late (dropped,
//    sent to the "late" stream and counted). When the event-time field is one of the keys (as
//    Spark's guide recommends), a key's state is dropped once the watermark reaches its event
//    time: no duplicate of it can still be on time. Without an event-time field among the keys the
//    state of every key is kept for ever (Spark does the same): bound the input or add the field.
//  - dropDuplicatesWithinWatermark: the keys need not include event time. A row whose key was
//    seen is dropped while the key is held, even when its event time differs; a key is held until
//    the watermark reaches the first occurrence's event time + `delay` (Spark: expiresAt =
//    eventTime + the watermark delay; evicted once watermark >= expiresAt). Late rows are dropped
//    as above.
// Which row of a group of duplicates survives is the first to arrive, so with several upstream
// tasks it depends on arrival order, as in Spark and Flink.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "gale/core/async_snapshot.h"
#include "gale/core/copy_on_write_map.h"
#include "gale/core/key_group.h"
#include "gale/core/operator.h"
#include "gale/core/watermark.h"

namespace gale {

// Its held keys are a CopyOnWriteMap: in exactly-once continuous mode the snapshot is
// asynchronous (frozen at the barrier, written by the checkpoint coordinator's thread). As a
// KeyGroupedState its held keys split by key group (a component with maxParallelism; that
// snapshot is taken synchronously).
class Deduplicate final : public Operator, public AsyncSnapshot, public KeyGroupedState {
 public:
  struct Config {
    Fields input;                    // the input stream's fields (also the output's)
    std::vector<std::string> keys;   // the fields that make rows duplicates of each other
    std::string eventTime;           // an event-time field of the input, or empty
    bool withinWatermark = false;    // Spark 3.5's dropDuplicatesWithinWatermark
    Duration delay{0};               // withinWatermark: how long a key is held past its event time
    std::string lateStream = "late";
  };
  // Throws std::invalid_argument naming the field or option that is wrong.
  explicit Deduplicate(Config config);

  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  bool stateful() const override { return true; }
  std::string snapshot() const override;
  Write snapshotAsync(uint64_t checkpointId) override;
  void restore(std::string_view snapshot) override;
  size_t stateSize() const override { return held_.size(); }
  std::vector<std::string> keyGroupFields() const override { return config_.keys; }
  Split snapshotKeyGroups(uint32_t maxParallelism) const override;
  // The old tasks' watermarks must be equal (an aligned cut); their counters are kept by the
  // owner of each one's first group.
  void restoreKeyGroups(const std::vector<Head>& heads,
                        const std::map<uint32_t, std::string_view>& groups,
                        uint32_t maxParallelism) override;

  uint64_t droppedDuplicates() const { return duplicates_; }
  uint64_t droppedLate() const { return late_; }
  uint64_t droppedByWatermark() const override { return late_; }
  const Config& config() const { return config_; }

 private:
  void restoreHeld(Timestamp wm, uint64_t duplicates, uint64_t late,
                   std::vector<std::pair<std::string, int64_t>> held);

  Config config_;
  std::vector<int> keyIdx_;
  int timeIdx_ = -1;
  bool evicts_ = false;  // the held keys expire with the watermark
  // key (its values, encoded) -> when it expires (event time, or event time + delay); and the
  // same by expiry time for eviction. Keys that never expire are kept with INT64_MAX.
  CopyOnWriteMap<std::string, int64_t> held_;
  std::multimap<int64_t, std::string> byExpiry_;
  Timestamp wm_ = kNoWatermark;
  uint64_t duplicates_ = 0;
  uint64_t late_ = 0;
};

// Spark's dropDuplicates(keys) (eventTime empty: no watermark, state kept for ever).
Deduplicate dropDuplicates(Fields input, std::vector<std::string> keys, std::string eventTime = {});
// Spark 3.5's dropDuplicatesWithinWatermark(keys), `delay` being the watermark delay.
Deduplicate dropDuplicatesWithinWatermark(Fields input, std::vector<std::string> keys,
                                          std::string eventTime, Duration delay);

}  // namespace gale
