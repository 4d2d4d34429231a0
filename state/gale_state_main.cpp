// gale-state: prints what a checkpoint directory holds — metadata, the commit log (txid, time,
// offsets per source and partition, watermark), the keyed states with entry counts and sizes,
// operator snapshots and sink records — or verifies it. Read-only: it takes no lock, so it works
// on the directory of a running job.
//
//   gale-state <dir> [--json] [--limit N]
//   gale-state verify <dir> [--json]
//
// Exit codes: 0 ok, 1 the directory cannot be read or is damaged (missing, not a gale checkpoint,
// a failed verification, ...), 2 bad command line.
#include <time.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "gale/core/watermark.h"
#include "gale/state/checkpoint_summary.h"
#include "gale/state/state_store.h"

namespace {

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

// The end-of-input watermark is the largest timestamp, a date in the year 294247: say what it means.
std::string watermarkText(const std::optional<gale::Timestamp>& wm) {
  if (!wm) return "-";
  if (*wm == gale::kEndOfTime) return "end of input";
  return isoTime(wm->micros);
}

// One line of JSON; a name that is not UTF-8 gets U+FFFD rather than making it invalid.
std::string jsonLine(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
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

void printText(const gale::CheckpointSummary& c, size_t kept) {
  std::cout << "checkpoint directory  " << c.directory << "\n"
            << "job id                " << c.jobId << "\n"
            << "format version        " << c.formatVersion << "\n"
            << "created               " << isoTime(c.createdAt.micros) << "\n"
            << "map size              " << (c.mapSize >> 20) << " MiB\n"
            << "last committed txid   " << c.lastCommittedTxid << "\n\n";
  std::cout << "commit log (" << c.commits.size() << " of " << kept << " kept, newest last)\n";
  if (c.commits.empty()) std::cout << "  (no batch committed yet)\n";
  for (auto& r : c.commits) {
    std::cout << "  txid " << r.txid << "  " << isoTime(r.time.micros) << "  watermark "
              << watermarkText(r.watermark) << "  updates "
              << r.stateUpdates << "  skipped " << r.stateSkips << "  snapshots " << r.snapshots
              << "  bytes " << r.bytes << "\n"
              << "    offsets " << offsetsText(r.offsets) << "\n";
  }
  std::cout << "\nstates\n";
  if (c.states.empty()) std::cout << "  (none)\n";
  for (auto& s : c.states) {
    std::cout << "  " << s.name << "  " << gale::stateKindName(s.kind) << "  entries "
              << s.entries << "  bytes " << s.bytes << "\n";
  }
  std::cout << "\noperator snapshots\n";
  if (c.snapshotBytes.empty()) std::cout << "  (none)\n";
  for (auto& [key, bytes] : c.snapshotBytes) std::cout << "  " << key << "  bytes " << bytes << "\n";
  std::cout << "\nsinks\n";
  if (c.sinks.empty()) std::cout << "  (none)\n";
  for (auto& [sink, txid] : c.sinks) std::cout << "  " << sink << "  last txid " << txid << "\n";
}

void printVerifyText(const gale::CheckpointReport& r) {
  uint64_t total = 0;
  std::ostringstream records;
  for (auto& [db, n] : r.records) {
    records << (total == 0 && records.tellp() == 0 ? "" : ", ") << db << " " << n;
    total += n;
  }
  std::cout << "checkpoint directory  " << r.directory << "\n"
            << "data file             " << r.dataFile << " (" << r.fileBytes << " bytes, page size "
            << r.pageSize << ", pages 0.." << r.lastPage << ", LMDB transaction " << r.lmdbTxnid
            << ")\n"
            << "pages                 " << r.livePages << " in use, " << r.freePages << " free\n"
            << "records verified      " << total << " (" << records.str() << ")\n"
            << "last committed txid   " << r.lastCommittedTxid << "\n"
            << "result                OK: the file size, both meta pages, every B-tree page and "
               "every record checksum verified\n";
}

void printVerifyJson(const gale::CheckpointReport& r) {
  std::cout << jsonLine({{"ok", true},
                         {"directory", r.directory},
                         {"dataFile", r.dataFile},
                         {"fileBytes", r.fileBytes},
                         {"pageSize", r.pageSize},
                         {"lastPage", r.lastPage},
                         {"lmdbTxnid", r.lmdbTxnid},
                         {"livePages", r.livePages},
                         {"freePages", r.freePages},
                         {"lastCommittedTxid", r.lastCommittedTxid},
                         {"records", r.records}});
}

int verify(const std::string& dir, bool json) {
  try {
    gale::CheckpointReport r = StateStore::verify(dir);
    if (json) {
      printVerifyJson(r);
    } else {
      printVerifyText(r);
    }
    return 0;
  } catch (const std::exception& e) {
    bool damaged = dynamic_cast<const gale::CheckpointDamaged*>(&e) != nullptr;
    if (json) {
      std::cout << jsonLine(
          {{"ok", false}, {"damaged", damaged}, {"directory", dir}, {"error", e.what()}});
    }
    std::cerr << "gale-state verify: " << (damaged ? "DAMAGED: " : "") << e.what() << "\n";
    return 1;
  }
}

int inspect(const std::string& dir, bool json, size_t limit) {
  try {
    auto store = StateStore::inspect(dir);
    // The last `limit` records the log keeps (txids may have gaps: not a txid range).
    auto all = store->commitLog();
    gale::CheckpointSummary summary = gale::summarizeCheckpoint(*store, 0);
    summary.commits.assign(
        all.size() > limit ? all.end() - static_cast<long>(limit) : all.begin(), all.end());
    if (json) {
      std::cout << gale::checkpointSummaryJson(summary) << "\n";
    } else {
      printText(summary, all.size());
    }
  } catch (const std::exception& e) {
    std::cerr << "gale-state: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

// Parses with `app`: --help exits 0, a bad command line gets the message and the help, exit 2.
template <class Run>
int parseAndRun(CLI::App& app, int argc, char** argv, Run&& run) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << app.get_name() << ": " << e.what() << "\n\n" << app.help();
    return 2;
  }
  return run();
}

}  // namespace

int main(int argc, char** argv) {
  // `gale-state verify <dir>` is its own command line, so that a directory is never taken for
  // the word "verify" or the other way round.
  if (argc >= 2 && std::string(argv[1]) == "verify") {
    CLI::App app{"Checks a gale checkpoint offline: the data file's size, both LMDB meta pages, "
                 "every B-tree page and every record's checksum. Exit code 0 when intact, 1 when "
                 "damaged or unreadable, 2 for a bad command line.",
                 "gale-state verify"};
    std::string dir;
    bool json = false;
    app.add_option("dir", dir, "the checkpoint directory")->required();
    app.add_flag("--json", json, "print the report as JSON");
    return parseAndRun(app, argc - 1, argv + 1, [&] { return verify(dir, json); });
  }
  CLI::App app{"Prints what a gale checkpoint directory holds: the metadata, the last N commit "
               "records, the keyed states with entry counts and sizes, operator snapshots and "
               "sink records. Read-only and lock-free: it works on the directory of a running "
               "job. Exit code 0 ok, 1 unreadable or damaged, 2 bad command line.",
               "gale-state"};
  app.footer("Also: gale-state verify <dir> [--json]   checks a checkpoint offline "
             "(gale-state verify --help)");
  std::string dir;
  bool json = false;
  size_t limit = 20;
  app.add_option("dir", dir, "the checkpoint directory")->required();
  app.add_flag("--json", json, "print JSON");
  app.add_option("--limit", limit, "commit records to print, newest last")
      ->capture_default_str()
      ->check([](const std::string& v) {  // size_t would take "-1" as 2^64 - 1
        return !v.empty() && v[0] == '-' ? std::string("must be a number >= 0") : std::string();
      });
  return parseAndRun(app, argc, argv, [&] { return inspect(dir, json, limit); });
}
