#include "batch_link.h"

#include <stdexcept>

#include "gale/core/state_codec.h"

namespace gale::batchlink {

namespace {

constexpr uint8_t kStart = 'S';

StateWriter message(uint8_t kind) {
  StateWriter w;
  w.u8(kind);
  return w;
}

StateReader reader(std::string_view body, uint8_t kind) {
  StateReader r(body, "micro-batch link message");
  if (uint8_t k = r.u8("kind"); k != kind)
    r.fail("a message of kind " + std::to_string(k) + " where " + std::to_string(kind) +
           " was expected");
  return r;
}

void writeTimestamp(StateWriter& w, const std::optional<Timestamp>& t) {
  w.u8(t ? 1 : 0);
  if (t) w.svarint(t->micros);
}

std::optional<Timestamp> readTimestamp(StateReader& r) {
  if (r.u8("watermark?") == 0) return std::nullopt;
  return Timestamp{r.svarint("watermark")};
}

void writeStrings(StateWriter& w, const std::map<std::string, std::string>& m) {
  w.varint(m.size());
  for (const auto& [k, v] : m) {
    w.str(k);
    w.str(v);
  }
}

std::map<std::string, std::string> readStrings(StateReader& r, const char* what) {
  std::map<std::string, std::string> out;
  for (uint64_t n = r.count(what, 2); n > 0; --n) {
    std::string k = r.str("key");
    out[k] = r.str("value");
  }
  return out;
}

void writePartitions(StateWriter& w, const std::map<int, int64_t>& m) {
  w.varint(m.size());
  for (auto [p, v] : m) {
    w.svarint(p);
    w.svarint(v);
  }
}

std::map<int, int64_t> readPartitions(StateReader& r) {
  std::map<int, int64_t> out;
  for (uint64_t n = r.count("partitions", 2); n > 0; --n) {
    int p = static_cast<int>(r.svarint("partition"));
    out[p] = r.svarint("value");
  }
  return out;
}

void writeOffsets(StateWriter& w, const Offsets& o) {
  w.varint(o.size());
  for (const auto& [name, parts] : o) {
    w.str(name);
    w.varint(parts.size());
    for (int64_t off : parts) w.svarint(off);
  }
}

Offsets readOffsets(StateReader& r) {
  Offsets out;
  for (uint64_t n = r.count("sources", 2); n > 0; --n) {
    auto& v = out[r.str("source")];
    for (uint64_t k = r.count("offsets"); k > 0; --k) v.push_back(r.svarint("offset"));
  }
  return out;
}

}  // namespace

Kind kindOf(std::string_view body) {
  StateReader r(body, "micro-batch link message");
  uint8_t k = r.u8("kind");
  switch (k) {
    case static_cast<uint8_t>(Kind::Plan):
    case static_cast<uint8_t>(Kind::Watermark):
    case static_cast<uint8_t>(Kind::Status):
    case static_cast<uint8_t>(Kind::EventTime):
    case static_cast<uint8_t>(Kind::Result): return static_cast<Kind>(k);
    default: r.fail("unknown kind " + std::to_string(k));
  }
  return Kind::Plan;  // not reached: fail() throws
}

std::string encodeStart(const Start& s) {
  StateWriter w = message(kStart);
  w.varint(s.lastTxid);
  writeTimestamp(w, s.watermark);
  writeStrings(w, s.snapshots);
  w.varint(s.entries.size());
  for (const auto& [state, entries] : s.entries) {
    w.str(state);
    w.varint(entries.size());
    for (const auto& [k, v] : entries) {
      w.str(k);
      w.str(v);
    }
  }
  w.varint(s.offsets.size());
  for (const auto& [source, parts] : s.offsets) {
    w.str(source);
    writePartitions(w, parts);
  }
  writeStrings(w, s.partitionOrders);
  return w.take();
}

Start decodeStart(std::string_view body) {
  StateReader r = reader(body, kStart);
  Start s;
  s.lastTxid = r.varint("last txid");
  s.watermark = readTimestamp(r);
  s.snapshots = readStrings(r, "snapshots");
  for (uint64_t n = r.count("entry states", 2); n > 0; --n) {
    auto& entries = s.entries[r.str("state")];
    for (uint64_t k = r.count("entries", 2); k > 0; --k) {
      std::string key = r.str("key");
      entries.emplace_back(std::move(key), r.str("value"));
    }
  }
  for (uint64_t n = r.count("sources", 2); n > 0; --n) {
    std::string source = r.str("source");
    s.offsets[source] = readPartitions(r);
  }
  s.partitionOrders = readStrings(r, "partition orders");
  r.expectEnd();
  return s;
}

std::string encode(const BatchPlan& p) {
  StateWriter w = message(static_cast<uint8_t>(Kind::Plan));
  w.varint(p.txid);
  w.varint(p.ranges.size());
  for (const auto& ranges : p.ranges) {
    w.varint(ranges.size());
    for (const PartitionRange& r : ranges) {
      w.svarint(r.partition);
      w.svarint(r.from);
      w.svarint(r.to);
    }
  }
  writeOffsets(w, p.start);
  writeOffsets(w, p.end);
  w.svarint(p.records);
  w.u8(static_cast<uint8_t>((p.replay ? 1 : 0) | (p.endOfInput ? 2 : 0)));
  return w.take();
}

BatchPlan decodePlan(std::string_view body) {
  StateReader r = reader(body, static_cast<uint8_t>(Kind::Plan));
  BatchPlan p;
  p.txid = r.varint("txid");
  for (uint64_t n = r.count("sources"); n > 0; --n) {
    auto& ranges = p.ranges.emplace_back();
    for (uint64_t k = r.count("ranges", 3); k > 0; --k) {
      PartitionRange range;
      range.partition = static_cast<int>(r.svarint("partition"));
      range.from = r.svarint("from");
      range.to = r.svarint("to");
      ranges.push_back(range);
    }
  }
  p.start = readOffsets(r);
  p.end = readOffsets(r);
  p.records = r.svarint("records");
  uint8_t flags = r.u8("flags");
  p.replay = flags & 1;
  p.endOfInput = flags & 2;
  r.expectEnd();
  return p;
}

std::string encode(const Watermark& m) {
  StateWriter w = message(static_cast<uint8_t>(Kind::Watermark));
  w.varint(m.txid);
  writeTimestamp(w, m.watermark);
  w.str(m.snapshot);
  return w.take();
}

Watermark decodeWatermark(std::string_view body) {
  StateReader r = reader(body, static_cast<uint8_t>(Kind::Watermark));
  Watermark m;
  m.txid = r.varint("txid");
  m.watermark = readTimestamp(r);
  m.snapshot = r.str("snapshot");
  r.expectEnd();
  return m;
}

std::string encode(const Status& s) {
  StateWriter w = message(static_cast<uint8_t>(Kind::Status));
  w.varint(s.committed);
  w.varint(s.held.size());
  for (uint64_t t : s.held) w.varint(t);
  w.u8(s.done ? 1 : 0);
  return w.take();
}

Status decodeStatus(std::string_view body) {
  StateReader r = reader(body, static_cast<uint8_t>(Kind::Status));
  Status s;
  s.committed = r.varint("committed");
  for (uint64_t n = r.count("held"); n > 0; --n) s.held.push_back(r.varint("txid"));
  s.done = r.u8("done") != 0;
  r.expectEnd();
  return s;
}

std::string encode(const EventTime& e) {
  StateWriter w = message(static_cast<uint8_t>(Kind::EventTime));
  w.varint(e.txid);
  w.svarint(e.spoutTask);
  w.varint(e.source);
  writePartitions(w, e.maxEvent);
  w.u8(e.endOfInput ? 1 : 0);
  return w.take();
}

EventTime decodeEventTime(std::string_view body) {
  StateReader r = reader(body, static_cast<uint8_t>(Kind::EventTime));
  EventTime e;
  e.txid = r.varint("txid");
  e.spoutTask = static_cast<TaskId>(r.svarint("spout task"));
  e.source = r.varint("source");
  e.maxEvent = readPartitions(r);
  e.endOfInput = r.u8("end of input") != 0;
  r.expectEnd();
  return e;
}

std::string encode(const Result& m) {
  const BatchResult& b = m.result;
  if (!b.keyed.empty())
    throw std::logic_error("a micro-batch result with keyed state updates cannot cross workers");
  StateWriter w = message(static_cast<uint8_t>(Kind::Result));
  w.varint(m.txid);
  w.varint(static_cast<uint64_t>(m.tasks));
  writeStrings(w, b.snapshots);
  writeTimestamp(w, b.watermark);
  w.varint(b.sinks.size());
  for (const auto& s : b.sinks) w.str(s);
  w.varint(b.originSamples.size());
  for (const auto& s : b.originSamples) {
    w.svarint(s.originNanos);
    w.varint(s.weight);
  }
  w.varint(b.stateEntries);
  w.varint(b.unrouted);
  w.svarint(b.eventTimeMin);
  w.svarint(b.eventTimeMax);
  w.f64(b.eventTimeSum);
  w.varint(b.eventTimeCount);
  w.varint(b.operators.size());
  for (const auto& [name, o] : b.operators) {
    w.str(name);
    w.varint(o.stateRows);
    w.varint(o.rowsEmitted);
    w.varint(o.droppedByWatermark);
  }
  w.varint(b.entryChanges.size());
  for (const auto& [state, changes] : b.entryChanges) {
    w.str(state);
    w.varint(changes.size());
    for (const auto& [k, v] : changes) {
      w.str(k);
      w.u8(v ? 1 : 0);
      if (v) w.str(*v);
    }
  }
  return w.take();
}

Result decodeResult(std::string_view body) {
  StateReader r = reader(body, static_cast<uint8_t>(Kind::Result));
  Result m;
  BatchResult& b = m.result;
  m.txid = r.varint("txid");
  m.tasks = static_cast<int>(r.varint("tasks"));
  b.snapshots = readStrings(r, "snapshots");
  b.watermark = readTimestamp(r);
  for (uint64_t n = r.count("sinks"); n > 0; --n) b.sinks.push_back(r.str("sink"));
  for (uint64_t n = r.count("origin samples", 2); n > 0; --n) {
    BatchResult::OriginSample s;
    s.originNanos = r.svarint("origin");
    s.weight = r.varint("weight");
    b.originSamples.push_back(s);
  }
  b.stateEntries = r.varint("state entries");
  b.unrouted = r.varint("unrouted");
  b.eventTimeMin = r.svarint("event time min");
  b.eventTimeMax = r.svarint("event time max");
  b.eventTimeSum = r.f64("event time sum");
  b.eventTimeCount = r.varint("event time count");
  for (uint64_t n = r.count("operators", 4); n > 0; --n) {
    auto& o = b.operators[r.str("operator")];
    o.stateRows = r.varint("state rows");
    o.rowsEmitted = r.varint("rows emitted");
    o.droppedByWatermark = r.varint("dropped");
  }
  for (uint64_t n = r.count("entry states", 2); n > 0; --n) {
    auto& changes = b.entryChanges[r.str("state")];
    for (uint64_t k = r.count("entry changes", 2); k > 0; --k) {
      std::string key = r.str("key");
      if (r.u8("put?") != 0) changes[key] = r.str("value");
      else changes[key] = std::nullopt;
    }
  }
  r.expectEnd();
  return m;
}

}  // namespace gale::batchlink
