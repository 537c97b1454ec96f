#!/usr/bin/env bash
# make-repo.sh DEST: builds μblog's git repository at DEST (an empty or missing folder), with
# the seed's versions as commits and tags:
#   v1.0.0 + v2.0.0  first release (backend and frontend tags on one commit)
#   v1.1.0           backend: Post.total_views (a migration), counted on every GET of a post
#   v2.1.0           frontend: shows total views, new accent colour
#   v1.2.0-broken    backend, on a side branch: a migration that fails (a deploy must stop
#                    before any service rolls, and the running version keep serving)
# The example folder holds the newest sources; versions/<tag>/ holds the files that differ in
# the older versions (and versions/<tag>/REMOVE the files that did not exist yet).
# Deterministic: fixed author, committer and dates, no user or system git config.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=${1:?usage: make-repo.sh DEST (an empty or missing folder)}
if [[ -e $dest && ( ! -d $dest || -n $(ls -A "$dest") ) ]]; then
  echo "make-repo.sh: $dest exists and is not an empty folder" >&2
  exit 2
fi
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null TZ=UTC LC_ALL=C
export GIT_AUTHOR_NAME="μblog maintainers" GIT_AUTHOR_EMAIL="ublog@example.com"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

g() { git -C "$dest" -c commit.gpgsign=false -c tag.gpgsign=false -c core.autocrlf=false "$@"; }

# Copies the newest sources of the given top-level entries, without build or cache output.
copy_current() {
  local entry
  for entry in "$@"; do rm -rf "${dest:?}/$entry"; done
  (cd "$here" && tar -cf - --exclude=node_modules --exclude=dist --exclude=__pycache__ \
    --exclude='*.pyc' "$@") | tar -xf - -C "$dest"
}

# Replaces files with an older version's and removes the files that version did not have.
apply_version() {
  local dir=$here/versions/$1 entry
  for entry in "$dir"/*/; do cp -R "$entry" "$dest/"; done
  if [[ -f $dir/REMOVE ]]; then
    while read -r entry; do [[ -n $entry ]] && rm -f "${dest:?}/$entry"; done < "$dir/REMOVE"
  fi
}

# Git records only the executable bit: make it independent of the checkout and the umask.
commit() {
  local date=$1 message=$2
  find "$dest" -path "$dest/.git" -prune -o -type f -exec chmod 644 {} +
  chmod 755 "$dest/backend/manage.py"
  g add -A
  GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date g commit -q -m "$message"
}

git init -q -b main "$dest"
printf '%s\n' 'node_modules/' 'dist/' '__pycache__/' '*.pyc' > "$dest/.gitignore"

copy_current adhoc.toml envs backend frontend
apply_version v1.0.0
apply_version v2.0.0
commit "2022-06-01T12:00:00Z" "μblog: backend v1.0.0 and frontend v2.0.0"
g tag v1.0.0
g tag v2.0.0

copy_current backend
commit "2022-06-08T12:00:00Z" "backend v1.1.0: count views of a post (Post.total_views)"
g tag v1.1.0

copy_current frontend
commit "2022-06-09T12:00:00Z" "frontend v2.1.0: show total views; new accent colour"
g tag v2.1.0

# A version whose migration fails, off main so that main stays releasable.
g checkout -q -b broken-migration v1.1.0
cat > "$dest/backend/blog/migrations/0003_fails_on_purpose.py" <<'PY'
# v1.2.0-broken: a migration that fails, to show a deploy stopping at its migration.
from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose (v1.2.0-broken)")


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0002_post_total_views"),
    ]

    operations = [migrations.RunPython(fail, migrations.RunPython.noop)]
PY
commit "2022-06-10T12:00:00Z" "backend v1.2.0-broken: a migration that fails on purpose"
g tag v1.2.0-broken
g checkout -q main

echo "μblog repository at $dest: $(g tag | tr '\n' ' ')"
