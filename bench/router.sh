#!/usr/bin/env bash
# Benchmarks adhoc's router against nginx (and HAProxy) as reverse proxies in front of the
# same fast upstream (nginx answering a small body), with the same worker count and CPU
# pinning, for 1, 100 and 1000 environments (host-based routes; ENV_COUNTS="1 1000" to
# choose), in three modes (--modes, default all three):
#
#   plain   no access rules: adhoc, nginx and HAProxy
#   access  access rules on every environment (an allow list and basic auth; the consumed
#           Authorization header is not forwarded): adhoc and nginx (allow/deny + auth_basic)
#   tls     HTTPS with the same certificate and key (EC P-256) for both: adhoc and nginx
#
# Median of 3 wrk runs each; prints requests/s, p50/p99 latency, the proxy's CPU time per
# request (user + system, from /proc: steadier than requests/s on a shared machine) and its
# RSS, with ratios to adhoc, then the exact configurations used (for 1 environment; more environments
# add servers/backends/envs of the same shape) and the TLS protocol and cipher each proxy
# negotiated, so results can be reproduced.
#
#   bench/router.sh [--adhoc build/adhoc] [--workers 1] [--duration 10] [--connections 64]
#                   [--modes "plain access tls"] [--access-logs on|off]
#
# Installs wrk and haproxy (Debian packages) when missing. Everything listens on
# 127.0.0.1; temporary files live in a mktemp directory removed at exit.
set -euo pipefail

