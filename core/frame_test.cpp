#include "gale/core/frame.h"

#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "frame_test_util.h"

namespace gale {
namespace {

using testing::Collect;
using testing::frameTestRegistry;

// Looks at tuples in place and keeps copies (as a bolt executing them does): the decoder's
// buffers stay with the decoder and are reused by the next frame.
struct CopyInPlace : Collect {
  void onTuple(TaskId src, Tuple&& t) override {
    sources.push_back(src);
    order.push_back(true);
    tuples.push_back(t);
  }
};


Value randomValue(std::mt19937_64& rng) {
  switch (rng() % 7) {
    case 0: return std::monostate{};
    case 1: return static_cast<int64_t>(rng());
    case 2: return static_cast<double>(static_cast<int64_t>(rng() % 100000)) / 7.0;
    case 3: return (rng() & 1) != 0;
    case 4: return std::string(rng() % 40, static_cast<char>('a' + rng() % 26));
    case 5: return Bytes{std::string(rng() % 20, static_cast<char>(rng() % 256))};
    default: return Timestamp{static_cast<int64_t>(rng() % 1'000'000'000)};
  }
}

std::vector<OutItem> randomItems(std::mt19937_64& rng, const SchemaRegistry& reg) {
  std::vector<OutItem> items(rng() % 12);
  for (auto& it : items) {
    if (rng() % 4 == 0) {
      it.isTuple = false;
      it.control.kind = static_cast<ControlKind>(rng() % 10);
      it.control.root = rng();
      it.control.value = rng();
      it.control.time = static_cast<int64_t>(rng());
      it.control.task = static_cast<TaskId>(static_cast<int32_t>(rng()));
      it.control.ok = (rng() & 1) != 0;
      if (rng() % 3 == 0) it.control.payload = std::string(rng() % 30, 'p');
      continue;
    }
    it.isTuple = true;
    switch (rng() % 3) {
      case 0:
        it.stream = 0;
        it.tuple = Tuple(*reg.find(0), {std::string(rng() % 24, 'w'), static_cast<int64_t>(rng())});
        break;
      case 1:
        it.stream = 1;
        it.tuple = Tuple(*reg.find(1), {randomValue(rng), randomValue(rng), randomValue(rng)});
        break;
      default:
        it.stream = 2;
        it.tuple = Tuple(*reg.find(2), {1.5 * static_cast<double>(rng() % 1000), (rng() & 1) != 0,
                                        Timestamp{static_cast<int64_t>(rng() % 99999)},
                                        Bytes{std::string(rng() % 9, '\0')}});
    }
    it.tuple.setOriginNanos(static_cast<int64_t>(rng()));
    for (size_t a = rng() % 3; a > 0; --a) it.tuple.mutableAnchors().push_back({rng(), rng()});
  }
  return items;
}

// Equal values, doubles by their bits (a damaged frame may carry a NaN, which != itself).
bool sameValues(const Values& a, const Values& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].index() != b[i].index()) return false;
    if (auto d = std::get_if<double>(&a[i])) {
      if (std::memcmp(d, &std::get<double>(b[i]), sizeof(double)) != 0) return false;
    } else if (a[i] != b[i]) {
      return false;
    }
  }
  return true;
}

std::vector<uint64_t> words(const zmq::message_t& m) {
  std::vector<uint64_t> w((m.size() + 7) / 8);
  std::memcpy(w.data(), m.data(), m.size());
  return w;
}

void expectSameItems(const Collect& got, const std::vector<OutItem>& sent, TaskId src) {
  ASSERT_EQ(got.order.size(), sent.size());
  size_t t = 0, c = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    ASSERT_EQ(got.order[i], sent[i].isTuple) << "item " << i;
    EXPECT_EQ(got.sources[i], src);
    if (sent[i].isTuple) {
      const Tuple& a = got.tuples[t++];
      EXPECT_EQ(a.values(), sent[i].tuple.values()) << "item " << i;
      EXPECT_EQ(a.anchors(), sent[i].tuple.anchors()) << "item " << i;
      EXPECT_EQ(a.originNanos(), sent[i].tuple.originNanos());
      EXPECT_EQ(a.schema(), sent[i].tuple.schema());
      EXPECT_EQ(a.sourceTask(), src);
    } else {
      const Control& a = got.controls[c++];
      const Control& b = sent[i].control;
      EXPECT_EQ(a.kind, b.kind);
      EXPECT_EQ(a.root, b.root);
      EXPECT_EQ(a.value, b.value);
      EXPECT_EQ(a.time, b.time);
      EXPECT_EQ(a.task, b.task);
      EXPECT_EQ(a.ok, b.ok);
      EXPECT_EQ(a.payload, b.payload);
    }
  }
}

