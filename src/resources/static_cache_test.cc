#include "resources/static_cache.h"

#include <sys/stat.h>

#include <fstream>

#include "common/test_support.h"
#include "gtest/gtest.h"

namespace adhoc::resources {
namespace {
namespace fs = std::filesystem;

constexpr char kKey[] = "00112233aabbccdd";

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(StaticCacheTest, SavedFilesAreLinkedIntoANewFolderAndSurviveTheFirstFoldersRemoval) {
  testutil::TempDir dir;
  fs::path first = dir.path() / "first";
  fs::create_directories(first / "static" / "admin" / "css");
  std::ofstream(first / "static" / "admin" / "css" / "base.css") << "body{}";
  std::ofstream(first / "static" / "app.js") << "run()";
  StaticCache cache(dir.path() / "home");
  EXPECT_FALSE(cache.Has(kKey));
  ASSERT_TRUE(cache.Save(kKey, "backend/tree1", first).ok());
  EXPECT_TRUE(cache.Has(kKey));

  fs::path second = dir.path() / "second";
  fs::create_directories(second / "media");
  auto placed = cache.CopyInto(kKey, second);
  ASSERT_TRUE(placed.ok()) << placed.error().message();
  EXPECT_EQ(*placed, 2);
  EXPECT_EQ(Read(second / "static" / "admin" / "css" / "base.css"), "body{}");
  struct stat a {
  }, b{};
  ASSERT_EQ(stat((first / "static" / "app.js").c_str(), &a), 0);
  ASSERT_EQ(stat((second / "static" / "app.js").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "a hard link, not a copy";
  EXPECT_TRUE(fs::is_directory(second / "media")) << "what was there stays";

  fs::remove_all(first);
  fs::path third = dir.path() / "third";
  ASSERT_TRUE(cache.CopyInto(kKey, third).ok());
  EXPECT_EQ(Read(third / "static" / "app.js"), "run()");

  auto listed = cache.List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].release, "backend/tree1");
  EXPECT_EQ((*listed)[0].files, 2);
  EXPECT_EQ((*listed)[0].bytes, 11u);
  ASSERT_TRUE(cache.Remove(kKey).ok());
  EXPECT_FALSE(cache.Has(kKey));
  EXPECT_FALSE(cache.CopyInto(kKey, third).ok());
}

TEST(StaticCacheTest, KeysThatAreNotHexAreRefused) {
  testutil::TempDir dir;
  StaticCache cache(dir.path());
  EXPECT_FALSE(cache.Save("../../etc", "x", dir.path()).ok());
  EXPECT_FALSE(cache.Remove("../x").ok());
  EXPECT_FALSE(cache.Has("../x"));
}

}  // namespace
}  // namespace adhoc::resources
