#include "gale/ui/ui_server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <stdexcept>
#include <thread>

#include <httplib.h>
#include <sys/socket.h>

#include "api.h"
#include "assets.h"
#include "gale/core/log.h"
#include "gale/core/thread_name.h"
#include "job_view.h"

namespace gale::ui {

using nlohmann::json;

namespace {

// Compares in time independent of where the strings differ (and of the given one's length), so
// the token cannot be guessed a byte at a time from response times.
bool tokenMatches(const std::string& given, const std::string& expected) {
  if (expected.empty()) return false;
  unsigned diff = given.size() != expected.size() ? 1u : 0u;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

std::string givenToken(const httplib::Request& req) {
  if (req.has_header("X-Gale-Token")) return req.get_header_value("X-Gale-Token");
  std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) return auth.substr(7);
  return "";
}

// Every response: no sniffing (JSON is never rendered as HTML), no framing, and a policy that
// allows only the UI's own script and style (an injected inline script would not run).
void secure(httplib::Response& res) {
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Cache-Control", "no-store");
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                 "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
}

void sendJson(httplib::Response& res, const json& j, int status = 200) {
  secure(res);
  res.status = status;
  // Invalid UTF-8 in a user string is replaced rather than failing the whole response.
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void sendError(httplib::Response& res, int status, const std::string& message) {
  const char* what = status == 400   ? "Bad Request"
                     : status == 401 ? "Unauthorized"
                     : status == 404 ? "Not Found"
                     : status == 409 ? "Conflict"
                                     : "Error";
  sendJson(res, json{{"error", what}, {"errorMessage", message}}, status);
}

}  // namespace

class UiServer::Impl {
 public:
  explicit Impl(UiOptions o) : options(std::move(o)) {
    clock = options.clock ? options.clock : &SystemClock::instance();
    // Two workers are plenty for one person's browser and a Prometheus scraper, and keep the
    // UI's threads off the job's cores.
    server.new_task_queue = [] { return new httplib::ThreadPool(2); };
    // httplib's default also sets SO_REUSEPORT, which would let a second process bind the same
    // port and take part of the UI's connections (and tokens). Address reuse alone is harmless.
    server.set_socket_options([](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    routes();
    int bound = options.port == 0 ? server.bind_to_any_port(options.bind)
                                  : (server.bind_to_port(options.bind, options.port) ? options.port
                                                                                     : -1);
    if (bound <= 0) {
      throw std::runtime_error("gale ui: cannot listen on " + options.bind + ":" +
                               std::to_string(options.port) +
                               " (port in use, or not an address of this machine?)");
    }
    port = bound;
    listener = std::thread([this] {
      nameThisThread("gale-ui");
      server.listen_after_bind();
      listenerEnded = true;
    });
    // stop() is a no-op until the listener runs; wait for it, or a quick destruction would
    // leave the listener in accept() forever.
    while (!server.is_running() && !listenerEnded)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (options.sampleInterval.count() > 0) sampler = std::thread([this] { sampleLoop(); });
  }

  ~Impl() {
    {
      std::lock_guard lk(mutex);
      stopping = true;
      cv.notify_all();
    }
    server.stop();
    if (listener.joinable()) listener.join();
    if (sampler.joinable()) sampler.join();
    for (auto& t : killers) t.join();
  }

  std::string add(std::unique_ptr<JobView> view, std::string name,
                  std::shared_ptr<const Topology> topology) {
    auto e = std::make_shared<JobEntry>();
    e->name = std::move(name);
    e->topology = std::move(topology);
    e->startNanos = clock->monoNanos();
    e->view = std::move(view);
    e->sample(e->startNanos);
    std::lock_guard lk(mutex);
    e->id = urlSafe(e->name) + "-" + std::to_string(++sequence);
    jobs.push_back(e);
    return e->id;
  }

  void remove(const std::string& id) {
    std::shared_ptr<JobEntry> e = find(id);
    if (!e) return;
    std::lock_guard lk(e->mutex);
    if (!e->view->controllable()) return;  // removed before
    e->view = frozen(*e->view);
    e->endNanos = clock->monoNanos();
  }

  std::shared_ptr<JobEntry> find(const std::string& id) {
    std::lock_guard lk(mutex);
    for (auto& e : jobs)
      if (e->id == id) return e;
    return nullptr;
  }

  std::vector<std::shared_ptr<JobEntry>> all() {
    std::lock_guard lk(mutex);
    return jobs;
  }

  void sampleNow() {
    int64_t now = clock->monoNanos();
    for (auto& e : all()) e->sample(now);
  }

  JobSnapshot snapshot(const JobEntry& e) { return e.snapshot(clock->monoNanos()); }

  void planComparison(size_t runs) {
    std::lock_guard lk(mutex);
    comparisonPlanned = runs;
  }
  void addComparisonRun(ComparisonRun run) {
    std::lock_guard lk(mutex);
    comparison.push_back(std::move(run));
  }

  UiOptions options;
  const Clock* clock;
  httplib::Server server;
  int port = 0;

 private:
  void sampleLoop() {
    nameThisThread("gale-ui-sampler");
    std::unique_lock lk(mutex);
    while (!stopping) {
      cv.wait_for(lk, options.sampleInterval, [&] { return stopping; });
      if (stopping) break;
      lk.unlock();
      sampleNow();
      lk.lock();
    }
  }

  // Storm's kill: deactivate the spouts, wait so the trees in flight complete, then end the job
  // (gracefully: whatever is still in flight drains).
  void kill(std::shared_ptr<JobEntry> e, int waitSeconds) {
    {
      std::lock_guard lk(e->mutex);
      e->killRequested = true;
      e->view->deactivate();
    }
    std::lock_guard lk(mutex);
    killers.emplace_back([this, e, waitSeconds] {
      nameThisThread("gale-ui-kill");
      {
        std::unique_lock lk(mutex);
        if (cv.wait_for(lk, std::chrono::seconds(waitSeconds), [&] { return stopping; })) return;
      }
      std::lock_guard lk(e->mutex);
      e->view->requestStop();
    });
  }

  void routes() {
    auto asset = [this](const char* body, const char* type) {
      return [body, type](const httplib::Request&, httplib::Response& res) {
        secure(res);
        res.set_content(body, type);
      };
    };
    server.Get("/", asset(kIndexHtml, "text/html; charset=utf-8"));
    server.Get("/index.html", asset(kIndexHtml, "text/html; charset=utf-8"));
    server.Get("/app.js", asset(kAppJs, "text/javascript; charset=utf-8"));
    server.Get("/style.css", asset(kStyleCss, "text/css; charset=utf-8"));

    server.Get("/api/v1/topology/summary", [this](const httplib::Request&, httplib::Response& res) {
      std::vector<JobSnapshot> snaps;
      for (auto& e : all()) snaps.push_back(snapshot(*e));
      json summary = summaryJson(snaps);
      std::lock_guard lk(mutex);
      summary["comparison"] = {{"planned", comparisonPlanned}, {"runs", comparison.size()}};
      sendJson(res, summary);
    });
    server.Get(R"(/api/v1/topology/([^/]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto e = find(req.matches[1]);
                 if (!e) return sendError(res, 404, "no topology '" + req.matches[1].str() + "'");
                 json t = topologyJson(snapshot(*e));
                 t["logLevel"] = logLevelName(logLevel());  // the process's, for the page
                 sendJson(res, t);
               });
    server.Get(R"(/api/v1/topology/([^/]+)/batches)",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto e = find(req.matches[1]);
                 if (!e) return sendError(res, 404, "no topology '" + req.matches[1].str() + "'");
                 sendJson(res, batchesJson(snapshot(*e)));
               });
    server.Get(R"(/api/v1/topology/([^/]+)/checkpoint)",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto e = find(req.matches[1]);
                 if (!e) return sendError(res, 404, "no topology '" + req.matches[1].str() + "'");
                 std::optional<CheckpointSummary> c;
                 {
                   std::lock_guard lk(e->mutex);
                   c = e->view->checkpoint();
                 }
                 sendJson(res, c ? checkpointJson(*c) : json(nullptr));
               });
    server.Get(R"(/api/v1/topology/([^/]+)/component/(.+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto e = find(req.matches[1]);
                 if (!e) return sendError(res, 404, "no topology '" + req.matches[1].str() + "'");
                 auto c = componentJson(snapshot(*e), req.matches[2].str());
                 if (!c)
                   return sendError(res, 404, "topology '" + e->id + "' has no component '" +
                                                  req.matches[2].str() + "'");
                 sendJson(res, *c);
               });
    server.Get("/api/v1/compare", [this](const httplib::Request&, httplib::Response& res) {
      std::vector<ComparisonRun> runs;
      size_t planned;
      {
        std::lock_guard lk(mutex);
        runs = comparison;
        planned = comparisonPlanned;
      }
      sendJson(res, comparisonJson(runs, planned));
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      std::vector<JobSnapshot> snaps;
      for (auto& e : all()) snaps.push_back(snapshot(*e));
      secure(res);
      res.set_content(prometheusText(snaps), "text/plain; version=0.0.4; charset=utf-8");
    });

