// What a command prints, in one place: human text on a terminal, or one JSON document with
// --json. Errors go to stderr as "adhoc: <message>" (or {"error":...} on stdout with --json), and
// the exit status follows the error's kind (2 bad usage or file, 1 failed).
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace adhoc::cli {

class Output {
 public:
  explicit Output(bool json) : json_(json) {}

  bool json() const { return json_; }
  // A line for people; suppressed with --json.
  void Line(const std::string& text) const;
  // A progress or warning line for people on stderr; suppressed with --json.
  void Note(const std::string& text) const;
  // The JSON document of a --json run (printed once, at the end).
  void Document(const nlohmann::json& doc) const;
  // Prints the error the way the mode wants and returns its exit status.
  int Fail(const Error& error) const;
  // Whether stdout is a terminal (colour, progress redraws).
  bool tty() const;

 private:
  bool json_;
};

// "1.2s", "350ms", "2m05s": for progress lines.
std::string FormatDuration(long long ms);

// One event of a long operation's stream (docs/api.md) as `up` prints it: a line per step as it
// ends, with its time; a task's log lines; notes.
void PrintProgressEvent(const Output& out, const nlohmann::json& event);

}  // namespace adhoc::cli
