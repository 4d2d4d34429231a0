#include "gale/connectors/kafka_sink.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <stdexcept>

#include "gale/connectors/json_line.h"
#include "gale/core/log.h"
#include "kafka_common.h"

namespace gale {

struct KafkaSink::Shared {
  Options o;
  std::atomic<uint64_t> produced{0}, delivered{0}, failed{0}, transactions{0}, skipped{0};
};

namespace {

// The bytes a field's value is written as: bytes and strings as they are, others as text.
bool valueBytes(const Value& v, std::string& out) {
  if (std::holds_alternative<std::monostate>(v)) return false;
  if (auto b = std::get_if<Bytes>(&v)) {
    out = b->data;
  } else if (auto s = std::get_if<std::string>(&v)) {
    out = *s;
  } else {
    out = toString(v);
  }
  return true;
}

std::string takeError(rd_kafka_error_t* e) {
  std::string s = rd_kafka_error_string(e);
  rd_kafka_error_destroy(e);
  return s;
}

}  // namespace

struct KafkaSink::Task {
  std::shared_ptr<Shared> sh;
  TopologyContext ctx;
  OutputCollector* out = nullptr;
  rd_kafka_t* rk = nullptr;
  bool transactional = false;
  bool batchMode = false;
  bool inTxn = false;
  bool skipping = false;
  uint64_t marker = 0;  // the last txid committed in Kafka by this transactional.id
  int32_t markerPart = 0;
  uint64_t batchTxid = 0;  // the batch in progress
  std::string txnId;
  std::string key, value, header;
  int64_t pending = 0;  // continuous: records awaiting their delivery report
  bool closing = false;

  ~Task() { destroy(); }

  void destroy() {
    if (!rk) return;
    closing = true;
    rd_kafka_flush(rk, static_cast<int>(sh->o.timeout.count()));
    rd_kafka_destroy(rk);
    rk = nullptr;
  }

  std::string who() const { return "kafka sink '" + ctx.component + "' task " + std::to_string(ctx.taskIndex); }

  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Task*>(opaque);
    auto* tuple = static_cast<Tuple*>(m->_private);
    if (!tuple) return;  // micro-batch: the transaction commit reports errors
    --self->pending;
    if (!self->closing && self->out) {
      if (m->err) {
        self->sh->failed.fetch_add(1);
        logWarn(self->who() + ": delivery failed (" + rd_kafka_err2str(m->err) +
                "); the tuple is failed and will be replayed");
        self->out->fail(*tuple);
      } else {
        self->sh->delivered.fetch_add(1);
        self->out->ack(*tuple);
      }
    }
    delete tuple;
  }

