// Durations in the user's files: "30s", "10m", "3d", "1h30m", "2w".
//
// Grammar: one or more <digits><unit> pairs, units s m h d w, each unit at most once
// and in descending order ("1h30m", not "30m1h"). No spaces, no fractions, no sign.
// Thread-safe: pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adhoc::spec {

// Parses `text`; a BadInput error names the value and shows the expected form.
Result<std::chrono::seconds> ParseDuration(std::string_view text);

// The shortest text ParseDuration reads back as `d` ("90s" -> "1m30s", 0 -> "0s").
std::string FormatDuration(std::chrono::seconds d);

}  // namespace adhoc::spec