    // Actions. The token is checked before anything else, so an unauthorised caller learns
    // nothing (not even whether the topology exists).
    auto action = [this](auto&& body) {
      return [this, body](const httplib::Request& req, httplib::Response& res) {
        if (!tokenMatches(givenToken(req), options.token)) {
          return sendError(res, 401,
                           options.token.empty()
                               ? "actions are disabled: start the UI with a token"
                               : "missing or wrong token (send it in an X-Gale-Token header)");
        }
        auto e = find(req.matches[1]);
        if (!e) return sendError(res, 404, "no topology '" + req.matches[1].str() + "'");
        {
          std::lock_guard lk(e->mutex);
          if (!e->view->controllable())
            return sendError(res, 409, "topology '" + e->id + "' is no longer attached");
        }
        std::string op = body(req, e, res);
        if (op.empty()) return;
        sendJson(res, {{"topologyOperation", op}, {"topologyId", e->id}, {"status", "success"}});
      };
    };
    server.Post(R"(/api/v1/topology/([^/]+)/deactivate)",
                action([](const httplib::Request&, std::shared_ptr<JobEntry> e,
                          httplib::Response&) {
                  std::lock_guard lk(e->mutex);
                  e->view->deactivate();
                  return std::string("deactivate");
                }));
    server.Post(R"(/api/v1/topology/([^/]+)/activate)",
                action([](const httplib::Request&, std::shared_ptr<JobEntry> e,
                          httplib::Response&) {
                  std::lock_guard lk(e->mutex);
                  e->view->activate();
                  return std::string("activate");
                }));
    // Storm's log configuration, for gale's one logger (ROOT): the level is the process's, so it
    // applies to every job in it.
    server.Get(R"(/api/v1/topology/([^/]+)/logconfig)",
               [this](const httplib::Request& req, httplib::Response& res) {
                 if (!find(req.matches[1]))
                   return sendError(res, 404, "no topology '" + req.matches[1].str() + "'");
                 sendJson(res, logConfigJson(logLevel()));
               });
    server.Post(R"(/api/v1/topology/([^/]+)/logconfig)",
                action([](const httplib::Request& req, std::shared_ptr<JobEntry>,
                          httplib::Response& res) {
                  std::string why;
                  std::optional<LogLevel> level = parseLogConfig(req.body, why);
                  if (!level) {
                    sendError(res, 400, why);
                    return std::string();
                  }
                  setLogLevel(*level);
                  logWarn(std::string("gale ui: log level set to ") + logLevelName(*level));
                  return std::string("logconfig");
                }));
    server.Post(R"(/api/v1/topology/([^/]+)/kill/([0-9]{1,4}))",
                action([this](const httplib::Request& req, std::shared_ptr<JobEntry> e,
                              httplib::Response&) {
                  kill(e, std::stoi(req.matches[2]));
                  return std::string("kill");
                }));
    // The token is checked before httplib reads a request body (or refuses a POST without a
    // Content-Length, as curl -X POST sends), so every unauthorised POST answers 401.
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.method != "POST" || tokenMatches(givenToken(req), options.token))
        return httplib::Server::HandlerResponse::Unhandled;
      sendError(res, 401,
                options.token.empty()
                    ? "actions are disabled: start the UI with a token"
                    : "missing or wrong token (send it in an X-Gale-Token header)");
      return httplib::Server::HandlerResponse::Handled;
    });
    // Any other POST: 401 without the token, 404 with it.
    server.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      if (!tokenMatches(givenToken(req), options.token))
        return sendError(res, 401, "missing or wrong token");
      sendError(res, 404, "no action at " + req.path);
    });
    server.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
      sendError(res, 404, "nothing at " + req.path);
    });
  }

  std::mutex mutex;  // jobs, sequence, stopping, killers, comparison
  std::condition_variable cv;
  bool stopping = false;
  std::vector<std::shared_ptr<JobEntry>> jobs;
  int sequence = 0;
  std::atomic<bool> listenerEnded{false};
  std::thread listener, sampler;
  std::vector<std::thread> killers;
  std::vector<ComparisonRun> comparison;
  size_t comparisonPlanned = 0;
};

