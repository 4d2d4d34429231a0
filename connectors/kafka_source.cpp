#include "gale/connectors/kafka_source.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <mutex>
#include <regex>
#include <condition_variable>
#include <set>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "gale/connectors/json_line.h"
#include "gale/core/log.h"
#include "kafka_common.h"

namespace gale {

namespace {

constexpr int64_t kNoEnd = std::numeric_limits<int64_t>::max();

// A fetched record as librdkafka handed it over: the tuple is built from it when read() serves
// it, once, instead of being built into the buffer and copied out of it (a record's key, value,
// topic and headers were allocated twice). Holding the message keeps its fetch buffer; records
// leave the buffer in offset order at each commit, so only the oldest buffers stay pinned.
struct Fetched {
  struct Free {
    void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
  };
  std::unique_ptr<rd_kafka_message_t, Free> m;
  int64_t originNanos = 0;  // when the source took it from librdkafka
  int64_t offset() const { return m->offset; }
};

struct Part {
  std::string topic;
  int32_t id = 0;
  rd_kafka_queue_t* queue = nullptr;
  std::mutex m;
  std::deque<Fetched> buf;       // fetched records, in offset order
  int64_t base = 0;              // reads below this offset need a seek (committed or skipped)
  int64_t fetched = 0;           // one past the last offset fetched (or the EOF position)
  int64_t start = 0;             // where fetching starts at open()
  int64_t end = kNoEnd;          // endingOffsets
  int64_t committed = 0;         // the runtime's last commit()
  int64_t lostBelow = 0;         // offsets below are gone and were skipped (failOnDataLoss=false)
  std::atomic<int64_t> latest{0};  // the broker's end offset when last asked (unbounded partitions)
  bool paused = false;
  int wakeFd = -1;               // notifyOnRecords(): librdkafka writes here on new records
  std::string fatal;             // data loss under failOnDataLoss: every call throws this
};

}  // namespace

struct KafkaSource::Impl {
  Options o;
  std::string name;
  mutable std::mutex mutex;  // resolve, open, close
  mutable std::mutex statsMutex;
  bool resolved = false;
  std::atomic<bool> opened{false};
  std::atomic<bool> closed{false};
  rd_kafka_t* rk = nullptr;
  std::vector<std::unique_ptr<Part>> parts;
  std::atomic<size_t> partCount{0};
  const Clock* clock = &SystemClock::instance();
  KafkaOffsetSpec starting, ending;
  bool bounded = false;
  // resumePartitionOrder(): these are numbered first, in this order (a checkpoint's numbering).
  std::vector<std::pair<std::string, int32_t>> order;
  Stats stats;
  std::atomic<uint64_t> errors{0};

  // Asks the broker for every partition's end offset each latestOffsetsInterval (Spark's
  // latestOffsets per trigger), so available() never blocks on a broker round trip.
  std::thread latestThread;
  std::mutex latestMutex;
  std::condition_variable latestCv;
  bool latestStop = false;

  std::mutex commitMutex;
  std::map<int, int64_t> pendingCommits;  // gale partition -> offset not yet sent to the broker
  int64_t lastCommitNanos = 0;

  ~Impl() { teardownLocked(); }

  std::string where(const Part& p) const {
    return "kafka source '" + name + "': topic '" + p.topic + "' partition " +
           std::to_string(p.id);
  }

  static void onError(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    self->errors.fetch_add(1);
    std::string msg = std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) +
                      ": " + reason;
    {
      std::lock_guard lk(self->statsMutex);
      self->stats.lastError = msg;
    }
    logWarn("kafka source '" + self->name + "': " + msg);
  }

