#include "server/data_ops.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/paths.h"
#include "runtime/addresses.h"
#include "spec/names.h"

namespace adhoc::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kDatabaseFile[] = "database.dump";
constexpr char kRedisFile[] = "redis.keys";
constexpr char kStartFile[] = "start.json";

Status MakePrivateDir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Failed("creating " + dir.string() + ": " + ec.message());
  if (chmod(dir.c_str(), 0700) != 0)
    return Failed("making " + dir.string() + " private: " + strerror(errno));
  return OkStatus();
}

std::string Iso(state::Millis ms) {
  std::time_t t = ms / 1000;
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::string HumanBytes(int64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  if (bytes < 1024LL * 1024 * 1024) return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024));
  return fmt::format("{:.1f} GiB", bytes / (1024.0 * 1024 * 1024));
}

DataOps::DataOps(state::Store& store, EnvResources& resources, fs::path home)
    : store_(store), resources_(resources), home_(std::move(home)) {}

Result<fs::path> DataOps::Scratch(const std::string& label) {
  static std::atomic<int> counter{0};
  fs::path dir = paths::IncomingSnapshotsDir(home_) /
                 fmt::format("{}-{}-{}", label, getpid(), counter.fetch_add(1));
  ADHOC_RETURN_IF_ERROR(MakePrivateDir(paths::SnapshotsDir(home_)));
  ADHOC_RETURN_IF_ERROR(MakePrivateDir(paths::IncomingSnapshotsDir(home_)));
  std::error_code ec;
  fs::remove_all(dir, ec);
  ADHOC_RETURN_IF_ERROR(MakePrivateDir(dir));
  return dir;
}

Result<DataOrigin> DataOps::OtherEnvironment(const std::string& other) {
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindEnvironment(other));
  if (!found) return NotFound("no environment '" + other + "' to copy the data of");
  if (found->status == state::EnvStatus::kSleeping)
    return Failed("'" + other + "' is asleep: wake it first (`adhoc wake " + other +
                  "`), or take a snapshot of it while awake");
  if (found->status != state::EnvStatus::kRunning && found->status != state::EnvStatus::kFailed)
    return Failed("'" + other + "' is " + std::string(state::ToString(found->status)) +
                  "; its data can be copied once that is over");
  DataOrigin origin;
  origin.env = other;
  if (auto creds = store_.GetDatabaseCredentials(other); creds.ok())
    origin.database = creds->database;
  return origin;
}

Result<fs::path> DataOps::SourceFile(const spec::DataSource& source, const fs::path& project_dir) {
  const std::string& given = source.argument;
  fs::path relative(given);
  if (relative.is_absolute())
    return BadInput("data = \"file:" + given +
                    "\": the path must be relative to the project folder");
  std::error_code ec;
  fs::path root = fs::weakly_canonical(project_dir, ec);
  fs::path file = fs::weakly_canonical(project_dir / relative, ec);
  auto [r, f] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
  if (ec || r != root.end())
    return BadInput("data = \"file:" + given + "\": the file must be inside the project folder");
  if (!fs::is_regular_file(file, ec))
    return NotFound("data = \"file:" + given + "\": no file " + file.string());
  return file;
}

Status DataOps::CheckSource(const spec::DataSource& source, const fs::path& project_dir,
                            const std::string& env) {
  switch (source.kind) {
    case spec::DataSource::Kind::kEmpty:
      return OkStatus();
    case spec::DataSource::Kind::kSnapshot: {
      ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindSnapshot(source.argument));
      if (!found)
        return NotFound("data = \"snapshot:" + source.argument + "\": no snapshot '" +
                        source.argument + "' (see `adhoc snapshots`)");
      std::error_code ec;
      if (!fs::is_directory(found->path, ec))
        return NotFound("data = \"snapshot:" + source.argument + "\": its files are missing (" +
                        found->path + ")");
      return OkStatus();
    }
    case spec::DataSource::Kind::kEnv: {
      if (source.argument == env)
        return BadInput("data = \"env:" + env + "\": an environment cannot start from itself");
      return Status(OtherEnvironment(source.argument))
          .context("data = \"env:" + source.argument + "\"");
    }
    case spec::DataSource::Kind::kFile:
      return Status(SourceFile(source, project_dir));
  }
  return OkStatus();
}

