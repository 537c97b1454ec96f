// The access rules of one environment, rendered: adhoc.toml's [access] with the env file's
// over it key by key (spec::EffectiveAccess), placeholders replaced by the environment's
// values, in the form the router's feed takes (docs/router.md "Access rules") and the form
// `up` and `status` show.
//
// Rendered values are checked as the router checks them, because the router refuses an
// environment with a bad rule (and a whole table with it): a token of 16 or more characters of
// A-Z a-z 0-9 - _ . ~; users not empty and without ':'; passwords not empty; no control
// characters; public paths only with users or a token. A failure is an error naming the key,
// where it was written and what is wrong; callers fail closed (the fleet then gives the
// router no route of the environment, `up` stops before it creates anything).
//
// Placeholders: {env}, {hostname}, {url}, {random.NAME}. {secret.NAME} is not built yet and is
// an error saying so; any other name is an error too.
//
// Pure functions, but for the lookup they are given; thread-safe as it is.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "server/task_launch.h"
#include "spec/spec.h"
#include "state/store.h"

namespace adhoc::server {

struct AccessUser {
  std::string user;
  std::string password;
};

struct RenderedAccess {
  std::vector<AccessUser> users;          // basic auth
  std::string token;                      // empty: no token link
  std::vector<std::string> allow;         // CIDRs; empty: every address
  std::vector<std::string> public_paths;  // route patterns that need no credentials
};

// The value of a placeholder by its key ("env", "random.access_token"); nullopt: none.
using AccessValues = std::function<std::optional<std::string>(const std::string& key)>;

// The rules of an environment; nullopt when nothing guards it (no [access] in either file, or
// every part turned off). Errors are kFailed.
Result<std::optional<RenderedAccess>> RenderAccess(const spec::Project& project,
                                                   const spec::EnvFile& env_file,
                                                   const AccessValues& values);

// The values of a live environment: its facts, and each {random.NAME} made once in the store
// (the same value its processes see). `facts` and `store` must outlive the lookup.
AccessValues AccessValuesFor(const EnvironmentFacts& facts, state::Store& store);

// The feed's "access" object: {allow, basic_auth: [{user, password}], token, public_paths}.
nlohmann::json AccessFeedJson(const RenderedAccess& access);

// What `up` and `status` show, given the environment's URL: {basic_auth: [{user, password}],
// token, token_url ("<url>?adhoc_token=<token>"), allow, public_paths}; keys of parts that are
// off are left out.
nlohmann::json AccessViewJson(const RenderedAccess& access, const std::string& url);

}  // namespace adhoc::server
