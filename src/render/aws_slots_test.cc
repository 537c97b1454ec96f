#include "render/aws_slots.h"

#include <gtest/gtest.h>

#include "spec/loader.h"

namespace adhoc::render {
namespace {

spec::EnvFile Env(const std::string& name, const std::string& text) {
  auto loaded = spec::ParseEnvFile(text, name, "envs/" + name + ".toml");
  EXPECT_TRUE(loaded.ok()) << spec::FormatDiagnostics(loaded.diagnostics);
  return loaded.value;
}

TEST(AwsSlotsTest, RecordedSlotsStayAndNewOnesTakeTheLowestFree) {
  std::vector<spec::EnvFile> envs = {Env("zeta", ""), Env("alpha", "[targets.aws]\nslot = 2\n"),
                                     Env("beta", ""), Env("gamma", "[targets.aws]\nslot = 4\n")};
  auto slots = AssignSlots(envs);
  ASSERT_TRUE(slots.ok()) << slots.error().message();
  EXPECT_EQ(slots->slots.at("alpha"), 2);
  EXPECT_EQ(slots->slots.at("gamma"), 4);
  EXPECT_EQ(slots->slots.at("beta"), 1);  // name order among the new ones
  EXPECT_EQ(slots->slots.at("zeta"), 3);
  EXPECT_EQ(slots->new_slots, std::vector<std::string>({"beta", "zeta"}));
}

TEST(AwsSlotsTest, ASlotHeldTwiceNamesBothFiles) {
  std::vector<spec::EnvFile> envs = {Env("a", "[targets.aws]\nslot = 3\n"),
                                     Env("b", "owner = \"x\"\n[targets.aws]\nslot = 3\n")};
  auto slots = AssignSlots(envs);
  ASSERT_FALSE(slots.ok());
  EXPECT_EQ(slots.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(slots.error().message().find("envs/b.toml:3: targets.aws.slot: slot 3 is held by "
                                         "envs/a.toml:2"),
            std::string::npos)
      << slots.error().message();
}

TEST(AwsSlotsTest, RecordSlotKeepsTheFileAndReadsBack) {
  const std::string text = "# demo\nowner = \"demo\"   # who\n\n[versions]\nbackend = \"v1\"\n";
  std::string updated = RecordSlot(text, 5);
  EXPECT_EQ(updated.substr(0, text.size()), text);
  auto loaded = spec::ParseEnvFile(updated, "demo", "envs/demo.toml");
  ASSERT_TRUE(loaded.ok()) << spec::FormatDiagnostics(loaded.diagnostics) << updated;
  EXPECT_EQ(loaded.value.aws->slot, 5);
  EXPECT_EQ(loaded.value.versions[0].ref, "v1");  // still under [versions]

  // Under an existing header; and a file without a final newline.
  std::string with_header = RecordSlot("[targets.aws]\n[env]\nA = \"1\"", 9);
  auto back = spec::ParseEnvFile(with_header, "demo", "envs/demo.toml");
  ASSERT_TRUE(back.ok()) << spec::FormatDiagnostics(back.diagnostics) << with_header;
  EXPECT_EQ(back.value.aws->slot, 9);
  EXPECT_EQ(back.value.env[0].value, "1");
  auto no_newline = spec::ParseEnvFile(RecordSlot("owner = \"x\"", 2), "demo", "envs/demo.toml");
  ASSERT_TRUE(no_newline.ok());
  EXPECT_EQ(no_newline.value.aws->slot, 2);
}

}  // namespace
}  // namespace adhoc::render
