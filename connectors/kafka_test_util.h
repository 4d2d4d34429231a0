// Helpers shared by the KafkaSource tests (kafka_source_test.cpp, kafka_partitions_test.cpp).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_source.h"
#include "gale/core/value.h"

namespace gale::testing {

using MockCluster = KafkaMockCluster;

inline std::string tempDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("gale-kafka-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}

inline KafkaSource::Options baseOptions(const MockCluster& mc, const std::string& topic) {
  KafkaSource::Options o;
  o.bootstrapServers = mc.bootstraps();
  o.subscribe = {topic};
  o.startingOffsets = "earliest";
  o.consumerProperties = {{"fetch.wait.max.ms", "5"}};
  return o;
}

inline std::string asText(const Value& v) {
  if (auto b = std::get_if<Bytes>(&v)) return b->data;
  if (auto s = std::get_if<std::string>(&v)) return *s;
  return toString(v);
}

}  // namespace gale::testing
