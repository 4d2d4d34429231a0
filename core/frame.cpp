#include "gale/core/frame.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include "wire.capnp.h"

namespace gale {

const char* controlKindName(ControlKind k) {
  switch (k) {
    case ControlKind::AckInit: return "ackInit";
    case ControlKind::Ack: return "ack";
    case ControlKind::Fail: return "fail";
    case ControlKind::TreeDone: return "treeDone";
    case ControlKind::Watermark: return "watermark";
    case ControlKind::BatchBegin: return "batchBegin";
    case ControlKind::BatchEnd: return "batchEnd";
    case ControlKind::Barrier: return "barrier";
    case ControlKind::EndOfStream: return "endOfStream";
    case ControlKind::Custom: return "custom";
  }
  return "?";
}

StreamId SchemaRegistry::add(SchemaPtr schema) {
  schemas_.push_back(std::move(schema));
  return static_cast<StreamId>(schemas_.size() - 1);
}

int SchemaRegistry::idOf(const std::string& component, const std::string& stream) const {
  for (size_t i = 0; i < schemas_.size(); ++i)
    if (schemas_[i]->component == component && schemas_[i]->stream == stream)
      return static_cast<int>(i);
  return -1;
}

static_assert(std::endian::native == std::endian::little,
              "the direct frame reader/writer assumes a little-endian host (Cap'n Proto's order)");

namespace {

// ---------------------------------------------------------------- layout of core/wire.capnp
// Struct sizes (data words, pointers) and field positions, as capnp compiled them (see the
// generated wire.capnp.h). A field beyond what a sender wrote reads as zero in Cap'n Proto; the
// direct reader simply requires at least these sizes and leaves other frames to the generic one.
namespace lay {
constexpr uint16_t kFrameData = 1, kFramePtrs = 1;      // version u16 @0, srcTask i32 @[4..8)
constexpr uint16_t kItemData = 1, kItemPtrs = 1;        // which u16 @0; tuple|control ptr 0
constexpr uint16_t kTupleData = 2, kTuplePtrs = 2;      // stream u16 @0, originNanos word 1
constexpr uint16_t kValueData = 2, kValuePtrs = 1;      // which u16 @0, scalar word 1, blob ptr 0
constexpr uint16_t kAnchorData = 2, kAnchorPtrs = 0;    // root word 0, edge word 1
constexpr uint16_t kControlData = 4, kControlPtrs = 1;  // kind u16 @0, ok bit 16, task i32
                                                        // @[4..8); root, value, time words 1-3
constexpr uint64_t kByteElements = 2, kCompositeElements = 7;
}  // namespace lay

// Wire value kinds (wire::Value::Which) in gale's Type order: Null, Int64, Double, Bool, String,
// Bytes, Timestamp.
static_assert(static_cast<int>(wire::Value::NULL_) == 0 && static_cast<int>(wire::Value::INT64) == 1 &&
              static_cast<int>(wire::Value::FLOAT64) == 2 && static_cast<int>(wire::Value::BOOL) == 3 &&
              static_cast<int>(wire::Value::TEXT) == 4 && static_cast<int>(wire::Value::DATA) == 5 &&
              static_cast<int>(wire::Value::TIMESTAMP) == 6);
static_assert(static_cast<int>(Type::Timestamp) == 6);

// ---------------------------------------------------------------- filling reused items

// The item slot `k` of `items`, grown on demand. Slots keep their Values/anchors capacity and
// string buffers from earlier frames unless a handler moved them out.
OutItem& slot(std::vector<OutItem>& items, size_t k) {
  if (k == items.size()) items.emplace_back();
  return items[k];
}

Tuple& beginTuple(OutItem& it, const SchemaPtr& schema, TaskId src, int64_t origin, size_t n) {
  it.isTuple = true;
  Tuple& t = it.tuple;
  if (t.schema() != schema) t = Tuple(schema, std::move(t.mutableValues()));
  t.mutableValues().resize(n);
  t.mutableAnchors().clear();
  t.setSourceTask(src);
  t.setOriginNanos(origin);
  return t;
}

void setString(Value& v, const char* p, size_t n) {
  if (auto s = std::get_if<std::string>(&v))
    s->assign(p, n);
  else
    v.emplace<std::string>(p, n);
}
void setBytes(Value& v, const char* p, size_t n) {
  if (auto b = std::get_if<Bytes>(&v))
    b->data.assign(p, n);
  else
    v.emplace<Bytes>(Bytes{std::string(p, n)});
}

Control& beginControl(OutItem& it) {
  it.isTuple = false;
  it.control.payload.clear();
  return it.control;
}

// ---------------------------------------------------------------- the direct reader

// One segment being read; `budget` bounds the words visited (no amplification by pointers that
// share targets: a frame that needs more goes to the generic reader and its traversal limit).
struct Seg {
  const uint64_t* w;
  int64_t n;
  int64_t budget;
};

// Struct pointer at index `p`: index of the struct's data, its section sizes. False: null,
// not a near struct pointer, smaller than the schema, or out of bounds.
bool structAt(Seg& s, int64_t p, uint16_t minData, uint16_t minPtrs, int64_t& at,
              uint16_t& dataWords) {
  uint64_t w = s.w[p];
  if (w == 0 || (w & 3) != 0) return false;
  int64_t off = static_cast<int32_t>(static_cast<uint32_t>(w)) >> 2;
  uint16_t dw = static_cast<uint16_t>(w >> 32), pw = static_cast<uint16_t>(w >> 48);
  if (dw < minData || pw < minPtrs) return false;
  at = p + 1 + off;
  if (at < 0 || at + dw + pw > s.n) return false;
  s.budget -= dw + pw;
  if (s.budget < 0) return false;
  dataWords = dw;
  return true;
}

// Struct list (inline composite) at pointer index `p`; a null pointer is an empty list.
bool listAt(Seg& s, int64_t p, uint16_t minData, uint16_t minPtrs, int64_t& first,
            uint32_t& count, uint32_t& stride, uint16_t& dataWords) {
  uint64_t w = s.w[p];
  if (w == 0) {
    count = 0;
    return true;
  }
  if ((w & 3) != 1 || ((w >> 32) & 7) != lay::kCompositeElements) return false;
  int64_t off = static_cast<int32_t>(static_cast<uint32_t>(w)) >> 2;
  int64_t words = static_cast<int64_t>(w >> 35);
  int64_t tagAt = p + 1 + off;
  if (tagAt < 0 || tagAt + 1 + words > s.n) return false;
  uint64_t tag = s.w[tagAt];
  if ((tag & 3) != 0) return false;
  uint16_t dw = static_cast<uint16_t>(tag >> 32), pw = static_cast<uint16_t>(tag >> 48);
  if (dw < minData || pw < minPtrs) return false;
  count = static_cast<uint32_t>(tag) >> 2;
  stride = static_cast<uint32_t>(dw) + pw;
  if (static_cast<int64_t>(count) * stride > words) return false;
  s.budget -= words + 1;
  if (s.budget < 0) return false;
  first = tagAt + 1;
  dataWords = dw;
  return true;
}

// Byte list at pointer index `p` (Text: NUL-terminated, the NUL not included). Null: empty.
bool blobAt(Seg& s, int64_t p, bool text, const char*& bytes, size_t& len) {
  uint64_t w = s.w[p];
  if (w == 0) {
    bytes = "";
    len = 0;
    return true;
  }
  if ((w & 3) != 1 || ((w >> 32) & 7) != lay::kByteElements) return false;
  int64_t off = static_cast<int32_t>(static_cast<uint32_t>(w)) >> 2;
  int64_t count = static_cast<int64_t>(w >> 35);
  int64_t at = p + 1 + off;
  int64_t words = (count + 7) / 8;
  if (at < 0 || at + words > s.n) return false;
  s.budget -= words;
  if (s.budget < 0) return false;
  bytes = reinterpret_cast<const char*>(s.w + at);
  if (text) {
    if (count == 0 || bytes[count - 1] != 0) return false;
    len = static_cast<size_t>(count - 1);
  } else {
    len = static_cast<size_t>(count);
  }
  return true;
}

// Decodes the whole frame into items[0..used). False: not the simple layout, or not valid for
// gale (wrong version, unknown stream, mistyped value, ...): the generic reader decides.
bool readDirect(const uint64_t* words, size_t nWords, const SchemaRegistry& registry,
                const FrameLimits& limits, std::vector<OutItem>& items, size_t& used,
                TaskId& src) {
  used = 0;
  uint64_t table = words[0];  // segment count - 1, then the first segment's size in words
  if (static_cast<uint32_t>(table) != 0 || (table >> 32) != nWords - 1 || nWords < 2) return false;
  Seg s{words + 1, static_cast<int64_t>(nWords - 1), static_cast<int64_t>(nWords)};
  int64_t frame;
  uint16_t dw;
  if (!structAt(s, 0, lay::kFrameData, lay::kFramePtrs, frame, dw)) return false;
  uint64_t f0 = s.w[frame];
  if (static_cast<uint16_t>(f0) != kWireVersion) return false;
  src = static_cast<TaskId>(static_cast<int32_t>(f0 >> 32));
  int64_t first;
  uint32_t count, stride;
  uint16_t itemData;
  if (!listAt(s, frame + dw, lay::kItemData, lay::kItemPtrs, first, count, stride, itemData))
    return false;
  if (count > limits.maxItems) return false;
  for (uint32_t i = 0; i < count; ++i) {
    int64_t item = first + static_cast<int64_t>(i) * stride;
    uint16_t which = static_cast<uint16_t>(s.w[item]);
    int64_t at;
    if (which == wire::Item::TUPLE) {
      if (!structAt(s, item + itemData, lay::kTupleData, lay::kTuplePtrs, at, dw)) return false;
      uint64_t t0 = s.w[at];
      const SchemaPtr* schema = registry.find(static_cast<uint16_t>(t0));
      if (!schema) return false;
      const Fields& fields = (*schema)->fields;
      int64_t vFirst, aFirst;
      uint32_t vCount, vStride, aCount, aStride;
      uint16_t vData, aData;
      if (!listAt(s, at + dw, lay::kValueData, lay::kValuePtrs, vFirst, vCount, vStride, vData) ||
          vCount != fields.size())
        return false;
      if (!listAt(s, at + dw + 1, lay::kAnchorData, lay::kAnchorPtrs, aFirst, aCount, aStride,
                  aData))
        return false;
      Tuple& t = beginTuple(slot(items, used), *schema, src,
                            static_cast<int64_t>(s.w[at + 1]), vCount);
      ++used;
      Values& vals = t.mutableValues();
      for (uint32_t j = 0; j < vCount; ++j) {
        int64_t v = vFirst + static_cast<int64_t>(j) * vStride;
        uint16_t kind = static_cast<uint16_t>(s.w[v]);
        if (kind > static_cast<uint16_t>(Type::Timestamp)) return false;
        Type got = static_cast<Type>(kind), want = fields[j].type;
        if (want != Type::Any && got != Type::Null && got != want) return false;
        uint64_t scalar = s.w[v + 1];
        const char* bytes;
        size_t len;
        switch (got) {
          case Type::Null: vals[j] = std::monostate{}; break;
          case Type::Int64: vals[j] = static_cast<int64_t>(scalar); break;
          case Type::Double: vals[j] = std::bit_cast<double>(scalar); break;
          case Type::Bool: vals[j] = (scalar & 1) != 0; break;
          case Type::String:
            if (!blobAt(s, v + vData, true, bytes, len)) return false;
            setString(vals[j], bytes, len);
            break;
          case Type::Bytes:
            if (!blobAt(s, v + vData, false, bytes, len)) return false;
            setBytes(vals[j], bytes, len);
            break;
          case Type::Timestamp: vals[j] = Timestamp{static_cast<int64_t>(scalar)}; break;
          default: return false;
        }
      }
      auto& anchors = t.mutableAnchors();
      for (uint32_t j = 0; j < aCount; ++j) {
        int64_t a = aFirst + static_cast<int64_t>(j) * aStride;
        anchors.push_back({s.w[a], s.w[a + 1]});
      }
    } else if (which == wire::Item::CONTROL) {
      if (!structAt(s, item + itemData, lay::kControlData, lay::kControlPtrs, at, dw))
        return false;
      uint64_t c0 = s.w[at];
      uint16_t kind = static_cast<uint16_t>(c0);
      if (kind > static_cast<uint16_t>(ControlKind::Custom)) return false;
      Control& c = beginControl(slot(items, used));
      ++used;
      c.kind = static_cast<ControlKind>(kind);
      c.ok = ((c0 >> 16) & 1) != 0;
      c.task = static_cast<TaskId>(static_cast<int32_t>(c0 >> 32));
      c.root = s.w[at + 1];
      c.value = s.w[at + 2];
      c.time = static_cast<int64_t>(s.w[at + 3]);
      const char* bytes;
      size_t len;
      if (!blobAt(s, at + dw, false, bytes, len)) return false;
      c.payload.assign(bytes, len);
    } else {
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------- the generic reader

Type wireType(wire::Value::Reader r) {
  switch (r.which()) {
    case wire::Value::NULL_: return Type::Null;
    case wire::Value::INT64: return Type::Int64;
    case wire::Value::FLOAT64: return Type::Double;
    case wire::Value::BOOL: return Type::Bool;
    case wire::Value::TEXT: return Type::String;
    case wire::Value::DATA: return Type::Bytes;
    case wire::Value::TIMESTAMP: return Type::Timestamp;
  }
  return Type::Any;  // an unknown union member: rejected by the caller
}

// Cap'n Proto's reader: any valid layout, every check, the reasons for rejections.
std::string readGeneric(const void* data, size_t size, const SchemaRegistry& registry,
                        const FrameLimits& limits, std::vector<OutItem>& items, size_t& used,
                        TaskId& src) {
  used = 0;
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = size / 8 * 4 + 1024;
    options.nestingLimit = 16;
    capnp::FlatArrayMessageReader reader(
        kj::arrayPtr(static_cast<const capnp::word*>(data), size / 8), options);
    auto frame = reader.getRoot<wire::Frame>();
    if (frame.getVersion() != kWireVersion)
      return "wire version " + std::to_string(frame.getVersion()) + " is not " +
             std::to_string(kWireVersion);
    auto list = frame.getItems();
    if (list.size() > limits.maxItems)
      return "frame has " + std::to_string(list.size()) + " items, more than " +
             std::to_string(limits.maxItems);
    src = frame.getSrcTask();
    for (auto item : list) {
      switch (item.which()) {
        case wire::Item::TUPLE: {
          auto t = item.getTuple();
          const SchemaPtr* schema = registry.find(t.getStream());
          if (!schema) return "unknown stream id " + std::to_string(t.getStream());
          const Fields& fields = (*schema)->fields;
          auto vals = t.getValues();
          if (vals.size() != fields.size())
            return "tuple on stream '" + (*schema)->component + ":" + (*schema)->stream + "' has " +
                   std::to_string(vals.size()) + " values, declared fields are " +
                   fields.toString();
          Tuple& out = beginTuple(slot(items, used), *schema, src, t.getOriginNanos(), vals.size());
          ++used;
          Values& values = out.mutableValues();
          for (unsigned j = 0; j < vals.size(); ++j) {
            auto v = vals[j];
            Type got = wireType(v);
            Type want = fields[j].type;
            if (got == Type::Any) return "unknown value kind in field '" + fields[j].name + "'";
            if (want != Type::Any && got != Type::Null && got != want)
              return "field '" + fields[j].name + "' of stream '" + (*schema)->component + ":" +
                     (*schema)->stream + "' is " + typeName(got) + ", declared " +
                     typeName(want);
            switch (got) {
              case Type::Null: values[j] = std::monostate{}; break;
              case Type::Int64: values[j] = v.getInt64(); break;
              case Type::Double: values[j] = v.getFloat64(); break;
              case Type::Bool: values[j] = v.getBool(); break;
              case Type::String: {
                auto text = v.getText();  // validates NUL termination
                setString(values[j], text.begin(), text.size());
                break;
              }
              case Type::Bytes: {
                auto d = v.getData();
                setBytes(values[j], reinterpret_cast<const char*>(d.begin()), d.size());
                break;
              }
              case Type::Timestamp: values[j] = Timestamp{v.getTimestamp()}; break;
              default: break;
            }
          }
          for (auto an : t.getAnchors()) out.mutableAnchors().push_back({an.getRoot(), an.getEdge()});
          break;
        }
        case wire::Item::CONTROL: {
          auto c = item.getControl();
          auto kind = static_cast<unsigned>(c.getKind());
          if (kind > static_cast<unsigned>(ControlKind::Custom))
            return "unknown control kind " + std::to_string(kind);
          Control& ctl = beginControl(slot(items, used));
          ++used;
          ctl.kind = static_cast<ControlKind>(kind);
          ctl.root = c.getRoot();
          ctl.value = c.getValue();
          ctl.time = c.getTime();
          ctl.task = c.getTask();
          ctl.ok = c.getOk();
          if (c.hasPayload()) {
            auto p = c.getPayload();
            ctl.payload.assign(reinterpret_cast<const char*>(p.begin()), p.size());
          }
          break;
        }
        default: return "unknown item kind";
      }
    }
  } catch (const kj::Exception& e) {
    return std::string("malformed Cap'n Proto frame: ") + e.getDescription().cStr();
  }
  return {};
}

// ---------------------------------------------------------------- the writer

constexpr uint64_t structPointer(int64_t from, int64_t to, uint16_t dataWords, uint16_t ptrs) {
  return static_cast<uint32_t>(static_cast<int32_t>(to - from - 1) * 4) |
         (static_cast<uint64_t>(dataWords) << 32) | (static_cast<uint64_t>(ptrs) << 48);
}
constexpr uint64_t listPointer(int64_t from, int64_t to, uint64_t elementSize, uint64_t count) {
  return (static_cast<uint32_t>(static_cast<int32_t>(to - from - 1) * 4) | 1u) |
         (elementSize << 32) | (count << 35);
}
constexpr uint64_t compositeTag(uint64_t count, uint16_t dataWords, uint16_t ptrs) {
  return (count << 2) | (static_cast<uint64_t>(dataWords) << 32) |
         (static_cast<uint64_t>(ptrs) << 48);
}
constexpr size_t blobWords(size_t bytes) { return (bytes + 7) / 8; }

}  // namespace

zmq::message_t FrameEncoder::encode(TaskId srcTask, const std::vector<OutItem>& items) {
  using namespace lay;
  // Size first, so the frame is written once, in place, into the message ZeroMQ sends.
  size_t words = 1 + kFrameData + kFramePtrs + 1 + items.size() * (kItemData + kItemPtrs);
  for (const OutItem& it : items) {
    if (it.isTuple) {
      const Values& vals = it.tuple.values();
      words += kTupleData + kTuplePtrs + 1 + vals.size() * (kValueData + kValuePtrs);
      for (const Value& v : vals) {
        if (auto s = std::get_if<std::string>(&v)) words += blobWords(s->size() + 1);
        if (auto b = std::get_if<Bytes>(&v)) words += blobWords(b->data.size());
      }
      if (!it.tuple.anchors().empty())
        words += 1 + it.tuple.anchors().size() * (kAnchorData + kAnchorPtrs);
    } else {
      words += kControlData + kControlPtrs + blobWords(it.control.payload.size());
    }
  }
  zmq::message_t msg(8 + words * 8);
  // Every word is written below (unused fields and null pointers as zeros; a blob's last word is
  // zeroed before its bytes go in, for the padding and Text's NUL), so no memset of the frame.
  auto* base = static_cast<uint64_t*>(msg.data());
  base[0] = static_cast<uint64_t>(words) << 32;  // one segment of `words`
  uint64_t* w = base + 1;
  int64_t next = 0;
  auto alloc = [&](size_t n) {
    int64_t at = next;
    next += static_cast<int64_t>(n);
    return at;
  };
  auto blob = [&](int64_t ptr, const std::string& bytes, bool text) {
    size_t n = blobWords(bytes.size() + (text ? 1 : 0));
    int64_t at = alloc(n);
    w[ptr] = listPointer(ptr, at, kByteElements, bytes.size() + (text ? 1 : 0));
    if (n) w[at + static_cast<int64_t>(n) - 1] = 0;
    std::memcpy(w + at, bytes.data(), bytes.size());
  };
  int64_t root = alloc(1);
  int64_t frame = alloc(kFrameData + kFramePtrs);
  w[root] = structPointer(root, frame, kFrameData, kFramePtrs);
  w[frame] = kWireVersion | (static_cast<uint64_t>(static_cast<uint32_t>(srcTask)) << 32);
  uint32_t itemWords = kItemData + kItemPtrs;
  int64_t tag = alloc(1 + items.size() * itemWords);
  w[frame + kFrameData] =
      listPointer(frame + kFrameData, tag, kCompositeElements, items.size() * itemWords);
  w[tag] = compositeTag(items.size(), kItemData, kItemPtrs);
  for (size_t i = 0; i < items.size(); ++i) {
    const OutItem& it = items[i];
    int64_t item = tag + 1 + static_cast<int64_t>(i * itemWords);
    int64_t ptr = item + kItemData;
    if (it.isTuple) {
      w[item] = wire::Item::TUPLE;
      int64_t t = alloc(kTupleData + kTuplePtrs);
      w[ptr] = structPointer(ptr, t, kTupleData, kTuplePtrs);
      w[t] = it.stream;
      w[t + 1] = static_cast<uint64_t>(it.tuple.originNanos());
      w[t + kTupleData + 1] = 0;  // no anchors unless written below
      const Values& vals = it.tuple.values();
      uint32_t valueWords = kValueData + kValuePtrs;
      int64_t vtag = alloc(1 + vals.size() * valueWords);
      w[t + kTupleData] =
          listPointer(t + kTupleData, vtag, kCompositeElements, vals.size() * valueWords);
      w[vtag] = compositeTag(vals.size(), kValueData, kValuePtrs);
      for (size_t j = 0; j < vals.size(); ++j) {
        int64_t v = vtag + 1 + static_cast<int64_t>(j * valueWords);
        const Value& val = vals[j];
        w[v] = val.index();
        w[v + 1] = 0;
        w[v + kValueData] = 0;
        switch (typeOf(val)) {
          case Type::Int64: w[v + 1] = static_cast<uint64_t>(std::get<int64_t>(val)); break;
          case Type::Double: w[v + 1] = std::bit_cast<uint64_t>(std::get<double>(val)); break;
          case Type::Bool: w[v + 1] = std::get<bool>(val) ? 1 : 0; break;
          case Type::String: blob(v + kValueData, std::get<std::string>(val), true); break;
          case Type::Bytes: blob(v + kValueData, std::get<Bytes>(val).data, false); break;
          case Type::Timestamp:
            w[v + 1] = static_cast<uint64_t>(std::get<Timestamp>(val).micros);
            break;
          default: w[v] = wire::Value::NULL_; break;
        }
      }
      const auto& anchors = it.tuple.anchors();
      if (!anchors.empty()) {
        uint32_t anchorWords = kAnchorData + kAnchorPtrs;
        int64_t atag = alloc(1 + anchors.size() * anchorWords);
        w[t + kTupleData + 1] = listPointer(t + kTupleData + 1, atag, kCompositeElements,
                                            anchors.size() * anchorWords);
        w[atag] = compositeTag(anchors.size(), kAnchorData, kAnchorPtrs);
        for (size_t j = 0; j < anchors.size(); ++j) {
          w[atag + 1 + static_cast<int64_t>(j * anchorWords)] = anchors[j].root;
          w[atag + 2 + static_cast<int64_t>(j * anchorWords)] = anchors[j].edge;
        }
      }
    } else {
      w[item] = wire::Item::CONTROL;
      const Control& ctl = it.control;
      int64_t c = alloc(kControlData + kControlPtrs);
      w[ptr] = structPointer(ptr, c, kControlData, kControlPtrs);
      w[c] = static_cast<uint64_t>(ctl.kind) | (static_cast<uint64_t>(ctl.ok ? 1 : 0) << 16) |
             (static_cast<uint64_t>(static_cast<uint32_t>(ctl.task)) << 32);
      w[c + 1] = ctl.root;
      w[c + 2] = ctl.value;
      w[c + 3] = static_cast<uint64_t>(ctl.time);
      w[c + kControlData] = 0;
      if (!ctl.payload.empty()) blob(c + kControlData, ctl.payload, false);
    }
  }
  if (next != static_cast<int64_t>(words))
    throw std::logic_error("gale frame encoder: sized " + std::to_string(words) +
                           " words, wrote " + std::to_string(next));
  return msg;
}

std::string FrameDecoder::decode(const void* data, size_t size, const SchemaRegistry& registry,
                                 const FrameLimits& limits, FrameHandler& handler) {
  if (busy_) {  // a handler receiving on the decoder that is delivering to it
    FrameDecoder nested;
    nested.direct_ = direct_;
    return nested.decode(data, size, registry, limits, handler);
  }
  if (size < 16) return "frame of " + std::to_string(size) + " bytes is too short";
  if (size % 8 != 0) return "frame size " + std::to_string(size) + " is not a multiple of 8";
  if (size > limits.maxFrameBytes)
    return "frame of " + std::to_string(size) + " bytes exceeds the limit of " +
           std::to_string(limits.maxFrameBytes);
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) return "frame buffer is not 8-byte aligned";
  size_t used = 0;
  TaskId src = -1;
  const auto* words = static_cast<const uint64_t*>(data);
  if (!direct_ || !readDirect(words, size / 8, registry, limits, items_, used, src)) {
    std::string err = readGeneric(data, size, registry, limits, items_, used, src);
    if (!err.empty()) return err;
  }
  // Deliver. Items are moved out one by one; what a handler leaves behind is reused.
  busy_ = true;
  struct Done {
    bool& b;
    ~Done() { b = false; }
  } done{busy_};
  for (size_t k = 0; k < used; ++k) {
    OutItem& it = items_[k];
    if (it.isTuple)
      handler.onTuple(src, std::move(it.tuple));
    else
      handler.onControl(src, std::move(it.control));
  }
  // A burst of huge frames should not pin their storage for good.
  if (items_.size() > 4096) items_.resize(4096);
  return {};
}

std::string decodeFrame(const void* data, size_t size, const SchemaRegistry& registry,
                        const FrameLimits& limits, FrameHandler& handler) {
  FrameDecoder decoder;
  return decoder.decode(data, size, registry, limits, handler);
}

}  // namespace gale
