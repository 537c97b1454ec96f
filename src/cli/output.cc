#include "cli/output.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace adhoc::cli {

void Output::Line(const std::string& text) const {
  if (json_) return;
  std::fputs(text.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Output::Note(const std::string& text) const {
  if (json_) return;
  std::fputs(text.c_str(), stderr);
  std::fputc('\n', stderr);
}

void Output::Document(const nlohmann::json& doc) const {
  std::fputs(doc.dump(2).c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

int Output::Fail(const Error& error) const {
  if (json_) {
    const char* kind = error.kind() == ErrorKind::kBadInput   ? "bad_input"
                       : error.kind() == ErrorKind::kNotFound ? "not_found"
                       : error.kind() == ErrorKind::kConflict ? "conflict"
                                                              : "failed";
    Document({{"error", {{"kind", kind}, {"message", error.message()}}}});
  } else {
    std::fprintf(stderr, "adhoc: %s\n", error.message().c_str());
  }
  return error.exit_code();
}

bool Output::tty() const { return !json_ && isatty(STDOUT_FILENO); }

std::string FormatDuration(long long ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f}s", ms / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60'000, (ms / 1000) % 60);
}

void PrintProgressEvent(const Output& out, const nlohmann::json& e) {
  std::string type = e.value("type", "");
  if (type == "step") {
    std::string status = e.value("status", "");
    if (status == "running") return;
    std::string detail = e.value("detail", "");
    if (status == "failed") detail = detail.substr(0, detail.find('\n'));
    out.Line(fmt::format("  {:<6} {:<28} {:>7}  {}", status == "done" ? "ok" : "FAILED",
                         e.value("name", ""), FormatDuration(e.value("elapsed_ms", 0LL)), detail));
  } else if (type == "log") {
    out.Line(fmt::format("         {} | {}", e.value("process", ""), e.value("line", "")));
  } else if (type == "note") {
    out.Note("  note: " + e.value("message", ""));
  }
}

}  // namespace adhoc::cli
