// The recorded side of a plan, kept in the state store: what the last successful `up` or
// `deploy` applied to an environment. The control plane writes it when an operation succeeds;
// `adhoc plan` and the control plane read it back. Environment::spec_json holds the service
// fingerprints and flags; the versions come from the store's version rows.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "plan/plan.h"
#include "state/store.h"

namespace adhoc::plan {

// The JSON kept in Environment::spec_json (everything of Recorded but the versions).
nlohmann::json RecordedJson(const Recorded& recorded);

// nullopt when the environment is not recorded (a new environment); an environment still
// being created counts as recorded only for what its spec_json says.
Result<std::optional<Recorded>> LoadRecorded(state::Store& store, const std::string& env);

}  // namespace adhoc::plan
