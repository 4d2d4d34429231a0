// Securing the channels between processes: ZeroMQ's CURVE mechanism (CurveZMQ: encryption and
// mutual authentication with Curve25519 keys) and limits on the peers a receiver accepts.
// docs/security.md says how to turn it on and what it does and does not protect.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gale {

// Keys are 40-character Z85 strings, as zmq_curve_keypair() prints them.
struct CurveKeyPair {
  std::string publicKey;
  std::string secretKey;
};

// One process's CURVE setup. Its receivers (inboxes on tcp:// and ipc://) are CURVE servers
// with this key pair and accept a client only if the client proves a key in
// `authorizedClients` (checked by a ZAP handler; anything else is refused and counted). Its
// senders are CURVE clients with the same key pair, so peers must authorize its public key.
struct CurveConfig {
  CurveKeyPair keyPair;
  std::vector<std::string> authorizedClients;

  // keyPairFile: a secret certificate (see loadCurveKeyPair); authorizedKeys: a file or a
  // directory of public keys (see loadCurvePublicKeys).
  static CurveConfig fromFiles(const std::filesystem::path& keyPairFile,
                               const std::filesystem::path& authorizedKeys);
};

// Throws std::runtime_error with the reason (and the fix) when the libzmq this process runs on
// was built without CURVE (zmq_has("curve") is false: no libsodium).
void requireCurveSupport();

// A fresh key pair from zmq_curve_keypair().
CurveKeyPair generateCurveKeyPair();

// Key files are ZeroMQ's certificate format (CZMQ's zcert / ZPL, what `zmakecert` writes), so
// existing certificates work:
//     curve
//         public-key = "<40 Z85 characters>"
//         secret-key = "<40 Z85 characters>"     (secret certificate only)
// Lines starting with '#' and other sections are ignored.
//
// Reads a secret certificate. The secret key alone is enough (the public key is derived); a
// public key, if present, must match it. The file must not be readable by group or others.
// Throws std::runtime_error naming the file and the problem.
CurveKeyPair loadCurveKeyPair(const std::filesystem::path& file);
// Reads public keys: from a file holding certificates' `public-key = "..."` lines and/or bare
// Z85 keys one per line, or from a directory of such files (a CZMQ certificate store; files
// ending in _secret are skipped). Throws std::runtime_error naming the file for a bad key or
// when no key is found.
std::vector<std::string> loadCurvePublicKeys(const std::filesystem::path& fileOrDirectory);
// Writes <dir>/<name>.key (public certificate, mode 0644) and <dir>/<name>.key_secret (secret
// certificate, mode 0600). Refuses to overwrite existing files.
void writeCurveCertificates(const CurveKeyPair& keys, const std::filesystem::path& dir,
                            const std::string& name);
// True for a 40-character Z85 string that decodes to a 32-byte key.
bool isCurveKey(const std::string& z85);

// Bounds on what one receiver (one task's inbox) accepts on tcp:// and ipc://. ZeroMQ accepts
// every connection its listener sees and offers no "max peers" option, so gale enforces the cap
// itself: it watches each receiver's socket events and closes connections accepted beyond
// `maxConnections` (counted in PeerStats::connectionsOverLimit); the sender's ZeroMQ retries
// later. A connection that has not finished its handshake after `handshakeTimeout` is closed by
// ZeroMQ (ZMQ_HANDSHAKE_IVL), so half-open connections cannot hold slots for long.
struct PeerLimits {
  // Open connections per receiver, handshaking or established. The continuous runtime raises it
  // to the topology's task count + 8 if lower, so its own senders always fit.
  int maxConnections = 256;
  std::chrono::milliseconds handshakeTimeout{5000};
  int backlog = 64;           // the listen(2) queue (ZMQ_BACKLOG)
};

// Totals for one Transport (process-wide for a running topology).
struct PeerStats {
  uint64_t accepted = 0;               // connections accepted by receivers' listeners
  uint64_t handshakesSucceeded = 0;
  uint64_t handshakesFailed = 0;       // wrong or missing keys, protocol errors, timeouts
  uint64_t unauthorizedKeys = 0;       // valid CURVE handshakes with a key not authorized (ZAP)
  uint64_t connectionsOverLimit = 0;   // closed because a receiver was at maxConnections
  uint64_t openConnections = 0;        // now, over all receivers
  uint64_t peakOpenConnections = 0;    // the most openConnections has been
};

}  // namespace gale
