// Folder routes (the seed's S3 bucket): resolving a request path to a file under an
// environment's folder. The full request path is looked up under the folder
// ("/static/app.css" -> "<folder>/static/app.css"), after percent-decoding. No escape:
// ".." segments, NUL, and symlinks resolving outside the folder are refused.
// Thread-safe (pure, plus filesystem reads).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace adhoc::router {

// Percent-decodes a path; nullopt on a malformed escape or a decoded NUL.
std::optional<std::string> PercentDecodePath(std::string_view path);

// A Content-Type for a file name, by extension ("application/octet-stream" if unknown).
std::string ContentTypeFor(std::string_view filename);

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string HttpDate(time_t when);

struct StaticFile {
  int fd = -1;  // open for reading; the caller closes it
  uint64_t size = 0;
  time_t mtime = 0;
  std::string content_type;
};

// Opens the regular file for `request_path` under `folder`. nullopt when there is none
// (missing, a directory, outside the folder, malformed path): the caller answers 404.
std::optional<StaticFile> OpenStaticFile(const std::string& folder, std::string_view request_path);

}  // namespace adhoc::router
