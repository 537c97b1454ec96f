#!/usr/bin/env bash
# bench/ls.sh: how long listing 1,000 recorded environments takes (issue 13: under 100 ms).
# Records N environments straight into a fresh home's state file (as `up` leaves them, with a
# version each; no processes), then times, over RUNS runs: the API's answer alone
# (`GET /v1/environments` on the control plane's socket, with curl) and the whole
# `adhoc --json ls` command (process start, connection, answer, printing). Prints the median
# and max of each, and checks the answer lists all N.
#
# Usage: bench/ls.sh [N] [RUNS]    (default 1000 and 11; uses its own home; cleans up)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
n=${1:-1000}
runs=${2:-11}
[ -x build/adhoc ] || scripts/setup.sh >/dev/null
adhoc="$root/build/adhoc"

work=$(mktemp -d /tmp/adhoc-bench-ls.XXXXXX)
export ADHOC_HOME="$work/home"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ADHOC_ROUTER_LISTEN="127.0.0.1:$port"
cleanup() {
  "$adhoc" base down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The control plane creates the state file; the environments are recorded beside it (SQLite
# takes a second writer).
"$adhoc" ls >/dev/null
python3 - "$ADHOC_HOME/state.db" "$n" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30)
n = int(sys.argv[2])
now = int(time.time() * 1000)
with db:
    for i in range(n):
        name = f"env-{i:04d}"
        block = f"127.{100 + i // 250}.{i % 250}.0/24"
        db.execute(
            "INSERT INTO environments (name, status, owner, created_at, updated_at, last_request_at,"
            " ttl_seconds, sleep_after_seconds, address_block, hostname, url, spec_json, env_file_hash)"
            " VALUES (?, ?, 'bench', ?, ?, ?, 259200, 1800, ?, ?, ?, '{}', '')",
            (name, "sleeping" if i % 2 else "running", now - i * 1000, now, now - i * 500, block,
             f"{name}.localhost", f"http://{name}.localhost:{8080}/"))
        db.execute("INSERT INTO address_blocks (block, env, allocated_at) VALUES (?, ?, ?)",
                   (block, name, now))
        db.execute(
            "INSERT INTO versions (env, image, ref, commit_id, tree, release_path, deployed_at)"
            " VALUES (?, 'backend', 'v1.0.0', 'c0ffee', 'tree', '/nowhere', ?)", (name, now))
PY

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { printf '%s\n' "$@" | sort -n | tail -1; }

listed=$("$adhoc" --json ls | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["environments"]))')
[ "$listed" = "$n" ] || { echo "ls listed $listed environments, not $n" >&2; exit 1; }

api=() cli=()
for i in $(seq 1 "$runs"); do
  t=$(curl -s -o /dev/null -w '%{time_total}' --unix-socket "$ADHOC_HOME/server.sock" \
        http://adhoc/v1/environments)
  api+=($(python3 -c "print(round($t * 1000))"))
  t0=$(ms)
  "$adhoc" --json ls >/dev/null
  cli+=($(( $(ms) - t0 )))
done
echo "ls of $n recorded environments, $runs runs:"
echo "  API (GET /v1/environments):  median $(median "${api[@]}") ms, max $(max "${api[@]}") ms"
echo "  adhoc --json ls (whole CLI): median $(median "${cli[@]}") ms, max $(max "${cli[@]}") ms"
