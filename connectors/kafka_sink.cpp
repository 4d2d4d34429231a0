#include "gale/connectors/kafka_sink.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <charconv>
#include <stdexcept>

#include "gale/connectors/json_line.h"
#include "gale/core/log.h"
#include "gale/core/state_codec.h"
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
  } else if (auto i = std::get_if<int64_t>(&v)) {
    // As toString() writes it, without a string allocated per record (a header of send times).
    char buf[24];
    out.assign(buf, std::to_chars(buf, buf + sizeof buf, *i).ptr);
  } else {
    out = toString(v);
  }
  return true;
}

// One record as it goes to Kafka: the continuous exactly-once sink keeps these until their
// checkpoint completes.
struct Record {
  std::string topic, key, value;
  bool hasKey = false, hasValue = false;
  std::vector<std::pair<std::string, std::string>> headers;
};

constexpr std::string_view kPreCommitMagic = "KS2P";

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
  Record scratch;  // continuous: the record being produced (reused)
  // Continuous exactly-once: records since the last barrier, and those pre-committed per
  // checkpoint id and not yet in Kafka.
  bool twoPhase = false;
  std::vector<Record> open;
  std::map<uint64_t, std::vector<Record>> preCommitted;
  int64_t pending = 0;  // continuous: records awaiting their delivery report
  bool closing = false;

  ~Task() { destroy(); }

  void destroy() {
    if (!rk) return;
    closing = true;
    rd_kafka_flush(rk, static_cast<int>(sh->o.timeout.count()));
    // What the brokers did not take in time (a broker down) is purged, so each of its delivery
    // reports still runs and frees the tuple it carries (closing: nothing is acked or failed).
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk, 1000);
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

  // Writes the txid marker and commits the open transaction (see the header); on failure aborts
  // it and throws, saying `consequence`.
  void commitTransaction(uint64_t txid, const char* consequence) {
    const Options& o = sh->o;
    const int timeout = static_cast<int>(o.timeout.count());
    std::string txidText = std::to_string(txid);
    try {
      // The marker commits atomically with the records.
      rd_kafka_resp_err_t pe = produceWaiting([&] {
        return rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(o.markerTopic.c_str()), RD_KAFKA_V_PARTITION(markerPart),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(txnId.data(), txnId.size()),
            RD_KAFKA_V_VALUE(txidText.data(), txidText.size()), RD_KAFKA_V_END);
      });
      if (pe) throw std::runtime_error("the txid marker: " + errorText(pe));
      if (o.onTransactionPoint) o.onTransactionPoint("before-kafka-commit", txid);
      if (rd_kafka_error_t* e = rd_kafka_commit_transaction(rk, timeout)) {
        bool abortable = rd_kafka_error_txn_requires_abort(e);
        std::string msg = takeError(e);
        if (abortable) {
          if (rd_kafka_error_t* a = rd_kafka_abort_transaction(rk, timeout)) takeError(a);
        }
        throw std::runtime_error("commit_transaction: " + msg);
      }
    } catch (const std::exception& e) {
      inTxn = false;
      throw std::runtime_error(who() + ": the Kafka transaction of txid " + txidText +
                               " failed, so " + consequence + ": " + e.what());
    }
    inTxn = false;
    marker = txid;
    sh->transactions.fetch_add(1);
    if (o.onTransactionPoint) o.onTransactionPoint("after-kafka-commit", txid);
  }

  // Continuous exactly-once: forgets pre-committed checkpoints the marker says are in Kafka.
  void dropCommitted() {
    preCommitted.erase(preCommitted.begin(), preCommitted.upper_bound(marker));
  }

  // The record of a tuple (see the header for its fields).
  void encode(const Tuple& t, Record& r) {
    const Options& o = sh->o;
    r.topic = o.topic;
    if (!o.topicField.empty()) {
      const Value& v = t.get(o.topicField);
      if (!valueBytes(v, r.topic) || r.topic.empty()) {
        throw std::invalid_argument(who() + ": the topic field '" + o.topicField +
                                    "' is empty or null in " + t.toString());
      }
    }
    r.hasKey = !o.keyField.empty() && valueBytes(t.get(o.keyField), r.key);
    if (!o.toJson.empty()) {
      std::string& value = r.value;
      value = "{";
      for (size_t i = 0; i < o.toJson.size(); ++i) {
        if (i) value += ',';
        appendJsonString(value, o.toJson[i]);
        value += ':';
        const Value& v = t.get(o.toJson[i]);
        if (auto b = std::get_if<Bytes>(&v)) {
          appendJsonString(value, b->data);  // bytes as a JSON string, as a string field
        } else {
          appendJsonValue(value, v);
        }
      }
      value += '}';
      r.hasValue = true;
    } else {
      r.hasValue = valueBytes(t.get(o.valueField), r.value);
    }
    // Continuous mode encodes every tuple into one scratch record: its header strings keep
    // their capacity from one tuple to the next instead of being allocated per record.
    size_t n = 0;
    for (const auto& h : o.headerFields) {
      if (n == r.headers.size()) r.headers.emplace_back();
      if (valueBytes(t.get(h), r.headers[n].second)) r.headers[n++].first = h;  // null: none
    }
    r.headers.resize(n);
  }

  // Produces one record; `opaque` (continuous mode) is the tuple to ack on delivery.
  void send(const Record& r, Tuple* opaque) {
    const std::string& topic = r.topic;
    const std::string& key = r.key;
    // RD_KAFKA_V_VALUE takes a void*; RD_KAFKA_MSG_F_COPY copies, nothing is written to it.
    char* value = const_cast<char*>(r.value.data());
    const bool hasKey = r.hasKey, hasValue = r.hasValue;
    rd_kafka_headers_t* hdrs = nullptr;
    if (!r.headers.empty()) {
      hdrs = rd_kafka_headers_new(r.headers.size());
      for (const auto& [name, v] : r.headers) {
        rd_kafka_header_add(hdrs, name.c_str(), -1, v.data(), v.size());
      }
    }
    rd_kafka_resp_err_t e = produceWaiting([&] {
      return rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(hasKey ? key.data() : nullptr, hasKey ? key.size() : 0),
          RD_KAFKA_V_VALUE(hasValue ? value : nullptr, hasValue ? r.value.size() : 0),
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
      t.encode(input, t.scratch);
      t.send(t.scratch, nullptr);
    }
    collector.ack(input);  // acking is off in micro-batch mode; kept for Storm's rule
    return;
  }
  if (t.twoPhase) {
    // Written to Kafka once the checkpoint after it completes (commit). Encoded aside, so a
    // tuple that cannot be encoded leaves no half record behind.
    Record r;
    t.encode(input, r);
    t.open.push_back(std::move(r));
    collector.ack(input);
    return;
  }
  if (!t.rk) t.create(false);
  // Acked when the delivery report arrives (at-least-once); only the anchors are kept.
  auto* keep = new Tuple(input.schema(), Values{});
  keep->mutableAnchors() = input.anchors();
  keep->setSourceTask(input.sourceTask());
  keep->setOriginNanos(input.originNanos());
  try {
    t.encode(input, t.scratch);
    t.send(t.scratch, keep);
  } catch (...) {
    delete keep;
    throw;
  }
  ++t.pending;
  rd_kafka_poll(t.rk, 0);  // delivery reports of earlier records
}