  // The partitions of the subscribed topics (or of the topics matching subscribePattern) in the
  // broker's metadata now. At the start a missing topic is an error; later (discovery) it is not.
  std::vector<std::pair<std::string, int32_t>> subscribedPartitions(rd_kafka_t* client, int timeout,
                                                                    bool atStart) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t e = rd_kafka_metadata(client, 1, nullptr, &md, timeout);
    if (e) {
      throw SourceError("kafka source '" + name + "': no metadata from " + o.bootstrapServers +
                        " within " + std::to_string(timeout) + " ms: " + rd_kafka_err2str(e));
    }
    std::map<std::string, int> counts;
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (md->topics[i].err) continue;
      counts[md->topics[i].topic] = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    std::vector<std::string> topics;
    if (!o.subscribePattern.empty()) {
      std::regex re(o.subscribePattern);
      for (auto& [t, n] : counts) {
        if (std::regex_match(t, re)) topics.push_back(t);
      }
      if (topics.empty() && atStart) {
        throw SourceError("kafka source '" + name + "': no topic matches subscribePattern '" +
                          o.subscribePattern + "'");
      }
    } else {
      topics = o.subscribe;
    }
    std::vector<std::pair<std::string, int32_t>> tps;
    for (const auto& t : topics) {
      auto it = counts.find(t);
      if (it == counts.end() || it->second < 1) {
        if (!atStart) continue;
        throw SourceError("kafka source '" + name + "': topic '" + t +
                          "' does not exist on " + o.bootstrapServers);
      }
      for (int32_t p = 0; p < it->second; ++p) tps.emplace_back(t, p);
    }
    return tps;
  }

  // Creates the consumer and looks up partitions and offsets. Caller holds `mutex`.
  void resolveLocked() {
    if (resolved) return;
    teardownLocked();  // what an earlier, failed attempt left
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::map<std::string, std::string> props = o.consumerProperties;
    props["bootstrap.servers"] = o.bootstrapServers;
    props["group.id"] = o.groupId.empty() ? "gale-" + name : o.groupId;
    props["enable.auto.commit"] = "false";
    props["enable.auto.offset.store"] = "false";
    props["auto.offset.reset"] = "error";
    props["enable.partition.eof"] = "true";
    if (!props.count("client.id")) props["client.id"] = "gale-source";
    setConf(conf, props, "kafka source '" + name + "'");
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_error_cb(conf, &Impl::onError);
    char err[512];
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
      rd_kafka_conf_destroy(conf);
      throw SourceError("kafka source '" + name + "': cannot create the consumer: " + err);
    }
    const int timeout = static_cast<int>(o.requestTimeout.count());

    // Partitions.
    std::vector<std::pair<std::string, int32_t>> tps;
    if (!o.assign.empty()) {
      tps = o.assign;
    } else {
      tps = subscribedPartitions(rk, timeout, /*atStart=*/true);
    }
    std::sort(tps.begin(), tps.end());
    tps.erase(std::unique(tps.begin(), tps.end()), tps.end());
    if (!order.empty()) tps = inResumedOrder(std::move(tps));

    // Where each partition starts: the group's committed offset, else startingOffsets.
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(tps.size());
    for (auto& [t, p] : tps) rd_kafka_topic_partition_list_add(list, t.c_str(), p);
    // Only a group the user named is read back: the default group id is shared by every job
    // over the same topics, and a fresh job must start at startingOffsets (as Spark's does).
    rd_kafka_resp_err_t ce = o.groupId.empty() ? RD_KAFKA_RESP_ERR__NOENT
                                               : rd_kafka_committed(rk, list, timeout);
    if (ce && ce != RD_KAFKA_RESP_ERR__NOENT) {
      logWarn("kafka source '" + name + "': cannot read the group's committed offsets (" +
              rd_kafka_err2str(ce) + "); starting from startingOffsets");
    }
    for (size_t i = 0; i < tps.size(); ++i) {
      auto part = std::make_unique<Part>();
      part->topic = tps[i].first;
      part->id = tps[i].second;
      int64_t low = 0, high = 0;
      rd_kafka_resp_err_t we = rd_kafka_query_watermark_offsets(
          rk, part->topic.c_str(), part->id, &low, &high, timeout);
      if (we) {
        throw SourceError(where(*part) + ": cannot read its offsets: " + rd_kafka_err2str(we));
      }
      int64_t committed = ce ? -1 : list->elems[i].offset;
      if (committed >= 0) {
        part->start = committed;
      } else if (!order.empty()) {
        // A run resumed from a checkpoint (resumePartitionOrder): a partition it holds an offset
        // of gets it through commit() before open(). One it has none of came after the
        // checkpoint (found while the last run ran, or since), and is read from its start, as
        // Spark reads new partitions: startingOffsets ("latest") would lose its records.
        part->start = low;
      } else {
        int64_t s = starting.offsetFor(part->topic, part->id, kOffsetLatest);
        part->start = s == kOffsetEarliest ? low : s == kOffsetLatest ? high : s;
      }
      if (bounded) {
        int64_t e = ending.offsetFor(part->topic, part->id, kOffsetLatest);
        part->end = e == kOffsetLatest ? high : e;
      }
      part->base = part->fetched = part->committed = part->start;
      part->latest = high;
      parts.push_back(std::move(part));
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (parts.empty()) throw SourceError("kafka source '" + name + "': no partitions to read");
    partCount = parts.size();
    resolved = true;
  }

  // `tps` (sorted) with the resumed order's partitions first, as they were numbered, and the
  // others (added since) after them.
  std::vector<std::pair<std::string, int32_t>> inResumedOrder(
      std::vector<std::pair<std::string, int32_t>> tps) {
    std::vector<std::pair<std::string, int32_t>> out;
    std::set<std::pair<std::string, int32_t>> taken;
    for (const auto& tp : order) {
      if (!std::binary_search(tps.begin(), tps.end(), tp)) {
        throw SourceError("kafka source '" + name + "': topic '" + tp.first + "' partition " +
                          std::to_string(tp.second) + " is in the checkpoint but no longer on " +
                          o.bootstrapServers + " (a topic deleted or no longer subscribed): "
                          "its offsets cannot be resumed; use a new checkpoint");
      }
      if (taken.insert(tp).second) out.push_back(tp);
    }
    for (const auto& tp : tps) {
      if (!taken.count(tp)) out.push_back(tp);
    }
    return out;
  }

  // A Part stays where it is once made (parts only grows, under `mutex`, by discovery).
  Part& part(int p) {
    std::lock_guard lk(mutex);
    resolveLocked();
    if (p < 0 || static_cast<size_t>(p) >= parts.size()) {
      throw std::out_of_range("kafka source '" + name + "': no partition " + std::to_string(p) +
                              " (it has " + std::to_string(parts.size()) + ")");
    }
    return *parts[p];
  }

  std::vector<Part*> allParts() {
    std::lock_guard lk(mutex);
    std::vector<Part*> out;
    for (auto& p : parts) out.push_back(p.get());
    return out;
  }

  // Partitions added to the subscribed topics (or new topics matching the pattern) while the job
  // runs: read from their earliest offset (as Spark and Flink do), numbered after the known ones
  // whatever their names (a partition that sorts before the known ones too: numbers never move
  // while the job runs). Every checkpoint that keys offsets by number records this numbering
  // (partitionIds()), and a restart hands it back (resumePartitionOrder), so each partition
  // resumes by topic and partition.
  void discoverPartitions(rd_kafka_t* reader) {
    std::vector<std::pair<std::string, int32_t>> now;
    try {
      now = subscribedPartitions(reader, static_cast<int>(o.requestTimeout.count()),
                                 /*atStart=*/false);
    } catch (const SourceError&) {
      return;  // the broker is away: librdkafka reports it; try again next time
    }
    std::set<std::pair<std::string, int32_t>> known;
    for (Part* p : allParts()) known.insert({p->topic, p->id});
    std::sort(now.begin(), now.end());
    for (const auto& tp : now) {
      if (known.count(tp)) continue;
      auto part = std::make_unique<Part>();
      part->topic = tp.first;
      part->id = tp.second;
      int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(reader, part->topic.c_str(), part->id, &low, &high,
                                           static_cast<int>(o.requestTimeout.count()))) {
        return;  // next time
      }
      part->start = part->base = part->fetched = part->committed = low;
      part->latest = high;
      part->queue = rd_kafka_queue_get_partition(rk, part->topic.c_str(), part->id);
      rd_kafka_queue_forward(part->queue, nullptr);
      rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(l, part->topic.c_str(), part->id)->offset = low;
      rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, l);
      rd_kafka_topic_partition_list_destroy(l);
      if (e) {
        logWarn(where(*part) + ": discovered, but assign failed: " + rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_queue_destroy(part->queue);
        return;
      }
      logInfo(where(*part) + ": discovered; reading it from offset " + std::to_string(low));
      {
        std::lock_guard lk(mutex);
        parts.push_back(std::move(part));
        partCount = parts.size();
      }
      wakeAllReaders();
    }
  }

  // Restarts fetching of one partition at `offset`. An unassign + assign of that partition
  // rather than a seek: a seek is refused for a partition whose fetcher stopped on an error
  // (an out-of-range offset under auto.offset.reset=error).
  void seekLocked(Part& p, int64_t offset) {
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p.topic.c_str(), p.id)->offset = offset;
    std::string msg;
    rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, l);
    if (!e) e = rd_kafka_incremental_assign(rk, l);
    if (e) {
      msg = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_forward(p.queue, nullptr);  // assignment may have re-forwarded it
    wireWakeLocked(p);
    p.paused = false;
    if (!msg.empty()) throw SourceError(where(p) + ": cannot seek to offset " +
                                        std::to_string(offset) + ": " + msg);
    p.buf.clear();
    p.base = p.fetched = offset;
    std::lock_guard lk(statsMutex);
    ++stats.seeks;
  }

  void setPausedLocked(Part& p, bool pause) {
    if (p.paused == pause) return;
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p.topic.c_str(), p.id);
    if (pause) {
      rd_kafka_pause_partitions(rk, l);
      std::lock_guard lk(statsMutex);
      ++stats.pauses;
    } else {
      rd_kafka_resume_partitions(rk, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
    p.paused = pause;
  }

  // Offsets at `offset` are gone: the broker's log starts later (retention) or ends earlier (a
  // recreated topic).
  void dataLossLocked(Part& p, int64_t offset, const std::string& why) {
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t we = rd_kafka_query_watermark_offsets(
        rk, p.topic.c_str(), p.id, &low, &high, static_cast<int>(o.requestTimeout.count()));
    if (we) {
      // Cannot tell yet (the broker may be down): retry from the same offset.
      logWarn(where(p) + ": offset " + std::to_string(offset) + " is out of range (" + why +
              ") and the partition's offsets cannot be read: " + rd_kafka_err2str(we));
      seekLocked(p, offset);
      return;
    }
    std::string range;
    int64_t resumeAt = offset;
    uint64_t lost = 0;
    if (offset < low) {
      range = "offsets [" + std::to_string(offset) + ", " + std::to_string(low) +
              ") are gone (the log now starts at " + std::to_string(low) +
              ": deleted by retention, or the topic was recreated)";
      resumeAt = low;
      lost = static_cast<uint64_t>(low - offset);
    } else {
      range = "offset " + std::to_string(offset) + " is past the end of the log (" +
              std::to_string(high) + "): the topic was recreated or truncated, offsets [" +
              std::to_string(high) + ", " + std::to_string(offset) + ") of the new log are skipped";
      resumeAt = high;
    }
    if (o.failOnDataLoss) {
      p.fatal = where(p) + ": data loss: " + range +
                ". failOnDataLoss is true, so the job stops; set it to false to skip lost "
                "offsets, or start from a new checkpoint / startingOffsets";
      logError(p.fatal);
      return;
    }
    logWarn(where(p) + ": data loss: " + range + "; skipped (failOnDataLoss is false)");
    {
      std::lock_guard lk(statsMutex);
      stats.lostRecords += lost;
    }
    seekLocked(p, resumeAt);
    // Past the end of a recreated log: the new log's records below `offset` are skipped (offsets
    // never go backwards for the runtimes).
    if (offset > resumeAt) p.base = p.fetched = offset;
    p.lostBelow = std::max(p.lostBelow, p.fetched);
  }

  // Takes `m` (destroys it unless it is a record kept in the buffer).
  void handleLocked(Part& p, rd_kafka_message_t* m, int64_t nowNanos) {
    std::unique_ptr<rd_kafka_message_t, Fetched::Free> owned(m);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      p.fetched = std::max(p.fetched, m->offset);
      return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
      int64_t off = m->offset >= 0 ? m->offset : p.fetched;
      if (off < p.fetched) return;  // a second report of a loss already handled
      dataLossLocked(p, off, rd_kafka_message_errstr(m));
      return;
    }
    if (m->err) {
      errors.fetch_add(1);
      std::string msg = where(p) + ": " + rd_kafka_err2name(m->err) + ": " +
                        rd_kafka_message_errstr(m);
      {
        std::lock_guard lk(statsMutex);
        stats.lastError = msg;
      }
      logWarn(msg);
      return;
    }
    if (m->offset < p.fetched) return;  // fetched before a seek; already served or skipped
    p.fetched = m->offset + 1;
    p.buf.push_back(Fetched{std::move(owned), nowNanos});
    std::lock_guard lk(statsMutex);
    ++stats.records;
  }

  // The tuple of a fetched record (Spark's fields; KafkaSource::fields()).
  static SourceRecord recordOf(const Part& p, const Fetched& f) {
    const rd_kafka_message_t* m = f.m.get();
    SourceRecord r;
    r.offset = m->offset;
    r.originNanos = f.originNanos;
    r.values.reserve(8);
    r.values.emplace_back(m->key ? Value(Bytes{std::string(static_cast<const char*>(m->key),
                                                           m->key_len)})
                                 : Value());
    r.values.emplace_back(m->payload ? Value(Bytes{std::string(
                                           static_cast<const char*>(m->payload), m->len)})
                                     : Value());
    r.values.emplace_back(p.topic);
    r.values.emplace_back(int64_t{p.id});
    r.values.emplace_back(int64_t{m->offset});
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    r.values.emplace_back(ts >= 0 ? Value(Timestamp{ts * 1000}) : Value());
    r.values.emplace_back(int64_t{tt == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? 0
                                  : tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? 1
                                                                             : -1});
    rd_kafka_headers_t* hdrs = nullptr;
    // rd_kafka_message_headers parses the headers into the message on the first call: the
    // message is the buffer's, and only its reader (under p.m) calls it.
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
      std::string json = "[";
      const char* hn;
      const void* hv;
      size_t hs;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &hn, &hv, &hs) == 0; ++i) {
        if (i) json += ',';
        json += "{\"key\":";
        appendJsonValue(json, Value(std::string(hn)));
        json += ",\"value\":";
        appendJsonValue(json, hv ? Value(std::string(static_cast<const char*>(hv), hs)) : Value());
        json += '}';
      }
      json += ']';
      r.values.emplace_back(std::move(json));
    } else {
      r.values.emplace_back(Value());
    }
    return r;
  }

  // Moves what librdkafka fetched into the buffer, waiting up to `timeoutMs` for the first
  // message. That wait is a single-message consume: a batch consume with a timeout waits until
  // its batch is full or the time is up, so records that arrived early would sit out the timeout.
  void drainLocked(Part& p, int timeoutMs = 0) {
    if (!opened || closed) return;
    if (timeoutMs > 0) {
      rd_kafka_message_t* first = rd_kafka_consume_queue(p.queue, timeoutMs);
      if (!first) return;
      if (p.fatal.empty()) handleLocked(p, first, clock->monoNanos());
      else rd_kafka_message_destroy(first);
    }
    rd_kafka_message_t* msgs[256];
    while (true) {
      ssize_t n = rd_kafka_consume_batch_queue(p.queue, 0, msgs, 256);
      if (n <= 0) break;
      const int64_t now = clock->monoNanos();  // one read per batch: they came in one fetch
      for (ssize_t i = 0; i < n; ++i) {
        if (p.fatal.empty()) handleLocked(p, msgs[i], now);
        else rd_kafka_message_destroy(msgs[i]);
      }
      if (n < 256) break;
    }
    if (p.buf.size() >= o.maxBufferedRecords) setPausedLocked(p, true);
  }

  // `limit(p)` (an end offset) for partition `partition` after moving what librdkafka fetched
  // into its buffer, capped by maxOffsetsPerTrigger and never below what was committed.
  template <class F>
  int64_t afterDrain(int partition, F&& limit) {
    Part& p = part(partition);
    if (rk) rd_kafka_poll(rk, 0);  // error callbacks
    flushCommits(false);
    std::lock_guard lk(p.m);
    checkFatal(p);
    drainLocked(p);
    checkFatal(p);
    int64_t a = limit(p);
    if (o.maxOffsetsPerTrigger > 0) a = std::min(a, cap(p));
    return std::max(a, p.base);
  }

  // maxOffsetsPerTrigger: how far past the last commit a partition may be read.
  int64_t cap(const Part& p) const {
    int64_t share =
        std::max<int64_t>(1, o.maxOffsetsPerTrigger / static_cast<int64_t>(partCount.load()));
    return p.committed > kNoEnd - share ? kNoEnd : p.committed + share;
  }

  // Releases the consumer (a closed source can be opened again: it looks everything up anew).
  void teardownLocked() {
    stopLatestThread();
    for (auto& p : parts) destroyQueueLocked(*p);
    if (rk) {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
      rk = nullptr;
    }
    parts.clear();
    resolved = false;
    opened = false;
  }

  // The client of the lookups of a running source (end offsets, discovery), apart from the
  // consumer that fetches (as Spark's offset reader is): on the consumer's own connections these
  // requests held its fetches back (continuous-mode p99 at 10 K records/s: ~50 ms, 1.5-3 ms with
  // a client of their own).
  rd_kafka_t* newOffsetReader() {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    std::map<std::string, std::string> props = o.consumerProperties;  // security, isolation
    props["bootstrap.servers"] = o.bootstrapServers;
    std::string id = props.count("client.id") ? props["client.id"] : "gale-source";
    props["client.id"] = id + "-offsets";
    setConf(conf, props, "kafka source '" + name + "'");
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_error_cb(conf, &Impl::onError);
    char err[512];
    rd_kafka_t* reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!reader) {
      rd_kafka_conf_destroy(conf);
      throw SourceError("kafka source '" + name + "': cannot create the offset reader: " + err);
    }
    return reader;
  }

  void startLatestThread() {
    if (bounded) return;  // a bounded partition's end is fixed at the first lookup
    latestStop = false;
    rd_kafka_t* reader = newOffsetReader();
    latestThread = std::thread([this, reader] {
      struct Closer {
        rd_kafka_t* c;
        ~Closer() { rd_kafka_destroy(c); }
      } closer{reader};
      std::unique_lock lk(latestMutex);
      int64_t lastDiscovery = SystemClock::steadyNanos();
      while (!latestCv.wait_for(lk, o.latestOffsetsInterval, [this] { return latestStop; })) {
        lk.unlock();
        rd_kafka_poll(reader, 0);  // error callbacks
        if (o.assign.empty() && o.partitionDiscoveryInterval.count() > 0 &&
            SystemClock::steadyNanos() - lastDiscovery >=
                o.partitionDiscoveryInterval.count() * 1'000'000) {
          discoverPartitions(reader);
          lastDiscovery = SystemClock::steadyNanos();
        }
        for (Part* p : allParts()) {
          int64_t low = 0, high = 0;
          // On an error (broker down) the last answer stands; librdkafka reports the outage
          // through the error callback.
          if (!rd_kafka_query_watermark_offsets(reader, p->topic.c_str(), p->id, &low, &high,
                                                static_cast<int>(o.requestTimeout.count()))) {
            p->latest = high;
          }
        }
        lk.lock();
      }
    });
  }

  void stopLatestThread() {
    if (!latestThread.joinable()) return;
    {
      std::lock_guard lk(latestMutex);
      latestStop = true;
    }
    latestCv.notify_all();
    latestThread.join();
  }

  void checkFatal(const Part& p) {
    if (!p.fatal.empty()) throw SourceFatalError(p.fatal);
  }

  // notifyOnRecords(): librdkafka writes an eventfd increment to p.wakeFd when a message (a
  // record, EOF, an error) is put on the partition's empty queue; drainLocked() empties it, so
  // the next message writes again. Under p.m; the write happens under the queue's lock, so once
  // this returns with -1 nothing more is written to the old fd.
  static void wireWakeLocked(Part& p) {
    static const uint64_t kOne = 1;
    if (!p.queue) return;
    if (p.wakeFd >= 0) {
      rd_kafka_queue_io_event_enable(p.queue, p.wakeFd, &kOne, sizeof kOne);
    } else {
      rd_kafka_queue_io_event_enable(p.queue, -1, nullptr, 0);
    }
  }

  // A partition was discovered: every registered reader looks at partitions() again now.
  void wakeAllReaders() {
    static const uint64_t kOne = 1;
    std::set<int> woken;
    for (Part* p : allParts()) {
      std::lock_guard lk(p->m);  // notifyOnRecords(-1) cannot close the fd while we write
      if (p->wakeFd >= 0 && woken.insert(p->wakeFd).second) {
        [[maybe_unused]] ssize_t n = ::write(p->wakeFd, &kOne, sizeof kOne);
      }
    }
  }

  // Before a queue goes (close, teardown): nothing may be written to a reader's fd after it.
  // The held messages go first: a consumer must not be destroyed while its messages are held.
  static void destroyQueueLocked(Part& p) {
    p.buf.clear();
    if (!p.queue) return;
    if (p.wakeFd >= 0) rd_kafka_queue_io_event_enable(p.queue, -1, nullptr, 0);
    rd_kafka_queue_destroy(p.queue);
    p.queue = nullptr;
    p.wakeFd = -1;
  }

  // Sends the runtime's commits to the broker (group offsets, for lag monitoring), at most every
  // commitInterval unless `force`.
  void flushCommits(bool force) {
    std::map<int, int64_t> todo;
    {
      std::lock_guard lk(commitMutex);
      int64_t now = SystemClock::steadyNanos();
      if (pendingCommits.empty()) return;
      if (!force && now - lastCommitNanos < o.commitInterval.count() * 1'000'000) return;
      lastCommitNanos = now;
      todo.swap(pendingCommits);
    }
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(todo.size());
    std::vector<Part*> all = allParts();
    for (auto& [p, off] : todo) {
      rd_kafka_topic_partition_list_add(l, all[p]->topic.c_str(), all[p]->id)->offset = off;
    }
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, force ? 0 : 1);
    if (e && force) {
      logWarn("kafka source '" + name + "': committing group offsets failed: " +
              rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
  }
};

