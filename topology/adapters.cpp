#include "gale/topology/adapters.h"

#include <stdexcept>

#include <sys/eventfd.h>
#include <unistd.h>

#include "gale/core/log.h"
#include "gale/core/partition_order.h"
#include "private/anchored_emitter.h"

namespace gale {

// ---------------------------------------------------------------- OperatorBolt

namespace {
// An operator's Emitter outside an input (a watermark, batch end, end of input, tick): its
// outputs have no input to be anchored to.
class UnanchoredEmitter final : public Emitter {
 public:
  explicit UnanchoredEmitter(OutputCollector& out) : out_(out) {}
  void emit(std::string_view stream, Values values) override {
    out_.emit(stream, std::move(values));
  }
  void emitBorrowed(std::string_view stream, Values& values) override {
    out_.emitBorrowed(stream, values);
  }

 private:
  OutputCollector& out_;
};
}  // namespace

OperatorBolt::OperatorBolt(std::shared_ptr<const Operator> prototype)
    : prototype_(std::move(prototype)) {
  if (!prototype_) throw std::invalid_argument("OperatorBolt needs an operator, got null");
}

void OperatorBolt::declareOutputFields(OutputFieldsDeclarer& d) const {
  prototype_->declareOutputFields(d);
}

std::unique_ptr<Bolt> OperatorBolt::clone() const {
  return std::make_unique<OperatorBolt>(prototype_);
}

void OperatorBolt::prepare(const TopologyContext& context, OutputCollector&) {
  op_ = prototype_->clone();
  op_->open(context.operatorContext(context.clock));
}

void OperatorBolt::execute(const Tuple& input, OutputCollector& out) {
  runOperator(*op_, input, out);
}

void OperatorBolt::onWatermark(Timestamp wm, OutputCollector& out) {
  UnanchoredEmitter e(out);
  op_->onWatermark(wm, e);
}

void OperatorBolt::onBatchBegin(uint64_t txid, OutputCollector&) { op_->onBatchBegin(txid); }

void OperatorBolt::onBatchEnd(uint64_t txid, OutputCollector& out) {
  UnanchoredEmitter e(out);
  op_->onBatchEnd(txid, e);
}

void OperatorBolt::onEndOfStream(OutputCollector& out) {
  UnanchoredEmitter e(out);
  op_->onEndOfInput(e);
}

void OperatorBolt::onTick(Timestamp now, OutputCollector& out) {
  UnanchoredEmitter e(out);
  op_->onProcessingTime(now, e);
}

// ---------------------------------------------------------------- SourceSpout

SourceSpout::SourceSpout(SourcePtr source, std::optional<WatermarkSpec> watermark,
                         size_t readChunk)
    : shared_(std::make_shared<Shared>()), watermark_(std::move(watermark)), readChunk_(readChunk) {
  if (!source) throw std::invalid_argument("SourceSpout needs a source, got null");
  if (readChunk_ == 0) readChunk_ = 1;
  if (watermark_ && watermark_->idleTimeout < Duration::zero())
    throw std::invalid_argument("WatermarkSpec::idleTimeout must be >= 0 (0: no idleness)");
  shared_->source = std::move(source);
}

void SourceSpout::declareOutputFields(OutputFieldsDeclarer& d) const {
  shared_->source->declareOutputFields(d);
}

std::unique_ptr<Spout> SourceSpout::clone() const {
  auto s = std::make_unique<SourceSpout>(shared_->source, watermark_, readChunk_);
  s->shared_ = shared_;  // one Source, opened once for all tasks
  return s;
}

void SourceSpout::open(const TopologyContext& context, SpoutOutputCollector& out) {
  out_ = &out;
  clock_ = context.clock;
  acking_ = context.acking;
  Source& src = *shared_->source;
  std::call_once(shared_->opened, [&] {
    // Tell the source where a recovery resumes before it opens, as a micro-batch job does
    // (Source::commit): a source that fetches or looks ahead (Kafka, an unbounded generator)
    // starts there. Every task holds the whole component's offsets, so the first one suffices.
    for (auto [p, offset] : resumeAt_) src.commit(p, offset);
    src.open(*clock_);
  });
  {
    std::lock_guard lock(shared_->mutex);
    ++shared_->openTasks;
  }
  taskIndex_ = context.taskIndex;
  parallelism_ = context.parallelism;
  if (watermark_) {
    OutputFieldsDeclarer d;
    src.declareOutputFields(d);
    const Fields* f = d.find(kDefaultStream);
    eventField_ = f ? f->indexOf(watermark_->field) : -1;
    if (eventField_ < 0)
      throw std::invalid_argument("source '" + src.name() + "' has no event-time field '" +
                                  watermark_->field + "'");
  }
  openNanos_ = lastWatermarkNanos_ = clock_->monoNanos();
  // Non-blocking, as librdkafka requires of an IO-event fd; without one the task polls.
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wakeOk_ = wakeFd_ >= 0;
  adoptNewPartitions();
}

SourceSpout::~SourceSpout() {
  // Not closed (a task that failed to open): an fd still registered with the source is left
  // open rather than closed under a writer that might then write into a reused number.
  if (wakeFd_ >= 0 && parts_.empty()) ::close(wakeFd_);
}

void SourceSpout::registerWake(const Partition& p) {
  if (wakeOk_ && !shared_->source->notifyOnRecords(p.id, wakeFd_)) wakeOk_ = false;
}

void SourceSpout::adoptNewPartitions() {
  Source& src = *shared_->source;
  const int n = src.partitions();
  // A source that names its partitions: the task is the name's (each worker process numbers
  // the partitions it discovers in its own order). After the count: the names only grow.
  const std::vector<std::string> ids = n > knownPartitions_ ? src.partitionIds()
                                                            : std::vector<std::string>{};
  for (int p = knownPartitions_; p < n; ++p) {
    int task = static_cast<size_t>(p) < ids.size() ? taskOfPartition(ids[p], parallelism_)
                                                   : p % parallelism_;
    if (task != taskIndex_) continue;
    Partition part;
    part.id = p;
    // After an exactly-once recovery the partition resumes at its checkpointed offset.
    auto resume = resumeAt_.find(p);
    part.base = part.next = resume != resumeAt_.end() ? resume->second : src.initialOffset(p);
    if (watermark_) part.watermark.emplace(watermark_->delay);
    part.lastDataNanos = clock_->monoNanos();
    registerWake(part);
    parts_.push_back(std::move(part));
  }
  knownPartitions_ = std::max(knownPartitions_, n);
}

void SourceSpout::resumeFromCheckpoint(std::map<int, int64_t> resumeAt) {
  checkpointed_ = true;
  resumeAt_ = std::move(resumeAt);
}

std::map<int, int64_t> SourceSpout::positions() const {
  std::map<int, int64_t> out;
  for (const Partition& p : parts_) out[p.id] = p.next;
  return out;
}

void SourceSpout::close() {
  if (wakeFd_ >= 0) {
    // Unregistered before the fd goes (the source must not write into a reused fd number).
    for (const Partition& p : parts_) shared_->source->notifyOnRecords(p.id, -1);
    ::close(wakeFd_);
    wakeFd_ = -1;
    wakeOk_ = false;
  }
  std::lock_guard lock(shared_->mutex);
  if (--shared_->openTasks == 0) shared_->source->close();
}

SourceSpout::Partition* SourceSpout::partitionOf(MessageId id, int64_t& offset) {
  int p = static_cast<int>(id >> kOffsetBits);
  offset = static_cast<int64_t>(id & ((uint64_t{1} << kOffsetBits) - 1));
  for (auto& part : parts_)
    if (part.id == p) return &part;
  return nullptr;
}

void SourceSpout::noteDone(Partition& p, int64_t offset) {
  if (offset < p.base || offset >= p.next) return;  // already committed
  p.done[offset - p.base] = true;
  int64_t before = p.base;
  while (!p.done.empty() && p.done.front()) {
    p.done.pop_front();
    ++p.base;
  }
  if (p.base != before && !checkpointed_) shared_->source->commit(p.id, p.base);
}

void SourceSpout::skipGone(Partition& p, int64_t to) {
  // Records gone before we read them. Acking off with nothing in flight, they are simply
  // passed (the chunk's commit covers them); else each waits in the done-queue as done, so
  // the base moves past it only when the records before it are done.
  if (!acking_ && p.done.empty()) {
    p.base = p.next = to;
    return;
  }
  while (p.next < to) {
    p.done.push_back(true);
    ++p.next;
  }
}

bool SourceSpout::emitRecord(Partition& p, SourceRecord& rec, bool replay, Timestamp now,
                             int64_t monoNanos) {
  bool mainStream = rec.stream.empty() || rec.stream == kDefaultStream;
  if (p.watermark && mainStream && static_cast<size_t>(eventField_) < rec.values.size()) {
    const Value& v = rec.values[static_cast<size_t>(eventField_)];
    std::optional<Timestamp> t;
    if (auto ts = std::get_if<Timestamp>(&v)) t = *ts;
    if (auto i = std::get_if<int64_t>(&v)) t = Timestamp{*i};
    if (t) {
      p.watermark->observe(*t, now);
      ++sinceWatermark_;
    }
  }
  p.lastDataNanos = monoNanos;
  MessageId id = messageId(p.id, rec.offset);
  out_->emitWithOrigin(mainStream ? std::string_view(kDefaultStream) : rec.stream,
                       std::move(rec.values),
                       acking_ ? std::optional<MessageId>(id) : std::nullopt, rec.originNanos);
  if (!replay) {
    if (!acking_ && p.done.empty()) {  // done as it leaves; committed once per chunk (nextTuple)
      p.base = ++p.next;
      return true;
    }
    p.done.push_back(false);
    ++p.next;
  }
  if (!acking_) noteDone(p, rec.offset);
  return true;
}

bool SourceSpout::nextTuple(SpoutOutputCollector& out) {
  if (ended_) return false;
  Source& src = *shared_->source;
  // Partitions the source found while it runs (Kafka's discovery): adoptNewPartitions.
  if (src.partitions() > knownPartitions_) adoptNewPartitions();
  bool emitted = false;
  // Replays first: a failed record is re-read from its offset.
  size_t replayed = 0;
  while (!replay_.empty() && replayed < readChunk_) {
    MessageId id = replay_.front();
    replay_.pop_front();
    int64_t off;
    Partition* p = partitionOf(id, off);
    if (!p || off < p->base || off >= p->next) continue;
    buf_.clear();
    if (src.read(p->id, off, off + 1, buf_) == 0 || buf_.empty()) {
      ++lost_;
      logWarn("source '" + src.name() + "' partition " + std::to_string(p->id) +
              ": record at offset " + std::to_string(off) +
              " is gone and cannot be replayed; it is counted as lost");
      noteDone(*p, off);
      continue;
    }
    emitRecord(*p, buf_[0], true, clock_->now(), clock_->monoNanos());
    emitted = true;
    ++replayed;
  }
  if (!emitted && !parts_.empty()) {
    // New records, one chunk from the next partition that has some (round robin).
    for (size_t k = 0; k < parts_.size() && !emitted; ++k) {
      Partition& p = parts_[cursor_];
      cursor_ = (cursor_ + 1) % parts_.size();
      // What the source holds now, not what exists (a Kafka source's fetch may lag the
      // broker's end): a record at hand is not kept waiting for the rest of a chunk.
      int64_t avail = src.ready(p.id);
      if (avail <= p.next) continue;
      int64_t to = std::min<int64_t>(avail, p.next + static_cast<int64_t>(readChunk_));
      buf_.clear();
      src.read(p.id, p.next, to, buf_);
      const Timestamp now = clock_->now();
      const int64_t monoNanos = clock_->monoNanos();
      // Acking off: the chunk's records were done as they left (emitRecord), one commit for
      // them all (a commit per record was ~14 instructions a word of the word count). Also
      // when an emit throws midway (a record that does not fit the declared fields): the
      // records that left before it are committed, as they were with a commit per record.
      const int64_t baseBefore = p.base;
      auto commitChunk = [&] {
        if (!acking_ && !checkpointed_ && p.base != baseBefore) src.commit(p.id, p.base);
      };
      try {
        for (auto& rec : buf_) {
          if (rec.offset < p.next) continue;
          if (p.next < rec.offset) skipGone(p, rec.offset);
          emitRecord(p, rec, false, now, monoNanos);
          emitted = true;
        }
      } catch (...) {
        commitChunk();
        throw;
      }
      commitChunk();
      if (buf_.empty()) {
        // The source said records were available but returned none: skip them so we do not
        // spin on the same offset, and say so.
        lost_ += static_cast<uint64_t>(to - p.next);
        logWarn("source '" + src.name() + "' partition " + std::to_string(p.id) + ": offsets " +
                std::to_string(p.next) + ".." + std::to_string(to) + " could not be read");
        while (p.next < to) {
          p.done.push_back(true);
          ++p.next;
        }
        noteDone(p, p.next - 1);
      }
    }
  }
  maybeEmitWatermark();
  if (!emitted && src.finished()) {
    bool allRead = true, allDone = true;
    for (auto& p : parts_) {
      if (src.available(p.id) > p.next) allRead = false;
      if (p.base < p.next) allDone = false;
    }
    if (allRead && allDone && replay_.empty()) {
      ended_ = true;
      out.emitEndOfStream();
      return true;
    }
  }
  return emitted;
}

std::optional<Timestamp> SourceSpout::taskWatermark(int64_t nowNanos) const {
  const int64_t idleNanos = toMicros(watermark_->idleTimeout) * 1000;
  const bool idleness = idleNanos > 0;
  // A task without partitions (more tasks than partitions) holds back until idleTimeout after
  // open(), like a partition without data; without idleness it is idle at once, or it would
  // hold its consumers back for good.
  if (parts_.empty()) {
    return !idleness || nowNanos - openNanos_ >= idleNanos ? std::nullopt
                                                           : std::optional(kNoWatermark);
  }
  std::optional<Timestamp> low;
  for (const auto& p : parts_) {
    if (idleness && nowNanos - p.lastDataNanos >= idleNanos) continue;
    Timestamp wm = p.watermark->current();  // kNoWatermark before its first record: holds back
    low = low ? std::min(*low, wm) : wm;
  }
  return low;
}

void SourceSpout::maybeEmitWatermark() {
  if (!watermark_) return;
  int64_t now = clock_->monoNanos();
  std::optional<Timestamp> wm = taskWatermark(now);
  if (!wm) {
    // Every partition read nothing for idleTimeout: this task must not hold back its consumers.
    if (!idle_) {
      idle_ = true;
      out_->emitWatermark(emitted_, true);
    }
    return;
  }
  if (idle_) {
    // Data again after an idle spell: tell consumers this task counts again, at once.
    idle_ = false;
    emitted_ = std::max(emitted_, *wm);
    out_->emitWatermark(emitted_, false);
    lastWatermarkNanos_ = now;
    sinceWatermark_ = 0;
    return;
  }
  bool due = sinceWatermark_ >= watermark_->everyTuples ||
             now - lastWatermarkNanos_ >= toMicros(watermark_->every) * 1000;
  if (!due) return;
  if (*wm > emitted_) {
    emitted_ = *wm;
    out_->emitWatermark(emitted_, false);
    sinceWatermark_ = 0;
  }
  lastWatermarkNanos_ = now;
}

void SourceSpout::ack(MessageId id) {
  int64_t off;
  if (Partition* p = partitionOf(id, off)) noteDone(*p, off);
}

void SourceSpout::fail(MessageId id) {
  int64_t off;
  Partition* p = partitionOf(id, off);
  if (p && off >= p->base && off < p->next && !p->done[off - p->base]) replay_.push_back(id);
}

}  // namespace gale
