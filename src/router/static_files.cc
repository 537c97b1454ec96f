#include "router/static_files.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <ctime>

namespace adhoc::router {

std::optional<std::string> PercentDecodePath(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        h = static_cast<char>(std::tolower(static_cast<unsigned char>(h)));
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        return -1;
      };
      int hi = hex(path[i + 1]), lo = hex(path[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::string ContentTypeFor(std::string_view filename) {
  size_t dot = filename.rfind('.');
  size_t slash = filename.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
    return "application/octet-stream";
  }
  std::string ext(filename.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, const char*> kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
      {"xml", "application/xml"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"pdf", "application/pdf"},
      {"wasm", "application/wasm"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
  };
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

std::string HttpDate(time_t when) {
  struct tm tm;
  gmtime_r(&when, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::optional<StaticFile> OpenStaticFile(const std::string& folder, std::string_view request_path) {
  auto decoded = PercentDecodePath(request_path);
  if (!decoded || decoded->empty() || decoded->front() != '/') return std::nullopt;
  // Refuse any ".." segment outright (also "\" tricks are moot on Linux).
  std::string_view p = *decoded;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string_view seg =
        p.substr(start, slash == std::string_view::npos ? p.npos : slash - start);
    if (seg == "..") return std::nullopt;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  char root_real[PATH_MAX];
  if (!realpath(folder.c_str(), root_real)) return std::nullopt;
  std::string candidate = folder + *decoded;
  char file_real[PATH_MAX];
  if (!realpath(candidate.c_str(), file_real)) return std::nullopt;
  std::string root(root_real), file(file_real);
  if (file.size() <= root.size() || file.compare(0, root.size(), root) != 0 ||
      (root != "/" && file[root.size()] != '/')) {
    return std::nullopt;  // a symlink pointing outside the folder
  }
  int fd = open(file_real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return std::nullopt;
  }
  StaticFile f;
  f.fd = fd;
  f.size = static_cast<uint64_t>(st.st_size);
  f.mtime = st.st_mtime;
  f.content_type = ContentTypeFor(file);
  return f;
}

}  // namespace adhoc::router
