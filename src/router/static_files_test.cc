#include "router/static_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "router/test_support.h"

namespace adhoc::router {
namespace {

TEST(StaticFiles, PercentDecodingAndTypes) {
  EXPECT_EQ(*PercentDecodePath("/a%20b/%2e%2E"), "/a b/..");
  EXPECT_FALSE(PercentDecodePath("/a%2"));
  EXPECT_FALSE(PercentDecodePath("/a%zz"));
  EXPECT_FALSE(PercentDecodePath("/a%00"));
  EXPECT_EQ(ContentTypeFor("app.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("x.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("dir.v1/file"), "application/octet-stream");
  EXPECT_EQ(HttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(StaticFiles, OpensFilesInsideOnlyAndRefusesEscapes) {
  testing::TempDir tmp;
  auto root = tmp.path() / "static";
  std::filesystem::create_directories(root / "static");
  std::ofstream(root / "static" / "app.css") << "body{}";
  std::ofstream(tmp.path() / "secret.txt") << "secret";
  std::filesystem::create_symlink(tmp.path() / "secret.txt", root / "static" / "link.txt");
  std::filesystem::create_symlink(root / "static" / "app.css", root / "static" / "inside.css");

  auto f = OpenStaticFile(root.string(), "/static/app.css");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size, 6u);
  EXPECT_EQ(f->content_type, "text/css; charset=utf-8");
  close(f->fd);
  auto inside = OpenStaticFile(root.string(), "/static/inside.css");
  ASSERT_TRUE(inside);  // a symlink that stays inside is fine
  close(inside->fd);

  EXPECT_FALSE(OpenStaticFile(root.string(), "/static/../../secret.txt"));
  EXPECT_FALSE(OpenStaticFile(root.string(), "/static/%2e%2e/%2e%2e/secret.txt"));
  EXPECT_FALSE(OpenStaticFile(root.string(), "/static/link.txt"));  // symlink escape
  EXPECT_FALSE(OpenStaticFile(root.string(), "/static"));           // a directory
  EXPECT_FALSE(OpenStaticFile(root.string(), "/static/missing.css"));
}

}  // namespace
}  // namespace adhoc::router
