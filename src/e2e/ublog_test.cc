// The seed's lifecycle on μblog (examples/ublog), with real PostgreSQL, Redis, gunicorn, Celery
// worker and beat, nginx and the router: what the blog post's team does with ad hoc
// environments, end to end, through the command line and HTTP.
#include <gtest/gtest.h>

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
}

}  // namespace
}  // namespace adhoc::e2e
