#include "gale/cluster/state.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>

namespace gale::cluster {
namespace {

using nlohmann::json;

// Parses `text` and reads it with `read`, turning every JSON error into std::invalid_argument
// that says what was being read.
template <typename F>
auto parse(const std::string& text, const char* what, F read) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    return read(j);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("bad ") + what + " '" + text.substr(0, 200) +
                                "': " + e.what());
  }
}

// {"components": [...]} as the program described them; their tasks must follow each other from 0.
std::vector<ComponentTasks> componentsOf(const json& j) {
  std::vector<ComponentTasks> out;
  int next = 0;
  for (const json& c : j.value("components", json::array())) {
    out.push_back({c.at("name").get<std::string>(), c.at("firstTask").get<int>(),
                   c.at("tasks").get<int>(), c.value("maxParallelism", 0u)});
    if (out.back().firstTask != next || out.back().tasks < 1)
      throw std::invalid_argument("components' tasks must follow each other from 0");
    next += out.back().tasks;
  }
  return out;
}

std::string modeOf(const json& j) {
  std::string mode = j.value("mode", "");
  if (!mode.empty() && mode != "micro-batch" && mode != "exactly-once")
    throw std::invalid_argument("unknown mode '" + mode + "'");
  return mode;
}

int port(const json& j) {
  int p = j.get<int>();
  if (p < 1 || p > 65535) throw std::invalid_argument("port " + std::to_string(p));
  return p;
}

}  // namespace

std::vector<std::string> Assignment::endpoints() const {
  std::vector<std::string> out;
  for (const Slot& s : workers) {
    auto host = hosts.find(s.supervisor);
    out.push_back("tcp://" + (host == hosts.end() ? std::string("?") : host->second) + ":" +
                  std::to_string(s.port));
  }
  return out;
}

std::vector<std::string> Assignment::publicKeys() const {
  std::vector<std::string> out;
  for (const Slot& s : workers) {
    auto key = keys.find(s.supervisor);
    if (key == keys.end()) return {};
    out.push_back(key->second);
  }
  return out;
}

std::string toJson(const SupervisorInfo& s) {
  return json{{"host", s.host}, {"ports", s.ports}, {"publicKey", s.publicKey}}.dump();
}
int TopologySpec::tasks() const {
  int n = 0;
  for (const auto& c : components) n += c.tasks;
  return n;
}

std::string toJson(const TopologySpec& t) {
  json components = json::array();
  for (const auto& c : t.components)
    components.push_back({{"name", c.name}, {"firstTask", c.firstTask}, {"tasks", c.tasks},
                          {"maxParallelism", c.maxParallelism}});
  return json{{"binary", t.binary}, {"args", t.args}, {"workers", t.workers},
              {"active", t.active}, {"components", components},
              {"parallelism", t.parallelism}, {"mode", t.mode}}.dump();
}
std::string toJson(const Assignment& a) {
  json workers = json::array();
  for (const Slot& s : a.workers) workers.push_back({{"supervisor", s.supervisor}, {"port", s.port}});
  return json{{"version", a.version}, {"workers", workers}, {"hosts", a.hosts}, {"keys", a.keys},
              {"parallelism", a.parallelism}}
      .dump();
}
std::string toJson(const WorkerStatus& w) {
  return json{{"supervisor", w.supervisor}, {"pid", w.pid}, {"version", w.version},
              {"restarts", w.restarts}}.dump();
}

SupervisorInfo parseSupervisorInfo(const std::string& text) {
  return parse(text, "supervisor", [](const json& j) {
    SupervisorInfo s;
    s.host = j.at("host").get<std::string>();
    if (s.host.empty()) throw std::invalid_argument("empty host");
    for (const json& p : j.at("ports")) s.ports.push_back(port(p));
    s.publicKey = j.value("publicKey", "");
    return s;
  });
}

TopologySpec parseTopologySpec(const std::string& text) {
  return parse(text, "topology", [](const json& j) {
    TopologySpec t;
    t.binary = j.at("binary").get<std::string>();
    t.args = j.at("args").get<std::vector<std::string>>();
    t.workers = j.at("workers").get<int>();
    t.active = j.value("active", true);
    t.parallelism = j.value("parallelism", std::map<std::string, int>{});
    for (const auto& [component, n] : t.parallelism)
      if (n < 1) throw std::invalid_argument("parallelism of '" + component + "' must be >= 1");
    t.components = componentsOf(j);
    t.mode = modeOf(j);
    if (t.binary.empty() || t.binary[0] != '/')
      throw std::invalid_argument("binary must be an absolute path");
    if (t.workers < 1) throw std::invalid_argument("workers must be >= 1");
    return t;
  });
}