Fields KafkaSource::fields() {
  return Fields{FieldSpec{"key", Type::Bytes},         FieldSpec{"value", Type::Bytes},
                FieldSpec{"topic", Type::String},      FieldSpec{"partition", Type::Int64},
                FieldSpec{"offset", Type::Int64},      FieldSpec{"timestamp", Type::Timestamp},
                FieldSpec{"timestampType", Type::Int64}, FieldSpec{"headers", Type::String}};
}

KafkaSource::KafkaSource(Options options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.o = std::move(options);
  const Options& o = s.o;
  std::string topics;
  for (const auto& t : o.subscribe) topics += (topics.empty() ? "" : ",") + t;
  if (!o.subscribePattern.empty()) topics = o.subscribePattern;
  for (const auto& [t, p] : o.assign) {
    topics += (topics.empty() ? "" : ",") + t + "-" + std::to_string(p);
  }
  s.name = o.name.empty() ? "kafka:" + topics : o.name;
  const std::string who = "KafkaSource '" + s.name + "': ";
  if (o.bootstrapServers.empty()) {
    throw std::invalid_argument(who + "bootstrapServers is empty (e.g. \"localhost:9092\")");
  }
  int ways = !o.subscribe.empty() + !o.subscribePattern.empty() + !o.assign.empty();
  if (ways != 1) {
    throw std::invalid_argument(who + "give exactly one of subscribe, subscribePattern, assign (got " +
                                std::to_string(ways) + ")");
  }
  if (!o.subscribePattern.empty()) {
    try {
      std::regex re(o.subscribePattern);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument(who + "subscribePattern '" + o.subscribePattern +
                                  "' is not a valid regex: " + e.what());
    }
  }
  if (o.maxOffsetsPerTrigger < 0) {
    throw std::invalid_argument(who + "maxOffsetsPerTrigger must be >= 0 (0 = no limit)");
  }
  if (o.maxBufferedRecords < 1) throw std::invalid_argument(who + "maxBufferedRecords must be >= 1");
  if (o.latestOffsetsInterval.count() <= 0 || o.partitionDiscoveryInterval.count() < 0) {
    throw std::invalid_argument(who + "latestOffsetsInterval must be > 0 and "
                                      "partitionDiscoveryInterval >= 0 (0 = no discovery)");
  }
  s.starting = parseKafkaOffsets(o.startingOffsets, "startingOffsets", who);
  if (!o.endingOffsets.empty()) {
    s.ending = parseKafkaOffsets(o.endingOffsets, "endingOffsets", who);
    if (s.ending.all == kOffsetEarliest) {
      throw std::invalid_argument(who + "endingOffsets may not be \"earliest\"");
    }
    s.bounded = true;
  }
}

