// The sender of a project's [notify] notices (issue 13): from every environment's record it
// decides which `expiring` notices are due (notifications.h), remembers each in the state store
// before it goes (a restarted control plane does not warn twice: a notice goes at most once),
// and delivers every notice, in order, on a thread of its own (webhook.h), so the control
// plane's loop never waits on a receiver. Each notice delivered records a `notified` event,
// each that could not be a `notify-failed` event with the reason; neither stops anything.
//
// The [notify] table is the one of the project file recorded with the environment (its last
// `up`), parsed again only when the record changes.
// Thread-safe. The destructor delivers what is queued with one attempt each, then returns.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "server/notifications.h"
#include "server/webhook.h"
#include "spec/spec.h"
#include "state/store.h"

namespace adhoc::server {

class Notifier {
 public:
  // Delivers `body` to `url`; the default is PostJson with `options`.
  using Post = std::function<Status(const std::string& url, const std::string& body)>;

  explicit Notifier(state::Store& store, WebhookOptions options = {}, Post post = {});
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues an `expiring` notice for each of `envs` that is due one at `now`.
  void Tick(const std::vector<state::Environment>& envs, state::Millis now);
  // Queues an `expired` notice for `env`, which its TTL just destroyed (its record as it was).
  void Expired(const state::Environment& env);
  // Tests: waits until nothing is queued or being delivered.
  void Drain();

 private:
  struct Notice {
    NoticeKind kind;
    std::string env;
    std::string url;
    std::string body;
  };
  struct Config {
    state::Millis updated_at = 0;
    size_t spec_size = 0;
    std::optional<spec::Notify> notify;
    std::string project;
  };

  // The environment's [notify] and project name, from its recorded project file.
  Config ConfigOf(const state::Environment& env);
  void Enqueue(NoticeKind kind, const state::Environment& env, const Config& config);
  void Deliver();

  state::Store& store_;
  WebhookOptions options_;
  Post post_;
  std::mutex configs_mu_;
  std::map<std::string, Config> configs_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Notice> queue_;
  bool busy_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: started once everything above is ready
};

}  // namespace adhoc::server
