// A YAML writer for rendered manifests and workflows: block style, keys in the order given
// (nlohmann::ordered_json), strings quoted whenever a plain scalar could be read as something
// else (numbers, booleans, null, dates, or text with YAML syntax in it), multi-line strings as
// literal blocks. Thread-safe: a pure function.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace adhoc::render {

using ojson = nlohmann::ordered_json;

// One YAML document (without "---"), ending in a newline.
std::string ToYaml(const ojson& value);

// A string as a YAML scalar on one line: plain when that reads back as the same string,
// else double-quoted.
std::string YamlScalar(const std::string& text);

}  // namespace adhoc::render
