#include "render/kubernetes.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>

#include "render/yaml.h"
#include "spec/placeholders.h"

namespace adhoc::render {

namespace {

constexpr char kRedisImage[] = "redis:7-alpine";
constexpr int kRedisPort = 6379;
constexpr int kPostgresPort = 5432;
constexpr char kCredentials[] = "credentials";

// The environment variable a secret placeholder's value reaches a container through.
std::string SecretVariable(const std::string& key) {
  std::string out = "ADHOC_";
  for (char c : key) {
    if (c >= 'a' && c <= 'z')
      out += static_cast<char>(c - 'a' + 'A');
    else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
      out += c;
    else
      out += '_';
  }
  return out;
}

// Kubernetes expands $(NAME) in env values and commands: user text keeps its `$(` as `$$(`.
std::string KubeLiteral(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '(') out += '$';
    out += text[i];
  }
  return out;
}

std::string Millicores(int cpu) { return std::to_string((cpu * 1000 + 1023) / 1024) + "m"; }

class KubeWriter {
 public:
  KubeWriter(const KubernetesInput& in) : in_(in), p_(*in.project) {
    if (p_.targets.kubernetes) k8s_ = *p_.targets.kubernetes;
    domain_ = !k8s_.domain.empty()                                ? k8s_.domain
              : p_.targets.aws && !p_.targets.aws->domain.empty() ? p_.targets.aws->domain
                                                                  : p_.domain;
    statefulset_ = k8s_.postgres == spec::KubernetesTarget::Postgres::kStatefulSet;
  }

  std::string BaseNamespace() const { return k8s_.namespace_prefix + p_.name + "-base"; }
  std::string Namespace(const spec::EnvFile& e) const { return k8s_.namespace_prefix + e.name; }

  std::vector<std::string> KeysFor(const spec::EnvFile& e) const {
    std::set<std::string> keys;
    if (p_.postgres) keys.insert("postgres-password");
    if (p_.redis) keys.insert("redis-password");
    auto collect = [&](const std::string& text) {
      for (const spec::Placeholder& ph : spec::FindPlaceholders(text))
        if (ph.name == "random") keys.insert("random-" + ph.part);
    };
    for (const spec::EnvVar& v : p_.env) collect(v.value);
    for (const spec::EnvVar& v : e.env) collect(v.value);
    for (const spec::Service& s : p_.services) {
      collect(s.command);
      for (const spec::EnvVar& v : s.env) collect(v.value);
    }
    for (const spec::Task& t : p_.tasks) {
      collect(t.command);
      for (const spec::EnvVar& v : t.env) collect(v.value);
    }
    return {keys.begin(), keys.end()};
  }

  std::vector<std::string> BaseKeys() const {
    if (statefulset_ && p_.postgres) return {"postgres-admin-password"};
    return {};
  }

  Result<RenderedFiles> Write() {
    RenderedFiles files;
    if (p_.postgres && statefulset_) {
      ADHOC_ASSIGN_OR_RETURN(std::string secret, Secret("base", BaseKeys()));
      files.push_back(
          {"base/postgres.yaml", Documents({Namespace(BaseNamespace()), StatefulSetSecret(secret),
                                            PostgresStatefulSet(), PostgresService()})});
    }
    if (p_.postgres && !statefulset_ && k8s_.postgres_host.empty())
      return BadInput(p_.where.file +
                      ": [targets.kubernetes] postgres_host: missing (the DNS name of the "
                      "PostgreSQL server environments use), or set postgres = \"statefulset\"");
    for (const spec::EnvFile* e : in_.environments) {
      ADHOC_RETURN_IF_ERROR(WriteEnvironment(*e, &files));
    }
    std::sort(files.begin(), files.end(),
              [](const RenderedFile& a, const RenderedFile& b) { return a.path < b.path; });
    return files;
  }

 private:
  static std::string Documents(const std::vector<ojson>& docs) {
    std::string out;
    for (const ojson& d : docs) out += "---\n" + ToYaml(d);
    return out;
  }

  static ojson Meta(const std::string& name, const std::string& ns) {
    ojson m = {{"name", name}};
    if (!ns.empty()) m["namespace"] = ns;
    m["labels"] = {{"app.kubernetes.io/managed-by", "adhoc"}};
    return m;
  }

  ojson Namespace(const std::string& name) const {
    ojson m = Meta(name, "");
    m["labels"]["adhoc/project"] = p_.name;
    return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", m}};
  }

