#!/usr/bin/env bash
# bench/up.sh: how long `adhoc up` takes for a new μblog environment on built releases, from the
# command to the first 200 through the router on both `/` (frontend) and the backend's health
# path, and to `up` returning (after-create tasks included); then `destroy`; and the memory (RSS
# and PSS) of a running environment per service and of its Redis. Median and max of N runs
# (default 5). MEM_DETAIL=1 adds one memory row per process.
#
# Usage: bench/up.sh [RUNS]    (builds adhoc if needed; uses its own home and ports; cleans up)
# SYNC_COMMIT=off bench/up.sh: the same with the cluster's synchronous_commit turned off after the
# warm-up (what adhoc ran before durable commits), to measure what durability costs `up`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${1:-5}
[ -x build/adhoc ] || scripts/setup.sh >/dev/null
adhoc="$root/build/adhoc"

work=$(mktemp -d /tmp/adhoc-bench-up.XXXXXX)
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
ms() { echo $(( $(date +%s%N) / 1000000 )); }
code() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1.localhost" "http://127.0.0.1:$port$2" || true; }

# Warm-up: the base (initdb, PostgreSQL, router) and the releases are built once, like on a
# machine that has run adhoc before. Not measured.
cp envs/demo.toml envs/warm.toml
"$adhoc" up warm >/dev/null
"$adhoc" destroy warm >/dev/null
if [ "${SYNC_COMMIT:-on}" = off ]; then
  # As root the cluster belongs to `postgres`, whose private socket folder only it reaches.
  as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  as_owner /usr/bin/psql -X -q -h "$ADHOC_HOME/base/postgres/run" -p "${ADHOC_POSTGRES_PORT:-5432}" \
    -U postgres -d postgres -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
fi

first=() done_=() destroy=()
for i in $(seq 1 "$runs"); do
  env="bench-$i"
  cp envs/demo.toml "envs/$env.toml"
  t0=$(ms)
  "$adhoc" up "$env" >"$work/up-$i.log" 2>&1 &
  up_pid=$!
  got_front=0 got_back=0
  while :; do
    [ $got_front -eq 0 ] && [ "$(code "$env" /)" = 200 ] && got_front=1
    [ $got_back -eq 0 ] && [ "$(code "$env" /api/health-check/)" = 200 ] && got_back=1
    [ $got_front -eq 1 ] && [ $got_back -eq 1 ] && break
    if ! kill -0 $up_pid 2>/dev/null && [ $got_front -eq 0 -o $got_back -eq 0 ]; then
      wait $up_pid || { cat "$work/up-$i.log"; exit 1; }
    fi
    sleep 0.01
  done
  first+=($(( $(ms) - t0 )))
  wait $up_pid
  done_+=($(( $(ms) - t0 )))
  if [ "$i" -eq 1 ]; then
    # Memory of a running environment that has served a few pages and run a task: each page
    # below once per gunicorn thread or worker, then until beat's first heartbeat (every 10 s)
    # has reached the worker. Measured live (smaps_rollup), before the destroy.
    for p in / /api/drf/fbv/posts/ /api/drf/fbv/posts/1/ /api/version/ /api/heartbeat/ /admin/login/; do
      for _ in 1 2 3 4; do code "$env" "$p" >/dev/null; done
    done
    beats() { curl -s -H "Host: $env.localhost" "http://127.0.0.1:$port/api/heartbeat/" |
              python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>/dev/null || echo 0; }
    for _ in $(seq 60); do [ "$(beats)" -gt 0 ] && break; sleep 0.5; done
    "$adhoc" --json status "$env" > "$work/status.json"
    python3 "$root/bench/env_memory.py" "$work/status.json" "$ADHOC_HOME/envs/$env" ${MEM_DETAIL:+--processes} \
      > "$work/memory.md"
  fi
  t1=$(ms)
  "$adhoc" destroy "$env" >/dev/null
  destroy+=($(( $(ms) - t1 )))
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d ms median, %d ms max", a[int((NR+1)/2)], a[NR]}'; }
echo "## bench/up.sh ($runs runs, synchronous_commit ${SYNC_COMMIT:-on}, $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r))"
echo
echo "| measure | result |"
echo "|---|---|"
echo "| \`adhoc up\` to first 200 on / and /api/health-check/ | $(stats "${first[@]}") |"
echo "| \`adhoc up\` returning (sample data included) | $(stats "${done_[@]}") |"
echo "| \`adhoc destroy\` | $(stats "${destroy[@]}") |"
echo
echo "Memory of a running μblog environment (after a few pages and one heartbeat task), per service"
echo "(bench/env_memory.py: RSS, PSS and private pages of each task's process group, from smaps_rollup):"
echo
cat "$work/memory.md"
