#include "lmdb_check.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace gale::lmdb_check {

namespace {

// LMDB 0.9's on-disk constants (mdb.c); the layout is checked against mdb_stat by the tests.
constexpr uint32_t kMagic = 0xBEEFC0DE;
constexpr uint32_t kDataVersion = 1;
constexpr size_t kPageHeader = 16;  // pgno (8), pad (2), flags (2), lower (2), upper (2)
constexpr size_t kNodeHeader = 8;   // lo (2), hi (2), flags (2), ksize (2)
constexpr size_t kDbRecord = 48;
constexpr size_t kMetaBytes = kPageHeader + 4 + 4 + 8 + 8 + 2 * kDbRecord + 8 + 8;
constexpr uint16_t kBranch = 0x01, kLeaf = 0x02, kOverflow = 0x04, kMetaPage = 0x08;
constexpr uint16_t kDirty = 0x10, kKeep = 0x8000;
constexpr uint16_t kBigData = 0x01, kSubData = 0x02;
constexpr uint16_t kIntegerKey = 0x08;
// The database flags that change how LMDB reads a tree (REVERSEKEY, DUPSORT, INTEGERKEY,
// DUPFIXED, INTEGERDUP, REVERSEDUP); LMDB keeps other bits in md_flags too.
constexpr uint16_t kKeyFlags = 0x7e;
constexpr uint64_t kInvalidPage = ~uint64_t{0};
constexpr unsigned kMaxDepth = 64;

uint64_t le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

DbRecord dbRecord(const char* p) {
  DbRecord d;
  d.pad = static_cast<uint32_t>(le(p, 4));
  d.flags = static_cast<uint16_t>(le(p + 4, 2));
  d.depth = static_cast<uint16_t>(le(p + 6, 2));
  d.branchPages = le(p + 8, 8);
  d.leafPages = le(p + 16, 8);
  d.overflowPages = le(p + 24, 8);
  d.entries = le(p + 32, 8);
  d.root = le(p + 40, 8);
  return d;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int openFile(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw std::runtime_error("cannot open " + file + ": " + std::strerror(e));
  }
  return fd;
}

// Exactly n bytes at offset, or fewer when the file ends first.
std::string readAt(int fd, uint64_t offset, size_t n, const std::string& file) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      throw std::runtime_error("cannot read " + file + ": " + std::strerror(e));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

// Meta page `index` (at offset index * pageSize; pageSize 0 = read page 0 to learn it).
Meta readMeta(int fd, int index, uint64_t offset, uint64_t fileBytes, const std::string& file) {
  std::string page = readAt(fd, offset, kMetaBytes, file);
  std::string where = "meta page " + std::to_string(index);
  if (page.size() < kMetaBytes) {
    throw DamageFound("the file is " + std::to_string(fileBytes) + " bytes, too short to hold " +
                      where + " (truncated)");
  }
  const char* p = page.data();
  uint16_t flags = static_cast<uint16_t>(le(p + 10, 2));
  if (!(flags & kMetaPage)) throw DamageFound(where + " is not marked as a meta page");
  const char* m = p + kPageHeader;
  if (le(m, 4) != kMagic) throw DamageFound(where + " has a bad magic number (not an LMDB file?)");
  if (le(m + 4, 4) != kDataVersion) {
    throw DamageFound(where + " has LMDB data version " + std::to_string(le(m + 4, 4)) +
                      ", expected " + std::to_string(kDataVersion));
  }
  Meta meta;
  meta.page = index;
  meta.mapSize = le(m + 16, 8);
  meta.freeDb = dbRecord(m + 24);
  meta.mainDb = dbRecord(m + 24 + kDbRecord);
  meta.lastPage = le(m + 24 + 2 * kDbRecord, 8);
  meta.txnid = le(m + 24 + 2 * kDbRecord + 8, 8);
  meta.pageSize = meta.freeDb.pad;  // LMDB keeps the page size in the free DB's pad
  meta.fileBytes = fileBytes;
  uint32_t ps = meta.pageSize;
  if (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0) {
    throw DamageFound(where + " records an impossible page size of " + std::to_string(ps));
  }
  return meta;
}

}  // namespace