KafkaSource::~KafkaSource() { close(); }

std::string KafkaSource::name() const { return impl_->name; }

void KafkaSource::declareOutputFields(OutputFieldsDeclarer& declarer) const {
  declarer.declare(fields());
}

int KafkaSource::partitions() const {
  std::lock_guard lk(impl_->mutex);
  impl_->resolveLocked();
  return static_cast<int>(impl_->parts.size());
}

std::pair<std::string, int32_t> KafkaSource::topicPartition(int partition) const {
  Part& p = impl_->part(partition);
  return {p.topic, p.id};
}

int64_t KafkaSource::initialOffset(int partition) {
  Part& p = impl_->part(partition);
  std::lock_guard lk(p.m);
  return p.start;
}

void KafkaSource::open(const Clock& clock) {
  Impl& s = *impl_;
  std::lock_guard lk(s.mutex);
  if (s.opened) return;
  s.resolveLocked();
  s.clock = &clock;
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(s.parts.size());
  for (auto& p : s.parts) {
    std::lock_guard pl(p->m);
    // Each partition gets its own queue (not forwarded to the consumer queue), so partitions are
    // read independently from the runtime's threads.
    p->queue = rd_kafka_queue_get_partition(s.rk, p->topic.c_str(), p->id);
    rd_kafka_queue_forward(p->queue, nullptr);
    rd_kafka_topic_partition_list_add(l, p->topic.c_str(), p->id)->offset = p->start;
    p->base = p->fetched = p->start;
  }
  // Incremental assignment, so one partition can later be re-assigned alone (seekLocked).
  rd_kafka_error_t* e = rd_kafka_incremental_assign(s.rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) {
    std::string msg = rd_kafka_error_string(e);
    rd_kafka_error_destroy(e);
    throw SourceError("kafka source '" + s.name + "': assign failed: " + msg);
  }
  s.opened = true;
  s.startLatestThread();
}

