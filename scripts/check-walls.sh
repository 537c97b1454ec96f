#!/usr/bin/env bash
# The walls of DESIGN's architecture, checked on every include of the project's own headers:
# a module's sources may include only the modules it may reach. Tests (x_test.cc and the
# test_*.h / *_test_support.h helpers) may reach anything; the binary's main file
# (src/cli/adhoc_main.cc) may also reach the entry points of the processes the binary becomes.
# Prints every violation with its file and line; exits 1 when there is one. Run by ctest.
set -euo pipefail
cd "$(dirname "$0")/../src"

# module -> the modules (or single headers) it may include besides its own.
declare -A allowed=(
  [common]=""
  [spec]="common"
  [state]="common"
  [plan]="common spec state"
  [runtime]="common"
  [resources]="common runtime"
  [router]="common"
  [render]="common spec"
  [cloud]="common spec render"
  [server]="common spec plan state runtime resources"
  # The command line: argument parsing and printing. It reaches the control plane only
  # through its client API and entry points, and plan's pure functions.
  [cli]="common spec render cloud plan/plan.h server/api_client.h server/launcher.h server/serve.h server/doctor.h"
)
main_file_extra="router/router_command.h runtime/shim.h server/keeper.h"

violations=0
for module in "${!allowed[@]}"; do
  [ -d "$module" ] || continue
  for file in "$module"/*.cc "$module"/*.h; do
    [ -e "$file" ] || continue
    case "$file" in
      *_test.cc | */test_*.h | *test_support.h | */test_util.h) continue ;;
    esac
    extra=""
    [ "$file" = "cli/adhoc_main.cc" ] && extra=$main_file_extra
    while IFS=: read -r line include; do
      target=${include#*\"}
      target=${target%\"*}
      target_module=${target%%/*}
      [ "$target_module" = "$module" ] && continue
      ok=0
      for a in ${allowed[$module]} $extra; do
        if [ "$a" = "$target_module" ] || [ "$a" = "$target" ]; then ok=1; break; fi
      done
      if [ $ok -eq 0 ]; then
        echo "src/$file:$line: $module must not reach $target"
        violations=$((violations + 1))
      fi
    done < <(grep -n '^#include "[a-z_]*/' "$file" | sed 's/^\([0-9]*\):/\1:/')
  done
done
if [ $violations -gt 0 ]; then
  echo "check-walls: $violations include(s) break DESIGN's architecture" >&2
  exit 1
fi
echo "check-walls: every include stays within its module's walls"
