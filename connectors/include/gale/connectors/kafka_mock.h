// librdkafka's mock cluster (rdkafka_mock.h) started in process: the real Kafka protocol on
// 127.0.0.1 listeners that other clients and processes (kcat -b) can use, with no server to run.
// For tests, examples and gale-compare. It keeps only a few MB per partition (older records are
// dropped: the log start moves) and its transactions are partial (see docs/connectors.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gale {

class KafkaMockCluster {
 public:
  explicit KafkaMockCluster(int brokers = 3);
  ~KafkaMockCluster();
  KafkaMockCluster(const KafkaMockCluster&) = delete;
  KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstraps() const { return bootstraps_; }
  void createTopic(const std::string& topic, int partitions, int replication = 1);
  // Broker ids are 1..brokers.
  void setBrokerDown(int broker, bool down);
  // Moves the leadership of a partition (a leader change, as after a broker failure).
  void setPartitionLeader(const std::string& topic, int32_t partition, int broker);

  // A slow broker: the next `count` requests of protocol request type `apiKey` (e.g. 2,
  // ListOffsets) to `broker` are answered after `delay`.
  void delayResponses(int broker, int16_t apiKey, int count, std::chrono::milliseconds delay);

  // Produces through an internal producer (asynchronously; flush() waits for all). partition -1:
  // by key. timestampMillis -1: now.
  void produce(const std::string& topic, int32_t partition, const std::string& key,
               const std::string& value,
               const std::vector<std::pair<std::string, std::string>>& headers = {},
               int64_t timestampMillis = -1);
  void flush();

  struct Record {
    std::string key, value;
    int32_t partition = 0;
    int64_t offset = 0;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  // Every record of `topic` from the beginning to its end now. Throws on timeout.
  std::vector<Record> consumeAll(const std::string& topic, bool readCommitted,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Low and high watermark of one partition.
  std::pair<int64_t, int64_t> watermarks(const std::string& topic, int32_t partition);

 private:
  void ensureProducer();
  struct Handles;
  Handles* h_;
  std::string bootstraps_;
};

}  // namespace gale