void KafkaSource::close() {
  Impl& s = *impl_;
  if (!s.opened) return;
  s.flushCommits(true);
  s.stopLatestThread();
  std::lock_guard lk(s.mutex);
  s.closed = true;
  for (auto& p : s.parts) p->m.lock();  // no reader is inside the consumer while it goes
  for (auto& p : s.parts) Impl::destroyQueueLocked(*p);
  if (s.rk) {
    rd_kafka_consumer_close(s.rk);
    rd_kafka_destroy(s.rk);
    s.rk = nullptr;
  }
  for (auto& p : s.parts) p->m.unlock();
  // A later open() (another run with this object) looks everything up anew.
  s.parts.clear();
  s.resolved = false;
  s.opened = false;
  s.closed = false;
}

// Every offset below the broker's end offset exists, so it is available at once and read()
// waits for the fetch: a bounded partition's end (looked up at the start), an unbounded one's as
// last asked (at the start, then every latestOffsetsInterval). Reporting only what the fetch has
// buffered would let the first batches take one partition whose fetch answered first: its event
// time then runs ahead of the others' by more than the watermark delay, and their records are
// dropped as late (which records survive would depend on fetch timing).
int64_t KafkaSource::available(int partition) {
  Impl& s = *impl_;
  return s.afterDrain(partition, [&](Part& p) {
    return s.bounded ? p.end : std::max(p.fetched, p.latest.load());
  });
}

