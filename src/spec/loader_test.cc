#include "spec/loader.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace adhoc::spec {
namespace {

namespace fs = std::filesystem;

// A minimal valid project; tests append or replace parts of it.
const char kBase[] = R"(name = "app"

[images.backend]
path = "backend"

[services.web]
image = "backend"
command = "gunicorn -b {bind} app.wsgi"
port = 8000
)";

std::vector<std::string> Lines(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> out;
  for (const Diagnostic& d : diagnostics) out.push_back(d.ToString());
  return out;
}

std::vector<std::string> Errors(const std::string& text) {
  std::vector<Diagnostic> errors;
  for (const Diagnostic& d : ParseProject(text).diagnostics)
    if (d.is_error()) errors.push_back(d);
  return Lines(errors);
}

std::vector<std::string> EnvErrors(const std::string& text, const Project* project,
                                   const std::string& name = "demo") {
  return Lines(ParseEnvFile(text, name, "envs/" + name + ".toml", project).diagnostics);
}

Project BaseProject() {
  auto loaded = ParseProject(std::string(kBase) + "[postgres]\n");
  EXPECT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  return loaded.value;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "adhoc-spec-XXXXXX").string();
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

TEST(LoaderTest, BaseIsValidWithDefaults) {
  auto loaded = ParseProject(kBase);
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_TRUE(loaded.diagnostics.empty());
  const Project& p = loaded.value;
  EXPECT_EQ(p.domain, "localhost");
  ASSERT_EQ(p.services.size(), 1u);
  const Service& s = p.services[0];
  EXPECT_EQ(s.count, 1);
  EXPECT_EQ(s.cpu, 1024);
  EXPECT_EQ(s.memory, 2048);
  EXPECT_EQ(s.stop_signal, "TERM");
  EXPECT_EQ(s.stop_timeout, std::chrono::seconds(10));
  EXPECT_FALSE(s.health.has_value());
  EXPECT_EQ(s.where.line, 6);
  EXPECT_EQ(s.where.file, "adhoc.toml");
}

TEST(LoaderTest, TomlSyntaxErrorWithLineAndColumn) {
  auto errors = Errors("name = \"app\"\nport = [1,\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("adhoc.toml:2:", 0), 0u) << errors[0];
  EXPECT_NE(errors[0].find("TOML syntax"), std::string::npos);
}

TEST(LoaderTest, UnknownKeyWithSuggestion) {
  std::string text = kBase;
  text.replace(text.find("command ="), 7, "comand");
  auto errors = Errors(text);
  ASSERT_EQ(errors.size(), 2u) << errors[0];
  EXPECT_EQ(errors[0], "adhoc.toml:6:1: services.web.command: missing, expected a string");
  EXPECT_EQ(errors[1],
            "adhoc.toml:8:1: services.web.comand: unknown key 'comand' in [services.web] (did "
            "you mean 'command'?)");
  auto far = Errors("zebra = 1\n" + std::string(kBase));
  ASSERT_EQ(far.size(), 1u);
  EXPECT_EQ(far[0], "adhoc.toml:1:1: zebra: unknown key 'zebra' in the top level of adhoc.toml");
}

TEST(LoaderTest, WrongTypes) {
  std::string text = kBase;
  text.replace(text.find("port = 8000"), 11, "port = \"8000\"");
  EXPECT_EQ(Errors(text), std::vector<std::string>{
                              "adhoc.toml:9:8: services.web.port: expected an integer, got a "
                              "string"});
  EXPECT_EQ(Errors(std::string(kBase) + "routes = \"/x\"\n"),
            std::vector<std::string>{
                "adhoc.toml:10:10: services.web.routes: expected an array of strings, got a "
                "string"});
  EXPECT_EQ(Errors(std::string(kBase) + "routes = [\"/x\", 3]\n"),
            std::vector<std::string>{
                "adhoc.toml:10:17: services.web.routes[1]: expected a string, got an integer"});
  EXPECT_EQ(Errors(std::string(kBase) + "stop_timeout = 30\n"),
            std::vector<std::string>{
                "adhoc.toml:10:16: services.web.stop_timeout: expected a duration string like "
                "\"30s\" or \"10m\", got an integer"});
}

TEST(LoaderTest, BadDurationNamesTheValue) {
  auto errors = Errors(std::string(kBase) + "stop_timeout = \"10x\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("adhoc.toml:10:16: services.web.stop_timeout: bad duration '10x'", 0),
            0u)
      << errors[0];
}

TEST(LoaderTest, MissingImageAndCommand) {
  auto errors = Errors(std::string(kBase) + "\n[tasks.migrate]\nbefore = \"deploy\"\n");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "adhoc.toml:11:1: tasks.migrate.image: missing, expected a string",
                        "adhoc.toml:11:1: tasks.migrate.command: missing, expected a string"}));
}

TEST(LoaderTest, UndefinedAndUnusedImages) {
  std::string text = kBase;
  text.replace(text.find("image = \"backend\""), 17, "image = \"backnd\"");
  auto errors = Errors(text);
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "adhoc.toml:3:9: images.backend: image 'backend' is used by no service "
                        "and no task",
                        "adhoc.toml:7:9: services.web.image: image 'backnd' is not defined in "
                        "[images] (did you mean 'backend'?)"}));
}

TEST(LoaderTest, DuplicateRoutesUnlessDifferentPriorities) {
  std::string two = std::string(kBase) +
                    "routes = [\"/api/*\"]\n"
                    "\n[services.other]\nimage = \"backend\"\ncommand = \"x\"\nport = 9000\n"
                    "routes = [\"/a\", \"/api/*\"]\n";
  EXPECT_EQ(Errors(two), std::vector<std::string>{
                             "adhoc.toml:16:17: services.other.routes[1]: duplicate route "
                             "'/api/*': also services.web.routes[0] (line 10); drop one, or give "
                             "the services different priorities"});
  std::string prioritized = two + "priority = 2\n";
  prioritized.insert(prioritized.find("routes = [\"/api/*\"]"), "priority = 1\n");
  EXPECT_TRUE(Errors(prioritized).empty()) << Errors(prioritized)[0];
  std::string same_priority = two + "priority = 1\n";
  same_priority.insert(same_priority.find("routes = [\"/api/*\"]"), "priority = 1\n");
  EXPECT_EQ(Errors(same_priority).size(), 1u);
  // [static] routes clash with services too.
  auto with_static =
      Errors(std::string(kBase) + "routes = [\"/static/*\"]\n[static]\nroutes = [\"/static/*\"]\n");
  ASSERT_EQ(with_static.size(), 1u);
  EXPECT_NE(with_static[0].find("static.routes[0]: duplicate route '/static/*'"), std::string::npos)
      << with_static[0];
}

