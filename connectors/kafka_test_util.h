// librdkafka's mock cluster for tests: the real Kafka protocol on 127.0.0.1 listeners, in process.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gale::kafkatest {

class MockCluster {
 public:
  explicit MockCluster(int brokers = 3) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);  // "no bootstrap.servers" is expected
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!owner_) throw std::runtime_error(std::string("mock owner: ") + err);
    mc_ = rd_kafka_mock_cluster_new(owner_, brokers);
    if (!mc_) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(mc_);
  }
  ~MockCluster() {
    if (producer_) rd_kafka_destroy(producer_);
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(owner_);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  const std::string& bootstraps() const { return bootstraps_; }
  rd_kafka_mock_cluster_t* mock() { return mc_; }

  void createTopic(const std::string& topic, int partitions, int replication = 1) {
    if (rd_kafka_mock_topic_create(mc_, topic.c_str(), partitions, replication)) {
      throw std::runtime_error("cannot create topic " + topic);
    }
  }

  // Produces synchronously (waits for every delivery report). `partition` -1 = by key.
  void produce(const std::string& topic, int32_t partition, const std::string& key,
               const std::string& value,
               const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    ensureProducer();
    rd_kafka_headers_t* h = nullptr;
    if (!headers.empty()) {
      h = rd_kafka_headers_new(headers.size());
      for (auto& [k, v] : headers) rd_kafka_header_add(h, k.c_str(), -1, v.data(), v.size());
    }
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()),
                                  RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA
                                                                     : partition),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                                  RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                  RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer_, 10);
    }
    if (e) throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(e));
  }
  void flush() {
    if (producer_ && rd_kafka_flush(producer_, 30000)) throw std::runtime_error("flush timed out");
  }

  struct Record {
    std::string key, value;
    int32_t partition = 0;
    int64_t offset = 0;
  };
  // Every record of `topic` from the beginning up to its end now (read_committed or not).
  std::vector<Record> consumeAll(const std::string& topic, bool readCommitted,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const char* k, const char* v) { rd_kafka_conf_set(conf, k, v, err, sizeof err); };
    set("bootstrap.servers", bootstraps_.c_str());
    set("group.id", "test-reader");
    set("enable.auto.commit", "false");
    set("enable.partition.eof", "true");
    set("fetch.wait.max.ms", "5");
    set("isolation.level", readCommitted ? "read_committed" : "read_uncommitted");
    rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* t = rd_kafka_topic_new(c, topic.c_str(), nullptr);
    if (rd_kafka_metadata(c, 0, t, &md, 10000)) throw std::runtime_error("metadata failed");
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(n);
    std::map<int32_t, int64_t> high;
    for (int32_t p = 0; p < n; ++p) {
      int64_t lo = 0, hi = 0;
      rd_kafka_query_watermark_offsets(c, topic.c_str(), p, &lo, &hi, 10000);
      high[p] = hi;
      rd_kafka_topic_partition_list_add(l, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    std::vector<Record> out;
    std::map<int32_t, int64_t> pos;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto done = [&] {
      for (auto& [p, h] : high) {
        if (pos[p] < h) return false;
      }
      return true;
    };
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        throw std::runtime_error("consumeAll(" + topic + ") did not reach the end in time");
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 50);
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        pos[m->partition] = std::max(pos[m->partition], m->offset);
      } else if (!m->err) {
        Record r;
        if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
        if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
        r.partition = m->partition;
        r.offset = m->offset;
        pos[m->partition] = std::max(pos[m->partition], m->offset + 1);
        out.push_back(std::move(r));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return out;
  }

  // Low and high watermark of one partition.
  std::pair<int64_t, int64_t> watermarks(const std::string& topic, int32_t partition) {
    ensureProducer();
    int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(producer_, topic.c_str(), partition, &lo, &hi, 10000)) {
      throw std::runtime_error("watermarks failed");
    }
    return {lo, hi};
  }

 private:
  void ensureProducer() {
    if (producer_) return;
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof err);
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  }

  rd_kafka_t* owner_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_mock_cluster_t* mc_ = nullptr;
  std::string bootstraps_;
};

}  // namespace gale::kafkatest