int64_t KafkaSource::ready(int partition) {
  return impl_->afterDrain(partition, [](Part& p) { return std::min(p.fetched, p.end); });
}

bool KafkaSource::notifyOnRecords(int partition, int fd) {
  Impl& s = *impl_;
  if (!s.opened) return false;  // before part(), which would look a closed source up again
  Part& p = s.part(partition);
  std::lock_guard lk(p.m);
  if (!s.opened || !p.queue) return false;
  p.wakeFd = fd;
  Impl::wireWakeLocked(p);
  return true;
}

size_t KafkaSource::read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) {
  Impl& s = *impl_;
  Part& p = s.part(partition);
  if (!s.opened) {
    throw SourceError("kafka source '" + s.name + "': read() before open(); the runtime must "
                      "open the source first");
  }
  std::lock_guard lk(p.m);
  s.checkFatal(p);
  s.drainLocked(p);
  s.checkFatal(p);
  to = std::min(to, p.end);
  from = std::max(from, p.lostBelow);  // known lost: nothing to fetch
  if (to <= from) return 0;
  bool refetch = from < p.base || from > p.fetched;
  if (refetch) {
    // Outside what is buffered (a replay of committed offsets, a jump ahead): fetch again, and
    // wait for it, since the caller knows these offsets exist.
    s.setPausedLocked(p, false);
    s.seekLocked(p, from);
    int64_t deadline = SystemClock::steadyNanos() + s.o.requestTimeout.count() * 1'000'000;
    while (p.fetched < to && p.fatal.empty()) {
      if (SystemClock::steadyNanos() > deadline) {
        throw SourceError(s.where(p) + ": offsets [" + std::to_string(from) + ", " +
                          std::to_string(to) + ") could not be fetched within " +
                          std::to_string(s.o.requestTimeout.count()) + " ms");
      }
      s.drainLocked(p, 10);
      if (p.paused) s.setPausedLocked(p, false);
    }
    s.checkFatal(p);
  } else if (p.fetched < to) {
    // Below the partition's end offset but not fetched yet (available() reports the end): wait.
    int64_t deadline = SystemClock::steadyNanos() + s.o.requestTimeout.count() * 1'000'000;
    while (p.fetched < to && p.fatal.empty()) {
      if (SystemClock::steadyNanos() > deadline) {
        throw SourceError(s.where(p) + ": offsets [" + std::to_string(p.fetched) + ", " +
                          std::to_string(to) + ") could not be fetched within " +
                          std::to_string(s.o.requestTimeout.count()) + " ms");
      }
      if (p.paused) s.setPausedLocked(p, false);
      s.drainLocked(p, 10);
    }
    s.checkFatal(p);
  }
  auto it = std::lower_bound(p.buf.begin(), p.buf.end(), from,
                             [](const Fetched& f, int64_t off) { return f.offset() < off; });
  size_t n = 0;
  for (; it != p.buf.end() && it->offset() < to; ++it, ++n) out.push_back(Impl::recordOf(p, *it));
  return n;
}

