#include "router/feed.h"

#include <sys/stat.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <unordered_set>

namespace adhoc::router {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

Result<std::string> GetString(const json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return BadInput(std::string("missing \"") + key + "\"");
    return std::string();
  }
  if (!it->is_string()) return BadInput(std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<AccessRules> AccessRulesFromJson(const json& j, const std::string& env) {
  AccessRules rules;
  rules.realm = env;
  if (j.is_null()) return rules;
  if (!j.is_object()) return BadInput("\"access\" must be an object");
  static const std::unordered_set<std::string> kKeys = {
      "allow", "basic_auth", "token", "cookie_max_age_s", "public_paths", "realm"};
  for (const auto& [key, value] : j.items()) {
    if (!kKeys.count(key)) {
      return BadInput("access: unknown key \"" + key +
                      "\" (allow, basic_auth, token, cookie_max_age_s, public_paths, realm)");
    }
  }
  auto strings = [&](const char* key, std::vector<std::string>& out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return OkStatus();
    if (!it->is_array()) return BadInput(std::string("access: \"") + key + "\" must be an array");
    for (const json& v : *it) {
      if (!v.is_string()) {
        return BadInput(std::string("access: \"") + key + "\" must be an array of strings");
      }
      out.push_back(v.get<std::string>());
    }
    return OkStatus();
  };
  std::vector<std::string> allow, public_paths;
  ADHOC_RETURN_IF_ERROR(strings("allow", allow));
  for (const std::string& a : allow) {
    auto cidr = ParseCidr(a);
    if (!cidr.ok()) return std::move(cidr).error().context("access: \"allow\"");
    rules.allow.push_back(*cidr);
  }
  ADHOC_RETURN_IF_ERROR(strings("public_paths", public_paths));
  for (const std::string& p : public_paths) {
    auto pattern = ParsePathPattern(p);
    if (!pattern.ok()) return std::move(pattern).error().context("access: \"public_paths\"");
    rules.public_paths.push_back(std::move(*pattern));
  }
  if (auto it = j.find("basic_auth"); it != j.end() && !it->is_null()) {
    if (!it->is_array())
      return BadInput("access: \"basic_auth\" must be an array of {user, password}");
    for (const json& u : *it) {
      if (!u.is_object()) {
        return BadInput("access: \"basic_auth\" must be an array of {user, password}");
      }
      ADHOC_ASSIGN_OR_RETURN(std::string user,
                             std::move(GetString(u, "user", true)).context("access: basic_auth"));
      ADHOC_ASSIGN_OR_RETURN(
          std::string password,
          std::move(GetString(u, "password", true)).context("access: basic_auth"));
      if (user.empty() || user.find(':') != std::string::npos) {
        return BadInput("access: basic_auth: user '" + user + "' must be non-empty, without ':'");
      }
      if (password.empty()) {
        return BadInput("access: basic_auth: user '" + user + "' has an empty password");
      }
      for (char c : user + password) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          return BadInput("access: basic_auth: user '" + user +
                          "': control characters in the user or password");
        }
      }
      rules.AddBasicUser(user, password);
    }
  }
  ADHOC_ASSIGN_OR_RETURN(rules.token, std::move(GetString(j, "token", false)).context("access"));
  if (!rules.token.empty()) {
    // The token travels in a URL and a cookie: unreserved characters only, and long enough
    // not to be guessed.
    if (rules.token.size() < 16)
      return BadInput("access: \"token\" must have 16 characters or more");
    for (char c : rules.token) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '~';
      if (!ok) return BadInput("access: \"token\" may hold only A-Z a-z 0-9 - _ . ~");
    }
  }
  if (auto it = j.find("cookie_max_age_s"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 60) {
      return BadInput("access: \"cookie_max_age_s\" must be an integer >= 60");
    }
    rules.cookie_max_age_s = it->get<int64_t>();
  }
  ADHOC_ASSIGN_OR_RETURN(std::string realm,
                         std::move(GetString(j, "realm", false)).context("access"));
  if (!realm.empty()) rules.realm = realm;
  for (char c : rules.realm) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return BadInput("access: \"realm\" may not hold quotes, backslashes or control characters");
    }
  }
  if (!rules.public_paths.empty() && !rules.needs_credentials()) {
    return BadInput(
        "access: \"public_paths\" needs \"basic_auth\" or \"token\" (public from what?)");
  }
  return rules;
}

