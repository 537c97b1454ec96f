// Helpers for the render tests: μblog's files as loaded by the CLI, and golden-file checks.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "render/container.h"
#include "render/files.h"
#include "spec/loader.h"

namespace adhoc::render::testing {

namespace fs = std::filesystem;

inline fs::path UblogDir() { return fs::path(ADHOC_SOURCE_DIR) / "examples" / "ublog"; }
inline fs::path GoldenDir() { return fs::path(ADHOC_SOURCE_DIR) / "src" / "render" / "testdata"; }

inline std::string Slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// μblog's adhoc.toml and env files, loaded without errors.
inline spec::Workspace LoadUblog() {
  auto loaded = spec::LoadWorkspace(UblogDir());
  EXPECT_TRUE(loaded.ok()) << spec::FormatDiagnostics(loaded.diagnostics);
  return loaded.value;
}

// Every service template of `project`, read from `dir`, keyed as TemplateTexts wants.
inline TemplateTexts ReadTemplates(const spec::Project& project, const fs::path& dir) {
  TemplateTexts out;
  for (const spec::Service& s : project.services)
    for (const std::string& t : s.templates)
      out[s.image + "/" + t] = Slurp(dir / project.FindImage(s.image)->path / t);
  return out;
}

// Compares `files` with the golden folder `name` under testdata: the same paths, the same
// bytes. With ADHOC_UPDATE_GOLDEN=1 in the environment, rewrites the folder instead.
inline void ExpectGolden(const RenderedFiles& files, const std::string& name) {
  fs::path dir = GoldenDir() / name;
  const char* update = std::getenv("ADHOC_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    fs::remove_all(dir);
    for (const RenderedFile& f : files) {
      fs::create_directories((dir / f.path).parent_path());
      std::ofstream(dir / f.path, std::ios::binary) << f.text;
    }
    return;
  }
  std::set<std::string> golden_paths;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file())
      golden_paths.insert(entry.path().lexically_relative(dir).generic_string());
  std::set<std::string> rendered_paths;
  for (const RenderedFile& f : files) {
    rendered_paths.insert(f.path);
    EXPECT_EQ(f.text, Slurp(dir / f.path))
        << f.path << " differs from " << (dir / f.path)
        << " (ADHOC_UPDATE_GOLDEN=1 rewrites the golden files; review the diff)";
  }
  EXPECT_EQ(rendered_paths, golden_paths);
}

}  // namespace adhoc::render::testing
