#include "gale/cluster/committed_offsets.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace gale::cluster {

CommittedOffsetsSource::CommittedOffsetsSource(SourcePtr inner, std::string directory)
    : inner_(std::move(inner)), directory_(std::move(directory)) {
  if (!inner_) throw std::invalid_argument("CommittedOffsetsSource: null source");
  if (directory_.empty()) throw std::invalid_argument("CommittedOffsetsSource: empty directory");
  std::filesystem::create_directories(directory_);
}

std::string CommittedOffsetsSource::file(int partition) const {
  // A source that names its partitions (Kafka's "topic/partition") may number them otherwise in
  // the next process (partitions added that sort among the known ones): its files go by name.
  std::string id;
  {
    std::lock_guard lock(idsMutex_);
    if (static_cast<size_t>(partition) >= ids_.size()) ids_ = inner_->partitionIds();
    if (static_cast<size_t>(partition) < ids_.size()) id = ids_[partition];
  }
  if (id.empty()) return directory_ + "/partition-" + std::to_string(partition);
  std::string name = directory_ + "/partition-";
  for (unsigned char c : id) {  // '/' and anything else unsafe in a file name as %XX
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      name += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      name += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return name;
}

int64_t CommittedOffsetsSource::initialOffset(int partition) {
  std::ifstream in(file(partition));
  if (!in) return inner_->initialOffset(partition);
  std::string text;
  std::getline(in, text);
  int64_t offset = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), offset);
  if (ec != std::errc{} || end != text.data() + text.size() || offset < 0)
    throw SourceError("committed offset file " + file(partition) + " holds '" + text +
                      "', not an offset");
  return offset;
}

void CommittedOffsetsSource::commit(int partition, int64_t offset) {
  std::string target = file(partition);
  std::string tmp = target + ".tmp" + std::to_string(::getpid());
  std::string text = std::to_string(offset);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok || ::rename(tmp.c_str(), target.c_str()) != 0)
    throw SourceError("cannot write committed offset " + target + ": " +
                      std::strerror(ok ? errno : err));
  inner_->commit(partition, offset);
}

}  // namespace gale::cluster
