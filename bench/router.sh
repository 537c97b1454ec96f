#!/usr/bin/env bash
# Benchmarks adhoc's router against nginx and HAProxy as reverse proxies in front of the
# same fast upstream (nginx answering a small body), with the same worker count and CPU
# pinning, for 1, 100 and 1000 environments (host-based routes; ENV_COUNTS="1 1000" to
# choose). Median of 3 wrk runs each;
# prints requests/s, p50/p99 latency and the proxy's RSS, with ratios to adhoc.
#
#   bench/router.sh [--adhoc build/adhoc] [--workers 1] [--duration 10] [--connections 64]
#
# After the table it prints the exact configurations used (for 1 environment; 1000 adds
# 999 more servers/backends/envs of the same shape) so results can be reproduced.
# Installs wrk and haproxy (Debian packages) when missing. Everything listens on
# 127.0.0.1; temporary files live in a mktemp directory removed at exit.
set -euo pipefail

ADHOC=build/adhoc
WORKERS=1
DURATION=10
CONNECTIONS=64
# adhoc always writes a per-environment access log (it is how it sees idle environments);
# "on" gives nginx and HAProxy a per-request access log too, so all three do the same work.
ACCESS_LOGS=on
while [[ $# -gt 0 ]]; do
  case "$1" in
    --adhoc) ADHOC=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --access-logs) ACCESS_LOGS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
ADHOC=$(realpath "$ADHOC")

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx-light)
if [[ ${#need[@]} -gt 0 ]]; then
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

NCPU=$(nproc)
# The proxy gets CPUs [0, WORKERS); wrk and the upstream share the rest (or CPU 0 too on
# a small machine: then the numbers compare proxies, not absolute capacity).
PROXY_CPUS=$(seq -s, 0 $((WORKERS - 1)))
if (( NCPU > WORKERS )); then
  LOAD_CPUS=$(seq -s, "$WORKERS" $((NCPU - 1)))
else
  LOAD_CPUS=$PROXY_CPUS
fi

WORK=$(mktemp -d /tmp/adhoc-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

UP_PORT=18901
PROXY_PORT=18900

# The upstream: nginx answering a small body.
mkdir -p "$WORK/up/logs"
cat > "$WORK/up/nginx.conf" <<EOF
worker_processes 1;
error_log stderr warn;
pid $WORK/up/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP_PORT;
    location / { return 200 "hello from upstream\n"; }
  }
}
EOF
taskset -c "$LOAD_CPUS" nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

wait_port() {
  for _ in $(seq 100); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}
wait_port $UP_PORT

rss_kb() {  # total RSS of a process and its children
  local total=0
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(ps -o rss= -p "$p" 2>/dev/null || echo 0)))
  done
  echo $total
}

# run_wrk HOST -> "rps p50_ms p99_ms" (median of 3 runs by requests/s)
to_ms() {
  awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'
}
run_wrk() {
  local host=$1 results=()
  for _ in 1 2 3; do
    local out rps p50 p99
    out=$(taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
      -H "Host: $host" "http://127.0.0.1:$PROXY_PORT/")
    if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers for $host" >&2; fi
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_ms)
    p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
    results+=("$rps $p50 $p99")
  done
  printf '%s\n' "${results[@]}" | sort -n -k1 | sed -n 2p
}

# Host names of N environments; requests go to the middle one.
hosts() { for i in $(seq 1 "$1"); do echo "env$i.localhost"; done; }

start_adhoc() {
  local n=$1 home="$WORK/adhoc-home"
  rm -rf "$home"
  taskset -c "$PROXY_CPUS" "$ADHOC" router --home "$home" --listen "127.0.0.1:$PROXY_PORT" \
    --threads "$WORKERS" 2>>"$WORK/adhoc.log" &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port $PROXY_PORT
  for _ in $(seq 100); do [[ -S "$home/router/router.sock" ]] && break; sleep 0.05; done
  /usr/bin/python3 - "$home/router/router.sock" "$n" "$UP_PORT" <<'EOF'
import json, socket, sys
path, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
envs = [{"name": f"env{i}", "hosts": [f"env{i}.localhost"], "status": "running",
         "routes": [{"pattern": "/api/*", "service": "api",
                     "targets": [{"id": "api", "address": f"127.0.0.1:{port}"}]},
                    {"pattern": "/*", "service": "web",
                     "targets": [{"id": "web", "address": f"127.0.0.1:{port}"}]}]}
        for i in range(1, n + 1)]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall((json.dumps({"op": "replace_all", "envs": envs}) + "\n").encode())
answer = s.makefile().readline()
assert json.loads(answer)["ok"], answer
EOF
}

