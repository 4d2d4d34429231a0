// Coordinator load at scale, without ZooKeeper: 1 000 workers (100 topologies of 10) placed on
// 260 supervisors of 4 slots (40 spare), then one supervisor lost. Prints what one leader pass costs (CPU
// time of place() for every topology, as the coordinator's reconcile does), the assignment
// nodes' size, and how many workers move and restart. docs/cluster.md quotes it.
#include <chrono>
#include <cstdio>
#include <map>

#include "gale/cluster/state.h"

using namespace gale::cluster;

int main() {
  int supervisors = 260, slots = 4, topologies = 100, perTopology = 10;
  std::map<std::string, SupervisorInfo> live;
  for (int s = 0; s < supervisors; ++s) {
    SupervisorInfo info{"10.0." + std::to_string(s / 256) + "." + std::to_string(s % 256), {}, ""};
    for (int p = 0; p < slots; ++p) info.ports.push_back(16000 + 1000 * p);
    char id[16];
    std::snprintf(id, sizeof id, "s%04d", s);
    live[id] = info;
  }
  // One leader pass: place every topology, each seeing the slots the others hold.
  auto pass = [&](std::map<int, std::vector<Slot>>& held) {
    for (int t = 0; t < topologies; ++t) {
      std::vector<Slot> taken;
      for (auto& [other, slotsOf] : held)
        if (other != t) taken.insert(taken.end(), slotsOf.begin(), slotsOf.end());
      auto placed = place(perTopology, held[t], live, taken);
      if (!placed) {
        std::printf("not enough slots for topology %d\n", t);
        std::exit(1);
      }
      held[t] = *placed;
    }
  };
  std::map<int, std::vector<Slot>> held;
  auto t0 = std::chrono::steady_clock::now();
  pass(held);
  auto t1 = std::chrono::steady_clock::now();
  size_t bytes = 0, largest = 0;
  for (auto& [t, slotsOf] : held) {
    Assignment a{1, slotsOf, {}, {}};
    for (const Slot& s : slotsOf) a.hosts[s.supervisor] = live[s.supervisor].host;
    size_t n = toJson(a).size();
    bytes += n;
    largest = std::max(largest, n);
  }
  live.erase(live.begin());  // a supervisor dies
  auto before = held;
  auto t2 = std::chrono::steady_clock::now();
  pass(held);
  auto t3 = std::chrono::steady_clock::now();
  int moved = 0, restarted = 0;
  for (auto& [t, slotsOf] : held) {
    int m = 0;
    for (size_t w = 0; w < slotsOf.size(); ++w) m += !(slotsOf[w] == before[t][w]);
    moved += m;
    if (m) restarted += perTopology;  // a changed assignment restarts the topology's workers
  }
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::printf("%d workers (%d topologies x %d) on %d supervisors x %d slots\n",
              topologies * perTopology, topologies, perTopology, supervisors, slots);
  std::printf("first placement pass: %.1f ms; assignment nodes: %zu bytes in all, largest %zu\n",
              ms(t1 - t0), bytes, largest);
  std::printf("after losing one supervisor: pass %.1f ms, %d workers moved, %d restarted\n",
              ms(t3 - t2), moved, restarted);
}
