#include "gale/connectors/redis_sink.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "gale/core/log.h"

namespace gale {

namespace {

// KEYS[1] = the marker hash; ARGV = task, txid (0: continuous, no marker), now (ms), then
// campaign, window, count per row. Redis runs a script atomically, so the marker check and the
// writes cannot interleave with another client's (a zombie task of a restarted job).
constexpr const char* kScript = R"lua(
local txid = tonumber(ARGV[2])
if txid > 0 then
  local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  if txid <= last then return 0 end
end
for i = 4, #ARGV, 3 do
  local campaign, window = ARGV[i], ARGV[i + 1]
  local key = 'window:' .. campaign .. ':' .. window
  if redis.call('HSETNX', campaign, window, key) == 1 then
    local list = 'windows:' .. campaign
    redis.call('HSET', campaign, 'windows', list)
    redis.call('LPUSH', list, window)
  end
  redis.call('HSET', key, 'seen_count', ARGV[i + 2], 'time_updated', ARGV[3])
end
if txid > 0 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
)lua";

// Sends one command and waits for its reply: nullptr when the connection failed (c->errstr says
// why). The caller frees the reply.
redisReply* command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
}

}  // namespace

struct RedisSink::Shared {
  Options o;
  std::string address;
  std::atomic<uint64_t> rows{0}, batches{0}, skipped{0}, connectionErrors{0}, reconnects{0};
  std::mutex mutex;
  std::string lastError;
};

// One task's connection: made on first use, dropped on an error and made again with backoff.
struct RedisSink::Connection {
  Shared& sh;
  std::string who;
  redisContext* ctx = nullptr;
  bool hadError = false;

  ~Connection() {
    if (ctx) redisFree(ctx);
  }

  void error(const std::string& what) {
    sh.connectionErrors.fetch_add(1);
    hadError = true;
    std::string msg = who + ": Redis at " + sh.address + ": " + what;
    logWarn(msg + " (retrying)");
    std::lock_guard lock(sh.mutex);
    sh.lastError = msg;
  }

  bool connect() {
    auto ms = sh.o.commandTimeout.count();
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
    ctx = redisConnectWithTimeout(sh.o.host.c_str(), sh.o.port, tv);
    if (!ctx || ctx->err) {
      error(ctx ? std::string("cannot connect: ") + ctx->errstr : "cannot allocate a context");
      if (ctx) redisFree(ctx);
      ctx = nullptr;
      return false;
    }
    redisSetTimeout(ctx, tv);  // a hung server fails the command instead of blocking the task
    if (hadError) sh.reconnects.fetch_add(1);
    return true;
  }

  // Runs one command; retries on connection errors (and on a server still loading its data after
  // a restart) until the timeout. Returns the integer reply.
  long long run(const std::vector<std::string>& args) {
    auto deadline = std::chrono::steady_clock::now() + sh.o.timeout;
    auto backoff = sh.o.initialBackoff;
    while (true) {
      if (ctx || connect()) {
        redisReply* r = command(ctx, args);
        if (r && r->type != REDIS_REPLY_ERROR) {
          long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
          freeReplyObject(r);
          return v;
        }
        if (r) {  // the server answered: an error that a new connection does not cure, but LOADING
          std::string msg(r->str, r->len);
          freeReplyObject(r);
          if (msg.rfind("LOADING", 0) != 0) {
            throw std::runtime_error(who + ": Redis at " + sh.address + " answered: " + msg);
          }
          error(msg);
        } else {
          error(ctx->errstr);
          redisFree(ctx);
          ctx = nullptr;
        }
      }
      if (std::chrono::steady_clock::now() + backoff > deadline) {
        std::lock_guard lock(sh.mutex);
        throw std::runtime_error(who + ": gave up writing to Redis after " +
                                 std::to_string(sh.o.timeout.count()) + " ms; last error: " +
                                 sh.lastError);
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, sh.o.maxBackoff);
    }
  }
};

RedisSink::RedisSink(Options options) : shared_(std::make_shared<Shared>()) {
  shared_->o = std::move(options);
  const Options& o = shared_->o;
  const std::string who = "RedisSink: ";
  if (o.host.empty()) throw std::invalid_argument(who + "host is empty");
  if (o.port < 1 || o.port > 65535) {
    throw std::invalid_argument(who + "port " + std::to_string(o.port) + " is not in 1..65535");
  }
  if (o.keyField.empty() || o.windowField.empty() || o.valueField.empty()) {
    throw std::invalid_argument(who + "keyField, windowField and valueField must be named");
  }
  if (o.markerKey.empty()) throw std::invalid_argument(who + "markerKey is empty");
  if (o.timeout.count() <= 0 || o.commandTimeout.count() <= 0 || o.initialBackoff.count() <= 0 ||
      o.maxBackoff < o.initialBackoff) {
    throw std::invalid_argument(who + "timeouts and backoffs must be positive, maxBackoff >= "
                                      "initialBackoff");
  }
  shared_->address = o.host + ":" + std::to_string(o.port);
}