Assignment parseAssignment(const std::string& text) {
  return parse(text, "assignment", [](const json& j) {
    Assignment a;
    a.version = j.at("version").get<int64_t>();
    for (const json& w : j.at("workers"))
      a.workers.push_back({w.at("supervisor").get<std::string>(), port(w.at("port"))});
    a.hosts = j.at("hosts").get<std::map<std::string, std::string>>();
    a.keys = j.value("keys", std::map<std::string, std::string>{});
    a.parallelism = j.value("parallelism", std::map<std::string, int>{});
    for (const Slot& s : a.workers)
      if (!a.hosts.count(s.supervisor))
        throw std::invalid_argument("no host for supervisor '" + s.supervisor + "'");
    return a;
  });
}

TopologyDescription parseDescription(const std::string& text) {
  return parse(text, "topology description", [](const json& j) {
    TopologyDescription d{componentsOf(j), modeOf(j), j.value("oneWorker", ""),
                          j.value("rescaleRefused", "")};
    if (d.components.empty()) throw std::invalid_argument("no components");
    return d;
  });
}

std::vector<ComponentTasks> parseComponents(const std::string& text) {
  return parseDescription(text).components;
}

WorkerStatus parseWorkerStatus(const std::string& text) {
  return parse(text, "worker status", [](const json& j) {
    return WorkerStatus{j.at("supervisor").get<std::string>(), j.at("pid").get<int>(),
                        j.at("version").get<int64_t>(), j.at("restarts").get<int>()};
  });
}

std::vector<std::string> tasksOfWorker(const std::vector<ComponentTasks>& components, int w,
                                       int workers) {
  std::vector<std::string> out;
  for (const auto& c : components)
    for (int t = c.firstTask; t < c.firstTask + c.tasks; ++t)
      if (t % workers == w) out.push_back(c.name + "[" + std::to_string(t) + "]");
  return out;
}

void checkName(const std::string& kind, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name != "." && name != "..";
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  if (!ok)
    throw std::invalid_argument("bad " + kind + " name '" + name +
                                "': use 1 to 64 of A-Z a-z 0-9 _ - . (not . or ..)");
}

std::optional<std::vector<Slot>> place(int workers, const std::vector<Slot>& previous,
                                       const std::map<std::string, SupervisorInfo>& live,
                                       const std::vector<Slot>& taken, int tasks) {
  // Ports of `info` whose task ports [p, p + tasks) run into neither the next slot nor past 65535.
  auto fits = [tasks](const SupervisorInfo& info, int p) {
    if (p + tasks - 1 > 65535) return false;
    for (int q : info.ports)
      if (q > p && q < p + tasks) return false;
    return true;
  };
  auto key = [](const Slot& s) { return s.supervisor + ":" + std::to_string(s.port); };
  std::set<std::string> used;
  std::map<std::string, int> load, mine;  // slots in use per supervisor: overall, this topology
  auto use = [&](const Slot& s, bool own) {
    used.insert(key(s));
    ++load[s.supervisor];
    if (own) ++mine[s.supervisor];
  };
  for (const Slot& s : taken) use(s, false);
  auto alive = [&](const Slot& s) {
    auto it = live.find(s.supervisor);
    return it != live.end() &&
           std::count(it->second.ports.begin(), it->second.ports.end(), s.port) > 0 &&
           fits(it->second, s.port);
  };
  std::vector<std::optional<Slot>> out(static_cast<size_t>(workers));
  for (size_t w = 0; w < out.size() && w < previous.size(); ++w)
    if (alive(previous[w]) && !used.count(key(previous[w]))) {
      out[w] = previous[w];
      use(previous[w], true);
    }
  for (auto& slot : out) {
    if (slot) continue;
    const std::string* best = nullptr;
    int bestPort = 0;
    for (const auto& [id, info] : live) {  // std::map: ids in order, so ties go to the smaller
      std::vector<int> ports = info.ports;
      std::sort(ports.begin(), ports.end());
      auto free = std::find_if(ports.begin(), ports.end(), [&, &id = id, &info = info](int p) {
        return !used.count(key({id, p})) && fits(info, p);
      });
      if (free == ports.end()) continue;
      if (!best || std::pair(mine[id], load[id]) < std::pair(mine[*best], load[*best])) {
        best = &id;
        bestPort = *free;
      }
    }
    if (!best) return std::nullopt;
    slot = Slot{*best, bestPort};
    use(*slot, true);
  }
  std::vector<Slot> result;
  for (auto& s : out) result.push_back(*s);
  return result;
}

}  // namespace gale::cluster
