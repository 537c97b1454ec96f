#!/usr/bin/env bash
# Installs what adhoc needs on Debian 12 (only what is missing) and builds it into build/.
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git clang-format
  libboost-dev libboost-system-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev
  libfmt-dev libspdlog-dev libsqlite3-dev libpq-dev libssl-dev libgtest-dev libgmock-dev
  # what adhoc starts
  postgresql redis-server nginx-light
  # the example application (examples/ublog)
  gunicorn python3-django python3-djangorestframework python3-celery celery
  python3-psycopg2 python3-redis
  # tests and benchmarks
  curl
  # the router's fuzz target (libFuzzer comes with clang's runtime libraries)
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (e.g. NodeSource bundles npm); only install Debian's when absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "adhoc setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Debian's postgresql, redis-server and nginx start system services on install where
  # systemd runs; adhoc never uses them (it starts its own on loopback addresses).
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# Validators of rendered Kubernetes manifests and GitHub workflows (tools/validate, npm ci from
# its lock file). terraform, moto_server and the aws client are not Debian packages: their
# tests are skipped, naming the tool, where they are missing.
if [ ! -d tools/validate/node_modules ] || [ tools/validate/package-lock.json -nt tools/validate/node_modules ]; then
  npm ci --prefix tools/validate --no-audit --no-fund >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build "$BUILD_DIR" -- -j"$(nproc)"
echo "adhoc setup: built $BUILD_DIR/adhoc"
