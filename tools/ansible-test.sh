#!/usr/bin/env bash
# Run ansible-test from a given venv in the mirrored collection tree.
#
# Usage: tools/ansible-test.sh VENV_DIR ANSIBLE_TEST_ARGS...
#        tools/ansible-test.sh VENV_DIR --print-tree     (print the mirror's path and stop)
#
# - mirrors the repository into build/ansible_collections/ksef/certificates (ansible-test needs
#   that path layout; build/venv-2.16/ansible_collections/... for .venv-2.16), keeping tests/output;
# - pre-seeds the offline get-pip stand-in for the pip versions this ansible-test uses;
# - puts python3.9 ... python3.13 from pyenv on PATH, so sanity compile/import and units find
#   every supported Python (ansible-test looks them up as `python3.X` on PATH).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(cd "$1" && pwd)
shift
# One mirror per venv: ansible-test keeps its delegation venvs and results under tests/output, and the
# two ansible-core versions must not share them. .venv -> build/ansible_collections/...,
# .venv-2.16 -> build/venv-2.16/ansible_collections/...
# KSEF_TEST_ROOT overrides the directory that holds ansible_collections/ (tools/run-integration.sh
# gives every run its own, so runs by several people in one work tree do not collide).
name=$(basename "$venv")
if [ -n "${KSEF_TEST_ROOT:-}" ]; then
    tree="$KSEF_TEST_ROOT/ansible_collections/ksef/certificates"
elif [ "$name" = .venv ]; then
    tree="$repo/build/ansible_collections/ksef/certificates"
else
    tree="$repo/build/${name#.}/ansible_collections/ksef/certificates"
fi
pybin="$repo/build/pybin"

if [ "${1:-}" = --print-tree ]; then
    echo "$tree"
    exit 0
fi

"$venv/bin/python" "$repo/tools/seed-get-pip.py"
"$venv/bin/python" "$repo/tools/sync-collection.py" "$repo" "$tree"

# Only python3.X links here: putting whole pyenv bin dirs on PATH would also shadow pip, python3, ...
mkdir -p "$pybin"
for minor in 9 10 11 12 13 14; do
    # Newest patch release of that minor version; an unmatched glob stays literal and fails -x.
    exe=$(printf '%s\n' "$HOME"/.pyenv/versions/3."$minor".*/bin/python3."$minor" | sort -V | tail -n 1)
    if [ -x "$exe" ]; then
        ln -sfn "$exe" "$pybin/python3.$minor"
    fi
done

export PATH="$venv/bin:$pybin:$PATH"
cd "$tree"
exec "$venv/bin/ansible-test" "$@"