TEST(FrameEncoder, EveryFrameItWritesIsReadBackExactlyByCapnProtosOwnReader) {
  auto reg = frameTestRegistry();
  std::mt19937_64 rng(7);
  FrameEncoder enc;
  for (int round = 0; round < 500; ++round) {
    auto items = randomItems(rng, *reg);
    TaskId src = static_cast<TaskId>(rng() % 1000) - 10;
    auto w = words(enc.encode(src, items));
    FrameDecoder generic;
    generic.setDirectReader(false);
    Collect c;
    ASSERT_EQ(generic.decode(w.data(), w.size() * 8, *reg, FrameLimits{}, c), "");
    expectSameItems(c, items, src);
  }
}

TEST(FrameDecoder, DirectReaderDeliversWhatTheGenericReaderDelivers) {
  auto reg = frameTestRegistry();
  std::mt19937_64 rng(11);
  FrameEncoder enc;
  for (int round = 0; round < 300; ++round) {
    auto items = randomItems(rng, *reg);
    auto w = words(enc.encode(3, items));
    FrameDecoder direct;
    Collect c;
    ASSERT_EQ(direct.decode(w.data(), w.size() * 8, *reg, FrameLimits{}, c), "");
    expectSameItems(c, items, 3);
  }
}

// The property that lets the direct reader exist: on any input, damaged or not, it accepts and
// rejects exactly what Cap'n Proto's reader does, with the same reason and the same items.
TEST(FrameDecoder, OnDamagedFramesBothReadersAgreeOnVerdictReasonAndItems) {
  auto reg = frameTestRegistry();
  std::mt19937_64 rng(12345);
  FrameEncoder enc;
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 20000; ++round) {
    auto items = randomItems(rng, *reg);
    auto w = words(enc.encode(5, items));
    auto* bytes = reinterpret_cast<unsigned char*>(w.data());
    size_t n = w.size() * 8;
    switch (rng() % 4) {
      case 0: bytes[rng() % n] ^= static_cast<unsigned char>(1u << (rng() % 8)); break;
      case 1: bytes[rng() % n] = static_cast<unsigned char>(rng()); break;
      case 2:  // a pointer-sized word of garbage
        w[rng() % w.size()] = rng();
        break;
      default:
        for (int k = 0; k < 3; ++k) bytes[rng() % n] = static_cast<unsigned char>(rng());
    }
    if (rng() % 10 == 0 && w.size() > 2) n -= 8 * (1 + rng() % (w.size() - 2));  // truncated
    FrameDecoder direct, generic;
    generic.setDirectReader(false);
    CopyInPlace a, b;
    std::string ea = direct.decode(w.data(), n, *reg, FrameLimits{}, a);
    std::string eb = generic.decode(w.data(), n, *reg, FrameLimits{}, b);
    ASSERT_EQ(ea, eb) << "round " << round;
    if (ea.empty()) {
      ++accepted;
      ASSERT_EQ(a.order, b.order) << "round " << round;
      ASSERT_EQ(a.sources, b.sources);
      for (size_t i = 0; i < a.tuples.size(); ++i) {
        ASSERT_TRUE(sameValues(a.tuples[i].values(), b.tuples[i].values())) << "round " << round;
        ASSERT_EQ(a.tuples[i].anchors(), b.tuples[i].anchors()) << "round " << round;
        ASSERT_EQ(a.tuples[i].originNanos(), b.tuples[i].originNanos());
        ASSERT_EQ(a.tuples[i].schema(), b.tuples[i].schema());
      }
      for (size_t i = 0; i < a.controls.size(); ++i) {
        ASSERT_EQ(a.controls[i].kind, b.controls[i].kind);
        ASSERT_EQ(a.controls[i].root, b.controls[i].root);
        ASSERT_EQ(a.controls[i].value, b.controls[i].value);
        ASSERT_EQ(a.controls[i].time, b.controls[i].time);
        ASSERT_EQ(a.controls[i].task, b.controls[i].task);
        ASSERT_EQ(a.controls[i].ok, b.controls[i].ok);
        ASSERT_EQ(a.controls[i].payload, b.controls[i].payload);
      }
    } else {
      ++rejected;
      EXPECT_TRUE(a.order.empty()) << "a rejected frame delivered items";
    }
  }
  // Both outcomes must have been exercised, or the comparison proved nothing.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(rejected, 1000);
}

