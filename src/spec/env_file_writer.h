// Writing an env file (`adhoc new`): the TOML text of an EnvFile that ParseEnvFile
// reads back to the same values (owner, ttl, sleep_after, data, versions, env, access,
// [targets.aws] slot). Source locations are not written. Thread-safe: a pure function.
#pragma once

#include <map>
#include <string>

#include "spec/spec.h"

namespace adhoc::spec {

std::string RenderEnvFile(const EnvFile& env_file);

// `text` (an env file) with [versions] IMAGE = "REF" set for each of `refs`, keeping every
// other line and comment as written (`adhoc deploy --write`): an existing line of that image
// in [versions] has its value replaced, a missing one is added at the end of [versions], and
// a file without [versions] gets one at its end.
std::string SetEnvFileVersions(const std::string& text,
                               const std::map<std::string, std::string>& refs);

// A TOML basic string: "text" with quotes, backslashes and control characters escaped.
std::string TomlString(const std::string& text);

// A TOML key: bare when it only has [A-Za-z0-9_-], else quoted.
std::string TomlKey(const std::string& key);

}  // namespace adhoc::spec
