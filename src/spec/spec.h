// The user's files as plain structs: adhoc.toml (Project) and envs/<name>.toml (EnvFile).
//
// These are values: the loader (loader.h) fills them, everyone else reads them. Lists
// keep the order of the file (images, services, tasks, env keys, versions), because
// order is meaningful (`before = "deploy"` tasks run in file order). Every item keeps
// the file and line it came from, for messages and for the reasons of a plan.
// Defaults below are DESIGN's. Strings that may hold placeholders (commands, env
// values, basic_auth, the database name) are raw templates: see placeholders.h.
// Not thread-safe beyond what any value type is.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace adhoc::spec {

using Seconds = std::chrono::seconds;

struct SourceLocation {
  std::string file;  // as shown in messages: "adhoc.toml", "envs/demo.toml"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown

  std::string ToString() const { return file + ":" + std::to_string(line); }
};

// One environment variable; `value` is a template.
struct EnvVar {
  std::string name;
  std::string value;
  SourceLocation where;
};
using EnvList = std::vector<EnvVar>;  // file order; names unique

// A route pattern: "/exact", "/prefix/*" (also matches "/prefix") or "/*".
struct Route {
  enum class Kind { kExact, kPrefix, kCatchAll };
  std::string pattern;  // as written: "/api/*"
  Kind kind = Kind::kExact;
  std::string path;  // "/api" for "/api/*", "/" for "/*", the pattern for an exact route
  SourceLocation where;
};

struct Image {
  std::string name;
  std::string path;                // folder of the repository, relative; "." for the root
  std::vector<std::string> build;  // run once per version in the release folder, not templated
  std::string dockerfile;          // cloud targets only; empty: none given
  // The interpreter of the image's Python programs, absolute. Set: adhoc keeps one of it
  // running per release (a fork server, runtime/warm_start.h) with `preload` imported, and
  // starts the programs that run it by fork instead of by exec. Local runs only.
  std::string python;
  std::vector<std::string> preload;  // module names, imported once per release
  SourceLocation where;
};

struct Postgres {
  std::string database = "{env}-db";  // template; {env} only
  SourceLocation where;
};

struct Redis {
  // MiB: Redis's `maxmemory`, with `maxmemory-policy noeviction` (a write past it fails with
  // OOM; nothing is evicted, since a broker's evicted key is a lost task). Bounds what one
  // environment's Redis may take of the machine (docs/files.md#redis).
  int memory = 64;
  SourceLocation where;
};

struct Static {
  std::vector<Route> routes;  // served from the environment's {static} folder
  SourceLocation where;
};

// One range of the health matcher: "200-399" is {200, 399}, "200" is {200, 200}.
struct StatusRange {
  int low = 200;
  int high = 399;
};

struct HealthCheck {
  std::string path;     // HTTP GET path ("/api/health-check/"); empty when `command` is set
  std::string command;  // a template; exit 0 = healthy; empty when `path` is set
  Seconds interval{7};
  Seconds timeout{5};
  int healthy = 2;                  // consecutive successes to become healthy
  int unhealthy = 3;                // consecutive failures to become unhealthy
  std::string matcher = "200-399";  // as written: "200-299,302"
  std::vector<StatusRange> matcher_ranges = {{200, 399}};  // parsed `matcher`
  Seconds start_timeout{60};  // fast probing at start gives up after this
  SourceLocation where;

  bool Matches(int status) const {
    for (const StatusRange& r : matcher_ranges)
      if (status >= r.low && status <= r.high) return true;
    return false;
  }
};

struct Service {
  std::string name;
  std::string image;
  std::string command;  // template
  std::optional<int> port;
  std::optional<HealthCheck> health;
  std::vector<Route> routes;
  std::optional<int> priority;       // explicit route priority; lower wins (as ALB)
  int count = 1;                     // tasks of this service; 0 allowed (scaled down)
  int cpu = 1024;                    // 1/1024 core units, a hard limit
  int memory = 2048;                 // MiB, a hard limit
  std::string stop_signal = "TERM";  // name without "SIG"
  int stop_signal_number = 15;
  Seconds stop_timeout{10};
  // Never two at once, also during a deploy: the old task stops before its replacement
  // starts (Celery beat). Default: the new task starts and is healthy first.
  bool singleton = false;
  // How long a task out of the rotation may finish its requests in flight before it is
  // stopped (the seed's target group deregistration delay).
  Seconds drain{5};
  std::vector<std::string> templates;  // relative to the image folder, each ending in ".in"
  EnvList env;
  SourceLocation where;
};

// "nginx.conf.in" -> "nginx.conf": the name a template is rendered to in {taskdir}.
std::string TemplateOutputName(const std::string& template_name);

struct Task {
  enum class Before { kNone, kDeploy };
  enum class After { kNone, kCreate };
  // kDatabase: its only effect is the database, so a template migrated once per release can
  // stand in for it; kStatic: its only effect is files in {static}, the same for every
  // environment on a release, so they are kept once and linked (see docs/files.md).
  enum class Cache { kNone, kDatabase, kStatic };

  std::string name;
  std::string image;
  std::string command;  // template
  Before before = Before::kNone;
  After after = After::kNone;
  Cache cache = Cache::kNone;
  Seconds timeout{600};
  EnvList env;
  SourceLocation where;
};