void KafkaSource::commit(int partition, int64_t offset) {
  Impl& s = *impl_;
  Part& p = s.part(partition);
  {
    std::lock_guard lk(p.m);
    if (!s.opened) {
      // Before open(): the runtime says where it resumes (a micro-batch checkpoint).
      p.start = p.base = p.fetched = p.committed = offset;
      return;
    }
    p.committed = std::max(p.committed, offset);
    while (!p.buf.empty() && p.buf.front().offset() < offset) p.buf.pop_front();
    p.base = std::max(p.base, offset);
    if (p.paused && p.buf.size() < s.o.maxBufferedRecords / 2 + 1) s.setPausedLocked(p, false);
  }
  {
    std::lock_guard lk(s.commitMutex);
    s.pendingCommits[partition] = offset;
  }
  s.flushCommits(false);
}

std::vector<std::string> KafkaSource::partitionIds() const {
  std::lock_guard lk(impl_->mutex);
  impl_->resolveLocked();
  std::vector<std::string> ids;
  for (const auto& p : impl_->parts) ids.push_back(p->topic + "/" + std::to_string(p->id));
  return ids;
}

void KafkaSource::resumePartitionOrder(const std::vector<std::string>& ids) {
  Impl& s = *impl_;
  std::vector<std::pair<std::string, int32_t>> order;
  for (const auto& id : ids) {
    size_t slash = id.rfind('/');
    int32_t partition = -1;
    try {
      if (slash != std::string::npos) partition = std::stoi(id.substr(slash + 1));
    } catch (const std::exception&) {
    }
    if (slash == 0 || partition < 0) {
      throw SourceError("kafka source '" + s.name + "': '" + id + "' in the checkpoint's "
                        "partition order is not topic/partition");
    }
    order.emplace_back(id.substr(0, slash), partition);
  }
  std::lock_guard lk(s.mutex);
  if (s.opened) {
    throw std::logic_error("kafka source '" + s.name + "': resumePartitionOrder after open()");
  }
  s.order = std::move(order);
  s.teardownLocked();  // looked up again, in this order, when next asked
}

bool KafkaSource::finished() const {
  Impl& s = *impl_;
  if (!s.bounded || !s.opened) return false;
  for (Part* p : s.allParts()) {
    std::lock_guard lk(p->m);
    s.drainLocked(*p);
    if (!p->fatal.empty()) return false;
    if (std::min(p->fetched, p->end) < p->end) return false;
    if (s.o.maxOffsetsPerTrigger > 0 && s.cap(*p) < p->end) return false;  // not all available yet
  }
  return true;
}

KafkaSource::Stats KafkaSource::stats() const {
  std::lock_guard lk(impl_->statsMutex);
  Stats st = impl_->stats;
  st.errors += impl_->errors.load();
  return st;
}

}  // namespace gale