TEST(LoaderTest, MalformedRoutes) {
  auto errors = Errors(std::string(kBase) +
                       "routes = [\"api/*\", \"/a b\", \"/x?y=1\", \"/a*\", \"/a/*/b\", \"/ok\", "
                       "\"/ok/*\", \"/*\"]\n");
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_NE(errors[0].find("services.web.routes[0]: route 'api/*' must start with '/'"),
            std::string::npos);
  EXPECT_NE(errors[1].find("routes[1]: route '/a b' must not contain spaces"), std::string::npos);
  EXPECT_NE(errors[2].find("routes[2]: route '/x?y=1' must not contain a query"),
            std::string::npos);
  EXPECT_NE(errors[3].find("routes[3]"), std::string::npos);
  EXPECT_NE(errors[4].find("routes[4]"), std::string::npos);
  auto loaded = ParseProject(std::string(kBase) + "routes = [\"/ok\", \"/ok/*\", \"/*\"]\n");
  ASSERT_TRUE(loaded.ok());
  const auto& routes = loaded.value.services[0].routes;
  EXPECT_EQ(routes[0].kind, Route::Kind::kExact);
  EXPECT_EQ(routes[1].kind, Route::Kind::kPrefix);
  EXPECT_EQ(routes[1].path, "/ok");
  EXPECT_EQ(routes[2].kind, Route::Kind::kCatchAll);
}

// The router matches requests by their normalized path and refuses any other pattern (with
// the whole environment's routes): the file says so instead.
TEST(LoaderTest, RoutesMustBeInNormalForm) {
  auto errors =
      Errors(std::string(kBase) +
             "routes = [\"/%61pi/*\", \"/a/./b\", \"/a/../b\", \"/a%2Fb\", \"/a%2fb\", "
             "\"/a%zz\", \"/a%2\", \"/a%c3%a9\", \"/a\\\\b\", \"/a%20b\", \"/caf%C3%A9/*\"]\n");
  ASSERT_EQ(errors.size(), 9u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("routes[0]: route '/%61pi/*' is not in the normal form requests are "
                           "matched in: '%61' (write 'a')"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("routes[1]: route '/a/./b' is not in the normal form requests are "
                           "matched in: a '.' segment"),
            std::string::npos)
      << errors[1];
  EXPECT_NE(errors[2].find("a '..' segment"), std::string::npos) << errors[2];
  EXPECT_NE(errors[3].find("an encoded '/'"), std::string::npos) << errors[3];
  EXPECT_NE(errors[4].find("an encoded '/'"), std::string::npos) << errors[4];
  EXPECT_NE(errors[5].find("a malformed percent-escape"), std::string::npos) << errors[5];
  EXPECT_NE(errors[6].find("a malformed percent-escape"), std::string::npos) << errors[6];
  EXPECT_NE(errors[7].find("lower-case hex in '%c3'"), std::string::npos) << errors[7];
  EXPECT_NE(errors[8].find("a backslash"), std::string::npos) << errors[8];
}

TEST(LoaderTest, RoutesAndHealthPathNeedAPort) {
  std::string text = kBase;
  text.erase(text.find("port = 8000"), 11);
  text.replace(text.find("{bind}"), 6, "0:1");
  auto errors = Errors(text + "routes = [\"/x\"]\nhealth = \"/h\"\n");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "adhoc.toml:10:11: services.web.routes[0]: routes need a port: service "
                        "'web' has none",
                        "adhoc.toml:11:10: services.web.health: a health path needs a port: "
                        "service 'web' has none (use a health command instead)"}));
  // A command health check is fine without a port.
  EXPECT_TRUE(Errors(text + "health = { command = \"celery inspect ping\" }\n").empty());
}

TEST(LoaderTest, HealthTableDefaultsAndValidation) {
  auto loaded = ParseProject(std::string(kBase) +
                             "health = { path = \"/h\", interval = \"3s\", matcher = \"200,302\" "
                             "}\n");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  const HealthCheck& h = *loaded.value.services[0].health;
  EXPECT_EQ(h.path, "/h");
  EXPECT_EQ(h.interval, std::chrono::seconds(3));
  EXPECT_EQ(h.timeout, std::chrono::seconds(5));
  EXPECT_EQ(h.healthy, 2);
  EXPECT_EQ(h.unhealthy, 3);
  EXPECT_EQ(h.start_timeout, std::chrono::seconds(60));
  EXPECT_TRUE(h.Matches(302));
  EXPECT_FALSE(h.Matches(301));
  auto defaults = ParseProject(std::string(kBase) + "health = \"/\"\n");
  EXPECT_TRUE(defaults.value.services[0].health->Matches(399));
  EXPECT_FALSE(defaults.value.services[0].health->Matches(404));
  auto errors = Errors(std::string(kBase) +
                       "health = { path = \"/h\", command = \"x\", healthy = 0, matcher = "
                       "\"2xx\", intervall = \"1s\" }\n");
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0],
            "adhoc.toml:10:10: services.web.health: give either path or command, not both");
  std::string all;
  for (const std::string& e : errors) all += e + "\n";
  EXPECT_NE(all.find("services.web.health.healthy: must be between 1 and 100, got 0"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("services.web.health.matcher: bad matcher '2xx'"), std::string::npos) << all;
  EXPECT_NE(all.find("services.web.health.intervall: unknown key 'intervall' in "
                     "[services.web.health] (did you mean 'interval'?)"),
            std::string::npos)
      << all;
}

TEST(LoaderTest, BadEnumValuesAndLimits) {
  auto errors = Errors(std::string(kBase) +
                       "stop_signal = \"STOP\"\ncount = -1\ncpu = 0\nmemory = -5\n"
                       "\n[tasks.m]\nimage = \"backend\"\ncommand = \"x\"\nbefore = \"create\"\n"
                       "after = \"deploy\"\ncache = \"redis\"\n");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "adhoc.toml:10:15: services.web.stop_signal: unknown signal 'STOP' "
                        "(expected one of TERM, INT, QUIT, HUP, KILL, USR1, USR2, WINCH)",
                        "adhoc.toml:11:9: services.web.count: must be between 0 and 1000, got -1",
                        "adhoc.toml:12:7: services.web.cpu: must be more than 0 (1/1024 core "
                        "units), got 0",
                        "adhoc.toml:13:10: services.web.memory: must be more than 0 (MiB), got -5",
                        "adhoc.toml:18:10: tasks.m.before: unknown value 'create' (the only value "
                        "is \"deploy\")",
                        "adhoc.toml:19:9: tasks.m.after: unknown value 'deploy' (the only value is "
                        "\"create\")",
                        "adhoc.toml:20:9: tasks.m.cache: unknown value 'redis' (\"database\" or "
                        "\"static\")"}));
  auto sig = ParseProject(std::string(kBase) + "stop_signal = \"SIGQUIT\"\n");
  EXPECT_EQ(sig.value.services[0].stop_signal, "QUIT");
  EXPECT_EQ(sig.value.services[0].stop_signal_number, 3);
}

