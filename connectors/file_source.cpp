#include "gale/connectors/file_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "gale/connectors/csv.h"
#include "gale/core/log.h"

namespace gale {

namespace fs = std::filesystem;

// What the source remembers of one indexed file: where each record's line is, so a read (or a
// replay) re-reads just those bytes instead of holding the file in memory.
struct FileSource::File {
  std::string name;
  std::string path;
  int64_t firstOffset = 0;
  uint64_t size = 0;                // bytes indexed
  std::vector<uint64_t> starts;     // per record: byte where its line starts
  std::vector<uint32_t> lengths;    // ... its length without '\n' / "\r\n"
  std::vector<int64_t> lineNumbers; // ... its 1-based line number in the file
  // CSV: for each column of the header, the schema field it fills (-1: not in the schema).
  std::vector<int> columnToField;
  size_t columns = 0;
  std::string headerError;  // CSV: why the header does not fit the schema (every line errs)
  int64_t indexedNanos = 0;  // when the file was found: the records' originNanos
  int64_t endOffset() const { return firstOffset + static_cast<int64_t>(starts.size()); }
};

namespace {
constexpr size_t kMaxRawInError = 4096;

bool ignoredName(const std::string& n) {
  return n.empty() || n[0] == '.' || n[0] == '_' ||
         (n.size() >= 4 && n.compare(n.size() - 4, 4, ".tmp") == 0);
}

bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\r") == std::string_view::npos;
}

std::string readWhole(const std::string& path, uint64_t& size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SourceError("FileSource: open " + path + ": " + std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw SourceError("FileSource: read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size = data.size();
  return data;
}
}  // namespace

Fields FileSource::errorFields() {
  return Fields{FieldSpec{"file", Type::String}, FieldSpec{"line", Type::Int64},
                FieldSpec{"reason", Type::String}, FieldSpec{"raw", Type::String}};
}

FileSource::FileSource(std::string directory, FileFormat format, Options options)
    : directory_(std::move(directory)), format_(format), options_(std::move(options)) {
  if (directory_.empty()) throw std::invalid_argument("FileSource: the directory name is empty");
  if (format_ != FileFormat::Text) {
    if (options_.schema.size() == 0) {
      throw std::invalid_argument("FileSource " + directory_ +
                                  ": JSON lines and CSV need Options::schema (the fields with types)");
    }
    // The parser checks for duplicate names (and throws naming the field).
    json_ = std::make_unique<JsonLineParser>(
        options_.schema, JsonLineParser::Options{.missing = options_.missing,
                                                 .maxLineLength = options_.maxLineLength});
  }
}

FileSource::~FileSource() = default;

std::string FileSource::name() const { return "file:" + directory_; }

void FileSource::declareOutputFields(OutputFieldsDeclarer& declarer) const {
  declarer.declare(format_ == FileFormat::Text ? Fields{FieldSpec{"line", Type::String}} : options_.schema);
  declarer.declareStream(kErrorStream, errorFields());
}

void FileSource::checkPartition(int partition) const {
  if (partition != 0) {
    throw std::out_of_range(name() + ": partition " + std::to_string(partition) +
                            " does not exist (a file source has partition 0 only)");
  }
}

void FileSource::open(const Clock& clock) {
  std::error_code ec;
  if (!fs::is_directory(directory_, ec)) {
    throw SourceError(name() + ": '" + directory_ + "' is not a directory" +
                      (ec ? " (" + ec.message() + ")" : std::string()) +
                      "; create it, or point the source at the directory holding the files");
  }
  std::lock_guard lock(mutex_);
  clock_ = &clock;
  rescanLocked();
}

void FileSource::rescanLocked() {
  lastScanNanos_ = clock_->monoNanos();
  scanned_ = true;
  std::vector<std::string> fresh;
  std::error_code ec;
  fs::directory_iterator it(directory_, ec), end;
  if (ec) {
    logError(name() + ": can not list the directory: " + ec.message());
    return;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    std::string n = it->path().filename().string();
    if (ignoredName(n) || seen_.count(n)) continue;
    fresh.push_back(std::move(n));
  }
  std::sort(fresh.begin(), fresh.end());
  for (const auto& n : fresh) indexFile(n);
}

void FileSource::indexFile(const std::string& fileName) {
  auto f = std::make_unique<File>();
  f->name = fileName;
  f->path = (fs::path(directory_) / fileName).string();
  f->firstOffset = end_;
  f->indexedNanos = clock_->monoNanos();
  const std::string data = readWhole(f->path, f->size);
  bool headerSeen = format_ != FileFormat::Csv;
  int64_t lineNo = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    size_t stop = nl == std::string::npos ? data.size() : nl;
    ++lineNo;
    size_t len = stop - pos;
    if (len > 0 && data[stop - 1] == '\r') --len;
    std::string_view line(data.data() + pos, len);
    const size_t start = pos;
    pos = nl == std::string::npos ? data.size() : nl + 1;
    if (format_ != FileFormat::Text && blank(line)) continue;
    if (!headerSeen) {
      headerSeen = true;
      std::vector<std::string> cols;
      std::string err;
      if (!splitCsvLine(line, cols, err)) {
        f->headerError = "the CSV header (line " + std::to_string(lineNo) + ") is malformed: " + err;
        continue;
      }
      f->columns = cols.size();
      f->columnToField.assign(cols.size(), -1);
      for (size_t c = 0; c < cols.size(); ++c) f->columnToField[c] = options_.schema.indexOf(cols[c]);
      for (const auto& spec : options_.schema.specs()) {
        if (std::find(cols.begin(), cols.end(), spec.name) == cols.end()) {
          f->headerError = "the CSV header (line " + std::to_string(lineNo) + ") has no column '" +
                           spec.name + "' of the schema " + options_.schema.toString();
          break;
        }
      }
      continue;
    }
    f->starts.push_back(start);
    f->lengths.push_back(static_cast<uint32_t>(std::min<size_t>(len, UINT32_MAX)));
    f->lineNumbers.push_back(lineNo);
  }
  end_ = f->endOffset();
  stats_.records = end_;
  ++stats_.files;
  seen_.insert(fileName);
  files_.push_back(std::move(f));
}

int64_t FileSource::available(int partition) {
  checkPartition(partition);
  std::lock_guard lock(mutex_);
  if (!clock_) return 0;
  if (!options_.once &&
      clock_->monoNanos() - lastScanNanos_ >=
          std::chrono::duration_cast<std::chrono::nanoseconds>(options_.rescanInterval).count()) {
    rescanLocked();
  }
  return end_;
}

bool FileSource::finished() const {
  std::lock_guard lock(mutex_);
  return options_.once && scanned_;
}

FileSource::Stats FileSource::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void FileSource::parseInto(const File& f, size_t entry, std::string_view line, SourceRecord& rec) {
  std::string reason;
  if (line.size() > options_.maxLineLength) {
    reason = "the line is " + std::to_string(line.size()) + " bytes, longer than maxLineLength " +
             std::to_string(options_.maxLineLength);
  } else if (format_ == FileFormat::Text) {
    rec.values.emplace_back(std::string(line));
    return;
  } else if (format_ == FileFormat::JsonLines) {
    if (json_->parse(line, rec.values)) return;
    reason = "bad JSON " + json_->error();
  } else if (!f.headerError.empty()) {
    reason = f.headerError;
  } else if (!splitCsvLine(line, csvFields_, reason)) {
    reason = "bad CSV: " + reason;
  } else if (csvFields_.size() != f.columns) {
    reason = "the line has " + std::to_string(csvFields_.size()) + " columns, the header has " +
             std::to_string(f.columns);
  } else {
    rec.values.assign(options_.schema.size(), std::monostate{});
    for (size_t c = 0; c < f.columns && reason.empty(); ++c) {
      const int field = f.columnToField[c];
      if (field < 0) continue;
      std::string err;
      if (!parseTextValue(csvFields_[c], options_.schema[field].type, rec.values[field], err)) {
        reason = "column '" + options_.schema[field].name + "': " + err + " (declared " +
                 typeName(options_.schema[field].type) + ")";
      }
    }
    if (reason.empty()) return;
  }
  // A malformed record: same offset, on the errors stream.
  rec.stream = kErrorStream;
  std::string raw(line.substr(0, kMaxRawInError));
  if (line.size() > kMaxRawInError) raw += "...";
  rec.values = Values{f.name, f.lineNumbers[entry], std::move(reason), std::move(raw)};
  if (rec.offset >= errorsCountedUpTo_) ++stats_.errors;
}

size_t FileSource::read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) {
  checkPartition(partition);
  if (from < 0 || to < from) {
    throw std::invalid_argument(name() + ": bad range [" + std::to_string(from) + ", " +
                                std::to_string(to) + ")");
  }
  std::lock_guard lock(mutex_);
  if (!clock_) throw SourceError(name() + ": read() before open()");
  to = std::min(to, end_);
  size_t appended = 0;
  // The first file holding `from` (files are in offset order; committed ones are gone).
  auto it = std::upper_bound(files_.begin(), files_.end(), from,
                             [](int64_t o, const std::unique_ptr<File>& f) { return o < f->endOffset(); });
  for (; it != files_.end() && from < to; ++it) {
    const File& f = **it;
    if (f.starts.empty()) continue;
    from = std::max(from, f.firstOffset);
    const int64_t stop = std::min(to, f.endOffset());
    if (from >= stop) continue;
    const size_t a = static_cast<size_t>(from - f.firstOffset);
    const size_t b = static_cast<size_t>(stop - f.firstOffset);
    const uint64_t begin = f.starts[a];
    const uint64_t endByte = f.starts[b - 1] + f.lengths[b - 1];
    int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st{};
    if (fd < 0 || ::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < f.size) {
      if (fd >= 0) ::close(fd);
      throw SourceError(name() + ": file '" + f.name + "' vanished or shrank after it was indexed; " +
                        "files must not be changed or removed before their records are committed");
    }
    scratch_.resize(endByte - begin);
    size_t got = 0;
    while (got < scratch_.size()) {
      ssize_t n = ::pread(fd, scratch_.data() + got, scratch_.size() - got, static_cast<off_t>(begin + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int e = errno;
        ::close(fd);
        throw SourceError(name() + ": read of '" + f.name + "' failed: " + (n < 0 ? std::strerror(e) : "short read"));
      }
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    for (size_t e = a; e < b; ++e) {
      SourceRecord rec;
      rec.offset = f.firstOffset + static_cast<int64_t>(e);
      rec.originNanos = f.indexedNanos;
      parseInto(f, e, std::string_view(scratch_.data() + (f.starts[e] - begin), f.lengths[e]), rec);
      out.push_back(std::move(rec));
      ++appended;
    }
    from = stop;
  }
  errorsCountedUpTo_ = std::max(errorsCountedUpTo_, from);
  return appended;
}

void FileSource::commit(int partition, int64_t offset) {
  checkPartition(partition);
  std::lock_guard lock(mutex_);
  while (!files_.empty() && files_.front()->endOffset() <= offset) files_.erase(files_.begin());
}

}  // namespace gale
