#!/usr/bin/env bash
# ansible-test integration against a fresh KSeF emulator.
#
# Usage: tools/run-integration.sh VENV_DIR [--processing-delay S] [--record-dir D] -- [TARGET...]
#
# With no TARGET every target under tests/integration/targets runs. A TARGET can be a target name
# or an alias group such as `ksef/smoke/` (targets whose aliases file has the line `ksef/smoke`).
#
# The emulator always runs from .venv (it needs the emulator's libraries, not the ansible-core under
# test); ansible-test runs from VENV_DIR with --local, so modules run on that venv's Python.
# Fails when ansible-test fails, when it says "All targets skipped", or when a selected target
# (setup_* excepted) did not run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
targets_dir="$repo/tests/integration/targets"

if [ "${1:-}" = --under-emulator ]; then
    # Second half: the emulator is up (tools/with-emulator.sh exported KSEF_EMULATOR_*).
    shift
    venv=$1
    workdir=$2
    shift 2

    # Which targets must run: the selection resolved against the targets' names and aliases.
    expected=()
    for path in "$targets_dir"/*/; do
        name=$(basename "$path")
        case "$name" in setup_*|prepare_*) continue ;; esac
        aliases=""
        [ -f "$path/aliases" ] && aliases=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$path/aliases")
        if grep -qx disabled <<<"$aliases"; then
            echo "run-integration: WARNING: target $name is aliased 'disabled' and does not run" >&2
            continue
        fi
        if [ $# -eq 0 ]; then
            expected+=("$name")
            continue
        fi
        for selector in "$@"; do
            if [ "$selector" = "$name" ] || grep -qx -- "${selector%/}" <<<"$aliases"; then
                expected+=("$name")
                break
            fi
        done
    done
    if [ ${#expected[@]} -eq 0 ]; then
        echo "run-integration: no integration target matches '$*' (the old end runs targets aliased ksef/smoke)" >&2
        exit 1
    fi

    # Integration variables for every target (ansible-test passes them as extra vars).
    # tools/sync-collection.py leaves this file alone in the mirror.
    tree=$("$repo/tools/ansible-test.sh" "$venv" --print-tree)
    mkdir -p "$tree/tests/integration" "$workdir/targets"
    "$KSEF_EMULATOR_PYTHON" - "$tree/tests/integration/integration_config.yml" "$workdir/targets" <<'PY'
import json, os, sys
values = {
    'ksef_api_url': os.environ['KSEF_EMULATOR_API_URL'],
    'ksef_ca_path': os.environ['KSEF_EMULATOR_CA'],
    'ksef_emulator_url': os.environ['KSEF_EMULATOR_URL'],
    'ksef_emulator_ca_path': os.environ['KSEF_EMULATOR_CA'],
    'ksef_emulator_python': os.environ['KSEF_EMULATOR_PYTHON'],
    'ksef_test_root': sys.argv[2],
}
with open(sys.argv[1], 'w') as handle:
    handle.write('---\n# Written by tools/run-integration.sh for this run; do not edit.\n')
    for key, value in sorted(values.items()):
        handle.write('%s: %s\n' % (key, json.dumps(value)))
PY

    # --continue-on-error: one failing target must not hide the results of the others.
    # Each "Running <target> ..." line gets the seconds since the start, to spot slow targets.
    log="$workdir/ansible-test.log"
    rc=0
    start=$SECONDS
    "$repo/tools/ansible-test.sh" "$venv" integration --local --allow-destructive --continue-on-error \
        --color no -v "$@" 2>&1 \
        | while IFS= read -r line; do
            case "$line" in
                "Running "*" integration test role") line="$line [at $((SECONDS - start))s]" ;;
            esac
            printf '%s\n' "$line"
        done | tee "$log" || rc=$?
    echo "run-integration: ansible-test took $((SECONDS - start))s"
    if [ "$rc" -ne 0 ]; then
        echo "run-integration: ansible-test integration failed (exit $rc)" >&2
        exit "$rc"
    fi
    if grep -q 'All targets skipped' "$log"; then
        echo "run-integration: ansible-test skipped every target" >&2
        exit 1
    fi
    missing=()
    for name in "${expected[@]}"; do
        grep -qF "Running $name integration test role" "$log" || missing+=("$name")
    done
    if [ ${#missing[@]} -ne 0 ]; then
        echo "run-integration: these targets did not run: ${missing[*]}" >&2
        exit 1
    fi
    echo "run-integration: ${#expected[@]} targets ran: ${expected[*]}"
    # Every XAdES login document the modules sent, checked by an independent implementation.
    "$KSEF_EMULATOR_PYTHON" "$repo/tools/verify-recorded-xades.py" "$KSEF_RECORD_DIR"
    exit 0
fi

venv=$(cd "$1" && pwd)
shift
emulator_opts=()
record_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --processing-delay) emulator_opts+=("$1" "$2"); shift 2 ;;
        --record-dir) record_dir=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done

if ! ls -d "$targets_dir"/*/ >/dev/null 2>&1; then
    echo "run-integration: no integration targets yet (tests/integration/targets is empty), skipping"
    exit 0
fi

# Each run gets its own directory (mirror, emulator, credentials), so that two people running
# integration tests in one work tree do not share an emulator or a config. Kept when the run
# fails, for the logs; runs older than a day are pruned.
mkdir -p "$repo/build/integration"
find "$repo/build/integration" -mindepth 1 -maxdepth 1 -type d -mmin +1440 -exec rm -rf {} +
name=$(basename "$venv")
workdir=$(mktemp -d "$repo/build/integration/${name#.}-XXXXXX")
export KSEF_TEST_ROOT="$workdir"
# The emulator always records the requests: the login documents are verified after the run.
export KSEF_RECORD_DIR="${record_dir:-$workdir/emulator/requests}"
rc=0
"$repo/tools/with-emulator.sh" --python "$repo/.venv/bin/python" --dir "$workdir/emulator" \
    --record-dir "$KSEF_RECORD_DIR" "${emulator_opts[@]}" -- "$0" --under-emulator "$venv" "$workdir" "$@" || rc=$?
if [ "$rc" -eq 0 ]; then
    rm -rf "$workdir"
else
    echo "run-integration: FAILED (exit $rc); logs kept in $workdir (emulator/emulator.log, ansible-test.log)" >&2
fi
exit "$rc"
