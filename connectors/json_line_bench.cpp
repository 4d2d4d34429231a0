// JSON lines parse throughput on one core: Yahoo Streaming Benchmark ad events into typed Values.
// Prints objects/s and MB/s for the declared-types and the untyped schema.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <simdjson.h>

#include "gale/connectors/json_line.h"
#include "gale/connectors/json_simd.h"

using namespace gale;

namespace {

std::vector<std::string> adEvents(int n) {
  static const char* kTypes[] = {"view", "click", "purchase"};
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  R"({"user_id":"%08x-2c1b-4a8e-9f3d-%012x","page_id":"%08x-aa10-4c2b-8d3e-%012x",)"
                  R"("ad_id":"%08x-5b6c-4d7e-8f90-%012x","ad_type":"banner","event_type":"%s",)"
                  R"("event_time":%lld,"ip_address":"1.2.3.4"})",
                  i * 2654435761u, i, i * 40503u, i * 7, (i % 1000) * 2246822519u, i % 1000,
                  kTypes[i % 3], 1700000000000LL + i);
    lines.emplace_back(buf);
  }
  return lines;
}

// gale's own records: gale-compare's YSB generator writes every member as a string, event_time
// included. Each line keeps SIMDJSON_PADDING spare bytes of capacity, so simdjson's On-Demand
// parser reads it in place (its best case: no copy into a padded buffer).
std::vector<std::string> galeEvents(int n) {
  static const char* kTypes[] = {"view", "click", "purchase"};
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    char buf[512];
    int len = std::snprintf(
        buf, sizeof buf,
        R"({"user_id":"%08x-2c1b-4a8e-9f3d-%012x","page_id":"%08x-aa10-4c2b-8d3e-%012x",)"
        R"("ad_id":"%08x-5b6c-4d7e-8f90-%012x","ad_type":"banner","event_type":"%s",)"
        R"("event_time":"%lld","ip_address":"1.2.3.4"})",
        i * 2654435761u, i, i * 40503u, i * 7, (i % 1000) * 2246822519u, i % 1000, kTypes[i % 3],
        1700000000000LL + i);
    std::string line;
    line.reserve(static_cast<size_t>(len) + simdjson::SIMDJSON_PADDING);
    line.assign(buf, static_cast<size_t>(len));
    lines.push_back(std::move(line));
  }
  return lines;
}

// simdjson's On-Demand API doing what JsonLineParser does for string members: the declared
// members' strings copied into the reused Values (a member's field found by the name at the
// same position in the last line first, as JsonLineParser does), the others skipped.
class OndemandStrings {
 public:
  explicit OndemandStrings(Fields fields) : fields_(std::move(fields)) {}
  bool parse(const std::string& line, Values& out) {
    out.resize(fields_.size());
    simdjson::ondemand::document doc;
    simdjson::ondemand::object obj;
    if (parser_.iterate(simdjson::padded_string_view(line.data(), line.size(), line.capacity()))
            .get(doc) ||
        doc.get_object().get(obj))
      return false;
    size_t member = 0;
    for (auto m : obj) {
      std::string_view key, value;
      if (m.unescaped_key().get(key)) return false;
      if (member >= names_.size()) names_.resize(member + 1, {std::string(), -2});
      auto& [name, field] = names_[member++];
      if (field == -2 || name != key) {
        name = key;
        field = fields_.indexOf(key);
      }
      if (field < 0) continue;  // skipped by moving on
      if (m.value().get_string().get(value)) return false;
      auto* s = std::get_if<std::string>(&out[static_cast<size_t>(field)]);
      if (!s) s = &out[static_cast<size_t>(field)].emplace<std::string>();
      s->assign(value);
    }
    return true;
  }

 private:
  Fields fields_;
  simdjson::ondemand::parser parser_;
  std::vector<std::pair<std::string, int>> names_;
};

template <typename Parser>
void run(const char* label, const Fields& fields, const std::vector<std::string>& lines) {
  Parser parser(fields);
  Values v;
  size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size();
  // Warm-up pass, then the timed passes.
  for (const auto& l : lines) parser.parse(l, v);
  const int passes = 20;
  auto t0 = std::chrono::steady_clock::now();
  size_t ok = 0;
  for (int p = 0; p < passes; ++p)
    for (const auto& l : lines) ok += parser.parse(l, v);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double n = static_cast<double>(lines.size()) * passes;
  std::printf("%-34s %6.2f M objects/s  %6.0f MB/s  (%.0f ns/object, %zu ok)\n", label, n / s / 1e6,
              bytes * passes / s / 1e6, s / n * 1e9, ok);
}

}  // namespace

int main() {
  auto lines = adEvents(100000);
  std::printf("JsonLineParser, %zu YSB ad events of ~%zu bytes, one core\n", lines.size(), lines[0].size());
  const Fields all{FieldSpec{"user_id", Type::String}, FieldSpec{"page_id", Type::String},
                   FieldSpec{"ad_id", Type::String}, FieldSpec{"ad_type", Type::String},
                   FieldSpec{"event_type", Type::String}, FieldSpec{"event_time", Type::Timestamp},
                   FieldSpec{"ip_address", Type::String}};
  const Fields some{FieldSpec{"ad_id", Type::String}, FieldSpec{"event_type", Type::String},
                    FieldSpec{"event_time", Type::Timestamp}};
  // Both parsers in the same run (the figures are only comparable side by side).
  run<JsonLineParser>("hand-written, 7 fields typed:", all, lines);
  run<SimdJsonParser>("simdjson,     7 fields typed:", all, lines);
  run<JsonLineParser>("hand-written, 3 of 7 fields:", some, lines);
  run<SimdJsonParser>("simdjson,     3 of 7 fields:", some, lines);

  // gale's records (gale-compare's JSON YSB: event_time a string too, the 3 members its
  // pipeline declares), beside simdjson's On-Demand API.
  auto records = galeEvents(100000);
  std::printf("gale's records (all members strings), ~%zu bytes\n", records[0].size());
  const Fields ysb{FieldSpec{"ad_id", Type::String}, FieldSpec{"event_type", Type::String},
                   FieldSpec{"event_time", Type::String}};
  run<JsonLineParser>("hand-written, 3 of 7 fields:", ysb, records);
  run<OndemandStrings>("simdjson on-demand, 3 of 7:", ysb, records);
  run<SimdJsonParser>("simdjson dom, 3 of 7 fields:", ysb, records);
  return 0;
}
