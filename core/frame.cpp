#include "gale/core/frame.h"

#include <algorithm>
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

namespace {

void encodeValue(wire::Value::Builder b, const Value& v) {
  switch (typeOf(v)) {
    case Type::Null: b.setNull(); break;
    case Type::Int64: b.setInt64(std::get<int64_t>(v)); break;
    case Type::Double: b.setFloat64(std::get<double>(v)); break;
    case Type::Bool: b.setBool(std::get<bool>(v)); break;
    case Type::String: {
      const auto& s = std::get<std::string>(v);
      b.setText(capnp::Text::Reader(s.data(), s.size()));
      break;
    }
    case Type::Bytes: {
      const auto& s = std::get<Bytes>(v).data;
      b.setData(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size()));
      break;
    }
    case Type::Timestamp: b.setTimestamp(std::get<Timestamp>(v).micros); break;
    default: b.setNull(); break;
  }
}

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

Value decodeValue(wire::Value::Reader r) {
  switch (r.which()) {
    case wire::Value::NULL_: return std::monostate{};
    case wire::Value::INT64: return r.getInt64();
    case wire::Value::FLOAT64: return r.getFloat64();
    case wire::Value::BOOL: return r.getBool();
    case wire::Value::TEXT: {
      auto t = r.getText();
      return std::string(t.begin(), t.size());
    }
    case wire::Value::DATA: {
      auto d = r.getData();
      return Bytes{std::string(reinterpret_cast<const char*>(d.begin()), d.size())};
    }
    case wire::Value::TIMESTAMP: return Timestamp{r.getTimestamp()};
  }
  return std::monostate{};
}

}  // namespace

zmq::message_t FrameEncoder::encode(TaskId srcTask, const std::vector<OutItem>& items) {
  // The segment is all zeros here: vector growth zero-fills, and the builder's destructor
  // zeroes the part it used. (Zeroing it all on every call cost a memset of the largest frame
  // ever sent for each one-tuple frame.)
  if (firstSegment_.empty()) firstSegment_.resize(1024);
  size_t words = 0;
  // The builder lives in this inner scope: its destructor zeroes the first segment, so that
  // segment must not be reallocated (grown, below) while the builder is alive.
  zmq::message_t msg = [&] {
  capnp::MallocMessageBuilder mb(kj::arrayPtr(reinterpret_cast<capnp::word*>(firstSegment_.data()),
                                              firstSegment_.size()));
  auto frame = mb.initRoot<wire::Frame>();
  frame.setVersion(kWireVersion);
  frame.setSrcTask(srcTask);
  auto list = frame.initItems(static_cast<unsigned>(items.size()));
  for (size_t i = 0; i < items.size(); ++i) {
    const OutItem& it = items[i];
    if (it.isTuple) {
      auto t = list[i].initTuple();
      t.setStream(it.stream);
      t.setOriginNanos(it.tuple.originNanos());
      const auto& vals = it.tuple.values();
      auto vl = t.initValues(static_cast<unsigned>(vals.size()));
      for (size_t j = 0; j < vals.size(); ++j) encodeValue(vl[j], vals[j]);
      const auto& anchors = it.tuple.anchors();
      if (!anchors.empty()) {
        auto al = t.initAnchors(static_cast<unsigned>(anchors.size()));
        for (size_t j = 0; j < anchors.size(); ++j) {
          al[j].setRoot(anchors[j].root);
          al[j].setEdge(anchors[j].edge);
        }
      }
    } else {
      auto c = list[i].initControl();
      const Control& ctl = it.control;
      c.setKind(static_cast<wire::ControlKind>(ctl.kind));
      c.setRoot(ctl.root);
      c.setValue(ctl.value);
      c.setTime(ctl.time);
      c.setTask(ctl.task);
      c.setOk(ctl.ok);
      if (!ctl.payload.empty())
        c.setPayload(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(ctl.payload.data()),
                                         ctl.payload.size()));
    }
  }
  words = capnp::computeSerializedSizeInWords(mb);
  zmq::message_t msg(words * sizeof(capnp::word));
  kj::ArrayOutputStream out(kj::arrayPtr(static_cast<kj::byte*>(msg.data()), msg.size()));
  capnp::writeMessage(out, mb);
  return msg;
  }();
  // Next time, start with one segment big enough for a frame like this one.
  if (words > firstSegment_.size()) firstSegment_.resize(std::min<size_t>(words + 64, 1u << 20));
  return msg;
}

