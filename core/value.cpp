#include "gale/core/value.h"

#include <cstring>
#include <sstream>
#include <stdexcept>

namespace gale {

const char* typeName(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Int64: return "int64";
    case Type::Double: return "double";
    case Type::Bool: return "bool";
    case Type::String: return "string";
    case Type::Bytes: return "bytes";
    case Type::Timestamp: return "timestamp";
    case Type::Any: return "any";
  }
  return "?";
}

std::string toString(const Value& v) {
  switch (typeOf(v)) {
    case Type::Null: return "null";
    case Type::Int64: return std::to_string(std::get<int64_t>(v));
    case Type::Double: {
      std::ostringstream os;
      os << std::get<double>(v);
      return os.str();
    }
    case Type::Bool: return std::get<bool>(v) ? "true" : "false";
    case Type::String: return std::get<std::string>(v);
    case Type::Bytes: return "<" + std::to_string(std::get<Bytes>(v).data.size()) + " bytes>";
    case Type::Timestamp: return "@" + std::to_string(std::get<Timestamp>(v).micros);
    default: return "?";
  }
}

namespace {
// 64-bit FNV-1a followed by a murmur3 finalizer: stable across processes and builds (unlike
// std::hash), which fields grouping needs when sender and receiver are different programs.
uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}
uint64_t fnv(const void* p, size_t n, uint64_t h = 1469598103934665603ULL) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}
}  // namespace

uint64_t hashValue(const Value& v) {
  uint64_t tag = v.index();
  switch (typeOf(v)) {
    case Type::Null: return mix(tag);
    case Type::Int64: return mix(static_cast<uint64_t>(std::get<int64_t>(v)) ^ (tag << 56));
    case Type::Double: {
      double d = std::get<double>(v);
      if (d == 0) d = 0;  // +0 and -0 hash alike
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      return mix(bits ^ (tag << 56));
    }
    case Type::Bool: return mix((std::get<bool>(v) ? 1 : 0) ^ (tag << 56));
    case Type::String: {
      const auto& s = std::get<std::string>(v);
      return mix(fnv(s.data(), s.size(), fnv(&tag, 1)));
    }
    case Type::Bytes: {
      const auto& s = std::get<Bytes>(v).data;
      return mix(fnv(s.data(), s.size(), fnv(&tag, 1)));
    }
    case Type::Timestamp:
      return mix(static_cast<uint64_t>(std::get<Timestamp>(v).micros) ^ (tag << 56));
    default: return 0;
  }
}

Fields::Fields(std::initializer_list<std::string> names) {
  for (const auto& n : names) specs_.push_back({n, Type::Any});
}
Fields::Fields(std::initializer_list<FieldSpec> specs) : specs_(specs) {}
Fields::Fields(std::vector<FieldSpec> specs) : specs_(std::move(specs)) {}
Fields::Fields(const std::vector<std::string>& names) {
  for (const auto& n : names) specs_.push_back({n, Type::Any});
}

std::vector<std::string> Fields::names() const {
  std::vector<std::string> out;
  out.reserve(specs_.size());
  for (const auto& s : specs_) out.push_back(s.name);
  return out;
}

int Fields::indexOf(std::string_view name) const {
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string Fields::mismatch(const Values& values) const {
  if (values.size() != specs_.size()) {
    return "expected " + std::to_string(specs_.size()) + " values " + toString() + ", got " +
           std::to_string(values.size());
  }
  for (size_t i = 0; i < specs_.size(); ++i) {
    Type want = specs_[i].type;
    Type got = typeOf(values[i]);
    if (want == Type::Any || got == Type::Null || got == want) continue;
    return "field '" + specs_[i].name + "' is declared " + typeName(want) + " but got " +
           typeName(got);
  }
  return {};
}

std::string Fields::toString() const {
  std::string s = "[";
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (i) s += ", ";
    s += specs_[i].name;
    if (specs_[i].type != Type::Any) {
      s += ":";
      s += typeName(specs_[i].type);
    }
  }
  return s + "]";
}

bool operator==(const Fields& a, const Fields& b) {
  if (a.specs_.size() != b.specs_.size()) return false;
  for (size_t i = 0; i < a.specs_.size(); ++i)
    if (a.specs_[i].name != b.specs_[i].name || a.specs_[i].type != b.specs_[i].type) return false;
  return true;
}

namespace {
// The pool of one thread. A bound on both the count and the size of what it keeps (at most
// 1024 x 16 x 40 bytes = 640 KB), so a burst of wide tuples does not stay hoarded. 1024: a
// micro-batch spout reads its records in chunks of 1024 before the first of them is processed.
constexpr size_t kPoolMax = 1024;
constexpr size_t kPooledCapacityMax = 16;
struct ValuesPool {
  std::vector<Values> free;
  ValuesPool() { free.reserve(kPoolMax); }
};
// Every tuple's destruction reads the pool: through a constant-initialized pointer, which needs
// no per-access initialization check (a thread_local object with a constructor or destructor
// does: ~25 instructions per access). The pool itself lives in PoolOwner, built on the thread's
// first use; tPoolGone (also trivial, so still readable then) is set when it is destroyed, and
// a Tuple destroyed later in the thread's or the program's teardown frees its values as usual.
thread_local ValuesPool* tPool = nullptr;
thread_local bool tPoolGone = false;
struct PoolOwner {
  ValuesPool pool;
  PoolOwner() { tPool = &pool; }
  ~PoolOwner() {
    tPool = nullptr;
    tPoolGone = true;
  }
};

ValuesPool* pool() {
  if (tPool) return tPool;
  if (tPoolGone) return nullptr;
  thread_local PoolOwner owner;  // once per thread
  return tPool;
}

// The pool's top list as it was left, or an empty one. Inline in both callers: recycledValues()
// calling recycledValuesAsLeft() cost every JSON event ~20 instructions.
inline Values takePooled() {
  ValuesPool* p = pool();
  if (!p || p->free.empty()) return {};
  Values v = std::move(p->free.back());
  p->free.pop_back();
  return v;
}
}  // namespace

Values recycledValuesAsLeft() { return takePooled(); }

Values recycledValues() {
  Values v = takePooled();
  if (!v.empty()) v.clear();  // a list of scalars, as left; one that held text is empty already
  return v;
}

void recycleValues(Values&& values) {
  size_t cap = values.capacity();
  if (cap == 0 || cap > kPooledCapacityMax) return;
  ValuesPool* p = pool();
  if (!p || p->free.size() >= kPoolMax) return;
  // A list of scalars is kept as it is (recycledValuesAsLeft); one holding a string or bytes is
  // cleared now, so the pool never keeps text alive.
  for (const Value& v : values)
    if (std::holds_alternative<std::string>(v) || std::holds_alternative<Bytes>(v)) {
      values.clear();
      break;
    }
  p->free.push_back(std::move(values));
}

}  // namespace gale
