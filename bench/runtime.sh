#!/bin/sh
# Times the local runtime and resources (bench/runtime_bench_main.cc): a small task started
# and health-gated, an environment's database and role created and dropped, a Redis started
# and stopped, each beside a peer measured in the same run. Prints a markdown table for
# docs/benchmarks.md. Usage: bench/runtime.sh [--runs N]   (default 5; BUILD=dir, default build)
# Needs root or a user that can run PostgreSQL 15's initdb; uses a temporary home.
set -eu
cd "$(dirname "$0")/.."
build=${BUILD:-build}

[ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target adhoc_runtime_bench -j2 >/dev/null

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench/adhoc_runtime_bench" "$@" >"$out"
sed '$d' "$out" >&2 # the program's own table, for the terminal

echo "Command: \`bench/runtime.sh $*\` on $(date -u +%Y-%m-%d),"
echo "$(nproc) cores, $(free -m | awk '/^Mem:/ {print $2}') MiB memory, Linux $(uname -r)" \
  "($(. /etc/os-release && echo "$PRETTY_NAME"))."
echo
tail -n 1 "$out" | jq -r '
  "Medians of \(.runs) runs (min and max beside them), in milliseconds.\n",
  "| measure | median | min | max | what |",
  "|---|---:|---:|---:|---|",
  (.measures[] | "| `\(.name)` | \(.median_ms*10|round/10) | \(.min_ms*10|round/10) | \(.max_ms*10|round/10) | \(.what) |"),
  "",
  "| ratio (adhoc median / peer median) | value |",
  "|---|---:|",
  (.ratios | to_entries[] | "| \(.key) | \(.value*100|round/100) |")'
