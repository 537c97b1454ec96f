#!/usr/bin/env bash
# The README's first command: installs what is missing, builds adhoc, makes the bundled μblog
# example's repository (with its versions as git tags), brings up its `demo` environment and
# prints the URL. Safe to run again: it reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/setup.sh

adhoc="$root/build/adhoc"
if [ "$(id -u)" -eq 0 ] && [ -d /usr/local/bin ]; then
  ln -sf "$adhoc" /usr/local/bin/adhoc   # so the printed commands work as typed
fi

demo=${ADHOC_DEMO_DIR:-$HOME/adhoc-demo/ublog}
if [ ! -d "$demo/.git" ]; then
  echo "quickstart: making the μblog repository in $demo"
  examples/ublog/make-repo.sh "$demo" >/dev/null
fi

cd "$demo"
"$adhoc" up demo
echo
echo "Open the URL above in a browser (curl and browsers resolve *.localhost)."
echo "The app's repository is $demo; try: cd $demo && adhoc ls"
