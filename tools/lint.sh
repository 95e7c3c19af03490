#!/usr/bin/env bash
# `make lint`: ruff over the Python code, ansible-lint, changelog lint, collection build + tarball content check, EE introspection,
# the AWX material's tests (tests/awx).
#
# Usage: tools/lint.sh VENV_DIR
# Runs every check, then exits non-zero if any failed. All of it works offline.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(cd "$1" && pwd)
export PATH="$venv/bin:$PATH"
out="$repo/build/lint"
failed=()

cd "$repo" || exit 1

echo "--- ruff check (ruff.toml: plugins, tests/unit, tests/emulator, tools)"
ruff check --no-cache --output-format concise || failed+=(ruff)

echo "--- ansible-lint (production profile, offline)"
lint_paths=()
for path in roles playbooks; do
    # Only once there is content: ansible-lint fails on an empty path.
    if [ -n "$(git ls-files -co --exclude-standard -- "$path" | head -n 1)" ]; then
        lint_paths+=("$path")
    fi
done
if [ ${#lint_paths[@]} -eq 0 ]; then
    echo "lint: roles/ and playbooks/ are empty, skipping ansible-lint"
else
    # The collection resolves through build/collections (symlink to this repo, made by make venv).
    ANSIBLE_COLLECTIONS_PATH="$repo/build/collections" \
        ansible-lint --offline --profile production --nocolor "${lint_paths[@]}" \
        || failed+=(ansible-lint)
fi

echo "--- antsibull-changelog lint"
antsibull-changelog lint || failed+=(changelog-fragments)
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml || failed+=(changelog.yaml)

echo "--- ansible-galaxy collection build"
# Build from the mirror of the git file list, so that local leftovers (untracked, ignored files)
# never reach the tarball; galaxy.yml build_ignore then removes the development-only parts.
tree=$("$repo/tools/ansible-test.sh" "$venv" --print-tree)
python "$repo/tools/sync-collection.py" "$repo" "$tree" >/dev/null
# sync-collection.py keeps an integration_config.yml an earlier integration run left in this mirror.
rm -f "$tree/tests/integration/integration_config.yml"
rm -rf "$out"
mkdir -p "$out/dist"
if ansible-galaxy collection build --force --output-path "$out/dist" "$tree"; then
    tarball=$(ls "$out"/dist/ksef-certificates-*.tar.gz)
    tar -tzf "$tarball" | sort > "$out/tarball-files.txt"
    echo "lint: $(wc -l < "$out/tarball-files.txt") entries in $(basename "$tarball")"
    # Development-only content must not ship; tests/emulator is test infrastructure (a Flask
    # server with its own dependencies), not part of the collection (docs/ARCHITECTURE.md).
    forbidden='^(\.venv|\.venv-[^/]*|build|tests/output|tests/emulator|\.git|\.ci|tools|requirements)(/|$)|(^|/)__pycache__/|\.pyc$|(^|/)integration_config\.yml$'
    if grep -E "$forbidden" "$out/tarball-files.txt"; then
        echo "lint: the entries above must not be in the collection tarball (galaxy.yml build_ignore)" >&2
        failed+=(tarball-content)
    fi
    for required in galaxy.yml MANIFEST.json meta/runtime.yml meta/execution-environment.yml \
            meta/ee-requirements.txt meta/ee-bindep.txt; do
        case "$required" in galaxy.yml) continue ;; esac
        grep -qx "$required" "$out/tarball-files.txt" \
            || { echo "lint: $required is missing from the tarball" >&2; failed+=("tarball-$required"); }
    done

    echo "--- ansible-builder introspect --sanitize"
    if ansible-galaxy collection install --offline --force -p "$out/collections" "$tarball" >/dev/null \
            && ansible-builder introspect --sanitize "$out/collections" > "$out/introspect.txt"; then
        cat "$out/introspect.txt"
        # The EE must learn the Python and system needs from meta/execution-environment.yml.
        for needed in cryptography requests lxml python3-cryptography; do
            grep -q "$needed" "$out/introspect.txt" \
                || { echo "lint: ansible-builder did not find $needed in the collection's EE requirements" >&2; failed+=("introspect-$needed"); }
        done
    else
        failed+=(introspect)
    fi
else
    failed+=(collection-build)
fi

echo "--- AWX material: example EE definition (ansible-builder create) and credential type"
# test_runner.py (playbooks through ansible-runner against the emulator) is `make awx-tests`.
python -m pytest -q -p no:cacheprovider --ignore "$repo/tests/awx/test_runner.py" "$repo/tests/awx" || failed+=(awx)

if [ ${#failed[@]} -ne 0 ]; then
    echo "lint: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "lint: all checks passed"
