#!/usr/bin/env bash
# smoke.sh: runs μblog end to end without the engine, the way adhoc would, and checks it.
# In a temporary folder: the repository (make-repo.sh), read-only release folders exported from
# its tags, a throwaway PostgreSQL and Redis (with passwords), migrate + collectstatic +
# generate_posts, then gunicorn, a Celery worker, beat and nginx in a clean environment, checked
# with curl; then backend v1.1.0's migration and total_views, and frontend v2.1.0.
# Everything is stopped and removed on exit (KEEP=1 keeps the folder for a look).
# For humans and for the app's author, not CI: it needs PostgreSQL 15, redis-server, nginx,
# node/npm and Debian's Django/DRF/Celery/gunicorn. Run as root or as a normal user.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pgbin=/usr/lib/postgresql/15/bin
py=/usr/bin/python3
host=127.0.0.1
hostname=smoke.localhost

work=$(mktemp -d /tmp/ublog-smoke.XXXXXX)
chmod 755 "$work"   # nginx workers and the postgres user must be able to traverse it
mkdir -p "$work/logs" "$work/home" "$work/static" "$work/releases"
pids=()
pg_started=0

step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf '   FAILED: %s\n' "$*" >&2; exit 1; }
as_postgres() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# json EXPR: evaluates EXPR with `d` = the JSON document on stdin, prints the result.
json() { "$py" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

cleanup() {
  local status=$? pid
  set +e
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM -- "-${pids[i]}" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null
  done
  ((pg_started)) && as_postgres "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1
  if ((status != 0)); then
    echo "smoke.sh failed; last lines of each log:" >&2
    for log in "$work"/logs/*.log "$work"/pg/postgres.log; do
      [[ -s $log ]] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
    done
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "kept $work"
  else
    chmod -R u+w "$work" 2>/dev/null
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS WHAT COMMAND...: retries COMMAND every 0.2 s.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what (gave up after ${seconds}s)"
    sleep 0.2
  done
  ok "$what"
}

# start NAME DIR COMMAND...: runs COMMAND in DIR in its own session, output to logs/NAME.log.
start() {
  local name=$1 dir=$2
  shift 2
  (cd "$dir" && exec setsid "$@" >"$work/logs/$name.log" 2>&1) &
  pids+=("$!")
}

# The engine's clean environment for every backend process (adhoc.toml's [env], rendered).
pgport=$(free_port)
redisport=$(free_port)
pgpass=pg-$RANDOM$RANDOM
redispass=redis-$RANDOM$RANDOM
app_env=(
  env -i
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  HOME="$work/home" LANG=C.UTF-8
  DJANGO_SETTINGS_MODULE=backend.settings
  SECRET_KEY="smoke-$RANDOM$RANDOM$RANDOM"
  DEBUG=0
  POSTGRES_SERVICE_HOST=$host POSTGRES_SERVICE_PORT="$pgport" POSTGRES_NAME=smoke-db
  POSTGRES_USERNAME=ublog_smoke POSTGRES_PASSWORD="$pgpass"
  REDIS_URL="redis://:$redispass@$host:$redisport/0"
  FRONTEND_URL="http://$hostname:8080" ALLOWED_HOSTS="$hostname"
  STATIC_ROOT="$work/static/static" MEDIA_ROOT="$work/static/media"
  CELERY_TASK_ALWAYS_EAGER=0 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
)

# release IMAGE VERSION: exports the image folder at VERSION, runs its build, makes it read-only.
release() {
  local dir=$work/releases/$1-$2
  mkdir -p "$dir"
  git -C "$work/repo" archive "$2:$1" | tar -xf - -C "$dir"
  if [[ $1 == frontend ]]; then
    (cd "$dir" && env -i PATH="$PATH" HOME="$work/home" sh -c 'npm ci && npm run build') \
      >>"$work/logs/build.log" 2>&1 || fail "frontend $2 build"
  fi
  chmod -R a-w "$dir"
  echo "$dir"
}

# nginx_start NAME WORKDIR PORT: renders nginx.conf.in as adhoc would, starts nginx.
nginx_start() {
  local taskdir=$work/tasks/$1
  mkdir -p "$taskdir"
  sed -e "s|{host}|$host|g" -e "s|{port}|$3|g" -e "s|{taskdir}|$taskdir|g" -e "s|{workdir}|$2|g" \
    "$2/nginx.conf.in" >"$taskdir/nginx.conf"
  start "$1" "$2" nginx -p "$taskdir" -e stderr -c nginx.conf -g 'daemon off;'
}

api() { curl -sS -H "Host: $hostname" "$@"; }

step "repository and releases"
"$here/make-repo.sh" "$work/repo" >/dev/null
backend_v1=$(release backend v1.0.0)
frontend_v2=$(release frontend v2.0.0)
ok "backend v1.0.0 and frontend v2.0.0 exported (read-only), frontend built"

step "PostgreSQL and Redis"
mkdir -p "$work/pg" "$work/pgsock"
[[ $EUID -eq 0 ]] && chown postgres: "$work/pg" "$work/pgsock"
as_postgres "$pgbin/initdb" -D "$work/pg/data" -U postgres -E UTF8 --locale=C.UTF-8 \
  --auth-local=trust --auth-host=scram-sha-256 >"$work/logs/initdb.log" 2>&1
as_postgres "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -w -s \
  -o "-h $host -p $pgport -k $work/pgsock" start
pg_started=1
"$pgbin/psql" -qX -h "$work/pgsock" -p "$pgport" -U postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE ublog_smoke LOGIN PASSWORD '$pgpass'" \
  -c 'CREATE DATABASE "smoke-db" OWNER ublog_smoke'
ok "PostgreSQL on $host:$pgport, database smoke-db"
mkdir -p "$work/redis"
start redis "$work/redis" redis-server --bind $host --port "$redisport" --requirepass "$redispass" \
  --save '' --appendonly no --dir "$work/redis"
wait_for 10 "Redis on $host:$redisport" redis-cli -h $host -p "$redisport" --no-auth-warning -a "$redispass" ping

step "tasks: migrate, collectstatic, generate_posts (backend v1.0.0)"
(cd "$backend_v1" && "${app_env[@]}" SOURCE_TAG=v1.0.0 $py manage.py migrate --noinput) >"$work/logs/migrate.log" 2>&1 \
  || fail "migrate"
ok "migrate"
(cd "$backend_v1" && "${app_env[@]}" SOURCE_TAG=v1.0.0 $py manage.py collectstatic --noinput) \
  >"$work/logs/collectstatic.log" 2>&1 || fail "collectstatic"
[[ -f $work/static/static/admin/css/base.css ]] || fail "collectstatic wrote no admin css"
ok "collectstatic into STATIC_ROOT"
for _ in 1 2; do  # twice: it must be rerunnable
  (cd "$backend_v1" && "${app_env[@]}" SOURCE_TAG=v1.0.0 $py manage.py generate_posts) >>"$work/logs/sample-data.log" 2>&1 \
    || fail "generate_posts"
done
ok "generate_posts, twice"

step "services: gunicorn, worker, beat, web-ui"
gport=$(free_port)
wport=$(free_port)
mkdir -p "$work/tasks/beat"
start gunicorn "$backend_v1" "${app_env[@]}" SOURCE_TAG=v1.0.0 gunicorn -b "$host:$gport" --worker-class gthread --workers 1 --threads 2 --keep-alive 0 backend.wsgi
start default "$backend_v1" "${app_env[@]}" SOURCE_TAG=v1.0.0 $py -m celery --app=backend.celery_app:app \
  worker -Q default --pool=threads --concurrency=1 -n "default@$host" --without-gossip --without-mingle --loglevel=INFO
start beat "$backend_v1" "${app_env[@]}" SOURCE_TAG=v1.0.0 $py -m celery --app=backend.celery_app:app \
  beat -s "$work/tasks/beat/celerybeat-schedule" --loglevel=INFO
nginx_start web-ui "$frontend_v2" "$wport"
base=http://$host:$gport
wait_for 20 "gunicorn health check 200" curl -fsS -H "Host: $hostname" "$base/api/health-check/"
wait_for 10 "nginx up" curl -fsS "http://$host:$wport/"

step "API checks"
[[ $(curl -sS -H "Host: probe.invalid" "$base/api/health-check/") == '{"message": "OK"}' ]] \
  || fail "health check with another Host header"
ok "health check answers any Host, body {\"message\": \"OK\"}"
[[ $(api "$base/api/version/" | json 'd["version"]') == v1.0.0 ]] || fail "version v1.0.0"
ok "/api/version/ is v1.0.0"
count=$(api "$base/api/drf/fbv/posts/" | json 'd["count"]')
[[ $count == 20 ]] || fail "20 sample posts (got $count)"
ok "20 sample posts listed"
token=$(api -X POST -H 'Content-Type: application/json' \
  -d '{"email": "demo@example.com", "password": "demo"}' "$base/api/auth/token/" | json 'd["token"]')
[[ -n $token ]] || fail "token login"
ok "token login as demo@example.com"
code=$(api -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"body": "anonymous"}' "$base/api/drf/fbv/posts/")
[[ $code == 401 ]] || fail "anonymous POST is refused (got $code)"
ok "anonymous POST refused with 401"
auth=(-H "Authorization: Token $token" -H 'Content-Type: application/json')
post=$(api -X POST "${auth[@]}" -d '{"body": "Hello from the smoke test, five words"}' "$base/api/drf/fbv/posts/" \
  | json 'd["id"]')
ok "created post $post"
[[ $(api "$base/api/drf/fbv/posts/$post/" | json 'd["body"]') == "Hello from the smoke test, five words" ]] \
  || fail "read the post back"
ok "read it back"
processed() { [[ $(api "$base/api/drf/fbv/posts/$post/" | json 'd["processed_at"] is not None and d["word_count"]') == 7 ]]; }
wait_for 20 "worker processed the post (processed_at set, word_count 7)" processed
[[ $(api -X POST "${auth[@]}" "$base/api/drf/fbv/posts/$post/like/" | json 'd["liked"]') == True ]] || fail "like"
liked() { [[ $(api "$base/api/drf/fbv/posts/$post/" | json 'd["like_count"]') == 1 ]]; }
wait_for 20 "like counted by the worker (like_count 1)" liked
code=$(api -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"email": "new@example.com", "password": "a-long-passphrase-9"}' "$base/api/register/")
[[ $code == 201 ]] || fail "register (got $code)"
ok "register"
code=$(api -o /dev/null -w '%{http_code}' "$base/admin/login/")
[[ $code == 200 ]] || fail "/admin/login/ (got $code)"
ok "/admin/login/ 200"

step "web-ui (nginx)"
wbase=http://$host:$wport
grep -q 'μblog' <(curl -fsS "$wbase/") || fail "index"
ok "index 200"
[[ $(curl -sS -o /dev/null -w '%{http_code}' "$wbase/posts/$post") == 200 ]] || fail "SPA fallback"
ok "SPA fallback /posts/$post 200"
asset=$(grep -o '/assets/app\.[0-9a-f]*\.js' <(curl -fsS "$wbase/"))
curl -fsS -D - -o /dev/null "$wbase$asset" | grep -qi 'cache-control:.*immutable' || fail "hashed asset"
ok "hashed asset $asset, immutable"
[[ $(curl -fsS "$wbase/version.json" | json 'd["version"]') == 2.0.0 ]] || fail "frontend 2.0.0"
ok "version.json 2.0.0"

step "beat"
beats() { api "$base/api/heartbeat/" | json 'd["count"]'; }
beats_above() { (($(beats) > $1)); }
wait_for 30 "first heartbeat (beat sends every 10 s, the worker writes it)" beats_above 0
first=$(beats)
wait_for 25 "heartbeats advance past $first" beats_above "$first"

step "backend v1.1.0: migration while v1.0.0 still serves, then total_views"
backend_v11=$(release backend v1.1.0)
(cd "$backend_v11" && "${app_env[@]}" SOURCE_TAG=v1.1.0 $py manage.py migrate --noinput) >>"$work/logs/migrate.log" 2>&1 \
  || fail "migrate v1.1.0"
grep -q 0002_post_total_views "$work/logs/migrate.log" || fail "0002_post_total_views applied"
ok "0002_post_total_views applied"
code=$(api -o /dev/null -w '%{http_code}' -X POST "${auth[@]}" -d '{"body": "old code after the migration"}' \
  "$base/api/drf/fbv/posts/")
[[ $code == 201 ]] || fail "v1.0.0 can still create posts after v1.1.0's migration (got $code)"
ok "v1.0.0 still creates posts after the migration"
gport2=$(free_port)
start gunicorn-v1.1.0 "$backend_v11" "${app_env[@]}" SOURCE_TAG=v1.1.0 gunicorn -b "$host:$gport2" --worker-class gthread --workers 1 --threads 2 --keep-alive 0 backend.wsgi
base=http://$host:$gport2
wait_for 20 "gunicorn v1.1.0 health check 200" curl -fsS "$base/api/health-check/"
[[ $(api "$base/api/version/" | json 'd["version"]') == v1.1.0 ]] || fail "version v1.1.0"
ok "/api/version/ is v1.1.0"
api "$base/api/drf/fbv/posts/$post/" >/dev/null
views=$(api "$base/api/drf/fbv/posts/$post/" | json 'd["total_views"]')
[[ $views == 2 ]] || fail "total_views 2 after two GETs (got $views)"
ok "total_views counts GETs (2)"

step "frontend v2.1.0"
frontend_v21=$(release frontend v2.1.0)
wport2=$(free_port)
nginx_start web-ui-v2.1.0 "$frontend_v21" "$wport2"
wait_for 10 "nginx v2.1.0 up" curl -fsS "http://$host:$wport2/"
[[ $(curl -fsS "http://$host:$wport2/version.json" | json 'd["version"]') == 2.1.0 ]] || fail "frontend 2.1.0"
ok "version.json 2.1.0"

step "nothing written into the release folders"
leftovers=$(find "$work/releases" -name '__pycache__' -o -name '*.pyc' -o -name 'celerybeat*' | head -5)
[[ -z $leftovers ]] || fail "files written into a release: $leftovers"
ok "no __pycache__, no schedule file"

printf '\nsmoke.sh: all checks passed\n'
