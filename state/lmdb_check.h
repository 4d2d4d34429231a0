// Checks an LMDB data file (data.mdb) without mapping it: every read is a bounds-checked pread, so
// a truncated or bit-flipped file gives a DamageFound, never a SIGBUS or SIGSEGV.
//
// LMDB maps the file and follows its page numbers without checking them: a file shorter than the
// pages its meta page names faults on access (SIGBUS), a flipped page number or node offset sends
// it outside the map or page (SIGSEGV), a flipped key in a branch page misroutes lookups (a key
// that is there is not found: a silently wrong answer). So before LMDB touches a page, gale
//   - reads both meta pages and checks the file's size against the newest one (checkFile), and
//   - walks every B-tree of the snapshot LMDB will use (Walker): page numbers in range and each
//     page reached once, page headers and node offsets inside the page, keys in order and inside
//     the bounds their parent's separators give, leaves at the recorded depth, the page and entry
//     counts of each database equal to its record, overflow pages in range, and every free-list
//     page in range, used once and not also live.
// The on-disk layout is LMDB 0.9's (MDB_DATA_VERSION 1) on a 64-bit little-endian machine.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gale::lmdb_check {

// What is wrong with the file, in words (the caller adds the file name and the ways out).
class DamageFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An MDB_db record: one database's root and counts (in a meta page, or a named database's record
// in the main database).
struct DbRecord {
  uint32_t pad = 0;
  uint16_t flags = 0;
  uint16_t depth = 0;
  uint64_t branchPages = 0, leafPages = 0, overflowPages = 0, entries = 0, root = 0;
};

struct Meta {
  int page = 0;  // 0 or 1
  uint32_t pageSize = 0;
  uint64_t mapSize = 0;
  DbRecord freeDb, mainDb;
  uint64_t lastPage = 0;
  uint64_t txnid = 0;
  uint64_t fileBytes = 0;
};

// Reads both meta pages of `file` and checks them and the file's size against the newest one
// (the one LMDB opens). Throws DamageFound for an empty, short or truncated file or a bad meta
// page; std::runtime_error when the file cannot be read at all.
Meta checkFile(const std::string& file);
// The meta page (0 or 1) that records LMDB transaction `txnid`, if one does.
std::optional<Meta> metaOfTxn(const std::string& file, uint64_t txnid);

// Walks the trees of one snapshot (meta) of `file`.
class Walker {
 public:
  Walker(const std::string& file, const Meta& meta);
  ~Walker();
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  // The named databases: the main tree checked, each record decoded.
  std::map<std::string, DbRecord> namedDbs();
  // Walks one database against its record; f sees every (key, value) in key order.
  void walk(const std::string& name, const DbRecord& db,
            const std::function<void(std::string_view key, std::string_view value)>& f);
  // The free list: its tree, and every free page in range, listed once and not live. Call after
  // every tree was walked (it compares against the pages they reached).
  void checkFreeList();

  uint64_t livePages() const { return live_; }
  uint64_t freePages() const { return free_; }

 private:
  struct Counts {
    uint64_t branch = 0, leaf = 0, overflow = 0, entries = 0;
  };
  using Visit = std::function<void(std::string_view key, std::string_view value, uint16_t flags)>;
  void walkTree(const std::string& name, const DbRecord& db, bool intKeys, const Visit& f);
  void walkPage(const std::string& name, uint64_t pgno, unsigned level, unsigned depth,
                const std::optional<std::string>& lo, const std::optional<std::string>& hi,
                bool intKeys, Counts& counts, const Visit& f);
  std::string readPages(uint64_t pgno, uint64_t count) const;
  void markLive(const std::string& name, uint64_t pgno);
  [[noreturn]] void damaged(const std::string& name, uint64_t pgno, const std::string& what) const;

  int fd_ = -1;
  std::string file_;
  Meta meta_;
  std::vector<uint8_t> state_;  // per page: 0 unseen, 1 live, 2 free
  uint64_t live_ = 0, free_ = 0;
};

}  // namespace gale::lmdb_check
