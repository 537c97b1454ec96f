#include "router/websocket_frames.h"

#include <algorithm>

namespace adhoc::router {

size_t WebSocketFrameTracker::HeaderSize() const {
  if (head_len_ < 2) return 0;
  unsigned len7 = head_[1] & 0x7f;
  size_t size = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
  if (head_[1] & 0x80) size += 4;  // masking key
  return size;
}

void WebSocketFrameTracker::Feed(std::string_view d) {
  size_t i = 0;
  while (i < d.size()) {
    if (left_ > 0) {
      uint64_t take = std::min<uint64_t>(left_, d.size() - i);
      left_ -= take;
      i += static_cast<size_t>(take);
      continue;
    }
    head_[head_len_++] = static_cast<unsigned char>(d[i++]);
    size_t need = HeaderSize();
    if (need == 0 || head_len_ < need) continue;
    unsigned len7 = head_[1] & 0x7f;
    uint64_t payload = len7;
    if (len7 >= 126) {
      size_t n = len7 == 126 ? 2 : 8;
      payload = 0;
      for (size_t k = 0; k < n; ++k) payload = payload << 8 | head_[2 + k];
    }
    left_ = payload;
    head_len_ = 0;
  }
}

}  // namespace adhoc::router