  Result<std::string> Secret(const std::string& env, const std::vector<std::string>& keys) const {
    auto it = in_.secrets.find(env);
    for (const std::string& k : keys) {
      if (it == in_.secrets.end() || !it->second.count(k))
        return BadInput("no value for secret '" + k + "' of '" + env + "'");
    }
    (void)keys;
    return std::string();
  }

  ojson SecretDoc(const std::string& name, const std::string& ns, const std::string& env,
                  const std::vector<std::string>& keys) const {
    ojson data = ojson::object();
    const auto& values = in_.secrets.at(env);
    for (const std::string& k : keys) data[k] = values.at(k);
    return {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata", Meta(name, ns)},
            {"type", "Opaque"},
            {"stringData", data}};
  }

  ojson StatefulSetSecret(const std::string&) const {
    return SecretDoc("postgres-admin", BaseNamespace(), "base", BaseKeys());
  }

  ojson PostgresStatefulSet() const {
    ojson labels = {{"app", "postgres"}};
    ojson container = {
        {"name", "postgres"},
        {"image", "postgres:15-alpine"},
        {"ports", {{{"containerPort", kPostgresPort}, {"name", "postgres"}}}},
        {"env",
         {{{"name", "POSTGRES_USER"}, {"value", "adhoc_admin"}},
          {{"name", "POSTGRES_PASSWORD"},
           {"valueFrom",
            {{"secretKeyRef", {{"name", "postgres-admin"}, {"key", "postgres-admin-password"}}}}}},
          {{"name", "PGDATA"}, {"value", "/var/lib/postgresql/data/pgdata"}}}},
        {"readinessProbe",
         {{"exec", {{"command", {"pg_isready", "-U", "adhoc_admin"}}}}, {"periodSeconds", 5}}},
        {"volumeMounts", {{{"name", "data"}, {"mountPath", "/var/lib/postgresql/data"}}}}};
    return {{"apiVersion", "apps/v1"},
            {"kind", "StatefulSet"},
            {"metadata", Meta("postgres", BaseNamespace())},
            {"spec",
             {{"serviceName", "postgres"},
              {"replicas", 1},
              {"selector", {{"matchLabels", labels}}},
              {"template",
               {{"metadata", {{"labels", labels}}}, {"spec", {{"containers", {container}}}}}},
              {"volumeClaimTemplates",
               {{{"metadata", {{"name", "data"}}},
                 {"spec",
                  {{"accessModes", {"ReadWriteOnce"}},
                   {"resources", {{"requests", {{"storage", "20Gi"}}}}}}}}}}}}};
  }