TEST(LoaderTest, RedisMemoryDefaultsAndIsRead) {
  auto plain = ParseProject(std::string(kBase) + "\n[redis]\n");
  ASSERT_TRUE(plain.ok()) << FormatDiagnostics(plain.diagnostics);
  ASSERT_TRUE(plain.value.redis.has_value());
  EXPECT_EQ(plain.value.redis->memory, 64);
  EXPECT_EQ(plain.value.redis->where.line, 11);
  auto sized = ParseProject(std::string(kBase) + "\n[redis]\nmemory = 256\n");
  ASSERT_TRUE(sized.ok()) << FormatDiagnostics(sized.diagnostics);
  EXPECT_TRUE(sized.diagnostics.empty());
  EXPECT_EQ(sized.value.redis->memory, 256);
}

TEST(LoaderTest, RedisMemoryErrorsNameFileLineAndKey) {
  EXPECT_EQ(Errors(std::string(kBase) + "\n[redis]\nmemory = 2\n"),
            (std::vector<std::string>{
                "adhoc.toml:12:10: redis.memory: must be between 4 and 1048576 (MiB), got 2"}));
  EXPECT_EQ(Errors(std::string(kBase) + "\n[redis]\nmemory = \"64mb\"\n"),
            (std::vector<std::string>{
                "adhoc.toml:12:10: redis.memory: expected an integer, got a string"}));
  auto unknown = Errors(std::string(kBase) + "\n[redis]\nmaxmemory = 64\n");
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0].rfind("adhoc.toml:12:1: redis.maxmemory: unknown key 'maxmemory' in "
                             "[redis]",
                             0),
            0u)
      << unknown[0];
}

TEST(LoaderTest, InvalidEnvVarNamesAndValues) {
  auto errors = Errors(std::string(kBase) + "\n[env]\nGOOD = \"1\"\n1BAD = \"x\"\nNUM = 3\n");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "adhoc.toml:13:1: env.1BAD: invalid environment variable name '1BAD' "
                        "(letters, digits and '_', not starting with a digit)",
                        "adhoc.toml:14:7: env.NUM: expected a string, got an integer"}));
}

TEST(LoaderTest, UnknownPlaceholdersNamedWithTheirColumn) {
  auto errors =
      Errors(std::string(kBase) +
             "\n[env]\nA = \"{nope}\"\nB = \"{redis.url}\"\nC = \"{port}\"\n"
             "\n[tasks.t]\nimage = \"backend\"\ncommand = \"run {bind} {version.web}\"\n");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "adhoc.toml:12:6: env.A: unknown placeholder '{nope}'",
                        "adhoc.toml:13:6: env.B: placeholder '{redis.url}' needs a [redis] "
                        "section",
                        "adhoc.toml:14:6: env.C: placeholder '{port}' needs a port, and there is "
                        "none in [env]",
                        "adhoc.toml:18:16: tasks.t.command: placeholder '{bind}' needs a port, "
                        "and there is none in task 't'",
                        "adhoc.toml:18:23: tasks.t.command: placeholder '{version.web}' names no "
                        "image (images: backend)"}));
}

TEST(LoaderTest, PortPlaceholderOnServiceWithoutPort) {
  std::string text = kBase;
  text.erase(text.find("port = 8000"), 11);
  auto errors = Errors(text);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "adhoc.toml:8:24: services.web.command: placeholder '{bind}' needs a port, and there "
            "is none in service 'web' (it has no port)");
}

TEST(LoaderTest, NamesTargetsAndDuplicateNames) {
  auto errors = Errors(std::string(kBase) +
                       "\n[services.Web_2]\nimage = \"backend\"\ncommand = \"x\"\n"
                       "\n[tasks.web]\nimage = \"backend\"\ncommand = \"x\"\n"
                       "\n[targets.gcp]\nregion = \"x\"\n");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].find("services.Web_2: service name 'Web_2'"), std::string::npos);
  EXPECT_NE(errors[1].find("tasks.web: a service is named 'web' too"), std::string::npos);
  EXPECT_EQ(errors[2],
            "adhoc.toml:19:10: targets.gcp: unknown target 'gcp' (known: aws, kubernetes)");
  auto targets = ParseProject(std::string(kBase) +
                              "\n[targets.aws]\ndomain = \"dev.example.com\"\n"
                              "[targets.kubernetes]\nnamespace_prefix = \"app-\"\n"
                              "ingress_class = \"nginx\"\nregistry = \"r\"\n");
  ASSERT_TRUE(targets.ok()) << FormatDiagnostics(targets.diagnostics);
  EXPECT_TRUE(targets.diagnostics.empty());  // targets are not a "not built yet" warning
  EXPECT_EQ(targets.value.targets.aws->region, "us-east-1");
  EXPECT_EQ(targets.value.targets.kubernetes->ingress_class, "nginx");
}

TEST(LoaderTest, FileOrderIsKept) {
  auto loaded = ParseProject(R"(name = "app"
[images.zz]
path = "z"
[images.aa]
path = "a"
[env]
ZETA = "1"
ALPHA = "2"
MID = "3"
[tasks.migrate]
image = "zz"
command = "m"
before = "deploy"
[tasks.collectstatic]
image = "aa"
command = "c"
before = "deploy"
[tasks.b-first]
image = "aa"
command = "b"
[services.zulu]
image = "zz"
command = "z"
[services.alpha]
image = "aa"
command = "a"
)");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  const Project& p = loaded.value;
  EXPECT_EQ(p.images[0].name, "zz");
  EXPECT_EQ(p.images[1].name, "aa");
  EXPECT_EQ(p.env[0].name, "ZETA");
  EXPECT_EQ(p.env[1].name, "ALPHA");
  EXPECT_EQ(p.env[2].name, "MID");
  EXPECT_EQ(p.tasks[0].name, "migrate");
  EXPECT_EQ(p.tasks[1].name, "collectstatic");
  EXPECT_EQ(p.tasks[2].name, "b-first");
  EXPECT_EQ(p.services[0].name, "zulu");
  EXPECT_EQ(p.services[1].name, "alpha");
  EXPECT_EQ(p.tasks[1].where.line, 14);
}

