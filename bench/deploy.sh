#!/usr/bin/env bash
# bench/deploy.sh: how long `adhoc deploy` of μblog's backend takes (build cached, migration,
# each backend service rolled behind its health check and drained), and how many requests fail
# while it runs under a steady, bounded wrk load through the router. Alternates the backend
# between v1.1.0 and v1.0.0 (v1.0.0 runs with the column v1.1.0 added: its migration kept the
# database compatible). Median and max of N deploys (default 5).
#
# Usage: bench/deploy.sh [RUNS]   (needs wrk; uses its own home and ports; cleans up)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${1:-5}
command -v wrk >/dev/null || { echo "bench/deploy.sh needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x build/adhoc ] || scripts/setup.sh >/dev/null
adhoc="$root/build/adhoc"

work=$(mktemp -d /tmp/adhoc-bench-deploy.XXXXXX)
chmod 755 "$work"
export ADHOC_HOME="$work/home"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ADHOC_ROUTER_LISTEN="127.0.0.1:$port"
cleanup() {
  (cd "$work/repo" 2>/dev/null && "$adhoc" base destroy >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

examples/ublog/make-repo.sh "$work/repo" >/dev/null
cd "$work/repo"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
"$adhoc" up brian-test >/dev/null
# Warm the release cache for both versions (not measured).
"$adhoc" deploy brian-test backend=v1.1.0 >/dev/null
"$adhoc" deploy brian-test backend=v1.0.0 >/dev/null

# wrk: every answer that is not 2xx/3xx is counted, and so are socket errors.
cat > "$work/count.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("requests %d non2xx %d errors %d\n", summary.requests, e.status,
                         e.connect + e.read + e.write + e.timeout))
end
LUA

times=() failed=() total=0
for i in $(seq 1 "$runs"); do
  version=v1.1.0
  [ $((i % 2)) -eq 0 ] && version=v1.0.0
  wrk -t1 -c8 -d120s -s "$work/count.lua" -H "Host: brian-test.localhost" \
    "http://127.0.0.1:$port/api/health-check/" > "$work/wrk-$i.log" 2>&1 &
  wrk_pid=$!
  sleep 1
  t0=$(ms)
  "$adhoc" deploy brian-test "backend=$version" > "$work/deploy-$i.log" 2>&1 || { cat "$work/deploy-$i.log"; exit 1; }
  times+=($(( $(ms) - t0 )))
  sleep 1
  kill -INT $wrk_pid; wait $wrk_pid || true
  line=$(grep '^requests ' "$work/wrk-$i.log")
  requests=$(echo "$line" | awk '{print $2}')
  bad=$(( $(echo "$line" | awk '{print $4}') + $(echo "$line" | awk '{print $6}') ))
  failed+=("$bad")
  total=$((total + requests))
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d ms median, %d ms max", a[int((NR+1)/2)], a[NR]}'; }
sum() { local s=0; for x in "$@"; do s=$((s + x)); done; echo $s; }
echo "## bench/deploy.sh ($runs runs, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r))"
echo
echo "| measure | result |"
echo "|---|---|"
echo "| \`adhoc deploy brian-test backend=...\` (migrate, gunicorn, worker and beat rolled) | $(stats "${times[@]}") |"
echo "| requests during the deploys (wrk -t1 -c8 on /api/health-check/) | $total |"
echo "| failed requests (non-2xx/3xx and socket errors) | $(sum "${failed[@]}") |"
