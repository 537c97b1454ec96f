// The adhoc command line. Every subcommand is one row of kCommands below.
#include <cstdio>
#include <cstring>
#include <string>

#include "router/router_command.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
};

constexpr Command kCommands[] = {
    {"init", "write an adhoc.toml for the app in this folder"},
    {"validate", "check adhoc.toml and envs/*.toml"},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "router") == 0)
    return adhoc::router::RouterMain(argc - 1, argv + 1);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::printf("usage: adhoc COMMAND [ARGS]\n\n");
    for (const Command& c : kCommands) std::printf("  %-10s %s\n", c.name, c.summary);
    return argc < 2 ? 2 : 0;
  }
  std::fprintf(stderr, "adhoc: unknown command '%s'\n", argv[1]);
  return 2;
}
