#!/usr/bin/env bash
# bench/up.sh: how long `adhoc up` takes for a new μblog environment on built releases, from the
# command to the first 200 through the router on both `/` (frontend) and the backend's health
# path, and to `up` returning (after-create tasks included); then `destroy`; and the memory (RSS
# and PSS) of a running environment per service and of its Redis.
#
# The peer, in the same run: bench/naive_up.sh, the same steps done by hand in order (role and
# database, Redis, migrate, collectstatic, the four services started with adhoc.toml's commands,
# waited until gunicorn and nginx answer 200, sample data; then everything stopped and removed).
# Runs alternate (odd runs: naive first, even runs: adhoc first) so that neither always meets
# the machine in the same state. Both are warmed up once, unmeasured: adhoc's base and releases,
# the naive script's cluster and releases. Medians, p95 (nearest rank) and max of N runs each,
# and the ratio naive/adhoc of the medians (above 1: adhoc is faster).
#
# Usage: bench/up.sh [RUNS]    (default 5; builds adhoc if needed; own home, ports, cluster;
#                               cleans up)
# NAIVE=0 bench/up.sh: adhoc alone. NAIVE_CGROUP=0: the naive script's processes stay in this
# script's CPU cgroup (see below). MEM_DETAIL=1: one memory row per process as well.
# FORK_STARTS=off bench/up.sh: the same without fork starts (docs/files.md).
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
# A free port for the base's PostgreSQL as well: another home on the machine may hold 5432 on
# the address this home draws.
export ADHOC_POSTGRES_PORT=${ADHOC_POSTGRES_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
naive=${NAIVE:-1}
# The naive script's tasks and services in a CPU cgroup of their own, as adhoc's tasks are
# (bench/naive_up.sh --cgroup): other load on the machine then weighs on both alike. Default
# where it can (root, cgroup v1's cpu controller); NAIVE_CGROUP=0 leaves them in ours.
naive_cgroup=${NAIVE_CGROUP:-$([ "$(id -u)" = 0 ] && [ -w /sys/fs/cgroup/cpu ] && echo 1 || echo 0)}
naive_flags=()
[ "$naive_cgroup" = 1 ] && naive_flags+=(--cgroup)
cleanup() {
  (cd "$work/repo" 2>/dev/null && "$adhoc" base down >/dev/null 2>&1) || true
  [ -d "$work/naive" ] && "$root/bench/naive_up.sh" --state "$work/naive" --down >/dev/null 2>&1 || true
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
code() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1.localhost" "http://127.0.0.1:$port$2" || true; }

# Warm-up: the base (initdb, PostgreSQL, router) and the releases are built once, like on a
# machine that has run adhoc before. Not measured.
cp envs/demo.toml envs/warm.toml
t0=$(ms)
"$adhoc" up warm >/dev/null
first_up_ms=$(( $(ms) - t0 ))   # reported: initdb, the base, both releases and the template
"$adhoc" destroy warm >/dev/null
if [ "$naive" = 1 ]; then
  "$root/bench/naive_up.sh" --state "$work/naive" --repo "$work/repo" --name warm "${naive_flags[@]}" >/dev/null 2>"$work/naive-warm.log" ||
    { cat "$work/naive-warm.log"; exit 1; }
fi
if [ "${SYNC_COMMIT:-on}" = off ]; then
  # As root the cluster belongs to `postgres`, whose private socket folder only it reaches.
  as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  as_owner /usr/bin/psql -X -q -h "$ADHOC_HOME/base/postgres/run" -p "${ADHOC_POSTGRES_PORT:-5432}" \
    -U postgres -d postgres -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
fi

first=() done_=() destroy=() nfirst=() nup=() nteardown=()
run_adhoc() {
  local i=$1
  env="bench-$i"
  cp envs/demo.toml "envs/$env.toml"
  t0=$(ms)
  "$adhoc" up "$env" >"$work/up-$i.log" 2>&1 &
  up_pid=$!
  # One poller process for both paths (see bench/first_200.py: a curl loop would take CPU
  # from what it measures); it gives up when `up` ends without them.
  if ! got=$(/usr/bin/python3 "$root/bench/first_200.py" --since "$t0" --host "$env.localhost" \
      --while-pid "$up_pid" "http://127.0.0.1:$port/" "http://127.0.0.1:$port/api/health-check/"); then
    wait $up_pid || true
    cat "$work/up-$i.log"
    exit 1
  fi
  first+=("$got")
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
}
run_naive() {
  local i=$1 line
  line=$("$root/bench/naive_up.sh" --state "$work/naive" --repo "$work/repo" --name "naive-$i" "${naive_flags[@]}" 2>"$work/naive-$i.log") ||
    { cat "$work/naive-$i.log"; exit 1; }
  # naive first_200_ms=N up_ms=N teardown_ms=N steps=...
  nfirst+=($(sed -E 's/.*first_200_ms=([0-9]+).*/\1/' <<<"$line"))
  nup+=($(sed -E 's/.* up_ms=([0-9]+).*/\1/' <<<"$line"))
  nteardown+=($(sed -E 's/.*teardown_ms=([0-9]+).*/\1/' <<<"$line"))
  echo "run $i naive: $line" >&2
}
for i in $(seq 1 "$runs"); do
  if [ "$naive" = 1 ] && [ $((i % 2)) = 1 ]; then run_naive "$i"; fi
  run_adhoc "$i"
  # adhoc's own step times (its progress lines: "ok  STEP ... TIME"), beside naive_up.sh's.
  echo "run $i adhoc: first_200_ms=${first[-1]} up_ms=${done_[-1]} destroy_ms=${destroy[-1]}" \
    "steps=$(awk '$1 == "ok" { for (k = 2; k <= NF && $k !~ /^[0-9.]+m?s$/; k++) name = (k == 2 ? "" : name " ") $k
      if (k <= NF) printf "%s%s:%s", n++ ? "," : "", name, $k }' "$work/up-$i.log")" >&2
  if [ "$naive" = 1 ] && [ $((i % 2)) = 0 ]; then run_naive "$i"; fi
done

# Cold on a new backend tree: the base is up, but backend v1.1.0's release and its migrated
# template are made by this `up` (the frontend v2.1.0 release too), once.
"$adhoc" new cold --version backend=v1.1.0 --version frontend=v2.1.0 >/dev/null
t0=$(ms)
"$adhoc" up cold >"$work/up-cold.log" 2>&1 || { cat "$work/up-cold.log"; exit 1; }
cold_ms=$(( $(ms) - t0 ))
"$adhoc" destroy cold >/dev/null

# median (the middle run; the mean of the two middle ones for an even count), p95 (nearest
# rank: the ceil(0.95 N)-th smallest; with 5 runs, the max) and max, in ms.
stat() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
  m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; r = int(0.95*NR); if (r < 0.95*NR) r++;
  printf "%d %d %d", m, a[r], a[NR]}'; }
