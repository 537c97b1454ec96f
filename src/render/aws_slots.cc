#include "render/aws_slots.h"

#include <algorithm>
#include <set>

namespace adhoc::render {

Result<SlotAssignment> AssignSlots(const std::vector<spec::EnvFile>& env_files) {
  SlotAssignment out;
  std::map<int, const spec::EnvFile*> holder;
  for (const spec::EnvFile& e : env_files) {
    if (!e.aws || !e.aws->slot) continue;
    int slot = *e.aws->slot;
    auto [it, inserted] = holder.emplace(slot, &e);
    if (!inserted)
      return BadInput(e.aws->where.ToString() + ": targets.aws.slot: slot " + std::to_string(slot) +
                      " is held by " + it->second->aws->where.ToString() +
                      " too; delete the line from one of them and render again (a new slot "
                      "is written)");
    out.slots[e.name] = slot;
  }
  std::vector<const spec::EnvFile*> missing;
  for (const spec::EnvFile& e : env_files)
    if (!out.slots.count(e.name)) missing.push_back(&e);
  std::sort(missing.begin(), missing.end(),
            [](const spec::EnvFile* a, const spec::EnvFile* b) { return a->name < b->name; });
  int next = 1;
  for (const spec::EnvFile* e : missing) {
    while (holder.count(next)) ++next;
    if (next > kMaxSlot)
      return BadInput(e->where.file + ": no AWS slot left for '" + e->name + "' (all " +
                      std::to_string(kMaxSlot) + " are held by env files)");
    holder.emplace(next, e);
    out.slots[e->name] = next;
    out.new_slots.push_back(e->name);
  }
  return out;
}

std::string RecordSlot(const std::string& text, int slot) {
  std::string line = "slot = " + std::to_string(slot) +
                     "   # written by `adhoc render aws`: this environment's listener rule "
                     "priorities; keep it while the environment lives\n";
  // An existing [targets.aws] header (alone on its line, maybe with a comment).
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string current = text.substr(at, end - at);
    size_t first = current.find_first_not_of(" \t");
    if (first != std::string::npos && current.compare(first, 13, "[targets.aws]") == 0) {
      size_t insert = end < text.size() ? end + 1 : end;
      std::string prefix = text.substr(0, insert);
      if (insert == text.size() && !prefix.empty() && prefix.back() != '\n') prefix += "\n";
      return prefix + line + text.substr(insert);
    }
    at = end + 1;
  }
  std::string out = text;
  if (!out.empty() && out.back() != '\n') out += "\n";
  return out + "\n[targets.aws]\n" + line;
}

}  // namespace adhoc::render
