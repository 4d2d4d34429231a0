#include "gale/connectors/file_sink.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "gale/connectors/file_source.h"
#include "sink_test_util.h"

namespace gale {
namespace {

namespace fs = std::filesystem;
using testing::NoEmit;
using testing::tupleOf;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("gale-sink-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }
  std::string read(const std::string& name) const {
    std::ifstream in(path_ / name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

const SchemaPtr kSchema = makeSchema("agg", "default",
                                     Fields{FieldSpec{"word", Type::String}, FieldSpec{"n", Type::Int64}});

std::unique_ptr<Operator> openTask(const std::string& dir, FileFormat f, int taskIndex) {
  auto task = FileSink(dir, f, {.sync = false}).clone();
  OperatorContext c;
  c.taskIndex = taskIndex;
  task->open(c);
  return task;
}

TEST(FileSink, AReplayedTxidOverwritesTheSameFileSoOutputIsExactlyOnce) {
  TempDir dir;
  auto task = openTask(dir.str(), FileFormat::JsonLines, 1);
  NoEmit out;
  task->onBatchBegin(5);
  task->onTuple(tupleOf(kSchema, {std::string("a"), int64_t{1}}), out);
  task->onBatchEnd(5, out);
  const std::string name = FileSink::batchFileName(5, 1, FileFormat::JsonLines);
  EXPECT_EQ(name, "part-00000000000000000005-00001.jsonl");
  EXPECT_EQ(dir.read(name), "{\"word\":\"a\",\"n\":1}\n");

  // Batch 6 fails mid-way: nothing visible under its final name.
  task->onBatchBegin(6);
  task->onTuple(tupleOf(kSchema, {std::string("lost"), int64_t{1}}), out);
  EXPECT_EQ(dir.names(), (std::vector<std::string>{name}));

  // Replays of 5 (after a failure to commit) and 6.
  task->onBatchBegin(5);
  task->onTuple(tupleOf(kSchema, {std::string("a"), int64_t{1}}), out);
  task->onTuple(tupleOf(kSchema, {std::string("b"), int64_t{2}}), out);
  task->onBatchEnd(5, out);
  task->onBatchBegin(6);
  task->onTuple(tupleOf(kSchema, {std::string("c"), int64_t{3}}), out);
  task->onBatchEnd(6, out);

  EXPECT_EQ(dir.read(name), "{\"word\":\"a\",\"n\":1}\n{\"word\":\"b\",\"n\":2}\n");
  EXPECT_EQ(dir.read(FileSink::batchFileName(6, 1, FileFormat::JsonLines)), "{\"word\":\"c\",\"n\":3}\n");
  EXPECT_EQ(dir.names().size(), 2u) << "no temp files are left behind";
}

TEST(FileSink, AReplayThatProducesNothingRemovesTheEarlierAttemptsFile) {
  TempDir dir;
  auto task = openTask(dir.str(), FileFormat::Text, 0);
  NoEmit out;
  task->onBatchBegin(2);
  task->onTuple(tupleOf(kSchema, {std::string("a"), int64_t{1}}), out);
  task->onBatchEnd(2, out);
  EXPECT_EQ(dir.read(FileSink::batchFileName(2, 0, FileFormat::Text)), "a\t1\n");
  task->onBatchBegin(2);
  task->onBatchEnd(2, out);
  EXPECT_TRUE(dir.names().empty());
}

TEST(FileSink, ContinuousModeAppendsToOnePartFilePerTaskAndKeepsTheCsvHeaderOnRestart) {
  TempDir dir;
  NoEmit out;
  for (int run = 0; run < 2; ++run) {  // the second run is a restarted task
    auto task = openTask(dir.str(), FileFormat::Csv, 3);
    task->onTuple(tupleOf(kSchema, {std::string("x,y"), int64_t{run}}), out);
    task->onTuple(tupleOf(kSchema, {std::string("z"), std::monostate{}}), out);
    task->onEndOfInput(out);
  }
  EXPECT_EQ(dir.read(FileSink::continuousFileName(3, FileFormat::Csv)),
            "word,n\n\"x,y\",0\nz,\n\"x,y\",1\nz,\n");
}

TEST(FileSink, ACsvTupleWithOtherFieldsIsAClearError) {
  TempDir dir;
  auto task = openTask(dir.str(), FileFormat::Csv, 0);
  NoEmit out;
  task->onTuple(tupleOf(kSchema, {std::string("a"), int64_t{1}}), out);
  auto other = makeSchema("x", "s", Fields{"k"});
  try {
    task->onTuple(tupleOf(other, {int64_t{1}}), out);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("x:s"), std::string::npos) << e.what();
  }
}

TEST(FileSink, BadUseIsRejected) {
  EXPECT_THROW(FileSink("", FileFormat::Text), std::invalid_argument);
  NoEmit out;
  auto task = FileSink("/tmp/x", FileFormat::Text).clone();
  EXPECT_THROW(task->onTuple(tupleOf(kSchema, {std::string("a"), int64_t{1}}), out), std::logic_error);
  auto blocked = FileSink("/proc/gale-cannot-create", FileFormat::Text).clone();
  EXPECT_THROW(blocked->open(OperatorContext{}), std::runtime_error);
  TempDir dir;
  auto t = openTask(dir.str(), FileFormat::Text, 0);
  EXPECT_THROW(t->onBatchEnd(1, out), std::logic_error);
}

TEST(FileSink, ItsBatchFilesReadBackThroughAFileSourceInTxidOrder) {
  TempDir dir;
  NoEmit out;
  auto task = openTask(dir.str(), FileFormat::JsonLines, 0);
  for (uint64_t txid : {10, 9, 11}) {  // written out of order; read back by name = txid order
    task->onBatchBegin(txid);
    task->onTuple(tupleOf(kSchema, {std::string("w") + std::to_string(txid), int64_t(txid)}), out);
    task->onBatchEnd(txid, out);
  }
  task->onBatchBegin(12);  // in flight: its temp file must be ignored
  task->onTuple(tupleOf(kSchema, {std::string("no"), int64_t{12}}), out);
  FileSource::Options o;
  o.schema = kSchema->fields;
  FileSource src(dir.str(), FileFormat::JsonLines, o);
  ManualClock clock;
  src.open(clock);
  std::vector<SourceRecord> recs;
  src.read(0, 0, src.available(0), recs);
  ASSERT_EQ(recs.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(recs[i].values[1], Value(int64_t{9 + i}));
}

// ---- two-phase commit (exactly-once continuous mode)

TwoPhaseCommitSink& twoPhase(std::unique_ptr<Operator>& task) {
  return dynamic_cast<TwoPhaseCommitSink&>(*task);
}

TEST(FileSinkTwoPhase, OutputIsInvisibleUntilItsCheckpointCommitsAndThenAppearsOnce) {
  TempDir dir;
  auto task = openTask(dir.str(), FileFormat::Text, 1);
  NoEmit e;
  twoPhase(task).recover(0);
  task->onTuple(tupleOf(kSchema, Values{std::string("a"), int64_t{1}}), e);
  twoPhase(task).preCommit(1);
  task->onTuple(tupleOf(kSchema, Values{std::string("b"), int64_t{2}}), e);
  task->onProcessingTime(Timestamp{1}, e);  // a tick writes nothing visible either
  twoPhase(task).preCommit(2);
  for (const auto& n : dir.names()) EXPECT_EQ(n[0], '.') << n << " is visible before any commit";

  twoPhase(task).commit(1);
  EXPECT_EQ(dir.read(FileSink::batchFileName(1, 1, FileFormat::Text)), "a\t1\n");
  EXPECT_FALSE(fs::exists(fs::path(dir.str()) / FileSink::batchFileName(2, 1, FileFormat::Text)));
  twoPhase(task).commit(2);
  twoPhase(task).commit(2);  // idempotent
  EXPECT_EQ(dir.read(FileSink::batchFileName(2, 1, FileFormat::Text)), "b\t2\n");
  EXPECT_EQ(dir.names().size(), 2u);
}

TEST(FileSinkTwoPhase, ABarrierWithNothingSinceTheLastWritesNoFile) {
  TempDir dir;
  auto task = openTask(dir.str(), FileFormat::Text, 0);
  twoPhase(task).recover(0);
  twoPhase(task).preCommit(1);
  twoPhase(task).commit(1);
  EXPECT_TRUE(dir.names().empty());
}

TEST(FileSinkTwoPhase, OutputPastFlushBytesIsSpilledAndStillCommittedWholeUnderItsCheckpoint) {
  TempDir dir;
  auto task = FileSink(dir.str(), FileFormat::Text, {.sync = false, .flushBytes = 16}).clone();
  task->open(OperatorContext{});
  twoPhase(task).recover(0);
  NoEmit e;
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    task->onTuple(tupleOf(kSchema, Values{std::string("w") + std::to_string(i), int64_t{i}}), e);
    expected += "w" + std::to_string(i) + "\t" + std::to_string(i) + "\n";
  }
  EXPECT_TRUE(fs::exists(fs::path(dir.str()) / ".inprogress-00000.txt"));  // spilled, hidden
  twoPhase(task).preCommit(7);
  twoPhase(task).commit(7);
  EXPECT_EQ(dir.read(FileSink::batchFileName(7, 0, FileFormat::Text)), expected);
  EXPECT_EQ(dir.names(), std::vector<std::string>{FileSink::batchFileName(7, 0, FileFormat::Text)});
}

TEST(FileSinkTwoPhase, RecoverCommitsCompletedCheckpointsAndDropsTheRestOfItsOwnTaskOnly) {
  TempDir dir;
  NoEmit e;
  {
    // A run that crashed: checkpoints 3 and 4 pre-committed, more output in progress; task 1 of
    // the same sink has a pending file too.
    auto task = FileSink(dir.str(), FileFormat::Text, {.sync = false, .flushBytes = 1}).clone();
    task->open(OperatorContext{});
    twoPhase(task).recover(0);
    task->onTuple(tupleOf(kSchema, Values{std::string("three"), int64_t{3}}), e);
    twoPhase(task).preCommit(3);
    task->onTuple(tupleOf(kSchema, Values{std::string("four"), int64_t{4}}), e);
    twoPhase(task).preCommit(4);
    task->onTuple(tupleOf(kSchema, Values{std::string("later"), int64_t{5}}), e);  // spilled
    auto other = openTask(dir.str(), FileFormat::Text, 1);
    twoPhase(other).recover(0);
    other->onTuple(tupleOf(kSchema, Values{std::string("other"), int64_t{4}}), e);
    twoPhase(other).preCommit(4);
  }
  // The restart: checkpoint 3 completed (its record was written), 4 did not.
  auto task = openTask(dir.str(), FileFormat::Text, 0);
  twoPhase(task).recover(3);
  EXPECT_EQ(dir.read(FileSink::batchFileName(3, 0, FileFormat::Text)), "three\t3\n");
  EXPECT_EQ(dir.names(), (std::vector<std::string>{FileSink::pendingFileName(4, 1, FileFormat::Text),
                                                   FileSink::batchFileName(3, 0, FileFormat::Text)}));
  // The replay of 4 writes it afresh.
  task->onTuple(tupleOf(kSchema, Values{std::string("four"), int64_t{4}}), e);
  twoPhase(task).preCommit(4);
  twoPhase(task).commit(4);
  EXPECT_EQ(dir.read(FileSink::batchFileName(4, 0, FileFormat::Text)), "four\t4\n");
}

TEST(FileSinkTwoPhase, CsvFilesOfEachCheckpointStartWithTheHeader) {
  TempDir dir;
  auto task = openTask(dir.str(), FileFormat::Csv, 0);
  twoPhase(task).recover(0);
  NoEmit e;
  task->onTuple(tupleOf(kSchema, Values{std::string("a"), int64_t{1}}), e);
  twoPhase(task).preCommit(1);
  task->onTuple(tupleOf(kSchema, Values{std::string("b"), int64_t{2}}), e);
  twoPhase(task).preCommit(2);
  twoPhase(task).commit(2);
  EXPECT_EQ(dir.read(FileSink::batchFileName(1, 0, FileFormat::Csv)), "word,n\na,1\n");
  EXPECT_EQ(dir.read(FileSink::batchFileName(2, 0, FileFormat::Csv)), "word,n\nb,2\n");
}

}  // namespace
}  // namespace gale
