// A source's partition order (Source::partitionIds) as a checkpoint stores it, micro-batch's and
// exactly-once continuous mode's alike: the ids one a line (a Kafka topic name has no newline).
#pragma once

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

}  // namespace gale
