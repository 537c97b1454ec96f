#!/usr/bin/env bash
# bench/naive_up.sh: a new μblog environment brought up by hand, without adhoc: the steps of
# adhoc's (and the seed's) pipeline done in order, the way a developer would script them on the
# same machine. It is the peer of `adhoc up` in bench/up.sh (issue 12: adhoc must be at least
# twice as fast as this script, in the same run).
#
# Steps, each timed (the clock starts after the PostgreSQL cluster is up and the releases are
# built, as adhoc's is measured on a warm base with built releases):
#   1. role and database: psql CREATE ROLE ... LOGIN PASSWORD, then createdb -O (the seed's
#      bastion way)
#   2. a Redis of its own: password, append-only file (everysec) as adhoc's, polled with PING
#   3. migrate, 4. collectstatic: the commands of [tasks.*] in adhoc.toml
#   5. gunicorn, the Celery worker, beat and nginx started with the commands of [services.*]
#      in adhoc.toml (in file order, each in its own session, in the release folder, with
#      adhoc.toml's [env] rendered into a clean environment; nginx.conf.in rendered with sed)
#   6. wait until gunicorn answers 200 on /api/health-check/ and nginx 200 on /, polled every
#      10 ms by bench/first_200.py (one process, started with the services, as bench/up.sh
#      polls adhoc): "first 200". There is no router: each is asked directly on its own port
#      (adhoc's numbers go through its router; the extra hop is well under a millisecond).
#   7. the after-create task (generate_posts): "up"
#   8. teardown (also on failure or interrupt, from the EXIT trap): each service's stop signal,
#      wait for its processes to exit, Redis shut down, dropdb --force and DROP ROLE, folders
#      removed: "teardown", the peer of `adhoc destroy`.
# --gated starts them as the issue's first hand-made measurement did instead: gunicorn waited
# healthy, then the worker and beat, then nginx waited healthy.
#
# --cgroup runs the tasks and services (migrate, collectstatic, the four services, sample data)
# in a CPU cgroup of their own (cgroup v1, default weight), as adhoc runs its tasks (one group
# per home, under the root), while psql, createdb, Redis and PostgreSQL stay in the caller's,
# as adhoc's do. On a machine with other load this gives both the same CPU weight against it:
# without it, each of the script's processes weighs as much as all of adhoc's tasks together.
#
# Usage: bench/naive_up.sh [--state DIR] [--repo REPO] [--name NAME] [--gated] [--cgroup]
#        bench/naive_up.sh --state DIR --down      (stops the cluster kept in DIR)
#   --state DIR  keeps the μblog repository, the built releases and the PostgreSQL cluster in
#                DIR across runs (the first run makes them, untimed; later runs reuse them, as
#                adhoc reuses its base). Without it, everything lives in a temporary folder that
#                is removed at the end, cluster included.
#   --repo REPO  μblog's repository (examples/ublog/make-repo.sh); default: made in the state.
# Prints the step times on stderr and one line on stdout:
#   naive first_200_ms=N up_ms=N teardown_ms=N steps=db:N,redis:N,...
# Root: the cluster runs as `postgres` (PostgreSQL refuses root), as adhoc's does.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
pgbin=/usr/lib/postgresql/15/bin
py=/usr/bin/python3 # Debian's: it has Django, Celery and tomllib
host=127.0.0.1

state="" repo="" name="naive" gated=0 down=0 cgroup=0
while [ $# -gt 0 ]; do
  case $1 in
    --state) state=$2; shift 2 ;;
    --repo) repo=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --gated) gated=1; shift ;;
    --cgroup) cgroup=1; shift ;;
    --down) down=1; shift ;;
    *) echo "usage: bench/naive_up.sh [--state DIR] [--repo REPO] [--name NAME] [--gated] [--cgroup] [--down]" >&2; exit 2 ;;
  esac
done

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
say() { echo "naive_up: $*" >&2; }

if [ $down = 1 ]; then
  [ -n "$state" ] || { echo "--down needs --state" >&2; exit 2; }
  [ -f "$state/pg/data/postmaster.pid" ] && as_postgres "$pgbin/pg_ctl" -D "$state/pg/data" -m fast -w -s stop || true
  exit 0
fi

