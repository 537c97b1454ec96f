#include "spec/duration.h"

#include <cstdint>
#include <limits>

namespace adhoc::spec {

namespace {

struct Unit {
  char letter;
  int64_t seconds;
};
// Descending, so a unit may only follow one listed before it.
constexpr Unit kUnits[] = {{'w', 604800}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

int UnitIndex(char c) {
  for (int i = 0; i < 5; ++i)
    if (kUnits[i].letter == c) return i;
  return -1;
}

Error BadDuration(std::string_view text, const std::string& why) {
  return BadInput("bad duration '" + std::string(text) + "': " + why +
                  " (expected a number and a unit s, m, h, d or w, e.g. \"30s\", \"1h30m\")");
}

}  // namespace

Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return BadDuration(text, "empty");
  int64_t total = 0;
  int last_unit = -1;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits_start = i;
    int64_t number = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (number > (std::numeric_limits<int64_t>::max() / 10) - 10)
        return BadDuration(text, "too large");
      number = number * 10 + (text[i] - '0');
      ++i;
    }
    if (i == digits_start) return BadDuration(text, "a number must come before each unit");
    if (i == text.size()) return BadDuration(text, "missing unit after " + std::to_string(number));
    int unit = UnitIndex(text[i]);
    if (unit < 0) return BadDuration(text, std::string("unknown unit '") + text[i] + "'");
    if (unit <= last_unit) return BadDuration(text, "units must be in descending order, each once");
    last_unit = unit;
    ++i;
    if (number > std::numeric_limits<int64_t>::max() / kUnits[unit].seconds - total)
      return BadDuration(text, "too large");
    total += number * kUnits[unit].seconds;
  }
  return std::chrono::seconds(total);
}

std::string FormatDuration(std::chrono::seconds d) {
  int64_t left = d.count();
  if (left <= 0) return "0s";
  std::string out;
  for (const Unit& u : kUnits) {
    if (left >= u.seconds) {
      out += std::to_string(left / u.seconds);
      out += u.letter;
      left %= u.seconds;
    }
  }
  return out;
}

}  // namespace adhoc::spec
