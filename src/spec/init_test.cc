#include "spec/init.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "spec/loader.h"

namespace adhoc::spec {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "adhoc-init-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void Write(const std::string& relative, const std::string& text) const {
    fs::create_directories((path_ / relative).parent_path());
    std::ofstream(path_ / relative) << text;
  }

 private:
  fs::path path_;
};

// A small Django + Celery + frontend tree shaped like the seed's μblog.
void WriteFakeApp(const TempDir& dir) {
  dir.Write("backend/manage.py",
            "#!/usr/bin/python3\nimport os\n"
            "os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")\n");
  dir.Write("backend/mysite/__init__.py", "");
  dir.Write("backend/mysite/wsgi.py", "application = None\n");
  dir.Write("backend/mysite/settings.py",
            "import os\n"
            "SECRET_KEY = os.environ.get(\"SECRET_KEY\", \"x\")\n"
            "DATABASES = {\"default\": {\"ENGINE\": \"django.db.backends.postgresql\",\n"
            "  \"HOST\": os.environ.get(\"POSTGRES_SERVICE_HOST\"),\n"
            "  \"NAME\": os.environ[\"POSTGRES_NAME\"],\n"
            "  \"PASSWORD\": os.getenv(\"POSTGRES_PASSWORD\")}}\n"
            "CELERY_BROKER_URL = os.environ.get(\"REDIS_URL\")\n"
            "SENTRY = os.environ.get(\"SENTRY_DSN\")\n"
            "TAG = os.environ.get(\"SOURCE_TAG\")\n"
            "STATIC_URL = \"/static/\"\nMEDIA_URL = \"/media/\"\n");
  dir.Write("backend/mysite/urls.py",
            "urlpatterns = [path(\"api/\", include(x)), path(\"admin/\", admin.site.urls)]\n");
  dir.Write("backend/mysite/celery_app.py", "from celery import Celery\ncelery = Celery(\"m\")\n");
  dir.Write("web/package.json", "{\"scripts\": {\"build\": \"node build.js\"}}\n");
  dir.Write("web/package-lock.json", "{}\n");
  dir.Write("web/node_modules/x/package.json", "{}\n");
}

TEST(InitTest, DetectsDjangoCeleryFrontendAndLoadsClean) {
  TempDir dir;
  WriteFakeApp(dir);
  Result<std::string> text = DetectProject(dir.path());
  ASSERT_TRUE(text.ok()) << text.error().message();
  auto loaded = ParseProject(*text);
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics) << *text;
  EXPECT_TRUE(loaded.diagnostics.empty()) << FormatDiagnostics(loaded.diagnostics);
  const Project& p = loaded.value;

  ASSERT_EQ(p.images.size(), 2u);
  EXPECT_EQ(p.images[0].path, "backend");
  EXPECT_EQ(p.images[1].path, "web");
  EXPECT_EQ(p.images[1].build, (std::vector<std::string>{"npm ci", "npm run build"}));
  EXPECT_TRUE(p.postgres.has_value());
  EXPECT_TRUE(p.redis.has_value());
  ASSERT_TRUE(p.static_files.has_value());
  EXPECT_EQ(p.static_files->routes.size(), 2u);

  const Service* gunicorn = p.FindService("gunicorn");
  ASSERT_NE(gunicorn, nullptr);
  EXPECT_EQ(gunicorn->command, "gunicorn -b {bind} mysite.wsgi");
  EXPECT_EQ(gunicorn->port, 8000);
  ASSERT_EQ(gunicorn->routes.size(), 2u);
  EXPECT_EQ(gunicorn->routes[0].pattern, "/api/*");
  EXPECT_EQ(gunicorn->routes[1].pattern, "/admin/*");
  const Service* worker = p.FindService("worker");
  ASSERT_NE(worker, nullptr);
  EXPECT_NE(
      worker->command.find("/usr/bin/python3 -m celery --app=mysite.celery_app:celery worker"),
      std::string::npos)
      << worker->command;
  ASSERT_NE(p.FindService("beat"), nullptr);
  const Service* web_ui = p.FindService("web-ui");
  ASSERT_NE(web_ui, nullptr);
  EXPECT_EQ(web_ui->image, "frontend");
  EXPECT_EQ(web_ui->routes[0].pattern, "/*");

  ASSERT_NE(p.FindTask("migrate"), nullptr);
  EXPECT_EQ(p.FindTask("migrate")->command, "/usr/bin/python3 manage.py migrate --noinput");
  EXPECT_EQ(p.FindTask("migrate")->before, Task::Before::kDeploy);
  ASSERT_NE(p.FindTask("collectstatic"), nullptr);

  std::map<std::string, std::string> env;
  for (const EnvVar& v : p.env) env[v.name] = v.value;
  EXPECT_EQ(env["DJANGO_SETTINGS_MODULE"], "mysite.settings");
  EXPECT_EQ(env["SECRET_KEY"], "{random.secret_key}");
  EXPECT_EQ(env["POSTGRES_SERVICE_HOST"], "{postgres.host}");
  EXPECT_EQ(env["POSTGRES_NAME"], "{postgres.database}");
  EXPECT_EQ(env["POSTGRES_PASSWORD"], "{postgres.password}");
  EXPECT_EQ(env["REDIS_URL"], "{redis.url}");
  EXPECT_EQ(env["STATIC_ROOT"], "{static}/static");
  EXPECT_EQ(env["SOURCE_TAG"], "{version.backend}");
  EXPECT_EQ(env.count("SENTRY_DSN"), 0u);
  EXPECT_NE(text->find("not set here: SENTRY_DSN"), std::string::npos);
}

TEST(InitTest, PlainDjangoAtTheRoot) {
  TempDir dir;
  dir.Write("manage.py", "import os\n");
  dir.Write("site1/settings.py", "DATABASES = {'default': {'ENGINE': 'sqlite3'}}\n");
  dir.Write("site1/wsgi.py", "");
  Result<std::string> text = DetectProject(dir.path());
  ASSERT_TRUE(text.ok()) << text.error().message();
  auto loaded = ParseProject(*text);
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics) << *text;
  const Project& p = loaded.value;
  EXPECT_EQ(p.images.size(), 1u);
  EXPECT_EQ(p.images[0].path, ".");
  EXPECT_FALSE(p.postgres.has_value());
  EXPECT_FALSE(p.redis.has_value());
  EXPECT_EQ(p.FindService("worker"), nullptr);
  EXPECT_EQ(p.FindService("gunicorn")->routes[0].pattern, "/*");
  EXPECT_EQ(p.FindTask("migrate")->command, "python3 manage.py migrate --noinput");
}

TEST(InitTest, NoDjangoIsNotFound) {
  TempDir dir;
  dir.Write("manage.py", "");  // no settings package with wsgi.py beside it
  Result<std::string> text = DetectProject(dir.path());
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().kind(), ErrorKind::kNotFound);
  EXPECT_NE(text.error().message().find("no Django project"), std::string::npos);
  EXPECT_FALSE(DetectProject(dir.path() / "missing").ok());
}

}  // namespace
}  // namespace adhoc::spec
