#!/usr/bin/env bash
# Runs the router fuzz target for a bounded time over the repository's corpus.
#   fuzz/run_router_fuzz.sh FUZZER CORPUS WORKDIR SECONDS
# Exit 0 when libFuzzer found nothing; otherwise its exit status, with the crashing input
# kept in WORKDIR/artifacts/ (libFuzzer prints how to reproduce it).
set -euo pipefail
fuzzer=$1 corpus=$2 work=$3 seconds=$4
dict=$(dirname "$0")/router.dict
rm -rf "$work/new"
mkdir -p "$work/new" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict="$dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/new" "$corpus"
