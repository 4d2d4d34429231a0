// CURVE keys: generation, ZeroMQ certificate files, validation. The socket side (ZAP handler,
// connection limits) is in peer_guard.cpp.
#include "gale/core/security.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <zmq.h>

namespace gale {

namespace fs = std::filesystem;

void requireCurveSupport() {
  if (!zmq_has("curve")) {
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    throw std::runtime_error(
        "CURVE security was requested but the libzmq in use (" + std::to_string(major) + "." +
        std::to_string(minor) + "." + std::to_string(patch) +
        ") was built without it (zmq_has(\"curve\") is false). Use a libzmq built with "
        "libsodium, such as Debian's libzmq5, or run without CurveConfig on a trusted network");
  }
}

bool isCurveKey(const std::string& z85) {
  if (z85.size() != 40) return false;
  uint8_t bin[32];
  return zmq_z85_decode(bin, z85.c_str()) != nullptr;
}

CurveKeyPair generateCurveKeyPair() {
  requireCurveSupport();
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0)
    throw std::runtime_error(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()));
  return {pub, sec};
}

namespace {

std::string trim(std::string s) {
  auto sp = [](unsigned char c) { return std::isspace(c) != 0; };
  s.erase(s.begin(), std::find_if_not(s.begin(), s.end(), sp));
  s.erase(std::find_if_not(s.rbegin(), s.rend(), sp).base(), s.end());
  return s;
}

// A ZPL value: "quoted" or bare.
std::string unquote(std::string v) {
  v = trim(std::move(v));
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
    v = v.substr(1, v.size() - 2);
  return v;
}

struct ParsedKeys {
  std::vector<std::string> publicKeys;  // in file order
  std::string secretKey;
};

ParsedKeys parseKeyFile(const fs::path& file, bool bareKeysAllowed) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read CURVE key file '" + file.string() + "'");
  ParsedKeys out;
  std::string line;
  int lineNo = 0;
  auto bad = [&](const std::string& what) {
    return std::runtime_error("CURVE key file '" + file.string() + "' line " +
                              std::to_string(lineNo) + ": " + what +
                              " (keys are 40 Z85 characters, as zmq_curve_keypair or gale-keygen "
                              "write them)");
  };
  while (std::getline(in, line)) {
    ++lineNo;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto eq = t.find('=');
    if (eq != std::string::npos) {
      std::string name = trim(t.substr(0, eq));
      std::string value = unquote(t.substr(eq + 1));
      if (name != "public-key" && name != "secret-key") continue;  // other ZPL metadata
      if (!isCurveKey(value)) throw bad("'" + name + "' is not a valid key");
      if (name == "public-key")
        out.publicKeys.push_back(value);
      else
        out.secretKey = value;
    } else if (bareKeysAllowed && t.size() == 40 && isCurveKey(t)) {
      out.publicKeys.push_back(t);
    } else if (bareKeysAllowed && t != "curve" && t != "metadata") {
      throw bad("neither a key nor a certificate line: '" + t + "'");
    }
  }
  return out;
}

}  // namespace

CurveKeyPair loadCurveKeyPair(const fs::path& file) {
  requireCurveSupport();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    throw std::runtime_error("cannot read CURVE key file '" + file.string() + "'");
  // Like ssh: a secret others can read is not a secret; say so instead of using it.
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    throw std::runtime_error("CURVE secret key file '" + file.string() +
                             "' is accessible by group or others; run: chmod 600 '" +
                             file.string() + "'");
  ParsedKeys k = parseKeyFile(file, false);
  if (k.secretKey.empty())
    throw std::runtime_error("CURVE key file '" + file.string() +
                             "' has no secret-key (is it the public certificate? use the "
                             "*_secret file)");
  char pub[41];
  if (zmq_curve_public(pub, k.secretKey.c_str()) != 0)
    throw std::runtime_error("CURVE key file '" + file.string() + "': bad secret-key");
  if (!k.publicKeys.empty() && k.publicKeys.front() != pub)
    throw std::runtime_error("CURVE key file '" + file.string() +
                             "': public-key does not belong to secret-key");
  return {pub, k.secretKey};
}

std::vector<std::string> loadCurvePublicKeys(const fs::path& path) {
  std::vector<std::string> keys;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(path)) {
      std::string name = e.path().filename().string();
      if (!e.is_regular_file() || name.empty() || name[0] == '.') continue;
      if (name.size() >= 7 && name.compare(name.size() - 7, 7, "_secret") == 0) continue;
      files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto k = parseKeyFile(f, true).publicKeys;
      keys.insert(keys.end(), k.begin(), k.end());
    }
  } else {
    keys = parseKeyFile(path, true).publicKeys;
  }
  if (keys.empty())
    throw std::runtime_error("no CURVE public key found in '" + path.string() + "'");
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

CurveConfig CurveConfig::fromFiles(const fs::path& keyPairFile, const fs::path& authorizedKeys) {
  return {loadCurveKeyPair(keyPairFile), loadCurvePublicKeys(authorizedKeys)};
}

void writeCurveCertificates(const CurveKeyPair& keys, const fs::path& dir,
                            const std::string& name) {
  if (!isCurveKey(keys.publicKey) || !isCurveKey(keys.secretKey))
    throw std::invalid_argument("writeCurveCertificates: not a CURVE key pair");
  fs::path pub = dir / (name + ".key");
  fs::path sec = dir / (name + ".key_secret");
  for (const auto& p : {pub, sec})
    if (fs::exists(p))
      throw std::runtime_error("'" + p.string() + "' exists; not overwriting a key");
  std::string header =
      "#   ****  Generated by gale-keygen  ****\n"
      "#   ZeroMQ CURVE certificate (CZMQ zcert format)\n";
  auto write = [](const fs::path& p, const std::string& text, mode_t mode) {
    // Created with its final mode (the umask may only take bits away), so the secret is never
    // readable by others, not even briefly; O_EXCL so a concurrent writer cannot race us.
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    FILE* f = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
    if (!f) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("cannot create '" + p.string() + "'");
    }
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok) throw std::runtime_error("cannot write '" + p.string() + "'");
  };
  write(pub,
        header + "#   Public: give it to the peers that must accept this worker.\n\n" +
            "metadata\ncurve\n    public-key = \"" + keys.publicKey + "\"\n",
        0644);
  write(sec,
        header + "#   SECRET: keep it on this host, mode 0600.\n\n" +
            "metadata\ncurve\n    public-key = \"" + keys.publicKey + "\"\n" +
            "    secret-key = \"" + keys.secretKey + "\"\n",
        0600);
}

}  // namespace gale