Result<std::string> DataOps::LoadDatabase(const spec::DataSource& source,
                                          const fs::path& project_dir, const std::string& env,
                                          const std::string& database) {
  switch (source.kind) {
    case spec::DataSource::Kind::kEmpty:
      return std::string();
    case spec::DataSource::Kind::kSnapshot: {
      ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindSnapshot(source.argument));
      if (!found) return NotFound("no snapshot '" + source.argument + "'");
      fs::path file = fs::path(found->path) / kDatabaseFile;
      std::error_code ec;
      if (!fs::exists(file, ec))
        return std::string("snapshot " + source.argument + " holds no database: left empty");
      ADHOC_RETURN_IF_ERROR(resources_.LoadDatabase(env, database, file));
      return "loaded from snapshot " + source.argument;
    }
    case spec::DataSource::Kind::kEnv: {
      ADHOC_ASSIGN_OR_RETURN(auto other, OtherEnvironment(source.argument));
      if (other.database.empty())
        return std::string(source.argument + " has no database: left empty");
      ADHOC_ASSIGN_OR_RETURN(fs::path scratch, Scratch(env + "-from-" + other.env));
      fs::path file = scratch / kDatabaseFile;
      auto dumped = resources_.DumpDatabase(other.database, file);
      Status loaded = dumped.ok() ? resources_.LoadDatabase(env, database, file) : Status(dumped);
      std::error_code ec;
      fs::remove_all(scratch, ec);
      ADHOC_RETURN_IF_ERROR(loaded);
      return "copied from " + other.env + " (" + other.database + ")";
    }
    case spec::DataSource::Kind::kFile: {
      ADHOC_ASSIGN_OR_RETURN(fs::path file, SourceFile(source, project_dir));
      ADHOC_RETURN_IF_ERROR(resources_.LoadDatabase(env, database, file));
      return "loaded from " + source.argument;
    }
  }
  return std::string();
}

Result<std::string> DataOps::LoadRedis(const spec::DataSource& source, const std::string& env,
                                       const RedisEndpoint& redis) {
  if (source.kind == spec::DataSource::Kind::kSnapshot) {
    ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindSnapshot(source.argument));
    if (!found) return NotFound("no snapshot '" + source.argument + "'");
    fs::path file = fs::path(found->path) / kRedisFile;
    std::error_code ec;
    if (!fs::exists(file, ec)) return std::string();
    ADHOC_ASSIGN_OR_RETURN(int64_t keys, resources_.LoadRedis(redis, file));
    return fmt::format("{} key(s) from snapshot {}", keys, source.argument);
  }
  if (source.kind == spec::DataSource::Kind::kEnv) {
    ADHOC_ASSIGN_OR_RETURN(auto other, OtherEnvironment(source.argument));
    ADHOC_ASSIGN_OR_RETURN(auto record, store_.GetEnvironment(other.env));
    ADHOC_ASSIGN_OR_RETURN(auto block, runtime::ParseBlock(record.address_block));
    ADHOC_ASSIGN_OR_RETURN(auto endpoint, resources_.EnsureRedis(other.env, block.RedisAddress(),
                                                                 /*memory_mib=*/0));
    ADHOC_ASSIGN_OR_RETURN(fs::path scratch, Scratch(env + "-from-" + other.env));
    fs::path file = scratch / kRedisFile;
    auto dumped = resources_.DumpRedis(endpoint, file);
    auto loaded = dumped.ok() ? resources_.LoadRedis(redis, file) : dumped;
    std::error_code ec;
    fs::remove_all(scratch, ec);
    ADHOC_ASSIGN_OR_RETURN(int64_t keys, std::move(loaded));
    return fmt::format("{} key(s) from {}", keys, other.env);
  }
  return std::string();
}

Status DataOps::CheckNewSnapshot(const std::string& name) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateObjectName("snapshot", name));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindSnapshot(name));
  if (found)
    return Conflict("a snapshot '" + name + "' exists (of " + found->env + ", taken " +
                    Iso(found->created_at) + "); remove it first with `adhoc snapshots rm " + name +
                    "`, or choose another name");
  return OkStatus();
}

Result<fs::path> DataOps::SaveFiles(const DataOrigin& origin, const std::string& name,
                                    int64_t* database_bytes, int64_t* redis_bytes,
                                    int64_t* redis_keys) {
  ADHOC_ASSIGN_OR_RETURN(fs::path dir, Scratch(name));
  auto save = [&]() -> Status {
    if (!origin.database.empty()) {
      ADHOC_ASSIGN_OR_RETURN(*database_bytes,
                             resources_.DumpDatabase(origin.database, dir / kDatabaseFile));
    }
    if (origin.redis) {
      ADHOC_ASSIGN_OR_RETURN(*redis_keys, resources_.DumpRedis(*origin.redis, dir / kRedisFile));
      std::error_code ec;
      *redis_bytes = static_cast<int64_t>(fs::file_size(dir / kRedisFile, ec));
    }
    return OkStatus();
  };
  if (Status s = save(); !s.ok()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return s.error();
  }
  return dir;
}