TEST(FrameDecoder, AReusedDecoderLeavesNothingOfEarlierFramesInLaterTuples) {
  auto reg = frameTestRegistry();
  FrameEncoder enc;
  FrameDecoder dec;
  std::mt19937_64 rng(99);
  // Frames alternate schemas, value kinds, anchor counts and sizes through the same slots; the
  // handler copies (leaving the decoder's storage to be reused) or moves (taking it).
  for (int round = 0; round < 400; ++round) {
    auto items = randomItems(rng, *reg);
    auto w = words(enc.encode(1, items));
    if (round % 2) {
      CopyInPlace c;
      ASSERT_EQ(dec.decode(w.data(), w.size() * 8, *reg, FrameLimits{}, c), "");
      expectSameItems(c, items, 1);
    } else {
      Collect c;
      ASSERT_EQ(dec.decode(w.data(), w.size() * 8, *reg, FrameLimits{}, c), "");
      expectSameItems(c, items, 1);
    }
  }
}

TEST(FrameDecoder, AHandlerThatDecodesAnotherFrameOnTheSameDecoderGetsBothIntact) {
  auto reg = frameTestRegistry();
  FrameEncoder enc;
  OutItem a, b;
  a.stream = b.stream = 0;
  a.tuple = Tuple(*reg->find(0), {std::string("outer"), int64_t{1}});
  b.tuple = Tuple(*reg->find(0), {std::string("inner"), int64_t{2}});
  auto outer = words(enc.encode(1, {a, a}));
  auto inner = words(enc.encode(2, {b}));
  FrameDecoder dec;
  struct Nested : FrameHandler {
    FrameDecoder* dec;
    const SchemaRegistry* reg;
    std::vector<uint64_t>* inner;
    std::vector<std::string> seen;
    void onTuple(TaskId, Tuple&& t) override {
      seen.push_back(t.getString(0));
      if (seen.size() == 1) {
        EXPECT_EQ(dec->decode(inner->data(), inner->size() * 8, *reg, FrameLimits{}, *this), "");
      }
    }
    void onControl(TaskId, Control&&) override {}
  } h;
  h.dec = &dec;
  h.reg = reg.get();
  h.inner = &inner;
  ASSERT_EQ(dec.decode(outer.data(), outer.size() * 8, *reg, FrameLimits{}, h), "");
  EXPECT_EQ(h.seen, (std::vector<std::string>{"outer", "inner", "outer"}));
}

TEST(FrameDecoder, MistypedAndUnknownStreamFramesAreRejectedWithTheirReason) {
  auto reg = frameTestRegistry();
  FrameEncoder enc;
  OutItem bad;
  bad.stream = 0;
  bad.tuple = Tuple(*reg->find(0), {int64_t{1}, int64_t{2}});
  OutItem good = bad;
  good.tuple = Tuple(*reg->find(0), {std::string("ok"), int64_t{2}});
  auto w = words(enc.encode(1, {good, bad}));
  FrameDecoder dec;
  Collect c;
  std::string err = dec.decode(w.data(), w.size() * 8, *reg, FrameLimits{}, c);
  EXPECT_NE(err.find("field 'word' of stream 'spout:default' is int64, declared string"),
            std::string::npos)
      << err;
  EXPECT_TRUE(c.order.empty()) << "the good tuple before the bad one must not be delivered";
  good.stream = 77;
  w = words(enc.encode(1, {good}));
  EXPECT_EQ(dec.decode(w.data(), w.size() * 8, *reg, FrameLimits{}, c), "unknown stream id 77");
  FrameLimits few;
  few.maxItems = 1;
  good.stream = 0;
  w = words(enc.encode(1, {good, good}));
  EXPECT_EQ(dec.decode(w.data(), w.size() * 8, *reg, few, c), "frame has 2 items, more than 1");
  EXPECT_TRUE(c.order.empty());
}

}  // namespace
}  // namespace gale