UiServer::UiServer(UiOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  logInfo("gale ui: " + url());
}
UiServer::UiServer(RunningTopology& job, UiOptions options, std::string name)
    : UiServer(std::move(options)) {
  add(job, std::move(name));
}
UiServer::UiServer(MicroBatchJob job, UiOptions options) : UiServer(std::move(options)) {
  add(std::move(job));
}
UiServer::~UiServer() = default;

std::string UiServer::add(RunningTopology& job, std::string name) {
  return impl_->add(viewOf(job), std::move(name), std::make_shared<Topology>(job.topology()));
}
std::string UiServer::add(MicroBatchJob job) {
  const Topology* t = job.topology();
  std::string name = job.name();
  return impl_->add(viewOf(std::move(job)), name,
                    t ? std::make_shared<Topology>(*t) : nullptr);
}
void UiServer::remove(const std::string& id) { impl_->remove(id); }
int UiServer::port() const { return impl_->port; }
std::string UiServer::url() const {
  std::string host = impl_->options.bind == "0.0.0.0" ? "127.0.0.1" : impl_->options.bind;
  return "http://" + host + ":" + std::to_string(impl_->port) + "/";
}
std::vector<std::string> UiServer::jobIds() const {
  std::vector<std::string> ids;
  for (auto& e : impl_->all()) ids.push_back(e->id);
  return ids;
}
void UiServer::sampleNow() { impl_->sampleNow(); }
void UiServer::planComparison(size_t runs) { impl_->planComparison(runs); }
void UiServer::addComparisonRun(ComparisonRun run) { impl_->addComparisonRun(std::move(run)); }

}  // namespace gale::ui