Status DataOps::Publish(const fs::path& saved, state::Snapshot snapshot) {
  fs::path target = paths::SnapshotDir(home_, snapshot.name);
  std::error_code ec;
  auto drop = [&] { fs::remove_all(saved, ec); };
  if (fs::exists(target, ec)) {
    drop();
    return Conflict("snapshot folder " + target.string() + " exists");
  }
  fs::rename(saved, target, ec);
  if (ec) {
    drop();
    return Failed("moving the snapshot into " + target.string() + ": " + ec.message());
  }
  snapshot.path = target.string();
  if (Status s = store_.PutSnapshot(snapshot); !s.ok()) {
    fs::remove_all(target, ec);
    return s;
  }
  return OkStatus();
}

Status DataOps::Remove(const std::string& name) {
  ADHOC_RETURN_IF_ERROR(spec::ValidateObjectName("snapshot", name));
  ADHOC_ASSIGN_OR_RETURN(auto found, store_.FindSnapshot(name));
  if (!found) return NotFound("no snapshot '" + name + "' (see `adhoc snapshots`)");
  std::error_code ec;
  // Only what lives in the home's snapshot folder: a record is never a way to remove elsewhere.
  fs::path target = paths::SnapshotDir(home_, name);
  fs::remove_all(target, ec);
  if (ec) return Failed("removing " + target.string() + ": " + ec.message());
  return store_.DeleteSnapshot(name);
}

Result<json> DataOps::ListJson() {
  ADHOC_ASSIGN_OR_RETURN(auto all, store_.ListSnapshots());
  json out = json::array();
  int64_t total = 0;
  for (const auto& s : all) {
    json versions = json::parse(s.versions_json, nullptr, false);
    if (versions.is_discarded()) versions = json::array();
    int64_t size = s.database_bytes + s.redis_bytes;
    total += size;
    out.push_back({{"name", s.name},
                   {"env", s.env},
                   {"versions", versions},
                   {"database_bytes", s.database_bytes},
                   {"redis_bytes", s.redis_bytes},
                   {"redis_keys", s.redis_keys},
                   {"size_bytes", size},
                   {"created_at_ms", s.created_at},
                   {"created", Iso(s.created_at)}});
  }
  return json{{"snapshots", out}, {"total_bytes", total}};
}

void DataOps::RemoveIncoming() {
  std::error_code ec;
  fs::remove_all(paths::IncomingSnapshotsDir(home_), ec);
}

fs::path DataOps::StartRedisKeys(const std::string& env) const {
  return paths::StartDataDir(home_, env) / kRedisFile;
}

Result<std::string> DataOps::KeepStartData(const DataOrigin& origin, const json& versions) {
  fs::path dir = paths::StartDataDir(home_, origin.env);
  ADHOC_RETURN_IF_ERROR(MakePrivateDir(dir));
  std::error_code ec;
  fs::remove(dir / kStartFile, ec);  // half-kept start data is none at all
  std::string detail;
  if (!origin.database.empty()) {
    ADHOC_RETURN_IF_ERROR(resources_.KeepStartDatabase(origin.env, origin.database));
    detail = "database";
  }
  if (origin.redis) {
    ADHOC_ASSIGN_OR_RETURN(int64_t keys, resources_.DumpRedis(*origin.redis, dir / kRedisFile));
    detail += fmt::format("{}{} Redis key(s)", detail.empty() ? "" : ", ", keys);
  }
  {
    std::ofstream out(dir / kStartFile);
    out << json{{"versions", versions}}.dump();
    if (!out) return Failed("writing " + (dir / kStartFile).string());
  }
  chmod((dir / kStartFile).c_str(), 0600);
  return detail.empty() ? std::string("nothing to keep") : "kept: " + detail;
}

Result<std::optional<json>> DataOps::StartVersions(const std::string& env) {
  std::ifstream in(paths::StartDataDir(home_, env) / kStartFile);
  if (!in) return std::optional<json>();
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::optional<json>();
  return std::optional<json>(j.value("versions", json::array()));
}

Result<json> DataOps::VersionsJson(const std::string& env) {
  ADHOC_ASSIGN_OR_RETURN(auto versions, store_.ListVersions(env));
  json out = json::array();
  for (const auto& v : versions)
    out.push_back({{"image", v.image}, {"ref", v.ref}, {"commit", v.commit}, {"tree", v.tree}});
  return out;
}

}  // namespace adhoc::server