ADHOC=build/adhoc
WORKERS=1
DURATION=10
CONNECTIONS=64
MODES="plain access tls"
# adhoc always writes a per-environment access log (it is how it sees idle environments);
# "on" gives nginx and HAProxy a per-request access log too, so all three do the same work.
ACCESS_LOGS=on
while [[ $# -gt 0 ]]; do
  case "$1" in
    --adhoc) ADHOC=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
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
chmod 755 "$WORK"  # nginx workers (nobody) read the htpasswd file in it
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

UP_PORT=18901
PROXY_PORT=18900
PLAIN_SIDE_PORT=18902  # adhoc's plain listener while its HTTPS one is measured

# Access rules: the same for every environment and both proxies.
BASIC_USER=bench
BASIC_PASSWORD=bench-secret-1
AUTH_HEADER="Authorization: Basic $(printf '%s:%s' "$BASIC_USER" "$BASIC_PASSWORD" | base64)"
ALLOW=127.0.0.0/8

# The certificate both proxies serve in tls mode: EC P-256, *.bench.localhost.
mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=*.bench.localhost" -addext "subjectAltName=DNS:*.bench.localhost,DNS:*.localhost" \
  -keyout "$WORK/tls/bench.key" -out "$WORK/tls/bench.crt" 2>/dev/null

# The upstream: nginx answering a small body.
mkdir -p "$WORK/up/logs"
cat > "$WORK/up/nginx.conf" <<EOF2
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
EOF2
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

scheme() { [[ $1 == tls ]] && echo https || echo http; }
mode_headers() {  # extra wrk/curl header of a mode, one per line
  [[ $1 == access ]] && echo "$AUTH_HEADER"
  return 0
}

# CPU time (user + system, in clock ticks) of a process and its children so far.
cpu_ticks() {
  local total=0
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo $total
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# run_wrk HOST MODE -> "rps p50_ms p99_ms cpu_us" (rps, p50, p99: the run with the median
# requests/s of 3; cpu_us: the median over the 3 runs of the proxy's CPU time per request,
# which other load on a shared machine disturbs much less than requests/s)
to_ms() {
  awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'
}
run_wrk() {
  local host=$1 mode=$2 results=() extra=()
  [[ $mode == access ]] && extra=(-H "$AUTH_HEADER")
  local cpus=()
  for _ in 1 2 3; do
    local out rps p50 p99 before after requests
    before=$(cpu_ticks "$PROXY_PID")
    out=$(taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
      -H "Host: $host" "${extra[@]}" "$(scheme "$mode")://127.0.0.1:$PROXY_PORT/")
    after=$(cpu_ticks "$PROXY_PID")
    if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers for $host ($mode)" >&2; fi
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_ms)
    p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    results+=("$rps $p50 $p99")
    cpus+=("$(awk -v t="$((after - before))" -v us="$TICK_US" -v n="$requests" 'BEGIN{printf "%.2f", t * us / n}')")
  done
  echo "$(printf '%s\n' "${results[@]}" | sort -n -k1 | sed -n 2p) $(printf '%s\n' "${cpus[@]}" | sort -n | sed -n 2p)"
}

# Host names of N environments; requests go to the middle one.
hosts() { for i in $(seq 1 "$1"); do echo "env$i.localhost"; done; }

start_adhoc() {
  local n=$1 mode=$2 home="$WORK/adhoc-home" args=()
  rm -rf "$home"
  if [[ $mode == tls ]]; then
    args=(--listen "127.0.0.1:$PLAIN_SIDE_PORT" --tls-listen "127.0.0.1:$PROXY_PORT"
          --tls-cert "$WORK/tls/bench.crt" --tls-key "$WORK/tls/bench.key")
  else
    args=(--listen "127.0.0.1:$PROXY_PORT")
  fi
  taskset -c "$PROXY_CPUS" "$ADHOC" router --home "$home" "${args[@]}" \
    --threads "$WORKERS" 2>>"$WORK/adhoc.log" &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port $PROXY_PORT
  for _ in $(seq 100); do [[ -S "$home/router/router.sock" ]] && break; sleep 0.05; done
  [[ $n == 1 ]] && echo "taskset -c $PROXY_CPUS $ADHOC router --home HOME ${args[*]} --threads $WORKERS" \
    > "$WORK/shown-adhoc-$mode.txt"
  /usr/bin/python3 - "$home/router/router.sock" "$n" "$UP_PORT" "$mode" "$BASIC_USER" \
    "$BASIC_PASSWORD" "$ALLOW" "$WORK/shown-adhoc-env-$mode.json" <<'EOF2'
import json, socket, sys
path, n, port, mode, user, password, allow, shown = sys.argv[1:9]
n = int(n)
def env(i):
    e = {"name": f"env{i}", "hosts": [f"env{i}.localhost"], "status": "running",
         "routes": [{"pattern": "/api/*", "service": "api",
                     "targets": [{"id": "api", "address": f"127.0.0.1:{port}"}]},
                    {"pattern": "/*", "service": "web",
                     "targets": [{"id": "web", "address": f"127.0.0.1:{port}"}]}]}
    if mode == "access":
        e["access"] = {"allow": [allow], "basic_auth": [{"user": user, "password": password}]}
    return e
envs = [env(i) for i in range(1, n + 1)]
if n == 1:
    open(shown, "w").write(json.dumps(envs[0]))
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall((json.dumps({"op": "replace_all", "envs": envs}) + "\n").encode())
answer = s.makefile().readline()
assert json.loads(answer)["ok"], answer
EOF2
}

start_nginx() {
  local n=$1 mode=$2 dir="$WORK/nginx"
  rm -rf "$dir"; mkdir -p "$dir/logs"
  printf '%s:{PLAIN}%s\n' "$BASIC_USER" "$BASIC_PASSWORD" > "$dir/htpasswd"
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
    if [[ $mode == tls ]]; then
      echo "  ssl_certificate $WORK/tls/bench.crt; ssl_certificate_key $WORK/tls/bench.key;"
      echo "  ssl_protocols TLSv1.2 TLSv1.3;  # as adhoc; nginx 1.22 would otherwise stop at TLS 1.2"
    fi
    echo "  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }"
    for h in $(hosts "$n"); do
      echo "  server { listen 127.0.0.1:$PROXY_PORT$([[ $mode == tls ]] && echo ' ssl'); server_name $h;"
      if [[ $mode == access ]]; then
        echo "    allow $ALLOW; deny all; auth_basic \"$h\"; auth_basic_user_file $dir/htpasswd;"
      fi
      echo "    location / { proxy_pass http://up; proxy_http_version 1.1;"
      echo "      proxy_set_header Connection \"\"; proxy_set_header Host \$host;"
      [[ $mode == access ]] && echo "      proxy_set_header Authorization \"\";"
      echo "      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
    done
    echo "}"
  } > "$dir/nginx.conf"
  [[ $n == 1 ]] && cp "$dir/nginx.conf" "$WORK/shown-nginx-$mode.conf"
  taskset -c "$PROXY_CPUS" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
  PROXY_PID=$!
  PIDS+=($PROXY_PID)
  wait_port $PROXY_PORT
}

