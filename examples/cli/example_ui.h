// --ui PORT and --ui-token on every example: the web UI (docs/ui.md) of the jobs a program runs.
//
//   UiFlags ui;  addUiOptions(app, ui);          // with the program's other options
//   auto server = startUi(ui);                   // nullptr without --ui
//   { auto rt = runContinuous(t);  UiAttachment shown(server.get(), rt, "word count");
//     rt.waitUntilDone(); }
//   keepUiUntilInterrupted(server.get());        // with --ui: serve the finished jobs until Ctrl-C
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cli.h"
#include "gale/batch/microbatch.h"
#include "gale/topology/runtime.h"
#include "gale/ui/ui_server.h"

namespace gale::examples {

struct UiFlags {
  int port = -1;  // < 0: no UI
  std::string token;
};

// Adds --ui and --ui-token; returns --ui (for excludes()).
inline CLI::Option* addUiOptions(CLI::App& app, UiFlags& f) {
  CLI::Option* ui = app.add_option("--ui", f.port,
                                   "serve the web UI at http://127.0.0.1:PORT/ (0: any free port); "
                                   "it stays up after the job until Ctrl-C (docs/ui.md)")
                        ->check(number<int>(0, 65535));
  app.add_option("--ui-token", f.token,
                 "token for the UI's actions: deactivate / activate / kill / log level (default: "
                 "$GALE_UI_TOKEN; none: read-only)")
      ->envname("GALE_UI_TOKEN");
  return ui;
}

// The UI server asked for by --ui, with no job yet (nullptr without --ui). Says where it is.
inline std::unique_ptr<ui::UiServer> startUi(const UiFlags& f) {
  if (f.port < 0) return nullptr;
  auto server = std::make_unique<ui::UiServer>(ui::UiOptions{.port = f.port, .token = f.token});
  std::fprintf(stderr, "web UI: %s%s\n", server->url().c_str(),
               f.token.empty() ? " (read-only: no --ui-token)" : "");
  return server;
}

// Shows a job in `server` (none: does nothing) for the attachment's lifetime, then detaches it:
// the UI keeps its last metrics and never touches a RunningTopology destroyed after this.
class UiAttachment {
 public:
  UiAttachment(ui::UiServer* server, RunningTopology& job, std::string name) : server_(server) {
    if (server_) id_ = server_->add(job, std::move(name));
  }
  UiAttachment(ui::UiServer* server, MicroBatchJob job) : server_(server) {
    if (server_) id_ = server_->add(std::move(job));
  }
  UiAttachment(const UiAttachment&) = delete;
  UiAttachment& operator=(const UiAttachment&) = delete;
  ~UiAttachment() {
    if (server_) server_->remove(id_);
  }

 private:
  ui::UiServer* server_;
  std::string id_;
};

inline std::atomic<bool> gUiInterrupted{false};

// With --ui, the page keeps showing the finished jobs until SIGINT or SIGTERM.
inline void keepUiUntilInterrupted(const ui::UiServer* server) {
  if (!server) return;
  std::signal(SIGINT, [](int) { gUiInterrupted = true; });
  std::signal(SIGTERM, [](int) { gUiInterrupted = true; });
  std::fprintf(stderr, "the job ended; the web UI stays at %s until Ctrl-C\n",
               server->url().c_str());
  while (!gUiInterrupted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace gale::examples
