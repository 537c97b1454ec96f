// Request path normalization (issue 14): the router decides where a request goes, and whether
// an access rule applies to it, from one normalized path, and forwards that same path, so an
// upstream never sees a path that the router understood differently ("/%61pi/x" routed as
// "/api/x" and sent as "/api/x").
//
// Normalization, in place (it never makes a path longer):
//   - percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded; the
//     hex digits of every other escape are upper-cased ("%2f" stays encoded, as "%2F"... but
//     see the refusals below);
//   - "." and ".." segments are resolved (RFC 3986 5.2.4) and runs of '/' become one.
// Refused (the request is answered 400), because no upstream can be trusted to read them
// the same way: a malformed escape, an encoded '/', '\' or NUL, a raw '\', and a ".." that
// climbs above the root.
//
// Pure functions; thread-safe.
#pragma once

#include <string>

namespace adhoc::router {

struct PathNormalization {
  const char* error = nullptr;  // why the path was refused; nullptr when it was normalized
  bool changed = false;         // whether the path differs from what was given
};

// Normalizes `path` (which starts with '/') in place. On error `path` is unspecified.
PathNormalization NormalizeRequestPath(std::string& path);

}  // namespace adhoc::router