void KafkaSink::onTick(Timestamp, OutputCollector& collector) { onIdle(collector); }

void KafkaSink::onIdle(OutputCollector& collector) {
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
  if (!t.transactional || t.twoPhase) {
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
  t.commitTransaction(txid, "the batch fails (the job replays it on restart)");
}

void KafkaSink::recover(uint64_t lastCompleted) {
  Task& t = *task_;
  if (t.batchMode) throw std::logic_error(t.who() + ": recover() in micro-batch mode");
  if (!t.rk) t.create(true);  // fences a zombie of this task and reads its marker
  if (!t.transactional) {
    throw std::logic_error(t.who() + ": recover() after tuples arrived outside exactly-once");
  }
  t.twoPhase = true;
  t.open.clear();
  // The state is the last completed checkpoint's: nothing in it is newer than it.
  t.preCommitted.erase(t.preCommitted.upper_bound(lastCompleted), t.preCommitted.end());
  size_t before = t.preCommitted.size();
  t.dropCommitted();
  shared_->skipped.fetch_add(before - t.preCommitted.size());
  if (!t.preCommitted.empty()) {
    logInfo(t.who() + ": committing the records of checkpoint(s) " +
            std::to_string(t.preCommitted.begin()->first) + ".." +
            std::to_string(t.preCommitted.rbegin()->first) +
            ", pre-committed before the crash but not in Kafka");
  }
  commit(lastCompleted);
}

void KafkaSink::preCommit(uint64_t id) {
  Task& t = *task_;
  if (!t.twoPhase) throw std::logic_error(t.who() + ": preCommit() without recover()");
  if (t.open.empty()) return;
  auto& into = t.preCommitted[id];
  if (into.empty()) {
    into = std::move(t.open);
  } else {
    for (auto& r : t.open) into.push_back(std::move(r));
  }
  t.open.clear();
}

void KafkaSink::commit(uint64_t id) {
  Task& t = *task_;
  if (!t.twoPhase) throw std::logic_error(t.who() + ": commit() without recover()");
  t.dropCommitted();
  auto end = t.preCommitted.upper_bound(id);
  if (t.preCommitted.begin() == end) return;  // nothing pre-committed up to id
  if (shared_->o.onTransactionPoint) shared_->o.onTransactionPoint("begin", id);
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(t.rk)) {
    throw std::runtime_error(t.who() + ": begin_transaction failed: " + takeError(e));
  }
  t.inTxn = true;
  for (auto it = t.preCommitted.begin(); it != end; ++it) {
    for (const Record& r : it->second) t.send(r, nullptr);
  }
  t.commitTransaction(id, "the topology stops (the next run commits it on recovery)");
  t.preCommitted.erase(t.preCommitted.begin(), end);
}

