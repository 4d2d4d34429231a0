// Runs the gale-keygen binary: the files it writes are a key pair and a public key gale loads.
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "gale/core/security.h"

namespace gale {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exitCode = -1;
  std::string out;  // stdout and stderr
};

CliRun runCli(const std::string& args) {
  CliRun r;
  std::string cmd = std::string(GALE_KEYGEN_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "gale-keygen-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST(GaleKeygenCli, WritesKeyFilesThatLoadAsAKeyPairAndAnAuthorizedKey) {
  TempDir d;
  CliRun r = runCli("--dir " + d.path.string() + " w0 w1");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  CurveKeyPair w0 = loadCurveKeyPair(d.path / "w0.key_secret");
  EXPECT_NE(r.out.find("w0 " + w0.publicKey + "\n"), std::string::npos) << r.out;
  std::vector<std::string> pubs = loadCurvePublicKeys(d.path);  // the directory: both public keys
  EXPECT_EQ(pubs.size(), 2u);
  EXPECT_NE(std::find(pubs.begin(), pubs.end(), w0.publicKey), pubs.end());
  struct stat st {};
  ASSERT_EQ(::stat((d.path / "w1.key_secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(GaleKeygenCli, NeverOverwritesAKey) {
  TempDir d;
  ASSERT_EQ(runCli("--dir " + d.path.string() + " w0").exitCode, 0);
  CurveKeyPair before = loadCurveKeyPair(d.path / "w0.key_secret");
  CliRun r = runCli("--dir " + d.path.string() + " w0");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.out.find("not overwriting"), std::string::npos) << r.out;
  EXPECT_EQ(loadCurveKeyPair(d.path / "w0.key_secret").secretKey, before.secretKey);
}

TEST(GaleKeygenCli, HelpExitsZeroAndBadCommandLinesExitTwo) {
  CliRun h = runCli("--help");
  EXPECT_EQ(h.exitCode, 0);
  EXPECT_NE(h.out.find("usage: gale-keygen"), std::string::npos);
  EXPECT_EQ(runCli("").exitCode, 2);
  EXPECT_EQ(runCli("--dir").exitCode, 2);
  EXPECT_EQ(runCli("--bogus").exitCode, 2);
  EXPECT_EQ(runCli("a/b").exitCode, 2);
}

}  // namespace
}  // namespace gale