TEST(LoaderTest, EveryErrorIsReportedNotOnlyTheFirst) {
  auto errors = Errors(R"(name = "app"
[images.backend]
path = "/abs"
[services.a]
image = "nope"
command = "{x}"
count = -2
[services.b]
image = "backend"
)");
  // path, undefined image, unknown {x}, count, b's missing command: five, in file order.
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors[0].rfind("adhoc.toml:3:8: images.backend.path", 0), 0u) << errors[0];
  EXPECT_EQ(errors[1].rfind("adhoc.toml:5:9: services.a.image", 0), 0u) << errors[1];
  EXPECT_EQ(errors[2].rfind("adhoc.toml:6:12: services.a.command: unknown placeholder '{x}'", 0),
            0u)
      << errors[2];
  EXPECT_EQ(errors[3].rfind("adhoc.toml:7:9: services.a.count", 0), 0u) << errors[3];
  EXPECT_EQ(errors[4].rfind("adhoc.toml:8:1: services.b.command: missing", 0), 0u) << errors[4];
}

TEST(LoaderTest, EnvFileValuesAndDefaults) {
  Project project = BaseProject();
  auto loaded = ParseEnvFile(R"(owner = "brian"
ttl = "3d"
[versions]
backend = "@worktree"
[env]
DEBUG = "1"
DB = "{postgres.url}"
)",
                             "demo", "envs/demo.toml", &project);
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_TRUE(loaded.diagnostics.empty());
  const EnvFile& e = loaded.value;
  EXPECT_EQ(e.name, "demo");
  EXPECT_EQ(e.owner, "brian");
  EXPECT_EQ(*e.ttl, std::chrono::seconds(3 * 86400));
  EXPECT_EQ(e.data.kind, DataSource::Kind::kEmpty);
  ASSERT_NE(e.FindVersion("backend"), nullptr);
  EXPECT_EQ(*e.FindVersion("backend"), "@worktree");
  EXPECT_EQ(e.env[1].value, "{postgres.url}");
  EXPECT_EQ(e.env[1].where.line, 7);
}

TEST(LoaderTest, EnvFileErrors) {
  Project project = BaseProject();
  auto errors = EnvErrors(R"(ownr = "x"
ttl = "3 days"
data = "s3:bucket"
[versions]
frontend = "v1"
backend = "@head"
[env]
X = "{redis.url}"
[access]
basic_auth = "demo-{taskdir}"
allow = ["10.0.0.0/8", "10.0.0.0/33", "vpn", "::1/128"]
)",
                          &project);
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "envs/demo.toml:1:1: ownr: unknown key 'ownr' in envs/demo.toml (did you "
                        "mean 'owner'?)",
                        "envs/demo.toml:2:7: ttl: bad duration '3 days': unknown unit ' ' "
                        "(expected a number and a unit s, m, h, d or w, e.g. \"30s\", "
                        "\"1h30m\") (or \"never\")",
                        "envs/demo.toml:3:8: data: bad data source 's3:bucket' (expected "
                        "\"snapshot:NAME\", \"env:NAME\", \"file:PATH\" or \"\")",
                        "envs/demo.toml:5:1: versions.frontend: no image 'frontend' in adhoc.toml "
                        "(images: backend)",
                        "envs/demo.toml:6:11: versions.backend: '@head': the only special ref is "
                        "\"@worktree\"",
                        "envs/demo.toml:8:6: env.X: placeholder '{redis.url}' needs a [redis] "
                        "section",
                        "envs/demo.toml:10:14: access.basic_auth: expected \"user:password\"",
                        "envs/demo.toml:10:20: access.basic_auth: placeholder '{taskdir}' is not "
                        "available in basic_auth (only {env}, {hostname}, {url}, {random.*} and "
                        "{secret.*} are)",
                        "envs/demo.toml:11:24: access.allow[1]: '10.0.0.0/33' is not an address "
                        "or CIDR block like \"10.0.0.0/8\"",
                        "envs/demo.toml:11:39: access.allow[2]: 'vpn' is not an address or CIDR "
                        "block like \"10.0.0.0/8\""}));
}

// adhoc.toml's [access] is every environment's default; an env file's replaces it key by key,
// and an empty value turns that part off.
TEST(LoaderTest, AccessOfTheProjectAndOfTheEnvFileMergeKeyByKey) {
  auto project = ParseProject(std::string(kBase) + R"(
[access]
basic_auth   = "team:{random.team_password}"
token        = "{random.access_token}"
public_paths = ["/api/health-check/", "/static/*"]
)");
  ASSERT_TRUE(project.ok()) << FormatDiagnostics(project.diagnostics);
  EXPECT_TRUE(project.diagnostics.empty()) << FormatDiagnostics(project.diagnostics);
  const Access& defaults = *project.value.access;
  EXPECT_EQ(*defaults.basic_auth, std::vector<std::string>{"team:{random.team_password}"});
  EXPECT_EQ(defaults.Where("token").line, 13);

  auto env = ParseEnvFile(R"(owner = "qa"
[access]
basic_auth = ["qa:{env}-{random.qa}", "demo:a-long-password"]
token      = ""
allow      = ["10.0.0.0/8", "127.0.0.1"]
)",
                          "demo", "envs/demo.toml", &project.value);
  ASSERT_TRUE(env.ok()) << FormatDiagnostics(env.diagnostics);
  EXPECT_TRUE(env.diagnostics.empty()) << FormatDiagnostics(env.diagnostics);
  std::optional<Access> effective = EffectiveAccess(project.value, env.value);
  ASSERT_TRUE(effective.has_value());
  EXPECT_EQ(*effective->basic_auth,
            (std::vector<std::string>{"qa:{env}-{random.qa}", "demo:a-long-password"}));
  EXPECT_EQ(*effective->token, "");  // turned off here
  EXPECT_EQ(*effective->allow, (std::vector<std::string>{"10.0.0.0/8", "127.0.0.1"}));
  EXPECT_EQ(*effective->public_paths,
            (std::vector<std::string>{"/api/health-check/", "/static/*"}));  // the default's
  EXPECT_TRUE(effective->guards());
  // Each key says where it was written: the env file's, or adhoc.toml's for a default.
  EXPECT_EQ(effective->Where("basic_auth").ToString(), "envs/demo.toml:3");
  EXPECT_EQ(effective->Where("public_paths").ToString(), "adhoc.toml:14");

  // Without [access] in the env file the default holds; without either, there are no rules.
  auto plain = ParseEnvFile("owner = \"x\"\n", "demo", "envs/demo.toml", &project.value);
  EXPECT_EQ(*EffectiveAccess(project.value, plain.value)->token, "{random.access_token}");
  EXPECT_FALSE(EffectiveAccess(BaseProject(), plain.value).has_value());
  // Every part off: the environment is open again.
  auto off = ParseEnvFile("[access]\nbasic_auth = []\ntoken = \"\"\npublic_paths = []\n", "demo",
                          "envs/demo.toml", &project.value);
  ASSERT_TRUE(off.ok()) << FormatDiagnostics(off.diagnostics);
  EXPECT_FALSE(EffectiveAccess(project.value, off.value)->guards());
}

