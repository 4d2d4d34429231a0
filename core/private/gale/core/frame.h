// Encoding and checked decoding of wire frames (private to gale's runtimes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "gale/core/tuple.h"

namespace gale {

enum class ControlKind : uint8_t {
  AckInit = 0, Ack, Fail, TreeDone, Watermark, BatchBegin, BatchEnd, Barrier, EndOfStream, Custom
};
const char* controlKindName(ControlKind k);

// A control message. Field meaning by kind is documented in core/wire.capnp.
struct Control {
  ControlKind kind = ControlKind::EndOfStream;
  uint64_t root = 0;
  uint64_t value = 0;
  int64_t time = 0;
  TaskId task = -1;
  bool ok = false;
  std::string payload;
};

// Maps the topology-wide stream ids carried on the wire to schemas, so a receiver can check
// every tuple against the fields its sender declared.
class SchemaRegistry {
 public:
  StreamId add(SchemaPtr schema);  // returns the new id
  const SchemaPtr* find(StreamId id) const {
    return id < schemas_.size() ? &schemas_[id] : nullptr;
  }
  // Id of (component, stream), or -1.
  int idOf(const std::string& component, const std::string& stream) const;
  size_t size() const { return schemas_.size(); }

 private:
  std::vector<SchemaPtr> schemas_;
};

// One pending outbound item: a tuple on a stream, or a control message.
struct OutItem {
  bool isTuple = true;
  StreamId stream = 0;
  Tuple tuple;
  Control control;
};

inline constexpr uint16_t kWireVersion = 1;

struct FrameLimits {
  size_t maxFrameBytes = 16u << 20;  // larger frames are rejected before decoding
  size_t maxItems = 1u << 16;
};

// Encodes items into one ZeroMQ message. Writes the Cap'n Proto layout of core/wire.capnp
// directly (one segment, sized exactly before writing): the builder API cost several hundred
// instructions per tuple (initStruct/initStructList/setBlob, then computeSerializedSize and a
// copy into the message). Tests check every frame it writes against Cap'n Proto's own reader.
class FrameEncoder {
 public:
  zmq::message_t encode(TaskId srcTask, const std::vector<OutItem>& items);
};

// Receives decoded items. Tuples are handed over by rvalue so they can be moved into queues.
class FrameHandler {
 public:
  virtual ~FrameHandler() = default;
  virtual void onTuple(TaskId srcTask, Tuple&& tuple) = 0;
  virtual void onControl(TaskId srcTask, Control&& control) = 0;
};

// Checks and decodes frames in one pass into reused items, then delivers them. A frame is
// checked whole (size, alignment, Cap'n Proto structure, version, every tuple against its
// stream's declared fields) before any item is delivered, so a rejected frame delivers nothing.
//
// Two readers, one contract: a direct reader of the layout gale's encoder writes (one segment,
// near pointers, struct sizes at least the schema's) handles the common case; anything else
// (other layouts a valid Cap'n Proto writer may produce, and every malformed or mistyped frame)
// goes to Cap'n Proto's generic reader, which alone decides rejections and words their reasons.
// The direct reader never rejects, so both readers accept and reject exactly the same frames
// (a randomized test holds them to that).
class FrameDecoder {
 public:
  // Empty string on success; otherwise why the frame was rejected (nothing was delivered).
  std::string decode(const void* data, size_t size, const SchemaRegistry& registry,
                     const FrameLimits& limits, FrameHandler& handler);
  // Tests: false = always use Cap'n Proto's generic reader.
  void setDirectReader(bool on) { direct_ = on; }

 private:
  std::vector<OutItem> items_;  // decoded, not yet delivered; kept to reuse their storage
  bool direct_ = true;
  bool busy_ = false;  // a handler that receives from the same decoder gets a fresh one
};

// One-off decode (tests, tools); a receiver keeps a FrameDecoder to reuse its buffers.
std::string decodeFrame(const void* data, size_t size, const SchemaRegistry& registry,
                        const FrameLimits& limits, FrameHandler& handler);

}  // namespace gale