  void create(bool txn) {
    transactional = txn;
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::map<std::string, std::string> props = sh->o.producerProperties;
    props["bootstrap.servers"] = sh->o.bootstrapServers;
    props["enable.idempotence"] = "true";
    if (txn) {
      std::string prefix = sh->o.transactionalIdPrefix.empty() ? "gale-" + ctx.component
                                                               : sh->o.transactionalIdPrefix;
      txnId = prefix + "-" + std::to_string(ctx.taskIndex);
      props["transactional.id"] = txnId;
    }
    setConf(conf, props, who());
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &Task::onDelivery);
    char err[512];
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(who() + ": cannot create the producer: " + err);
    }
    if (!txn) return;
    // Fences a zombie with the same transactional.id and aborts its open transaction.
    if (rd_kafka_error_t* e = rd_kafka_init_transactions(rk, static_cast<int>(sh->o.timeout.count()))) {
      throw std::runtime_error(who() + ": init_transactions('" + txnId + "') failed: " +
                               takeError(e));
    }
    marker = readMarker();
    if (marker > 0) {
      logInfo(who() + ": transactional.id '" + txnId + "' committed txid " +
              std::to_string(marker) + " last; replays up to it are skipped");
    }
  }

  int32_t markerPartition(rd_kafka_t* any) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* t = rd_kafka_topic_new(any, sh->o.markerTopic.c_str(), nullptr);
    rd_kafka_resp_err_t e = rd_kafka_metadata(any, 0, t, &md, static_cast<int>(sh->o.timeout.count()));
    rd_kafka_topic_destroy(t);
    int n = 0;
    if (!e && md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    if (n < 1) {
      throw std::runtime_error(who() + ": the marker topic '" + sh->o.markerTopic +
                               "' does not exist (create it, compacted, or set markerTopic)");
    }
    return ctx.taskIndex % n;
  }

  // The highest txid in a committed marker of this transactional.id (0: none). Reads the marker
  // partition read_committed up to the end it had when we started (after init_transactions, so
  // our own last transaction is resolved).
  uint64_t readMarker() {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::map<std::string, std::string> props;
    props["bootstrap.servers"] = sh->o.bootstrapServers;
    props["group.id"] = txnId + "-marker-reader";
    props["enable.auto.commit"] = "false";
    props["isolation.level"] = "read_committed";
    props["enable.partition.eof"] = "true";
    props["auto.offset.reset"] = "earliest";
    props["fetch.wait.max.ms"] = "10";  // a short read; an empty fetch waits this long
    for (const char* k : {"security.protocol", "sasl.mechanisms", "sasl.username",
                          "sasl.password"}) {
      auto it = sh->o.producerProperties.find(k);
      if (it != sh->o.producerProperties.end()) props[k] = it->second;
    }
    setConf(conf, props, who());
    char err[512];
    rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!c) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(who() + ": cannot create the marker reader: " + err);
    }
    struct Closer {
      rd_kafka_t* c;
      ~Closer() {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
      }
    } closer{c};
    const int timeout = static_cast<int>(sh->o.timeout.count());
    int32_t part = markerPart = markerPartition(c);
    int64_t low = 0, high = 0;
    if (auto e = rd_kafka_query_watermark_offsets(c, sh->o.markerTopic.c_str(), part, &low, &high,
                                                  timeout)) {
      throw std::runtime_error(who() + ": cannot read the marker partition's offsets: " +
                               rd_kafka_err2str(e));
    }
    if (high <= low) return 0;
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, sh->o.markerTopic.c_str(), part)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    uint64_t last = 0;
    int64_t deadline = SystemClock::steadyNanos() + sh->o.timeout.count() * 1'000'000;
    // Read until the read_committed position passes the end seen at start: every transaction
    // open then (ours was aborted by init_transactions; other tasks' finish theirs) is resolved.
    int64_t position = low;
    while (position < high) {
      if (SystemClock::steadyNanos() > deadline) {
        throw std::runtime_error(who() + ": reading the marker partition did not reach offset " +
                                 std::to_string(high) + " within the timeout (a transaction on "
                                 "it stays open?)");
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 50);
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        position = std::max(position, m->offset);
      } else if (m->err) {
        logWarn(who() + ": reading markers: " + rd_kafka_message_errstr(m));
      } else {
        position = std::max(position, m->offset + 1);
        if (m->key && m->key_len == txnId.size() &&
            std::string_view(static_cast<const char*>(m->key), m->key_len) == txnId && m->payload) {
          try {
            last = std::max<uint64_t>(
                last, std::stoull(std::string(static_cast<const char*>(m->payload), m->len)));
          } catch (const std::exception&) {
            logWarn(who() + ": ignoring a malformed marker at offset " + std::to_string(m->offset));
          }
        }
      }
      rd_kafka_message_destroy(m);
    }
    return last;
  }

  // Calls `produceOnce` (an rd_kafka_producev) until librdkafka's local queue has room. The queue
  // (queue.buffering.max.messages/kbytes) bounds what is buffered; a batch may be larger, and its
  // txid marker comes after it. Serving delivery reports drains the queue; as Flink's and Spark's
  // Kafka sinks block on a full buffer, so do we, for at most the timeout.
  template <class F>
  rd_kafka_resp_err_t produceWaiting(F&& produceOnce) {
    int64_t deadline = 0;
    while (true) {
      rd_kafka_resp_err_t e = produceOnce();
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) return e;
      int64_t now = SystemClock::steadyNanos();
      if (deadline == 0) {
        deadline = now + sh->o.timeout.count() * 1'000'000;
      } else if (now > deadline) {
        return e;
      }
      rd_kafka_poll(rk, 10);
    }
  }

  std::string errorText(rd_kafka_resp_err_t e) const {
    std::string s = rd_kafka_err2str(e);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      s += " for longer than the timeout (" + std::to_string(sh->o.timeout.count()) +
           " ms): the brokers take no records (unreachable?) or queue.buffering.max.messages is "
           "too small for the rate";
    }
    return s;
  }

  // Produces one record; `opaque` (continuous mode) is the tuple to ack on delivery.
  void produce(const Tuple& t, Tuple* opaque) {
    const Options& o = sh->o;
    std::string topic = o.topic;
    if (!o.topicField.empty()) {
      const Value& v = t.get(o.topicField);
      if (!valueBytes(v, topic) || topic.empty()) {
        throw std::invalid_argument(who() + ": the topic field '" + o.topicField +
                                    "' is empty or null in " + t.toString());
      }
    }
    bool hasKey = !o.keyField.empty() && valueBytes(t.get(o.keyField), key);
    bool hasValue;
    if (!o.toJson.empty()) {
      value = "{";
      for (size_t i = 0; i < o.toJson.size(); ++i) {
        if (i) value += ',';
        appendJsonValue(value, Value(o.toJson[i]));
        value += ':';
        const Value& v = t.get(o.toJson[i]);
        if (auto b = std::get_if<Bytes>(&v)) {
          appendJsonValue(value, Value(b->data));
        } else {
          appendJsonValue(value, v);
        }
      }
      value += '}';
      hasValue = true;
    } else {
      hasValue = valueBytes(t.get(o.valueField), value);
    }
    rd_kafka_headers_t* hdrs = nullptr;
    if (!o.headerFields.empty()) {
      hdrs = rd_kafka_headers_new(o.headerFields.size());
      for (const auto& h : o.headerFields) {
        if (valueBytes(t.get(h), header)) {
          rd_kafka_header_add(hdrs, h.c_str(), -1, header.data(), header.size());
        }
      }
    }
    rd_kafka_resp_err_t e = produceWaiting([&] {
      return rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(hasKey ? key.data() : nullptr, hasKey ? key.size() : 0),
          RD_KAFKA_V_VALUE(hasValue ? value.data() : nullptr, hasValue ? value.size() : 0),
          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    });
    if (e) {
      if (hdrs) rd_kafka_headers_destroy(hdrs);  // on success they belong to the message
      throw std::runtime_error(who() + ": produce to '" + topic + "' failed: " + errorText(e));
    }
    sh->produced.fetch_add(1);
  }
};

