// CURVE key files: what gale-keygen writes loads back; bad files get an error naming the file.
#include "gale/core/security.h"

#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "temp_dir_for_test.h"

namespace gale {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

void writeFile(const fs::path& p, const std::string& text, mode_t mode = 0600) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), mode);
}

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(CurveKeys, DebianLibzmqHasCurve) { EXPECT_NO_THROW(requireCurveSupport()); }

TEST(CurveKeys, WrittenCertificatesLoadBackWithTheSecretReadableByTheOwnerOnly) {
  TempDir d;
  CurveKeyPair k = generateCurveKeyPair();
  ASSERT_TRUE(isCurveKey(k.publicKey));
  ASSERT_TRUE(isCurveKey(k.secretKey));
  writeCurveCertificates(k, d.path(), "worker0");
  struct stat st {};
  ASSERT_EQ(::stat(d.sub("worker0.key_secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  CurveKeyPair loaded = loadCurveKeyPair(d.sub("worker0.key_secret"));
  EXPECT_EQ(loaded.publicKey, k.publicKey);
  EXPECT_EQ(loaded.secretKey, k.secretKey);
  EXPECT_EQ(loadCurvePublicKeys(d.sub("worker0.key")), std::vector<std::string>{k.publicKey});
  // Never overwrites a key.
  EXPECT_NE(errorOf([&] { writeCurveCertificates(generateCurveKeyPair(), d.path(), "worker0"); })
                .find("not overwriting"),
            std::string::npos);
}

TEST(CurveKeys, ASecretKeyAloneIsEnoughAndAMismatchedPublicKeyIsRefused) {
  TempDir d;
  CurveKeyPair k = generateCurveKeyPair();
  writeFile(d.sub("s"), "curve\n    secret-key = \"" + k.secretKey + "\"\n");
  EXPECT_EQ(loadCurveKeyPair(d.sub("s")).publicKey, k.publicKey);
  CurveKeyPair other = generateCurveKeyPair();
  writeFile(d.sub("m"), "curve\n    public-key = \"" + other.publicKey +
                             "\"\n    secret-key = \"" + k.secretKey + "\"\n");
  EXPECT_NE(errorOf([&] { loadCurveKeyPair(d.sub("m")); }).find("does not belong"),
            std::string::npos);
}

TEST(CurveKeys, ASecretFileOthersCanReadIsRefusedWithTheFix) {
  TempDir d;
  CurveKeyPair k = generateCurveKeyPair();
  writeFile(d.sub("s"), "curve\n    secret-key = \"" + k.secretKey + "\"\n", 0644);
  std::string e = errorOf([&] { loadCurveKeyPair(d.sub("s")); });
  EXPECT_NE(e.find("chmod 600"), std::string::npos) << e;
}

TEST(CurveKeys, APublicCertificateIsNotAKeyPair) {
  TempDir d;
  writeCurveCertificates(generateCurveKeyPair(), d.path(), "w");
  ::chmod(d.sub("w.key").c_str(), 0600);
  EXPECT_NE(errorOf([&] { loadCurveKeyPair(d.sub("w.key")); }).find("no secret-key"),
            std::string::npos);
}

TEST(CurveKeys, BadKeysNameTheFileAndLine) {
  TempDir d;
  writeFile(d.sub("auth"), "# workers\n" + generateCurveKeyPair().publicKey + "\nnot-a-key\n");
  std::string e = errorOf([&] { loadCurvePublicKeys(d.sub("auth")); });
  EXPECT_NE(e.find("auth' line 3"), std::string::npos) << e;
  writeFile(d.sub("bad"), "curve\n    public-key = \"tooshort\"\n");
  e = errorOf([&] { loadCurvePublicKeys(d.sub("bad")); });
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  writeFile(d.sub("empty"), "# nothing\n");
  e = errorOf([&] { loadCurvePublicKeys(d.sub("empty")); });
  EXPECT_NE(e.find("no CURVE public key"), std::string::npos) << e;
  EXPECT_NE(errorOf([&] { loadCurveKeyPair(d.sub("missing")); }).find("missing"),
            std::string::npos);
}

TEST(CurveKeys, ADirectoryOfCertificatesAuthorizesEveryPublicKeyAndSkipsSecrets) {
  TempDir d;
  CurveKeyPair a = generateCurveKeyPair(), b = generateCurveKeyPair();
  writeCurveCertificates(a, d.path(), "a");
  writeCurveCertificates(b, d.path(), "b");
  writeFile(d.sub("bare"), b.publicKey + "\n");  // duplicates collapse
  std::vector<std::string> want{a.publicKey, b.publicKey};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(loadCurvePublicKeys(d.path()), want);
  CurveConfig c = CurveConfig::fromFiles(d.sub("a.key_secret"), d.path());
  EXPECT_EQ(c.keyPair.publicKey, a.publicKey);
  EXPECT_EQ(c.authorizedClients, want);
}

}  // namespace
}  // namespace gale
