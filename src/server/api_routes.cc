#include "server/api_routes.h"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>

#include "server/control_plane.h"
#include "server/dashboard.h"
#include "server/log_stream.h"
#include "spec/names.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Progress of an API request: ndjson events when the client asked for a stream.
class ApiProgress : public Progress {
 public:
  explicit ApiProgress(ApiResponder* responder) : responder_(responder) {}
  void OperationStarted(int64_t id, const std::string& env, const std::string& kind) override {
    Send({{"type", "operation"}, {"id", id}, {"env", env}, {"kind", kind}});
  }
  void StepStarted(const std::string& step) override {
    Send({{"type", "step"}, {"name", step}, {"status", "running"}});
  }
  void StepDone(const std::string& step, long long ms, const std::string& detail) override {
    Send({{"type", "step"},
          {"name", step},
          {"status", "done"},
          {"elapsed_ms", ms},
          {"detail", detail}});
  }
  void StepFailed(const std::string& step, long long ms, const std::string& message) override {
    Send({{"type", "step"},
          {"name", step},
          {"status", "failed"},
          {"elapsed_ms", ms},
          {"detail", message}});
  }
  void Log(const std::string& process, const std::string& task, const std::string& line) override {
    Send({{"type", "log"}, {"process", process}, {"task", task}, {"line", line}});
  }
  void Note(const std::string& message) override { Send({{"type", "note"}, {"message", message}}); }

 private:
  void Send(const json& event) {
    if (responder_) responder_->Event(event);
  }
  ApiResponder* responder_;
};

std::string Iso(state::Millis ms) {
  std::time_t t = ms / 1000;
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::gmtime(&t));
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

// An integer query parameter in [low, high]; `fallback` when absent.
Result<long long> IntParam(const ApiRequest& req, const std::string& name, long long fallback,
                           long long low, long long high) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return fallback;
  const std::string& text = it->second;
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < low ||
      value > high)
    return BadInput(fmt::format("query parameter {}={}: expected a whole number from {} to {}",
                                name, text, low, high));
  return value;
}

Result<bool> BoolParam(const ApiRequest& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return false;
  if (it->second == "1" || it->second == "true") return true;
  if (it->second == "0" || it->second == "false" || it->second.empty()) return false;
  return BadInput("query parameter " + name + "=" + it->second + ": expected 1 or 0");
}

// A process name as adhoc.toml allows them (also `run`): letters, digits, '-' and '_'.
Status CheckProcessName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name)
    ok &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_';
  if (!ok) return BadInput("'" + name + "' is not a service or task name");
  return OkStatus();
}

// The JSON body as an object ({} when absent); BadInput for anything else.
Result<json> BodyObject(const ApiRequest& req) {
  if (req.body.is_null()) return json::object();
  if (!req.body.is_object()) return BadInput("the request body must be a JSON object");
  return req.body;
}

Result<std::string> StringField(const json& body, const std::string& name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return BadInput("the request needs \"" + name + "\"");
    return std::string();
  }
  if (!it->is_string()) return BadInput("\"" + name + "\" must be a string");
  return it->get<std::string>();
}

Result<bool> BoolField(const json& body, const std::string& name, bool fallback) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return BadInput("\"" + name + "\" must be true or false");
  return it->get<bool>();
}

Result<fs::path> ProjectField(const json& body) {
  ADHOC_ASSIGN_OR_RETURN(std::string project, StringField(body, "project", true));
  if (project.empty() || project[0] != '/')
    return BadInput("\"project\" must be the repository's absolute path, not '" + project + "'");
  return fs::path(project);
}

// Sends a long operation's result: the last event of a stream, or the reply.
void Finish(ApiResponder& r, bool stream, const Result<json>& result) {
  if (!result.ok()) return r.Fail(result.error());
  if (stream)
    r.Event({{"type", "result"}, {"ok", true}, {"env", *result}});
  else
    r.Reply(200, *result);
}

}  // namespace

