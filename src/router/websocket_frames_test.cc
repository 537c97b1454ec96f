#include "router/websocket_frames.h"

#include <gtest/gtest.h>

#include <string>

namespace adhoc::router {
namespace {

std::string Frame(size_t payload, bool masked) {
  std::string f;
  f += '\x81';
  unsigned char mask_bit = masked ? 0x80 : 0;
  if (payload < 126) {
    f += static_cast<char>(mask_bit | payload);
  } else if (payload <= 0xffff) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(payload >> 8);
    f += static_cast<char>(payload & 0xff);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((uint64_t{payload} >> (8 * i)) & 0xff);
  }
  if (masked) f += "MASK";
  f += std::string(payload, 'x');
  return f;
}

TEST(WebSocketFrameTracker, FollowsBoundariesAcrossAnySplit) {
  std::string stream = Frame(5, false) + Frame(0, false) + Frame(300, true) + Frame(70000, false);
  std::vector<size_t> ends = {7, 9, 9 + 4 + 4 + 300, stream.size()};
  for (size_t step : {1u, 3u, 7u, 1000u}) {
    WebSocketFrameTracker t;
    EXPECT_TRUE(t.at_boundary());
    for (size_t i = 0; i < stream.size(); i += step) {
      size_t n = std::min(step, stream.size() - i);
      t.Feed(std::string_view(stream).substr(i, n));
      bool boundary = false;
      for (size_t e : ends) boundary = boundary || e == i + n;
      // Between frames exactly when the bytes fed so far end a frame.
      if (boundary) EXPECT_TRUE(t.at_boundary()) << "step " << step << " at " << i + n;
      if (!boundary && step == 1) EXPECT_FALSE(t.at_boundary()) << "at " << i + n;
    }
    EXPECT_TRUE(t.at_boundary());
  }
}

}  // namespace
}  // namespace adhoc::router
