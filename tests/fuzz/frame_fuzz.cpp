// libFuzzer target: the wire frame decoder (core/frame.cpp), the first thing bytes from another
// process meet. Properties: no crash, hang or sanitizer report on any input; the direct reader
// and Cap'n Proto's generic reader accept and reject the same frames with the same reason and
// deliver the same items (the contract documented in core/private/gale/core/frame.h); a rejected
// frame delivers nothing.
#include <cstdint>
#include <cstring>
#include <vector>

#include "frame_fuzz_registry.h"
#include "fuzz_check.h"
#include "gale/core/frame.h"

namespace {

using namespace gale;

struct Collect : FrameHandler {
  std::vector<TaskId> sources;
  std::vector<Tuple> tuples;
  std::vector<Control> controls;
  std::vector<bool> order;  // true = tuple
  void onTuple(TaskId src, Tuple&& t) override {
    sources.push_back(src);
    order.push_back(true);
    tuples.push_back(std::move(t));
  }
  void onControl(TaskId src, Control&& c) override {
    sources.push_back(src);
    order.push_back(false);
    controls.push_back(std::move(c));
  }
};

bool sameControl(const Control& a, const Control& b) {
  return a.kind == b.kind && a.root == b.root && a.value == b.value && a.time == b.time &&
         a.task == b.task && a.ok == b.ok && a.payload == b.payload;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto registry = fuzz::frameRegistry();
  // Frames arrive 8-byte aligned (ZeroMQ messages are copied into aligned buffers).
  std::vector<uint64_t> words((size + 7) / 8);
  if (size) std::memcpy(words.data(), data, size);
  FrameLimits limits;
  limits.maxItems = 1024;  // keeps one input fast; the limit itself is part of what is checked
  FrameDecoder direct, generic;
  generic.setDirectReader(false);
  Collect a, b;
  std::string ea = direct.decode(words.data(), size, *registry, limits, a);
  std::string eb = generic.decode(words.data(), size, *registry, limits, b);
  fuzz::check(ea == eb, "the direct and generic readers disagree on the verdict or its reason");
  if (!ea.empty()) {
    fuzz::check(a.order.empty() && b.order.empty(), "a rejected frame delivered items");
    return 0;
  }
  fuzz::check(a.order == b.order && a.sources == b.sources, "the readers delivered other items");
  for (size_t i = 0; i < a.tuples.size(); ++i) {
    const Tuple& x = a.tuples[i];
    const Tuple& y = b.tuples[i];
    fuzz::check(fuzz::sameValues(x.values(), y.values()), "the readers delivered other values");
    fuzz::check(x.anchors() == y.anchors() && x.originNanos() == y.originNanos() &&
                    x.schema() == y.schema(),
                "the readers delivered other tuple metadata");
    // A delivered tuple matches its declared fields (what lets a bolt trust it).
    fuzz::check(x.schema()->fields.mismatch(x.values()).empty(), "a tuple that does not fit its fields");
  }
  for (size_t i = 0; i < a.controls.size(); ++i)
    fuzz::check(sameControl(a.controls[i], b.controls[i]), "the readers delivered other controls");
  return 0;
}
