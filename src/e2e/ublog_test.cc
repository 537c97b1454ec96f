// The seed's lifecycle on μblog (examples/ublog), with real PostgreSQL, Redis, gunicorn, Celery
// worker and beat, nginx and the router: what the blog post's team does with ad hoc
// environments, end to end, through the command line and HTTP.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/sandbox.h"

namespace adhoc::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json Json(const HttpAnswer& a) {
  auto j = json::parse(a.body, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

class UblogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_.RepoFromScript(fs::path(ADHOC_SOURCE_DIR) / "examples/ublog/make-repo.sh");
    ASSERT_TRUE(fs::exists(box_.repo() / "adhoc.toml"));
  }

  void ExpectNothingLeftOf(const std::string& env) {
    std::string db = env + "-db", role = "env_" + env;
    for (char& c : role)
      if (c == '-') c = '_';
    EXPECT_TRUE(box_.Sql("SELECT 1 FROM pg_database WHERE datname = '" + db + "'").empty());
    EXPECT_TRUE(box_.Sql("SELECT 1 FROM pg_roles WHERE rolname = '" + role + "'").empty());
    EXPECT_TRUE(box_.HomeProcesses("/envs/" + env + "/").empty());
    EXPECT_FALSE(fs::exists(box_.home() / "envs" / env));
    EXPECT_EQ(box_.Http(env, "GET", "/").status, 404);
  }

  // The services (by task id prefix) whose main process was forked from a fork server: its
  // parent runs fork_server.py. Read from the tasks' shim records and /proc.
  std::set<std::string> ForkedServices(const std::string& env) {
    std::set<std::string> out;
    std::error_code ec;
    for (auto& task : fs::directory_iterator(box_.home() / "envs" / env / "tasks", ec)) {
      std::ifstream shim(task.path() / "shim.json");
      json record = json::parse(shim, nullptr, false);
      if (record.is_discarded() || !record.contains("task")) continue;
      int pid = record["task"].value("pid", 0);
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string line;
      std::getline(stat, line);
      auto close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream fields(line.substr(close + 2));
      std::string state;
      int ppid = 0;
      fields >> state >> ppid;
      std::ifstream cmdline("/proc/" + std::to_string(ppid) + "/cmdline");
      std::string parent((std::istreambuf_iterator<char>(cmdline)), {});
      if (parent.find("fork_server.py") != std::string::npos) {
        std::string id = task.path().filename();
        out.insert(id.substr(0, id.rfind('-')));
      }
    }
    return out;
  }

  Sandbox box_{ADHOC_BINARY};
};

