#include "ysb.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace gale::compare {
namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string uuid(uint64_t seed) {
  uint64_t a = splitmix(seed), b = splitmix(a);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

// A typed id: non-negative, so it prints like the integer it is.
int64_t idNumber(uint64_t seed) { return static_cast<int64_t>(splitmix(seed) >> 1); }

const char* const kAdTypes[] = {"banner", "modal", "sponsored-search", "mail", "mobile"};
const char* const kEventTypes[] = {"view", "click", "purchase"};

}  // namespace

YsbData::YsbData() {
  for (int c = 0; c < kCampaigns; ++c) campaignIds.push_back(uuid(1'000'000 + c));
  for (int a = 0; a < kCampaigns * kAdsPerCampaign; ++a) adIds.push_back(uuid(2'000'000 + a));
  for (int u = 0; u < 1024; ++u) userIds.push_back(uuid(3'000'000 + u));
  for (int p = 0; p < 1024; ++p) pageIds.push_back(uuid(4'000'000 + p));
  for (int c = 0; c < kCampaigns; ++c) campaignNumbers.push_back(idNumber(1'000'000 + c));
  for (int a = 0; a < kCampaigns * kAdsPerCampaign; ++a) adNumbers.push_back(idNumber(2'000'000 + a));
}

std::string YsbData::event(int64_t g, int64_t eventTimeMillis) const {
  uint64_t r = splitmix(static_cast<uint64_t>(g));
  std::string s;
  s.reserve(256);
  s += "{\"user_id\":\"";
  s += userIds[r & 1023];
  s += "\",\"page_id\":\"";
  s += pageIds[(r >> 10) & 1023];
  s += "\",\"ad_id\":\"";
  s += adIds[(r >> 20) % adIds.size()];
  s += "\",\"ad_type\":\"";
  s += kAdTypes[(r >> 32) % 5];
  s += "\",\"event_type\":\"";
  s += kEventTypes[(r >> 40) % 3];
  s += "\",\"event_time\":\"";
  s += std::to_string(eventTimeMillis);
  s += "\",\"ip_address\":\"1.2.3.4\"}";
  return s;
}

const std::string& YsbData::campaignOf(int64_t g) const {
  uint64_t r = splitmix(static_cast<uint64_t>(g));
  return campaignIds[((r >> 20) % adIds.size()) / kAdsPerCampaign];
}

bool YsbData::isView(int64_t g) const {
  return (splitmix(static_cast<uint64_t>(g)) >> 40) % 3 == 0;
}

Fields YsbData::typedEventFields() {
  return Fields{{"user_id", Type::Int64},    {"page_id", Type::Int64},
                {"ad_id", Type::Int64},      {"ad_type", Type::Int64},
                {"event_type", Type::Int64}, {"ip_address", Type::Int64},
                {"event_time", Type::Timestamp}};
}

Values YsbData::typedEvent(int64_t g, Timestamp eventTime) const {
  uint64_t r = splitmix(static_cast<uint64_t>(g));
  // The same draws as event(g): user, page, ad, ad type, event type.
  Values v = recycledValuesAsLeft();
  if (v.size() == 7 && std::holds_alternative<Timestamp>(v[6]) &&
      std::all_of(v.begin(), v.begin() + 6,
                  [](const Value& x) { return std::holds_alternative<int64_t>(x); })) {
    // An earlier event's list, as the pool left it: its fields are written over, as the peer
    // writes its event struct's.
    auto field = [&v](size_t i) -> int64_t& { return *std::get_if<int64_t>(&v[i]); };
    field(0) = static_cast<int64_t>(r & 1023);
    field(1) = static_cast<int64_t>((r >> 10) & 1023);
    field(2) = adNumbers[(r >> 20) % adNumbers.size()];
    field(3) = static_cast<int64_t>((r >> 32) % 5);
    field(4) = static_cast<int64_t>((r >> 40) % 3);
    field(5) = int64_t{0x01020304};
    *std::get_if<Timestamp>(&v[6]) = eventTime;
    return v;
  }
  v.clear();
  v.reserve(7);
  v.emplace_back(static_cast<int64_t>(r & 1023));
  v.emplace_back(static_cast<int64_t>((r >> 10) & 1023));
  v.emplace_back(adNumbers[(r >> 20) % adNumbers.size()]);
  v.emplace_back(static_cast<int64_t>((r >> 32) % 5));
  v.emplace_back(static_cast<int64_t>((r >> 40) % 3));
  v.emplace_back(int64_t{0x01020304});
  v.emplace_back(eventTime);
  return v;
}

