#include "gale/core/key_group.h"

#include <deque>

#include "gale/core/state_codec.h"

namespace gale {

namespace {
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
constexpr uint64_t kFieldsSeed = 0x243f6a8885a308d3ULL;
constexpr uint8_t kKeyGroupSnapshotVersion = 1;
}  // namespace

uint64_t hashFields(const Values& values, const std::vector<int>& fieldIndex) {
  uint64_t h = kFieldsSeed;
  for (int i : fieldIndex) h = mix64(h ^ hashValue(values[static_cast<size_t>(i)]));
  return h;
}

uint64_t hashKeyValues(const Values& key) {
  uint64_t h = kFieldsSeed;
  for (const Value& v : key) h = mix64(h ^ hashValue(v));
  return h;
}

KeyGroupRange keyGroupRange(int taskIndex, int parallelism, uint32_t maxParallelism) {
  // The smallest g with g * n / M >= i is ceil(i * M / n).
  auto firstOf = [&](uint64_t i) {
    return static_cast<uint32_t>((i * maxParallelism + static_cast<uint64_t>(parallelism) - 1) /
                                 static_cast<uint64_t>(parallelism));
  };
  return {firstOf(static_cast<uint64_t>(taskIndex)),
          firstOf(static_cast<uint64_t>(taskIndex) + 1)};
}

std::string encodeKeyGroupSnapshot(uint32_t maxParallelism, int parallelism, int taskIndex,
                                   const KeyGroupedState::Split& split) {
  StateWriter w;
  w.header("GKGS", kKeyGroupSnapshotVersion);
  w.varint(maxParallelism);
  w.varint(static_cast<uint64_t>(parallelism));
  w.varint(static_cast<uint64_t>(taskIndex));
  w.str(split.head);
  w.varint(split.groups.size());
  for (const auto& [g, bytes] : split.groups) {
    w.varint(g);
    w.str(bytes);
  }
  return w.take();
}

namespace {
struct Header {
  uint32_t maxParallelism = 0;
  int parallelism = 0, taskIndex = 0;
};

Header readHeader(StateReader& r) {
  Header h;
  r.header("GKGS", kKeyGroupSnapshotVersion);
  // Range-checked before narrowing, so a damaged 2^32 + 128 cannot read as 128.
  const uint64_t m = r.varint("maximum parallelism");
  const uint64_t p = r.varint("parallelism");
  const uint64_t i = r.varint("task index");
  if (m == 0 || m > kMaxKeyGroups || p < 1 || p > m || i >= p)
    r.fail("its header is out of range");
  h.maxParallelism = static_cast<uint32_t>(m);
  h.parallelism = static_cast<int>(p);
  h.taskIndex = static_cast<int>(i);
  return h;
}

bool isKeyGroupSnapshot(std::string_view blob) { return blob.substr(0, 4) == "GKGS"; }
}  // namespace

int keyGroupSnapshotParallelism(std::string_view blob) {
  if (!isKeyGroupSnapshot(blob)) return 0;
  StateReader r(blob, "key-group snapshot");
  return readHeader(r).parallelism;
}

bool rescaleMergesTasks(uint32_t maxParallelism, int oldParallelism, int parallelism) {
  // Ranges are contiguous and in task order: a range meets several old ones iff its first and
  // last groups have different old owners.
  for (int t = 0; t < parallelism; ++t) {
    KeyGroupRange r = keyGroupRange(t, parallelism, maxParallelism);
    if (r.first < r.end && taskOfKeyGroup(r.first, maxParallelism, oldParallelism) !=
                               taskOfKeyGroup(r.end - 1, maxParallelism, oldParallelism))
      return true;
  }
  return false;
}

void restoreKeyGroupSnapshot(
    const std::function<std::optional<std::string>(const std::string& key)>& lookup,
    const std::string& component, int taskIndex, int parallelism, uint32_t maxParallelism,
    KeyGroupedState& into) {
  auto keyOf = [&](int i) { return component + "#" + std::to_string(i); };
  std::optional<std::string> first = lookup(keyOf(0));
  if (!first) return;
  auto notKeyGrouped = [&](const std::string& key) {
    throw SnapshotError("'" + key + "' is not a key-group snapshot: the component was " +
                        "checkpointed without maxParallelism");
  };
  if (!isKeyGroupSnapshot(*first)) notKeyGrouped(keyOf(0));
  int oldParallelism = 0;
  {
    StateReader r(*first, "key-group snapshot '" + keyOf(0) + "'");
    Header h = readHeader(r);
    if (h.maxParallelism != maxParallelism)
      r.fail("it has " + std::to_string(h.maxParallelism) + " key groups, the component " +
             std::to_string(maxParallelism));
    oldParallelism = h.parallelism;
  }
  const KeyGroupRange mine = keyGroupRange(taskIndex, parallelism, maxParallelism);
  std::deque<std::string> blobs;  // owns what heads and groups view (a deque: they stay put)
  std::vector<KeyGroupedState::Head> heads;
  std::map<uint32_t, std::string_view> groups;
  for (int i = 0; i < oldParallelism; ++i) {
    if (!keyGroupRange(i, oldParallelism, maxParallelism).meets(mine)) continue;
    std::string key = keyOf(i);
    std::optional<std::string> blob = i == 0 ? std::move(first) : lookup(key);
    if (!blob)
      throw SnapshotError("key-group snapshot '" + key + "' is missing: '" + keyOf(0) +
                          "' was taken at parallelism " + std::to_string(oldParallelism));
    if (!isKeyGroupSnapshot(*blob)) notKeyGrouped(key);
    StateReader r(*blob, "key-group snapshot '" + key + "'");
    Header h = readHeader(r);
    if (h.maxParallelism != maxParallelism || h.parallelism != oldParallelism || h.taskIndex != i)
      r.fail("its header (" + std::to_string(h.maxParallelism) + " groups, task " +
             std::to_string(h.taskIndex) + " of " + std::to_string(h.parallelism) +
             ") is not that of task " + std::to_string(i) + " of " +
             std::to_string(oldParallelism));
    const KeyGroupRange theirs = keyGroupRange(i, oldParallelism, maxParallelism);
    blobs.push_back(r.str("head"));
    heads.push_back({blobs.back(), mine.contains(theirs.first)});
    uint32_t last = 0;
    bool any = false;
    for (uint64_t n = r.count("groups", 2); n > 0; --n) {
      uint32_t g = static_cast<uint32_t>(r.varint("group"));
      if (!theirs.contains(g) || (any && g <= last)) r.fail("its groups are out of order");
      any = true;
      last = g;
      std::string bytes = r.str("group state");
      if (!mine.contains(g)) continue;
      blobs.push_back(std::move(bytes));
      groups.emplace(g, blobs.back());
    }
    r.expectEnd();
  }
  into.restoreKeyGroups(heads, groups, maxParallelism);
}

}  // namespace gale