Result<Environment> EnvironmentFromJson(const json& j) {
  if (!j.is_object()) return BadInput("an environment must be a JSON object");
  Environment env;
  ADHOC_ASSIGN_OR_RETURN(env.name, GetString(j, "name", true));
  std::string ctx = "environment '" + env.name + "'";
  auto hosts = j.find("hosts");
  if (hosts == j.end() || !hosts->is_array()) {
    return BadInput("\"hosts\" must be an array of strings").context(ctx);
  }
  for (const json& h : *hosts) {
    if (!h.is_string()) return BadInput("\"hosts\" must be an array of strings").context(ctx);
    env.hosts.push_back(h.get<std::string>());
  }
  ADHOC_ASSIGN_OR_RETURN(std::string status, std::move(GetString(j, "status", false)).context(ctx));
  if (!status.empty()) {
    ADHOC_ASSIGN_OR_RETURN(env.status, std::move(ParseEnvStatus(status)).context(ctx));
  }
  if (auto routes = j.find("routes"); routes != j.end()) {
    if (!routes->is_array()) return BadInput("\"routes\" must be an array").context(ctx);
    for (const json& r : *routes) {
      if (!r.is_object()) return BadInput("a route must be an object").context(ctx);
      Route route;
      ADHOC_ASSIGN_OR_RETURN(route.pattern, std::move(GetString(r, "pattern", true)).context(ctx));
      std::string rctx = "route '" + route.pattern + "'";
      if (auto p = r.find("priority"); p != r.end() && !p->is_null()) {
        if (!p->is_number_integer()) {
          return BadInput("\"priority\" must be an integer").context(rctx).context(ctx);
        }
        route.priority = p->get<int>();
      }
      ADHOC_ASSIGN_OR_RETURN(route.service,
                             std::move(GetString(r, "service", false)).context(rctx).context(ctx));
      ADHOC_ASSIGN_OR_RETURN(route.folder,
                             std::move(GetString(r, "folder", false)).context(rctx).context(ctx));
      if (auto targets = r.find("targets"); targets != r.end() && !targets->is_null()) {
        if (!targets->is_array()) {
          return BadInput("\"targets\" must be an array").context(rctx).context(ctx);
        }
        for (const json& t : *targets) {
          if (!t.is_object()) {
            return BadInput("a target must be an object").context(rctx).context(ctx);
          }
          Target target;
          ADHOC_ASSIGN_OR_RETURN(target.id, std::move(GetString(t, "id", false)).context(ctx));
          ADHOC_ASSIGN_OR_RETURN(
              target.address, std::move(GetString(t, "address", true)).context(rctx).context(ctx));
          route.targets.push_back(std::move(target));
        }
      }
      if (route.folder.empty() && route.service.empty() && route.targets.empty()) {
        return BadInput("a route needs a \"service\" (with \"targets\") or a \"folder\"")
            .context(rctx)
            .context(ctx);
      }
      env.routes.push_back(std::move(route));
    }
  }
  if (auto access = j.find("access"); access != j.end()) {
    auto rules = AccessRulesFromJson(*access, env.name);
    if (!rules.ok()) return std::move(rules).error().context(ctx);
    env.access = std::make_shared<const AccessRules>(std::move(*rules));
  }
  return env;
}

std::string FeedHandler::Handle(std::string_view line) {
  json answer;
  try {
    json message = json::parse(line);
    answer = Apply(message);
  } catch (const json::exception& e) {
    answer = {{"ok", false}, {"error", std::string("bad JSON message: ") + e.what()}};
  }
  return answer.dump(-1, ' ', false, json::error_handler_t::replace);
}

json FeedHandler::Apply(const json& message) {
  auto fail = [](const std::string& error) { return json{{"ok", false}, {"error", error}}; };
  if (!message.is_object() || !message.contains("op") || !message["op"].is_string()) {
    return fail("a message is an object with a string \"op\"");
  }
  const std::string op = message["op"].get<std::string>();
  if (op == "ping") return {{"ok", true}, {"pong", true}};
  if (op == "stats") {
    json out = Stats();
    // Per-address outstanding requests, for draining one target (not the whole environment).
    if (auto addresses = message.find("addresses"); addresses != message.end()) {
      if (!addresses->is_array()) return fail("stats: \"addresses\" must be an array");
      json upstreams = json::object();
      for (const json& a : *addresses) {
        if (!a.is_string()) return fail("stats: \"addresses\" holds strings");
        upstreams[a.get<std::string>()] = registry_.Outstanding(a.get<std::string>());
      }
      out["upstreams"] = upstreams;
    }
    return out;
  }
  if (op == "metrics") {
    if (!hooks_.metrics) return fail("metrics: not available");
    return {{"ok", true}, {"text", hooks_.metrics()}};
  }
  if (op == "reload_tls") {
    if (!hooks_.reload_tls) return fail("reload_tls: the router has no HTTPS listener");
    Status s = hooks_.reload_tls();
    if (!s.ok()) return fail("reload_tls: " + s.error().message());
    return {{"ok", true}};
  }

  std::lock_guard lock(update_mu_);
  if (op == "replace_all") {
    auto envs_json = message.find("envs");
    if (envs_json == message.end() || !envs_json->is_array()) {
      return fail("replace_all: \"envs\" must be an array");
    }
    std::vector<Environment> envs;
    for (const json& e : *envs_json) {
      auto env = EnvironmentFromJson(e);
      if (!env.ok()) return fail("replace_all: " + env.error().message());
      envs.push_back(std::move(*env));
    }
    std::unordered_set<std::string> kept;
    for (const Environment& e : envs) kept.insert(e.name);
    auto table = RouteTable::Build(std::move(envs), registry_);
    if (!table.ok()) return fail("replace_all: " + table.error().message());
    std::vector<std::string> gone;
    for (const auto& [name, env] : holder_.Load()->envs()) {
      if (!kept.count(name)) gone.push_back(name);
    }
    size_t count = (*table)->envs().size();
    holder_.Store(std::move(*table));
    for (const std::string& name : gone) Removed(registry_.ForgetEnv(name));
    return {{"ok", true}, {"envs", count}};
  }
  if (op == "put_env") {
    auto env_json = message.find("env");
    if (env_json == message.end()) return fail("put_env: missing \"env\"");
    auto env = EnvironmentFromJson(*env_json);
    if (!env.ok()) return fail("put_env: " + env.error().message());
    auto table = holder_.Load()->WithEnv(std::move(*env), registry_);
    if (!table.ok()) return fail("put_env: " + table.error().message());
    holder_.Store(std::move(*table));
    return {{"ok", true}};
  }
  if (op == "remove_env") {
    auto name = GetString(message, "name", true);
    if (!name.ok()) return fail("remove_env: " + name.error().message());
    auto table = holder_.Load()->WithoutEnv(*name);
    if (!table.ok()) return fail("remove_env: " + table.error().message());
    holder_.Store(std::move(*table));
    Removed(registry_.ForgetEnv(*name));
    return {{"ok", true}};
  }
  return fail("unknown op '" + op +
              "' (replace_all, put_env, remove_env, stats, metrics, reload_tls, ping)");
}

