#include <thread>

#include <gtest/gtest.h>

#include "gale/core/keyed.h"
#include "gale/core/operator.h"
#include "gale/core/tuple.h"

namespace gale {
namespace {

TEST(Fields, MismatchNamesTheCountOrTheFieldThatIsWrong) {
  Fields f{{"word", Type::String}, {"count", Type::Int64}};
  EXPECT_EQ(f.mismatch({std::string("a"), int64_t{1}}), "");
  EXPECT_NE(f.mismatch({std::string("a")}).find("expected 2 values"), std::string::npos);
  EXPECT_NE(f.mismatch({int64_t{1}, int64_t{1}}).find("'word'"), std::string::npos);
  // Null fits any declared type.
  EXPECT_EQ(f.mismatch({std::monostate{}, int64_t{1}}), "");
}

TEST(Fields, UntypedFieldsAcceptAnyValue) {
  Fields f{"a", "b"};
  EXPECT_EQ(f.mismatch({1.5, true}), "");
  EXPECT_EQ(f.indexOf("b"), 1);
  EXPECT_EQ(f.indexOf("c"), -1);
}

TEST(Tuple, AccessorsByNameCheckTypeAndSayWhichFieldIsMissing) {
  auto schema = makeSchema("split", "default", Fields{"word", "n", "ts"});
  Tuple t(schema, {std::string("hi"), int64_t{3}, Timestamp{42}});
  EXPECT_EQ(t.getString("word"), "hi");
  EXPECT_EQ(t.getInt("n"), 3);
  EXPECT_DOUBLE_EQ(t.getDouble("n"), 3.0);
  EXPECT_EQ(t.getTimestamp("ts").micros, 42);
  try {
    t.get("nope");
    FAIL();
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("split"), std::string::npos);
  }
  EXPECT_THROW(t.getString("n"), std::invalid_argument);
}

// getInt(i) / getString(i) are inline; a wrong type or index still throws, naming the field.
TEST(Tuple, AccessorsByIndexCheckTypeAndIndex) {
  Tuple t(makeSchema("split", "default", Fields{"word", "n"}), {std::string("hi"), int64_t{3}});
  EXPECT_EQ(t.getString(0), "hi");
  EXPECT_EQ(t.getInt(1), 3);
  try {
    t.getString(1);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("#1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.getInt(0), std::invalid_argument);
  EXPECT_THROW(t.getInt(2), std::out_of_range);
  EXPECT_THROW(t.getString(2), std::out_of_range);
}

TEST(HashValue, IsStableAndDistinguishesTypes) {
  EXPECT_EQ(hashValue(std::string("abc")), hashValue(std::string("abc")));
  EXPECT_NE(hashValue(std::string("abc")), hashValue(std::string("abd")));
  EXPECT_NE(hashValue(int64_t{1}), hashValue(Timestamp{1}));
  EXPECT_EQ(hashValue(0.0), hashValue(-0.0));
  // A fixed value: the hash must not change between builds, or processes would disagree.
  EXPECT_EQ(hashValue(int64_t{7}), hashValue(int64_t{7}));
}

// The keyed operators' maps (DStream windows, updateStateByKey, sessions, count windows) iterate
// in the order of this hash, and that order is their output's order: it must be the same in
// every run and process (no seed, no address), so these are fixed values.
TEST(KeyHash, AKeyHashesToTheSameFixedValueInEveryProcess) {
  const Values v{std::string("4f0e2d52-0a9e-4b1c-8f3e-5d2a1b7c9e60"), int64_t{42}, std::string()};
  EXPECT_EQ(keyed::hashKey(v, {0}), 11697973155551451000ULL);
  EXPECT_EQ(keyed::hashKey(v, {1}), 3785867551109614406ULL);
  EXPECT_EQ(keyed::hashKey(v, {0, 1}), 10232330973288916982ULL);
  EXPECT_EQ(keyed::hashKey(v, {2}), 1717052276008448800ULL);
  EXPECT_NE(keyed::hashKey(v, {0, 1}), keyed::hashKey(v, {1, 0}));
  const Values w{std::string("4f0e2d52-0a9e-4b1c-8f3e-5d2a1b7c9e61")};
  EXPECT_NE(keyed::hashKey(v, {0}), keyed::hashKey(w, {0}));
}

TEST(OutputFieldsDeclarer, RejectsAStreamDeclaredTwice) {
  OutputFieldsDeclarer d;
  d.declare(Fields{"a"});
  d.declareStream("late", Fields{"a", "reason"});
  EXPECT_THROW(d.declare(Fields{"b"}), std::invalid_argument);
  ASSERT_NE(d.find("late"), nullptr);
  EXPECT_EQ(d.find("late")->size(), 2u);
}

TEST(RecycledValues, ADestroyedTuplesVectorComesBackEmptyWithItsCapacity) {
  while (recycledValues().capacity() > 0) {  // empty this thread's pool
  }
  const Value* storage = nullptr;
  {
    Values v;
    v.reserve(4);
    v.emplace_back(std::string("a string longer than the small-string buffer"));
    v.emplace_back(int64_t{7});
    storage = v.data();
    Tuple t(makeSchema("c", kDefaultStream, Fields{"s", "i"}), std::move(v));
  }
  Values again = recycledValues();
  EXPECT_TRUE(again.empty());
  EXPECT_EQ(again.capacity(), 4u);
  EXPECT_EQ(again.data(), storage) << "the same heap block, not a new one";
  EXPECT_EQ(recycledValues().capacity(), 0u) << "the pool held one vector";
}

TEST(RecycledValues, AListOfScalarsIsKeptAsLeftAndAListWithTextIsClearedOnItsWayIn) {
  while (recycledValues().capacity() > 0) {  // empty this thread's pool
  }
  const Values scalars{int64_t{7}, Timestamp{9}, 2.5, true, Value{}};
  Values v = scalars;
  recycleValues(std::move(v));
  EXPECT_EQ(recycledValuesAsLeft(), scalars) << "taken as it was left";
  v = scalars;
  recycleValues(std::move(v));
  EXPECT_TRUE(recycledValues().empty()) << "recycledValues() clears what the pool kept";
  for (Value text : {Value{std::string("a string longer than the small-string buffer")},
                     Value{Bytes{"bytes"}}}) {
    Values t{int64_t{1}, text};
    t.reserve(4);
    recycleValues(std::move(t));
    Values back = recycledValuesAsLeft();
    EXPECT_TRUE(back.empty()) << "the pool kept " << toString(text);
    EXPECT_EQ(back.capacity(), 4u);
  }
}

TEST(RecycledValues, ThePoolKeepsNeitherWideVectorsNorMoreThanItsBound) {
  while (recycledValues().capacity() > 0) {
  }
  Values wide;
  wide.reserve(1000);
  recycleValues(std::move(wide));
  EXPECT_EQ(recycledValues().capacity(), 0u) << "a 1000-wide vector was kept";
  for (int i = 0; i < 10'000; ++i) {
    Values v;
    v.reserve(2);
    recycleValues(std::move(v));
  }
  size_t kept = 0;
  while (recycledValues().capacity() > 0) ++kept;
  EXPECT_GT(kept, 0u);
  EXPECT_LE(kept, 1024u);
}

TEST(RecycledValues, EachThreadHasItsOwnPool) {
  while (recycledValues().capacity() > 0) {
  }
  std::thread([] {
    Values v;
    v.reserve(3);
    recycleValues(std::move(v));
    EXPECT_EQ(recycledValues().capacity(), 3u);
    v.reserve(3);
    recycleValues(std::move(v));  // left in the other thread's pool, freed with it
  }).join();
  EXPECT_EQ(recycledValues().capacity(), 0u);
}

// A tuple that outlives its thread's pool (destroyed in the thread's teardown, after the pool):
// it frees its values as usual (without the guard, ASan or valgrind report writes into the
// destroyed pool).
struct TupleHolder {
  std::unique_ptr<Tuple> t;
  ~TupleHolder() { t.reset(); }
};

TEST(RecycledValues, ATupleDestroyedAfterItsThreadsPoolFreesItsValues) {
  std::thread([] {
    // thread_locals die in the reverse order of their construction: the holder (first) outlives
    // the pool (constructed by the first use below).
    thread_local TupleHolder holder;
    Values v;
    v.reserve(2);
    v.emplace_back(int64_t{1});
    recycleValues(recycledValues());
    holder.t = std::make_unique<Tuple>(makeSchema("c", kDefaultStream, Fields{"x"}), std::move(v));
  }).join();
  SUCCEED() << "the thread ended without touching its destroyed pool";
}

}  // namespace
}  // namespace gale
