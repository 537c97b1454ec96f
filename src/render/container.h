// What the cloud targets (AWS ECS, Kubernetes) share: how one adhoc process (a service or a
// one-off task) becomes a container, and how routes become ordered rules.
//
// Placeholders on a cloud target: {host} is 0.0.0.0 (the container's own interfaces),
// {bind} 0.0.0.0:{port}, {workdir} /app (the image's WORKDIR), {taskdir} /tmp/task (made at
// start), {static} /tmp/static; the rest are the environment's (see aws.h, kubernetes.h).
// The command runs under /bin/sh -c like the local runtime: a simple command is exec'ed so it
// is the container's main process; `templates` are rendered at render time and written into
// {taskdir} by the command's prelude; a `stop_signal` other than TERM is relayed by a trap,
// because neither ECS nor Kubernetes can choose the signal they stop a container with.
// Thread-safe: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "spec/spec.h"

namespace adhoc::render {

inline constexpr char kCloudHost[] = "0.0.0.0";
inline constexpr char kCloudWorkdir[] = "/app";
inline constexpr char kCloudTaskdir[] = "/tmp/task";
inline constexpr char kCloudStatic[] = "/tmp/static";

// The text of every `templates` file, keyed "IMAGE/FILE" ("frontend/nginx.conf.in"), read by
// the caller from the image's folder.
using TemplateTexts = std::map<std::string, std::string>;

// Whether a placeholder's value is a secret (passwords, URLs holding them, random values,
// secrets): such values travel through the target's secret store, never in plain text.
bool IsSecretPlaceholder(const std::string& key);
// Whether `text` holds a secret placeholder.
bool HoldsSecret(const std::string& text);

// A docker tag for a git ref: characters outside [A-Za-z0-9_.-] become '-', at most 128
// ("feature/x" -> "feature-x"). The CI workflows tag images the same way.
std::string ImageTag(const std::string& ref);

// The container's argv: {"/bin/sh", "-c", SCRIPT}. `command` is already rendered.
// `template_env` names the environment variables holding each rendered template, keyed by the
// file name it is written to ("nginx.conf" -> "ADHOC_TEMPLATE_NGINX_CONF").
std::vector<std::string> ContainerCommand(const std::string& command,
                                          const std::string& stop_signal,
                                          const std::map<std::string, std::string>& template_env);

// "ADHOC_TEMPLATE_NGINX_CONF" for "nginx.conf".
std::string TemplateEnvName(const std::string& output_name);

// One load-balancer rule of a service: the paths it matches (each "/api" or "/api/*" form, as
// the target writes them) in the order of precedence.
struct RouteRule {
  std::string service;
  std::vector<std::string> paths;  // empty: every path (a catch-all)
  bool catch_all = false;
};

// The routes of every service with a port, as rules in priority order: exact paths first, then
// longer prefixes before shorter ones, catch-alls last (the router's order). Each rule holds at
// most `max_paths` paths (a prefix `/api/*` counts as two: "/api" and "/api/*"); longer lists
// become several rules. Services keep an explicit `priority` order among themselves first.
std::vector<RouteRule> OrderedRules(const spec::Project& project, size_t max_paths);

}  // namespace adhoc::render
