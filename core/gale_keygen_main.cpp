// gale-keygen: makes CURVE key pairs for gale workers, as ZeroMQ certificates (CZMQ's format,
// see docs/security.md): <dir>/<name>.key (public: hand it to the peers) and
// <dir>/<name>.key_secret (secret: mode 0600, stays on this host).
//
//   gale-keygen [--dir DIR] NAME...
//
// Prints "<name> <public key>" per name. Exit codes: 0 ok, 1 a key could not be made or written
// (existing files are never overwritten), 2 bad command line.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "gale/core/security.h"

namespace {

constexpr const char* kUsage =
    "usage: gale-keygen [--dir DIR] NAME...\n"
    "Writes DIR/NAME.key (public certificate) and DIR/NAME.key_secret (secret, mode 0600)\n"
    "for each NAME (default DIR: the current directory) and prints NAME and its public key.\n"
    "Use the secret file as a worker's key pair and collect the public files of the workers it\n"
    "must accept in a directory (or one file) of authorized keys: gale::CurveConfig::fromFiles.\n";

bool validName(const std::string& n) {
  if (n.empty() || n[0] == '-' || n[0] == '.') return false;
  for (char c : n)
    if (c == '/' || c == '\0') return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = ".";
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--dir") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gale-keygen: --dir needs a directory\n%s", kUsage);
        return 2;
      }
      dir = argv[++i];
    } else if (a.rfind("--dir=", 0) == 0) {
      dir = a.substr(6);
    } else if (validName(a)) {
      names.push_back(a);
    } else {
      std::fprintf(stderr, "gale-keygen: bad argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (names.empty() || dir.empty()) {
    std::fprintf(stderr, "gale-keygen: give at least one NAME\n%s", kUsage);
    return 2;
  }
  try {
    for (const auto& n : names) {
      gale::CurveKeyPair k = gale::generateCurveKeyPair();
      gale::writeCurveCertificates(k, dir, n);
      std::printf("%s %s\n", n.c_str(), k.publicKey.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gale-keygen: %s\n", e.what());
    return 1;
  }
  return 0;
}
