#include "gale/cluster/zk.h"

// The synchronous calls exist only in the multi-threaded client, behind THREADED.
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include <algorithm>

namespace gale::cluster {

ZkError::ZkError(int code, const std::string& what)
    : std::runtime_error(what + ": " + zerror(code)), code_(code) {}

bool ZkError::nodeExists() const { return code_ == ZNODEEXISTS; }

ZkClient::ZkClient(Options options) {
  // The C client logs every reconnection attempt at INFO; warnings and errors are enough.
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  zh_ = zookeeper_init(options.servers.c_str(), &ZkClient::onEvent,
                       static_cast<int>(options.sessionTimeout.count()), nullptr, this, 0);
  if (!zh_) throw ZkError(ZSYSTEMERROR, "zookeeper_init(" + options.servers + ")");
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, options.connectTimeout, [&] { return connected_ || lost_; }) ||
      lost_) {
    lock.unlock();
    zookeeper_close(zh_);
    zh_ = nullptr;
    throw ZkError(ZCONNECTIONLOSS, "no ZooKeeper session with " + options.servers + " within " +
                                       std::to_string(options.connectTimeout.count()) + " ms");
  }
}

ZkClient::~ZkClient() {
  // Closing the session deletes its ephemeral nodes at once (no wait for the timeout).
  if (zh_) zookeeper_close(zh_);
}

void ZkClient::onEvent(zhandle_t*, int type, int state, const char*, void* ctx) {
  auto* self = static_cast<ZkClient*>(ctx);
  std::lock_guard lock(self->mutex_);
  if (type == ZOO_SESSION_EVENT) {
    self->connected_ = state == ZOO_CONNECTED_STATE;
    if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) self->lost_ = true;
  }
  ++self->changes_;
  self->cv_.notify_all();
}

void ZkClient::check(int rc, const char* op, const std::string& path) const {
  if (rc != ZOK) throw ZkError(rc, std::string(op) + "(" + path + ")");
}

std::string ZkClient::create(const std::string& path, const std::string& data, NodeKind kind) {
  int flags = kind == NodeKind::Persistent ? 0
              : kind == NodeKind::Ephemeral ? ZOO_EPHEMERAL
                                            : ZOO_EPHEMERAL | ZOO_SEQUENCE;
  std::string created(path.size() + 32, '\0');
  int rc = zoo_create(zh_, path.c_str(), data.data(), static_cast<int>(data.size()),
                      &ZOO_OPEN_ACL_UNSAFE, flags, created.data(),
                      static_cast<int>(created.size()));
  check(rc, "create", path);
  created.resize(created.find('\0'));
  return created;
}

void ZkClient::ensurePath(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    int rc = zoo_create(zh_, prefix.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
    if (rc != ZNODEEXISTS) check(rc, "create", prefix);
    if (slash == std::string::npos) return;
  }
}

std::optional<std::string> ZkClient::get(const std::string& path, bool watch, int* version) {
  std::string buffer(64 * 1024, '\0');
  for (;;) {
    int len = static_cast<int>(buffer.size());
    Stat stat{};
    int rc = zoo_get(zh_, path.c_str(), watch ? 1 : 0, buffer.data(), &len, &stat);
    if (rc == ZNONODE) {
      // Without a node zoo_get sets no watch; exists() does (it fires on creation).
      if (watch) exists(path, true);
      return std::nullopt;
    }
    check(rc, "get", path);
    if (stat.dataLength > static_cast<int>(buffer.size())) {  // grown since: read again
      buffer.resize(static_cast<size_t>(stat.dataLength));
      continue;
    }
    if (version) *version = stat.version;
    buffer.resize(static_cast<size_t>(std::max(len, 0)));
    return buffer;
  }
}

bool ZkClient::set(const std::string& path, const std::string& data, int version) {
  int rc = zoo_set(zh_, path.c_str(), data.data(), static_cast<int>(data.size()), version);
  if (rc == ZBADVERSION || rc == ZNONODE) return false;
  check(rc, "set", path);
  return true;
}

bool ZkClient::remove(const std::string& path, int version) {
  int rc = zoo_delete(zh_, path.c_str(), version);
  if (rc == ZNONODE || rc == ZBADVERSION) return false;
  check(rc, "delete", path);
  return true;
}

std::vector<std::string> ZkClient::children(const std::string& path, bool watch) {
  String_vector names{};
  int rc = zoo_get_children(zh_, path.c_str(), watch ? 1 : 0, &names);
  if (rc == ZNONODE) {
    if (watch) exists(path, true);
    return {};
  }
  check(rc, "children", path);
  std::vector<std::string> out(names.data, names.data + names.count);
  deallocate_String_vector(&names);
  std::sort(out.begin(), out.end());
  return out;
}

bool ZkClient::exists(const std::string& path, bool watch) {
  Stat stat{};
  int rc = zoo_exists(zh_, path.c_str(), watch ? 1 : 0, &stat);
  if (rc == ZNONODE) return false;
  check(rc, "exists", path);
  return true;
}

uint64_t ZkClient::changes() const {
  std::lock_guard lock(mutex_);
  return changes_;
}

bool ZkClient::waitForChange(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return changes_ != seen; });
}

bool ZkClient::sessionLost() const {
  std::lock_guard lock(mutex_);
  return lost_;
}

bool ZkClient::connected() const {
  std::lock_guard lock(mutex_);
  return connected_;
}

int64_t ZkClient::sessionId() const {
  const clientid_t* id = zoo_client_id(zh_);
  return id ? id->client_id : 0;
}

}  // namespace gale::cluster
