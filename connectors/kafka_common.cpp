#include "kafka_common.h"

#include <simdjson.h>

#include <stdexcept>

namespace gale {

KafkaOffsetSpec parseKafkaOffsets(const std::string& text, const char* option,
                                  const std::string& who) {
  KafkaOffsetSpec spec;
  if (text == "earliest") {
    spec.all = kOffsetEarliest;
    return spec;
  }
  if (text == "latest") {
    spec.all = kOffsetLatest;
    return spec;
  }
  auto bad = [&](const std::string& why) {
    return std::invalid_argument(who + option + " must be \"earliest\", \"latest\" or JSON like "
                                 "{\"topic\":{\"0\":23,\"1\":-2}} (-2 earliest, -1 latest); got '" +
                                 text + "': " + why);
  };
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(text).get(doc)) throw bad(simdjson::error_message(e));
  simdjson::dom::object topics;
  if (doc.get_object().get(topics)) throw bad("not an object");
  spec.json = true;
  for (auto [topic, parts] : topics) {
    simdjson::dom::object po;
    if (parts.get_object().get(po)) {
      throw bad("the value of topic '" + std::string(topic) + "' is not an object");
    }
    for (auto [part, off] : po) {
      int64_t offset;
      if (off.get_int64().get(offset) || offset < kOffsetEarliest) {
        throw bad("partition " + std::string(part) + " of '" + std::string(topic) +
                  "' needs an offset >= -2");
      }
      int32_t p;
      try {
        size_t used = 0;
        p = std::stoi(std::string(part), &used);
        if (used != part.size() || p < 0) throw std::invalid_argument("");
      } catch (const std::exception&) {
        throw bad("'" + std::string(part) + "' is not a partition number");
      }
      spec.perPartition[{std::string(topic), p}] = offset;
    }
  }
  return spec;
}

void setConf(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& props,
             const std::string& who) {
  char err[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument(who + ": property " + k + "=" + v + ": " + err);
    }
  }
}

}  // namespace gale
