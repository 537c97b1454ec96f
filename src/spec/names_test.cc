#include "spec/names.h"

#include <gtest/gtest.h>

namespace adhoc::spec {
namespace {

std::string EnvNameError(const std::string& name) {
  Status s = ValidateEnvName(name);
  return s.ok() ? "" : s.error().message();
}

TEST(NamesTest, AcceptsDnsLabels) {
  for (const char* good : {"a", "feature-abc", "pr-123", "x1", "demo"})
    EXPECT_TRUE(ValidateEnvName(good).ok()) << good;
  EXPECT_TRUE(ValidateEnvName(std::string(40, 'a')).ok());
}

TEST(NamesTest, SaysWhichRuleFailed) {
  EXPECT_NE(EnvNameError("../x").find("only lowercase letters, digits and '-'"), std::string::npos);
  EXPECT_NE(EnvNameError("../x").find("found '.'"), std::string::npos);
  EXPECT_NE(EnvNameError("A").find("found 'A'"), std::string::npos);
  EXPECT_NE(EnvNameError("x;drop").find("found ';'"), std::string::npos);
  EXPECT_NE(EnvNameError(std::string(64, 'a')).find("longer than 40 characters (64)"),
            std::string::npos);
  EXPECT_NE(EnvNameError(std::string(41, 'a')).find("longer than 40"), std::string::npos);
  EXPECT_NE(EnvNameError("1abc").find("must start with a lowercase letter"), std::string::npos);
  EXPECT_NE(EnvNameError("-abc").find("must start with a lowercase letter"), std::string::npos);
  EXPECT_NE(EnvNameError("abc-").find("must not end with '-'"), std::string::npos);
  EXPECT_NE(EnvNameError("").find("empty"), std::string::npos);
  EXPECT_NE(EnvNameError("a b").find("found ' '"), std::string::npos);
  EXPECT_NE(EnvNameError("a\nb").find("found '\\x0a'"), std::string::npos);
  for (const char* reserved : {"adhoc", "www", "api"})
    EXPECT_NE(EnvNameError(reserved).find("reserved"), std::string::npos) << reserved;
  EXPECT_EQ(ValidateEnvName("A").error().kind(), ErrorKind::kBadInput);
}

TEST(NamesTest, ObjectNames) {
  EXPECT_TRUE(ValidateObjectName("service", "web-ui").ok());
  EXPECT_TRUE(ValidateObjectName("service", "api").ok());  // reserved only for environments
  EXPECT_TRUE(ValidateObjectName("service", std::string(30, 'a')).ok());
  Status long_name = ValidateObjectName("service", std::string(31, 'a'));
  ASSERT_FALSE(long_name.ok());
  EXPECT_NE(long_name.error().message().find("service name"), std::string::npos);
  EXPECT_FALSE(ValidateObjectName("task", "Migrate").ok());
  EXPECT_FALSE(ValidateObjectName("task", "9lives").ok());
  EXPECT_FALSE(ValidateObjectName("task", "web_ui").ok());
  EXPECT_FALSE(ValidateObjectName("image", "back-").ok());
}

TEST(NamesTest, EnvVarNames) {
  EXPECT_TRUE(IsValidEnvVarName("SECRET_KEY"));
  EXPECT_TRUE(IsValidEnvVarName("_x1"));
  EXPECT_FALSE(IsValidEnvVarName("1X"));
  EXPECT_FALSE(IsValidEnvVarName("MY-VAR"));
  EXPECT_FALSE(IsValidEnvVarName("A=B"));
  EXPECT_FALSE(IsValidEnvVarName(""));
}

}  // namespace
}  // namespace adhoc::spec