void FeedHandler::Removed(std::shared_ptr<EnvStats> stats) {
  if (stats && hooks_.env_removed) hooks_.env_removed(std::move(stats));
}

json FeedHandler::Stats() const {
  json envs = json::object();
  auto table = holder_.Load();
  for (const auto& [name, env] : table->envs()) {
    const EnvStats& s = *env->stats;
    envs[name] = {{"requests", s.requests.load()},
                  {"bytes", s.bytes.load()},
                  {"bytes_received", s.bytes_received.load()},
                  {"last_request_ms", s.last_request_ms.load()},
                  {"errors_5xx", s.errors_5xx.load()},
                  {"in_flight", s.in_flight.load()},
                  {"upgraded", s.upgraded.load()}};
  }
  return {{"ok", true}, {"now_ms", NowMs()}, {"envs", envs}};
}

// ---------------------------------------------------------------------------

struct FeedServer::Impl : std::enable_shared_from_this<FeedServer::Impl> {
  explicit Impl(FeedHandler& h) : handler(h) {}

  struct Session : std::enable_shared_from_this<Session> {
    Session(FeedHandler& h, asio::local::stream_protocol::socket s)
        : handler(h), socket(std::move(s)) {}
    FeedHandler& handler;
    asio::local::stream_protocol::socket socket;
    std::string in, out;

    void Read() {
      auto self = shared_from_this();
      asio::async_read_until(socket, asio::dynamic_buffer(in, 64 << 20), '\n',
                             [self](boost::system::error_code ec, size_t n) {
                               if (ec) return;
                               std::string line = self->in.substr(0, n - 1);
                               self->in.erase(0, n);
                               if (!line.empty() && line.back() == '\r') line.pop_back();
                               if (line.empty()) return self->Read();
                               self->out = self->handler.Handle(line) + "\n";
                               asio::async_write(self->socket, asio::buffer(self->out),
                                                 [self](boost::system::error_code ec, size_t) {
                                                   if (!ec) self->Read();
                                                 });
                             });
    }
  };

  void Accept() {
    acceptor.async_accept(
        [this](boost::system::error_code ec, asio::local::stream_protocol::socket s) {
          if (ec) return;
          auto session = std::make_shared<Session>(handler, std::move(s));
          std::erase_if(sessions, [](const auto& w) { return w.expired(); });
          sessions.push_back(session);
          session->Read();
          Accept();
        });
  }

  FeedHandler& handler;
  asio::io_context io;
  asio::local::stream_protocol::acceptor acceptor{io};
  std::vector<std::weak_ptr<Session>> sessions;
  std::filesystem::path path;
  std::thread thread;
};

FeedServer::FeedServer(FeedHandler& handler) : impl_(std::make_unique<Impl>(handler)) {}
FeedServer::~FeedServer() { Stop(); }

Status FeedServer::Start(const std::filesystem::path& socket_path) {
  std::error_code fs_ec;
  std::filesystem::create_directories(socket_path.parent_path(), fs_ec);
  std::filesystem::remove(socket_path, fs_ec);
  boost::system::error_code ec;
  asio::local::stream_protocol::endpoint endpoint(socket_path.string());
  // Created with umask 077 so the socket is never briefly reachable by others.
  mode_t old = umask(077);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  umask(old);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Failed("feed socket " + socket_path.string() + ": " + ec.message());
  chmod(socket_path.c_str(), 0600);
  impl_->path = socket_path;
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
  return OkStatus();
}

void FeedServer::Stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
    for (auto& weak : impl->sessions) {
      if (auto s = weak.lock()) s->socket.close(ec);
    }
  });
  impl_->thread.join();
  std::error_code fs_ec;
  std::filesystem::remove(impl_->path, fs_ec);
}

}  // namespace adhoc::router
