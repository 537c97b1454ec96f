#include "render/kubernetes.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/exec.h"
#include "common/test_support.h"
#include "render/test_support.h"
#include "render/tool_test_support.h"

namespace adhoc::render {
namespace {

namespace fs = std::filesystem;

// μblog with fixed stand-ins for the generated secrets, so the output is comparable.
struct Ublog {
  spec::Workspace ws = testing::LoadUblog();
  KubernetesInput input;
  explicit Ublog(bool statefulset = false) {
    if (statefulset) {
      spec::KubernetesTarget k;
      k.postgres = spec::KubernetesTarget::Postgres::kStatefulSet;
      k.ingress_class = "nginx";
      ws.project.targets.kubernetes = k;
    } else {
      spec::KubernetesTarget k;
      k.postgres_host = "postgres.example.internal";
      ws.project.targets.kubernetes = k;
    }
    input.project = &ws.project;
    input.templates = testing::ReadTemplates(ws.project, testing::UblogDir());
    for (const spec::EnvFile& e : ws.envs) input.environments.push_back(&e);
    for (const auto& [env, keys] : SecretKeysNeeded(input))
      for (const std::string& k : keys) input.secrets[env][k] = "SECRET-VALUE-" + env + "-" + k;
  }
};

TEST(RenderKubernetesTest, UblogMatchesGoldenFiles) {
  Ublog u;
  auto out = RenderKubernetes(u.input);
  ASSERT_TRUE(out.ok()) << out.error().message();
  testing::ExpectGolden(*out, "ublog-kubernetes");
  Ublog s(true);
  auto with_statefulset = RenderKubernetes(s.input);
  ASSERT_TRUE(with_statefulset.ok()) << with_statefulset.error().message();
  testing::ExpectGolden(*with_statefulset, "ublog-kubernetes-statefulset");
}

TEST(RenderKubernetesTest, SecretsStayInTheSecret) {
  Ublog u;
  auto out = RenderKubernetes(u.input);
  ASSERT_TRUE(out.ok());
  for (const RenderedFile& f : *out) {
    if (f.path.ends_with("secret.yaml")) {
      EXPECT_NE(f.text.find("SECRET-VALUE-"), std::string::npos) << f.path;
      continue;
    }
    EXPECT_EQ(f.text.find("SECRET-VALUE-"), std::string::npos) << f.path << " holds a secret value";
    if (f.path == "demo/service-gunicorn.yaml") {
      EXPECT_NE(f.text.find("value: redis://:$(ADHOC_REDIS_PASSWORD)@redis:6379/0"),
                std::string::npos);
      EXPECT_NE(f.text.find("readinessProbe:"), std::string::npos);
      EXPECT_NE(f.text.find("cpu: \"1000m\""), std::string::npos);
    }
    if (f.path == "demo/ingress.yaml") {
      EXPECT_NE(f.text.find("host: demo.dev.example.com"), std::string::npos);
      EXPECT_LT(f.text.find("path: /admin"), f.text.find("path: /\n"));
    }
  }
  u.input.secrets.clear();
  EXPECT_FALSE(RenderKubernetes(u.input).ok());
}

TEST(RenderKubernetesTest, SameInputSameBytes) {
  Ublog a, b;
  auto x = RenderKubernetes(a.input), y = RenderKubernetes(b.input);
  ASSERT_TRUE(x.ok() && y.ok());
  ASSERT_EQ(x->size(), y->size());
  for (size_t i = 0; i < x->size(); ++i) EXPECT_EQ((*x)[i].text, (*y)[i].text);
}

fs::path ValidateDir() { return fs::path(ADHOC_SOURCE_DIR) / "tools" / "validate"; }

TEST(RenderKubernetesTest, EveryManifestPassesSchemasAndTypes) {
  if (!testing::OnPath("node")) GTEST_SKIP() << "node is not installed";
  if (!fs::exists(ValidateDir() / "node_modules" / "kubernetes-models"))
    GTEST_SKIP() << "kubernetes-models is not installed (npm ci --prefix tools/validate)";
  for (bool statefulset : {false, true}) {
    Ublog u(statefulset);
    auto out = RenderKubernetes(u.input);
    ASSERT_TRUE(out.ok());
    testutil::TempDir dir("adhoc-k8s");
    std::vector<std::string> argv = {"node", (ValidateDir() / "kubernetes.mjs").string()};
    for (const RenderedFile& f : *out) {
      fs::create_directories((dir.path() / f.path).parent_path());
      std::ofstream(dir.path() / f.path) << f.text;
      argv.push_back((dir.path() / f.path).string());
    }
    auto r = Exec(argv, {.timeout = std::chrono::minutes(3)});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 0) << r->output;
    EXPECT_NE(r->output.find("Kubernetes documents valid"), std::string::npos) << r->output;
  }
  // The checker fails on an unknown field and on a schema violation (it can fail).
  testutil::TempDir dir("adhoc-k8s-bad");
  std::ofstream(dir.path() / "bad.yaml")
      << "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  prots: []\n";
  auto r = Exec(
      {"node", (ValidateDir() / "kubernetes.mjs").string(), (dir.path() / "bad.yaml").string()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1) << r->output;
  auto none = Exec({"node", (ValidateDir() / "kubernetes.mjs").string()});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->exit_code, 2);
}

}  // namespace
}  // namespace adhoc::render