start_haproxy() {
  local n=$1 mode=$2 dir="$WORK/haproxy"
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

# The TLS protocol and cipher a proxy negotiates with a default OpenSSL client (wrk's).
negotiated() {
  openssl s_client -connect "127.0.0.1:$PROXY_PORT" -servername env1.localhost </dev/null 2>/dev/null |
    awk '/^ *Protocol *:/ {p=$3} /^ *Cipher *:/ {c=$3} /^New, / {n=$2" "$5} END {print n}'
}

echo "workers=$WORKERS connections=$CONNECTIONS duration=${DURATION}s cpus: proxy=$PROXY_CPUS load=$LOAD_CPUS"
printf '%-7s %-8s %6s %12s %9s %9s %9s %9s %10s %10s %10s\n' mode proxy envs req/s p50_ms p99_ms cpu_us rss_kb \
  "rps/adhoc" "cpu/adhoc" "rss/adhoc"
for mode in $MODES; do
  proxies="adhoc nginx"
  [[ $mode == plain ]] && proxies="adhoc nginx haproxy"
  for n in ${ENV_COUNTS:-1 100 1000}; do
    host="env$(( (n + 1) / 2 )).localhost"
    declare -A RPS RSS CPU
    for proxy in $proxies; do
      "start_$proxy" "$n" "$mode"
      curl_args=(-sf -o /dev/null -H "Host: $host")
      [[ $mode == access ]] && curl_args+=(-H "$AUTH_HEADER")
      [[ $mode == tls ]] && curl_args+=(-k)
      curl "${curl_args[@]}" "$(scheme "$mode")://127.0.0.1:$PROXY_PORT/" ||
        { echo "$proxy: warm-up request failed" >&2; }
      if [[ $mode == tls && $n == "$(set -- ${ENV_COUNTS:-1 100 1000}; echo "$1")" ]]; then
        echo "$proxy: $(negotiated)" >> "$WORK/shown-tls.txt"
      fi
      read -r rps p50 p99 cpu < <(run_wrk "$host" "$mode")
      rss=$(rss_kb "$PROXY_PID")
      stop_proxy
      RPS[$proxy]=$rps
      CPU[$proxy]=$cpu
      RSS[$proxy]=$rss
      printf '%-7s %-8s %6s %12s %9s %9s %9s %9s %10s %10s %10s\n' "$mode" "$proxy" "$n" "$rps" "$p50" "$p99" \
        "$cpu" "$rss" \
        "$(awk -v a="$rps" -v b="${RPS[adhoc]}" 'BEGIN{printf "%.2f", a/b}')" \
        "$(awk -v a="$cpu" -v b="${CPU[adhoc]}" 'BEGIN{printf "%.2f", a/b}')" \
        "$(awk -v a="$rss" -v b="${RSS[adhoc]}" 'BEGIN{printf "%.2f", a/b}')"
    done
    unset RPS RSS CPU
  done
done

echo
echo "== configurations (1 environment) =="
echo "upstream: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 1 worker, pinned to CPUs $LOAD_CPUS:"
sed 's/^/  /' "$WORK/up/nginx.conf"
echo "(adhoc access logs on, as in production; nginx and HAProxy access logs: $ACCESS_LOGS;"
echo " adhoc pools up to 64 idle upstream connections per target and worker)"
for mode in $MODES; do
  echo "-- mode $mode --"
  [[ -f $WORK/shown-adhoc-$mode.txt ]] && echo "adhoc: $(cat "$WORK/shown-adhoc-$mode.txt")" &&
    echo "  fed (env1; others alike): $(cat "$WORK/shown-adhoc-env-$mode.json")"
  if [[ -f $WORK/shown-nginx-$mode.conf ]]; then
    echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'): taskset -c $PROXY_CPUS nginx -c nginx.conf"
    sed 's/^/  /' "$WORK/shown-nginx-$mode.conf"
  fi
  if [[ $mode == plain && -f $WORK/shown-haproxy.cfg ]]; then
    echo "haproxy $(haproxy -v | awk 'NR==1 {print $3}'): taskset -c $PROXY_CPUS haproxy -f haproxy.cfg -db"
    sed 's/^/  /' "$WORK/shown-haproxy.cfg"
  fi
  if [[ $mode == access ]]; then
    echo "  htpasswd: $BASIC_USER:{PLAIN}<password>; wrk and curl send -H '$AUTH_HEADER'"
  fi
  if [[ $mode == tls ]]; then
    echo "  certificate (both): openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 ... CN=*.bench.localhost"
    echo "  negotiated with a default OpenSSL client:"
    sed 's/^/    /' "$WORK/shown-tls.txt" 2>/dev/null || true
  fi
done
echo "wrk: taskset -c $LOAD_CPUS wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency -H 'Host: env<middle>.localhost' [-H '$AUTH_HEADER'] http[s]://127.0.0.1:$PROXY_PORT/"
