// Slots of environments on AWS. Every environment's listener rules take their priorities from
// its slot (slot * 100 + rule), so priorities are unique among living environments and stable
// across renders. render is a function of the user's files, so the slot lives in them: the env
// file's `[targets.aws] slot`, written on the environment's first render (the lowest slot no
// other env file holds) and committed with it; it goes away with the file, and only then may
// another environment take it. Thread-safe: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "spec/spec.h"

namespace adhoc::render {

inline constexpr int kMaxSlot = 499;            // priorities stop at 50000 on an ALB listener
inline constexpr int kPrioritiesPerSlot = 100;  // so an environment holds at most 99 rules

struct SlotAssignment {
  std::map<std::string, int> slots;    // every environment's slot
  std::vector<std::string> new_slots;  // the environments given a slot now, in name order
};

// The recorded slots, and the lowest free slot for each env file without one (in name order).
// A BadInput error names both files (file:line:key) when two env files hold the same slot, or
// when no slot is left.
Result<SlotAssignment> AssignSlots(const std::vector<spec::EnvFile>& env_files);

// `text` (an env file) with `slot` recorded in it: a `[targets.aws]` table with `slot = N`,
// appended, or `slot = N` added under an existing `[targets.aws]` header. The rest of the text,
// comments included, is kept byte for byte.
std::string RecordSlot(const std::string& text, int slot);

}  // namespace adhoc::render