KafkaSink::KafkaSink(Options options) : shared_(std::make_shared<Shared>()) {
  shared_->o = std::move(options);
  const Options& o = shared_->o;
  const std::string who = "KafkaSink: ";
  if (o.bootstrapServers.empty()) throw std::invalid_argument(who + "bootstrapServers is empty");
  if (o.topic.empty() == o.topicField.empty()) {
    throw std::invalid_argument(who + "give exactly one of topic and topicField");
  }
  if (o.toJson.empty() && o.valueField.empty()) {
    throw std::invalid_argument(who + "valueField is empty and toJson names no fields");
  }
  if (o.markerTopic.empty()) throw std::invalid_argument(who + "markerTopic is empty");
}

KafkaSink::~KafkaSink() = default;

std::unique_ptr<Bolt> KafkaSink::clone() const {
  auto s = std::make_unique<KafkaSink>(shared_->o);
  s->shared_ = shared_;  // one set of counters for all tasks
  return s;
}

void KafkaSink::prepare(const TopologyContext& context, OutputCollector& collector) {
  task_ = std::make_unique<Task>();
  task_->sh = shared_;
  task_->ctx = context;
  task_->out = &collector;
}

void KafkaSink::execute(const Tuple& input, OutputCollector& collector) {
  Task& t = *task_;
  t.out = &collector;
  if (t.batchMode) {
    if (!t.skipping) {
      if (!t.inTxn) {
        if (shared_->o.onTransactionPoint) shared_->o.onTransactionPoint("begin", t.batchTxid);
        if (rd_kafka_error_t* e = rd_kafka_begin_transaction(t.rk)) {
          throw std::runtime_error(t.who() + ": begin_transaction failed: " + takeError(e));
        }
        t.inTxn = true;
      }
      t.produce(input, nullptr);
    }
    collector.ack(input);  // acking is off in micro-batch mode; kept for Storm's rule
    return;
  }
  if (!t.rk) t.create(false);
  // Acked when the delivery report arrives (at-least-once); only the anchors are kept.
  auto* keep = new Tuple(input.schema(), Values{});
  keep->mutableAnchors() = input.anchors();
  keep->setSourceTask(input.sourceTask());
  keep->setOriginNanos(input.originNanos());
  try {
    t.produce(input, keep);
  } catch (...) {
    delete keep;
    throw;
  }
  ++t.pending;
  rd_kafka_poll(t.rk, 0);  // delivery reports of earlier records
}

