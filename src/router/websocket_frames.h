// Follows WebSocket frame boundaries (RFC 6455 5.2) in a byte stream that the router relays
// without decoding it, so that it can close an upgraded connection cleanly (a Close frame,
// code 1001 "going away", sent between two frames) when its environment is removed.
// Not thread-safe; one per direction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace adhoc::router {

class WebSocketFrameTracker {
 public:
  // Accounts for the next bytes of the stream.
  void Feed(std::string_view data);
  // Whether the bytes so far end exactly at the end of a frame.
  bool at_boundary() const { return left_ == 0 && head_len_ == 0; }

 private:
  size_t HeaderSize() const;  // 0 while unknown

  uint64_t left_ = 0;  // payload bytes of the current frame still to come
  unsigned char head_[14] = {};
  size_t head_len_ = 0;
};

// A server-to-client Close frame with status 1001 (going away), unmasked.
inline constexpr std::string_view kWebSocketGoingAway{"\x88\x02\x03\xe9", 4};

}  // namespace adhoc::router