std::string decodeFrame(const void* data, size_t size, const SchemaRegistry& registry,
                        const FrameLimits& limits, FrameHandler& handler) {
  if (size < 16) return "frame of " + std::to_string(size) + " bytes is too short";
  if (size % 8 != 0) return "frame size " + std::to_string(size) + " is not a multiple of 8";
  if (size > limits.maxFrameBytes)
    return "frame of " + std::to_string(size) + " bytes exceeds the limit of " +
           std::to_string(limits.maxFrameBytes);
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) return "frame buffer is not 8-byte aligned";
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
    auto items = frame.getItems();
    if (items.size() > limits.maxItems)
      return "frame has " + std::to_string(items.size()) + " items, more than " +
             std::to_string(limits.maxItems);
    // Pass 1: check everything, deliver nothing.
    for (auto item : items) {
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
          for (unsigned j = 0; j < vals.size(); ++j) {
            Type got = wireType(vals[j]);
            Type want = fields[j].type;
            if (got == Type::Any) return "unknown value kind in field '" + fields[j].name + "'";
            if (want != Type::Any && got != Type::Null && got != want)
              return "field '" + fields[j].name + "' of stream '" + (*schema)->component + ":" +
                     (*schema)->stream + "' is " + typeName(got) + ", declared " +
                     typeName(want);
            if (got == Type::String) (void)vals[j].getText();  // validates NUL termination
            if (got == Type::Bytes) (void)vals[j].getData();
          }
          (void)t.getAnchors().size();
          break;
        }
        case wire::Item::CONTROL: {
          auto c = item.getControl();
          auto kind = static_cast<unsigned>(c.getKind());
          if (kind > static_cast<unsigned>(ControlKind::Custom))
            return "unknown control kind " + std::to_string(kind);
          if (c.hasPayload()) (void)c.getPayload();
          break;
        }
        default: return "unknown item kind";
      }
    }
    // Pass 2: deliver.
    TaskId src = frame.getSrcTask();
    for (auto item : items) {
      if (item.which() == wire::Item::TUPLE) {
        auto t = item.getTuple();
        auto vals = t.getValues();
        Values values;
        values.reserve(vals.size());
        for (auto v : vals) values.push_back(decodeValue(v));
        Tuple tuple(*registry.find(t.getStream()), std::move(values));
        tuple.setSourceTask(src);
        tuple.setOriginNanos(t.getOriginNanos());
        auto anchors = t.getAnchors();
        if (anchors.size()) {
          auto& a = tuple.mutableAnchors();
          a.reserve(anchors.size());
          for (auto an : anchors) a.push_back({an.getRoot(), an.getEdge()});
        }
        handler.onTuple(src, std::move(tuple));
      } else {
        auto c = item.getControl();
        Control ctl;
        ctl.kind = static_cast<ControlKind>(c.getKind());
        ctl.root = c.getRoot();
        ctl.value = c.getValue();
        ctl.time = c.getTime();
        ctl.task = c.getTask();
        ctl.ok = c.getOk();
        if (c.hasPayload()) {
          auto p = c.getPayload();
          ctl.payload.assign(reinterpret_cast<const char*>(p.begin()), p.size());
        }
        handler.onControl(src, std::move(ctl));
      }
    }
  } catch (const kj::Exception& e) {
    return std::string("malformed Cap'n Proto frame: ") + e.getDescription().cStr();
  }
  return {};
}

}  // namespace gale