std::optional<std::string> KafkaSink::preCommitState() {
  Task& t = *task_;
  if (!t.twoPhase) return std::nullopt;
  StateWriter w;
  w.header(kPreCommitMagic, 1);
  w.varint(t.preCommitted.size());
  for (const auto& [id, records] : t.preCommitted) {
    w.varint(id);
    w.varint(records.size());
    for (const Record& r : records) {
      w.str(r.topic);
      w.u8(static_cast<uint8_t>((r.hasKey ? 1 : 0) | (r.hasValue ? 2 : 0)));
      w.str(r.key);
      w.str(r.value);
      w.varint(r.headers.size());
      for (const auto& [name, v] : r.headers) {
        w.str(name);
        w.str(v);
      }
    }
  }
  return w.take();
}

void KafkaSink::restorePreCommitState(const std::string& state) {
  Task& t = *task_;
  StateReader in(state, t.who() + " pre-commit state");
  in.header(kPreCommitMagic, 1);
  std::map<uint64_t, std::vector<Record>> restored;
  for (uint64_t n = in.count("checkpoints", 2); n > 0; --n) {
    uint64_t id = in.varint("checkpoint id");
    auto& records = restored[id];
    for (uint64_t m = in.count("records", 4); m > 0; --m) {
      Record& r = records.emplace_back();
      r.topic = in.str("topic");
      uint8_t flags = in.u8("flags");
      if (flags > 3) in.fail("bad record flags " + std::to_string(flags));
      r.hasKey = flags & 1;
      r.hasValue = flags & 2;
      r.key = in.str("key");
      r.value = in.str("value");
      for (uint64_t h = in.count("headers", 2); h > 0; --h) {
        std::string name = in.str("header name");
        r.headers.emplace_back(std::move(name), in.str("header value"));
      }
    }
  }
  in.expectEnd();
  t.preCommitted = std::move(restored);
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
