#include "gale/connectors/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "gale/connectors/csv.h"
#include "gale/connectors/json_line.h"
#include "gale/core/log.h"

namespace gale {

namespace fs = std::filesystem;

namespace {

void writeAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("FileSink: write to " + path + " failed: " + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
}

// Writes `data` to a new file at `path`, fsync'ed when `sync`.
void writeNewFile(const std::string& path, const std::string& data, bool sync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("FileSink: can not create " + path + ": " + std::strerror(errno));
  try {
    writeAll(fd, data, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (sync && ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("FileSink: fsync failed for " + path + ": " + std::strerror(e));
  }
  ::close(fd);
}

void syncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

FileSink::FileSink(std::string directory, FileFormat format, Options options)
    : directory_(std::move(directory)), format_(format), options_(options) {
  if (directory_.empty()) throw std::invalid_argument("FileSink: the directory name is empty");
}

FileSink::~FileSink() {
  // Two-phase: the in-progress file is output of no checkpoint yet; recover() deletes it.
  if (spillFd_ >= 0) ::close(spillFd_);
  if (fd_ >= 0) {
    try {
      flushContinuous();
    } catch (const std::exception& e) {
      // A destructor must not throw; the loss is reported, not hidden.
      logError(std::string("FileSink: output lost at shutdown: ") + e.what());
    }
    ::close(fd_);
  }
}

std::unique_ptr<Operator> FileSink::clone() const {
  return std::make_unique<FileSink>(directory_, format_, options_);
}

std::string FileSink::continuousFileName(int taskIndex, FileFormat format) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "part-%05d%s", taskIndex, fileExtension(format));
  return buf;
}

std::string FileSink::batchFileName(uint64_t txid, int taskIndex, FileFormat format) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "part-%020llu-%05d%s", static_cast<unsigned long long>(txid), taskIndex,
                fileExtension(format));
  return buf;
}

std::string FileSink::pendingFileName(uint64_t id, int taskIndex, FileFormat format) {
  return "." + batchFileName(id, taskIndex, format) + ".pending";
}

std::string FileSink::pathOf(const std::string& name) const {
  return (fs::path(directory_) / name).string();
}

void FileSink::fail(const std::string& what, const std::string& path) const {
  throw std::runtime_error("FileSink: " + what + " " + path + ": " + std::strerror(errno));
}

void FileSink::open(const OperatorContext& context) {
  taskIndex_ = context.taskIndex;
  std::error_code ec;
  fs::create_directories(directory_, ec);
  if (ec || !fs::is_directory(directory_)) {
    throw std::runtime_error("FileSink: can not create the output directory '" + directory_ + "'" +
                             (ec ? ": " + ec.message() : std::string()));
  }
  opened_ = true;
}

void FileSink::format(const Tuple& tuple) {
  switch (format_) {
    case FileFormat::Text:
      for (size_t i = 0; i < tuple.size(); ++i) {
        if (i) buffer_ += '\t';
        buffer_ += toString(tuple[i]);
      }
      break;
    case FileFormat::JsonLines:
      appendJsonObject(buffer_, tuple.fields(), tuple.values());
      break;
    case FileFormat::Csv:
      if (!headerWritten_) {
        header_ = tuple.fields();
        appendCsvHeader(buffer_, header_);
        buffer_ += '\n';
        headerWritten_ = true;
      } else if (!(tuple.fields() == header_)) {
        throw std::invalid_argument("FileSink " + directory_ + ": a tuple of stream '" + tuple.sourceComponent() +
                                    ":" + tuple.sourceStream() + "' has fields " + tuple.fields().toString() +
                                    " but the CSV file's header is " + header_.toString() +
                                    "; use one CSV sink per schema (or JSON lines)");
      }
      appendCsvLine(buffer_, tuple.values());
      break;
  }
  buffer_ += '\n';
}

void FileSink::onTuple(const Tuple& tuple, Emitter&) {
  if (!opened_) throw std::logic_error("FileSink: onTuple() before open()");
  if (inBatch_ || twoPhase_) {
    format(tuple);
    if (twoPhase_ && buffer_.size() >= options_.flushBytes) spill();
    return;
  }
  if (fd_ < 0) {
    const std::string path = (fs::path(directory_) / continuousFileName(taskIndex_, format_)).string();
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("can not open", path);
    struct stat st{};
    // A restarted task appends to its file; a CSV header is already there.
    headerWritten_ = ::fstat(fd_, &st) == 0 && st.st_size > 0 && format_ == FileFormat::Csv;
    if (headerWritten_) header_ = tuple.fields();
  }
  format(tuple);
  if (buffer_.size() >= options_.flushBytes) flushContinuous();
}

void FileSink::flushContinuous() {
  if (fd_ < 0 || buffer_.empty()) return;
  writeAll(fd_, buffer_, continuousFileName(taskIndex_, format_));
  buffer_.clear();
}

void FileSink::onProcessingTime(Timestamp, Emitter&) {
  if (!inBatch_) flushContinuous();
}

