// summarizeCheckpoint: what a checkpoint directory holds, as gale-state prints it and the web UI
// shows it.
#include "gale/state/checkpoint_summary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gale/state/codec.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using testing::TempDir;

// Five batches: txid t counts the word "w<t>", moves partition 0 of "lines" to 10 t and writes
// the operator snapshot `snapshotKey` and the sink "files".
void fill(const std::string& dir, const std::string& snapshotKey) {
  StateStoreOptions o;
  o.jobId = "wordcount@3f2a";
  o.sync = false;
  StateStore store(dir, o);
  KeyedState& counts = store.keyedState("counts", StateKind::Opaque);
  for (uint64_t t = 1; t <= 5; ++t) {
    BatchCommit c = store.beginCommit(t);
    c.update(counts, "w" + std::to_string(t), addInt64(1));
    c.setOffset("lines", 0, static_cast<int64_t>(10 * t));
    c.putSnapshot(snapshotKey, "abc");
    c.markSinkCommitted("files");
    c.commit();
  }
}

TEST(CheckpointSummary, HoldsTheMetadataTheNewestCommitsTheStatesSnapshotsAndSinks) {
  TempDir dir;
  fill(dir.path(), "count#0");
  auto store = StateStore::inspect(dir.path());
  CheckpointSummary s = summarizeCheckpoint(*store, 2);
  EXPECT_EQ(s.directory, dir.path());
  EXPECT_EQ(s.jobId, "wordcount@3f2a");
  EXPECT_EQ(s.lastCommittedTxid, 5u);
  ASSERT_EQ(s.commits.size(), 2u);
  EXPECT_EQ(s.commits[0].txid, 4u);  // the newest two, oldest first
  EXPECT_EQ(s.commits[1].txid, 5u);
  EXPECT_EQ(s.commits[1].offsets.at("lines").at(0), 50);
  ASSERT_EQ(s.states.size(), 1u);
  EXPECT_EQ(s.states[0].name, "counts");
  EXPECT_EQ(s.states[0].entries, 5u);
  EXPECT_THAT(s.snapshotBytes, ElementsAre(Pair("count#0", 3u)));
  EXPECT_THAT(s.sinks, ElementsAre(Pair("files", 5u)));
  EXPECT_TRUE(summarizeCheckpoint(*store, 0).commits.empty());
  EXPECT_EQ(summarizeCheckpoint(*store, 100).commits.size(), 5u);
}

// A component's name may hold any bytes; the summary escapes them as gale-state prints keys, so
// that the UI's JSON (UTF-8 only) shows them instead of replacing them with U+FFFD.
TEST(CheckpointSummary, SnapshotKeysThatAreNotPrintableAreEscaped) {
  TempDir dir;
  fill(dir.path(), std::string("z\x01\xff#0", 5));
  auto store = StateStore::inspect(dir.path());
  EXPECT_THAT(summarizeCheckpoint(*store, 1).snapshotBytes, ElementsAre(Pair("z\\x01\\xff#0", 3u)));
}

// The one document gale-state --json prints and the UI serves: gale-state's field order, names
// escaped as JSON, bytes that are not UTF-8 replaced (the JSON stays valid).
TEST(CheckpointSummaryJson, IsOneObjectInGaleStatesFieldOrderWithNamesEscaped) {
  CheckpointSummary s;
  s.directory = "chk/\"a\"";
  s.jobId = "job\n1";
  s.formatVersion = 2;
  s.createdAt = Timestamp{5};
  s.mapSize = 64;
  s.lastCommittedTxid = 3;
  s.commits = {{.txid = 2, .time = Timestamp{6}, .offsets = {{"lines", {{0, 20}, {1, 5}}}},
                .stateUpdates = 1, .snapshots = 1, .bytes = 9},
               {.txid = 3, .time = Timestamp{7}, .watermark = Timestamp{4}, .stateSkips = 2}};
  s.states = {{.name = "counts", .kind = StateKind::Opaque, .entries = 3, .bytes = 40}};
  s.snapshotBytes = {{"count#0", 3}};
  s.sinks = {{"files\xff", 3}};
  EXPECT_EQ(checkpointSummaryJson(s),
            "{\"directory\":\"chk/\\\"a\\\"\",\"jobId\":\"job\\n1\",\"formatVersion\":2,"
            "\"createdMicros\":5,\"mapSize\":64,\"lastCommittedTxid\":3,\"commits\":["
            "{\"txid\":2,\"timeMicros\":6,\"watermarkMicros\":null,"
            "\"offsets\":{\"lines\":{\"0\":20,\"1\":5}},\"stateUpdates\":1,\"stateSkips\":0,"
            "\"snapshots\":1,\"bytes\":9},"
            "{\"txid\":3,\"timeMicros\":7,\"watermarkMicros\":4,\"offsets\":{},"
            "\"stateUpdates\":0,\"stateSkips\":2,\"snapshots\":0,\"bytes\":0}],"
            "\"states\":[{\"name\":\"counts\",\"kind\":\"opaque\",\"entries\":3,\"bytes\":40}],"
            "\"snapshots\":{\"count#0\":3},\"sinks\":{\"files\xef\xbf\xbd\":3}}");
}

}  // namespace
}  // namespace gale