TEST(LoaderTest, AccessErrorsNameFileLineAndKey) {
  auto errors = Errors(std::string(kBase) + R"(
[access]
basic_auth   = ["ok:{random.pw}", 7, "nocolon", ":pw", "u:{taskdir}"]
token        = "short"
public_paths = ["/%61pi/*", "/health"]
allow        = ["10.0.0.0/8", "vpn"]
realm        = "x"
)");
  EXPECT_EQ(errors,
            (std::vector<std::string>{
                "adhoc.toml:12:35: access.basic_auth[1]: expected a string, got an integer",
                "adhoc.toml:12:38: access.basic_auth[2]: expected \"user:password\"",
                "adhoc.toml:12:49: access.basic_auth[3]: expected \"user:password\"",
                "adhoc.toml:12:59: access.basic_auth[4]: placeholder '{taskdir}' is not "
                "available in basic_auth (only {env}, {hostname}, {url}, {random.*} and "
                "{secret.*} are)",
                "adhoc.toml:13:16: access.token: a token needs 16 characters or more (got 5); "
                "\"{random.access_token}\" makes one",
                "adhoc.toml:14:17: access.public_paths[0]: route '/%61pi/*' is not in the normal "
                "form requests are matched in: '%61' (write 'a')",
                "adhoc.toml:15:31: access.allow[1]: 'vpn' is not an address or CIDR block like "
                "\"10.0.0.0/8\"",
                "adhoc.toml:16:1: access.realm: unknown key 'realm' in [access]"}));
  // A token's literal text must be URL- and cookie-safe, and {url} is not.
  auto token = [](const std::string& value) {
    return Errors(std::string(kBase) + "[access]\ntoken = \"" + value + "\"\n");
  };
  EXPECT_EQ(token("{random.t}"), std::vector<std::string>{});
  EXPECT_EQ(token("0123456789abcdef"), std::vector<std::string>{});
  EXPECT_EQ(token("t-{env}-{random.t}"), std::vector<std::string>{});
  EXPECT_EQ(token("0123456789abcdef/"),
            std::vector<std::string>{"adhoc.toml:11:9: access.token: a token may hold only A-Z "
                                     "a-z 0-9 - _ . ~ (and placeholders)"});
  EXPECT_EQ(token("{url}-0123456789abcdef"),
            std::vector<std::string>{
                "adhoc.toml:11:9: access.token: '{url}' holds ':' and '/', which a token cannot"});
  EXPECT_EQ(Errors(std::string(kBase) + "[access]\nbasic_auth = 3\n"),
            std::vector<std::string>{"adhoc.toml:11:14: access.basic_auth: expected "
                                     "\"user:password\" or an array of them, got an integer"});
}

// As the router says: public paths are public from credentials, so they need some.
TEST(LoaderTest, PublicPathsNeedCredentials) {
  EXPECT_EQ(Errors(std::string(kBase) + "[access]\nallow = [\"10.0.0.0/8\"]\n"
                                        "public_paths = [\"/health\"]\n"),
            std::vector<std::string>{"adhoc.toml:12:16: access.public_paths: public_paths needs "
                                     "basic_auth or token (public from what?)"});
  auto project = ParseProject(std::string(kBase) +
                              "[access]\ntoken = \"{random.t}\"\npublic_paths = [\"/health\"]\n");
  ASSERT_TRUE(project.ok()) << FormatDiagnostics(project.diagnostics);
  // The env file turns the token off: the project's public paths are left with nothing.
  EXPECT_EQ(EnvErrors("owner = \"x\"\n[access]\ntoken = \"\"\n", &project.value),
            std::vector<std::string>{"envs/demo.toml:2:1: access.public_paths: public_paths (of "
                                     "adhoc.toml) needs basic_auth or token, here or in "
                                     "adhoc.toml's [access] (public from what?)"});
  // Its own public paths with the project's token are fine; without the project, unknown.
  EXPECT_EQ(EnvErrors("[access]\npublic_paths = [\"/x\"]\n", &project.value),
            std::vector<std::string>{});
  EXPECT_EQ(EnvErrors("[access]\npublic_paths = [\"/x\"]\n", nullptr), std::vector<std::string>{});
  EXPECT_EQ(EnvErrors("[access]\npublic_paths = [\"/x\"]\n", nullptr).size(), 0u);
  Project open = BaseProject();
  EXPECT_EQ(EnvErrors("[access]\npublic_paths = [\"/x\"]\n", &open),
            std::vector<std::string>{"envs/demo.toml:2:16: access.public_paths: public_paths "
                                     "needs basic_auth or token, here or in adhoc.toml's [access] "
                                     "(public from what?)"});
}

TEST(LoaderTest, EnvFileNameMustBeAnEnvironmentName) {
  auto errors = EnvErrors("owner = \"x\"\n", nullptr, "Bad_Name");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("envs/Bad_Name.toml: the file name must be a valid environment name: "
                            "environment name 'Bad_Name'",
                            0),
            0u)
      << errors[0];
  EXPECT_EQ(EnvErrors("", nullptr, "www").size(), 1u);
}

