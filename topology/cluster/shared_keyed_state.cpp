#include "gale/cluster/shared_keyed_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gale::cluster {

namespace {

// A group file: this header, then per key "<key bytes> <value bytes>\n<key><value>\n".
constexpr const char* kHeader = "gale-key-group 1\n";

std::runtime_error ioError(const std::string& what, const std::string& path) {
  return std::runtime_error("shared keyed state: " + what + " " + path + ": " +
                            std::strerror(errno));
}

std::string readText(const std::string& path, bool* exists) {
  std::ifstream in(path, std::ios::binary);
  *exists = static_cast<bool>(in);
  return *exists ? std::string(std::istreambuf_iterator<char>(in), {}) : std::string();
}

std::map<std::string, std::string> parseGroup(const std::string& text, const std::string& path) {
  std::map<std::string, std::string> out;
  auto damaged = [&](const std::string& why) {
    return std::runtime_error("shared keyed state: damaged key group file " + path + " (" + why +
                              "): restore it from a backup, or delete it to start its keys "
                              "over");
  };
  if (text.rfind(kHeader, 0) != 0) throw damaged("no header");
  size_t at = std::strlen(kHeader);
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) throw damaged("a record is cut short at byte " + std::to_string(at));
    size_t keyBytes = 0, valueBytes = 0;
    std::istringstream sizes(text.substr(at, nl - at));
    if (!(sizes >> keyBytes >> valueBytes) || !sizes.eof())
      throw damaged("bad record sizes at byte " + std::to_string(at));
    at = nl + 1;
    if (keyBytes > text.size() || valueBytes > text.size() ||
        at + keyBytes + valueBytes + 1 > text.size() || text[at + keyBytes + valueBytes] != '\n')
      throw damaged("a record is cut short at byte " + std::to_string(at));
    out[text.substr(at, keyBytes)] = text.substr(at + keyBytes, valueBytes);
    at += keyBytes + valueBytes + 1;
  }
  return out;
}

// An exclusive flock held for its life.
class GroupLock {
 public:
  explicit GroupLock(const std::string& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw ioError("cannot open", path);
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) {
        ::close(fd_);
        throw ioError("cannot lock", path);
      }
  }
  ~GroupLock() { ::close(fd_); }  // closing releases the lock
  GroupLock(const GroupLock&) = delete;
  GroupLock& operator=(const GroupLock&) = delete;

 private:
  int fd_;
};

void writeAll(int fd, const std::string& data, const std::string& path) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ioError("cannot write", path);
    done += static_cast<size_t>(n);
  }
}

}  // namespace

SharedKeyedState::SharedKeyedState(std::string dir) : SharedKeyedState(std::move(dir), Options{}) {}

SharedKeyedState::SharedKeyedState(std::string dir, Options options)
    : dir_(std::move(dir)), options_(options) {
  if (options_.keyGroups < 1)
    throw std::runtime_error("shared keyed state " + dir_ + ": keyGroups must be >= 1");
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("shared keyed state: cannot create " + dir_ + ": " + ec.message());
  // The group count is fixed at the directory's first use; every later user checks it. The
  // first writer creates the file exclusively, so two first users cannot record different counts.
  std::string path = dir_ + "/key-groups", mine = std::to_string(options_.keyGroups) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd >= 0) {
    writeAll(fd, mine, path);
    ::close(fd);
    return;
  }
  if (errno != EEXIST) throw ioError("cannot create", path);
  bool exists = false;
  std::string recorded;
  // Created by another user that may not have written it yet: wait for its line.
  for (int i = 0; i < 200 && (recorded = readText(path, &exists)).find('\n') == std::string::npos; ++i)
    ::usleep(5000);
  if (recorded != mine)
    throw std::runtime_error("shared keyed state " + dir_ + " has key-groups '" +
                             recorded.substr(0, recorded.find('\n')) + "', this bolt asks for " +
                             std::to_string(options_.keyGroups) +
                             " (the count is fixed for the life of the state)");
}

int SharedKeyedState::keyGroup(const std::string& key) const {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return static_cast<int>(h % static_cast<uint64_t>(options_.keyGroups));
}

std::string SharedKeyedState::groupFile(int group) const {
  return dir_ + "/g" + std::to_string(group);
}

std::map<std::string, std::string> SharedKeyedState::readGroup(int group) const {
  bool exists = false;
  std::string path = groupFile(group);
  std::string text = readText(path, &exists);
  return exists ? parseGroup(text, path) : std::map<std::string, std::string>{};
}

std::string SharedKeyedState::update(
    const std::string& key,
    const std::function<std::string(const std::optional<std::string>&)>& change) {
  int group = keyGroup(key);
  std::string path = groupFile(group);
  GroupLock lock(path + ".lock");
  auto values = readGroup(group);
  auto it = values.find(key);
  std::string next = change(it == values.end() ? std::nullopt : std::optional(it->second));
  values[key] = next;
  std::string text = kHeader;
  for (const auto& [k, v] : values)
    text += std::to_string(k.size()) + " " + std::to_string(v.size()) + "\n" + k + v + "\n";
  // Written aside and renamed: a reader (get, readAll: no lock) and a writer killed half way
  // through see the old file or the new one, never a part.
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw ioError("cannot create", tmp);
  try {
    writeAll(fd, text, tmp);
    if (options_.sync && ::fsync(fd) != 0) throw ioError("cannot fsync", tmp);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw ioError("cannot rename to", path);
  return next;
}

int64_t SharedKeyedState::add(const std::string& key, int64_t delta) {
  std::string stored = update(key, [&](const std::optional<std::string>& old) {
    int64_t n = 0;
    if (old) {
      size_t used = 0;
      try {
        n = std::stoll(*old, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != old->size())
        throw std::runtime_error("shared keyed state " + dir_ + ": key '" + key +
                                 "' holds '" + old->substr(0, 40) + "', not a count");
    }
    return std::to_string(n + delta);
  });
  return std::stoll(stored);
}

std::optional<std::string> SharedKeyedState::get(const std::string& key) const {
  auto values = readGroup(keyGroup(key));
  auto it = values.find(key);
  return it == values.end() ? std::nullopt : std::optional(it->second);
}

std::map<std::string, std::string> SharedKeyedState::readAll() const {
  std::map<std::string, std::string> out;
  for (int g = 0; g < options_.keyGroups; ++g) out.merge(readGroup(g));
  return out;
}

}  // namespace gale::cluster
