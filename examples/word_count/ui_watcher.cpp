#include "ui_watcher.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "gale/ui/ui_server.h"

namespace gale::examples {

struct UiWatcher::State {
  explicit State(RunningTopology& job) : server(job, ui::UiOptions{}, "word count") {}
  ui::UiServer server;
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;
  std::atomic<uint64_t> polls{0};
  std::thread poller;
};

UiWatcher::UiWatcher(RunningTopology& job) : state_(std::make_unique<State>(job)) {
  State& s = *state_;
  std::string id = s.server.jobIds().at(0);
  s.poller = std::thread([&s, id] {
    httplib::Client cli("127.0.0.1", s.server.port());
    const std::string paths[] = {"/api/v1/topology/summary", "/api/v1/topology/" + id, "/metrics"};
    std::unique_lock lk(s.mutex);
    while (!s.stop) {
      lk.unlock();
      for (const auto& p : paths) {
        auto res = cli.Get(p.c_str());
        if (res && res->status == 200) ++s.polls;
      }
      lk.lock();
      s.cv.wait_for(lk, std::chrono::seconds(1), [&] { return s.stop; });
    }
  });
}

UiWatcher::~UiWatcher() {
  {
    std::lock_guard lk(state_->mutex);
    state_->stop = true;
  }
  state_->cv.notify_all();
  state_->poller.join();
}

uint64_t UiWatcher::polls() const { return state_->polls.load(); }

}  // namespace gale::examples
