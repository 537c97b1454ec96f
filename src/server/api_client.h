// A client of the control plane's API (docs/api.md) over its Unix socket: what the CLI, tests
// and scripts use. Blocking; one object per thread.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace adhoc::server {

class ApiClient {
 public:
  explicit ApiClient(std::filesystem::path socket_path) : socket_path_(std::move(socket_path)) {}

  // True when something answers GET /v1/health on the socket.
  bool Reachable() const;

  // One request, one JSON answer. An API error body becomes an Error of its kind, with the
  // server's message (the "step" and "log_tail" fields are appended to the message).
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const nlohmann::json& body = nullptr) const;

  // A long operation with streamed progress: every event but the last goes to `on_event`;
  // the last ("type":"result") becomes the return value (its "env"/result on success, an Error
  // on failure).
  Result<nlohmann::json> Stream(const std::string& method, const std::string& path,
                                const nlohmann::json& body,
                                const std::function<void(const nlohmann::json&)>& on_event) const;

 private:
  std::filesystem::path socket_path_;
};

// Turns an API error body ({"error":{kind,message,...}}) into an Error.
Error ErrorFromJson(const nlohmann::json& body);

}  // namespace adhoc::server