row() { # LABEL ADHOC_VALUES NAIVE_VALUES (space-separated lists; naive may be empty)
  local am ap ax nm np nx ratio=""
  read -r am ap ax <<<"$(stat $2)"
  if [ -n "$3" ]; then
    read -r nm np nx <<<"$(stat $3)"
    ratio=$(awk -v n="$nm" -v a="$am" 'BEGIN {printf "%.2f", n / a}')
    echo "| $1 | $am | $ap | $ax | $nm | $np | $nx | $ratio |"
  else
    echo "| $1 | $am | $ap | $ax | | | | |"
  fi
}
echo "## bench/up.sh ($runs runs each$([ "$naive" = 1 ] && echo ", interleaved with bench/naive_up.sh${naive_flags[*]:+ ${naive_flags[*]}}"), synchronous_commit ${SYNC_COMMIT:-on}, $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| measure (ms) | adhoc median | adhoc p95 | adhoc max | naive median | naive p95 | naive max | naive/adhoc |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
row "to the first 200 on / and /api/health-check/" "${first[*]}" "${nfirst[*]:-}"
row "\`up\` returning / naive script up (sample data included)" "${done_[*]}" "${nup[*]:-}"
row "\`destroy\` / naive teardown" "${destroy[*]}" "${nteardown[*]:-}"
echo
echo "Cold, once each: the first \`up\` of the run (initdb, the base, both releases built, the"
echo "template migrated): $first_up_ms ms; \`up\` returning on a new backend tree (v1.1.0 and"
echo "frontend v2.1.0 released and v1.1.0's template migrated by it): $cold_ms ms."
echo
echo "Memory of a running μblog environment (after a few pages and one heartbeat task), per service"
echo "(bench/env_memory.py: RSS, PSS and private pages of each task's process group, from smaps_rollup):"
echo
cat "$work/memory.md"
