// gale-state: prints what a checkpoint directory holds — metadata, the commit log (txid, time,
// offsets per source and partition, watermark), the keyed states with entry counts and sizes,
// operator snapshots and sink records. Read-only: it takes no lock, so it works on the directory
// of a running job.
//
//   gale-state <dir> [--json] [--limit N]
//
// Exit codes: 0 ok, 1 the directory cannot be read (missing, not a gale checkpoint, ...),
// 2 bad command line.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "gale/state/state_store.h"

namespace {

using gale::CommitRecord;
using gale::StateStore;

std::string isoTime(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1'000'000);
  int64_t frac = micros % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  tm t;
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Keys may be binary: print them readable, escaping what is not.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string offsetsText(const gale::SourceOffsets& offsets) {
  std::ostringstream o;
  bool first = true;
  for (auto& [source, parts] : offsets) {
    for (auto& [p, off] : parts) {
      o << (first ? "" : " ") << source << "/" << p << "=" << off;
      first = false;
    }
  }
  return first ? "-" : o.str();
}

std::string offsetsJson(const gale::SourceOffsets& offsets) {
  std::ostringstream o;
  o << "{";
  bool firstSource = true;
  for (auto& [source, parts] : offsets) {
    o << (firstSource ? "" : ",") << jsonString(source) << ":{";
    bool first = true;
    for (auto& [p, off] : parts) {
      o << (first ? "" : ",") << "\"" << p << "\":" << off;
      first = false;
    }
    o << "}";
    firstSource = false;
  }
  return o.str() + "}";
}

void printText(const StateStore& store, const std::vector<CommitRecord>& log, size_t kept) {
  std::cout << "checkpoint directory  " << store.directory() << "\n"
            << "job id                " << store.jobId() << "\n"
            << "format version        " << store.formatVersion() << "\n"
            << "created               " << isoTime(store.createdAt().micros) << "\n"
            << "map size              " << (store.mapSize() >> 20) << " MiB\n"
            << "last committed txid   " << store.lastCommittedTxid() << "\n\n";
  std::cout << "commit log (" << log.size() << " of " << kept << " kept, newest last)\n";
  if (log.empty()) std::cout << "  (no batch committed yet)\n";
  for (auto& r : log) {
    std::cout << "  txid " << r.txid << "  " << isoTime(r.time.micros) << "  watermark "
              << (r.watermark ? isoTime(r.watermark->micros) : std::string("-")) << "  updates "
              << r.stateUpdates << "  skipped " << r.stateSkips << "  snapshots " << r.snapshots
              << "  bytes " << r.bytes << "\n"
              << "    offsets " << offsetsText(r.offsets) << "\n";
  }
  std::cout << "\nstates\n";
  auto states = store.states();
  if (states.empty()) std::cout << "  (none)\n";
  for (auto& s : states) {
    std::cout << "  " << s.name << "  " << gale::stateKindName(s.kind) << "  entries "
              << s.entries << "  bytes " << s.bytes << "\n";
  }
  std::cout << "\noperator snapshots\n";
  auto snaps = store.snapshots();
  if (snaps.empty()) std::cout << "  (none)\n";
  for (auto& [key, blob] : snaps) std::cout << "  " << printable(key) << "  bytes " << blob.size() << "\n";
  std::cout << "\nsinks\n";
  auto sinks = store.sinks();
  if (sinks.empty()) std::cout << "  (none)\n";
  for (auto& [sink, txid] : sinks) std::cout << "  " << sink << "  last txid " << txid << "\n";
}

void printJson(const StateStore& store, const std::vector<CommitRecord>& log) {
  std::ostringstream o;
  o << "{\"directory\":" << jsonString(store.directory())
    << ",\"jobId\":" << jsonString(store.jobId()) << ",\"formatVersion\":" << store.formatVersion()
    << ",\"createdMicros\":" << store.createdAt().micros << ",\"mapSize\":" << store.mapSize()
    << ",\"lastCommittedTxid\":" << store.lastCommittedTxid() << ",\"commits\":[";
  bool first = true;
  for (auto& r : log) {
    o << (first ? "" : ",") << "{\"txid\":" << r.txid << ",\"timeMicros\":" << r.time.micros
      << ",\"watermarkMicros\":"
      << (r.watermark ? std::to_string(r.watermark->micros) : std::string("null"))
      << ",\"offsets\":" << offsetsJson(r.offsets) << ",\"stateUpdates\":" << r.stateUpdates
      << ",\"stateSkips\":" << r.stateSkips << ",\"snapshots\":" << r.snapshots
      << ",\"bytes\":" << r.bytes << "}";
    first = false;
  }
  o << "],\"states\":[";
  first = true;
  for (auto& s : store.states()) {
    o << (first ? "" : ",") << "{\"name\":" << jsonString(s.name) << ",\"kind\":\""
      << gale::stateKindName(s.kind) << "\",\"entries\":" << s.entries << ",\"bytes\":" << s.bytes
      << "}";
    first = false;
  }
  o << "],\"snapshots\":{";
  first = true;
  for (auto& [key, blob] : store.snapshots()) {
    o << (first ? "" : ",") << jsonString(printable(key)) << ":" << blob.size();
    first = false;
  }
  o << "},\"sinks\":{";
  first = true;
  for (auto& [sink, txid] : store.sinks()) {
    o << (first ? "" : ",") << jsonString(sink) << ":" << txid;
    first = false;
  }
  o << "}}\n";
  std::cout << o.str();
}

int usage(const char* why) {
  if (why) std::cerr << "gale-state: " << why << "\n";
  std::cerr << "usage: gale-state <checkpoint-dir> [--json] [--limit N]\n"
               "  prints the metadata, the last N commit records (default 20), the keyed states\n"
               "  with entry counts and sizes, operator snapshots and sink records\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool json = false;
  size_t limit = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--limit") {
      if (i + 1 >= argc) return usage("--limit needs a number");
      char* end = nullptr;
      long long n = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || n < 0) return usage("--limit needs a number >= 0");
      limit = static_cast<size_t>(n);
    } else if (a == "-h" || a == "--help") {
      usage(nullptr);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return usage(("unknown option " + a).c_str());
    } else if (dir.empty()) {
      dir = a;
    } else {
      return usage("give one checkpoint directory");
    }
  }
  if (dir.empty()) return usage("no checkpoint directory given");
  try {
    auto store = StateStore::inspect(dir);
    auto all = store->commitLog();
    std::vector<CommitRecord> log(all.size() > limit ? all.end() - static_cast<long>(limit)
                                                     : all.begin(),
                                  all.end());
    if (json) {
      printJson(*store, log);
    } else {
      printText(*store, log, all.size());
    }
  } catch (const std::exception& e) {
    std::cerr << "gale-state: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
