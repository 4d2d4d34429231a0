#include "gale/cluster/view.h"

#include <nlohmann/json.hpp>

#include <sstream>

#include "gale/core/xml_escape.h"

namespace gale::cluster {

ClusterView readCluster(ZkClient& zk, const ClusterOptions& c) {
  ClusterView v;
  auto election = zk.children(electionPath(c));
  v.coordinators = election.size();
  if (!election.empty()) v.leader = zk.get(electionPath(c) + "/" + election[0]).value_or("");
  auto read = [&](const std::string& path, auto parse, auto& into) {
    auto data = zk.get(path);
    if (!data) return false;
    try {
      into = parse(*data);
      return true;
    } catch (const std::invalid_argument& e) {
      v.problems.push_back(path + ": " + e.what());
      return false;
    }
  };
  for (const auto& id : zk.children(supervisorsPath(c))) {
    SupervisorInfo info;
    if (read(supervisorsPath(c) + "/" + id, parseSupervisorInfo, info)) v.supervisors[id] = info;
  }
  for (const auto& name : zk.children(topologiesPath(c))) {
    ClusterView::Topology t{name, {}, 0, {}};
    if (!read(topologiesPath(c) + "/" + name, parseTopologySpec, t.spec)) continue;
    Assignment a;
    if (read(assignmentsPath(c) + "/" + name, parseAssignment, a)) {
      t.version = a.version;
      auto endpoints = a.endpoints();
      int n = static_cast<int>(a.workers.size());
      for (int w = 0; w < n; ++w) {
        ClusterView::Worker worker{a.workers[w], endpoints[w], tasksOfWorker(t.spec.components, w, n), {}};
        WorkerStatus s;
        if (read(workersPath(c) + "/" + name + "-" + std::to_string(w), parseWorkerStatus, s))
          worker.status = s;
        t.workers.push_back(std::move(worker));
      }
    }
    v.topologies.push_back(std::move(t));
  }
  return v;
}

namespace {

// Which topology's worker holds each slot: "<topology> worker <i>".
std::map<std::pair<std::string, int>, std::string> slotUsers(const ClusterView& v) {
  std::map<std::pair<std::string, int>, std::string> out;
  for (const auto& t : v.topologies)
    for (size_t w = 0; w < t.workers.size(); ++w)
      out[{t.workers[w].slot.supervisor, t.workers[w].slot.port}] =
          t.name + " worker " + std::to_string(w);
  return out;
}

// "exactly-once, " or "micro-batch, " for a checkpointed job (TopologySpec::mode), else nothing.
std::string modeText(const TopologySpec& spec) {
  return spec.mode.empty() ? "" : spec.mode + ", ";
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " ") + p;
  return out;
}

std::string statusText(const ClusterView::Worker& w) {
  if (!w.status) return "not running";
  return "pid " + std::to_string(w.status->pid) + ", restarts " +
         std::to_string(w.status->restarts) + ", v" + std::to_string(w.status->version);
}

}  // namespace

std::string toText(const ClusterView& v) {
  std::ostringstream out;
  out << "coordinator: " << (v.leader.empty() ? "none" : v.leader) << " (" << v.coordinators
      << " in the election)\n";
  auto users = slotUsers(v);
  for (const auto& [id, s] : v.supervisors) {
    out << "supervisor " << id << " " << s.host << (s.publicKey.empty() ? "" : " (CURVE)") << ":";
    for (int p : s.ports) {
      auto u = users.find({id, p});
      out << " " << p << " (" << (u == users.end() ? "free" : u->second) << ")";
    }
    out << "\n";
  }
  for (const auto& t : v.topologies) {
    out << "topology " << t.name << ": " << t.spec.workers << " workers, " << modeText(t.spec)
        << (t.spec.active ? "active" : "deactivated") << ", " << t.spec.tasks() << " tasks, "
        << (t.version ? "assignment v" + std::to_string(t.version) : "not assigned yet") << "\n";
    for (size_t w = 0; w < t.workers.size(); ++w)
      out << "  worker " << w << " on " << t.workers[w].slot.supervisor << " "
          << t.workers[w].endpoint << " (" << statusText(t.workers[w]) << "): "
          << join(t.workers[w].tasks) << "\n";
  }
  for (const auto& p : v.problems) out << "problem: " << p << "\n";
  return out.str();
}

