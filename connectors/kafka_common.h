// What the Kafka source and sink share: librdkafka configuration and Spark's offset options.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace gale {

// Spark's logical offsets in startingOffsets / endingOffsets JSON.
inline constexpr int64_t kOffsetEarliest = -2;
inline constexpr int64_t kOffsetLatest = -1;

// "earliest", "latest" or {"topic":{"0":23,"1":-2}}.
struct KafkaOffsetSpec {
  int64_t all = kOffsetLatest;  // for every partition not named in `perPartition`
  bool json = false;
  std::map<std::pair<std::string, int32_t>, int64_t> perPartition;
  int64_t offsetFor(const std::string& topic, int32_t partition, int64_t otherwise) const {
    if (!json) return all;
    auto it = perPartition.find({topic, partition});
    return it == perPartition.end() ? otherwise : it->second;
  }
};

// Throws std::invalid_argument naming `option` (prefixed by `who`) when `text` does not parse.
KafkaOffsetSpec parseKafkaOffsets(const std::string& text, const char* option,
                                  const std::string& who);

// Sets every property on `conf`; throws std::invalid_argument naming `who` and the property on
// a property librdkafka refuses.
void setConf(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& props,
             const std::string& who);

}  // namespace gale
