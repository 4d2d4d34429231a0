// The plain librdkafka clients of gale-compare --kafka (kafka_mode.h): the cluster (mock or real),
// a paced producer of the input records, a relay (the no-engine floor) and the measuring consumer
// of an output topic.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "gale/connectors/kafka_mock.h"
#include "gale/core/histogram.h"

namespace gale::compare {

// The header every input record carries and every result copies: a wall-clock time in µs.
inline constexpr const char* kSentHeader = "sent";
// With --kafka-stages, a transform result's wall-clock times (µs) of two stages on its way: when
// the source took its record from librdkafka, and when the pipeline's Map ran.
inline constexpr const char* kTakenHeader = "taken";
inline constexpr const char* kMappedHeader = "mapped";

// The same client settings for gale's source and sink and for the floor's relay and meter, so the
// floor differs from gale only by the engine.
const std::map<std::string, std::string>& kafkaConsumerProperties();
const std::map<std::string, std::string>& kafkaProducerProperties();

int64_t wallMicros();

// An rd_kafka_t that is closed and destroyed with its owner. Throws std::runtime_error naming
// the property librdkafka refuses.
class KafkaClient {
 public:
  KafkaClient(rd_kafka_type_t type, const std::string& bootstrap,
              std::map<std::string, std::string> properties);
  ~KafkaClient();
  KafkaClient(const KafkaClient&) = delete;
  KafkaClient& operator=(const KafkaClient&) = delete;
  rd_kafka_t* get() const { return rk_; }
  // Consumers: every partition of `topic` from its beginning.
  void assignAll(const std::string& topic, int partitions);

 private:
  rd_kafka_t* rk_ = nullptr;
  bool consumer_ = false;
};

// The mock cluster started in process (bootstrap ""), or a real one.
class KafkaCluster {
 public:
  explicit KafkaCluster(const std::string& bootstrap);
  const std::string& bootstrap() const { return bootstrap_; }
  bool isMock() const { return mock_.has_value(); }
  std::string describe() const;
  // Through the admin API on a real cluster (an existing topic is fine).
  void createTopic(const std::string& topic, int partitions);

 private:
  std::optional<KafkaMockCluster> mock_;
  std::string bootstrap_;
};

// Produces records {"ad":"ad-<i % 100>","event":"view"} keyed by ad, round robin over the
// partitions, each with its scheduled send time in the "sent" header and as its Kafka timestamp.
class PacedProducer {
 public:
  PacedProducer(const std::string& bootstrap, std::string topic, int partitions);
  // `perSecond` records/s for `seconds` (0 = as fast as it can, `count` records). Blocks; returns
  // how many it produced (all delivered: it flushes).
  uint64_t run(double perSecond, double seconds, uint64_t count = 0);
  // One record per partition with event time `wallMicros`, so every earlier window closes.
  void sentinels(int64_t wallMicros);

 private:
  void produce(uint64_t i, int64_t sentMicros);
  KafkaClient client_;
  std::string topic_;
  int partitions_;
};

// The no-engine floor: consumes `from` and produces every record to `to` as it is (key, value,
// headers, timestamp), on its own thread until stop().
class Relay {
 public:
  Relay(const std::string& bootstrap, const std::string& from, const std::string& to,
        int partitions);
  ~Relay() { stop(); }
  uint64_t relayed() const { return relayed_.load(); }
  void stop();

 private:
  KafkaClient in_, out_;
  std::string to_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> relayed_{0};
  std::thread thread_;
};

// Reads an output topic (read_committed) on its own thread. Each result's latency is its arrival
// (wall clock) minus its "sent" header, recorded when that time is in [from, to]; a result whose
// JSON value has "count":N accounts for N input records, any other for one. A result with the
// "taken" and "mapped" headers also has its stages recorded: taken - sent, mapped - taken,
// arrival - mapped.
class OutputMeter {
 public:
  OutputMeter(const std::string& bootstrap, const std::string& topic, int partitions);
  ~OutputMeter() { stop(); }
  void measureBetween(int64_t fromWallMicros, int64_t toWallMicros);
  uint64_t results() const { return results_.load(); }
  uint64_t counted() const { return counted_.load(); }
  uint64_t missingHeader() const { return missingHeader_.load(); }
  // After stop().
  const Histogram& latencyNanos() const { return latency_; }
  // Stage i (0, 1, 2 as above) of the results that carried the stage headers; after stop().
  const Histogram& stageNanos(int i) const { return stages_[i]; }
  void stop();

 private:
  KafkaClient client_;
  std::atomic<int64_t> from_{INT64_MAX}, to_{INT64_MAX};
  std::atomic<uint64_t> results_{0}, counted_{0}, missingHeader_{0};
  std::atomic<bool> stop_{false};
  Histogram latency_;
  Histogram stages_[3];
  std::thread thread_;
};

}  // namespace gale::compare
