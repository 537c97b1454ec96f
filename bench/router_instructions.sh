#!/usr/bin/env bash
# Instructions per proxied request of adhoc's router and of nginx, counted by valgrind's
# callgrind (user space, every thread of the process), in the three modes of
# bench/router.sh: plain, access (an allow list and basic auth on the environment) and
# tls (the same EC P-256 certificate for both). Unlike requests/s, the count does not
# depend on what else runs on the machine, so it compares the two proxies' work per
# request even on a shared machine (it leaves out the kernel's share: both make about the
# same socket calls per request).
#
#   bench/router_instructions.sh [--adhoc build/adhoc] [--seconds 8] [--modes "plain access tls"]
#
# Each proxy runs alone under callgrind with one worker (adhoc --threads 1; nginx without
# its master process), behind it the same upstream nginx; one warm-up request, counters
# zeroed, then wrk -t1 -c16 for the given seconds; the count is divided by the requests
# wrk completed. Installs valgrind and wrk (Debian packages) when missing.
set -euo pipefail

ADHOC=build/adhoc
SECONDS_RUN=8
MODES="plain access tls"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --adhoc) ADHOC=$2; shift 2 ;;
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
ADHOC=$(realpath "$ADHOC")
need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [[ ${#need[@]} -gt 0 ]]; then
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/adhoc-instr-XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
UP_PORT=18911
PROXY_PORT=18910
AUTH_HEADER="Authorization: Basic $(printf 'bench:bench-secret-1' | base64)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=*.bench.localhost" -keyout "$WORK/bench.key" -out "$WORK/bench.crt" 2>/dev/null
mkdir -p "$WORK/up"
cat > "$WORK/up/nginx.conf" <<EOF2
worker_processes 1; error_log stderr warn; pid $WORK/up/nginx.pid;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_PORT; location / { return 200 "hello from upstream\n"; } } }
EOF2
nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

wait_port() {
  for _ in $(seq 300); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}
wait_port $UP_PORT

start_adhoc() {  # MODE -> PROXY_PID
  local mode=$1 home="$WORK/adhoc-$1" args=(--listen "127.0.0.1:$PROXY_PORT")
  [[ $mode == tls ]] && args=(--listen "127.0.0.1:$((PROXY_PORT + 2))" --tls-listen "127.0.0.1:$PROXY_PORT"
                             --tls-cert "$WORK/bench.crt" --tls-key "$WORK/bench.key")
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.adhoc.$mode" \
    "$ADHOC" router --home "$home" "${args[@]}" --threads 1 2>"$WORK/vg.adhoc.$mode.log" &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port $PROXY_PORT
  for _ in $(seq 100); do [[ -S "$home/router/router.sock" ]] && break; sleep 0.1; done
  /usr/bin/python3 - "$home/router/router.sock" "$mode" "$UP_PORT" <<'EOF2'
import json, socket, sys
path, mode, port = sys.argv[1:4]
env = {"name": "env1", "hosts": ["env1.localhost"],
       "routes": [{"pattern": "/api/*", "service": "api",
                   "targets": [{"id": "api", "address": f"127.0.0.1:{port}"}]},
                  {"pattern": "/*", "service": "web",
                   "targets": [{"id": "web", "address": f"127.0.0.1:{port}"}]}]}
if mode == "access":
    env["access"] = {"allow": ["127.0.0.0/8"],
                     "basic_auth": [{"user": "bench", "password": "bench-secret-1"}]}
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall((json.dumps({"op": "replace_all", "envs": [env]}) + "\n").encode())
assert json.loads(s.makefile().readline())["ok"]
EOF2
}

start_nginx() {  # MODE -> PROXY_PID
  local mode=$1 dir="$WORK/nginx-$1"
  mkdir -p "$dir/logs"
  chmod 755 "$dir"
  printf 'bench:{PLAIN}bench-secret-1\n' > "$dir/htpasswd"
  {
    echo "master_process off; daemon off; worker_processes 1; error_log $dir/error.log warn; pid $dir/nginx.pid;"
    echo "events { worker_connections 8192; }"
    echo "http { keepalive_requests 1000000;"
    echo "  log_format lines escape=json '{\"time\":\"\$msec\",\"method\":\"\$request_method\",\"path\":\"\$uri\",\"status\":\$status,\"bytes\":\$body_bytes_sent,\"duration\":\"\$request_time\"}';"
    echo "  access_log $dir/logs/access.log lines buffer=64k flush=1s;"
    [[ $mode == tls ]] && echo "  ssl_certificate $WORK/bench.crt; ssl_certificate_key $WORK/bench.key; ssl_protocols TLSv1.2 TLSv1.3;"
    echo "  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }"
    echo "  server { listen 127.0.0.1:$PROXY_PORT$([[ $mode == tls ]] && echo ' ssl'); server_name env1.localhost;"
    [[ $mode == access ]] && echo "    allow 127.0.0.0/8; deny all; auth_basic \"env1\"; auth_basic_user_file $dir/htpasswd;"
    echo "    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\";"
    echo "      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;"
    [[ $mode == access ]] && echo "      proxy_set_header Authorization \"\";"
    echo "    } } }"
  } > "$dir/nginx.conf"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.nginx.$mode" \
    nginx -p "$dir" -c "$dir/nginx.conf" 2>"$WORK/vg.nginx.$mode.log" &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port $PROXY_PORT
}

measure() {  # PROXY MODE -> "requests instructions"
  local proxy=$1 mode=$2 scheme=http extra=()
  [[ $mode == tls ]] && scheme=https
  [[ $mode == access ]] && extra=(-H "$AUTH_HEADER")
  "start_$proxy" "$mode"
  curl -skf -o /dev/null -H "Host: env1.localhost" "${extra[@]}" "$scheme://127.0.0.1:$PROXY_PORT/" ||
    echo "$proxy $mode: warm-up request failed" >&2
  callgrind_control -z "$PROXY_PID" >/dev/null 2>&1
  local out requests
  out=$(wrk -t1 -c16 -d"${SECONDS_RUN}s" -H "Host: env1.localhost" "${extra[@]}" "$scheme://127.0.0.1:$PROXY_PORT/")
  grep -q "Non-2xx" <<<"$out" && echo "$proxy $mode: non-2xx answers" >&2
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  callgrind_control -d "$PROXY_PID" >/dev/null 2>&1
  sleep 1
  kill "$PROXY_PID"
  wait "$PROXY_PID" 2>/dev/null || true
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null || break; sleep 0.1; done
  local total
  total=$(callgrind_annotate "$WORK/cg.$proxy.$mode.1" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
  echo "$requests $total"
}

printf '%-7s %14s %14s %10s\n' mode adhoc_instr nginx_instr adhoc/nginx
for mode in $MODES; do
  read -r a_req a_total < <(measure adhoc "$mode")
  read -r n_req n_total < <(measure nginx "$mode")
  a=$((a_total / a_req))
  n=$((n_total / n_req))
  printf '%-7s %14s %14s %10s\n' "$mode" "$a" "$n" "$(awk -v a="$a" -v n="$n" 'BEGIN{printf "%.2f", a/n}')"
done
echo "(instructions per request; $(valgrind --version), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///');"
echo " wrk -t1 -c16 -d${SECONDS_RUN}s -H 'Host: env1.localhost' [-H '$AUTH_HEADER'] http[s]://127.0.0.1:$PROXY_PORT/)"