struct AwsTarget {
  std::string domain;
  std::string registry;
  std::string region = "us-east-1";
  std::string certificate_arn;  // the wildcard certificate of `domain`; empty: a variable
  std::string hosted_zone_id;   // the Route 53 zone of `domain`; empty: a variable
  std::string state_bucket;     // Terraform state; empty: "<project>-terraform-state"
  std::string lock_table;       // Terraform lock table; empty: "<project>-terraform-lock"
  std::string postgres_version = "15";
  std::string db_instance_class = "db.t3.micro";
  int rule_quota = 100;  // rules the shared HTTPS listener may hold (the AWS default quota)
  SourceLocation where;
};

struct KubernetesTarget {
  std::string namespace_prefix;
  std::string ingress_class;
  std::string registry;
  std::string domain;  // hosts are <env>.<domain>; empty: [targets.aws] domain, then `domain`
  enum class Postgres { kExternal, kStatefulSet };
  Postgres postgres = Postgres::kExternal;  // the base's PostgreSQL
  std::string postgres_host;                // kExternal: the server's DNS name (required)
  SourceLocation where;
};

struct Targets {
  std::optional<AwsTarget> aws;
  std::optional<KubernetesTarget> kubernetes;
};

// [access]: who may reach an environment through the router (docs/files.md). adhoc.toml's
// table is every environment's default; an env file's table replaces it key by key. A key
// that is absent (nullopt) takes the default; a key that is present replaces it, and an empty
// string or array turns that part off. Values that may hold placeholders are raw templates
// ({env}, {hostname}, {url}, {random.NAME}; {secret.NAME} is not built yet).
struct Access {
  std::optional<std::vector<std::string>> basic_auth;    // "user:password" templates
  std::optional<std::string> token;                      // a template: the token link's secret
  std::optional<std::vector<std::string>> allow;         // CIDRs ("10.0.0.0/8") or single addresses
  std::optional<std::vector<std::string>> public_paths;  // route patterns needing no credentials
  std::map<std::string, SourceLocation> where_key;       // "token" -> where it was written
  SourceLocation where;                                  // of the table

  // Where `key` was written, else where the table was.
  SourceLocation Where(const std::string& key) const;
  // Whether these rules keep anyone out: an address list, users or a token.
  bool guards() const;
};

// [notify]: a webhook told when an environment nears the end of its TTL (`expiring`, once per
// expiry time) and when the TTL destroys it (`expired`); see docs/files.md.
struct Notify {
  std::string url;                     // http:// or https:// (spec/http_url.h)
  Seconds before{Seconds(24 * 3600)};  // the `expiring` notice goes this long before the expiry
  SourceLocation where;
};

// adhoc.toml
struct Project {
  std::string name;
  std::string domain = "localhost";
  std::vector<Image> images;
  std::optional<Postgres> postgres;
  std::optional<Redis> redis;
  std::optional<Static> static_files;  // [static]
  // Default idle time before an environment sleeps (env files may override it); nullopt or
  // 0s ("never"): environments sleep only when their own file says so.
  std::optional<Seconds> sleep_after;
  EnvList env;
  std::vector<Service> services;
  std::vector<Task> tasks;
  Targets targets;
  std::optional<Access> access;  // every environment's default [access]
  std::optional<Notify> notify;  // [notify]; absent: no webhook
  SourceLocation where;

  // nullptr when absent. Pointers stay valid while the Project is not modified.
  const Image* FindImage(const std::string& name) const;
  const Service* FindService(const std::string& name) const;
  const Task* FindTask(const std::string& name) const;
};

// `data` of an env file: where a new environment's data comes from.
struct DataSource {
  enum class Kind { kEmpty, kSnapshot, kEnv, kFile };
  Kind kind = Kind::kEmpty;  // empty: a new database, migrated
  std::string argument;      // snapshot name, environment name or file path

  // Back to the file's form: "", "snapshot:NAME", "env:NAME", "file:PATH".
  std::string ToString() const;
};

struct VersionPin {
  std::string image;
  std::string ref;  // a git ref, or "@worktree" for the uncommitted working tree
  SourceLocation where;
};
inline constexpr char kWorktreeRef[] = "@worktree";

// [targets.aws] of an env file: what the AWS target records about this environment.
struct EnvAwsTarget {
  std::optional<int> slot;  // its listener rules' priority block; unique among env files
  SourceLocation where;     // of `slot` when present, else of the table
};

// envs/<name>.toml
struct EnvFile {
  std::string name;  // from the file name
  std::string owner;
  // Both: nullopt when the file does not say; 0s when it says "never".
  std::optional<Seconds> ttl;          // absent or "never": never expires
  std::optional<Seconds> sleep_after;  // absent: adhoc.toml's; "never": never put to sleep
  DataSource data;
  std::vector<VersionPin> versions;  // file order; images unique
  EnvList env;
  std::optional<Access> access;
  std::optional<EnvAwsTarget> aws;  // [targets.aws]
  SourceLocation where;

  // The pinned ref of `image`, or nullptr.
  const std::string* FindVersion(const std::string& image) const;
};

// The rules an environment gets: the env file's [access] over adhoc.toml's, key by key.
// nullopt when neither file has an [access] table.
std::optional<Access> EffectiveAccess(const Project& project, const EnvFile& env_file);

}  // namespace adhoc::spec
