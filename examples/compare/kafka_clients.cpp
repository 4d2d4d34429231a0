#include "kafka_clients.h"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "gale/core/clock.h"

namespace gale::compare {

const std::map<std::string, std::string>& kafkaConsumerProperties() {
  // A fetch that finds no data waits at most 1 ms (librdkafka's default is 500 ms).
  static const std::map<std::string, std::string> p = {{"fetch.wait.max.ms", "1"}};
  return p;
}

const std::map<std::string, std::string>& kafkaProducerProperties() {
  // Batches wait at most 1 ms for more records (librdkafka's default is 5 ms). Idempotent, as
  // KafkaSink always is (at most 5 requests in flight per broker, ordered retries): the floor's
  // relay and the input's producer write as gale's sink does.
  static const std::map<std::string, std::string> p = {{"linger.ms", "1"},
                                                       {"enable.idempotence", "true"}};
  return p;
}

int64_t wallMicros() { return SystemClock::instance().now().micros; }

KafkaClient::KafkaClient(rd_kafka_type_t type, const std::string& bootstrap,
                         std::map<std::string, std::string> properties)
    : consumer_(type == RD_KAFKA_CONSUMER) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  properties["bootstrap.servers"] = bootstrap;
  if (consumer_) {
    properties.emplace("group.id", "gale-compare");  // needed by the consumer; never committed
    properties["enable.auto.commit"] = "false";
  }
  for (const auto& [k, v] : properties) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("gale-compare: kafka property " + k + "=" + v + ": " + err);
    }
  }
  rk_ = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("gale-compare: cannot create a kafka client: ") + err);
  }
}

KafkaClient::~KafkaClient() {
  if (consumer_) rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
}