TEST(LoaderTest, NeverIsAnAnswerForTtlAndSleepAfter) {
  auto loaded = ParseEnvFile("ttl = \"never\"\nsleep_after = \"never\"\n", "qa", "envs/qa.toml");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_TRUE(loaded.diagnostics.empty()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_EQ(loaded.value.ttl, std::chrono::seconds(0));  // 0s: the file's "never"
  EXPECT_EQ(loaded.value.sleep_after, std::chrono::seconds(0));
  auto absent = ParseEnvFile("owner = \"x\"\n", "qa", "envs/qa.toml");
  EXPECT_FALSE(absent.value.ttl.has_value());
  EXPECT_FALSE(absent.value.sleep_after.has_value());
  // Other words are still errors, and the message offers "never".
  auto errors = EnvErrors("ttl = \"nevermore\"\n", nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("(or \"never\")"), std::string::npos) << errors[0];
  EXPECT_EQ(EnvErrors("sleep_after = \"0s\"\n", nullptr).size(), 1u) << "0s is not a duration";
}

TEST(LoaderTest, ProjectSleepAfterIsTheDefault) {
  std::string text = std::string("sleep_after = \"15m\"\n") + kBase;
  auto loaded = ParseProject(text);
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_EQ(loaded.value.sleep_after, std::chrono::minutes(15));
  EXPECT_FALSE(ParseProject(kBase).value.sleep_after.has_value());
}

TEST(LoaderTest, NotifyHasAUrlAndADayBeforeByDefault) {
  auto absent = ParseProject(kBase);
  EXPECT_FALSE(absent.value.notify.has_value());
  auto loaded =
      ParseProject(std::string(kBase) + "\n[notify]\nurl = \"https://hooks.example.com/adhoc\"\n");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  ASSERT_TRUE(loaded.value.notify.has_value());
  EXPECT_EQ(loaded.value.notify->url, "https://hooks.example.com/adhoc");
  EXPECT_EQ(loaded.value.notify->before, std::chrono::hours(24));
  EXPECT_EQ(loaded.value.notify->where.line, 11);
  auto early = ParseProject(std::string(kBase) +
                            "\n[notify]\nurl = \"http://127.0.0.1:9000/x\"\nbefore = \"2h30m\"\n");
  ASSERT_TRUE(early.ok()) << FormatDiagnostics(early.diagnostics);
  EXPECT_EQ(early.value.notify->before, std::chrono::minutes(150));
}

TEST(LoaderTest, NotifyErrorsNameFileLineAndKey) {
  const std::string base = std::string(kBase) + "\n[notify]\n";
  EXPECT_EQ(Errors(base + "url = \"ftp://hooks.example.com/\"\n"),
            (std::vector<std::string>{"adhoc.toml:12:7: notify.url: 'ftp://hooks.example.com/': "
                                      "only http:// and https:// URLs are allowed"}));
  EXPECT_EQ(Errors(base + "url = \"https://\"\n"),
            (std::vector<std::string>{"adhoc.toml:12:7: notify.url: 'https://': the host is "
                                      "missing"}));
  EXPECT_EQ(Errors(base + "url = \"https://h.example.com\"\nbefore = \"1 day\"\n"),
            (std::vector<std::string>{
                "adhoc.toml:13:10: notify.before: bad duration '1 day': unknown unit ' ' "
                "(expected a number and a unit s, m, h, d or w, e.g. \"30s\", \"1h30m\")"}));
  EXPECT_EQ(Errors(base + "url = \"https://h.example.com\"\nbefore = \"0s\"\n"),
            (std::vector<std::string>{"adhoc.toml:13:10: notify.before: must be longer than 0s"}));
  EXPECT_EQ(Errors(base + "url = \"https://h.example.com\"\nbefor = \"1h\"\n"),
            (std::vector<std::string>{"adhoc.toml:13:1: notify.befor: unknown key 'befor' in "
                                      "[notify] (did you mean 'before'?)"}));
  EXPECT_EQ(Errors(base + "before = \"1h\"\n"),
            (std::vector<std::string>{"adhoc.toml:11:1: notify.url: missing, expected a string"}));
  EXPECT_EQ(Errors(base + "url = 8080\n"),
            (std::vector<std::string>{"adhoc.toml:12:7: notify.url: expected a string, got an "
                                      "integer"}));
  // A bad file is a bad input: the command line exits 2.
  auto bad = ParseProject(base + "url = \"gopher://x\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().error().exit_code(), 2);
}

TEST(LoaderTest, OnlyBeforeDeployTasksAreCachedAsDatabaseOrStatic) {
  const std::string base =
      std::string(kBase) + "\n[tasks.m]\nimage = \"backend\"\ncommand = \"x\"\n";
  auto cached = ParseProject(base + "before = \"deploy\"\ncache = \"static\"\n");
  ASSERT_TRUE(cached.ok()) << FormatDiagnostics(cached.diagnostics);
  EXPECT_EQ(cached.value.tasks[0].cache, Task::Cache::kStatic);
  EXPECT_EQ(Errors(base + "after = \"create\"\ncache = \"database\"\n"),
            (std::vector<std::string>{"adhoc.toml:15:9: tasks.m.cache: only a before = \"deploy\" "
                                      "task can be cached"}));
}

TEST(LoaderTest, EmptyDataIsNotAWarning) {
  auto loaded = ParseEnvFile("data = \"\"\n", "demo", "envs/demo.toml");
  EXPECT_TRUE(loaded.diagnostics.empty()) << FormatDiagnostics(loaded.diagnostics);
  auto snapshot = ParseEnvFile("data = \"env:preprod\"\n", "demo", "envs/demo.toml");
  EXPECT_EQ(snapshot.value.data.kind, DataSource::Kind::kEnv);
  EXPECT_EQ(snapshot.value.data.argument, "preprod");
}

fs::path Fixture() { return fs::path(ADHOC_SOURCE_DIR) / "src/spec/testdata/design"; }

TEST(LoaderTest, DesignExampleLoadsWithOnlyTheExpectedWarnings) {
  auto loaded = LoadWorkspace(Fixture());
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_EQ(Lines(loaded.diagnostics),
            (std::vector<std::string>{"envs/demo.toml:15: access.basic_auth: "
                                      "'{secret.demo_password}': secrets are not built yet, so "
                                      "`adhoc up` refuses this environment; "
                                      "'{random.demo_password}' makes a value adhoc keeps and "
                                      "`adhoc status` shows"}));
  const Project& p = loaded.value.project;
  EXPECT_EQ(p.name, "ublog");
  ASSERT_EQ(p.services.size(), 4u);
  EXPECT_EQ(p.services[0].name, "gunicorn");
  EXPECT_EQ(p.services[3].name, "web-ui");
  EXPECT_EQ(p.services[3].stop_signal, "QUIT");
  EXPECT_EQ(p.services[1].stop_timeout, std::chrono::seconds(30));
  EXPECT_EQ(p.services[0].health->path, "/api/health-check/");
  EXPECT_EQ(TemplateOutputName(p.services[3].templates[0]), "nginx.conf");
  ASSERT_EQ(p.tasks.size(), 3u);
  EXPECT_EQ(p.tasks[0].name, "migrate");
  EXPECT_EQ(p.tasks[0].before, Task::Before::kDeploy);
  EXPECT_EQ(p.tasks[0].cache, Task::Cache::kDatabase);
  EXPECT_EQ(p.tasks[1].name, "collectstatic");
  EXPECT_EQ(p.tasks[2].after, Task::After::kCreate);
  EXPECT_EQ(p.static_files->routes.size(), 2u);
  EXPECT_EQ(p.targets.aws->registry, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
  ASSERT_EQ(loaded.value.envs.size(), 1u);
  const EnvFile& e = loaded.value.envs[0];
  EXPECT_EQ(e.name, "demo");
  EXPECT_EQ(e.data.kind, DataSource::Kind::kSnapshot);
  EXPECT_EQ(e.data.argument, "preprod");
  EXPECT_EQ(*e.sleep_after, std::chrono::minutes(30));
  EXPECT_EQ(*e.access->allow, std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(*e.access->basic_auth, std::vector<std::string>{"demo:{secret.demo_password}"});
  EXPECT_EQ(*e.FindVersion("frontend"), "v2.0.0");
}

TEST(LoaderTest, WorkspaceChecksEnvFilesAgainstTheProject) {
  TempDir dir;
  dir.Write("adhoc.toml", kBase);
  dir.Write("envs/ok.toml", "[versions]\nbackend = \"main\"\n");
  dir.Write("envs/bad.toml", "[versions]\nfrontend = \"main\"\n");
  dir.Write("envs/README.md", "not an env file");
  auto loaded = LoadWorkspace(dir.path());
  EXPECT_FALSE(loaded.ok());
  EXPECT_EQ(Lines(loaded.diagnostics),
            std::vector<std::string>{"envs/bad.toml:2:1: versions.frontend: no image 'frontend' in "
                                     "adhoc.toml (images: backend)"});
  ASSERT_EQ(loaded.value.envs.size(), 2u);
  EXPECT_NE(loaded.value.FindEnv("ok"), nullptr);
  EXPECT_NE(loaded.status().error().message().find("envs/bad.toml:2:1"), std::string::npos);
}

TEST(LoaderTest, MissingProjectFile) {
  TempDir dir;
  auto loaded = LoadWorkspace(dir.path());
  EXPECT_EQ(Lines(loaded.diagnostics),
            std::vector<std::string>{"adhoc.toml: cannot be read (missing?)"});
  EXPECT_EQ(loaded.status().error().exit_code(), 2);
}

std::vector<std::string> ErrorLines(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> out;
  for (const Diagnostic& d : diagnostics)
    if (d.is_error()) out.push_back(d.ToString());
  return out;
}

// The reported fault: `up p1` exited 2 naming envs/bref3.toml, another environment's file.
TEST(LoaderTest, OneEnvironmentLoadsDespiteAnotherBrokenEnvFile) {
  TempDir dir;
  dir.Write("adhoc.toml", kBase);
  dir.Write("envs/p1.toml", "owner = \"me\"\n[versions]\nbackend = \"main\"\n");
  dir.Write("envs/bref3.toml", "owner = \n");                         // not TOML
  dir.Write("envs/wrong.toml", "[versions]\nfrontend = \"main\"\n");  // no such image
  auto one = LoadForEnvironment(dir.path(), "p1");
  EXPECT_TRUE(one.ok()) << FormatDiagnostics(one.diagnostics);
  EXPECT_TRUE(one.diagnostics.empty()) << FormatDiagnostics(one.diagnostics);
  ASSERT_EQ(one.value.envs.size(), 1u);
  const EnvFile* p1 = one.value.FindEnv("p1");
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(p1->owner, "me");
  EXPECT_EQ(*p1->FindVersion("backend"), "main");
  EXPECT_EQ(one.value.project.name, "app");

  // The broken ones still fail on their own, and `validate` (the whole workspace) names both.
  auto broken = LoadForEnvironment(dir.path(), "bref3");
  EXPECT_FALSE(broken.ok());
  ASSERT_EQ(ErrorLines(broken.diagnostics).size(), 1u);
  EXPECT_EQ(ErrorLines(broken.diagnostics)[0].find("envs/bref3.toml:1:"), 0u)
      << FormatDiagnostics(broken.diagnostics);
  EXPECT_EQ(ErrorLines(LoadForEnvironment(dir.path(), "wrong").diagnostics),
            std::vector<std::string>{"envs/wrong.toml:2:1: versions.frontend: no image 'frontend' "
                                     "in adhoc.toml (images: backend)"});
  auto all = LoadWorkspace(dir.path());
  EXPECT_EQ(ErrorLines(all.diagnostics).size(), 2u) << FormatDiagnostics(all.diagnostics);
}

TEST(LoaderTest, OneEnvironmentReportsItsOwnAndTheProjectsErrorsOnly) {
  TempDir dir;
  dir.Write("adhoc.toml", std::string(kBase) + "colour = \"blue\"\n");
  dir.Write("envs/demo.toml", "ttl = \"forever\"\n");
  dir.Write("envs/other.toml", "ttl = 5\n");
  auto loaded = LoadForEnvironment(dir.path(), "demo");
  std::vector<std::string> errors = ErrorLines(loaded.diagnostics);
  ASSERT_EQ(errors.size(), 2u) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_EQ(errors[0].find("adhoc.toml:10:1: services.web.colour: unknown key 'colour'"), 0u)
      << errors[0];
  EXPECT_EQ(errors[1].find("envs/demo.toml:1:7: ttl:"), 0u) << errors[1];
  EXPECT_EQ(loaded.status().error().exit_code(), 2);
}

TEST(LoaderTest, OneEnvironmentWithoutItsFileHasNoEnvAndNoDiagnostic) {
  TempDir dir;
  dir.Write("adhoc.toml", kBase);
  auto loaded = LoadForEnvironment(dir.path(), "absent");
  EXPECT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded.value.envs.empty());
  EXPECT_EQ(loaded.value.FindEnv("absent"), nullptr);
}

TEST(LoaderTest, OneEnvironmentRefusesANameThatIsNotOne) {
  TempDir dir;
  dir.Write("adhoc.toml", kBase);
  dir.Write("secret.toml", "owner = \"x\"\n");
  for (const char* bad : {"../secret", "Demo", "", "a/b"}) {
    auto loaded = LoadForEnvironment(dir.path(), bad);
    EXPECT_FALSE(loaded.ok()) << bad;
    EXPECT_TRUE(loaded.value.envs.empty()) << bad;
  }
}

// The reported fault: a syntax error in adhoc.toml added a false "no image" error for every
// env file, in `validate` and in `up`.
TEST(LoaderTest, ASyntaxErrorInTheProjectDoesNotCascadeIntoEnvFiles) {
  TempDir dir;
  dir.Write("adhoc.toml", std::string(kBase) + "[services.web\n");
  dir.Write("envs/a.toml", "[versions]\nbackend = \"main\"\n");
  dir.Write("envs/b.toml", "[versions]\nbackend = \"main\"\n[env]\nX = \"{postgres.url}\"\n");
  dir.Write("envs/c.toml", "ttl = \"soon\"\n");  // its own error is still reported
  auto all = LoadWorkspace(dir.path());
  std::vector<std::string> errors = ErrorLines(all.diagnostics);
  ASSERT_EQ(errors.size(), 2u) << FormatDiagnostics(all.diagnostics);
  EXPECT_EQ(errors[0].find("adhoc.toml:10:"), 0u) << errors[0];
  EXPECT_NE(errors[0].find("TOML syntax"), std::string::npos) << errors[0];
  EXPECT_EQ(errors[1].find("envs/c.toml:1:7: ttl:"), 0u) << errors[1];

  auto one = LoadForEnvironment(dir.path(), "a");
  EXPECT_EQ(ErrorLines(one.diagnostics).size(), 1u) << FormatDiagnostics(one.diagnostics);
  ASSERT_EQ(one.value.envs.size(), 1u);

  // Nor when the file is missing altogether.
  TempDir bare;
  bare.Write("envs/a.toml", "[versions]\nbackend = \"main\"\n");
  EXPECT_EQ(ErrorLines(LoadWorkspace(bare.path()).diagnostics),
            std::vector<std::string>{"adhoc.toml: cannot be read (missing?)"});
}

TEST(LoaderTest, ABrokenImagesTableDoesNotCascadeIntoEnvFiles) {
  TempDir dir;
  dir.Write("adhoc.toml", "name = \"app\"\nimages = 5\n");
  dir.Write("envs/a.toml", "[versions]\nbackend = \"main\"\n");
  for (const std::string& line : ErrorLines(LoadWorkspace(dir.path()).diagnostics))
    EXPECT_EQ(line.find("no image"), std::string::npos) << line;
}

}  // namespace
}  // namespace adhoc::spec

namespace adhoc::spec {
namespace {

TEST(LoaderTest, CloudTargetKeys) {
  auto loaded = ParseProject(std::string(kBase) +
                             "\n[targets.aws]\ndomain = \"dev.example.com\"\n"
                             "certificate_arn = \"arn:aws:acm:us-east-1:1:certificate/x\"\n"
                             "hosted_zone_id = \"Z123\"\nrule_quota = 200\n"
                             "[targets.kubernetes]\npostgres = \"statefulset\"\n"
                             "domain = \"k8s.example.com\"\n");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  EXPECT_EQ(loaded.value.targets.aws->rule_quota, 200);
  EXPECT_EQ(loaded.value.targets.aws->hosted_zone_id, "Z123");
  EXPECT_EQ(loaded.value.targets.aws->postgres_version, "15");
  EXPECT_EQ(loaded.value.targets.kubernetes->postgres, KubernetesTarget::Postgres::kStatefulSet);
  EXPECT_EQ(loaded.value.targets.kubernetes->domain, "k8s.example.com");

  auto errors = Errors(std::string(kBase) +
                       "\n[targets.aws]\ncertificate_arn = \"cert\"\nrule_quota = 0\n"
                       "state_bucket = \"my bucket\"\n"
                       "[targets.kubernetes]\npostgres = \"rds\"\n");
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "adhoc.toml:12:19: targets.aws.certificate_arn: 'cert' is not an ARN "
            "(arn:aws:acm:...)");
  EXPECT_EQ(errors[1],
            "adhoc.toml:13:14: targets.aws.rule_quota: must be between 1 and 10000, "
            "got 0");
  EXPECT_NE(errors[2].find("adhoc.toml:14:16: targets.aws.state_bucket: 'my bucket'"),
            std::string::npos);
  EXPECT_EQ(errors[3],
            "adhoc.toml:16:12: targets.kubernetes.postgres: unknown value 'rds' (\"external\" or "
            "\"statefulset\")");
}

TEST(LoaderTest, EnvFileAwsSlot) {
  Project project = BaseProject();
  auto loaded = ParseEnvFile("owner = \"a\"\n\n[targets.aws]\nslot = 7\n", "demo", "envs/demo.toml",
                             &project);
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  ASSERT_TRUE(loaded.value.aws.has_value());
  EXPECT_EQ(loaded.value.aws->slot, 7);
  EXPECT_EQ(loaded.value.aws->where.line, 4);

  EXPECT_EQ(EnvErrors("[targets.aws]\nslot = 500\n", &project),
            std::vector<std::string>{
                "envs/demo.toml:2:8: targets.aws.slot: must be between 1 and 499, got 500"});
  EXPECT_EQ(EnvErrors("[targets.aws]\nslott = 1\n", &project),
            std::vector<std::string>{"envs/demo.toml:2:1: targets.aws.slott: unknown key 'slott' "
                                     "in [targets.aws] (did you mean 'slot'?)"});
  EXPECT_EQ(
      EnvErrors("[targets.gcp]\nslot = 1\n", &project),
      std::vector<std::string>{"envs/demo.toml:1:10: targets.gcp: unknown key 'gcp' in [targets]"});
}

}  // namespace
}  // namespace adhoc::spec

