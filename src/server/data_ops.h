// The substance of data work the executor journals (executor.h: Snapshot, Reset, and the data
// hooks of Apply): where a new environment's data comes from (an env file's `data`), saving an
// environment's data as a named snapshot, its start data, and what a snapshot is made of on
// disk (paths.h: snapshots/<name>/, envs/<env>/start/). All through EnvResources and the state
// store, so the logic is tested with fakes (data_ops_test.cc).
//
// Sources, checked before anything of the new environment is made (NotFound naming what is
// missing, nothing changed):
//   snapshot:NAME  a recorded snapshot whose folder holds its files
//   env:OTHER      a recorded environment, awake (its Redis is read live, never started); read
//                  with pg_dump and SCAN, never disturbed (no connection of it is ended)
//   file:PATH      a file inside the project folder (a path that leaves it is refused: the
//                  server may be a team's machine), pg_dump's custom format or plain SQL;
//                  the database only (Redis starts empty)
// Thread-safe as the store and resources are; callers serialize per environment.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "server/env_resources.h"
#include "spec/spec.h"
#include "state/store.h"

namespace adhoc::server {

// What a snapshot or start data was taken of.
struct DataOrigin {
  std::string env;
  std::string database;                // empty: the project has no [postgres]
  std::optional<RedisEndpoint> redis;  // nullopt: no [redis]
};

class DataOps {
 public:
  DataOps(state::Store& store, EnvResources& resources, std::filesystem::path home);

  // --- An env file's `data` ---
  // Before anything is made. `env` is the environment being created.
  Status CheckSource(const spec::DataSource& source, const std::filesystem::path& project_dir,
                     const std::string& env);
  // The new environment's database, just made, filled from `source`; a detail for the step
  // ("" for an empty source: nothing done).
  Result<std::string> LoadDatabase(const spec::DataSource& source,
                                   const std::filesystem::path& project_dir, const std::string& env,
                                   const std::string& database);
  // Its Redis, just started, given the source's keys (snapshot and env sources).
  Result<std::string> LoadRedis(const spec::DataSource& source, const std::string& env,
                                const RedisEndpoint& redis);

  // --- Snapshots ---
  // BadInput for a bad name, Conflict when it is taken.
  Status CheckNewSnapshot(const std::string& name);
  // The files of `origin` into a new folder for `name`; returns it. Removed on failure.
  Result<std::filesystem::path> SaveFiles(const DataOrigin& origin, const std::string& name,
                                          int64_t* database_bytes, int64_t* redis_bytes,
                                          int64_t* redis_keys);
  // The folder made by SaveFiles moved into place and recorded; removed when that fails.
  Status Publish(const std::filesystem::path& saved, state::Snapshot snapshot);
  // A recorded snapshot's files, then its record. NotFound when there is none.
  Status Remove(const std::string& name);
  // Each recorded snapshot as the API shows it (docs/api.md).
  Result<nlohmann::json> ListJson();
  // What a dead control plane's snapshot left: folders being taken.
  void RemoveIncoming();

  // --- Start data (reset) ---
  // At the end of a creation: the start copy of the database, the Redis keys and the
  // versions it was taken on (start.json).
  Result<std::string> KeepStartData(const DataOrigin& origin, const nlohmann::json& versions);
  // Whether `env` has start data (its start.json); the versions it was taken on.
  Result<std::optional<nlohmann::json>> StartVersions(const std::string& env);
  std::filesystem::path StartRedisKeys(const std::string& env) const;

  // The versions `env` runs, as recorded: [{image, ref, commit, tree}].
  Result<nlohmann::json> VersionsJson(const std::string& env);

 private:
  // OTHER of an `env:OTHER` source: its record, awake. NotFound / Failed otherwise.
  Result<DataOrigin> OtherEnvironment(const std::string& other);
  Result<std::filesystem::path> SourceFile(const spec::DataSource& source,
                                           const std::filesystem::path& project_dir);
  // A private scratch folder under snapshots/.incoming.
  Result<std::filesystem::path> Scratch(const std::string& label);

  state::Store& store_;
  EnvResources& resources_;
  std::filesystem::path home_;
};

// "1.2 MiB".
std::string HumanBytes(int64_t bytes);

}  // namespace adhoc::server
