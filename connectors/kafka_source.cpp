// KafkaSource, fetching: each partition's queue and buffer, the tuples of its records, the wake fd,
// seeks, pauses, data loss and commits. Which partitions there are and where their offsets start
// and end is kafka_source_partitions.cpp; the state both share, kafka_source_impl.h.
#include "gale/connectors/kafka_source.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <regex>
#include <set>
#include <stdexcept>

#include <unistd.h>

#include "gale/connectors/json_line.h"
#include "kafka_source_impl.h"

namespace gale {

using kafka_source_detail::Fetched;
using kafka_source_detail::Part;

void KafkaSource::Impl::seekLocked(Part& p, int64_t offset) {
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

void KafkaSource::Impl::setPausedLocked(Part& p, bool pause) {
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

void KafkaSource::Impl::dataLossLocked(Part& p, int64_t offset, const std::string& why) {
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

bool KafkaSource::Impl::handleLocked(Part& p, Owned owned, int64_t nowNanos) {
  rd_kafka_message_t* m = owned.get();
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    p.fetched = std::max(p.fetched, m->offset);
    return false;
  }
  if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
      m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
    int64_t off = m->offset >= 0 ? m->offset : p.fetched;
    if (off < p.fetched) return false;  // a second report of a loss already handled
    dataLossLocked(p, off, rd_kafka_message_errstr(m));
    return false;
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
    return false;
  }
  if (m->offset < p.fetched) return false;  // fetched before a seek; already served or skipped
  p.fetched = m->offset + 1;
  p.buf.push_back(Fetched{std::move(owned), nowNanos});
  return true;
}

SourceRecord KafkaSource::Impl::recordOf(const Part& p, const Fetched& f) {
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
    // Written straight into the one string: no name or value copied into a Value first.
    std::string json;
    json.reserve(64);
    json += '[';
    const char* hn;
    const void* hv;
    size_t hs;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &hn, &hv, &hs) == 0; ++i) {
      if (i) json += ',';
      json += "{\"key\":";
      appendJsonString(json, hn);
      json += ",\"value\":";
      if (hv) {
        appendJsonString(json, std::string_view(static_cast<const char*>(hv), hs));
      } else {
        json += "null";
      }
      json += '}';
    }
    json += ']';
    r.values.emplace_back(std::move(json));
  } else {
    r.values.emplace_back(Value());
  }
  return r;
}

void KafkaSource::Impl::drainLocked(Part& p, int timeoutMs) {
  if (!opened || closed) return;
  // Counted once per drain (a lock per record cost the reading threads), on every way out: a
  // handler that throws midway leaves the records kept before it in the buffer, to be served.
  uint64_t kept = 0;
  struct CountKept {
    Impl& impl;
    const uint64_t& kept;
    ~CountKept() {
      if (!kept) return;
      std::lock_guard lk(impl.statsMutex);
      impl.stats.records += kept;
    }
  } countKept{*this, kept};
  if (timeoutMs > 0) {
    Owned first(rd_kafka_consume_queue(p.queue, timeoutMs));
    if (!first) return;
    if (p.fatal.empty()) kept += handleLocked(p, std::move(first), clock->monoNanos());
  }
  rd_kafka_message_t* msgs[256];
  while (true) {
    ssize_t n = rd_kafka_consume_batch_queue(p.queue, 0, msgs, 256);
    if (n <= 0) break;
    // Owned before anything can throw (the clock, a handler, a push_back's allocation): the
    // rest of the batch is freed on the way out instead of leaking.
    std::array<Owned, 256> owned;
    for (ssize_t i = 0; i < n; ++i) owned[static_cast<size_t>(i)].reset(msgs[i]);
    const int64_t now = clock->monoNanos();  // one read per batch: they came in one fetch
    for (ssize_t i = 0; i < n; ++i)
      if (p.fatal.empty()) kept += handleLocked(p, std::move(owned[static_cast<size_t>(i)]), now);
    if (n < 256) break;
  }
  if (p.buf.size() >= o.maxBufferedRecords) setPausedLocked(p, true);
}

template <class F>
int64_t KafkaSource::Impl::afterDrain(int partition, F&& limit) {
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

void KafkaSource::Impl::teardownLocked() {
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

void KafkaSource::Impl::wireWakeLocked(Part& p) {
  static const uint64_t kOne = 1;
  if (!p.queue) return;
  if (p.wakeFd >= 0) {
    rd_kafka_queue_io_event_enable(p.queue, p.wakeFd, &kOne, sizeof kOne);
  } else {
    rd_kafka_queue_io_event_enable(p.queue, -1, nullptr, 0);
  }
}

void KafkaSource::Impl::wakeAllReaders() {
  static const uint64_t kOne = 1;
  std::set<int> woken;
  for (Part* p : allParts()) {
    std::lock_guard lk(p->m);  // notifyOnRecords(-1) cannot close the fd while we write
    if (p->wakeFd >= 0 && woken.insert(p->wakeFd).second) {
      [[maybe_unused]] ssize_t n = ::write(p->wakeFd, &kOne, sizeof kOne);
    }
  }
}

void KafkaSource::Impl::destroyQueueLocked(Part& p) {
  p.buf.clear();
  if (!p.queue) return;
  if (p.wakeFd >= 0) rd_kafka_queue_io_event_enable(p.queue, -1, nullptr, 0);
  rd_kafka_queue_destroy(p.queue);
  p.queue = nullptr;
  p.wakeFd = -1;
}

void KafkaSource::Impl::flushCommits(bool force) {
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
