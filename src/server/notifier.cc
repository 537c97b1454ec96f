#include "server/notifier.h"

#include <nlohmann/json.hpp>

#include "server/lifetimes.h"
#include "spec/loader.h"

namespace adhoc::server {

Notifier::Notifier(state::Store& store, WebhookOptions options, Post post)
    : store_(store), options_(std::move(options)), post_(std::move(post)) {
  options_.stop = &stop_;
  if (!post_)
    post_ = [this](const std::string& url, const std::string& body) {
      return PostJson(url, body, options_);
    };
  thread_ = std::thread([this] { Deliver(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Notifier::Config Notifier::ConfigOf(const state::Environment& env) {
  std::lock_guard lock(configs_mu_);
  Config& c = configs_[env.name];
  if (c.updated_at == env.updated_at && c.spec_size == env.spec_json.size()) return c;
  c = Config{env.updated_at, env.spec_json.size(), std::nullopt, ""};
  auto j = nlohmann::json::parse(env.spec_json, nullptr, false);
  if (!j.is_object() || !j.contains("project_toml") || !j["project_toml"].is_string()) return c;
  auto project = spec::ParseProject(j["project_toml"].get<std::string>());
  if (!project.ok()) return c;
  c.notify = project.value.notify;
  c.project = project.value.name;
  return c;
}

void Notifier::Tick(const std::vector<state::Environment>& envs, state::Millis now) {
  std::optional<std::map<std::string, state::ExpiryWarning>> warned;
  for (const auto& env : envs) {
    if (!ExpiresAt(env)) continue;  // no TTL: nothing to say, nothing to parse
    Config config = ConfigOf(env);
    if (!config.notify) continue;
    if (!warned) {
      auto listed = store_.ListExpiryWarnings();
      if (!listed.ok()) return;
      warned = std::move(*listed);
    }
    auto it = warned->find(env.name);
    auto due = ExpiringDue(
        env, now, config.notify->before,
        it == warned->end() ? std::nullopt : std::optional<state::Millis>(it->second.expires_at));
    if (!due) continue;
    // Remembered first: a warning that cannot be remembered is not sent (it could go twice).
    if (!store_.PutExpiryWarning({env.name, *due, 0}).ok()) continue;
    Enqueue(NoticeKind::kExpiring, env, config);
  }
}

void Notifier::Expired(const state::Environment& env) {
  Config config = ConfigOf(env);
  {
    std::lock_guard lock(configs_mu_);
    configs_.erase(env.name);  // it is gone
  }
  if (config.notify) Enqueue(NoticeKind::kExpired, env, config);
}

void Notifier::Enqueue(NoticeKind kind, const state::Environment& env, const Config& config) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(
        {kind, env.name, config.notify->url, NoticeJson(kind, env, config.project).dump()});
  }
  cv_.notify_all();
}

void Notifier::Drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void Notifier::Deliver() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything was delivered
    Notice notice = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    std::string what = std::string(ToString(notice.kind)) + " notice";
    Status sent = post_(notice.url, notice.body);
    if (sent.ok())
      (void)store_.AppendEvent(notice.env, "notified", what + " sent to " + notice.url);
    else
      (void)store_.AppendEvent(notice.env, "notify-failed", what + ": " + sent.error().message());
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace adhoc::server
