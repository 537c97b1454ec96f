#!/usr/bin/env bash
# bench/wake.sh: how long a sleeping μblog environment takes to answer its first request
# through the router (issue 13: median at most 1 s). Each run puts `demo` to sleep
# (`adhoc sleep`: no process left), then times one request that the router holds while the
# control plane wakes it (Redis, then the routed services at once, each gated by its health
# check, then the routes; workers and beat follow)
# until its first 200, for `/` (frontend) and `/api/health-check/` (backend) sent together.
# Also times `adhoc sleep` and a wake by hand (`adhoc wake`). Median and max of N runs.
#
# Usage: bench/wake.sh [RUNS]    (default 5; builds adhoc if needed; own home and ports; cleans up)
# FORK_STARTS=off bench/wake.sh: the same without fork starts (docs/files.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${1:-5}
[ -x build/adhoc ] || scripts/setup.sh >/dev/null
adhoc="$root/build/adhoc"

work=$(mktemp -d /tmp/adhoc-bench-wake.XXXXXX)
chmod 755 "$work"
export ADHOC_HOME="$work/home"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ADHOC_ROUTER_LISTEN="127.0.0.1:$port"
cleanup() {
  (cd "$work/repo" 2>/dev/null && "$adhoc" base down >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

examples/ublog/make-repo.sh "$work/repo" >/dev/null
cd "$work/repo"
# FORK_STARTS=off: μblog without fork starts (its image's `python` and `preload` removed), to
# measure what they save in the same conditions.
if [ "${FORK_STARTS:-on}" = off ]; then
  sed -i '/^python /d; /^preload /,/\]$/d' adhoc.toml
fi
ms() { echo $(( $(date +%s%N) / 1000000 )); }
get() { curl -s -o /dev/null --max-time 60 -w '%{http_code}' -H "Host: demo.localhost" \
          "http://127.0.0.1:$port$1" || true; }

"$adhoc" up demo >/dev/null
[ "$(get /)" = 200 ] || { echo "demo does not answer" >&2; exit 1; }

on_request=() by_hand=() sleeps=()
for i in $(seq 1 "$runs"); do
  t0=$(ms)
  "$adhoc" sleep demo >/dev/null
  sleeps+=($(( $(ms) - t0 )))
  left=$(pgrep -f "$ADHOC_HOME/envs/demo/" | wc -l || true)
  [ "$left" -eq 0 ] || { echo "run $i: $left processes left while asleep" >&2; exit 1; }
  t0=$(ms)
  get / > "$work/front" &
  front=$!
  code_back=$(get /api/health-check/)
  wait $front
  t1=$(ms)
  [ "$code_back" = 200 ] && [ "$(cat "$work/front")" = 200 ] ||
    { echo "run $i: answered $(cat "$work/front") and $code_back" >&2; exit 1; }
  on_request+=($(( t1 - t0 )))
  "$adhoc" sleep demo >/dev/null
  t0=$(ms)
  "$adhoc" wake demo >/dev/null
  by_hand+=($(( $(ms) - t0 )))
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d ms median, %d ms max", a[int((NR+1)/2)], a[NR]}'; }
echo "## bench/wake.sh ($runs runs, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r))"
echo
echo "| measure | result |"
echo "|---|---|"
echo "| asleep → first 200 on / and /api/health-check/ through the router (held, woken on request) | $(stats "${on_request[@]}") |"
echo "| \`adhoc wake\` (by hand, until healthy and routed) | $(stats "${by_hand[@]}") |"
echo "| \`adhoc sleep\` (until no process is left) | $(stats "${sleeps[@]}") |"