  ojson PostgresService() const {
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", Meta("postgres", BaseNamespace())},
            {"spec",
             {{"selector", {{"app", "postgres"}}},
              {"ports", ojson::array({{{"port", kPostgresPort},
                                       {"targetPort", kPostgresPort},
                                       {"name", "postgres"}}})}}}};
  }

  std::string PostgresHost() const {
    return statefulset_ ? "postgres." + BaseNamespace() + ".svc.cluster.local" : k8s_.postgres_host;
  }

  // The value of a placeholder for environment `e` and a process with `port`.
  std::optional<std::string> Value(const spec::EnvFile& e, const std::string& key,
                                   std::optional<int> port) const {
    std::string hostname = e.name + "." + domain_;
    if (key == "env") return e.name;
    if (key == "hostname") return hostname;
    if (key == "url") return "https://" + hostname;
    if (key == "host") return std::string(kCloudHost);
    if (key == "port" && port) return std::to_string(*port);
    if (key == "bind" && port) return std::string(kCloudHost) + ":" + std::to_string(*port);
    if (key == "workdir") return std::string(kCloudWorkdir);
    if (key == "taskdir") return std::string(kCloudTaskdir);
    if (key == "static") return std::string(kCloudStatic);
    size_t dot = key.find('.');
    if (dot == std::string::npos) return std::nullopt;
    std::string name = key.substr(0, dot), part = key.substr(dot + 1);
    if (name == "version") {
      const std::string* ref = e.FindVersion(part);
      if (ref) return *ref;
      return std::nullopt;
    }
    if (name == "postgres" && p_.postgres) {
      if (part == "host") return std::string("postgres");
      if (part == "port") return std::to_string(kPostgresPort);
      if (part == "database") return Database(e);
      if (part == "user") return DatabaseUser(e);
      if (part == "password") return "$(" + SecretVariable("postgres.password") + ")";
      if (part == "url")
        return "postgres://" + DatabaseUser(e) + ":$(" + SecretVariable("postgres.password") +
               ")@postgres:" + std::to_string(kPostgresPort) + "/" + Database(e);
    }
    if (name == "redis" && p_.redis) {
      if (part == "host") return std::string("redis");
      if (part == "port") return std::to_string(kRedisPort);
      if (part == "password") return "$(" + SecretVariable("redis.password") + ")";
      if (part == "url")
        return "redis://:$(" + SecretVariable("redis.password") +
               ")@redis:" + std::to_string(kRedisPort) + "/0";
    }
    if (name == "random" || name == "secret") return "$(" + SecretVariable(key) + ")";
    return std::nullopt;
  }

  std::string Database(const spec::EnvFile& e) const {
    auto r = spec::RenderPlaceholders(p_.postgres->database, {{"env", e.name}});
    return r.ok() ? *r : e.name + "-db";
  }
  static std::string DatabaseUser(const spec::EnvFile& e) {
    std::string role = "env_" + e.name;
    for (char& c : role)
      if (c == '-') c = '_';
    return role;
  }

  Result<std::string> Render(const spec::EnvFile& e, const std::string& text,
                             std::optional<int> port) const {
    std::vector<std::string> values;
    auto rendered = spec::RenderPlaceholders(
        text, [&](const spec::Placeholder& ph) -> std::optional<std::string> {
          auto v = Value(e, ph.Key(), port);
          if (!v) return std::nullopt;
          values.push_back(*v);
          return "\x02" + std::to_string(values.size() - 1) + "\x03";
        });
    if (!rendered.ok())
      return std::move(rendered).error().context("envs/" + e.name + ".toml on Kubernetes");
    std::string literal = KubeLiteral(*rendered), out;
    for (size_t i = 0; i < literal.size(); ++i) {
      if (literal[i] != '\x02') {
        out += literal[i];
        continue;
      }
      size_t end = literal.find('\x03', i);
      out += values[std::stoul(literal.substr(i + 1, end - i - 1))];
      i = end;
    }
    return out;
  }

  // The env list of a container: the secret variables first (others refer to them), then
  // [env] of adhoc.toml, the process's own, the env file's (later wins), then templates.
  Result<ojson> EnvList(const spec::EnvFile& e, const spec::EnvList* own, std::optional<int> port,
                        const std::map<std::string, std::string>& extra) const {
    std::map<std::string, std::string> merged;
    for (const spec::EnvVar& v : p_.env) merged[v.name] = v.value;
    if (own)
      for (const spec::EnvVar& v : *own) merged[v.name] = v.value;
    for (const spec::EnvVar& v : e.env) merged[v.name] = v.value;
    std::set<std::string> secret_keys;
    for (const auto& [name, value] : merged)
      for (const spec::Placeholder& ph : spec::FindPlaceholders(value))
        if (IsSecretPlaceholder(ph.Key())) secret_keys.insert(ph.Key());
    ojson list = ojson::array();
    for (const std::string& key : secret_keys) {
      // postgres.url / redis.url are made of the password variable.
      std::string atom = key == "postgres.url" ? "postgres.password"
                         : key == "redis.url"  ? "redis.password"
                                               : key;
      if (atom != key) continue;
      std::string secret_name = kCredentials, secret_key;
      if (key == "postgres.password") secret_key = "postgres-password";
      if (key == "redis.password") secret_key = "redis-password";
      if (key.starts_with("random.")) secret_key = "random-" + key.substr(7);
      if (key.starts_with("secret.")) {
        secret_name = "user-secrets";
        secret_key = key.substr(7);
      }
      list.push_back(
          {{"name", SecretVariable(key)},
           {"valueFrom", {{"secretKeyRef", {{"name", secret_name}, {"key", secret_key}}}}}});
    }
    for (const char* url_key : {"postgres.url", "redis.url"}) {
      std::string atom =
          std::string(url_key) == "postgres.url" ? "postgres.password" : "redis.password";
      if (secret_keys.count(url_key) && !secret_keys.count(atom))
        list.push_back({{"name", SecretVariable(atom)},
                        {"valueFrom",
                         {{"secretKeyRef",
                           {{"name", kCredentials},
                            {"key", atom == "postgres.password" ? "postgres-password"
                                                                : "redis-password"}}}}}});
    }
    for (const auto& [name, value] : merged) {
      ADHOC_ASSIGN_OR_RETURN(std::string v, Render(e, value, port));
      list.push_back({{"name", name}, {"value", v}});
    }
    for (const auto& [name, value] : extra) list.push_back({{"name", name}, {"value", value}});
    return list;
  }

  std::string Image(const spec::EnvFile& e, const std::string& image) const {
    const std::string* ref = e.FindVersion(image);
    std::string registry =
        k8s_.registry.empty() ? (p_.targets.aws ? p_.targets.aws->registry : "") : k8s_.registry;
    std::string repo = p_.name + "/" + image;
    return (registry.empty() ? repo : registry + "/" + repo) + ":" +
           ImageTag(ref ? *ref : "latest");
  }

  ojson Resources(int cpu, int memory) const {
    ojson r = {{"cpu", Millicores(cpu)}, {"memory", std::to_string(memory) + "Mi"}};
    return {{"requests", r}, {"limits", r}};
  }

  Result<ojson> Container(const spec::EnvFile& e, const std::string& name, const std::string& image,
                          const std::string& command, std::optional<int> port,
                          const spec::EnvList* own, const std::vector<std::string>& templates,
                          const std::string& stop_signal, int cpu, int memory) const {
    std::map<std::string, std::string> template_env, extra;
    for (const std::string& t : templates) {
      auto it = in_.templates.find(image + "/" + t);
      if (it == in_.templates.end())
        return BadInput("the text of template '" + t + "' of '" + name + "' is missing");
      std::string out_name = spec::TemplateOutputName(t);
      template_env[out_name] = TemplateEnvName(out_name);
      ADHOC_ASSIGN_OR_RETURN(std::string text, Render(e, it->second, port));
      extra[TemplateEnvName(out_name)] = text;
    }
    ADHOC_ASSIGN_OR_RETURN(std::string rendered, Render(e, command, port));
    ADHOC_ASSIGN_OR_RETURN(ojson env, EnvList(e, own, port, extra));
    std::vector<std::string> argv = ContainerCommand(rendered, stop_signal, template_env);
    ojson c = {{"name", name}, {"image", Image(e, image)}, {"command", argv}, {"env", env}};
    if (port) c["ports"] = {{{"containerPort", *port}, {"name", "http"}}};
    c["resources"] = Resources(cpu, memory);
    return c;
  }

  static ojson Probe(const spec::HealthCheck& h, std::optional<int> port) {
    ojson probe;
    if (!h.path.empty() && port)
      probe["httpGet"] = {{"path", h.path}, {"port", *port}};
    else
      probe["exec"] = {{"command", {"/bin/sh", "-c", KubeLiteral(h.command)}}};
    probe["periodSeconds"] = h.interval.count();
    probe["timeoutSeconds"] = h.timeout.count();
    probe["successThreshold"] = h.healthy;
    probe["failureThreshold"] = h.unhealthy;
    return probe;
  }

  Status WriteEnvironment(const spec::EnvFile& e, RenderedFiles* files) const {
    const std::string ns = Namespace(e);
    const std::string dir = e.name + "/";
    for (const spec::Image& image : p_.images)
      if (!e.FindVersion(image.name) || *e.FindVersion(image.name) == spec::kWorktreeRef)
        return BadInput(e.where.file + ": versions." + image.name +
                        ": Kubernetes runs pushed images; pin a git ref");
    files->push_back({dir + "namespace.yaml", Documents({Namespace(ns)})});
    std::vector<std::string> keys = KeysFor(e);
    ADHOC_ASSIGN_OR_RETURN(std::string unused, Secret(e.name, keys));
    (void)unused;
    std::vector<ojson> secrets = {SecretDoc(kCredentials, ns, e.name, keys)};
    if (p_.postgres && statefulset_) {
      ADHOC_ASSIGN_OR_RETURN(std::string base, Secret("base", BaseKeys()));
      (void)base;
      ojson admin = {{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata", Meta("postgres-admin", ns)},
                     {"type", "Opaque"},
                     {"stringData",
                      {{"username", "adhoc_admin"},
                       {"password", in_.secrets.at("base").at("postgres-admin-password")}}}};
      secrets.push_back(admin);
    }
    files->push_back({dir + "secret.yaml", Documents(secrets)});
    if (p_.postgres) {
      std::string host = PostgresHost();
      files->push_back(
          {dir + "postgres.yaml",
           Documents({{{"apiVersion", "v1"},
                       {"kind", "Service"},
                       {"metadata", Meta("postgres", ns)},
                       {"spec", {{"type", "ExternalName"}, {"externalName", host}}}}})});
      ADHOC_RETURN_IF_ERROR(AddDatabaseJob(e, ns, files));
    }
    if (p_.redis) files->push_back({dir + "redis.yaml", Documents(Redis(ns))});

    for (const spec::Service& s : p_.services) {
      ADHOC_ASSIGN_OR_RETURN(ojson c, Container(e, s.name, s.image, s.command, s.port, &s.env,
                                                s.templates, s.stop_signal, s.cpu, s.memory));
      if (s.health) c["readinessProbe"] = Probe(*s.health, s.port);
      ojson labels = {{"app", s.name}};
      ojson spec = {
          {"replicas", s.count},
          {"selector", {{"matchLabels", labels}}},
          {"template",
           {{"metadata", {{"labels", labels}}},
            {"spec",
             {{"terminationGracePeriodSeconds", s.stop_timeout.count()}, {"containers", {c}}}}}}};
      // Celery beat and the like: never two at once, also during a rollout.
      if (!s.port && s.count == 1) spec["strategy"] = {{"type", "Recreate"}};
      std::vector<ojson> docs = {{{"apiVersion", "apps/v1"},
                                  {"kind", "Deployment"},
                                  {"metadata", Meta(s.name, ns)},
                                  {"spec", spec}}};
      if (s.port)
        docs.push_back(
            {{"apiVersion", "v1"},
             {"kind", "Service"},
             {"metadata", Meta(s.name, ns)},
             {"spec",
              {{"selector", labels},
               {"ports",
                ojson::array({{{"port", *s.port}, {"targetPort", *s.port}, {"name", "http"}}})}}}});
      files->push_back({dir + "service-" + s.name + ".yaml", Documents(docs)});
    }

    for (const spec::Task& t : p_.tasks) {
      if (t.before != spec::Task::Before::kDeploy) continue;
      ADHOC_ASSIGN_OR_RETURN(ojson c, Container(e, t.name, t.image, t.command, std::nullopt, &t.env,
                                                {}, "TERM", 1024, 2048));
      files->push_back(
          {dir + "job-" + t.name + ".yaml", Documents({Job(t.name, ns, c, t.timeout.count())})});
    }

    files->push_back({dir + "ingress.yaml", Documents({Ingress(e, ns)})});
    return OkStatus();
  }

  static ojson Job(const std::string& name, const std::string& ns, const ojson& container,
                   long deadline) {
    return {
        {"apiVersion", "batch/v1"},
        {"kind", "Job"},
        {"metadata", Meta(name, ns)},
        {"spec",
         {{"backoffLimit", 0},
          {"activeDeadlineSeconds", deadline},
          {"template", {{"spec", {{"restartPolicy", "Never"}, {"containers", {container}}}}}}}}};
  }

  Status AddDatabaseJob(const spec::EnvFile& e, const std::string& ns, RenderedFiles* files) const {
    const std::string sql =
        "SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS "
        "(SELECT FROM pg_roles WHERE rolname = :'role') \\gexec\n"
        "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'password') \\gexec\n"
        "SELECT format('GRANT %I TO CURRENT_USER', :'role') \\gexec\n"
        "SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS "
        "(SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        "SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \\gexec\n";
    std::string script =
        "set -eu\npsql -v ON_ERROR_STOP=1 -v db=\"$$DB_NAME\" -v role=\"$$DB_USER\" "
        "-v password=\"$$DB_PASSWORD\" <<'SQL'\n" +
        sql + "SQL\n";
    auto from = [](const std::string& secret, const std::string& key) {
      return ojson{{"secretKeyRef", {{"name", secret}, {"key", key}}}};
    };
    ojson c = {
        {"name", "db-create"},
        {"image", "postgres:15-alpine"},
        {"command", {"/bin/sh", "-c", script}},
        {"env",
         {{{"name", "PGHOST"}, {"value", "postgres"}},
          {{"name", "PGDATABASE"}, {"value", "postgres"}},
          {{"name", "PGUSER"}, {"valueFrom", from("postgres-admin", "username")}},
          {{"name", "PGPASSWORD"}, {"valueFrom", from("postgres-admin", "password")}},
          {{"name", "DB_NAME"}, {"value", Database(e)}},
          {{"name", "DB_USER"}, {"value", DatabaseUser(e)}},
          {{"name", "DB_PASSWORD"}, {"valueFrom", from(kCredentials, "postgres-password")}}}},
        {"resources", Resources(256, 256)}};
    files->push_back({e.name + "/job-db-create.yaml", Documents({Job("db-create", ns, c, 600)})});
    return OkStatus();
  }

  std::vector<ojson> Redis(const std::string& ns) const {
    ojson labels = {{"app", "redis"}};
    ojson c = {
        {"name", "redis"},
        {"image", kRedisImage},
        {"command",
         {"/bin/sh", "-c",
          "exec redis-server --port " + std::to_string(kRedisPort) +
              " --requirepass \"$$REDIS_PASSWORD\" --appendonly yes --appendfsync everysec"}},
        {"env",
         {{{"name", "REDIS_PASSWORD"},
           {"valueFrom",
            {{"secretKeyRef", {{"name", kCredentials}, {"key", "redis-password"}}}}}}}},
        {"ports", {{{"containerPort", kRedisPort}, {"name", "redis"}}}},
        {"readinessProbe", {{"tcpSocket", {{"port", kRedisPort}}}, {"periodSeconds", 5}}},
        {"resources", Resources(256, 256)}};
    return {
        {{"apiVersion", "apps/v1"},
         {"kind", "Deployment"},
         {"metadata", Meta("redis", ns)},
         {"spec",
          {{"replicas", 1},
           {"strategy", {{"type", "Recreate"}}},
           {"selector", {{"matchLabels", labels}}},
           {"template", {{"metadata", {{"labels", labels}}}, {"spec", {{"containers", {c}}}}}}}}},
        {{"apiVersion", "v1"},
         {"kind", "Service"},
         {"metadata", Meta("redis", ns)},
         {"spec",
          {{"selector", labels},
           {"ports",
            ojson::array(
                {{{"port", kRedisPort}, {"targetPort", kRedisPort}, {"name", "redis"}}})}}}}};
  }

  ojson Ingress(const spec::EnvFile& e, const std::string& ns) const {
    ojson paths = ojson::array();
    for (const RouteRule& rule : OrderedRules(p_, 1000)) {
      const spec::Service* s = p_.FindService(rule.service);
      ojson backend = {{"service", {{"name", s->name}, {"port", {{"number", *s->port}}}}}};
      if (rule.catch_all) {
        paths.push_back({{"path", "/"}, {"pathType", "Prefix"}, {"backend", backend}});
        continue;
      }
      for (const std::string& path : rule.paths) {
        if (path.ends_with("/*")) continue;  // a Prefix path covers "/api" and "/api/..."
        bool prefix = false;
        for (const spec::Route& r : s->routes)
          if (r.path == path && r.kind == spec::Route::Kind::kPrefix) prefix = true;
        paths.push_back(
            {{"path", path}, {"pathType", prefix ? "Prefix" : "Exact"}, {"backend", backend}});
      }
    }
    ojson spec = ojson::object();
    if (!k8s_.ingress_class.empty()) spec["ingressClassName"] = k8s_.ingress_class;
    spec["rules"] = {{{"host", e.name + "." + domain_}, {"http", {{"paths", paths}}}}};
    return {{"apiVersion", "networking.k8s.io/v1"},
            {"kind", "Ingress"},
            {"metadata", Meta(p_.name, ns)},
            {"spec", spec}};
  }

  const KubernetesInput& in_;
  const spec::Project& p_;
  spec::KubernetesTarget k8s_;
  std::string domain_;
  bool statefulset_ = false;

  friend std::map<std::string, std::vector<std::string>> SecretKeysNeeded(const KubernetesInput&);
};

}  // namespace

std::map<std::string, std::vector<std::string>> SecretKeysNeeded(const KubernetesInput& input) {
  KubeWriter w(input);
  std::map<std::string, std::vector<std::string>> out;
  std::vector<std::string> base = w.BaseKeys();
  if (!base.empty()) out["base"] = base;
  for (const spec::EnvFile* e : input.environments) out[e->name] = w.KeysFor(*e);
  return out;
}

Result<RenderedFiles> RenderKubernetes(const KubernetesInput& input) {
  return KubeWriter(input).Write();
}

}  // namespace adhoc::render
