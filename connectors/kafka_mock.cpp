#include "gale/connectors/kafka_mock.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <map>
#include <stdexcept>

namespace gale {

struct KafkaMockCluster::Handles {
  rd_kafka_t* owner = nullptr;
  rd_kafka_t* producer = nullptr;
  rd_kafka_mock_cluster_t* mc = nullptr;
};

KafkaMockCluster::KafkaMockCluster(int brokers) : h_(new Handles) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);  // "no bootstrap.servers" is expected
  h_->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!h_->owner) {
    delete h_;
    throw std::runtime_error(std::string("kafka mock cluster: ") + err);
  }
  h_->mc = rd_kafka_mock_cluster_new(h_->owner, brokers);
  if (!h_->mc) {
    rd_kafka_destroy(h_->owner);
    delete h_;
    throw std::runtime_error("kafka mock cluster: rd_kafka_mock_cluster_new failed");
  }
  bootstraps_ = rd_kafka_mock_cluster_bootstraps(h_->mc);
}

KafkaMockCluster::~KafkaMockCluster() {
  if (h_->producer) rd_kafka_destroy(h_->producer);
  rd_kafka_mock_cluster_destroy(h_->mc);
  rd_kafka_destroy(h_->owner);
  delete h_;
}

void KafkaMockCluster::createTopic(const std::string& topic, int partitions, int replication) {
  if (rd_kafka_mock_topic_create(h_->mc, topic.c_str(), partitions, replication)) {
    throw std::runtime_error("kafka mock cluster: cannot create topic " + topic);
  }
}

void KafkaMockCluster::setBrokerDown(int broker, bool down) {
  if (down) {
    rd_kafka_mock_broker_set_down(h_->mc, broker);
  } else {
    rd_kafka_mock_broker_set_up(h_->mc, broker);
  }
}

void KafkaMockCluster::delayResponses(int broker, int16_t apiKey, int count,
                                      std::chrono::milliseconds delay) {
  for (int i = 0; i < count; ++i) {
    if (rd_kafka_mock_broker_push_request_error_rtts(h_->mc, broker, apiKey, 1,
                                                     RD_KAFKA_RESP_ERR_NO_ERROR,
                                                     static_cast<int>(delay.count()))) {
      throw std::runtime_error("kafka mock cluster: no broker " + std::to_string(broker));
    }
  }
}

void KafkaMockCluster::setPartitionLeader(const std::string& topic, int32_t partition,
                                          int broker) {
  if (rd_kafka_mock_partition_set_leader(h_->mc, topic.c_str(), partition, broker)) {
    throw std::runtime_error("kafka mock cluster: cannot move the leader of " + topic);
  }
}

void KafkaMockCluster::ensureProducer() {
  if (h_->producer) return;
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof err);
  h_->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!h_->producer) throw std::runtime_error(std::string("kafka mock cluster producer: ") + err);
}

void KafkaMockCluster::produce(const std::string& topic, int32_t partition, const std::string& key,
                               const std::string& value,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               int64_t timestampMillis) {
  ensureProducer();
  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (auto& [k, v] : headers) rd_kafka_header_add(hdrs, k.c_str(), -1, v.data(), v.size());
  }
  rd_kafka_resp_err_t e;
  while ((e = rd_kafka_producev(
              h_->producer, RD_KAFKA_V_TOPIC(topic.c_str()),
              RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
              RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
              RD_KAFKA_V_TIMESTAMP(timestampMillis < 0 ? 0 : timestampMillis),
              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    rd_kafka_poll(h_->producer, 10);
  }
  if (e) {
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    throw std::runtime_error(std::string("kafka mock cluster produce: ") + rd_kafka_err2str(e));
  }
}

void KafkaMockCluster::flush() {
  if (h_->producer && rd_kafka_flush(h_->producer, 30000)) {
    throw std::runtime_error("kafka mock cluster: flush timed out");
  }
}

std::pair<int64_t, int64_t> KafkaMockCluster::watermarks(const std::string& topic,
                                                         int32_t partition) {
  ensureProducer();
  int64_t lo = 0, hi = 0;
  if (rd_kafka_query_watermark_offsets(h_->producer, topic.c_str(), partition, &lo, &hi, 10000)) {
    throw std::runtime_error("kafka mock cluster: cannot read the offsets of " + topic);
  }
  return {lo, hi};
}

std::vector<KafkaMockCluster::Record> KafkaMockCluster::consumeAll(
    const std::string& topic, bool readCommitted, std::chrono::milliseconds timeout) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const char* v) { rd_kafka_conf_set(conf, k, v, err, sizeof err); };
  set("bootstrap.servers", bootstraps_.c_str());
  set("group.id", "gale-mock-reader");
  set("enable.auto.commit", "false");
  set("enable.partition.eof", "true");
  set("fetch.wait.max.ms", "5");
  set("isolation.level", readCommitted ? "read_committed" : "read_uncommitted");
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!c) throw std::runtime_error(std::string("kafka mock cluster consumer: ") + err);
  struct Closer {
    rd_kafka_t* c;
    ~Closer() {
      rd_kafka_consumer_close(c);
      rd_kafka_destroy(c);
    }
  } closer{c};
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* t = rd_kafka_topic_new(c, topic.c_str(), nullptr);
  rd_kafka_resp_err_t me = rd_kafka_metadata(c, 0, t, &md, 10000);
  rd_kafka_topic_destroy(t);
  if (me) throw std::runtime_error("kafka mock cluster: no metadata for " + topic);
  int n = md->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(n);
  std::map<int32_t, int64_t> high, pos;
  for (int32_t p = 0; p < n; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_query_watermark_offsets(c, topic.c_str(), p, &lo, &hi, 10000);
    high[p] = hi;
    pos[p] = lo;
    rd_kafka_topic_partition_list_add(l, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(c, l);
  rd_kafka_topic_partition_list_destroy(l);
  std::vector<Record> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto done = [&] {
    for (auto& [p, h] : high) {
      if (pos[p] < h) return false;
    }
    return true;
  };
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("kafka mock cluster: reading " + topic + " did not reach its end");
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
      rd_kafka_headers_t* hs = nullptr;
      if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR && hs) {
        const char* name;
        const void* v;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hs, i, &name, &v, &size) == 0; ++i) {
          r.headers.emplace_back(name, v ? std::string(static_cast<const char*>(v), size) : "");
        }
      }
      pos[m->partition] = std::max(pos[m->partition], m->offset + 1);
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  return out;
}

}  // namespace gale