Meta checkFile(const std::string& file) {
  Fd fd{openFile(file)};
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) {
    int e = errno;
    throw std::runtime_error("cannot stat " + file + ": " + std::strerror(e));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    throw DamageFound("the file is empty (0 bytes); gale creates a checkpoint's data file "
                      "complete, so an empty one was truncated or never fully copied");
  }
  Meta m0 = readMeta(fd.fd, 0, 0, size, file);
  Meta m1 = readMeta(fd.fd, 1, m0.pageSize, size, file);
  // The size again, after the meta pages: a job writing meanwhile extends the file before it
  // writes the meta page that names the new pages, so this size covers what the metas name.
  if (::fstat(fd.fd, &st) != 0) {
    int e = errno;
    throw std::runtime_error("cannot stat " + file + ": " + std::strerror(e));
  }
  size = static_cast<uint64_t>(st.st_size);
  if (m1.pageSize != m0.pageSize) {
    throw DamageFound("the meta pages disagree on the page size (" + std::to_string(m0.pageSize) +
                      " and " + std::to_string(m1.pageSize) + ")");
  }
  // LMDB opens the meta page with the larger txnid (page 0 on a tie).
  Meta meta = m1.txnid > m0.txnid ? m1 : m0;
  meta.fileBytes = size;
  if (meta.lastPage < 1 || meta.lastPage > (uint64_t{1} << 40)) {
    throw DamageFound("meta page " + std::to_string(meta.page) + " records an impossible last "
                      "page " + std::to_string(meta.lastPage));
  }
  // A flipped high bit would make LMDB try to map petabytes (an mmap error, not damage news).
  if (meta.mapSize > (uint64_t{1} << 46)) {
    throw DamageFound("meta page " + std::to_string(meta.page) + " records an impossible map "
                      "size of " + std::to_string(meta.mapSize) + " bytes");
  }
  uint64_t needed = (meta.lastPage + 1) * meta.pageSize;
  if (size < needed) {
    throw DamageFound("the file is " + std::to_string(size) + " bytes, but its last committed "
                      "LMDB transaction (" + std::to_string(meta.txnid) + ") uses " +
                      std::to_string(needed) + " bytes (pages 0.." + std::to_string(meta.lastPage) +
                      " of " + std::to_string(meta.pageSize) + "): it was truncated");
  }
  return meta;
}

std::optional<Meta> metaOfTxn(const std::string& file, uint64_t txnid) {
  Meta newest = checkFile(file);
  if (newest.txnid == txnid) return newest;
  Fd fd{openFile(file)};
  Meta other = readMeta(fd.fd, 1 - newest.page, (1 - newest.page) * uint64_t{newest.pageSize},
                        newest.fileBytes, file);
  if (other.txnid == txnid) return other;
  return std::nullopt;
}

Walker::Walker(const std::string& file, const Meta& meta)
    : fd_(openFile(file)), file_(file), meta_(meta), state_(meta.lastPage + 1, 0) {}

Walker::~Walker() {
  if (fd_ >= 0) ::close(fd_);
}

void Walker::damaged(const std::string& name, uint64_t pgno, const std::string& what) const {
  throw DamageFound("database '" + name + "', page " + std::to_string(pgno) + ": " + what);
}

std::string Walker::readPages(uint64_t pgno, uint64_t count) const {
  std::string buf = readAt(fd_, pgno * meta_.pageSize, count * meta_.pageSize, file_);
  if (buf.size() != count * meta_.pageSize) {
    throw DamageFound("page " + std::to_string(pgno) + " lies beyond the end of the file");
  }
  return buf;
}

void Walker::markLive(const std::string& name, uint64_t pgno) {
  if (pgno < 2 || pgno > meta_.lastPage) {
    damaged(name, pgno, "page number out of range (2.." + std::to_string(meta_.lastPage) + ")");
  }
  if (state_[pgno] != 0) damaged(name, pgno, "page reached twice");
  state_[pgno] = 1;
  ++live_;
}

