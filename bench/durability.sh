#!/usr/bin/env bash
# bench/durability.sh: what durable commits cost. A write-heavy pgbench run (every transaction
# one autocommit INSERT of one row) against the base cluster of a home of its own, with
# adhoc's settings (synchronous_commit = on: a COMMIT returns once its WAL is on disk), and
# the same run with synchronous_commit = off for the session (PGOPTIONS), on the same cluster,
# interleaved run by run. Clients: 1 (every commit waits for its own flush) and 8 (commits
# share flushes). Median, min and max transactions per second of N runs of T seconds.
#
# Usage: bench/durability.sh [RUNS] [SECONDS]   (default 5 runs of 10 s; builds adhoc if needed;
# uses its own home and ports; cleans up)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${1:-5}
seconds=${2:-10}
[ -x build/adhoc ] || scripts/setup.sh >/dev/null
adhoc="$root/build/adhoc"
pgbench=/usr/lib/postgresql/15/bin/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench)

work=$(mktemp -d /tmp/adhoc-bench-durability.XXXXXX)
chmod 711 "$work"
export ADHOC_HOME="$work/home"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export ADHOC_ROUTER_LISTEN="127.0.0.1:$(free_port)"
export ADHOC_POSTGRES_PORT=$(free_port)
cleanup() {
  (cd "$work" && "$adhoc" base down >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

cd "$work"
"$adhoc" base up >/dev/null
socket_dir="$ADHOC_HOME/base/postgres/run"
# As root the cluster belongs to `postgres`, whose private socket folder only it (and root) reach.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql() { as_owner /usr/bin/psql -X -q -h "$socket_dir" -p "$ADHOC_POSTGRES_PORT" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE durability_bench"
psql -d durability_bench -c "CREATE TABLE rows (id bigserial PRIMARY KEY, v integer NOT NULL, at timestamptz NOT NULL DEFAULT now())"
script="$work/insert.sql"
printf '\\set v random(1, 1000000)\nINSERT INTO rows (v) VALUES (:v);\n' > "$script"
chmod 644 "$script"

# One pgbench run; prints its transactions per second.
run() {  # MODE CLIENTS
  as_owner env PGOPTIONS="-c synchronous_commit=$1" "$pgbench" -n -h "$socket_dir" \
    -p "$ADHOC_POSTGRES_PORT" -U postgres -c "$2" -j "$(( $2 < 2 ? 1 : 2 ))" -T "$seconds" \
    -f "$script" durability_bench 2>&1 |
    awk '/^tps = / {printf "%.0f\n", $3; found=1} END {if (!found) exit 1}'
}

declare -A tps
for clients in 1 8; do
  for i in $(seq 1 "$runs"); do
    for mode in on off; do
      tps[$mode-$clients]+="$(run "$mode" "$clients") "
    done
  done
done
durable=$(psql -d durability_bench -tA -c "SHOW synchronous_commit")

median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minmax() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[1] " | " a[NR]}'; }
echo "Command: \`bench/durability.sh $runs $seconds\` on $(date -u +%Y-%m-%d), $(nproc) cores," \
  "$(free -m | awk '/Mem:/{print $2}') MiB memory, Linux $(uname -r); the cluster's own setting:" \
  "synchronous_commit = $durable."
echo
echo "| clients | synchronous_commit | median tx/s | min | max |"
echo "|---:|---|---:|---:|---:|"
for clients in 1 8; do
  for mode in on off; do
    echo "| $clients | $mode$([ $mode = on ] && echo ' (adhoc)' || echo ' (peer)') |" \
      "$(median "${tps[$mode-$clients]}") | $(minmax "${tps[$mode-$clients]}") |"
  done
done
echo
echo "| ratio (on median / off median) | value |"
echo "|---|---:|"
for clients in 1 8; do
  on=$(median "${tps[on-$clients]}") off=$(median "${tps[off-$clients]}")
  echo "| $clients client$([ $clients = 1 ] || echo s) | $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a / b}') |"
done
