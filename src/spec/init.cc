#include "spec/init.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "spec/env_file_writer.h"
#include "spec/names.h"

namespace adhoc::spec {

namespace {

namespace fs = std::filesystem;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool Skipped(const fs::path& dir) {
  std::string name = dir.filename().string();
  return name.empty() || name[0] == '.' || name == "node_modules" || name == "venv" ||
         name == "__pycache__" || name == "dist" || name == "build";
}

// Folders under `dir` (itself included) up to `depth` levels down, shallowest first.
std::vector<fs::path> Folders(const fs::path& dir, int depth) {
  std::vector<fs::path> out = {dir};
  std::vector<fs::path> level = {dir};
  for (int d = 0; d < depth; ++d) {
    std::vector<fs::path> next;
    for (const fs::path& parent : level) {
      std::error_code ec;
      std::vector<fs::path> children;
      for (const auto& entry : fs::directory_iterator(parent, ec))
        if (entry.is_directory(ec) && !Skipped(entry.path())) children.push_back(entry.path());
      std::sort(children.begin(), children.end());
      next.insert(next.end(), children.begin(), children.end());
    }
    out.insert(out.end(), next.begin(), next.end());
    level = std::move(next);
  }
  return out;
}

std::string Relative(const fs::path& path, const fs::path& root) {
  std::string r = fs::relative(path, root).generic_string();
  return r.empty() ? "." : r;
}

// [a-z][a-z0-9-]*, at most 30: a usable name made from `text`, or `fallback`.
std::string Sanitized(const std::string& text, const std::string& fallback) {
  std::string out;
  for (char c : text) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9'))
      out += l;
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && (out.back() == '-' || out.size() > kMaxObjectNameLength)) out.pop_back();
  if (!ValidateObjectName("project", out).ok()) return fallback;
  return out;
}

struct Django {
  fs::path folder;      // where manage.py is
  std::string package;  // the settings package: "backend"
  std::string python = "python3";
  std::string settings;                      // settings.py text
  std::string urls;                          // the package's urls.py text
  std::optional<std::string> celery_module;  // "backend.celery_app"
  std::string celery_app = "app";
};

std::optional<Django> FindDjango(const fs::path& root) {
  for (const fs::path& folder : Folders(root, 2)) {
    if (!fs::is_regular_file(folder / "manage.py")) continue;
    Django d;
    d.folder = folder;
    std::string manage = ReadText(folder / "manage.py");
    if (manage.rfind("#!", 0) == 0) {
      std::string shebang = manage.substr(2, manage.find('\n') - 2);
      if (shebang.find("python") != std::string::npos &&
          shebang.find("env ") == std::string::npos && shebang.find(' ') == std::string::npos)
        d.python = shebang;
    }
    // Prefer the package manage.py names; else any subfolder with settings + wsgi.
    std::vector<std::string> candidates;
    std::smatch m;
    if (std::regex_search(
            manage, m,
            std::regex(R"(DJANGO_SETTINGS_MODULE["'],\s*["']([A-Za-z0-9_]+)\.settings)")))
      candidates.push_back(m[1]);
    for (const fs::path& sub : Folders(folder, 1)) candidates.push_back(sub.filename().string());
    for (const std::string& package : candidates) {
      fs::path p = folder / package;
      bool settings = fs::is_regular_file(p / "settings.py") || fs::is_directory(p / "settings");
      if (!settings || !fs::is_regular_file(p / "wsgi.py")) continue;
      d.package = package;
      d.settings = fs::is_regular_file(p / "settings.py")
                       ? ReadText(p / "settings.py")
                       : ReadText(p / "settings" / "__init__.py");
      if (fs::is_directory(p / "settings"))
        for (const auto& entry : fs::directory_iterator(p / "settings"))
          if (entry.path().extension() == ".py") d.settings += ReadText(entry.path());
      d.urls = ReadText(p / "urls.py");
      for (const char* module : {"celery_app", "celery"}) {
        fs::path file = p / (std::string(module) + ".py");
        if (!fs::is_regular_file(file)) continue;
        d.celery_module = package + "." + module;
        std::smatch app;
        std::string text = ReadText(file);
        if (std::regex_search(text, app, std::regex(R"((\w+)\s*=\s*Celery\()")))
          d.celery_app = app[1];
        break;
      }
      return d;
    }
  }
  return std::nullopt;
}

// Environment variable names the settings read (os.environ.get / os.environ[] / getenv).
std::vector<std::string> EnvNamesRead(const std::string& settings) {
  std::vector<std::string> names;
  std::regex pattern(
      R"((?:environ\.get|environ\[|getenv|env\.str|env\.int|env)\(?\s*["']([A-Z][A-Z0-9_]*)["'])");
  for (auto it = std::sregex_iterator(settings.begin(), settings.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    std::string name = (*it)[1];
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

bool Has(const std::string& name, const char* word) { return name.find(word) != std::string::npos; }

// The placeholder for a variable the settings read, or empty when unknown.
std::string ValueFor(const std::string& name, bool postgres, bool redis) {
  bool pg_name = Has(name, "POSTGRES") || Has(name, "DB_") || Has(name, "DATABASE");
  if (postgres && pg_name) {
    if (Has(name, "URL")) return "{postgres.url}";
    if (Has(name, "HOST")) return "{postgres.host}";
    if (Has(name, "PORT")) return "{postgres.port}";
    if (Has(name, "PASSWORD")) return "{postgres.password}";
    if (Has(name, "USER")) return "{postgres.user}";
    if (Has(name, "NAME") || name == "POSTGRES_DB") return "{postgres.database}";
  }
  if (redis && Has(name, "REDIS")) {
    if (Has(name, "URL")) return "{redis.url}";
    if (Has(name, "HOST")) return "{redis.host}";
    if (Has(name, "PORT")) return "{redis.port}";
    if (Has(name, "PASSWORD")) return "{redis.password}";
  }
  if (redis &&
      (name == "CELERY_BROKER_URL" || name == "BROKER_URL" || name == "CELERY_RESULT_BACKEND"))
    return "{redis.url}";
  if (name == "SECRET_KEY" || name == "DJANGO_SECRET_KEY") return "{random.secret_key}";
  if (name == "ALLOWED_HOSTS" || name == "DJANGO_ALLOWED_HOSTS") return "{hostname}";
  if (name == "STATIC_ROOT") return "{static}/static";
  if (name == "MEDIA_ROOT") return "{static}/media";
  if (name == "SOURCE_TAG" || name == "APP_VERSION" || name == "GIT_SHA")
    return "{version.backend}";
  if (name == "FRONTEND_URL" || name == "SITE_URL" || name == "BASE_URL") return "{url}";
  return "";
}

// Top-level URL prefixes of the project's urls.py: path("api/", ...) -> "/api/*".
std::vector<std::string> BackendRoutes(const std::string& urls) {
  std::vector<std::string> routes;
  std::regex pattern(R"((?:path|re_path|url)\(\s*r?["']\^?([A-Za-z0-9_-]+)/)");
  for (auto it = std::sregex_iterator(urls.begin(), urls.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    std::string route = "/" + std::string((*it)[1]) + "/*";
    if (std::find(routes.begin(), routes.end(), route) == routes.end()) routes.push_back(route);
  }
  if (routes.empty()) routes = {"/api/*", "/admin/*"};
  return routes;
}

std::string List(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + TomlString(items[i]);
  return out + "]";
}

}  // namespace

Result<std::string> DetectProject(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("'" + dir.string() + "' is not a folder");
  std::optional<Django> django = FindDjango(dir);
  if (!django)
    return NotFound("no Django project in '" + dir.string() +
                    "': looked for a manage.py next to a settings package with a wsgi.py");

  // A frontend: a folder with a package.json other than the backend's.
  std::optional<fs::path> frontend;
  for (const fs::path& folder : Folders(dir, 1)) {
    if (folder == dir || folder == django->folder) continue;
    if (fs::is_regular_file(folder / "package.json")) {
      frontend = folder;
      break;
    }
  }

  const std::string& s = django->settings;
  bool postgres = Has(s, "postgresql") || Has(s, "psycopg") || Has(s, "POSTGRES");
  bool redis = Has(s, "redis") || Has(s, "REDIS") || django->celery_module.has_value();
  bool statics = Has(s, "STATIC_URL");
  bool media = Has(s, "MEDIA_URL");
  std::string backend_path = Relative(django->folder, dir);
  std::string project_name = Sanitized(fs::weakly_canonical(dir).filename().string(), "app");

  std::string out;
  out += "# Written by `adhoc init`: a starting point, to be read and adjusted.\n";
  out += "name   = " + TomlString(project_name) + "\n";
  out += "domain = \"localhost\"\n\n";
  out += "[images.backend]\npath  = " + TomlString(backend_path) + "\nbuild = []\n";
  if (fs::is_regular_file(django->folder / "Dockerfile"))
    out += "dockerfile = " + TomlString(Relative(django->folder / "Dockerfile", dir)) + "\n";
  if (frontend) {
    bool lock = fs::is_regular_file(*frontend / "package-lock.json");
    bool build_script = Has(ReadText(*frontend / "package.json"), "\"build\"");
    std::vector<std::string> build = {lock ? "npm ci" : "npm install"};
    if (build_script) build.push_back("npm run build");
    out += "\n[images.frontend]\npath  = " + TomlString(Relative(*frontend, dir)) +
           "\nbuild = " + List(build) + "\n";
    if (fs::is_regular_file(*frontend / "Dockerfile"))
      out += "dockerfile = " + TomlString(Relative(*frontend / "Dockerfile", dir)) + "\n";
  }
  if (postgres) out += "\n[postgres]\ndatabase = \"{env}-db\"\n";
  if (redis) out += "\n[redis]\n";
  if (statics || media) {
    std::vector<std::string> routes;
    if (statics) routes.push_back("/static/*");
    if (media) routes.push_back("/media/*");
    out += "\n[static]\nroutes = " + List(routes) + "\n";
  }

  out += "\n[env]\n";
  out += "DJANGO_SETTINGS_MODULE = " + TomlString(django->package + ".settings") + "\n";
  std::set<std::string> written = {"DJANGO_SETTINGS_MODULE"};
  std::vector<std::string> unknown;
  for (const std::string& name : EnvNamesRead(s)) {
    std::string value = ValueFor(name, postgres, redis);
    if (value.empty()) {
      unknown.push_back(name);
      continue;
    }
    out += name + " = " + TomlString(value) + "\n";
    written.insert(name);
  }
  auto add = [&](const std::string& name, const std::string& value) {
    if (written.insert(name).second) out += name + " = " + TomlString(value) + "\n";
  };
  if (postgres) add("DATABASE_URL", "{postgres.url}");
  if (redis) add("REDIS_URL", "{redis.url}");
  if (statics) add("STATIC_ROOT", "{static}/static");
  if (media) add("MEDIA_ROOT", "{static}/media");
  add("PYTHONUNBUFFERED", "1");
  if (!unknown.empty()) {
    out += "# Also read by the settings, not set here:";
    for (const std::string& name : unknown) out += " " + name;
    out += "\n";
  }

  const std::string& py = django->python;
  out += "\n[services.gunicorn]\nimage   = \"backend\"\n";
  out += "command = " + TomlString("gunicorn -b {bind} " + django->package + ".wsgi") + "\n";
  out += "port    = 8000\n";
  out +=
      "health  = { path = \"/\", matcher = \"200-499\" }   # any answer from Django; a real "
      "health-check URL is better\n";
  std::vector<std::string> backend_routes =
      frontend ? BackendRoutes(django->urls) : std::vector<std::string>{"/*"};
  out += "routes  = " + List(backend_routes) + "\n";

  if (django->celery_module) {
    std::string app = *django->celery_module + ":" + django->celery_app;
    out += "\n[services.worker]\nimage   = \"backend\"\n";
    out += "command = " + TomlString(py + " -m celery --app=" + app + " worker --loglevel=INFO") +
           "\n";
    out += "stop_timeout = \"30s\"                # the running job finishes\n";
    out += "\n[services.beat]\nimage   = \"backend\"\n";
    out += "command = " +
           TomlString(py + " -m celery --app=" + app +
                      " beat -s {taskdir}/celerybeat-schedule --loglevel=INFO") +
           "\n";
    out += "count   = 1                         # never two at once\n";
  }

  if (frontend) {
    bool has_template = fs::is_regular_file(*frontend / "nginx.conf.in");
    out += "\n[services.web-ui]\nimage     = \"frontend\"\n";
    out += "templates = [\"nginx.conf.in\"]";
    out += has_template ? "\n" : "   # to write: nginx listening on {bind}, serving the build\n";
    out += "command   = \"nginx -p {taskdir} -e stderr -c nginx.conf -g 'daemon off;'\"\n";
    out += "port      = 3000\nhealth    = \"/\"\nroutes    = [\"/*\"]\nstop_signal = \"QUIT\"\n";
  }

  out += "\n[tasks.migrate]\nimage   = \"backend\"\n";
  out += "command = " + TomlString(py + " manage.py migrate --noinput") + "\n";
  out += "before  = \"deploy\"\n";
  if (statics) {
    out += "\n[tasks.collectstatic]\nimage   = \"backend\"\n";
    out += "command = " + TomlString(py + " manage.py collectstatic --noinput") + "\n";
    out += "before  = \"deploy\"\n";
  }
  return out;
}

}  // namespace adhoc::spec
