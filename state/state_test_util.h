// Helpers shared by the state module's tests: the deterministic word source of the crash and
// fault tests with its oracle, and raw LMDB writes that play an older or newer gale.
#pragma once

#include <gtest/gtest.h>
#include <lmdb.h>

#include <cstdint>
#include <map>
#include <string>

namespace gale::testing {

// Record i of the deterministic source: one word out of `distinct`.
inline std::string wordAt(int64_t i, uint64_t distinct) {
  uint64_t h = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  return "w" + std::to_string((h >> 33) % distinct);
}

// The word counts of records [0, upTo).
inline std::map<std::string, int64_t> wordOracle(int64_t upTo, uint64_t distinct) {
  std::map<std::string, int64_t> counts;
  for (int64_t i = 0; i < upTo; ++i) ++counts[wordAt(i, distinct)];
  return counts;
}

// Overwrites the checkpoint's format version record with 4 raw bytes, as gale 1 stored it (and
// as no checksum-aware gale would).
inline void putRawFormatVersion(const std::string& dir, uint32_t version) {
  MDB_env* env;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0644), 0);
  MDB_txn* txn;
  MDB_dbi meta;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
  MDB_val k{14, const_cast<char*>("format_version")}, d{4, &version};
  ASSERT_EQ(mdb_put(txn, meta, &k, &d, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

}  // namespace gale::testing