own_state=0
if [ -z "$state" ]; then
  state=$(mktemp -d /tmp/adhoc-naive-state.XXXXXX)
  own_state=1
fi
mkdir -p "$state"
state=$(cd "$state" && pwd)
chmod 755 "$state" # nginx's workers (nobody) and postgres must traverse it

# --- untimed: the machine as adhoc's warm base finds it (repository, releases, cluster) ------
[ -n "$repo" ] || repo=$state/repo
[ -f "$repo/adhoc.toml" ] || "$root/examples/ublog/make-repo.sh" "$repo" >/dev/null
# The versions of envs/demo.toml, as bench/up.sh's environments.
read -r vback vfront < <("$py" -c 'import sys, tomllib; v = tomllib.load(open(sys.argv[1], "rb"))["versions"]; print(v["backend"], v["frontend"])' "$repo/envs/demo.toml")
backend=$state/releases/backend-$vback
frontend=$state/releases/frontend-$vfront
if [ ! -d "$backend" ]; then
  mkdir -p "$backend.tmp" && git -C "$repo" archive "$vback:backend" | tar -xf - -C "$backend.tmp"
  chmod -R a-w "$backend.tmp" && mv "$backend.tmp" "$backend"
fi
if [ ! -d "$frontend" ]; then
  mkdir -p "$frontend.tmp" && git -C "$repo" archive "$vfront:frontend" | tar -xf - -C "$frontend.tmp"
  (cd "$frontend.tmp" && npm ci --no-audit --no-fund && npm run build) >"$state/frontend-build.log" 2>&1
  chmod -R a-w "$frontend.tmp" && chmod -R a+rX "$frontend.tmp" && mv "$frontend.tmp" "$frontend"
fi
pgport_file=$state/pg/port
if [ ! -f "$state/pg/data/PG_VERSION" ]; then
  rm -rf "$state/pg" && mkdir -p "$state/pg/run"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$state/pg"
  as_postgres "$pgbin/initdb" -D "$state/pg/data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$state/pg/initdb.log" 2>&1
  free_port >"$pgport_file"
fi
pgport=$(cat "$pgport_file")
if ! as_postgres "$pgbin/pg_ctl" -D "$state/pg/data" status >/dev/null 2>&1; then
  as_postgres "$pgbin/pg_ctl" -D "$state/pg/data" -l "$state/pg/postgres.log" -w -s \
    -o "-h $host -p $pgport -k $state/pg/run" start
fi
psql_su() { "$pgbin/psql" -qAtX -h "$state/pg/run" -p "$pgport" -U postgres -v ON_ERROR_STOP=1 "$@"; }

