// `adhoc init`, `adhoc validate` and `adhoc new`, run as the real binary in temporary
// folders holding real git repositories.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/offline_test_support.h"

namespace adhoc::cli::testing {
namespace {

// A small Django app: backend/ (manage.py + settings package) and a frontend/ with npm.
void WriteDjangoApp(const fs::path& dir) {
  WriteFile(dir / "backend/manage.py",
            "#!/usr/bin/python3\nimport os\n"
            "os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")\n");
  WriteFile(dir / "backend/mysite/__init__.py", "");
  WriteFile(dir / "backend/mysite/wsgi.py", "application = None\n");
  WriteFile(dir / "backend/mysite/urls.py", "urlpatterns = []\n");
  WriteFile(dir / "backend/mysite/settings.py",
            "import os\n"
            "SECRET_KEY = os.environ.get(\"SECRET_KEY\", \"x\")\n"
            "DATABASES = {\"default\": {\"ENGINE\": \"django.db.backends.postgresql\",\n"
            "  \"NAME\": os.environ[\"POSTGRES_NAME\"]}}\n"
            "STATIC_URL = \"/static/\"\n");
  WriteFile(dir / "frontend/package.json", "{\"scripts\": {\"build\": \"true\"}}\n");
}

// A hand-written project with two images, committed twice: v1.0.0 and v2.0.0.
constexpr char kProject[] = R"(name = "shop"

[images.backend]
path = "backend"

[images.frontend]
path = "frontend"

[services.web]
image = "backend"
command = "/usr/bin/python3 -m http.server --bind {host} {port}"
port = 8000

[services.ui]
image = "frontend"
command = "/usr/bin/python3 -m http.server --bind {host} {port}"
port = 3000
)";

class CliFilesTest : public ::testing::Test {
 protected:
  fs::path repo() const { return repo_.path(); }
  fs::path home() const { return home_.path() / "home"; }
  CliRun Adhoc(const std::vector<std::string>& args) { return RunAdhoc(repo(), home(), args); }

  // The kProject repository, tagged v1.0.0 then v2.0.0.
  void MakeProjectRepo() {
    InitGitRepo(repo());
    WriteFile(repo() / "adhoc.toml", kProject);
    WriteFile(repo() / "backend/app.py", "print(1)\n");
    WriteFile(repo() / "frontend/index.html", "v1\n");
    v1_ = CommitAll(repo(), "first", "v1.0.0");
    WriteFile(repo() / "frontend/index.html", "v2\n");
    v2_ = CommitAll(repo(), "second", "v2.0.0");
  }

