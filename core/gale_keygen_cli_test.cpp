// Runs the gale-keygen binary: the files it writes are a key pair and a public key gale loads.
#include <sys/stat.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "gale/core/security.h"
#include "run_program_for_test.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using testing::ProgramRun;
using testing::runProgram;
using testing::TempDir;

ProgramRun runCli(const std::string& args) { return runProgram(GALE_KEYGEN_CLI, args); }

TEST(GaleKeygenCli, WritesKeyFilesThatLoadAsAKeyPairAndAnAuthorizedKey) {
  TempDir d;
  ProgramRun r = runCli("--dir " + d.path() + " w0 w1");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  CurveKeyPair w0 = loadCurveKeyPair(d.sub("w0.key_secret"));
  EXPECT_NE(r.out.find("w0 " + w0.publicKey + "\n"), std::string::npos) << r.out;
  std::vector<std::string> pubs = loadCurvePublicKeys(d.path());  // the directory: both public keys
  EXPECT_EQ(pubs.size(), 2u);
  EXPECT_NE(std::find(pubs.begin(), pubs.end(), w0.publicKey), pubs.end());
  struct stat st {};
  ASSERT_EQ(::stat(d.sub("w1.key_secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(GaleKeygenCli, NeverOverwritesAKey) {
  TempDir d;
  ASSERT_EQ(runCli("--dir " + d.path() + " w0").exitCode, 0);
  CurveKeyPair before = loadCurveKeyPair(d.sub("w0.key_secret"));
  ProgramRun r = runCli("--dir " + d.path() + " w0");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.out.find("not overwriting"), std::string::npos) << r.out;
  EXPECT_EQ(loadCurveKeyPair(d.sub("w0.key_secret")).secretKey, before.secretKey);
}

TEST(GaleKeygenCli, HelpExitsZeroAndBadCommandLinesExitTwo) {
  ProgramRun h = runCli("--help");
  EXPECT_EQ(h.exitCode, 0);
  EXPECT_NE(h.out.find("usage: gale-keygen"), std::string::npos);
  EXPECT_EQ(runCli("").exitCode, 2);
  EXPECT_EQ(runCli("--dir").exitCode, 2);
  EXPECT_EQ(runCli("--bogus").exitCode, 2);
  EXPECT_EQ(runCli("a/b").exitCode, 2);
}

}  // namespace
}  // namespace gale