# --- this run's folders, names and secrets -----------------------------------------------------
work=$(mktemp -d "$state/run-$name.XXXXXX")
chmod 755 "$work"
mkdir -p "$work/logs" "$work/static" "$work/tasks" "$work/redis" "$work/home"
tag=$(basename "$work" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')
db="$name-$tag-db" role="naive_$tag"
rand() { head -c 18 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9'; }
pgpass=$(rand) redispass=$(rand) secret=$(rand)$(rand)
redisport=$(free_port)
hostname=$name.localhost
pids=() stop_signals=() db_made=0 redis_started=0
cg=""
if ((cgroup)); then
  cg=/sys/fs/cgroup/cpu/adhoc-bench-naive-$tag
  mkdir "$cg" 2>/dev/null || { say "--cgroup: cannot make $cg (cgroup v1 cpu, as root)"; exit 1; }
fi
# into_cgroup: moves the calling (sub)shell into the cgroup, so that what it execs runs there.
into_cgroup() { [ -z "$cg" ] || echo "$BASHPID" >"$cg/cgroup.procs"; }

teardown() {
  local status=$? t0 i pid
  set +e
  t0=$(ms)
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "-${stop_signals[i]}" "${pids[i]}" 2>/dev/null; done
  for ((i = 0; i < ${#pids[@]}; i++)); do
    pid=${pids[i]}
    for _ in $(seq 3000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done # <= 30 s
    kill -KILL -- "-$pid" 2>/dev/null
    # The group's other processes (gunicorn's and Celery's children) are gone when it is.
    for _ in $(seq 500); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.01; done
  done
  if ((redis_started)); then
    redis-cli -h $host -p "$redisport" --no-auth-warning -a "$redispass" shutdown >/dev/null 2>&1
    for _ in $(seq 500); do [ -f "$work/redis/redis.pid" ] || break; sleep 0.01; done
  fi
  if ((db_made)); then
    "$pgbin/dropdb" -h "$state/pg/run" -p "$pgport" -U postgres --force "$db"
    psql_su -c "DROP ROLE \"$role\""
  fi
  if ((status != 0)); then
    say "FAILED (exit $status); last lines of each log:"
    for log in "$work"/logs/*.log "$work"/redis/redis.log; do
      [ -s "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
    done
  fi
  rm -rf "$work"
  [ -z "$cg" ] || rmdir "$cg" 2>/dev/null
  local teardown_ms=$(( $(ms) - t0 ))
  if ((status == 0)); then
    say "teardown ${teardown_ms} ms"
    echo "naive first_200_ms=$first up_ms=$up teardown_ms=$teardown_ms steps=$steps"
  fi
  if ((own_state)); then
    as_postgres "$pgbin/pg_ctl" -D "$state/pg/data" -m fast -w -s stop >/dev/null 2>&1
    chmod -R u+w "$state" 2>/dev/null; rm -rf "$state"
  fi
  exit $status
}
trap teardown EXIT
trap 'exit 130' INT TERM

# adhoc.toml, rendered as adhoc would for this environment: `env` lines (NAME=VALUE, one per
# line, for env -i) and, per service and task, its command with {bind} {host} {port} {taskdir}.
render() {
  "$py" - "$repo/adhoc.toml" "$@" <<'PY'
import re, sys, tomllib
spec = tomllib.load(open(sys.argv[1], "rb"))
v = dict(a.split("=", 1) for a in sys.argv[3:])
what = sys.argv[2]
def fill(text, extra={}):
    values = {**v, **extra}
    def one(m):
        key = m.group(1)
        if key not in values:
            sys.exit(f"naive_up: no value for {{{key}}} in {text!r}")
        return values[key]
    return re.sub(r"(?<!\{)\{([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)\}", one, text).replace("{{", "{")
if what == "env":
    for k, val in spec.get("env", {}).items():
        print(f"{k}={fill(val)}")
elif what == "services":  # file order: NAME IMAGE PORT STOP_SIGNAL
    for n, s in spec["services"].items():
        print(n, s["image"], s.get("port", 0), s.get("stop_signal", "TERM"))
elif what in ("service", "task"):
    host, port = v["_host"], v["_port"]
    s = spec["services" if what == "service" else "tasks"][v["_name"]]
    print(fill(s["command"], {"host": host, "port": port, "bind": f"{host}:{port}", "taskdir": v["_taskdir"]}))
elif what == "health":  # a service's health path ("/" without one)
    h = spec["services"][v["_name"]].get("health", "/")
    print(h.get("path", "/") if isinstance(h, dict) else h)
PY
}
vals=(
  "random.secret_key=$secret"
  "postgres.host=$host" "postgres.port=$pgport" "postgres.database=$db" "postgres.user=$role"
  "postgres.password=$pgpass" "postgres.url=postgresql://$role:$pgpass@$host:$pgport/$db"
  "redis.host=$host" "redis.port=$redisport" "redis.password=$redispass"
  "redis.url=redis://:$redispass@$host:$redisport/0"
  "url=http://$hostname/" "hostname=$hostname" "env=$name" "static=$work/static"
  "version.backend=$vback" "version.frontend=$vfront"
)
mapfile -t app_env < <(render env "${vals[@]}")
clean_env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
command_of() { # KIND NAME PORT TASKDIR
  render "$1" "${vals[@]}" "_name=$2" "_host=$host" "_port=$3" "_taskdir=$4"
}
# run NAME DIR COMMAND: in DIR, a clean environment plus [env], `exec COMMAND` as adhoc runs a
# simple command, in its own session, output to logs/NAME.log; waits for it.
run() {
  (into_cgroup && cd "$2" && exec "${clean_env[@]}" HOME="$work/home" "${app_env[@]}" sh -c "exec $3") \
    >"$work/logs/$1.log" 2>&1
}
# start NAME DIR COMMAND SIGNAL: the same, in the background.
start() {
  (into_cgroup && cd "$2" && exec setsid "${clean_env[@]}" HOME="$work/tasks/$1" "${app_env[@]}" sh -c "exec $3") \
    >"$work/logs/$1.log" 2>&1 &
  pids+=("$!") stop_signals+=("$4")
}
answers() { # URL: 200?
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $hostname" "$1" || true)" = 200 ]
}
steps="" t_last=0
step() { local now; now=$(ms); steps+="${steps:+,}$1:$((now - t_last))"; say "$1 $((now - t_last)) ms"; t_last=$now; }

# Everything a service needs, rendered before the clock starts (reading adhoc.toml is not a step).
declare -A port_of cmd_of sig_of image_of
services=()
while read -r sname simage sport ssig; do
  services+=("$sname")
  [ "$sport" = 0 ] || sport=$(free_port)
  mkdir -p "$work/tasks/$sname"
  port_of[$sname]=$sport sig_of[$sname]=$ssig image_of[$sname]=$simage
  cmd_of[$sname]=$(command_of service "$sname" "$sport" "$work/tasks/$sname")
done < <(render services)
migrate=$(command_of task migrate 0 "$work/tasks/migrate")
collectstatic=$(command_of task collectstatic 0 "$work/tasks/collectstatic")
sample=$(command_of task sample-data 0 "$work/tasks/sample-data")
dir_of() { if [ "${image_of[$1]}" = frontend ]; then echo "$frontend"; else echo "$backend"; fi; }
start_service() {
  local s=$1 dir
  dir=$(dir_of "$s")
  if [ -f "$dir/nginx.conf.in" ] && [ "${image_of[$s]}" = frontend ]; then
    sed -e "s|{host}|$host|g" -e "s|{port}|${port_of[$s]}|g" -e "s|{taskdir}|$work/tasks/$s|g" \
      -e "s|{workdir}|$dir|g" "$dir/nginx.conf.in" >"$work/tasks/$s/nginx.conf"
  fi
  start "$s" "$dir" "${cmd_of[$s]}" "${sig_of[$s]}"
}
health_url() { render health "_name=$1"; }
declare -A url_of
for s in "${services[@]}"; do
  [ "${port_of[$s]}" = 0 ] || url_of[$s]="http://$host:${port_of[$s]}$(health_url "$s")"
done

# --- the clock starts ------------------------------------------------------------------------
t0=$(ms) t_last=$t0
psql_su -c "CREATE ROLE \"$role\" LOGIN PASSWORD '$pgpass'"
"$pgbin/createdb" -h "$state/pg/run" -p "$pgport" -U postgres -O "$role" "$db"
db_made=1
step db
cat >"$work/redis/redis.conf" <<EOF
bind $host
port $redisport
requirepass $redispass
dir "$work/redis"
daemonize yes
pidfile "$work/redis/redis.pid"
logfile "$work/redis/redis.log"
appendonly yes
appendfsync everysec
save ""
EOF
redis-server "$work/redis/redis.conf"
redis_started=1
until [ "$(redis-cli -h $host -p "$redisport" --no-auth-warning -a "$redispass" ping 2>/dev/null)" = PONG ]; do sleep 0.01; done
step redis
run migrate "$backend" "$migrate"
step migrate
run collectstatic "$backend" "$collectstatic"
step collectstatic
wait_ok() { until answers "$1"; do sleep 0.01; done; }
if ((gated)); then
  for s in "${services[@]}"; do
    start_service "$s"
    [ -z "${url_of[$s]:-}" ] || wait_ok "${url_of[$s]}"
    step "$s"
  done
else
  # Polled by one process from the moment the services start, as bench/up.sh polls adhoc's
  # router from the moment `up` starts.
  urls=()
  for s in "${services[@]}"; do [ -z "${url_of[$s]:-}" ] || urls+=("${url_of[$s]}"); done
  "$py" "$here/first_200.py" --since "$(ms)" --host "$hostname" --timeout 120 "${urls[@]}" \
    >/dev/null &
  poller=$!
  for s in "${services[@]}"; do start_service "$s"; done
  step start
  wait "$poller"
  step healthy
fi
first=$(( $(ms) - t0 ))
run sample-data "$backend" "$sample"
step sample-data
up=$(( $(ms) - t0 ))
say "first 200 on every routed service after $first ms; up (sample data included) after $up ms"