void KafkaSink::onTick(Timestamp, OutputCollector& collector) {
  Task& t = *task_;
  t.out = &collector;
  if (t.rk && !t.batchMode) rd_kafka_poll(t.rk, 0);
}

void KafkaSink::onEndOfStream(OutputCollector& collector) {
  Task& t = *task_;
  t.out = &collector;
  if (t.rk && !t.batchMode) {
    int64_t deadline = SystemClock::steadyNanos() + shared_->o.timeout.count() * 1'000'000;
    while (t.pending > 0 && SystemClock::steadyNanos() < deadline) rd_kafka_poll(t.rk, 10);
  }
}

void KafkaSink::cleanup() {
  if (task_) task_->destroy();
}

void KafkaSink::onBatchBegin(uint64_t txid, OutputCollector&) {
  Task& t = *task_;
  if (!t.rk) t.create(true);
  if (!t.transactional) {
    throw std::logic_error(t.who() + ": a batch began after tuples arrived outside batches");
  }
  t.batchMode = true;
  t.inTxn = false;
  t.batchTxid = txid;
  t.skipping = txid <= t.marker;
  if (t.skipping) {
    shared_->skipped.fetch_add(1);
    logInfo(t.who() + ": txid " + std::to_string(txid) +
            " is already committed in Kafka (a replay after a crash): its output is skipped");
  }
}

void KafkaSink::onBatchEnd(uint64_t txid, OutputCollector&) {
  Task& t = *task_;
  if (!t.inTxn) return;  // nothing written (or a skipped replay): no transaction
  const Options& o = shared_->o;
  const int timeout = static_cast<int>(o.timeout.count());
  std::string txidText = std::to_string(txid);
  try {
    // The marker commits atomically with the records (see the header).
    rd_kafka_resp_err_t pe = t.produceWaiting([&] {
      return rd_kafka_producev(
          t.rk, RD_KAFKA_V_TOPIC(o.markerTopic.c_str()),
          RD_KAFKA_V_PARTITION(t.markerPart), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(t.txnId.data(), t.txnId.size()),
          RD_KAFKA_V_VALUE(txidText.data(), txidText.size()), RD_KAFKA_V_END);
    });
    if (pe) throw std::runtime_error("the txid marker: " + t.errorText(pe));
    if (o.onTransactionPoint) o.onTransactionPoint("before-kafka-commit", txid);
    if (rd_kafka_error_t* e = rd_kafka_commit_transaction(t.rk, timeout)) {
      bool abortable = rd_kafka_error_txn_requires_abort(e);
      std::string msg = takeError(e);
      if (abortable) {
        if (rd_kafka_error_t* a = rd_kafka_abort_transaction(t.rk, timeout)) takeError(a);
      }
      throw std::runtime_error("commit_transaction: " + msg);
    }
  } catch (const std::exception& e) {
    t.inTxn = false;
    throw std::runtime_error(t.who() + ": the Kafka transaction of txid " + txidText +
                             " failed, so the batch fails (the job replays it on restart): " +
                             e.what());
  }
  t.inTxn = false;
  t.marker = txid;
  shared_->transactions.fetch_add(1);
  if (o.onTransactionPoint) o.onTransactionPoint("after-kafka-commit", txid);
}

KafkaSink::Stats KafkaSink::stats() const {
  Stats s;
  s.produced = shared_->produced.load();
  s.delivered = shared_->delivered.load();
  s.failed = shared_->failed.load();
  s.transactions = shared_->transactions.load();
  s.skippedBatches = shared_->skipped.load();
  return s;
}

}  // namespace gale
