// Runs the gale-state binary on checkpoint directories and checks what it prints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gale/core/watermark.h"
#include "gale/state/codec.h"
#include "gale/state/state_store.h"
#include "run_program_for_test.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using testing::ProgramRun;
using testing::runProgram;
using testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

ProgramRun runCli(const std::string& args) { return runProgram(GALE_STATE_CLI, args); }

void fill(const std::string& dir) {
  StateStoreOptions o;
  o.jobId = "wordcount@3f2a";
  o.sync = false;
  ManualClock clock(Timestamp{1'700'000'000'000'000});
  o.clock = &clock;
  StateStore store(dir, o);
  KeyedState& counts = store.keyedState("counts", StateKind::Opaque);
  store.keyedState("empty", StateKind::Plain);
  for (uint64_t t = 1; t <= 3; ++t) {
    BatchCommit c = store.beginCommit(t);
    c.update(counts, "w" + std::to_string(t), addInt64(1));
    c.setOffset("lines", 0, static_cast<int64_t>(10 * t)).setOffset("lines", 1, 5);
    c.setWatermark(Timestamp{1'700'000'000'000'000 + static_cast<int64_t>(t) * 1'000'000});
    c.putSnapshot("window#0", "abc");
    c.markSinkCommitted("files");
    c.commit();
    clock.advance(Duration{1'000'000});
  }
}

TEST(GaleStateCli, PrintsMetadataCommitLogStatesSnapshotsAndSinks) {
  TempDir dir;
  fill(dir.path());
  ProgramRun r = runCli(dir.path());
  EXPECT_EQ(r.exitCode, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("job id                wordcount@3f2a"));
  EXPECT_THAT(r.out, HasSubstr("format version        2"));
  EXPECT_THAT(r.out, HasSubstr("last committed txid   3"));
  EXPECT_THAT(r.out, HasSubstr("commit log (3 of 3 kept, newest last)"));
  EXPECT_THAT(r.out, HasSubstr("txid 2  2023-11-14T22:13:21.000000Z  watermark 2023-11-14T22:13:22.000000Z"));
  EXPECT_THAT(r.out, HasSubstr("offsets lines/0=30 lines/1=5"));
  EXPECT_THAT(r.out, HasSubstr("counts  opaque  entries 3  bytes "));
  EXPECT_THAT(r.out, HasSubstr("empty  plain  entries 0"));
  EXPECT_THAT(r.out, HasSubstr("window#0  bytes 3"));
  EXPECT_THAT(r.out, HasSubstr("files  last txid 3"));

  ProgramRun limited = runCli(dir.path() + " --limit 1");
  EXPECT_THAT(limited.out, HasSubstr("commit log (1 of 3 kept"));
  EXPECT_THAT(limited.out, Not(HasSubstr("txid 2 ")));
}

TEST(GaleStateCli, PrintsJson) {
  TempDir dir;
  fill(dir.path());
  ProgramRun r = runCli(dir.path() + " --json");
  EXPECT_EQ(r.exitCode, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("\"jobId\":\"wordcount@3f2a\""));
  EXPECT_THAT(r.out, HasSubstr("{\"txid\":3,\"timeMicros\":1700000002000000,"
                               "\"watermarkMicros\":1700000003000000,"
                               "\"offsets\":{\"lines\":{\"0\":30,\"1\":5}}"));
  EXPECT_THAT(r.out, HasSubstr("{\"name\":\"counts\",\"kind\":\"opaque\",\"entries\":3,"));
  EXPECT_THAT(r.out, HasSubstr("\"sinks\":{\"files\":3}"));
}

TEST(GaleStateCli, AMissingOrForeignDirectoryIsAClearErrorWithExitCode1) {
  TempDir dir;
  ProgramRun missing = runCli(dir.sub("nope"));
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_THAT(missing.out, HasSubstr("gale-state: checkpoint directory " + dir.sub("nope") +
                                     " does not exist"));
  std::ofstream(dir.sub("file.txt")) << "x";
  ProgramRun foreign = runCli(dir.path());
  EXPECT_EQ(foreign.exitCode, 1);
  EXPECT_THAT(foreign.out, HasSubstr("is not a gale checkpoint directory"));
  ProgramRun usage = runCli("");
  EXPECT_EQ(usage.exitCode, 2);
  EXPECT_THAT(usage.out, HasSubstr("gale-state: dir is required"));
  EXPECT_THAT(usage.out, HasSubstr("Usage: gale-state [OPTIONS] dir"));
  EXPECT_EQ(runCli(dir.path() + " --bogus").exitCode, 2);
}

TEST(GaleStateCli, HelpExitsZeroAndBadValuesGetAMessageAndExitCode2) {
  ProgramRun help = runCli("--help");
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_THAT(help.out, HasSubstr("--limit"));
  EXPECT_THAT(help.out, HasSubstr("gale-state verify <dir>"));
  ProgramRun verifyHelp = runCli("verify --help");
  EXPECT_EQ(verifyHelp.exitCode, 0);
  EXPECT_THAT(verifyHelp.out, HasSubstr("Usage: gale-state verify [OPTIONS] dir"));
  ProgramRun notANumber = runCli("/tmp --limit abc");
  EXPECT_EQ(notANumber.exitCode, 2);
  EXPECT_THAT(notANumber.out, HasSubstr("--limit"));
  ProgramRun negative = runCli("/tmp --limit -1");
  EXPECT_EQ(negative.exitCode, 2);
  EXPECT_THAT(negative.out, HasSubstr("must be a number >= 0"));
  EXPECT_EQ(runCli("verify").exitCode, 2);
  EXPECT_EQ(runCli("verify /tmp /tmp").exitCode, 2);
}

TEST(GaleStateCli, TheEndOfInputWatermarkIsPrintedAsEndOfInputNotAsAYear294247Date) {
  TempDir dir;
  {
    StateStoreOptions o;
    o.jobId = "bounded";
    o.sync = false;
    StateStore store(dir.path(), o);
    store.beginCommit(1).setWatermark(kEndOfTime).commit();
  }
  ProgramRun r = runCli(dir.path());
  EXPECT_EQ(r.exitCode, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("watermark end of input"));
  EXPECT_THAT(r.out, Not(HasSubstr("294247")));
}

TEST(GaleStateCli, VerifyReportsAnIntactCheckpointAndExits0) {
  TempDir dir;
  fill(dir.path());
  ProgramRun r = runCli("verify " + dir.path());
  EXPECT_EQ(r.exitCode, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("data file             " + dir.path() + "/data.mdb ("));
  EXPECT_THAT(r.out, HasSubstr("records verified      "));
  EXPECT_THAT(r.out, HasSubstr("commits 3"));
  EXPECT_THAT(r.out, HasSubstr("state:counts 3"));
  EXPECT_THAT(r.out, HasSubstr("last committed txid   3"));
  EXPECT_THAT(r.out, HasSubstr("result                OK"));
  ProgramRun json = runCli("verify " + dir.path() + " --json");
  EXPECT_EQ(json.exitCode, 0) << json.out;
  EXPECT_THAT(json.out, HasSubstr("{\"ok\":true,"));
  EXPECT_THAT(json.out, HasSubstr("\"lastCommittedTxid\":3"));
}

TEST(GaleStateCli, VerifyNamesTheDamageAndExits1) {
  TempDir dir;
  fill(dir.path());
  std::string file = dir.sub("data.mdb");
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 4096);
  ProgramRun r = runCli("verify " + dir.path());
  EXPECT_EQ(r.exitCode, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("gale-state verify: DAMAGED: checkpoint file " + file +
                               " is damaged"));
  EXPECT_THAT(r.out, HasSubstr("truncated"));
  ProgramRun json = runCli("verify " + dir.path() + " --json");
  EXPECT_EQ(json.exitCode, 1);
  EXPECT_THAT(json.out, HasSubstr("{\"ok\":false,\"damaged\":true,"));
  // The inspecting command refuses it as clearly (no SIGBUS).
  ProgramRun inspect = runCli(dir.path());
  EXPECT_EQ(inspect.exitCode, 1);
  EXPECT_THAT(inspect.out, HasSubstr("is damaged"));
  std::filesystem::resize_file(file, 0);
  EXPECT_THAT(runCli("verify " + dir.path()).out, HasSubstr("empty (0 bytes)"));
}

}  // namespace
}  // namespace gale
