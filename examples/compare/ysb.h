// The Yahoo Streaming Benchmark's data: JSON ad events and the static ad -> campaign table
// (100 campaigns x 10 ads). Events are generated deterministically from their sequence number, so
// both modes see the same input and replays are exact. The typed variant (gale-compare --pipeline
// ysb-typed) draws the same events as typed tuples with integer ids, as WindFlow's shipped YSB
// does (its events are structs of integers): no JSON, no strings.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gale/connectors/generator_source.h"
#include "gale/core/join.h"

namespace gale::compare {

struct YsbData {
  static constexpr int kCampaigns = 100;
  static constexpr int kAdsPerCampaign = 10;

  YsbData();
  std::vector<std::string> campaignIds;  // kCampaigns
  std::vector<std::string> adIds;        // kCampaigns * kAdsPerCampaign; ad i is in campaign i / 10
  std::vector<std::string> userIds;
  std::vector<std::string> pageIds;

  // The JSON text of event g with the given event time (ms since the epoch). event_type cycles
  // through view / click / purchase pseudo-randomly (about a third are views).
  std::string event(int64_t g, int64_t eventTimeMillis) const;
  // The campaign of the ad of event g, and whether event g is a view: what a correct pipeline
  // counts (the direct count the tests compare against).
  const std::string& campaignOf(int64_t g) const;
  bool isView(int64_t g) const;

  // ad_id -> campaign_id.
  std::shared_ptr<StaticTable> campaignTable() const;

  // The typed events: integer ids (64-bit, spread like uuids so the join hashes real keys).
  std::vector<int64_t> campaignNumbers;  // kCampaigns
  std::vector<int64_t> adNumbers;        // as adIds
  // Event g as typedEventFields(): the same user, page, ad, ad type and event type as event(g),
  // as integers (event_type 0 = view, 1 = click, 2 = purchase), ip_address 0x01020304.
  Values typedEvent(int64_t g, Timestamp eventTime) const;
  static Fields typedEventFields();
  int64_t campaignNumberOf(int64_t g) const;
  // ad_id -> campaign_id, both Int64.
  std::shared_ptr<StaticTable> typedCampaignTable() const;
};

// The event source: fields "json" (string, the event) and "ts" (timestamp: the event's
// event_time in microseconds, as a Kafka record's timestamp, so the spout can generate watermarks
// without parsing JSON). With a rate, event g's event_time is the wall-clock time at which it was
// due, so "window result at sink - window end" is the YSB latency. Unlimited rate: event g's event
// time is start + g * eventTimeStep. With fixedEventTimeStart, event times do not depend on when
// the source was opened, so two runs see exactly the same events (the window equality check).
// With typed = true: YsbData::typedEventFields() instead, whose "event_time" is that instant.
class YsbSource : public GeneratorSource {
 public:
  struct EventTimeOptions {
    Timestamp fixedEventTimeStart{0};  // 0: the wall clock at open()
    Duration eventTimeStep{1};         // per event, when there is no rate or the start is fixed
    bool typed = false;                // typed events (integer ids) instead of JSON text
  };
  YsbSource(std::shared_ptr<const YsbData> data, GeneratorSource::Options options);
  YsbSource(std::shared_ptr<const YsbData> data, GeneratorSource::Options options,
            EventTimeOptions eventTime);
  void open(const Clock& clock) override;
  // Event time (ms) of global sequence number g.
  int64_t eventTimeMillis(int64_t g) const;

 private:
  struct Shared {
    std::atomic<int64_t> startWallMicros{0};
    double ratePerSecond = 0;
    EventTimeOptions eventTime;
    int64_t eventTimeMicros(int64_t g) const;
  };
  YsbSource(std::shared_ptr<const YsbData> data, GeneratorSource::Options options,
            std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

}  // namespace gale::compare
