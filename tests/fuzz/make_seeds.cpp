// Writes the seed corpora of gale's fuzz targets (tests/fuzz/corpus/<target>/seed-NN) from real
// data: frames from gale's FrameEncoder, JSON and CSV lines from gale's writers, and the records
// of a real checkpoint that a StateStore wrote (read back raw from LMDB). Deterministic: the same
// program writes the same files. Usage: gale_fuzz_seeds CORPUS_DIR (tests/fuzz/corpus)
#include <lmdb.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "frame_fuzz_registry.h"
#include "gale/connectors/csv.h"
#include "gale/connectors/json_line.h"
#include "gale/core/frame.h"
#include "gale/state/codec.h"
#include "gale/state/state_store.h"

namespace fs = std::filesystem;
using namespace gale;

namespace {

void write(const fs::path& dir, int n, const std::string& bytes) {
  char name[16];
  std::snprintf(name, sizeof name, "seed-%02d", n);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string randomText(std::mt19937_64& rng) {
  static const std::string pieces[] = {"ad", "view", "a,b", "say \"hi\"", "line\nbreak", "",
                                       "é", "\\u00e9", "  spaced ", "12", "-3.5", "true"};
  std::string s;
  for (size_t k = rng() % 3; k > 0; --k) s += pieces[rng() % std::size(pieces)];
  return s;
}

Value randomValue(std::mt19937_64& rng, Type t) {
  if (rng() % 8 == 0) return std::monostate{};
  switch (t) {
    case Type::Int64: return static_cast<int64_t>(rng() % 3 ? rng() % 100000 : rng());
    case Type::Double: return static_cast<double>(static_cast<int64_t>(rng() % 200000) - 100000) / 8.0;
    case Type::Bool: return (rng() & 1) != 0;
    case Type::Timestamp: return Timestamp{1'700'000'000'000'000 + static_cast<int64_t>(rng() % 1'000'000'000)};
    case Type::Bytes: return Bytes{std::string(rng() % 9, static_cast<char>(rng()))};
    case Type::String: return randomText(rng);
    default: return randomValue(rng, static_cast<Type>(1 + rng() % 6));
  }
}

void frames(const fs::path& dir) {
  auto reg = fuzz::frameRegistry();
  std::mt19937_64 rng(1);
  FrameEncoder enc;
  for (int n = 0; n < 30; ++n) {
    std::vector<OutItem> items(rng() % 6);
    for (auto& it : items) {
      if (rng() % 4 == 0) {
        it.isTuple = false;
        it.control.kind = static_cast<ControlKind>(rng() % 10);
        it.control.root = rng();
        it.control.value = rng() % 1000;
        it.control.time = 1'700'000'000'000'000;
        it.control.task = static_cast<TaskId>(rng() % 8);
        it.control.ok = (rng() & 1) != 0;
        if (rng() % 3 == 0) it.control.payload = "checkpoint-" + std::to_string(n);
        continue;
      }
      it.stream = static_cast<StreamId>(rng() % 3);
      const SchemaPtr& s = *reg->find(it.stream);
      Values vs;
      for (const auto& f : s->fields.specs()) vs.push_back(randomValue(rng, f.type));
      it.tuple = Tuple(s, std::move(vs));
      it.tuple.setOriginNanos(static_cast<int64_t>(rng() % 1'000'000'000));
      for (size_t a = rng() % 3; a > 0; --a) it.tuple.mutableAnchors().push_back({rng(), rng()});
    }
    zmq::message_t m = enc.encode(static_cast<TaskId>(n % 4), items);
    write(dir, n, std::string(static_cast<const char*>(m.data()), m.size()));
  }
}

void jsonLines(const fs::path& dir) {
  // The fields of json_line_fuzz.cpp; the first byte is its options byte.
  Fields fields{{"s", Type::String}, {"i", Type::Int64},     {"d", Type::Double},
                {"b", Type::Bool},   {"t", Type::Timestamp}, {"a", Type::Any}};
  std::mt19937_64 rng(2);
  for (int n = 0; n < 30; ++n) {
    Values vs;
    for (const auto& f : fields.specs()) vs.push_back(randomValue(rng, f.type));
    std::string line(1, static_cast<char>(n % 8));
    if (n % 5 == 4) {  // a member the parser does not know, and one left out
      Fields some{{"s", Type::String}, {"extra", Type::Int64}};
      appendJsonObject(line, some, Values{vs[0], int64_t{7}});
    } else {
      appendJsonObject(line, fields, vs);
    }
    write(dir, n, line);
  }
}

void csvLines(const fs::path& dir) {
  std::mt19937_64 rng(3);
  for (int n = 0; n < 30; ++n) {
    Values vs;
    for (size_t k = 1 + rng() % 5; k > 0; --k) vs.push_back(randomValue(rng, static_cast<Type>(1 + rng() % 6)));
    std::string line;
    appendCsvLine(line, vs);
    write(dir, n, line);
  }
}

// Every value of every database of a real checkpoint, raw.
std::vector<std::string> checkpointRecords(const fs::path& chk) {
  {
    StateStoreOptions o;
    o.jobId = "seeds";
    o.sync = false;
    ManualClock clock(Timestamp{1'700'000'000'000'000});
    o.clock = &clock;
    StateStore store(chk.string(), o);
    KeyedState& counts = store.keyedState("counts", StateKind::Opaque);
    KeyedState& totals = store.keyedState("totals", StateKind::Transactional);
    for (uint64_t t = 1; t <= 4; ++t) {
      BatchCommit c = store.beginCommit(t);
      c.update(counts, "w" + std::to_string(t % 2), addInt64(static_cast<int64_t>(t)));
      c.update(totals, "all", addInt64(1));
      c.setOffset("lines", 0, static_cast<int64_t>(10 * t)).setOffset("lines", 1, 5);
      if (t % 2) c.setWatermark(Timestamp{1'700'000'000'000'000 + static_cast<int64_t>(t)});
      c.putSnapshot("window#0", "snapshot" + std::to_string(t));
      c.markSinkCommitted("files");
      c.commit();
      clock.advance(Duration{1'000'000});
    }
  }
  std::vector<std::string> out;
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 64);
  if (mdb_env_open(env, chk.c_str(), MDB_RDONLY, 0644) != 0) throw std::runtime_error("mdb_env_open");
  MDB_txn* txn = nullptr;
  mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  MDB_dbi main = 0;
  mdb_dbi_open(txn, nullptr, 0, &main);
  std::vector<std::string> names;
  auto each = [&](MDB_dbi dbi, auto f) {
    MDB_cursor* cur = nullptr;
    mdb_cursor_open(txn, dbi, &cur);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
      f(std::string(static_cast<char*>(k.mv_data), k.mv_size), std::string(static_cast<char*>(v.mv_data), v.mv_size));
    mdb_cursor_close(cur);
  };
  each(main, [&](std::string k, std::string) { names.push_back(k); });
  for (const auto& name : names) {
    MDB_dbi dbi = 0;
    if (mdb_dbi_open(txn, name.c_str(), 0, &dbi) != 0) continue;  // a plain key, not a database
    each(dbi, [&](std::string, std::string v) { out.push_back(v); });
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return out;
}

void records(const fs::path& dir) {
  auto chk = fs::temp_directory_path() / ("gale-fuzz-seeds-" + std::to_string(::getpid()));
  fs::remove_all(chk);
  std::vector<std::string> recs = checkpointRecords(chk);
  fs::remove_all(chk);
  // Read scripts of record_fuzz.cpp (op % 7: 0 u8, 1 u32, 2 u64, 3 i64, 4 str, 5 rest, 6 end):
  // a commit record's layout, a versioned value's, and a generic one.
  const std::string scripts[] = {
      std::string("\x00\x02\x03\x00\x03\x02\x02\x02\x02\x01\x04\x01\x03\x03\x06", 15),
      std::string("\x02\x00\x04\x05\x06", 5),
      std::string("\x02\x00\x05\x06", 4),
  };
  if (recs.empty()) throw std::runtime_error("the checkpoint holds no records");
  for (size_t n = 0; n < 36; ++n) {
    const std::string& s = scripts[(n / recs.size()) % 3];
    write(dir, static_cast<int>(n), std::string(1, static_cast<char>(s.size())) + s + recs[n % recs.size()]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gale_fuzz_seeds CORPUS_DIR\n");
    return 2;
  }
  fs::path root = argv[1];
  struct Target {
    const char* name;
    void (*make)(const fs::path&);
  } targets[] = {{"frame", frames}, {"json_line", jsonLines}, {"csv", csvLines}, {"record", records}};
  for (const auto& t : targets) {
    fs::path dir = root / t.name;
    // Seeds are rewritten; other files (crash inputs kept as regression cases) stay.
    for (int n = 0; n < 100; ++n) {
      char name[16];
      std::snprintf(name, sizeof name, "seed-%02d", n);
      fs::remove(dir / name);
    }
    fs::create_directories(dir);
    t.make(dir);
    std::printf("%s: seeds written to %s\n", t.name, dir.c_str());
  }
  return 0;
}
