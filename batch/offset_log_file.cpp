// The offset log file and its flusher (offset_log_file.h).
#include "offset_log_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#define XXH_INLINE_ALL  // short inputs: no call into libxxhash
#include <xxhash.h>

#include "gale/core/clock.h"
#include "gale/state/state_store.h"

namespace gale {

namespace {

constexpr size_t kHeaderBytes = 4 + 8 + 8;
constexpr uint32_t kMaxPayload = 64u << 20;  // a longer "length" is damage, not a record

std::string ioError(const std::string& what, const std::string& path) {
  return "offset log " + path + ": " + what + ": " + std::strerror(errno);
}

void putLE(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t getLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

uint64_t checksum(uint64_t txid, std::string_view payload) {
  char t[8];
  for (int i = 0; i < 8; ++i) t[i] = static_cast<char>((txid >> (8 * i)) & 0xff);
  return XXH3_64bits_withSeed(payload.data(), payload.size(), XXH3_64bits(t, sizeof t));
}

std::string encodeRecord(uint64_t txid, std::string_view payload) {
  std::string r;
  r.reserve(kHeaderBytes + payload.size());
  putLE(r, payload.size(), 4);
  putLE(r, txid, 8);
  putLE(r, checksum(txid, payload), 8);
  r.append(payload);
  return r;
}

void writeAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw StateError(ioError("write", path));
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string readAll(int fd, const std::string& path) {
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw StateError(ioError("read", path));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

void syncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw StateError(ioError("open the directory", dir));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw StateError(ioError("fsync the directory", dir));
}

}  // namespace

OffsetLogFile::OffsetLogFile(std::string directory, Options options)
    : directory_(std::move(directory)),
      path_(directory_ + "/" + kOffsetLogFile),
      options_(std::move(options)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw StateError(ioError("open", path_));
  try {
    const std::string data = readAll(fd_, path_);
    size_t at = 0;
    while (at < data.size()) {
      const size_t left = data.size() - at;
      if (left < kHeaderBytes) break;  // a torn header at the end
      const uint32_t len = static_cast<uint32_t>(getLE(data.data() + at, 4));
      const uint64_t txid = getLE(data.data() + at + 4, 8);
      const uint64_t sum = getLE(data.data() + at + 12, 8);
      const bool fits = len <= kMaxPayload && len <= left - kHeaderBytes;
      std::string_view payload =
          fits ? std::string_view(data).substr(at + kHeaderBytes, len) : std::string_view{};
      if (fits && checksum(txid, payload) == sum) {
        recovered_[txid] = std::string(payload);
        at += kHeaderBytes + len;
        continue;
      }
      // A record cut by a crash is the last one (appends go to the end, and nothing after an
      // unflushed append was ever published): its remains are short, or are followed by nothing
      // but the zeros of a file extended without its data. Anything else is damage.
      const size_t end = fits ? at + kHeaderBytes + len : data.size();
      const bool onlyZerosAfter =
          std::all_of(data.begin() + static_cast<ptrdiff_t>(end), data.end(),
                      [](char c) { return c == 0; });
      if (!onlyZerosAfter) {
        throw CheckpointDamaged(directory_, path_,
                                "the offset log record at byte " + std::to_string(at) +
                                    " fails its checksum, and records follow it");
      }
      break;
    }
    if (at < data.size()) {
      // Cut the torn tail off, so the next append follows a whole record.
      if (::ftruncate(fd_, static_cast<off_t>(at)) != 0) throw StateError(ioError("truncate", path_));
    }
    bytes_ = at;
    // What was read may still be in the page cache only (a process kill): make it durable
    // before any sink acts on it, and the file's name with it.
    if (options_.sync) {
      if (::fdatasync(fd_) != 0) throw StateError(ioError("fdatasync", path_));
      syncDirectory(directory_);
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
  for (const auto& [txid, payload] : recovered_) {
    appended_ = std::max(appended_, txid);
    live_[txid] = encodeRecord(txid, payload);
  }
  durable_ = appended_;
}

OffsetLogFile::~OffsetLogFile() {
  {
    std::lock_guard lk(mutex_);
    stop_ = true;
    wake_.notify_all();
  }
  if (flusher_.joinable()) flusher_.join();
  if (fd_ >= 0) ::close(fd_);
}

void OffsetLogFile::start(uint64_t durableThrough) {
  {
    std::lock_guard lk(mutex_);
    durable_ = std::max(durable_, durableThrough);
    appended_ = std::max(appended_, durableThrough);
  }
  flusher_ = std::thread([this] { flusherLoop(); });
}

void OffsetLogFile::append(uint64_t txid, std::string_view payload) {
  std::string record = encodeRecord(txid, payload);
  {
    std::lock_guard lk(mutex_);
    if (broken_) throw StateError("offset log " + path_ + ": an earlier write or flush failed");
    try {
      writeAll(fd_, record, path_);
    } catch (...) {
      broken_ = true;  // a partial record is the file's torn tail: nothing may follow it
      throw;
    }
    bytes_ += record.size();
    appended_ = std::max(appended_, txid);
    if (txid > committed_) live_[txid] = std::move(record);
    if (!options_.sync) durable_ = appended_;  // the page cache has it: enough without sync
    wake_.notify_all();
  }
  if (options_.onPoint) options_.onPoint(OffsetLogPoint::AfterAppend, txid);
}

void OffsetLogFile::committed(uint64_t txid) {
  std::lock_guard lk(mutex_);
  committed_ = std::max(committed_, txid);
  live_.erase(live_.begin(), live_.upper_bound(committed_));
  wake_.notify_all();
}

uint64_t OffsetLogFile::durableThrough() const {
  std::lock_guard lk(mutex_);
  return durable_;
}

uint64_t OffsetLogFile::fileBytes() const {
  std::lock_guard lk(mutex_);
  return bytes_;
}

void OffsetLogFile::flusherLoop() {
  std::unique_lock lk(mutex_);
  auto compactDue = [&] {
    // (A rewrite that left the file large, its live entries being that large, waits until it
    // has doubled.)
    return bytes_ > options_.compactBytes &&
           (committed_ >= appended_ ||
            (bytes_ > 16 * options_.compactBytes && bytes_ > 2 * rewrittenBytes_));
  };
  while (true) {
    wake_.wait(lk, [&] {
      return stop_ || (!broken_ && ((options_.sync && appended_ > durable_) || compactDue()));
    });
    if (stop_) return;
    try {
      if (options_.sync && appended_ > durable_) {
        const uint64_t target = appended_;
        const int fd = fd_;  // replaced only by compactLocked, on this thread
        lk.unlock();
        if (options_.onPoint) options_.onPoint(OffsetLogPoint::BeforeFlush, target);
        const int64_t t0 = SystemClock::steadyNanos();
        if (::fdatasync(fd) != 0) throw StateError(ioError("fdatasync", path_));
        const int64_t flushNanos = SystemClock::steadyNanos() - t0;
        lk.lock();
        durable_ = std::max(durable_, target);
        lk.unlock();
        if (options_.durable) options_.durable(target, flushNanos);
        if (options_.onPoint) options_.onPoint(OffsetLogPoint::AfterFlush, target);
        lk.lock();
      }
      if (compactDue()) compactLocked();
    } catch (...) {
      if (!lk.owns_lock()) lk.lock();
      broken_ = true;
      lk.unlock();
      if (options_.failed) options_.failed(std::current_exception());
      lk.lock();
    }
  }
}

// Under the mutex (appends wait). Every entry obsolete: truncate, no flush needed (a crash that
// undoes the truncation leaves obsolete entries, which are skipped). Otherwise (batches always in
// flight, so the file never empties) rewrite the live entries to a new file and rename it over.
void OffsetLogFile::compactLocked() {
  if (committed_ >= appended_) {
    if (::ftruncate(fd_, 0) != 0) throw StateError(ioError("truncate", path_));
    bytes_ = 0;
    return;
  }
  const std::string tmp = path_ + ".compact";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw StateError(ioError("open", tmp));
  uint64_t bytes = 0;
  try {
    for (const auto& [txid, record] : live_) {
      writeAll(fd, record, tmp);
      bytes += record.size();
    }
    if (options_.sync && ::fdatasync(fd) != 0) throw StateError(ioError("fdatasync", tmp));
    if (::rename(tmp.c_str(), path_.c_str()) != 0) throw StateError(ioError("rename", tmp));
    if (options_.sync) syncDirectory(directory_);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd_);
  fd_ = fd;
  bytes_ = bytes;
  rewrittenBytes_ = bytes;
}

}  // namespace gale