void KafkaClient::assignAll(const std::string& topic, int partitions) {
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(l, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_resp_err_t e = rd_kafka_assign(rk_, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) throw std::runtime_error("gale-compare: cannot assign " + topic + ": " + rd_kafka_err2str(e));
}

KafkaCluster::KafkaCluster(const std::string& bootstrap) {
  if (bootstrap.empty()) {
    mock_.emplace(1);
    bootstrap_ = mock_->bootstraps();
  } else {
    bootstrap_ = bootstrap;
  }
}

std::string KafkaCluster::describe() const {
  return mock_ ? "librdkafka mock cluster in process (1 broker, " + bootstrap_ + ")"
               : "Kafka cluster at " + bootstrap_;
}

void KafkaCluster::createTopic(const std::string& topic, int partitions) {
  if (mock_) {
    mock_->createTopic(topic, partitions);
    return;
  }
  KafkaClient admin(RD_KAFKA_PRODUCER, bootstrap_, {});
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  if (!nt) throw std::runtime_error("gale-compare: topic " + topic + ": " + err);
  rd_kafka_queue_t* q = rd_kafka_queue_new(admin.get());
  rd_kafka_CreateTopics(admin.get(), &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  std::string why = ev ? "" : "no answer within 30 s";
  if (ev && rd_kafka_event_error(ev)) why = rd_kafka_event_error_string(ev);
  if (ev && why.empty()) {
    size_t n = 0;
    const rd_kafka_topic_result_t** r =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(r[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) why = rd_kafka_err2str(e);
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  if (!why.empty()) throw std::runtime_error("gale-compare: cannot create topic " + topic + ": " + why);
}

PacedProducer::PacedProducer(const std::string& bootstrap, std::string topic, int partitions)
    : client_(RD_KAFKA_PRODUCER, bootstrap, kafkaProducerProperties()),
      topic_(std::move(topic)),
      partitions_(partitions) {}

void PacedProducer::produce(uint64_t i, int64_t sentMicros) {
  std::string ad = "ad-" + std::to_string(i % 100);
  std::string value = "{\"ad\":\"" + ad + "\",\"event\":\"view\"}";
  std::string sent = std::to_string(sentMicros);
  while (true) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        client_.get(), RD_KAFKA_V_TOPIC(topic_.c_str()),
        RD_KAFKA_V_PARTITION(static_cast<int32_t>(i % static_cast<uint64_t>(partitions_))),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(ad.data(), ad.size()),
        RD_KAFKA_V_VALUE(value.data(), value.size()),
        RD_KAFKA_V_HEADER(kSentHeader, sent.data(), static_cast<ssize_t>(sent.size())),
        RD_KAFKA_V_TIMESTAMP(sentMicros / 1000), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      if (e) throw std::runtime_error("gale-compare: produce: " + std::string(rd_kafka_err2str(e)));
      return;
    }
    rd_kafka_poll(client_.get(), 1);  // the local queue is full: let deliveries drain it
  }
}

uint64_t PacedProducer::run(double perSecond, double seconds, uint64_t count) {
  const int64_t startMono = SystemClock::steadyNanos();
  const int64_t startWall = wallMicros();
  const int64_t endMono = startMono + static_cast<int64_t>(seconds * 1e9);
  uint64_t i = 0;
  while (true) {
    int64_t now = SystemClock::steadyNanos();
    if (perSecond <= 0) {
      if (i >= count) break;
      produce(i++, wallMicros());
      if ((i & 1023) == 0) rd_kafka_poll(client_.get(), 0);
      continue;
    }
    if (now >= endMono) break;
    // Every record due by now, each stamped with its scheduled time (a producer that falls
    // behind shows as latency, not as a lower load: no coordinated omission).
    const auto due = static_cast<uint64_t>(static_cast<double>(now - startMono) * perSecond / 1e9);
    for (; i <= due; ++i) {
      int64_t scheduled = startMono + static_cast<int64_t>(static_cast<double>(i) * 1e9 / perSecond);
      produce(i, startWall + (scheduled - startMono) / 1000);
    }
    rd_kafka_poll(client_.get(), 0);
    int64_t next = startMono + static_cast<int64_t>(static_cast<double>(i) * 1e9 / perSecond);
    if (next > now) std::this_thread::sleep_for(std::chrono::nanoseconds(next - now));
  }
  if (rd_kafka_flush(client_.get(), 30000))
    throw std::runtime_error("gale-compare: the input records were not delivered within 30 s");
  return i;
}

void PacedProducer::sentinels(int64_t wallMicros) {
  for (int p = 0; p < partitions_; ++p) produce(static_cast<uint64_t>(p), wallMicros);
  if (rd_kafka_flush(client_.get(), 30000))
    throw std::runtime_error("gale-compare: the sentinel records were not delivered within 30 s");
}

Relay::Relay(const std::string& bootstrap, const std::string& from, const std::string& to,
             int partitions)
    : in_(RD_KAFKA_CONSUMER, bootstrap, kafkaConsumerProperties()),
      out_(RD_KAFKA_PRODUCER, bootstrap, kafkaProducerProperties()),
      to_(to) {
  in_.assignAll(from, partitions);
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(in_.get(), 10);
      rd_kafka_poll(out_.get(), 0);
      if (!m) continue;
      if (!m->err) {
        rd_kafka_headers_t* h = nullptr;
        rd_kafka_headers_t* copy = nullptr;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
          copy = rd_kafka_headers_copy(h);
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        rd_kafka_resp_err_t e;
        do {
          e = rd_kafka_producev(out_.get(), RD_KAFKA_V_TOPIC(to_.c_str()),
                                RD_KAFKA_V_PARTITION(m->partition),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(m->key, m->key_len),
                                RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_HEADERS(copy),
                                RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
          if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(out_.get(), 1);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (e && copy) rd_kafka_headers_destroy(copy);  // producev owns them only on success
        if (!e) relayed_.fetch_add(1);
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_flush(out_.get(), 30000);
  });
}

void Relay::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

namespace {

// The N of "count":N in a JSON value, or nullopt.
std::optional<uint64_t> countIn(const char* data, size_t size) {
  static constexpr std::string_view key = "\"count\":";
  std::string_view v(data, size);
  size_t at = v.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  uint64_t n = 0;
  for (size_t i = at + key.size(); i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i)
    n = n * 10 + static_cast<uint64_t>(v[i] - '0');
  return n;
}

}  // namespace

OutputMeter::OutputMeter(const std::string& bootstrap, const std::string& topic, int partitions)
    : client_(RD_KAFKA_CONSUMER, bootstrap, [] {
        auto p = kafkaConsumerProperties();
        p["isolation.level"] = "read_committed";  // what a reader of exactly-once output sees
        return p;
      }()) {
  client_.assignAll(topic, partitions);
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 10);
      if (!m) continue;
      const int64_t now = wallMicros();
      if (!m->err) {
        const void* v = nullptr;
        size_t size = 0;
        rd_kafka_headers_t* h = nullptr;
        if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) h = nullptr;
        auto header = [&](const char* name) -> std::optional<int64_t> {
          if (!h || rd_kafka_header_get_last(h, name, &v, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
              !v)
            return std::nullopt;
          return std::stoll(std::string(static_cast<const char*>(v), size));
        };
        std::optional<int64_t> sent = header(kSentHeader);
        auto n = countIn(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
        counted_.fetch_add(n ? *n : 1);
        results_.fetch_add(1);
        if (!sent) {
          missingHeader_.fetch_add(1);
        } else if (*sent >= from_.load() && *sent <= to_.load()) {
          latency_.record(std::max<int64_t>(0, now - *sent) * 1000);
          auto taken = header(kTakenHeader), mapped = header(kMappedHeader);
          if (taken && mapped) {
            stages_[0].record(std::max<int64_t>(0, *taken - *sent) * 1000);
            stages_[1].record(std::max<int64_t>(0, *mapped - *taken) * 1000);
            stages_[2].record(std::max<int64_t>(0, now - *mapped) * 1000);
          }
        }
      }
      rd_kafka_message_destroy(m);
    }
  });
}

void OutputMeter::measureBetween(int64_t fromWallMicros, int64_t toWallMicros) {
  to_ = toWallMicros;
  from_ = fromWallMicros;
}

void OutputMeter::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace gale::compare