namespace adhoc::spec {
namespace {

TEST(LoaderTest, AnImagesPythonAndPreloadAreRead) {
  auto loaded = ParseProject(R"(name = "app"
[images.backend]
path = "backend"
python = "/usr/bin/python3"
preload = ["gunicorn.app.wsgiapp", "celery", "_private.mod2"]
[services.web]
image = "backend"
command = "gunicorn -b {bind} app.wsgi"
port = 8000
)");
  ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
  ASSERT_EQ(loaded.value.images.size(), 1u);
  EXPECT_EQ(loaded.value.images[0].python, "/usr/bin/python3");
  EXPECT_EQ(loaded.value.images[0].preload,
            (std::vector<std::string>{"gunicorn.app.wsgiapp", "celery", "_private.mod2"}));
  EXPECT_TRUE(ParseProject(kBase).value.images[0].python.empty()) << "off unless asked for";
}

TEST(LoaderTest, BadPythonAndPreloadNameTheKeyAndValue) {
  auto errors = Errors(R"(name = "app"
[images.backend]
path = "backend"
python = "python3"
preload = ["ok.mod", "not a module", "x..y", 7]
[services.web]
image = "backend"
command = "run"
)");
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0].rfind("adhoc.toml:4:10: images.backend.python: 'python3' must be the "
                            "interpreter's absolute path",
                            0),
            0u)
      << errors[0];
  EXPECT_EQ(errors[1].rfind("adhoc.toml:5:22: images.backend.preload[1]: 'not a module' is not "
                            "a module name",
                            0),
            0u)
      << errors[1];
  EXPECT_EQ(errors[2].rfind("adhoc.toml:5:38: images.backend.preload[2]", 0), 0u) << errors[2];
  EXPECT_EQ(errors[3].rfind("adhoc.toml:5:46: images.backend.preload[3]: expected a string", 0), 0u)
      << errors[3];
  auto alone = Errors(R"(name = "app"
[images.backend]
path = "backend"
preload = ["django"]
[services.web]
image = "backend"
command = "run"
)");
  ASSERT_EQ(alone.size(), 1u) << ::testing::PrintToString(alone);
  EXPECT_NE(alone[0].find("images.backend.preload: needs images.backend.python"), std::string::npos)
      << alone[0];
}

}  // namespace
}  // namespace adhoc::spec
