#!/usr/bin/env bash
# bench/density.sh: how many μblog environments this machine holds (issue 13, "Density": at
# least 50 awake at once and 500 defined), what an awake one costs in memory, and that a
# sleeping one runs no process.
#
# Phase a: creates AWAKE environments (`adhoc up`, two at a time), all awake at once, each
# with `sleep_after` set (sleeping enabled). After each pair: the machine's available memory
# (/proc/meminfo) and the sum of the environments' memory as `adhoc --json ls` reports it
# (measured by the control plane every 30 s: it lags). Stops early, saying so, when available
# memory falls under FLOOR_MIB (default 2048). Then checks that every awake environment answers
# 200 on `/` and `/api/health-check/` through the router, and reads the PostgreSQL connections
# (pg_stat_activity) and the open files of adhoc's processes at that peak.
# Phase b: puts them all to sleep (`adhoc sleep`), then creates environments up to DEFINED,
# each put to sleep once created (two at a time), with a progress line every 25.
# At the end: defined, awake peak, memory per awake environment (median of `ls`'s
# memory_bytes at the peak), the processes of sleeping environments (must be 0: by `ls`'s own
# data, and independently from /proc: every process whose cgroup, working folder or command line
# is an environment's, and every listening socket in a sleeping environment's address block),
# the disk of a sleeping environment as `adhoc ls` shows it, and the total time. A failed
# `up` or `sleep` is reported with its error and counted; the run goes on.
#
# Usage: bench/density.sh [AWAKE] [DEFINED]   (default 50 500; builds adhoc if needed; own home,
#                                              router and PostgreSQL ports; removes everything
#                                              at exit, also when interrupted)
# ADHOC=PATH: another adhoc binary. PARALLEL=N: creations at once (default 2).
# FLOOR_MIB=N: the available-memory floor of phase a.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
awake=${1:-50}
defined=${2:-500}
parallel=${PARALLEL:-2}
floor_mib=${FLOOR_MIB:-2048}
(( defined >= awake )) || { echo "DEFINED ($defined) must be at least AWAKE ($awake)" >&2; exit 2; }
if [ -n "${ADHOC:-}" ]; then
  adhoc=$ADHOC
else
  [ -x build/adhoc ] || scripts/setup.sh >/dev/null
  adhoc="$root/build/adhoc"
fi

