// `adhoc doctor` as a user runs it: the real binary, on this machine, with a home of the
// test's own (ADHOC_HOME), so the checks look at real tools, cgroups and sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "common/exec.h"
#include "runtime/addresses.h"

namespace adhoc::cli {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "adhoc-doctor-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

ExecResult RunDoctor(const fs::path& home, bool json,
                     const std::map<std::string, std::string>& settings = {}) {
  ExecOptions options;
  options.env = std::map<std::string, std::string>{
      {"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"LANG", "C.UTF-8"}, {"ADHOC_HOME", home}};
  for (const auto& [k, v] : settings) (*options.env)[k] = v;
  options.timeout = std::chrono::minutes(2);
  std::vector<std::string> argv = {ADHOC_BINARY, "doctor"};
  if (json) argv.push_back("--json");
  auto result = Exec(argv, options);
  EXPECT_TRUE(result.ok()) << result.error().message();
  return result.ok() ? *result : ExecResult{};
}

nlohmann::json Parse(const ExecResult& r) {
  auto doc = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(doc.is_discarded()) << r.output;
  return doc;
}

const nlohmann::json* FindCheck(const nlohmann::json& doc, const std::string& name) {
  for (const auto& c : doc["checks"])
    if (c["name"] == name) return &c;
  return nullptr;
}

const std::vector<std::string> kExpectedChecks = {
    "postgresql", "postgres-user",  "redis",       "git",           "nginx",
    "gunicorn",   "python3-django", "node",        "npm",           "cgroups",
    "open-files", "home",           "router-port", "postgres-port", "loopback"};

TEST(DoctorTest, JsonListsEveryCheckAndFindsThisMachinesPostgres) {
  TempDir home;
  ExecResult r = RunDoctor(home.path(), /*json=*/true);
  nlohmann::json doc = Parse(r);
  ASSERT_TRUE(doc.is_object()) << r.output;
  for (const char* key : {"home", "checks", "warnings", "missing", "missing_required", "ok"})
    EXPECT_TRUE(doc.contains(key)) << key << " in " << r.output;
  EXPECT_EQ(doc["home"], home.path().string());

  std::set<std::string> names;
  int missing_required = 0;
  for (const auto& c : doc["checks"]) {
    for (const char* key : {"name", "status", "required", "detail", "fix"})
      ASSERT_TRUE(c.contains(key)) << key << " in " << c.dump();
    names.insert(c["name"].get<std::string>());
    std::string status = c["status"];
    EXPECT_TRUE(status == "ok" || status == "warning" || status == "missing") << c.dump();
    EXPECT_FALSE(c["detail"].get<std::string>().empty()) << c.dump();
    if (status == "missing") {
      EXPECT_FALSE(c["fix"].get<std::string>().empty()) << c.dump();
    }
    if (status == "missing" && c["required"].get<bool>()) ++missing_required;
  }
  for (const std::string& name : kExpectedChecks) EXPECT_TRUE(names.count(name)) << name;

  const nlohmann::json* pg = FindCheck(doc, "postgresql");
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ((*pg)["status"], "ok") << pg->dump();
  EXPECT_NE((*pg)["detail"].get<std::string>().find("/usr/lib/postgresql/15/bin"),
            std::string::npos);

  const nlohmann::json* h = FindCheck(doc, "home");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ((*h)["status"], "ok") << h->dump();
  EXPECT_NE((*h)["detail"].get<std::string>().find("writable"), std::string::npos);
  EXPECT_NE((*h)["detail"].get<std::string>().find("free"), std::string::npos);

  // The exit status follows the required checks only.
  EXPECT_EQ(doc["missing_required"], missing_required);
  EXPECT_EQ(r.exit_code, missing_required > 0 ? 1 : 0) << r.output;
  EXPECT_EQ(doc["ok"], missing_required == 0);
}

TEST(DoctorTest, AHomeThatCannotBeMadeIsMissingAndFails) {
  TempDir dir;
  std::ofstream(dir.path() / "a-file") << "not a folder\n";
  fs::path home = dir.path() / "a-file" / "home";
  ExecResult r = RunDoctor(home, /*json=*/true);
  nlohmann::json doc = Parse(r);
  const nlohmann::json* h = FindCheck(doc, "home");
  ASSERT_NE(h, nullptr) << r.output;
  EXPECT_EQ((*h)["status"], "missing") << h->dump();
  EXPECT_TRUE((*h)["required"].get<bool>());
  EXPECT_NE((*h)["detail"].get<std::string>().find("is not a folder"), std::string::npos);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(doc["ok"], false);
}

TEST(DoctorTest, LooksWithoutCreatingTheHome) {
  TempDir dir;
  fs::path home = dir.path() / "not-yet";
  if (geteuid() == 0) {
    // As root the cluster runs as `postgres`, which cannot pass a 0700 parent (mkdtemp's).
    ExecResult blocked = RunDoctor(home, /*json=*/true);
    nlohmann::json doc = Parse(blocked);
    const nlohmann::json* h = FindCheck(doc, "home");
    ASSERT_NE(h, nullptr) << blocked.output;
    EXPECT_EQ((*h)["status"], "missing") << h->dump();
    EXPECT_EQ((*h)["fix"].get<std::string>().find("chmod o+x " + dir.path().string()), 0u);
    EXPECT_EQ(blocked.exit_code, 1);
  }
  fs::permissions(dir.path(), fs::perms(0755));
  ExecResult r = RunDoctor(home, /*json=*/true);
  nlohmann::json doc = Parse(r);
  const nlohmann::json* h = FindCheck(doc, "home");
  ASSERT_NE(h, nullptr) << r.output;
  EXPECT_EQ((*h)["status"], "ok") << h->dump();
  EXPECT_NE((*h)["detail"].get<std::string>().find("created when first needed"), std::string::npos);
  EXPECT_FALSE(fs::exists(home));
  EXPECT_EQ(fs::directory_iterator(dir.path()), fs::directory_iterator());  // no probe left over
}

TEST(DoctorTest, TextHasOneLinePerCheckAndTheSameExitStatus) {
  TempDir home;
  ExecResult json_run = RunDoctor(home.path(), /*json=*/true);
  ExecResult text_run = RunDoctor(home.path(), /*json=*/false);
  nlohmann::json doc = Parse(json_run);
  std::vector<std::string> lines;
  std::istringstream text(text_run.output);
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  for (const auto& c : doc["checks"]) {
    // "<status padded to 8> <name>..." starts exactly one line.
    std::string start = c["status"].get<std::string>();
    start.resize(9, ' ');
    start += c["name"].get<std::string>() + " ";
    int found = 0;
    for (const std::string& line : lines) found += line.rfind(start, 0) == 0;
    EXPECT_EQ(found, 1) << start << " in:\n" << text_run.output;
  }
  EXPECT_EQ(text_run.exit_code, json_run.exit_code);
}

// A socket listening on address:port for as long as it lives (port 0: a free one).
class Listener {
 public:
  Listener(const std::string& address, int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << address << ":" << port;
    EXPECT_EQ(listen(fd_, 1), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::string Detail(const nlohmann::json& doc, const std::string& check) {
  const nlohmann::json* c = FindCheck(doc, check);
  return c ? (*c)["status"].get<std::string>() + ": " + (*c)["detail"].get<std::string>() : "";
}

// The reported fault: doctor looked at 127.0.0.1:8080 whatever ADHOC_ROUTER_LISTEN said.
TEST(DoctorTest, ChecksTheRouterAddressTheSettingsGive) {
  TempDir home;
  Listener taken("127.0.0.1", 0);
  std::string listen = "127.0.0.1:" + std::to_string(taken.port());
  nlohmann::json doc =
      Parse(RunDoctor(home.path(), /*json=*/true, {{"ADHOC_ROUTER_LISTEN", listen}}));
  EXPECT_EQ(doc["router_listen"], listen);
  std::string detail = Detail(doc, "router-port");
  EXPECT_EQ(detail.find("warning: " + listen + " is used by "), 0u) << detail;
  EXPECT_NE(detail.find("(pid " + std::to_string(getpid()) + ")"), std::string::npos) << detail;

  // Another address of the loopback range, at that same port, is free.
  std::string elsewhere = "127.0.0.3:" + std::to_string(taken.port());
  doc = Parse(RunDoctor(home.path(), /*json=*/true, {{"ADHOC_ROUTER_LISTEN", elsewhere}}));
  EXPECT_EQ(Detail(doc, "router-port"), "ok: " + elsewhere + " is free for the router");
}

TEST(DoctorTest, ChecksThePostgresPortOnTheHomesOwnAddress) {
  TempDir home;
  const std::string base = runtime::BaseAddress(home.path());
  Listener taken(base, 0);
  std::string where = base + ":" + std::to_string(taken.port());
  nlohmann::json doc = Parse(RunDoctor(home.path(), /*json=*/true,
                                       {{"ADHOC_POSTGRES_PORT", std::to_string(taken.port())}}));
  EXPECT_EQ(doc["postgres_port"], taken.port());
  std::string detail = Detail(doc, "postgres-port");
  EXPECT_EQ(detail.find("warning: " + where + " is used by "), 0u) << detail;

  doc = Parse(RunDoctor(home.path(), /*json=*/true));
  EXPECT_EQ(Detail(doc, "postgres-port"),
            "ok: " + base + ":5432 is free for this home's PostgreSQL");
}

TEST(DoctorTest, BadSettingsAreMissingAndNamed) {
  TempDir home;
  for (const char* bad : {"8080", "localhost:8080", "127.0.0.1:99999"}) {
    ExecResult r = RunDoctor(home.path(), /*json=*/true, {{"ADHOC_ROUTER_LISTEN", bad}});
    nlohmann::json doc = Parse(r);
    std::string detail = Detail(doc, "router-port");
    EXPECT_EQ(detail.find(std::string("missing: ADHOC_ROUTER_LISTEN='") + bad + "'"), 0u) << detail;
    EXPECT_EQ(r.exit_code, 1) << bad;
  }
  ExecResult r = RunDoctor(home.path(), /*json=*/true, {{"ADHOC_POSTGRES_PORT", "abc"}});
  nlohmann::json doc = Parse(r);
  EXPECT_EQ(Detail(doc, "postgres-port").find("missing: ADHOC_POSTGRES_PORT='abc'"), 0u)
      << Detail(doc, "postgres-port");
  EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
}  // namespace adhoc::cli
