// `adhoc render aws|kubernetes`, `adhoc ci github` and `adhoc deploy --target aws`: the
// commands for teams that outgrow one machine. Offline: they read the user's files (and, for
// deploy, talk to AWS through the `aws` client); they never start or need the control plane.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/offline.h"
#include "cloud/aws_deploy.h"
#include "cloud/command_runner.h"
#include "render/aws.h"
#include "render/aws_slots.h"
#include "render/github.h"
#include "render/kubernetes.h"
#include "spec/loader.h"

namespace adhoc::cli {

namespace {

namespace fs = std::filesystem;

// 2*bytes hex characters from the kernel's random source.
std::string RandomHex(size_t bytes) {
  std::ifstream random("/dev/urandom", std::ios::binary);
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    unsigned char c = static_cast<unsigned char>(random.get());
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

Result<std::string> ReadText(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFound("cannot read " + file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The text of every service's `templates`, read from its image's folder.
Result<render::TemplateTexts> ReadTemplates(const fs::path& project_dir,
                                            const spec::Project& project) {
  render::TemplateTexts out;
  for (const spec::Service& s : project.services) {
    const spec::Image* image = project.FindImage(s.image);
    if (image == nullptr) continue;
    for (const std::string& t : s.templates) {
      fs::path file = project_dir / image->path / t;
      Result<std::string> text = ReadText(file);
      if (!text.ok())
        return BadInput(ShownPath(project_dir, "adhoc.toml") + ": services." + s.name +
                        ".templates: " + text.error().message());
      out[s.image + "/" + t] = *text;
    }
  }
  return out;
}

// Writes `files` under `dir` (creating folders); `clear` names folders of `dir` whose files
// are all rendered here, emptied first so a removed env file leaves no stale output.
Status WriteAll(const fs::path& dir, const render::RenderedFiles& files,
                const std::vector<std::string>& clear) {
  std::error_code ec;
  for (const std::string& sub : clear) {
    fs::path folder = dir / sub;
    if (!fs::is_directory(folder, ec)) continue;
    for (const auto& entry : fs::directory_iterator(folder, ec))
      if (entry.is_regular_file()) fs::remove(entry.path(), ec);
  }
  for (const render::RenderedFile& f : files) {
    fs::path file = dir / f.path;
    fs::create_directories(file.parent_path(), ec);
    if (ec) return Failed("creating " + file.parent_path().string() + ": " + ec.message());
    ADHOC_RETURN_IF_ERROR(WriteFileAtomically(file, f.text));
  }
  return OkStatus();
}

nlohmann::json FileList(const render::RenderedFiles& files) {
  nlohmann::json out = nlohmann::json::array();
  for (const render::RenderedFile& f : files) out.push_back(f.path);
  return out;
}

// The loaded workspace, or the exit status after reporting its errors.
struct Loaded {
  spec::Workspace workspace;
  std::optional<int> failed;
};
Loaded LoadForRender(const Args& args, const Output& out) {
  Loaded loaded;
  Result<spec::Loaded<spec::Workspace>> ws = LoadProjectFolder(args.project);
  if (!ws.ok()) {
    loaded.failed = out.Fail(ws.error());
    return loaded;
  }
  loaded.failed = FailOnFileErrors(out, ws->diagnostics, "the project's files", false);
  loaded.workspace = std::move(ws->value);
  if (!loaded.failed && !args.env.empty() && !loaded.workspace.FindEnv(args.env))
    loaded.failed =
        out.Fail(BadInput("no env file " + ShownPath(args.project, "envs/" + args.env + ".toml") +
                          " (`adhoc new " + args.env + "` writes one)"));
  return loaded;
}

int RenderAws(const Args& args, const Output& out, const spec::Workspace& ws) {
  Result<render::SlotAssignment> slots = render::AssignSlots(ws.envs);
  if (!slots.ok()) return out.Fail(slots.error());
  Result<render::TemplateTexts> templates = ReadTemplates(args.project, ws.project);
  if (!templates.ok()) return out.Fail(templates.error());
  render::AwsInput input;
  input.project = &ws.project;
  input.templates = *templates;
  for (const spec::EnvFile& e : ws.envs)
    if (args.env.empty() || e.name == args.env)
      input.environments.push_back({&e, slots->slots.at(e.name)});
  Result<render::AwsOutput> rendered = render::RenderAws(input);
  if (!rendered.ok()) return out.Fail(rendered.error());
  Status written = WriteAll(
      args.out_dir, rendered->files,
      args.env.empty() ? std::vector<std::string>{"environment/envs"} : std::vector<std::string>{});
  if (!written.ok()) return out.Fail(written.error());

  // Record new slots in their env files, each read back before it replaces the file.
  nlohmann::json recorded = nlohmann::json::object();
  for (const std::string& name : slots->new_slots) {
    if (!args.env.empty() && name != args.env) continue;
    int slot = slots->slots.at(name);
    std::string relative = "envs/" + name + ".toml";
    fs::path file = args.project / relative;
    Result<std::string> text = ReadText(file);
    if (!text.ok()) return out.Fail(text.error());
    std::string updated = render::RecordSlot(*text, slot);
    spec::Loaded<spec::EnvFile> check = spec::ParseEnvFile(updated, name, relative, &ws.project);
    if (!check.ok() || !check.value.aws || check.value.aws->slot != slot)
      return out.Fail(Failed(ShownPath(args.project, relative) + ": could not record slot " +
                             std::to_string(slot) +
                             " (add `[targets.aws]` with `slot = " + std::to_string(slot) +
                             "` by hand):\n" + spec::FormatDiagnostics(check.diagnostics)));
    Status s = WriteFileAtomically(file, updated);
    if (!s.ok()) return out.Fail(s.error());
    recorded[name] = slot;
  }

  const render::RuleBudget& b = rendered->budget;
  if (out.json()) {
    nlohmann::json all_slots = nlohmann::json::object();
    for (const auto& e : input.environments) all_slots[e.env_file->name] = e.slot;
    out.Document({{"target", "aws"},
                  {"output", fs::absolute(args.out_dir).lexically_normal().string()},
                  {"files", FileList(rendered->files)},
                  {"slots", all_slots},
                  {"slots_recorded", recorded},
                  {"rules",
                   {{"per_environment", b.rules_per_environment},
                    {"quota", b.quota},
                    {"environments_that_fit", b.environments_that_fit}}}});
    return 0;
  }
  out.Line(fmt::format("Wrote {} files for AWS into {}:", rendered->files.size(),
                       args.out_dir.string()));
  for (const render::RenderedFile& f : rendered->files) out.Line("  " + f.path);
  for (const auto& [name, slot] : recorded.items())
    out.Line(fmt::format("Recorded slot {} in {} (commit it: it keeps {}'s rule priorities)",
                         slot.get<int>(), ShownPath(args.project, "envs/" + name + ".toml"), name));
  out.Line(
      fmt::format("Listener rules: {} per environment; a listener holding {} fits {} environments.",
                  b.rules_per_environment, b.quota, b.environments_that_fit));
  out.Line("Next: " + (args.out_dir / "README.md").string() + " lists the terraform commands.");
  return 0;
}

int RenderKubernetes(const Args& args, const Output& out, const spec::Workspace& ws) {
  Result<render::TemplateTexts> templates = ReadTemplates(args.project, ws.project);
  if (!templates.ok()) return out.Fail(templates.error());
  render::KubernetesInput input;
  input.project = &ws.project;
  input.templates = *templates;
  for (const spec::EnvFile& e : ws.envs)
    if (args.env.empty() || e.name == args.env) input.environments.push_back(&e);
  // Generated once, kept on later renders: read back from the folder's secret files.
  for (const auto& [env, keys] : render::SecretKeysNeeded(input)) {
    fs::path file = args.out_dir / env / "secret.yaml";
    if (env == "base") file = args.out_dir / "base" / "postgres.yaml";
    std::string text = ReadText(file).ok() ? *ReadText(file) : "";
    for (const std::string& key : keys) {
      std::string value;
      size_t at = text.find("\n    " + key + ": ");
      if (at != std::string::npos) {
        size_t begin = at + 7 + key.size(), end = text.find('\n', begin);
        value = text.substr(begin, end - begin);
      }
      if (value.empty()) value = RandomHex(24);
      input.secrets[env][key] = value;
    }
  }
  Result<render::RenderedFiles> rendered = render::RenderKubernetes(input);
  if (!rendered.ok()) return out.Fail(rendered.error());
  Status written = WriteAll(args.out_dir, *rendered, {});
  if (!written.ok()) return out.Fail(written.error());
  if (out.json()) {
    out.Document({{"target", "kubernetes"},
                  {"output", fs::absolute(args.out_dir).lexically_normal().string()},
                  {"files", FileList(*rendered)}});
    return 0;
  }
  out.Line(fmt::format("Wrote {} Kubernetes manifests into {}:", rendered->size(),
                       args.out_dir.string()));
  for (const render::RenderedFile& f : *rendered) out.Line("  " + f.path);
  out.Line("Apply: kubectl apply -f " + (args.out_dir / "base").string() + " then -f " +
           (args.out_dir / "ENV").string());
  return 0;
}

}  // namespace

int RunRender(const Args& args, const Output& out) {
  Loaded loaded = LoadForRender(args, out);
  if (loaded.failed) return *loaded.failed;
  if (args.target == "aws") return RenderAws(args, out, loaded.workspace);
  return RenderKubernetes(args, out, loaded.workspace);
}

int RunCi(const Args& args, const Output& out) {
  Loaded loaded = LoadForRender(args, out);
  if (loaded.failed) return *loaded.failed;
  Result<render::RenderedFiles> rendered = render::RenderGithub(loaded.workspace.project);
  if (!rendered.ok()) return out.Fail(rendered.error());
  Status written = WriteAll(args.out_dir, *rendered, {});
  if (!written.ok()) return out.Fail(written.error());
  if (out.json()) {
    out.Document({{"target", "github"},
                  {"output", fs::absolute(args.out_dir).lexically_normal().string()},
                  {"files", FileList(*rendered)}});
    return 0;
  }
  out.Line(fmt::format("Wrote {} GitHub Actions workflows into {}:", rendered->size(),
                       args.out_dir.string()));
  for (const render::RenderedFile& f : *rendered) out.Line("  " + f.path);
  out.Line(
      "Copy them to .github/workflows/ of the app's repository; the header of each names the "
      "repository variables and secrets it reads.");
  return 0;
}

int RunDeployAws(const Args& args, const Output& out) {
  Loaded loaded = LoadForRender(args, out);
  if (loaded.failed) return *loaded.failed;
  const spec::Workspace& ws = loaded.workspace;
  Result<cloud::DeployRequest> request =
      cloud::ParseDeployRequest(ws.project, args.env, args.versions);
  if (!request.ok()) return out.Fail(request.error());
  cloud::SystemRunner runner;
  cloud::AwsDeployer deployer(runner, [&out](const std::string& line) { out.Note(line); });
  Result<cloud::DeployReport> report = deployer.Deploy(ws.project, *request);
  if (!report.ok()) return out.Fail(report.error());
  if (out.json()) {
    out.Document(cloud::DeployReportJson(*report));
    return 0;
  }
  out.Line(fmt::format("{} deployed on AWS: {}", args.env, report->Summary()));
  out.Line("Record the versions in " + ShownPath(args.project, "envs/" + args.env + ".toml") +
           " so the next `terraform apply` and the team see them.");
  return 0;
}

}  // namespace adhoc::cli
