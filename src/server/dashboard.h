// The dashboard (DESIGN "Names": it lives at adhoc.<domain>): one self-contained page, served by
// the API at GET / and through the router with the API's token (api_auth.h). It lists the
// environments as `adhoc ls` does (status, URL, versions, owner, age, last request, time left,
// memory, disk, and a total line) from GET /v1/environments every few seconds, and puts one to
// sleep, wakes it or destroys it (asking first) with the API's POSTs, which it sends with the
// X-Adhoc-Dashboard header its cookie needs for changes. No resource from elsewhere; data is
// written as text, never as markup.
#pragma once

#include <string>

namespace adhoc::server {

const std::string& DashboardPage();

}  // namespace adhoc::server