int64_t YsbData::campaignNumberOf(int64_t g) const {
  uint64_t r = splitmix(static_cast<uint64_t>(g));
  return campaignNumbers[((r >> 20) % adNumbers.size()) / kAdsPerCampaign];
}

std::shared_ptr<StaticTable> YsbData::typedCampaignTable() const {
  auto t = std::make_shared<StaticTable>(Fields{{"campaign_id", Type::Int64}});
  for (size_t a = 0; a < adNumbers.size(); ++a)
    t->add(adNumbers[a], {campaignNumbers[a / kAdsPerCampaign]});
  return t;
}

std::shared_ptr<StaticTable> YsbData::campaignTable() const {
  auto t = std::make_shared<StaticTable>(Fields{{"campaign_id", Type::String}});
  for (size_t a = 0; a < adIds.size(); ++a) t->add(adIds[a], {campaignIds[a / kAdsPerCampaign]});
  return t;
}

int64_t YsbSource::Shared::eventTimeMicros(int64_t g) const {
  if (eventTime.fixedEventTimeStart.micros != 0)
    return eventTime.fixedEventTimeStart.micros + g * eventTime.eventTimeStep.count();
  int64_t start = startWallMicros.load(std::memory_order_relaxed);
  // Due at start + (g + 1) / rate, the generator's schedule.
  if (ratePerSecond > 0) return start + static_cast<int64_t>((g + 1) * 1e6 / ratePerSecond);
  return start + g * eventTime.eventTimeStep.count();
}

YsbSource::YsbSource(std::shared_ptr<const YsbData> data, GeneratorSource::Options options)
    : YsbSource(std::move(data), options, EventTimeOptions{}) {}

YsbSource::YsbSource(std::shared_ptr<const YsbData> data, GeneratorSource::Options options,
                     EventTimeOptions eventTime)
    : YsbSource(std::move(data), options, [&] {
        auto shared = std::make_shared<Shared>();
        shared->eventTime = eventTime;
        return shared;
      }()) {
  if (eventTime.eventTimeStep.count() <= 0)
    throw std::invalid_argument("YsbSource: eventTimeStep must be positive, got " +
                                std::to_string(eventTime.eventTimeStep.count()) + " us");
}

YsbSource::YsbSource(std::shared_ptr<const YsbData> data, GeneratorSource::Options options,
                     std::shared_ptr<Shared> shared)
    : GeneratorSource(
          shared->eventTime.typed ? YsbData::typedEventFields()
                                  : Fields{{"json", Type::String}, {"ts", Type::Timestamp}},
          [data, shared, n = options.partitions](int partition, int64_t offset) -> Values {
            int64_t g = offset * n + partition;
            // Millisecond resolution, as YSB's event_time; "ts" is exactly the same instant.
            int64_t millis = shared->eventTimeMicros(g) / 1000;
            if (shared->eventTime.typed) return data->typedEvent(g, Timestamp{millis * 1000});
            // Moved in: a braced list would copy the ~240-byte string (a second allocation).
            Values v = recycledValues();
            v.reserve(2);
            v.emplace_back(data->event(g, millis));
            v.emplace_back(Timestamp{millis * 1000});
            return v;
          },
          options),
      shared_(std::move(shared)) {
  shared_->ratePerSecond = options.ratePerSecond;
}

void YsbSource::open(const Clock& clock) {
  shared_->startWallMicros.store(clock.now().micros);
  GeneratorSource::open(clock);
}

int64_t YsbSource::eventTimeMillis(int64_t g) const { return shared_->eventTimeMicros(g) / 1000; }

}  // namespace gale::compare