work=$(mktemp -d /tmp/adhoc-bench-density.XXXXXX)
chmod 755 "$work"
export ADHOC_HOME="$work/home"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
export ADHOC_ROUTER_LISTEN="127.0.0.1:$port"
export ADHOC_POSTGRES_PORT=$(free_port)
cleanup() {
  trap - EXIT INT TERM
  set +e
  cd /
  local pids p left
  # Creations in flight end first (up to 2 minutes): a base stopped under an `up` could be
  # started again by it.
  [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null
  pids=$(jobs -pr) || true
  for _ in $(seq 240); do
    left=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && left=1; done
    [ -z "$left" ] && break
    sleep 0.5
  done
  for p in $pids; do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  (cd "$work/repo" 2>/dev/null && "$adhoc" base down >/dev/null 2>&1)
  # Whatever still runs from the work folder (by its working folder or command line) goes.
  for sig in TERM KILL; do
    for p in $(grep -lsa -- "$work/" /proc/[0-9]*/cmdline | cut -d/ -f3) \
             $(find /proc/[0-9]*/cwd -maxdepth 0 -lname "$work/*" 2>/dev/null | cut -d/ -f3); do
      [ "$p" != $$ ] && kill -"$sig" "$p" 2>/dev/null
    done
    sleep 2
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "interrupted: cleaning up" >&2; exit 130' INT TERM

examples/ublog/make-repo.sh "$work/repo" >/dev/null
cd "$work/repo"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
avail_mib() { awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo; }
load() { cut -d' ' -f1 /proc/loadavg; }
code() { curl -s -o /dev/null --max-time 30 -w '%{http_code}' -H "Host: $1.localhost" \
           "http://127.0.0.1:$port$2" || true; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_base() {
  as_owner /usr/bin/psql -X -q -At -h "$ADHOC_HOME/base/postgres/run" -p "$ADHOC_POSTGRES_PORT" \
    -U postgres -d postgres -c "$1"
}
name_of() { printf 'd%03d' "$1"; }
# Client connections of the environments (psql's own left out).
connections() {
  psql_base "SELECT count(*) FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>/dev/null || echo 0
}
t_start=$(ms)
loads=()
note_load() { loads+=("$(load)"); }

# Every environment of the bench: μblog's demo file with sleeping enabled (long enough that
# none falls asleep by itself during the run; the bench puts them to sleep by hand).
make_env_file() { sed 's/^ttl .*/ttl   = "3d"\nsleep_after = "2h"/' envs/demo.toml > "envs/$1.toml"; }

failures=0
: > "$work/failures"
# create NAME [sleep]: `adhoc up NAME` (then `adhoc sleep NAME`); a failure is written down.
create() {
  local name=$1 then_sleep=${2:-}
  make_env_file "$name"
  if ! "$adhoc" up "$name" >"$work/up-$name.log" 2>&1; then
    echo "$name up: $(tail -n 5 "$work/up-$name.log" | tr '\n' ' ')" >> "$work/failures"
    return 0
  fi
  if [ -n "$then_sleep" ] && ! "$adhoc" sleep "$name" >"$work/sleep-$name.log" 2>&1; then
    echo "$name sleep: $(tail -n 5 "$work/sleep-$name.log" | tr '\n' ' ')" >> "$work/failures"
  fi
}
ls_json() { "$adhoc" --json ls > "$work/ls.json"; }
py() { python3 - "$work/ls.json" "$@"; }
memory_sum_mib() {
  ls_json
  py <<'EOF'
import json, sys
envs = json.load(open(sys.argv[1]))["environments"]
print(int(sum(e.get("memory_bytes", 0) for e in envs) / 2**20))
EOF
}

# Warm-up, not counted: the base (initdb, PostgreSQL, router) and both releases and the
# migrated template, as on a machine that has run adhoc before.
cp envs/demo.toml envs/warm.toml
"$adhoc" up warm >"$work/up-warm.log" 2>&1 || { cat "$work/up-warm.log"; exit 1; }
"$adhoc" destroy warm >/dev/null
echo "# bench/density.sh $awake $defined: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
  "$(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $adhoc"
echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn); PostgreSQL max_connections" \
  "$(psql_base 'SHOW max_connections')"
echo

# ---- Phase a: AWAKE environments awake at once ------------------------------------------
echo "## phase a: up to $awake awake"
printf '%8s %10s %14s %12s %6s\n' created failed available_MiB ls_sum_MiB load
made=0 stopped_early=""
# PostgreSQL's client connections sampled every 0.5 s through phase a and the requests after it.
( while :; do connections; sleep 0.5; done ) > "$work/connections" &
sampler=$!
while (( made < awake )); do
  if (( $(avail_mib) < floor_mib )); then
    stopped_early="available memory $(avail_mib) MiB is under the floor of $floor_mib MiB"
    echo "stopping early: $stopped_early"
    break
  fi
  batch=$(( awake - made < parallel ? awake - made : parallel ))
  pids=()
  for k in $(seq 1 "$batch"); do create "$(name_of $(( made + k )))" & pids+=($!); done
  wait "${pids[@]}"
  made=$(( made + batch ))
  note_load
  printf '%8d %10d %14d %12d %6s\n' "$made" "$(wc -l < "$work/failures")" "$(avail_mib)" \
    "$(memory_sum_mib)" "$(load)"
done
awake_created=$made

# Every awake environment through the router; the figures at the peak.
ls_json
mapfile -t running < <(py <<'EOF'
import json, sys
for e in json.load(open(sys.argv[1]))["environments"]:
    if e["status"] == "running":
        print(e["name"])
EOF
)
ok=0 bad=()
for name in "${running[@]}"; do
  f=$(code "$name" /) b=$(code "$name" /api/health-check/)
  if [ "$f" = 200 ] && [ "$b" = 200 ]; then ok=$((ok + 1)); else bad+=("$name:$f/$b"); fi
done
echo
echo "awake at once: ${#running[@]} running; $ok answer 200 on / and /api/health-check/" \
  "through the router${bad:+; not: ${bad[*]}}"
# The control plane measures memory every 30 s: wait for a measurement that covers them all.
sleep 35
ls_json
read -r awake_median awake_total redis_median <<<"$(py <<'EOF'
import json, sys, statistics
envs = [e for e in json.load(open(sys.argv[1]))["environments"] if e["status"] == "running"]
mem = [e.get("memory_bytes", 0) / 2**20 for e in envs]
redis = [e.get("redis_memory_bytes", 0) / 2**20 for e in envs]
print(f"{statistics.median(mem) if mem else 0:.0f} {sum(mem):.0f} "
      f"{statistics.median(redis) if redis else 0:.1f}")
EOF
)"
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
peak_conn=$(sort -n "$work/connections" | tail -1)
conn=$(connections)
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# This home's router (its pid file) and control plane (the process holding its lock): other
# homes on the machine run the same binary.
router_pid=$(cat "$ADHOC_HOME/router/router.pid" 2>/dev/null || true)
serve_pid=""
for p in $(pgrep -f " serve" || true); do
  ls -l "/proc/$p/fd" 2>/dev/null | grep -q " $ADHOC_HOME/server.lock$" && { serve_pid=$p; break; }
done
echo "peak: available memory $(avail_mib) MiB; ls: ${awake_total} MiB in all, median $awake_median MiB" \
  "per environment (its Redis: median $redis_median MiB); PostgreSQL client connections: $conn" \
  "now, $peak_conn at most (sampled every 0.5 s while creating and requesting);" \
  "open files: router ${router_pid:+$(fds "$router_pid")}, control plane ${serve_pid:+$(fds "$serve_pid")}," \
  "machine $(cut -f1 /proc/sys/fs/file-nr)"
avail_peak=$(avail_mib)
# The processes of environments of one status, found from /proc alone (not adhoc's data): every
# process tied to one by its cgroup (adhoc-<home id>/<env>/...), its working folder or its
# command line (<home>/envs/<env>/), and every TCP socket listening in its address block.
cat > "$work/proc_check.py" <<'EOF'
import json, os, re, sys
ls_json, status, home, home_cgroup = sys.argv[1:5]
envs = {e["name"]: e["address_block"] for e in json.load(open(ls_json))["environments"]
        if e["status"] == status}
by_cgroup = re.compile(r"/" + home_cgroup + r"/([a-z0-9-]+)(/|$)", re.M)
by_path = re.compile(re.escape(home) + r"/envs/([a-z0-9-]+)(/|$)")
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cgroup = open(f"/proc/{pid}/cgroup").read()
        cwd = os.readlink(f"/proc/{pid}/cwd")
        cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        continue
    names = {m.group(1) for m in by_cgroup.finditer(cgroup)}
    names |= {m.group(1) for m in by_path.finditer(cwd + "\n" + cmd)}
    for n in names & envs.keys():
        found.append(f"{n}: pid {pid} {cmd[:80]}")
blocks = {b.split("/")[0].rsplit(".", 1)[0] + ".": n for n, b in envs.items()}
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    if f[3] != "0A":  # LISTEN
        continue
    ip_hex, port_hex = f[1].split(":")
    ip = ".".join(str(int(ip_hex[i:i + 2], 16)) for i in (6, 4, 2, 0))
    n = blocks.get(ip.rsplit(".", 1)[0] + ".")
    if n:
        found.append(f"{n}: listening on {ip}:{int(port_hex, 16)}")
print(len(found), len(envs), sum(1 for f in found if ": listening" in f))
for line in found[:20]:
    print(line)
EOF
# This home's cgroup (adhoc-<home id>), read from a running task, for the /proc check below.
home_cgroup=$(py <<'EOF'
import json, re, sys
for e in json.load(open(sys.argv[1]))["environments"]:
    for s in e.get("services", []):
        for t in s.get("tasks", []):
            try:
                m = re.search(r"/(adhoc-[^/]+)/", open(f"/proc/{t['pid']}/cgroup").read())
            except (OSError, KeyError):
                continue
            if m:
                print(m.group(1))
                sys.exit()
print("adhoc-[^/]+")
EOF
)
# The same check on the awake ones: it must find their processes (else it proves nothing).
python3 "$work/proc_check.py" "$work/ls.json" running "$ADHOC_HOME" "$home_cgroup" > "$work/proc-awake"
read -r awake_found awake_checked awake_sockets < "$work/proc-awake"
echo "the /proc check finds $awake_found processes and listening sockets ($awake_sockets sockets) of the" \
  "$awake_checked awake environments"

# ---- Phase b: asleep, then up to DEFINED defined -----------------------------------------
echo
echo "## phase b: all asleep, then up to $defined defined (each created, then put to sleep)"
t0=$(ms)
for name in "${running[@]}"; do
  "$adhoc" sleep "$name" >"$work/sleep-$name.log" 2>&1 ||
    echo "$name sleep: $(tail -n 5 "$work/sleep-$name.log" | tr '\n' ' ')" >> "$work/failures"
done
echo "put ${#running[@]} to sleep in $(( ($(ms) - t0) / 1000 )) s; available memory $(avail_mib) MiB"
printf '%8s %10s %14s %10s %6s\n' defined failed available_MiB elapsed_s load
made=$awake_created
t_b=$(ms)
while (( made < defined )); do
  batch=$(( defined - made < parallel ? defined - made : parallel ))
  pids=()
  for k in $(seq 1 "$batch"); do create "$(name_of $(( made + k )))" sleep & pids+=($!); done
  wait "${pids[@]}"
  prev=$made
  made=$(( made + batch ))
  if (( made / 25 != prev / 25 )) || (( made == defined )); then
    note_load
    printf '%8d %10d %14d %10d %6s\n' "$made" "$(wc -l < "$work/failures")" "$(avail_mib)" \
      $(( ($(ms) - t_b) / 1000 )) "$(load)"
  fi
done

# ---- The end: what is defined, and what sleeping environments run -------------------------
sleep 35  # one more disk and memory measurement by the control plane
ls_json
"$adhoc" ls > "$work/ls.txt"
read -r n_defined n_sleeping n_other ls_procs ls_mem disk_median sample <<<"$(py <<'EOF'
import json, os, sys, statistics
envs = json.load(open(sys.argv[1]))["environments"]
sleeping = [e for e in envs if e["status"] == "sleeping"]
# By adhoc's own data: tasks it lists with a live pid, and memory it measures, of sleeping ones.
procs = mem = 0
for e in sleeping:
    for s in e.get("services", []):
        for t in s.get("tasks", []):
            if t.get("pid") and os.path.exists(f"/proc/{t['pid']}"):
                procs += 1
    mem += e.get("memory_bytes", 0) > 0
disk = [e["disk"]["total_bytes"] / 2**20 for e in sleeping if "disk" in e]
print(len(envs), len(sleeping), len(envs) - len(sleeping), procs, mem,
      f"{statistics.median(disk) if disk else 0:.1f}", sleeping[0]["name"] if sleeping else "-")
EOF
)"
# Independently, from /proc (see proc_check.py above).
python3 "$work/proc_check.py" "$work/ls.json" sleeping "$ADHOC_HOME" "$home_cgroup" > "$work/proc-check"
read -r proc_count _ _ < "$work/proc-check"
total_s=$(( ($(ms) - t_start) / 1000 ))
failures=$(wc -l < "$work/failures")
read -r load_min load_max <<<"$(printf '%s\n' "${loads[@]}" | sort -n | awk 'NR==1{a=$1} {b=$1} END{print a, b}')"