void FileSink::onEndOfInput(Emitter&) {
  if (inBatch_) return;
  flushContinuous();
  if (fd_ >= 0 && options_.sync) ::fsync(fd_);
}

void FileSink::onBatchBegin(uint64_t txid) {
  if (!opened_) throw std::logic_error("FileSink: onBatchBegin() before open()");
  flushContinuous();
  // A batch that began and never ended left its lines here: the new attempt starts clean.
  buffer_.clear();
  headerWritten_ = false;
  inBatch_ = true;
  txid_ = txid;
}

void FileSink::onBatchEnd(uint64_t txid, Emitter&) {
  if (!inBatch_ || txid != txid_) {
    throw std::logic_error("FileSink: onBatchEnd(" + std::to_string(txid) +
                           ") without a matching onBatchBegin (current batch " +
                           (inBatch_ ? std::to_string(txid_) : std::string("none")) + ")");
  }
  inBatch_ = false;
  const std::string name = batchFileName(txid, taskIndex_, format_);
  const std::string finalPath = (fs::path(directory_) / name).string();
  if (buffer_.empty()) {
    // Nothing this time: a file from an earlier attempt of this txid must not survive it.
    if (::unlink(finalPath.c_str()) == 0 && options_.sync) syncDirectory(directory_);
    return;
  }
  const std::string tmpPath = (fs::path(directory_) / ("." + name + ".tmp")).string();
  writeNewFile(tmpPath, buffer_, options_.sync);
  if (::rename(tmpPath.c_str(), finalPath.c_str()) != 0) fail("can not rename to", finalPath);
  if (options_.sync) syncDirectory(directory_);
  buffer_.clear();
  headerWritten_ = false;
}

// ---- two-phase commit (exactly-once continuous mode)

namespace {
std::string inProgressFileName(int taskIndex, FileFormat format) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ".inprogress-%05d%s", taskIndex, fileExtension(format));
  return buf;
}
}  // namespace

// The buffer outgrew flushBytes between two barriers: it goes to the in-progress file, which
// preCommit renames.
void FileSink::spill() {
  const std::string path = pathOf(inProgressFileName(taskIndex_, format_));
  if (spillFd_ < 0) {
    spillFd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (spillFd_ < 0) fail("can not create", path);
  }
  writeAll(spillFd_, buffer_, path);
  buffer_.clear();
}

void FileSink::recover(uint64_t lastCompleted) {
  if (!opened_) throw std::logic_error("FileSink: recover() before open()");
  twoPhase_ = true;
  buffer_.clear();
  headerWritten_ = false;
  for (const auto& e : fs::directory_iterator(directory_)) {
    const std::string name = e.path().filename().string();
    unsigned long long id = 0;
    int task = -1;
    if (std::sscanf(name.c_str(), ".part-%20llu-%5d", &id, &task) != 2 || task != taskIndex_ ||
        name != pendingFileName(id, task, format_)) {
      continue;
    }
    if (id <= lastCompleted) {
      // Checkpoint `id` completed, but the crash came before this file was committed.
      const std::string to = pathOf(batchFileName(id, taskIndex_, format_));
      if (::rename(e.path().c_str(), to.c_str()) != 0) fail("can not rename to", to);
    } else if (::unlink(e.path().c_str()) != 0) {
      fail("can not remove", e.path().string());
    }
  }
  ::unlink(pathOf(inProgressFileName(taskIndex_, format_)).c_str());
  if (options_.sync) syncDirectory(directory_);
}

void FileSink::preCommit(uint64_t id) {
  if (!twoPhase_) throw std::logic_error("FileSink: preCommit() without recover()");
  if (buffer_.empty() && spillFd_ < 0) return;  // nothing since the last barrier: no file
  const std::string path = pathOf(inProgressFileName(taskIndex_, format_));
  if (spillFd_ < 0) {
    writeNewFile(path, buffer_, options_.sync);
  } else {
    writeAll(spillFd_, buffer_, path);
    if (options_.sync && ::fsync(spillFd_) != 0) fail("fsync failed for", path);
    ::close(spillFd_);
    spillFd_ = -1;
  }
  buffer_.clear();
  headerWritten_ = false;  // a CSV header opens every file
  const std::string pending = pathOf(pendingFileName(id, taskIndex_, format_));
  if (::rename(path.c_str(), pending.c_str()) != 0) fail("can not rename to", pending);
  if (options_.sync) syncDirectory(directory_);
  preCommitted_.push_back(id);
}

void FileSink::commit(uint64_t id) {
  bool renamed = false;
  while (!preCommitted_.empty() && preCommitted_.front() <= id) {
    uint64_t p = preCommitted_.front();
    const std::string from = pathOf(pendingFileName(p, taskIndex_, format_));
    const std::string to = pathOf(batchFileName(p, taskIndex_, format_));
    if (::rename(from.c_str(), to.c_str()) != 0) fail("can not rename to", to);
    preCommitted_.erase(preCommitted_.begin());
    renamed = true;
  }
  if (renamed && options_.sync) syncDirectory(directory_);
}

}  // namespace gale