RedisSink::~RedisSink() = default;

std::unique_ptr<Operator> RedisSink::clone() const {
  auto s = std::make_unique<RedisSink>(shared_->o);
  s->shared_ = shared_;  // one set of counters for all tasks
  return s;
}

void RedisSink::open(const OperatorContext& context) {
  context_ = context;
  conn_ = std::make_unique<Connection>(Connection{
      *shared_, "redis sink '" + context.component + "' task " + std::to_string(context.taskIndex)});
}

void RedisSink::onTuple(const Tuple& t, Emitter&) {
  const Options& o = shared_->o;
  const Value& key = t.get(o.keyField);
  if (std::holds_alternative<std::monostate>(key)) {
    throw std::invalid_argument("RedisSink: the key field '" + o.keyField + "' is null in " +
                                t.toString());
  }
  if (!inBatch_) args_.clear();
  args_.push_back(std::holds_alternative<std::string>(key) ? std::get<std::string>(key)
                                                           : toString(key));
  args_.push_back(std::to_string(t.getTimestamp(o.windowField).micros / 1000));
  args_.push_back(std::to_string(t.getInt(o.valueField)));
  if (!inBatch_) write(0);
}

void RedisSink::onBatchBegin(uint64_t) {
  inBatch_ = true;
  args_.clear();
}

void RedisSink::onBatchEnd(uint64_t txid, Emitter&) {
  inBatch_ = false;
  if (args_.empty()) return;  // nothing to write; the marker may stay behind
  write(txid);
}

void RedisSink::write(uint64_t txid) {
  if (!conn_) throw std::logic_error("RedisSink: a write before open()");
  std::vector<std::string> cmd = {"EVAL", kScript, "1", shared_->o.markerKey,
                                  std::to_string(context_.taskIndex), std::to_string(txid),
                                  std::to_string(context_.clock->now().micros / 1000)};
  cmd.insert(cmd.end(), args_.begin(), args_.end());
  const uint64_t rows = args_.size() / 3;
  args_.clear();
  if (conn_->run(cmd) == 0) {
    shared_->skipped.fetch_add(1);
    logInfo(conn_->who + ": txid " + std::to_string(txid) +
            " is already in Redis (a replay after a crash): nothing written");
    return;
  }
  shared_->rows.fetch_add(rows);
  if (txid > 0) shared_->batches.fetch_add(1);
}

RedisSink::Stats RedisSink::stats() const {
  return {shared_->rows.load(), shared_->batches.load(), shared_->skipped.load(),
          shared_->connectionErrors.load(), shared_->reconnects.load()};
}

std::string RedisSink::lastError() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->lastError;
}

std::map<std::pair<std::string, int64_t>, RedisWindow> readRedisWindows(
    const std::string& host, int port, const std::vector<std::string>& campaigns) {
  const std::string where = "Redis at " + host + ":" + std::to_string(port);
  redisContext* c = redisConnect(host.c_str(), port);
  if (!c || c->err) {
    std::string e = c ? c->errstr : "no memory";
    if (c) redisFree(c);
    throw std::runtime_error("readRedisWindows: cannot connect to " + where + ": " + e);
  }
  std::unique_ptr<redisContext, void (*)(redisContext*)> owner(c, redisFree);
  // The reply's strings (a nil is ""; an array's elements in order).
  auto query = [&](const std::vector<std::string>& args) {
    redisReply* r = command(c, args);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      std::string e = r ? std::string(r->str, r->len) : c->errstr;
      if (r) freeReplyObject(r);
      throw std::runtime_error("readRedisWindows: " + where + ": " + args[0] + " failed: " + e);
    }
    std::vector<std::string> out;
    if (r->type == REDIS_REPLY_STRING) out.emplace_back(r->str, r->len);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) {
      if (r->element[i]->type != REDIS_REPLY_NIL) out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    freeReplyObject(r);
    return out;
  };
  std::map<std::pair<std::string, int64_t>, RedisWindow> windows;
  for (const auto& campaign : campaigns) {
    auto list = query({"HGET", campaign, "windows"});
    if (list.empty()) continue;
    for (const auto& w : query({"LRANGE", list[0], "0", "-1"})) {
      auto key = query({"HGET", campaign, w});
      auto values = key.empty() ? key : query({"HMGET", key[0], "seen_count", "time_updated"});
      if (values.size() != 2 || !windows.emplace(std::pair(campaign, std::stoll(w)),
                                                 RedisWindow{std::stoll(values[0]),
                                                             std::stoll(values[1])}).second) {
        throw std::runtime_error("readRedisWindows: " + where + ": window " + w + " of '" +
                                 campaign + "' is listed twice or has no result hash");
      }
    }
  }
  return windows;
}

}  // namespace gale