TEST_F(UblogTest, TheSeedsLifecycle) {
  // brian-test at backend v1.0.0 and frontend v2.0.0 (envs/brian-test.toml).
  CommandResult up = box_.Adhoc({"up", "brian-test"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("http://brian-test.localhost:"), std::string::npos) << up.output;
  const std::string env = "brian-test";

  auto health = box_.Http(env, "GET", "/api/health-check/");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Json(health), json::parse(R"({"message": "OK"})"));
  EXPECT_EQ(Json(box_.Http(env, "GET", "/api/version/"))["version"], "v1.0.0");
  EXPECT_EQ(Json(box_.Http(env, "GET", "/api/drf/fbv/posts/"))["count"], 20)
      << "the after-create task made the sample posts";

  // Create a post with the API, read it back; the worker processes it.
  auto login = box_.Http(env, "POST", "/api/auth/token/",
                         R"({"email": "demo@example.com", "password": "demo"})",
                         {{"Content-Type", "application/json"}});
  ASSERT_EQ(login.status, 200) << login.body;
  std::string token = Json(login)["token"];
  std::map<std::string, std::string> auth = {{"Authorization", "Token " + token},
                                             {"Content-Type", "application/json"}};
  auto created = box_.Http(env, "POST", "/api/drf/fbv/posts/",
                           R"({"body": "Made by the end-to-end test"})", auth);
  ASSERT_EQ(created.status, 201) << created.body;
  int id = Json(created)["id"];
  std::string post_path = "/api/drf/fbv/posts/" + std::to_string(id) + "/";
  EXPECT_EQ(Json(box_.Http(env, "GET", post_path))["body"], "Made by the end-to-end test");
  auto processed = box_.WaitFor(env, post_path, 60, [](const HttpAnswer& a) {
    return a.status == 200 && !Json(a)["processed_at"].is_null();
  });
  EXPECT_FALSE(Json(processed)["processed_at"].is_null()) << "the Celery worker did its task";

  // The admin's login page, the SPA and its fallback, collectstatic's files via the router.
  EXPECT_EQ(box_.Http(env, "GET", "/admin/login/").status, 200);
  auto index = box_.Http(env, "GET", "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("μblog"), std::string::npos);
  EXPECT_EQ(box_.Http(env, "GET", "/posts/" + std::to_string(id)).status, 200);
  EXPECT_EQ(box_.Http(env, "GET", "/static/admin/css/base.css").status, 200);

  // Beat's heartbeat advances (every 10 s).
  auto first = box_.WaitFor(env, "/api/heartbeat/", 40, [](const HttpAnswer& a) {
    return a.status == 200 && Json(a)["count"].get<int>() > 0;
  });
  int beats = Json(first)["count"].get<int>();
  ASSERT_GT(beats, 0);
  auto later = box_.WaitFor(env, "/api/heartbeat/", 40, [&](const HttpAnswer& a) {
    return a.status == 200 && Json(a)["count"].get<int>() > beats;
  });
  EXPECT_GT(Json(later)["count"].get<int>(), beats);

  // μblog's image names its python: gunicorn (a script whose #! names it), the worker and beat
  // (`python3 -m celery`) were forked from the release's fork server, and work as shown above.
  EXPECT_EQ(ForkedServices(env), (std::set<std::string>{"beat", "default", "gunicorn"}));

  // One-off tasks, a shell in the service's environment, the migration's log.
  CommandResult migrate = box_.Adhoc({"run", env, "migrate"});
  EXPECT_EQ(migrate.exit_code, 0) << migrate.output;
  EXPECT_NE(migrate.output.find("No migrations to apply"), std::string::npos) << migrate.output;
  CommandResult shell =
      box_.Adhoc({"exec", env, "gunicorn", "--", "/usr/bin/python3", "manage.py", "shell", "-c",
                  "from blog.models import Post; print(Post.objects.get(id=" + std::to_string(id) +
                      ").body)"});
  EXPECT_EQ(shell.exit_code, 0) << shell.output;
  EXPECT_NE(shell.output.find("Made by the end-to-end test"), std::string::npos) << shell.output;
  CommandResult logs = box_.Adhoc({"logs", env, "migrate"});
  EXPECT_EQ(logs.exit_code, 0) << logs.output;
  EXPECT_NE(logs.output.find("Applying blog.0001_initial"), std::string::npos) << logs.output;

  // A second environment, alpha, at v1.1.0 (total_views, with its migration) side by side.
  CommandResult made =
      box_.Adhoc({"new", "alpha", "--version", "backend=v1.1.0", "--version", "frontend=v2.1.0"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  CommandResult up2 = box_.Adhoc({"up", "alpha"});
  ASSERT_EQ(up2.exit_code, 0) << up2.output;
  EXPECT_NE(up2.output.find("0002_post_total_views"), std::string::npos) << up2.output;
  EXPECT_EQ(Json(box_.Http("alpha", "GET", "/api/version/"))["version"], "v1.1.0");
  json alpha_posts = Json(box_.Http("alpha", "GET", "/api/drf/fbv/posts/"));
  EXPECT_EQ(alpha_posts["count"], 20) << "alpha has its own data, without brian-test's post";
  for (const auto& p : alpha_posts["results"]) EXPECT_NE(p["body"], "Made by the end-to-end test");
  int alpha_id = alpha_posts["results"][0]["id"];
  json viewed =
      Json(box_.Http("alpha", "GET", "/api/drf/fbv/posts/" + std::to_string(alpha_id) + "/"));
  EXPECT_TRUE(viewed.contains("total_views")) << viewed;
  EXPECT_EQ(Json(box_.Http(env, "GET", "/api/version/"))["version"], "v1.0.0")
      << "brian-test still runs its own version";

  // Destroy both: nothing of either remains.
  for (const std::string name : {"brian-test", "alpha"}) {
    CommandResult d = box_.Adhoc({"destroy", name});
    EXPECT_EQ(d.exit_code, 0) << d.output;
    ExpectNothingLeftOf(name);
  }
  EXPECT_TRUE(box_.AdhocJson({"ls"})["environments"].empty());
  // No environment uses a release any more: their fork servers stay for their grace period
  // (the next environment on it would start warm), and gc takes them at once.
  EXPECT_FALSE(box_.HomeProcesses("fork_server.py").empty());
  CommandResult gc = box_.Adhoc({"gc"});
  EXPECT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_NE(gc.output.find("fork-server"), std::string::npos) << gc.output;
  EXPECT_TRUE(box_.HomeProcesses("fork_server.py").empty());
  std::error_code ec;
  for (auto& e : fs::directory_iterator(box_.home() / "forks", ec))
    EXPECT_FALSE(e.is_directory()) << e.path() << ": a fork server's folder is left";
}

// Steady requests through the router while something happens: every answer that is not a 200
// is counted, and the first time each backend and frontend version was seen is kept.
class Traffic {
 public:
  Traffic(const Sandbox& box, std::string env) : box_(box), env_(std::move(env)) {
    worker_ = std::thread([this] { Run(); });
  }
  ~Traffic() { Stop(); }
  void Stop() {
    stop_ = true;
    if (worker_.joinable()) worker_.join();
  }
  int requests() const { return requests_; }
  int failures() const { return failures_; }
  std::vector<std::string> failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }
  // When `version` was first served (system clock, ms), 0 when never.
  long long FirstSeen(const std::string& version) {
    std::lock_guard lock(mu_);
    return first_seen_.count(version) ? first_seen_[version] : 0;
  }

 private:
  void Run() {
    const char* paths[] = {"/api/health-check/", "/api/version/", "/", "/version.json",
                           "/api/drf/fbv/posts/"};
    for (int i = 0; !stop_; ++i) {
      std::string path = paths[i % 5];
      HttpAnswer a = box_.Http(env_, "GET", path);
      ++requests_;
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      std::lock_guard lock(mu_);
      if (a.status != 200) {
        ++failures_;
        failed_.push_back(path + " -> " + std::to_string(a.status) + " " + a.body.substr(0, 200));
        continue;
      }
      json j = Json(a);
      if (j.is_object() && j.contains("version") && j["version"].is_string())
        first_seen_.try_emplace(j["version"].get<std::string>(), now);
    }
  }

  const Sandbox& box_;
  std::string env_;
  std::thread worker_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0}, failures_{0};
  std::mutex mu_;
  std::vector<std::string> failed_;
  std::map<std::string, long long> first_seen_;
};

// The time (ms since the epoch) of the first log line of `process` in `env` holding `needle`.
long long FirstLogLine(const Sandbox& box, const std::string& env, const std::string& process,
                       const std::string& needle) {
  // `logs --json` prints one JSON object per log line.
  CommandResult r = box.Adhoc({"--json", "logs", env, process, "--tail", "10000"});
  std::istringstream in(r.output);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("line", "").find(needle) != std::string::npos)
      return j.value("time", 0LL);
  }
  return 0;
}