echo
echo "## result"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| defined (recorded by \`adhoc ls\`) | $n_defined of $defined asked ($n_sleeping sleeping, $n_other not) |"
echo "| awake at once (peak) | ${#running[@]} of $awake asked, $ok answering 200 through the router${stopped_early:+ (stopped early: $stopped_early)} |"
echo "| memory per awake environment (\`ls\`, median) | $awake_median MiB (its Redis $redis_median MiB); $awake_total MiB for all ${#running[@]} |"
echo "| available memory at the awake peak | $avail_peak MiB of $(free -m | awk '/Mem:/{print $2}') |"
echo "| processes of the $n_sleeping sleeping environments, by \`ls\` (tasks listed with a live pid; environments with memory > 0) | $ls_procs; $ls_mem |"
echo "| the same, from /proc (cgroups, folders, command lines, listening sockets; the same check found $awake_found in the $awake_checked awake ones) | $proc_count |"
echo "| disk of a sleeping environment (\`ls\`, median) | $disk_median MiB |"
echo "| PostgreSQL client connections, most seen while $awake_created were created and requested (pg_stat_activity, every 0.5 s) | $peak_conn (of max_connections $(psql_base 'SHOW max_connections')); $conn when idle at the peak |"
echo "| failed creations or sleeps | $failures |"
echo "| load average (1 min) during the run | $load_min to $load_max |"
echo "| total time | $total_s s |"
echo
echo "\`adhoc ls\` of one sleeping environment:"
echo
echo '```'
head -1 "$work/ls.txt"
grep -E "^$sample[[:space:]]" "$work/ls.txt" || true
tail -1 "$work/ls.txt"
echo '```'
if (( proc_count > 0 )); then echo; echo "processes of sleeping environments:"; tail -n +2 "$work/proc-check"; fi
if (( failures > 0 )); then echo; echo "failures:"; cat "$work/failures"; fi
