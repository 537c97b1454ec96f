// `adhoc render kubernetes`: the project as Kubernetes manifests (YAML), one folder per
// environment plus the base:
//   base/postgres.yaml         [targets.kubernetes] postgres = "statefulset": a namespace
//                              "<project>-base" with a PostgreSQL StatefulSet, its Service and
//                              admin Secret; "external" (the default): nothing here
//   ENV/namespace.yaml         the environment's Namespace ("<namespace_prefix><env>")
//   ENV/secret.yaml            Secret "credentials": the environment's generated passwords and
//                              random values (and, with the StatefulSet, the admin password)
//   ENV/postgres.yaml          Service "postgres": an ExternalName to the base's server
//   ENV/redis.yaml             Redis: Deployment and Service, with its own password
//   ENV/service-NAME.yaml      a Deployment per service (replicas from count, resources from
//                              cpu/memory, readiness probe from the health check, termination
//                              grace from stop_timeout) and a Service for those with a port
//   ENV/ingress.yaml           host <env>.<domain>; exact paths, prefixes and the catch-all
//                              (the longest prefix wins in Kubernetes)
//   ENV/job-NAME.yaml          a Job per `before = "deploy"` task, and "db-create" which makes
//                              the environment's database and role (admin credentials from the
//                              Secret "postgres-admin" of the namespace)
// Secret values are inputs (KubernetesSecrets): the caller generates them once and keeps them;
// everything else is a function of the files. Placeholders: as container.h, with {hostname}
// <env>.<domain>, {url} https://{hostname}, {postgres.host} the base's server, {redis.host}
// "redis"; secret placeholders reach containers as $(ADHOC_...) references to variables taken
// from the Secret, never in plain text in a Deployment. Thread-safe: a pure function.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "render/container.h"
#include "render/files.h"
#include "spec/spec.h"

namespace adhoc::render {

// Generated values of one environment, by key: "postgres-password", "redis-password",
// "random-NAME"; and "postgres-admin-password" of the base (StatefulSet only), under "base".
using KubernetesSecrets = std::map<std::string, std::map<std::string, std::string>>;

struct KubernetesInput {
  const spec::Project* project = nullptr;
  std::vector<const spec::EnvFile*> environments;
  TemplateTexts templates;
  KubernetesSecrets secrets;  // missing values are a BadInput error (SecretKeysNeeded lists them)
};

// The keys each environment needs (and "base"'s), for the caller to fill.
std::map<std::string, std::vector<std::string>> SecretKeysNeeded(const KubernetesInput& input);

Result<RenderedFiles> RenderKubernetes(const KubernetesInput& input);

}  // namespace adhoc::render
