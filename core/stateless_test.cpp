#include "gale/core/stateless.h"

#include <gtest/gtest.h>

#include "window_test_util.h"

namespace gale {
namespace {

using testing::RecordingEmitter;

const SchemaPtr kLines = makeSchema("src", kDefaultStream, Fields{"line", "ts"});

TEST(StatelessOperators, SplitWordsExplodesALineIntoWordsKeepingChosenFields) {
  FlatMap split = splitWords("line", "word", {"ts"});
  RecordingEmitter out;
  split.onTuple(Tuple(kLines, Values{std::string("  the cat\tthe  "), Timestamp{5}}), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{"the", Timestamp{5}}, {"cat", Timestamp{5}},
                                             {"the", Timestamp{5}}}));
  OutputFieldsDeclarer d;
  split.declareOutputFields(d);
  EXPECT_EQ(d.find(kDefaultStream)->names(), (std::vector<std::string>{"word", "ts"}));
  out.clear();
  split.onTuple(Tuple(kLines, Values{std::string(""), Timestamp{5}}), out);
  EXPECT_TRUE(out.rows.empty());
}

TEST(StatelessOperators, MapFilterSelectAndWithColumnTransformTuples) {
  auto schema = makeSchema("src", kDefaultStream, Fields{"a", "b"});
  Tuple t(schema, Values{int64_t{3}, std::string("x")});
  RecordingEmitter out;
  Map(Fields{"twice"}, [](const Tuple& t) { return Values{t.getInt("a") * 2}; }).onTuple(t, out);
  Filter(Fields{"a", "b"}, [](const Tuple& t) { return t.getInt("a") > 5; }).onTuple(t, out);
  Filter(Fields{"a", "b"}, [](const Tuple& t) { return t.getInt("a") < 5; }).onTuple(t, out);
  Select({"b"}).onTuple(t, out);
  WithColumn(Fields{"a", "b"}, "c", [](const Tuple& t) { return Value{t.getInt("a") + 1}; })
      .onTuple(t, out);
  WithColumn(Fields{"a", "b"}, "a", [](const Tuple& t) { return Value{int64_t{0}}; }).onTuple(t, out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{int64_t{6}},
                                             {int64_t{3}, "x"},
                                             {"x"},
                                             {int64_t{3}, "x", int64_t{4}},
                                             {int64_t{0}, "x"}}));
}

TEST(StatelessOperators, ARowThatDoesNotFitTheDeclaredFieldsOrAMissingFieldIsAClearError) {
  auto schema = makeSchema("src", kDefaultStream, Fields{"a"});
  Tuple t(schema, Values{int64_t{3}});
  RecordingEmitter out;
  Map bad(Fields{"x", "y"}, [](const Tuple&) { return Values{int64_t{1}}; });
  try {
    bad.onTuple(t, out);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected 2 values"), std::string::npos) << e.what();
  }
  try {
    Select({"nope"}).onTuple(t, out);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Map(Fields{"x"}, nullptr), std::invalid_argument);
  EXPECT_TRUE(out.rows.empty());
}

TEST(StatelessOperators, CloneGivesAnIndependentOperatorWithTheSameFunction) {
  auto schema = makeSchema("src", kDefaultStream, Fields{"a"});
  Map m(Fields{"y"}, [](const Tuple& t) { return Values{t.getInt("a") + 1}; });
  auto c = m.clone();
  RecordingEmitter out;
  c->onTuple(Tuple(schema, Values{int64_t{1}}), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{int64_t{2}}}));
  EXPECT_FALSE(c->stateful());
}

}  // namespace
}  // namespace gale
