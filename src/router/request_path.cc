#include "router/request_path.h"

#include <cstring>
#include <string_view>

namespace adhoc::router {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Whether the path may need work: the common path ("/api/items/42") has no '%', no '\',
// no "//" and no segment starting with '.', and is left alone without being copied.
bool NeedsWork(std::string_view p) {
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '%' || c == '\\') return true;
    if (c == '/' && i + 1 < p.size() && (p[i + 1] == '/' || p[i + 1] == '.')) return true;
  }
  return false;
}

}  // namespace

PathNormalization NormalizeRequestPath(std::string& path) {
  PathNormalization result;
  if (path.empty() || path[0] != '/') {
    result.error = "the path does not start with '/'";
    return result;
  }
  if (!NeedsWork(path)) return result;
  std::string original = path;

  // Pass 1: escapes, in place.
  char* p = path.data();
  size_t n = path.size(), w = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (c == '\\') {
      result.error = "a backslash in the path";
      return result;
    }
    if (c != '%') {
      p[w++] = c;
      continue;
    }
    if (i + 2 >= n) {
      result.error = "a malformed percent-escape in the path";
      return result;
    }
    int hi = HexValue(p[i + 1]), lo = HexValue(p[i + 2]);
    if (hi < 0 || lo < 0) {
      result.error = "a malformed percent-escape in the path";
      return result;
    }
    unsigned char v = static_cast<unsigned char>(hi * 16 + lo);
    if (v == '/' || v == '\\' || v == 0) {
      result.error = "an encoded '/', '\\' or NUL in the path";
      return result;
    }
    if (IsUnreserved(v)) {
      p[w++] = static_cast<char>(v);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      p[w++] = '%';
      p[w++] = kHex[hi];
      p[w++] = kHex[lo];
    }
    i += 2;
  }
  n = w;

  // Pass 2: segments, in place (the output never overtakes the input).
  w = 1;  // p[0] == '/'
  size_t i = 1;
  while (i <= n) {
    const char* slash = static_cast<const char*>(std::memchr(p + i, '/', n - i));
    size_t j = slash ? static_cast<size_t>(slash - p) : n;
    bool last = j == n;
    size_t len = j - i;
    if (len == 0 || (len == 1 && p[i] == '.')) {
      // an empty segment ("//") or ".": nothing; the output already ends in '/'
    } else if (len == 2 && p[i] == '.' && p[i + 1] == '.') {
      if (w == 1) {
        result.error = "a '..' segment above the root of the path";
        return result;
      }
      size_t k = w - 1;  // the '/' ending the output; drop the segment before it
      while (k > 0 && p[k - 1] != '/') --k;
      w = k;
    } else {
      std::memmove(p + w, p + i, len);
      w += len;
      if (!last) p[w++] = '/';
    }
    i = j + 1;
  }
  path.resize(w);
  result.changed = path != original;
  return result;
}

}  // namespace adhoc::router
