// A source's partition order (Source::partitionIds) as a checkpoint stores it, micro-batch's and
// exactly-once continuous mode's alike: the ids one a line (a Kafka topic name has no newline);
// and which spout task reads a named partition.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gale {

inline std::string encodePartitionOrder(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += id + '\n';
  return out;
}

inline std::vector<std::string> decodePartitionOrder(std::string_view s) {
  std::vector<std::string> out;
  for (size_t nl; (nl = s.find('\n')) != std::string_view::npos; s = s.substr(nl + 1)) {
    out.emplace_back(s.substr(0, nl));
  }
  return out;
}

// The spout task (of `parallelism`) that reads the partition named `id`: a function of the name
// alone, so every worker process gives each partition the same task however it numbered its
// partitions (a worker numbers those it discovers while running in the order it found them).
// "topic/N" goes as Flink's KafkaTopicPartitionAssigner does: a topic's partitions round robin
// from a task its name hashes to, so they spread evenly; any other name by a hash of the whole.
// FNV-1a: the same in every build, unlike std::hash.
inline int taskOfPartition(std::string_view id, int parallelism) {
  auto fnv = [](std::string_view s) {
    uint64_t h = 14695981039346656037ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
  };
  const uint64_t n = static_cast<uint64_t>(parallelism);
  size_t slash = id.rfind('/');
  uint64_t number = 0;
  if (slash != std::string_view::npos) {
    const char* end = id.data() + id.size();
    auto [at, ec] = std::from_chars(id.data() + slash + 1, end, number);
    if (ec == std::errc() && at == end && slash + 1 < id.size())
      return static_cast<int>((fnv(id.substr(0, slash)) % n + number % n) % n);
  }
  return static_cast<int>(fnv(id) % n);
}

}  // namespace gale
