// gale-keygen: makes CURVE key pairs for gale workers, as ZeroMQ certificates (CZMQ's format,
// see docs/security.md): <dir>/<name>.key (public: hand it to the peers) and
// <dir>/<name>.key_secret (secret: mode 0600, stays on this host).
//
//   gale-keygen [--dir DIR] NAME...
//
// Prints "<name> <public key>" per name. Exit codes: 0 ok, 1 a key could not be made or written
// (existing files are never overwritten), 2 bad command line.
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "gale/core/security.h"

int main(int argc, char** argv) {
  std::string dir = ".";
  std::vector<std::string> names;
  CLI::App app{
      "usage: gale-keygen [--dir DIR] NAME...\n"
      "Writes DIR/NAME.key (public certificate) and DIR/NAME.key_secret (secret, mode 0600)\n"
      "for each NAME (default DIR: the current directory) and prints NAME and its public key.\n"
      "Use the secret file as a worker's key pair and collect the public files of the workers it\n"
      "must accept in a directory (or one file) of authorized keys: gale::CurveConfig::fromFiles.",
      "gale-keygen"};
  app.add_option("--dir", dir, "directory for the key files")->capture_default_str()
      ->check([](const std::string& d) { return d.empty() ? std::string("empty directory") : ""; });
  app.add_option("names", names, "worker names (no '/', not starting with '-' or '.')")
      ->required()
      ->check([](const std::string& n) -> std::string {
        if (n.empty() || n[0] == '-' || n[0] == '.' || n.find('/') != std::string::npos)
          return "bad name '" + n + "'";
        return {};
      });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "gale-keygen: " << e.what() << "\n\n" << app.help();
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
