#include "server/dashboard.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace adhoc::server {
namespace {

TEST(DashboardTest, ThePageLoadsNothingFromElsewhere) {
  const std::string& page = DashboardPage();
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("src="), std::string::npos);  // no script or image from anywhere
  EXPECT_EQ(page.find("<link"), std::string::npos);
}

TEST(DashboardTest, DataIsWrittenAsTextNeverAsMarkup) {
  const std::string& page = DashboardPage();
  EXPECT_EQ(page.find("innerHTML"), std::string::npos);
  EXPECT_EQ(page.find("outerHTML"), std::string::npos);
  EXPECT_EQ(page.find("document.write"), std::string::npos);
  EXPECT_NE(page.find("textContent"), std::string::npos);
}

TEST(DashboardTest, ChangesCarryTheHeaderTheCookieNeedsAndUseOnlyKnownPaths) {
  const std::string& page = DashboardPage();
  EXPECT_NE(page.find("\"X-Adhoc-Dashboard\"] = \"1\""), std::string::npos);
  std::set<std::string> paths;
  std::regex api_path("\"(/v1/[a-z/]*)\"");
  for (std::sregex_iterator it(page.begin(), page.end(), api_path), end; it != end; ++it)
    paths.insert((*it)[1]);
  EXPECT_EQ(paths, (std::set<std::string>{"/v1/environments", "/v1/environments/"}));
  for (const char* verb : {"\"sleep\"", "\"wake\"", "\"destroy\""})
    EXPECT_NE(page.find(verb), std::string::npos) << verb;
}

}  // namespace
}  // namespace adhoc::server