TEST_F(UblogTest, DeploysRollUnderLoadWithoutAFailedRequestAndStopAtAFailingMigration) {
  const std::string env = "brian-test";
  CommandResult up = box_.Adhoc({"up", env});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  ASSERT_EQ(Json(box_.Http(env, "GET", "/api/version/"))["version"], "v1.0.0");

  {
    // Backend v1.0.0 -> v1.1.0: its migration first, then each service rolled.
    Traffic traffic(box_, env);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CommandResult deploy = box_.Adhoc({"deploy", env, "backend=v1.1.0"});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    traffic.Stop();
    ASSERT_EQ(deploy.exit_code, 0) << deploy.output;
    EXPECT_NE(deploy.output.find("Applying blog.0002_post_total_views... OK"), std::string::npos)
        << deploy.output;
    EXPECT_NE(deploy.output.find("backend v1.0.0 -> v1.1.0"), std::string::npos) << deploy.output;
    EXPECT_EQ(traffic.failures(), 0) << ::testing::PrintToString(traffic.failed());
    EXPECT_GT(traffic.requests(), 20);
    long long migrated = FirstLogLine(box_, env, "migrate", "Applying blog.0002_post_total_views");
    long long served = traffic.FirstSeen("v1.1.0");
    ASSERT_GT(migrated, 0);
    ASSERT_GT(served, 0) << "v1.1.0 was never served during the deploy";
    EXPECT_LT(migrated, served) << "the migration ran before v1.1.0 served its first request";
  }
  EXPECT_EQ(Json(box_.Http(env, "GET", "/api/version/"))["version"], "v1.1.0");
  // A later `up` keeps the deployed version: the env file still says v1.0.0 (ignore_changes).
  CommandResult plan = box_.Adhoc({"plan", env});
  EXPECT_NE(plan.output.find("deployed by `adhoc deploy`"), std::string::npos) << plan.output;
  EXPECT_NE(plan.output.find("no changes"), std::string::npos) << plan.output;

  {
    // A version whose migration fails: the deploy stops there, nothing rolls, v1.1.0 serves.
    Traffic traffic(box_, env);
    CommandResult broken = box_.Adhoc({"deploy", env, "backend=v1.2.0-broken"});
    traffic.Stop();
    EXPECT_EQ(broken.exit_code, 1) << broken.output;
    EXPECT_NE(broken.output.find("task migrate"), std::string::npos) << broken.output;
    EXPECT_NE(broken.output.find("this migration fails on purpose"), std::string::npos)
        << broken.output;
    EXPECT_NE(broken.output.find("still runs what it ran before"), std::string::npos)
        << broken.output;
    EXPECT_EQ(traffic.failures(), 0) << ::testing::PrintToString(traffic.failed());
    EXPECT_EQ(traffic.FirstSeen("v1.2.0-broken"), 0);
  }
  EXPECT_EQ(Json(box_.Http(env, "GET", "/api/version/"))["version"], "v1.1.0");
  json status = box_.AdhocJson({"status", env});
  EXPECT_EQ(status["status"], "running") << status;
  EXPECT_EQ(status["last_operation"]["kind"], "deploy") << status;
  EXPECT_EQ(status["last_operation"]["status"], "failed") << status;

  {
    // Frontend v2.0.0 -> v2.1.0, written into the env file.
    Traffic traffic(box_, env);
    CommandResult deploy = box_.Adhoc({"deploy", env, "frontend=v2.1.0", "--write"});
    traffic.Stop();
    ASSERT_EQ(deploy.exit_code, 0) << deploy.output;
    EXPECT_EQ(traffic.failures(), 0) << ::testing::PrintToString(traffic.failed());
    EXPECT_NE(deploy.output.find("service web-ui"), std::string::npos) << deploy.output;
    EXPECT_EQ(deploy.output.find("service gunicorn"), std::string::npos) << deploy.output;
  }
  EXPECT_EQ(Json(box_.Http(env, "GET", "/version.json"))["version"], "2.1.0");
  std::ifstream env_file(box_.repo() / "envs/brian-test.toml");
  std::string text((std::istreambuf_iterator<char>(env_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("frontend = \"v2.1.0\""), std::string::npos) << text;
  EXPECT_NE(text.find("# A developer's environment"), std::string::npos) << "comments are kept";
}

}  // namespace
}  // namespace adhoc::e2e
