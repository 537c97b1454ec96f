#!/usr/bin/env bash
# bench/reset.sh: how long `adhoc reset` takes to bring a μblog environment (its 20 sample
# posts, Celery's Redis keys) back to its start data, from the command to its return, each run
# after a post was added through the API (checked gone, and the 20 sample posts back, after
# every reset); and what keeping the start data costs `up` (its "start data" step). Median and
# max of N runs (default 7).
#
# Usage: bench/reset.sh [RUNS]   (builds adhoc if needed; uses its own home and ports; cleans up)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${1:-7}
[ -x build/adhoc ] || scripts/setup.sh >/dev/null
adhoc="$root/build/adhoc"

work=$(mktemp -d /tmp/adhoc-bench-reset.XXXXXX)
chmod 755 "$work"
export ADHOC_HOME="$work/home"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
export ADHOC_ROUTER_LISTEN="127.0.0.1:$port"
export ADHOC_POSTGRES_PORT=$(free_port)
cleanup() {
  (cd "$work/repo" 2>/dev/null && "$adhoc" base down >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

examples/ublog/make-repo.sh "$work/repo" >/dev/null
cd "$work/repo"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
api() { curl -s -H "Host: demo.localhost" "$@"; }
count() { api "http://127.0.0.1:$port/api/drf/fbv/posts/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

"$adhoc" up demo >"$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
start_data=$(awk '$2 == "start" && $3 == "data" {print $4}' "$work/up.log")
[ "$(count)" = 20 ] || { echo "expected 20 sample posts, got $(count)"; exit 1; }
login() {
  api -X POST -H 'Content-Type: application/json' \
    -d '{"email": "demo@example.com", "password": "demo"}' \
    "http://127.0.0.1:$port/api/auth/token/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

resets=()
for i in $(seq 1 "$runs"); do
  token=$(login)  # a reset forgets tokens made after the start data too
  api -X POST -H 'Content-Type: application/json' -H "Authorization: Token $token" \
    -d "{\"body\": \"bench post $i\"}" "http://127.0.0.1:$port/api/drf/fbv/posts/" >/dev/null
  [ "$(count)" = 21 ] || { echo "run $i: the post was not added"; exit 1; }
  t0=$(ms)
  "$adhoc" reset demo >"$work/reset-$i.log" 2>&1 || { cat "$work/reset-$i.log"; exit 1; }
  resets+=($(( $(ms) - t0 )))
  [ "$(count)" = 20 ] || { echo "run $i: $(count) posts after the reset, expected 20"; exit 1; }
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d ms median, %d ms max", a[int((NR+1)/2)], a[NR]}'; }
echo "## bench/reset.sh ($runs runs, $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r))"
echo
echo "| measure | result |"
echo "|---|---|"
echo "| \`adhoc reset\` of μblog (20 sample posts + 1 added), command to return | $(stats "${resets[@]}") |"
echo "| its steps (last run) | $(grep -E '^  ok' "$work/reset-$runs.log" | awk '{printf "%s%s %s", (NR>1?", ":""), $2, $3}') |"
echo "| keeping the start data during \`adhoc up\` (its \"start data\" step) | ${start_data:-?} |"
