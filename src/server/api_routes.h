// The API of docs/api.md as thin adapters: each handler checks its parameters (a 400 JSON
// error naming the parameter and the value for anything malformed), calls one operation of
// the control plane, and turns the result into JSON or a stream of progress events.
#pragma once

#include "server/api_server.h"

namespace adhoc::server {

class ControlPlane;

// Registers every route of docs/api.md on `api`.
void RegisterApi(ApiServer& api, ControlPlane& control_plane);

}  // namespace adhoc::server