namespace {
// LMDB's default key order (mdb_cmp_memn) or, for MDB_INTEGERKEY, native unsigned integers.
int compareKeys(std::string_view a, std::string_view b, bool intKeys) {
  if (intKeys && a.size() == 8 && b.size() == 8) {
    uint64_t x = le(a.data(), 8), y = le(b.data(), 8);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a.compare(b);
}
}  // namespace

void Walker::walkPage(const std::string& name, uint64_t pgno, unsigned level, unsigned depth,
                      const std::optional<std::string>& lo, const std::optional<std::string>& hi,
                      bool intKeys, Counts& counts, const Visit& f) {
  markLive(name, pgno);
  const size_t ps = meta_.pageSize;
  std::string page = readPages(pgno, 1);
  const char* p = page.data();
  if (le(p, 8) != pgno) damaged(name, pgno, "the page header names page " + std::to_string(le(p, 8)));
  uint16_t flags = static_cast<uint16_t>(le(p + 10, 2)) & ~(kDirty | kKeep);
  bool leaf = level == depth;
  if (flags != (leaf ? kLeaf : kBranch)) {
    damaged(name, pgno, std::string("expected a ") + (leaf ? "leaf" : "branch") +
                            " page at level " + std::to_string(level) + ", found page flags " +
                            std::to_string(flags));
  }
  size_t lower = le(p + 12, 2), upper = le(p + 14, 2);
  if (lower < kPageHeader || (lower - kPageHeader) % 2 != 0 || upper > ps || lower > upper) {
    damaged(name, pgno, "bad free-space bounds " + std::to_string(lower) + ".." +
                            std::to_string(upper));
  }
  size_t n = (lower - kPageHeader) / 2;
  if (n == 0) damaged(name, pgno, "an empty page in the tree");
  std::optional<std::string> prev;
  std::vector<std::pair<std::optional<std::string>, uint64_t>> children;
  for (size_t i = 0; i < n; ++i) {
    size_t off = le(p + kPageHeader + 2 * i, 2);
    if (off < upper || off + kNodeHeader > ps) damaged(name, pgno, "node offset out of the page");
    const char* node = p + off;
    uint64_t lo16 = le(node, 2), hi16 = le(node + 2, 2);
    uint16_t nflags = static_cast<uint16_t>(le(node + 4, 2));
    size_t ksize = le(node + 6, 2);
    if (off + kNodeHeader + ksize > ps) damaged(name, pgno, "a key runs past the page end");
    std::string_view key(node + kNodeHeader, ksize);
    if (!leaf && i == 0) {
      if (ksize != 0) damaged(name, pgno, "the first branch key is not empty");
    } else {
      if (ksize == 0) damaged(name, pgno, "an empty key");
      if (prev && compareKeys(*prev, key, intKeys) >= 0) damaged(name, pgno, "keys out of order");
      if (lo && compareKeys(key, *lo, intKeys) < 0) {
        damaged(name, pgno, "a key below its parent's separator");
      }
      if (hi && compareKeys(key, *hi, intKeys) >= 0) {
        damaged(name, pgno, "a key at or above the next separator of its parent");
      }
      prev = std::string(key);
    }
    if (!leaf) {
      uint64_t child = lo16 | (hi16 << 16) | (uint64_t{nflags} << 32);
      children.emplace_back(i == 0 ? lo : std::optional<std::string>(std::string(key)), child);
      continue;
    }
    uint64_t dsize = lo16 | (hi16 << 16);
    const char* data = node + kNodeHeader + ksize;
    size_t inPage = ps - (off + kNodeHeader + ksize);
    if (nflags & ~(kBigData | kSubData)) damaged(name, pgno, "unknown node flags");
    if (nflags & kBigData) {
      if ((nflags & kSubData) || inPage < 8) damaged(name, pgno, "bad overflow node");
      uint64_t opg = le(data, 8);
      uint64_t pages = (kPageHeader - 1 + dsize) / ps + 1;
      if (opg < 2 || opg > meta_.lastPage || pages > meta_.lastPage + 1 - opg) {
        damaged(name, pgno, "overflow pages " + std::to_string(opg) + "+" +
                                std::to_string(pages) + " out of range");
      }
      for (uint64_t k = 0; k < pages; ++k) markLive(name, opg + k);
      std::string over = readPages(opg, pages);
      if (le(over.data(), 8) != opg ||
          (static_cast<uint16_t>(le(over.data() + 10, 2)) & ~(kDirty | kKeep)) != kOverflow ||
          le(over.data() + 12, 4) != pages) {
        damaged(name, opg, "bad overflow page header");
      }
      counts.overflow += pages;
      ++counts.entries;
      f(key, std::string_view(over.data() + kPageHeader, dsize), nflags);
    } else {
      if (dsize > inPage) damaged(name, pgno, "a value runs past the page end");
      ++counts.entries;
      f(key, std::string_view(data, dsize), nflags);
    }
  }
  if (leaf) {
    ++counts.leaf;
    return;
  }
  ++counts.branch;
  for (size_t i = 0; i < children.size(); ++i) {
    std::optional<std::string> upperBound = i + 1 < children.size() ? children[i + 1].first : hi;
    walkPage(name, children[i].second, level + 1, depth, children[i].first, upperBound, intKeys,
             counts, f);
  }
}

void Walker::walkTree(const std::string& name, const DbRecord& db, bool intKeys, const Visit& f) {
  if (db.root == kInvalidPage) {
    if (db.depth != 0 || db.entries != 0 || db.branchPages + db.leafPages + db.overflowPages != 0) {
      throw DamageFound("database '" + name + "': an empty tree with non-zero counts");
    }
    return;
  }
  if (db.depth == 0 || db.depth > kMaxDepth) {
    throw DamageFound("database '" + name + "': impossible depth " + std::to_string(db.depth));
  }
  Counts c;
  walkPage(name, db.root, 1, db.depth, std::nullopt, std::nullopt, intKeys, c, f);
  if (c.branch != db.branchPages || c.leaf != db.leafPages || c.overflow != db.overflowPages ||
      c.entries != db.entries) {
    throw DamageFound("database '" + name + "': its record says " + std::to_string(db.entries) +
                      " entries in " + std::to_string(db.branchPages) + "+" +
                      std::to_string(db.leafPages) + "+" + std::to_string(db.overflowPages) +
                      " pages, the tree has " + std::to_string(c.entries) + " in " +
                      std::to_string(c.branch) + "+" + std::to_string(c.leaf) + "+" +
                      std::to_string(c.overflow));
  }
}

std::map<std::string, DbRecord> Walker::namedDbs() {
  if (meta_.mainDb.flags & kKeyFlags) {
    throw DamageFound("the main database has flags " + std::to_string(meta_.mainDb.flags) +
                      " (gale opens it with none)");
  }
  std::map<std::string, DbRecord> out;
  walkTree("(main)", meta_.mainDb, false, [&](std::string_view key, std::string_view value,
                                              uint16_t flags) {
    if (flags != kSubData || value.size() != kDbRecord) {
      throw DamageFound("the main database holds a record '" + std::string(key) +
                        "' that is not a named database");
    }
    out.emplace(std::string(key), dbRecord(value.data()));
  });
  return out;
}

void Walker::walk(const std::string& name, const DbRecord& db,
                  const std::function<void(std::string_view, std::string_view)>& f) {
  if (db.flags & kKeyFlags) {
    throw DamageFound("database '" + name + "' has flags " + std::to_string(db.flags) +
                      " (gale opens its databases with none)");
  }
  walkTree(name, db, false, [&](std::string_view key, std::string_view value, uint16_t flags) {
    if (flags & kSubData) throw DamageFound("database '" + name + "' holds a nested database");
    f(key, value);
  });
}

void Walker::checkFreeList() {
  if ((meta_.freeDb.flags & kKeyFlags) != kIntegerKey) {
    throw DamageFound("the free list has flags " + std::to_string(meta_.freeDb.flags));
  }
  std::vector<uint64_t> freePages;
  walkTree("(free list)", meta_.freeDb, true,
           [&](std::string_view key, std::string_view value, uint16_t flags) {
             if (flags & kSubData || key.size() != 8 || value.size() < 8 || value.size() % 8 != 0) {
               throw DamageFound("a malformed free-list record");
             }
             uint64_t n = le(value.data(), 8);
             if (n > value.size() / 8 - 1) throw DamageFound("a free-list record overruns itself");
             for (uint64_t i = 1; i <= n; ++i) freePages.push_back(le(value.data() + 8 * i, 8));
           });
  for (uint64_t pg : freePages) {
    if (pg < 2 || pg > meta_.lastPage) {
      throw DamageFound("the free list names page " + std::to_string(pg) + ", out of range");
    }
    if (state_[pg] == 1) {
      throw DamageFound("the free list names page " + std::to_string(pg) + ", which is in use");
    }
    if (state_[pg] == 2) {
      throw DamageFound("the free list names page " + std::to_string(pg) + " twice");
    }
    state_[pg] = 2;
    ++free_;
  }
}

}  // namespace gale::lmdb_check
