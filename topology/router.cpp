#include "router.h"

#include <algorithm>
#include <stdexcept>

#include "private/runtime_shared.h"

namespace gale {

Router::Router(const Topology& topology, const ComponentSpec& from, const StreamSpec& stream,
               const std::vector<int>& workerOfTask, int self, uint64_t seed)
    : from_(from.name), stream_(stream.name), rng_(seed | 1) {
  for (const Subscription& sub : topology.subscribers(from.name, stream.name)) {
    Route r;
    r.consumer = sub.consumer->name;
    r.kind = sub.input->grouping;
    r.maxParallelism = sub.consumer->maxParallelism;
    for (int i = 0; i < sub.consumer->parallelism; ++i)
      r.targets.push_back(sub.consumer->firstTask + i);
    for (const auto& f : sub.input->fields) r.fieldIndex.push_back(stream.fields.indexOf(f));
    if (r.kind == Grouping::Shuffle) r.shuffled = r.targets;
    if (r.kind == Grouping::LocalOrShuffle) {
      for (TaskId t : r.targets)
        if (workerOfTask.empty() || workerOfTask[static_cast<size_t>(t)] == self)
          r.shuffled.push_back(t);
      if (r.shuffled.empty()) r.shuffled = r.targets;
    }
    if (r.kind == Grouping::PartialKey) r.sent.assign(r.targets.size(), 0);
    routes_.push_back(std::move(r));
  }
  for (auto& r : routes_)
    if (!r.shuffled.empty()) {
      reshuffle(r);
      r.cursor = nextRandom() % r.shuffled.size();  // senders do not all start on one task
    }
  findFixedTargets();
}

void Router::findFixedTargets() {
  fixed_ = true;
  fixedTargets_.clear();
  for (const Route& r : routes_) {
    if (r.kind == Grouping::Direct) continue;  // nothing for a normal emit
    if (r.targets.size() != 1) {
      fixed_ = false;
      return;
    }
    fixedTargets_.push_back(r.targets.front());
  }
}

uint64_t Router::nextRandom() {
  rng_ += 0x9e3779b97f4a7c15ULL;
  return mix64(rng_);
}

void Router::reshuffle(Route& r) {
  for (size_t i = r.shuffled.size(); i > 1; --i)
    std::swap(r.shuffled[i - 1], r.shuffled[nextRandom() % i]);
}

void Router::route(const Values& values, TaskId directTask, std::vector<TaskId>& out) {
  bool directFound = false;
  for (Route& r : routes_) {
    if (r.kind == Grouping::Direct) {
      if (directTask >= 0 &&
          std::binary_search(r.targets.begin(), r.targets.end(), directTask)) {
        out.push_back(directTask);
        directFound = true;
      }
      continue;
    }
    if (directTask >= 0) continue;  // emitDirect reaches direct subscribers only
    if (r.targets.size() == 1) {
      // One task to go to (parallelism 1, or fused): no key to hash, no cursor to move.
      out.push_back(r.targets.front());
      continue;
    }
    switch (r.kind) {
      case Grouping::Shuffle:
      case Grouping::LocalOrShuffle:
        out.push_back(r.shuffled[r.cursor]);
        if (++r.cursor == r.shuffled.size()) {
          r.cursor = 0;
          reshuffle(r);
        }
        break;
      case Grouping::Fields: {
        uint64_t h = hashFields(values, r.fieldIndex);
        // A key-grouped consumer: the task whose range holds the key's group, so a key's task
        // follows its state when the parallelism changes (gale/core/key_group.h).
        size_t i = r.maxParallelism == 0
                       ? h % r.targets.size()
                       : static_cast<size_t>(taskOfKeyGroup(keyGroupOf(h, r.maxParallelism),
                                                            r.maxParallelism,
                                                            static_cast<int>(r.targets.size())));
        out.push_back(r.targets[i]);
        break;
      }
      case Grouping::All: out.insert(out.end(), r.targets.begin(), r.targets.end()); break;
      case Grouping::Global: out.push_back(r.targets.front()); break;
      case Grouping::PartialKey: {
        size_t n = r.targets.size();
        uint64_t h = hashFields(values, r.fieldIndex);
        size_t a = h % n;
        size_t pick = a;
        if (n > 1) {
          // The second choice is a different task, so a hot key is spread over exactly two.
          size_t b = (a + 1 + mix64(h) % (n - 1)) % n;
          pick = r.sent[b] < r.sent[a] ? b : a;
        }
        ++r.sent[pick];
        out.push_back(r.targets[pick]);
        break;
      }
      case Grouping::Direct: break;
    }
  }
  if (directTask >= 0 && !directFound) {
    std::string tasks;
    for (const Route& r : routes_)
      if (r.kind == Grouping::Direct)
        for (TaskId t : r.targets) tasks += (tasks.empty() ? "" : ", ") + std::to_string(t);
    throw std::invalid_argument(
        "component '" + from_ + "' emitted directly to task " + std::to_string(directTask) +
        " on stream '" + stream_ + "', but no bolt subscribed to that stream with " +
        "directGrouping has that task (direct subscribers' tasks: " +
        (tasks.empty() ? "none" : tasks) + ")");
  }
}

void Router::forwardTo(std::string_view consumer, TaskId task) {
  for (Route& r : routes_) {
    if (r.consumer != consumer) continue;
    r.targets = {task};
    if (!r.shuffled.empty()) r.shuffled = {task};
    r.cursor = 0;
    if (!r.sent.empty()) r.sent.assign(1, 0);
  }
  findFixedTargets();
}

std::vector<TaskId> Router::allTargets() const {
  std::vector<TaskId> all;
  for (const Route& r : routes_) all.insert(all.end(), r.targets.begin(), r.targets.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

}  // namespace gale
