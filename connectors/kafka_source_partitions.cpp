// KafkaSource: which partitions there are and where their offsets start and end — the
// subscribed topics' metadata, startingOffsets / endingOffsets and the group's committed offsets,
// a checkpoint's partition numbering, partitions discovered while the job runs, and the end
// offsets asked for every latestOffsetsInterval on a client of their own. Fetching is
// kafka_source.cpp; the state both share, kafka_source_impl.h.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <regex>
#include <set>
#include <stdexcept>

#include "gale/connectors/kafka_source.h"
#include "gale/core/thread_name.h"
#include "kafka_source_impl.h"

namespace gale {

using kafka_source_detail::Part;

std::vector<std::pair<std::string, int32_t>> KafkaSource::Impl::subscribedPartitions(
    rd_kafka_t* client, int timeout, bool atStart) {
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

void KafkaSource::Impl::resolveLocked() {
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

std::vector<std::pair<std::string, int32_t>> KafkaSource::Impl::inResumedOrder(
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

void KafkaSource::Impl::discoverPartitions(rd_kafka_t* reader) {
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

rd_kafka_t* KafkaSource::Impl::newOffsetReader() {
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

void KafkaSource::Impl::startLatestThread() {
  if (bounded) return;  // a bounded partition's end is fixed at the first lookup
  latestStop = false;
  rd_kafka_t* reader = newOffsetReader();
  latestThread = std::thread([this, reader] {
    nameThisThread("gale-kafka-ends");
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

void KafkaSource::Impl::stopLatestThread() {
  if (!latestThread.joinable()) return;
  {
    std::lock_guard lk(latestMutex);
    latestStop = true;
  }
  latestCv.notify_all();
  latestThread.join();
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

}  // namespace gale