start_nginx() {
  local n=$1 dir="$WORK/nginx"
  rm -rf "$dir"; mkdir -p "$dir/logs"
  {
    echo "worker_processes $WORKERS; error_log stderr warn; pid $dir/nginx.pid;"
    echo "events { worker_connections 8192; }"
    echo "http { keepalive_requests 1000000; server_names_hash_max_size 4096;"
    if [[ $ACCESS_LOGS == on ]]; then
      # JSON lines like adhoc's, buffered as adhoc's writer batches them.
      echo "  log_format lines escape=json '{\"time\":\"\$msec\",\"method\":\"\$request_method\",\"path\":\"\$uri\",\"status\":\$status,\"bytes\":\$body_bytes_sent,\"duration\":\"\$request_time\"}';"
      echo "  access_log $dir/logs/access.log lines buffer=64k flush=1s;"
    else
      echo "  access_log off;"
    fi
    echo "  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }"
    for h in $(hosts "$n"); do
      echo "  server { listen 127.0.0.1:$PROXY_PORT; server_name $h;"
      echo "    location / { proxy_pass http://up; proxy_http_version 1.1;"
      echo "      proxy_set_header Connection \"\"; proxy_set_header Host \$host;"
      echo "      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
    done
    echo "}"
  } > "$dir/nginx.conf"
  [[ $n == 1 ]] && cp "$dir/nginx.conf" "$WORK/shown-nginx.conf"
  taskset -c "$PROXY_CPUS" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port $PROXY_PORT
}

start_haproxy() {
  local n=$1 dir="$WORK/haproxy"
  rm -rf "$dir"; mkdir -p "$dir"
  hosts "$n" | awk '{print $1, "be_" NR}' > "$dir/hosts.map"
  {
    echo "global"
    echo "  nbthread $WORKERS"
    echo "  maxconn 8000"
    [[ $ACCESS_LOGS == on ]] && echo "  log stdout format raw local0"
    echo "defaults"
    echo "  mode http"
    echo "  timeout connect 5s"
    echo "  timeout client 60s"
    echo "  timeout server 60s"
    echo "  option forwardfor"
    if [[ $ACCESS_LOGS == on ]]; then
      echo "  log global"
      echo "  option httplog"
    fi
    echo "  http-reuse always"
    echo "frontend fe"
    echo "  bind 127.0.0.1:$PROXY_PORT"
    echo "  use_backend %[req.hdr(host),lower,map($dir/hosts.map)]"
    for i in $(seq 1 "$n"); do
      echo "backend be_$i"
      echo "  server s1 127.0.0.1:$UP_PORT"
    done
  } > "$dir/haproxy.cfg"
  [[ $n == 1 ]] && cp "$dir/haproxy.cfg" "$WORK/shown-haproxy.cfg"
  taskset -c "$PROXY_CPUS" haproxy -f "$dir/haproxy.cfg" -db > "$dir/access.log" &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port $PROXY_PORT
}

stop_proxy() {
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null || break; sleep 0.05; done
}

echo "workers=$WORKERS connections=$CONNECTIONS duration=${DURATION}s cpus: proxy=$PROXY_CPUS load=$LOAD_CPUS"
printf '%-8s %6s %12s %9s %9s %9s %10s %10s\n' proxy envs req/s p50_ms p99_ms rss_kb "rps/adhoc" "rss/adhoc"
for n in ${ENV_COUNTS:-1 100 1000}; do
  host="env$(( (n + 1) / 2 )).localhost"
  declare -A RPS RSS
  for proxy in adhoc nginx haproxy; do
    "start_$proxy" "$n"
    curl -sf -o /dev/null -H "Host: $host" "http://127.0.0.1:$PROXY_PORT/" ||
      { echo "$proxy: warm-up request failed" >&2; }
    read -r rps p50 p99 < <(run_wrk "$host")
    rss=$(rss_kb "$PROXY_PID")
    stop_proxy
    RPS[$proxy]=$rps
    RSS[$proxy]=$rss
    printf '%-8s %6s %12s %9s %9s %9s %10s %10s\n' "$proxy" "$n" "$rps" "$p50" "$p99" "$rss" \
      "$(awk -v a="$rps" -v b="${RPS[adhoc]}" 'BEGIN{printf "%.2f", a/b}')" \
      "$(awk -v a="$rss" -v b="${RSS[adhoc]}" 'BEGIN{printf "%.2f", a/b}')"
  done
  unset RPS RSS
done

echo
echo "== configurations (1 environment) =="
echo "upstream: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 1 worker, pinned to CPUs $LOAD_CPUS:"
sed 's/^/  /' "$WORK/up/nginx.conf"
echo "adhoc: taskset -c $PROXY_CPUS $ADHOC router --home HOME --listen 127.0.0.1:$PROXY_PORT --threads $WORKERS"
echo "  (access logs on, as in production; nginx and HAProxy access logs: $ACCESS_LOGS;"
echo "   upstream keep-alive pool of up to 64 idle per target;"
echo "   fed env1 with routes /api/* and /* to 127.0.0.1:$UP_PORT)"
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'): taskset -c $PROXY_CPUS nginx -c nginx.conf"
sed 's/^/  /' "$WORK/shown-nginx.conf"
echo "haproxy $(haproxy -v | awk 'NR==1 {print $3}'): taskset -c $PROXY_CPUS haproxy -f haproxy.cfg -db"
sed 's/^/  /' "$WORK/shown-haproxy.cfg"
echo "wrk: taskset -c $LOAD_CPUS wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency -H 'Host: env<middle>.localhost'"