  TempDir repo_;
  TempDir home_;
  std::string v1_, v2_;
};

TEST_F(CliFilesTest, InitOnDjangoTreeWritesAFileThatValidates) {
  WriteDjangoApp(repo());
  CliRun init = Adhoc({"init"});
  ASSERT_EQ(init.exit_code, 0) << init;
  ASSERT_TRUE(fs::exists(repo() / "adhoc.toml"));
  EXPECT_NE(init.out.find("Wrote adhoc.toml"), std::string::npos) << init;
  EXPECT_NE(init.out.find("adhoc new demo --version backend=HEAD --version frontend=HEAD"),
            std::string::npos)
      << init;
  EXPECT_NE(init.out.find("gunicorn"), std::string::npos) << init;

  CliRun validate = Adhoc({"validate"});
  EXPECT_EQ(validate.exit_code, 0) << validate;
  EXPECT_NE(validate.out.find("adhoc.toml is valid"), std::string::npos) << validate;
  EXPECT_FALSE(fs::exists(home())) << "init and validate must not create a home";
}

TEST_F(CliFilesTest, InitTwiceWithoutForceExits2AndKeepsTheFile) {
  WriteDjangoApp(repo());
  ASSERT_EQ(Adhoc({"init"}).exit_code, 0);
  std::string edited = ReadFile(repo() / "adhoc.toml") + "# my edit\n";
  WriteFile(repo() / "adhoc.toml", edited);

  CliRun again = Adhoc({"init"});
  EXPECT_EQ(again.exit_code, 2) << again;
  EXPECT_NE(again.err.find("adhoc.toml already exists"), std::string::npos) << again;
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again;
  EXPECT_EQ(ReadFile(repo() / "adhoc.toml"), edited);

  CliRun forced = Adhoc({"init", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced;
  EXPECT_EQ(ReadFile(repo() / "adhoc.toml").find("# my edit"), std::string::npos);
}

TEST_F(CliFilesTest, InitJsonNamesTheFileAndWhatWasDetected) {
  WriteDjangoApp(repo());
  CliRun init = Adhoc({"--json", "init"});
  ASSERT_EQ(init.exit_code, 0) << init;
  nlohmann::json doc = nlohmann::json::parse(init.out);
  EXPECT_EQ(doc["written"], (repo() / "adhoc.toml").string());
  ASSERT_EQ(doc["detected"]["images"].size(), 2u) << doc.dump();
  EXPECT_EQ(doc["detected"]["images"][0]["path"], "backend");
  EXPECT_EQ(doc["detected"]["postgres"], true);
  EXPECT_TRUE(init.err.empty()) << init;
}

TEST_F(CliFilesTest, InitWithoutDjangoFailsAndWritesNothing) {
  WriteFile(repo() / "README", "not an app\n");
  CliRun init = Adhoc({"init"});
  EXPECT_EQ(init.exit_code, 1) << init;
  EXPECT_NE(init.err.find("no Django project"), std::string::npos) << init;
  EXPECT_FALSE(fs::exists(repo() / "adhoc.toml"));
}

TEST_F(CliFilesTest, InitInAnotherFolderWithDashC) {
  fs::create_directories(repo() / "app");
  WriteDjangoApp(repo() / "app");
  CliRun init = Adhoc({"-C", "app", "init"});
  ASSERT_EQ(init.exit_code, 0) << init;
  EXPECT_TRUE(fs::exists(repo() / "app/adhoc.toml"));
  EXPECT_NE(init.out.find("Wrote app/adhoc.toml"), std::string::npos) << init;
}

TEST_F(CliFilesTest, ValidateReportsEveryMistakeWithFileLineAndKey) {
  std::string project = kProject;
  project += "colour = \"blue\"\n";  // line 18, inside [services.ui]
  project += "\n[env]\nGREETING = \"hello {nmae}\"\n";
  WriteFile(repo() / "adhoc.toml", project);
  WriteFile(repo() / "envs/demo.toml", "ownr = \"me\"\n");

  CliRun run = Adhoc({"validate"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.out.find("adhoc.toml:18:1: services.ui.colour: unknown key 'colour'"),
            std::string::npos)
      << run;
  EXPECT_NE(run.out.find("adhoc.toml:21:19"), std::string::npos) << run;
  EXPECT_NE(run.out.find("env.GREETING"), std::string::npos) << run;
  EXPECT_NE(run.out.find("{nmae}"), std::string::npos) << run;
  EXPECT_NE(run.out.find("envs/demo.toml:1:1: ownr: unknown key 'ownr'"), std::string::npos) << run;
  EXPECT_NE(run.out.find("did you mean 'owner'"), std::string::npos) << run;
  EXPECT_NE(run.err.find("3 errors"), std::string::npos) << run;
  // File order: adhoc.toml's lines first, then the env file.
  EXPECT_LT(run.out.find("adhoc.toml:18"), run.out.find("adhoc.toml:21"));
  EXPECT_LT(run.out.find("adhoc.toml:21"), run.out.find("envs/demo.toml"));

  CliRun json = Adhoc({"--json", "validate"});
  EXPECT_EQ(json.exit_code, 2) << json;
  nlohmann::json doc = nlohmann::json::parse(json.out);
  EXPECT_EQ(doc["valid"], false);
  ASSERT_EQ(doc["diagnostics"].size(), 3u) << doc.dump();
  const nlohmann::json& first = doc["diagnostics"][0];
  EXPECT_EQ(first["severity"], "error");
  EXPECT_EQ(first["file"], "adhoc.toml");
  EXPECT_EQ(first["line"], 18);
  EXPECT_EQ(first["column"], 1);
  EXPECT_EQ(first["key"], "services.ui.colour");
  EXPECT_EQ(doc["diagnostics"][2]["file"], "envs/demo.toml");
}

TEST_F(CliFilesTest, ValidateOfAValidProjectExits0AndCountsEnvFiles) {
  WriteFile(repo() / "adhoc.toml", kProject);
  WriteFile(repo() / "envs/demo.toml", "owner = \"me\"\n[versions]\nbackend = \"v1\"\n");
  WriteFile(repo() / "envs/qa.toml", "owner = \"you\"\n");
  CliRun run = Adhoc({"validate"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_NE(run.out.find("adhoc.toml and 2 env files are valid"), std::string::npos) << run;

  CliRun json = Adhoc({"--json", "validate"});
  EXPECT_EQ(json.exit_code, 0) << json;
  nlohmann::json doc = nlohmann::json::parse(json.out);
  EXPECT_EQ(doc["valid"], true);
  EXPECT_TRUE(doc["diagnostics"].empty());
}

TEST_F(CliFilesTest, ValidateShowsWarningsButPasses) {
  WriteFile(repo() / "adhoc.toml", kProject);
  WriteFile(repo() / "envs/demo.toml", "[access]\nbasic_auth = \"demo:{secret.pw}\"\n");
  CliRun run = Adhoc({"validate"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_NE(run.out.find("warning: envs/demo.toml:2: access.basic_auth: '{secret.pw}': secrets "
                         "are not built yet"),
            std::string::npos)
      << run;
  EXPECT_NE(run.out.find("(1 warning)"), std::string::npos) << run;
}

TEST_F(CliFilesTest, ValidateWithoutAdhocTomlSuggestsInit) {
  CliRun run = Adhoc({"validate"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("no adhoc.toml"), std::string::npos) << run;
  EXPECT_NE(run.err.find("adhoc init"), std::string::npos) << run;
  CliRun json = Adhoc({"--json", "validate"});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_EQ(nlohmann::json::parse(json.out)["error"]["kind"], "bad_input") << json;
}

TEST_F(CliFilesTest, NewWithABadNameExits2AndWritesNothing) {
  MakeProjectRepo();
  const std::vector<std::string> names = {
      "../x", "A", "x;drop", std::string(64, 'a'), "adhoc", "www", "9lives", "x/y", ""};
  for (const std::string& name : names) {
    CliRun run = Adhoc({"new", name, "--version", "backend=v1.0.0"});
    EXPECT_EQ(run.exit_code, 2) << name << run;
    EXPECT_NE(run.err.find("environment name"), std::string::npos) << name << run;
    EXPECT_FALSE(fs::exists(repo() / "envs")) << name;
  }
}

TEST_F(CliFilesTest, NewWithAnUnknownImageExits2) {
  MakeProjectRepo();
  CliRun run = Adhoc({"new", "demo", "--version", "bakend=v1.0.0"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("no image 'bakend'"), std::string::npos) << run;
  EXPECT_NE(run.err.find("backend, frontend"), std::string::npos) << run;
  EXPECT_FALSE(fs::exists(repo() / "envs"));

  CliRun malformed = Adhoc({"new", "demo", "--version", "backend"});
  EXPECT_EQ(malformed.exit_code, 2) << malformed;
  EXPECT_NE(malformed.err.find("IMAGE=REF"), std::string::npos) << malformed;
  CliRun twice =
      Adhoc({"new", "demo", "--version", "backend=v1.0.0", "--version", "backend=v2.0.0"});
  EXPECT_EQ(twice.exit_code, 2) << twice;
  EXPECT_FALSE(fs::exists(repo() / "envs"));
}

TEST_F(CliFilesTest, NewWithAnInvalidAdhocTomlExits2ListingItsErrors) {
  MakeProjectRepo();
  WriteFile(repo() / "adhoc.toml", std::string(kProject) + "colour = \"blue\"\n");
  CliRun run = Adhoc({"new", "demo", "--version", "backend=v1.0.0"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("error: adhoc.toml:18:1: services.ui.colour"), std::string::npos) << run;
  EXPECT_NE(run.err.find("1 error in adhoc.toml"), std::string::npos) << run;
  EXPECT_FALSE(fs::exists(repo() / "envs"));
}

TEST_F(CliFilesTest, NewWithAMissingRefExits1NamingIt) {
  MakeProjectRepo();
  CliRun run = Adhoc({"new", "demo", "--version", "backend=v9.9.9"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_NE(run.err.find("v9.9.9"), std::string::npos) << run;
  EXPECT_NE(run.err.find("backend"), std::string::npos) << run;
  EXPECT_NE(run.err.find("not written"), std::string::npos) << run;
  EXPECT_FALSE(fs::exists(repo() / "envs"));
}

TEST_F(CliFilesTest, NewOutsideAGitRepositoryExits2) {
  WriteFile(repo() / "adhoc.toml", kProject);
  CliRun run = Adhoc({"new", "demo"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("not inside a git repository"), std::string::npos) << run;
  EXPECT_FALSE(fs::exists(repo() / "envs"));
}

TEST_F(CliFilesTest, NewWritesAFileThatValidatesClean) {
  MakeProjectRepo();
  CliRun run =
      Adhoc({"new", "feature-abc", "--version", "backend=v1.0.0", "--version", "frontend=v2.0.0"});
  ASSERT_EQ(run.exit_code, 0) << run;
  fs::path file = repo() / "envs/feature-abc.toml";
  ASSERT_TRUE(fs::exists(file));
  std::string text = ReadFile(file);
  EXPECT_NE(text.find("owner = \"tester\""), std::string::npos) << text;
  EXPECT_NE(text.find("ttl = \"3d\""), std::string::npos) << text;
  EXPECT_NE(text.find("backend = \"v1.0.0\""), std::string::npos) << text;
  EXPECT_NE(text.find("frontend = \"v2.0.0\""), std::string::npos) << text;
  EXPECT_NE(run.out.find("Wrote envs/feature-abc.toml"), std::string::npos) << run;
  EXPECT_NE(run.out.find("commit " + v1_.substr(0, 7)), std::string::npos) << run;
  EXPECT_NE(run.out.find("adhoc up feature-abc"), std::string::npos) << run;

  CliRun validate = Adhoc({"validate"});
  EXPECT_EQ(validate.exit_code, 0) << validate;
  EXPECT_EQ(validate.out, "adhoc.toml and 1 env file is valid\n") << validate;
  EXPECT_FALSE(fs::exists(home()));
}

TEST_F(CliFilesTest, NewDefaultsMissingVersionsToHeadWithANote) {
  MakeProjectRepo();
  CliRun run =
      Adhoc({"new", "demo", "--version", "backend=@worktree", "--owner", "brian", "--ttl", "12h"});
  ASSERT_EQ(run.exit_code, 0) << run;
  std::string text = ReadFile(repo() / "envs/demo.toml");
  EXPECT_NE(text.find("frontend = \"HEAD\""), std::string::npos) << text;
  EXPECT_NE(text.find("backend = \"@worktree\""), std::string::npos) << text;
  EXPECT_NE(text.find("owner = \"brian\""), std::string::npos) << text;
  EXPECT_NE(text.find("ttl = \"12h\""), std::string::npos) << text;
  EXPECT_NE(run.err.find("no --version for image 'frontend': using HEAD"), std::string::npos)
      << run;
}

TEST_F(CliFilesTest, NewRefusesAnExistingFileWithoutForce) {
  MakeProjectRepo();
  WriteFile(repo() / "envs/demo.toml", "owner = \"someone\"\n");
  CliRun run = Adhoc({"new", "demo", "--version", "backend=v1.0.0"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("envs/demo.toml already exists"), std::string::npos) << run;
  EXPECT_EQ(ReadFile(repo() / "envs/demo.toml"), "owner = \"someone\"\n");

  CliRun forced = Adhoc({"new", "demo", "--version", "backend=v1.0.0", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced;
  EXPECT_NE(ReadFile(repo() / "envs/demo.toml").find("v1.0.0"), std::string::npos);
}

TEST_F(CliFilesTest, NewWithABadTtlExits2) {
  MakeProjectRepo();
  CliRun run = Adhoc({"new", "demo", "--ttl", "3 days"});
  EXPECT_EQ(run.exit_code, 2) << run;
  EXPECT_NE(run.err.find("--ttl"), std::string::npos) << run;
  EXPECT_FALSE(fs::exists(repo() / "envs"));
}

TEST_F(CliFilesTest, NewJsonListsTheResolvedVersions) {
  MakeProjectRepo();
  CliRun run = Adhoc({"--json", "new", "demo", "--version", "backend=v1.0.0"});
  ASSERT_EQ(run.exit_code, 0) << run;
  nlohmann::json doc = nlohmann::json::parse(run.out);
  EXPECT_EQ(doc["written"], (repo() / "envs/demo.toml").string());
  EXPECT_EQ(doc["owner"], "tester");
  EXPECT_EQ(doc["ttl"], "3d");
  ASSERT_EQ(doc["versions"].size(), 2u);
  EXPECT_EQ(doc["versions"][0]["commit"], v1_);
  EXPECT_EQ(doc["versions"][1]["ref"], "HEAD");
  EXPECT_EQ(doc["versions"][1]["commit"], v2_);
  EXPECT_EQ(doc["versions"][1]["defaulted"], true);
}

}  // namespace
}  // namespace adhoc::cli::testing