void RegisterApi(ApiServer& api, ControlPlane& cp) {
  api.Handle("GET", "/v1/health", [&cp](const ApiRequest&, ApiResponder& r) {
    const auto& o = cp.options();
    r.Reply(200,
            {{"ok", true},
             {"version", "0.1.0"},
             {"pid", getpid()},
             {"home", o.home.string()},
             {"router", o.router.listen_address + ":" + std::to_string(o.router.listen_port)}});
  });
  api.Handle("GET", "/", [](const ApiRequest&, ApiResponder& r) {
    r.ReplyBody(200, "text/html; charset=utf-8", DashboardPage());
  });
  api.Handle("GET", "/v1/dashboard", [&cp](const ApiRequest&, ApiResponder& r) {
    auto j = cp.DashboardJson();
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  api.Handle("GET", "/v1/environments", [&cp](const ApiRequest&, ApiResponder& r) {
    auto j = cp.ListJson();
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  api.Handle("GET", "/v1/environments/{env}", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto j = cp.EnvironmentJson(req.params.at("env"));
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  api.Handle("POST", "/v1/environments/{env}/plan", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto body = BodyObject(req);
    if (!body.ok()) return r.Fail(body.error());
    auto project = ProjectField(*body);
    if (!project.ok()) return r.Fail(project.error());
    auto j = cp.Plan(req.params.at("env"), *project);
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  api.Handle("POST", "/v1/environments/{env}/up", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto body = BodyObject(req);
    if (!body.ok()) return r.Fail(body.error());
    auto project = ProjectField(*body);
    if (!project.ok()) return r.Fail(project.error());
    auto wait = BoolField(*body, "wait", true);
    if (!wait.ok()) return r.Fail(wait.error());
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Finish(r, req.wants_stream, cp.Up(req.params.at("env"), *project, progress, *wait));
  });
  api.Handle(
      "POST", "/v1/environments/{env}/deploy", [&cp](const ApiRequest& req, ApiResponder& r) {
        auto body = BodyObject(req);
        if (!body.ok()) return r.Fail(body.error());
        auto wait = BoolField(*body, "wait", true);
        if (!wait.ok()) return r.Fail(wait.error());
        auto versions = body->find("versions");
        if (versions == body->end() || !versions->is_object() || versions->empty())
          return r.Fail(
              BadInput("the request needs \"versions\": an object of image names to refs"));
        std::map<std::string, std::string> wanted;
        for (auto& [image, ref] : versions->items()) {
          if (!ref.is_string() || ref.get<std::string>().empty())
            return r.Fail(
                BadInput("\"versions\": the ref of '" + image + "' must be a non-empty string"));
          wanted[image] = ref.get<std::string>();
        }
        ApiProgress progress(req.wants_stream ? &r : nullptr);
        Finish(r, req.wants_stream, cp.Deploy(req.params.at("env"), wanted, progress, *wait));
      });
  api.Handle("POST", "/v1/environments/{env}/destroy",
             [&cp](const ApiRequest& req, ApiResponder& r) {
               auto body = BodyObject(req);
               if (!body.ok()) return r.Fail(body.error());
               auto wait = BoolField(*body, "wait", true);
               if (!wait.ok()) return r.Fail(wait.error());
               ApiProgress progress(req.wants_stream ? &r : nullptr);
               Finish(r, req.wants_stream, cp.Destroy(req.params.at("env"), progress, *wait));
             });
  api.Handle("POST", "/v1/environments/{env}/sleep", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto body = BodyObject(req);
    if (!body.ok()) return r.Fail(body.error());
    auto wait = BoolField(*body, "wait", true);
    if (!wait.ok()) return r.Fail(wait.error());
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Finish(r, req.wants_stream, cp.Sleep(req.params.at("env"), progress, *wait));
  });
  api.Handle("POST", "/v1/environments/{env}/wake", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto body = BodyObject(req);
    if (!body.ok()) return r.Fail(body.error());
    auto wait = BoolField(*body, "wait", true);
    if (!wait.ok()) return r.Fail(wait.error());
    auto background = BoolField(*body, "background", false);
    if (!background.ok()) return r.Fail(background.error());
    if (*background) {
      // The router's "wake ENV": answered at once, the wake goes on without the caller.
      auto j = cp.WakeInBackground(req.params.at("env"));
      return j.ok() ? r.Reply(202, *j) : r.Fail(j.error());
    }
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Finish(r, req.wants_stream, cp.Wake(req.params.at("env"), progress, *wait));
  });
  api.Handle(
      "POST", "/v1/environments/{env}/snapshot", [&cp](const ApiRequest& req, ApiResponder& r) {
        auto body = BodyObject(req);
        if (!body.ok()) return r.Fail(body.error());
        auto name = StringField(*body, "name", true);
        if (!name.ok()) return r.Fail(name.error());
        auto wait = BoolField(*body, "wait", true);
        if (!wait.ok()) return r.Fail(wait.error());
        ApiProgress progress(req.wants_stream ? &r : nullptr);
        Finish(r, req.wants_stream, cp.Snapshot(req.params.at("env"), *name, progress, *wait));
      });
  api.Handle("POST", "/v1/environments/{env}/reset", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto body = BodyObject(req);
    if (!body.ok()) return r.Fail(body.error());
    auto wait = BoolField(*body, "wait", true);
    if (!wait.ok()) return r.Fail(wait.error());
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Finish(r, req.wants_stream, cp.Reset(req.params.at("env"), progress, *wait));
  });
  api.Handle("GET", "/v1/snapshots", [&cp](const ApiRequest&, ApiResponder& r) {
    auto j = cp.SnapshotsJson();
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  api.Handle("DELETE", "/v1/snapshots/{name}", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto j = cp.RemoveSnapshot(req.params.at("name"));
    j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
  });
  api.Handle("POST", "/v1/environments/{env}/run", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto body = BodyObject(req);
    if (!body.ok()) return r.Fail(body.error());
    auto task = StringField(*body, "task", false);
    if (!task.ok()) return r.Fail(task.error());
    std::vector<std::string> argv;
    if (auto command = body->find("command"); command != body->end() && !command->is_null()) {
      if (!command->is_array() || command->empty())
        return r.Fail(BadInput("\"command\" must be a non-empty array of strings"));
      for (const auto& word : *command) {
        if (!word.is_string()) return r.Fail(BadInput("\"command\" must hold only strings"));
        argv.push_back(word.get<std::string>());
      }
    }
    if (task->empty() == argv.empty())
      return r.Fail(BadInput("give either \"task\" (a task of adhoc.toml) or \"command\""));
    if (!task->empty())
      if (Status s = CheckProcessName(*task); !s.ok()) return r.Fail(s.error());
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    auto code = cp.Run(req.params.at("env"), *task, argv, progress);
    if (!code.ok()) return r.Fail(code.error());
    Finish(r, req.wants_stream, json{{"exit_code", *code}});
  });
  api.Handle("GET", "/v1/environments/{env}/exec/{service}",
             [&cp](const ApiRequest& req, ApiResponder& r) {
               if (Status s = CheckProcessName(req.params.at("service")); !s.ok())
                 return r.Fail(s.error());
               auto j = cp.ExecSpec(req.params.at("env"), req.params.at("service"));
               j.ok() ? r.Reply(200, *j) : r.Fail(j.error());
             });
  api.Handle("GET", "/v1/environments/{env}/logs", [&cp](const ApiRequest& req, ApiResponder& r) {
    LogQuery q;
    q.env = req.params.at("env");
    if (Status s = spec::ValidateEnvName(q.env); !s.ok()) return r.Fail(s.error());
    auto found = cp.store().FindEnvironment(q.env);
    if (!found.ok()) return r.Fail(found.error());
    if (!*found) return r.Fail(NotFound("no environment '" + q.env + "'"));
    if (auto p = req.query.find("process"); p != req.query.end() && !p->second.empty()) {
      if (Status s = CheckProcessName(p->second); !s.ok()) return r.Fail(s.error());
      q.process = p->second;
    }
    auto tail = IntParam(req, "tail", 100, 0, 100000);
    if (!tail.ok()) return r.Fail(tail.error());
    q.tail = static_cast<size_t>(*tail);
    auto follow = BoolParam(req, "follow");
    if (!follow.ok()) return r.Fail(follow.error());
    q.follow = *follow;
    if (req.query.count("since_ms")) {
      auto since = IntParam(req, "since_ms", 0, 0, 32503680000000LL);  // until the year 3000
      if (!since.ok()) return r.Fail(since.error());
      q.since = std::chrono::system_clock::time_point(std::chrono::milliseconds(*since));
    }
    if (!q.process.empty() && LogFiles(cp.options().home, q).empty()) {
      auto context = cp.fleet().Context(q.env);
      bool known = context && (context->project->FindService(q.process) ||
                               context->project->FindTask(q.process));
      if (!known)
        return r.Fail(NotFound("no service or task '" + q.process + "' in '" + q.env + "'"));
    }
    std::atomic<bool> stop{false};
    std::thread watch([&] {
      while (!stop) {
        if (cp.stopping()) stop = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
    ServeLogs(cp.options().home, q, req.wants_stream, r, stop);
    stop = true;
    watch.join();
  });
  api.Handle("POST", "/v1/gc", [&cp](const ApiRequest& req, ApiResponder& r) {
    auto body = BodyObject(req);
    if (!body.ok()) return r.Fail(body.error());
    auto dry_run = BoolField(*body, "dry_run", false);
    if (!dry_run.ok()) return r.Fail(dry_run.error());
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Finish(r, req.wants_stream, cp.Gc(*dry_run, progress));
  });
  api.Handle("POST", "/v1/base/up", [&cp](const ApiRequest& req, ApiResponder& r) {
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Status s = cp.BaseUp(progress);
    if (!s.ok()) return r.Fail(s.error());
    Finish(r, req.wants_stream, json{{"postgres", "running"}, {"router", "running"}});
  });
  api.Handle("POST", "/v1/base/down", [&cp](const ApiRequest& req, ApiResponder& r) {
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Status s = cp.BaseDown(progress);
    if (!s.ok()) return r.Fail(s.error());
    Finish(r, req.wants_stream, json{{"postgres", "stopped"}, {"router", "stopped"}});
  });
  api.Handle("POST", "/v1/base/destroy", [&cp](const ApiRequest& req, ApiResponder& r) {
    ApiProgress progress(req.wants_stream ? &r : nullptr);
    Status s = cp.BaseDestroy(progress);
    if (!s.ok()) return r.Fail(s.error());
    Finish(r, req.wants_stream, json{{"home", cp.options().home.string()}, {"destroyed", true}});
  });
  api.Handle("GET", "/v1/operations/{id}", [&cp](const ApiRequest& req, ApiResponder& r) {
    ApiRequest as_query = req;
    as_query.query = {{"id", req.params.at("id")}};
    auto id = IntParam(as_query, "id", 0, 1, std::numeric_limits<int64_t>::max());
    if (!id.ok())
      return r.Fail(
          BadInput("operation id '" + req.params.at("id") + "': expected a whole number from 1"));
    auto op = cp.store().GetOperation(*id);
    if (!op.ok()) return r.Fail(op.error());
    json steps = json::array();
    for (auto& s : op->steps)
      steps.push_back({{"name", s.name}, {"status", state::ToString(s.status)}});
    r.Reply(200, {{"id", op->id},
                  {"env", op->env},
                  {"kind", op->kind},
                  {"status", state::ToString(op->status)},
                  {"error", op->error},
                  {"started", Iso(op->started_at)},
                  {"steps", steps}});
  });
  api.Handle("GET", "/v1/events", [&cp](const ApiRequest& req, ApiResponder& r) {
    state::EventQuery q;
    if (auto env = req.query.find("env"); env != req.query.end()) {
      if (Status s = spec::ValidateEnvName(env->second); !s.ok()) return r.Fail(s.error());
      q.env = env->second;
    }
    auto limit = IntParam(req, "limit", 100, 1, 10000);
    if (!limit.ok()) return r.Fail(limit.error());
    q.limit = static_cast<int>(*limit);
    auto events = cp.store().ListEvents(q);
    if (!events.ok()) return r.Fail(events.error());
    json out = json::array();
    for (auto& e : *events)
      out.push_back(
          {{"time", Iso(e.time)}, {"env", e.env}, {"kind", e.kind}, {"message", e.message}});
    r.Reply(200, {{"events", out}});
  });
  api.Handle("POST", "/v1/shutdown", [&cp](const ApiRequest&, ApiResponder& r) {
    r.Reply(200, {{"ok", true}});
    cp.Shutdown();
  });
}

}  // namespace adhoc::server
