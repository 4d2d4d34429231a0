// CURVE key files: what gale-keygen writes loads back; bad files get an error naming the file.
#include "gale/core/security.h"

#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

namespace gale {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "gale-keys-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

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
  writeCurveCertificates(k, d.path, "worker0");
  struct stat st {};
  ASSERT_EQ(::stat((d.path / "worker0.key_secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  CurveKeyPair loaded = loadCurveKeyPair(d.path / "worker0.key_secret");
  EXPECT_EQ(loaded.publicKey, k.publicKey);
  EXPECT_EQ(loaded.secretKey, k.secretKey);
  EXPECT_EQ(loadCurvePublicKeys(d.path / "worker0.key"), std::vector<std::string>{k.publicKey});
  // Never overwrites a key.
  EXPECT_NE(errorOf([&] { writeCurveCertificates(generateCurveKeyPair(), d.path, "worker0"); })
                .find("not overwriting"),
            std::string::npos);
}

TEST(CurveKeys, ASecretKeyAloneIsEnoughAndAMismatchedPublicKeyIsRefused) {
  TempDir d;
  CurveKeyPair k = generateCurveKeyPair();
  writeFile(d.path / "s", "curve\n    secret-key = \"" + k.secretKey + "\"\n");
  EXPECT_EQ(loadCurveKeyPair(d.path / "s").publicKey, k.publicKey);
  CurveKeyPair other = generateCurveKeyPair();
  writeFile(d.path / "m", "curve\n    public-key = \"" + other.publicKey +
                              "\"\n    secret-key = \"" + k.secretKey + "\"\n");
  EXPECT_NE(errorOf([&] { loadCurveKeyPair(d.path / "m"); }).find("does not belong"),
            std::string::npos);
}

TEST(CurveKeys, ASecretFileOthersCanReadIsRefusedWithTheFix) {
  TempDir d;
  CurveKeyPair k = generateCurveKeyPair();
  writeFile(d.path / "s", "curve\n    secret-key = \"" + k.secretKey + "\"\n", 0644);
  std::string e = errorOf([&] { loadCurveKeyPair(d.path / "s"); });
  EXPECT_NE(e.find("chmod 600"), std::string::npos) << e;
}

TEST(CurveKeys, APublicCertificateIsNotAKeyPair) {
  TempDir d;
  writeCurveCertificates(generateCurveKeyPair(), d.path, "w");
  ::chmod((d.path / "w.key").c_str(), 0600);
  EXPECT_NE(errorOf([&] { loadCurveKeyPair(d.path / "w.key"); }).find("no secret-key"),
            std::string::npos);
}

TEST(CurveKeys, BadKeysNameTheFileAndLine) {
  TempDir d;
  writeFile(d.path / "auth", "# workers\n" + generateCurveKeyPair().publicKey + "\nnot-a-key\n");
  std::string e = errorOf([&] { loadCurvePublicKeys(d.path / "auth"); });
  EXPECT_NE(e.find("auth' line 3"), std::string::npos) << e;
  writeFile(d.path / "bad", "curve\n    public-key = \"tooshort\"\n");
  e = errorOf([&] { loadCurvePublicKeys(d.path / "bad"); });
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  writeFile(d.path / "empty", "# nothing\n");
  e = errorOf([&] { loadCurvePublicKeys(d.path / "empty"); });
  EXPECT_NE(e.find("no CURVE public key"), std::string::npos) << e;
  EXPECT_NE(errorOf([&] { loadCurveKeyPair(d.path / "missing"); }).find("missing"),
            std::string::npos);
}

TEST(CurveKeys, ADirectoryOfCertificatesAuthorizesEveryPublicKeyAndSkipsSecrets) {
  TempDir d;
  CurveKeyPair a = generateCurveKeyPair(), b = generateCurveKeyPair();
  writeCurveCertificates(a, d.path, "a");
  writeCurveCertificates(b, d.path, "b");
  writeFile(d.path / "bare", b.publicKey + "\n");  // duplicates collapse
  std::vector<std::string> want{a.publicKey, b.publicKey};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(loadCurvePublicKeys(d.path), want);
  CurveConfig c = CurveConfig::fromFiles(d.path / "a.key_secret", d.path);
  EXPECT_EQ(c.keyPair.publicKey, a.publicKey);
  EXPECT_EQ(c.authorizedClients, want);
}

}  // namespace
}  // namespace gale
