// Work the loop hands off so that it never waits on it (an expired environment's destroy, an
// idle one's sleep, a wake the router asked for): at most one job per key (an environment)
// at a time, each on a thread of its own. Jobs are rare and short-lived, so a thread each is
// simpler than a pool and never queues a wake behind another environment's destroy.
// Thread-safe. The destructor waits for every job (as JoinAll).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace adhoc::server {

class BackgroundJobs {
 public:
  BackgroundJobs() = default;
  ~BackgroundJobs() { JoinAll(); }
  BackgroundJobs(const BackgroundJobs&) = delete;
  BackgroundJobs& operator=(const BackgroundJobs&) = delete;

  // Starts `job` for `key` unless one runs for it (false then) or JoinAll has begun.
  bool Start(const std::string& key, std::function<void()> job);
  bool Running(const std::string& key);
  // Refuses new jobs and waits for the running ones.
  void JoinAll();

 private:
  void ReapFinished();  // needs mu_

  std::mutex mu_;
  std::condition_variable done_;
  bool closed_ = false;
  std::map<std::string, std::thread> running_;
  std::set<std::string> finished_;  // keys whose thread ended and waits to be joined
};

}  // namespace adhoc::server