std::string toJson(const ClusterView& v) {
  using nlohmann::json;
  auto users = slotUsers(v);
  json supervisors = json::array();
  for (const auto& [id, s] : v.supervisors) {
    json slots = json::array();
    for (int p : s.ports) {
      auto u = users.find({id, p});
      slots.push_back({{"port", p}, {"usedBy", u == users.end() ? json(nullptr) : json(u->second)}});
    }
    supervisors.push_back({{"id", id}, {"host", s.host}, {"curve", !s.publicKey.empty()},
                           {"slots", slots}});
  }
  json topologies = json::array();
  for (const auto& t : v.topologies) {
    json workers = json::array();
    for (const auto& w : t.workers) {
      json status = nullptr;
      if (w.status)
        status = {{"pid", w.status->pid}, {"restarts", w.status->restarts},
                  {"version", w.status->version}};
      workers.push_back({{"supervisor", w.slot.supervisor}, {"endpoint", w.endpoint},
                         {"tasks", w.tasks}, {"status", status}});
    }
    topologies.push_back({{"name", t.name}, {"workers", t.spec.workers}, {"mode", t.spec.mode},
                          {"active", t.spec.active}, {"tasks", t.spec.tasks()},
                          {"binary", t.spec.binary}, {"assignmentVersion", t.version},
                          {"assigned", workers}});
  }
  return json{{"coordinator", v.leader}, {"coordinators", v.coordinators},
              {"supervisors", supervisors}, {"topologies", topologies},
              {"problems", v.problems}}
      .dump();
}

std::string toHtml(const ClusterView& v) {
  std::ostringstream out;
  out << "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" "
         "content=\"2\"><title>gale cluster</title><style>body{font-family:sans-serif}"
         "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;"
         "padding:2px 8px;text-align:left}</style></head><body><h1>gale cluster</h1>"
      << "<p>Coordinator: <b>" << xmlEscape(v.leader.empty() ? "none" : v.leader) << "</b> ("
      << v.coordinators << " in the election)</p><h2>Hosts and slots</h2><table>"
      << "<tr><th>supervisor</th><th>host</th><th>slot port</th><th>used by</th></tr>";
  auto users = slotUsers(v);
  for (const auto& [id, s] : v.supervisors)
    for (int p : s.ports) {
      auto u = users.find({id, p});
      out << "<tr><td>" << xmlEscape(id) << "</td><td>" << xmlEscape(s.host) << "</td><td>" << p
          << "</td><td>" << xmlEscape(u == users.end() ? "free" : u->second) << "</td></tr>";
    }
  out << "</table><h2>Topologies</h2>";
  for (const auto& t : v.topologies) {
    out << "<h3>" << xmlEscape(t.name) << "</h3><p>" << t.spec.workers << " workers, "
        << modeText(t.spec) << (t.spec.active ? "active" : "deactivated") << ", " << t.spec.tasks() << " tasks, "
        << (t.version ? "assignment v" + std::to_string(t.version) : "not assigned yet")
        << "</p><table><tr><th>worker</th><th>supervisor</th><th>endpoint</th><th>process</th>"
        << "<th>tasks</th></tr>";
    for (size_t w = 0; w < t.workers.size(); ++w)
      out << "<tr><td>" << w << "</td><td>" << xmlEscape(t.workers[w].slot.supervisor) << "</td><td>"
          << xmlEscape(t.workers[w].endpoint) << "</td><td>" << statusText(t.workers[w])
          << "</td><td>" << xmlEscape(join(t.workers[w].tasks)) << "</td></tr>";
    out << "</table>";
  }
  for (const auto& p : v.problems) out << "<p>Problem: " << xmlEscape(p) << "</p>";
  out << "</body></html>";
  return out.str();
}

}  // namespace gale::cluster
