#!/usr/bin/env bash
# ansible-test integration against fresh KSeF emulators, targets side by side.
#
# Usage: tools/run-integration.sh VENV_DIR [--jobs N] [--processing-delay S] [--record-dir D] -- [TARGET...]
#
# With no TARGET every target under tests/integration/targets runs. A TARGET can be a target name
# or an alias group such as `ksef/smoke/` (targets whose aliases file has the line `ksef/smoke`).
#
# --jobs N (default: $KSEF_INTEGRATION_JOBS or 2) workers run the selected targets side by side. Each
# worker has its own emulator, mirror tree and integration variables, and takes the next target from
# one queue; the queue starts with the slowest targets (a `# weight: SECONDS` comment in a target's
# aliases file; 60 without one), so the workers finish at about the same time. Most of a target's time
# is waiting on the emulator, so two workers on two cores nearly halve the wall time.
#
# The emulator always runs from .venv (it needs the emulator's libraries, not the ansible-core under
# test); ansible-test runs from VENV_DIR with --local, so modules run on that venv's Python.
# Fails when a target fails, when ansible-test skips a selected target, or when a selected target
# (setup_* excepted) did not run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
targets_dir="$repo/tests/integration/targets"

# The selected targets, one per line, slowest first.
resolve_targets() {
    local path name aliases selector weight
    for path in "$targets_dir"/*/; do
        name=$(basename "$path")
        case "$name" in setup_*|prepare_*) continue ;; esac
        aliases=""
        [ -f "$path/aliases" ] && aliases=$(cat "$path/aliases")
        if sed -e 's/#.*//' -e 's/[[:space:]]*$//' <<<"$aliases" | grep -qx disabled; then
            echo "run-integration: WARNING: target $name is aliased 'disabled' and does not run" >&2
            continue
        fi
        weight=$(sed -n 's/^#[[:space:]]*weight:[[:space:]]*\([0-9][0-9]*\).*/\1/p' <<<"$aliases" | head -n 1)
        if [ $# -eq 0 ]; then
            echo "${weight:-60} $name"
            continue
        fi
        for selector in "$@"; do
            if [ "$selector" = "$name" ] || sed -e 's/#.*//' -e 's/[[:space:]]*$//' <<<"$aliases" | grep -qx -- "${selector%/}"; then
                echo "${weight:-60} $name"
                break
            fi
        done
    done | sort -k1,1nr -k2,2 | cut -d' ' -f2
}

# Take the first target off the queue file; fails when the queue is empty.
pop_target() {
    local queue=$1 target
    exec 9>>"$queue.lock"
    flock 9
    target=$(head -n 1 "$queue")
    if [ -n "$target" ]; then
        sed -i 1d "$queue"
    fi
    exec 9>&-
    [ -n "$target" ] && printf '%s\n' "$target"
}

if [ "${1:-}" = --under-emulator ]; then
    # A worker: the emulator is up (tools/with-emulator.sh exported KSEF_EMULATOR_*).
    venv=$2
    workdir=$3
    queue=$4

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

    rc=0
    while target=$(pop_target "$queue"); do
        log="$workdir/$target.log"
        start=$SECONDS
        target_rc=0
        "$repo/tools/ansible-test.sh" "$venv" integration --local --allow-destructive \
            --color no -v "$target" 2>&1 | tee "$log" || target_rc=$?
        if [ "$target_rc" -eq 0 ] && ! grep -qF "Running $target integration test role" "$log"; then
            echo "run-integration: ansible-test did not run $target" >&2
            target_rc=1
        fi
        echo "run-integration: $target took $((SECONDS - start))s (exit $target_rc)"
        echo "$target $target_rc $((SECONDS - start))" >>"$queue.results"
        [ "$target_rc" -eq 0 ] || rc=1
    done
    # Every XAdES login document the modules sent, checked by an independent implementation.
    if [ -d "$KSEF_RECORD_DIR" ]; then
        "$KSEF_EMULATOR_PYTHON" "$repo/tools/verify-recorded-xades.py" "$KSEF_RECORD_DIR" || rc=1
    fi
    exit "$rc"
fi

venv=$(cd "$1" && pwd)
shift
jobs=${KSEF_INTEGRATION_JOBS:-2}
emulator_opts=()
record_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --jobs) jobs=$2; shift 2 ;;
        --processing-delay) emulator_opts+=("$1" "$2"); shift 2 ;;
        --record-dir) record_dir=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done

if ! ls -d "$targets_dir"/*/ >/dev/null 2>&1; then
    echo "run-integration: no integration target in $targets_dir" >&2
    exit 1
fi
mapfile -t expected < <(resolve_targets "$@")
if [ ${#expected[@]} -eq 0 ]; then
    echo "run-integration: no integration target matches '$*' (the old end runs targets aliased ksef/smoke)" >&2
    exit 1
fi
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
# No worker (and no emulator) without a target to take.
[ "$jobs" -le ${#expected[@]} ] || jobs=${#expected[@]}

# Each run gets its own directory (queue, and per worker: mirror, emulator, credentials), so that two
# people running integration tests in one work tree do not share an emulator or a config. Kept when
# the run fails, for the logs; runs older than a day are pruned.
mkdir -p "$repo/build/integration"
find "$repo/build/integration" -mindepth 1 -maxdepth 1 -type d -mmin +1440 -exec rm -rf {} +
name=$(basename "$venv")
run_dir=$(mktemp -d "$repo/build/integration/${name#.}-XXXXXX")
queue="$run_dir/queue"
printf '%s\n' "${expected[@]}" >"$queue"
: >"$queue.results"
echo "run-integration: ${#expected[@]} targets on $jobs worker(s), slowest first: ${expected[*]}"

# What every ansible-test run sets up once per user, done here before the workers start, so that
# they do not race for it: the SSH key pair (as ansible-test makes it) and the get-pip stand-in.
# Two runs side by side (make test runs integration-latest beside integration-2.16) take a lock for it.
key="$HOME/.ansible/test/id_rsa"
mkdir -p "$(dirname "$key")"
(
    flock 9
    if [ ! -f "$key" ] || [ ! -f "$key.pub" ]; then
        rm -f "$key" "$key.pub"
        ssh-keygen -m PEM -q -t rsa -N '' -f "$key"
        sed -i -E 's/(BEGIN|END) PRIVATE KEY/\1 RSA PRIVATE KEY/' "$key"
    fi
    "$venv/bin/python" "$repo/tools/seed-get-pip.py"
) 9>"$HOME/.ansible/test/.setup.lock"

start=$SECONDS
pids=()
for worker in $(seq "$jobs"); do
    workdir="$run_dir/w$worker"
    mkdir -p "$workdir"
    records="${record_dir:+$record_dir/w$worker}"
    (
        export KSEF_TEST_ROOT="$workdir"
        # The emulator always records the requests: the login documents are verified after the run.
        export KSEF_RECORD_DIR="${records:-$workdir/emulator/requests}"
        "$repo/tools/with-emulator.sh" --python "$repo/.venv/bin/python" --dir "$workdir/emulator" \
            --record-dir "$KSEF_RECORD_DIR" "${emulator_opts[@]}" -- \
            "$0" --under-emulator "$venv" "$workdir" "$queue" 2>&1 \
            | if [ "$jobs" -gt 1 ]; then sed -u "s/^/[w$worker] /"; else cat; fi
    ) &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
done
echo "run-integration: took $((SECONDS - start))s on $jobs worker(s)"
sort -k3,3nr "$queue.results" | awk '{ printf "run-integration:   %-32s %5ss  exit %s\n", $1, $3, $2 }'

missing=()
for target in "${expected[@]}"; do
    grep -q "^$target 0 " "$queue.results" || missing+=("$target")
done
if [ ${#missing[@]} -ne 0 ]; then
    echo "run-integration: these targets failed or did not run: ${missing[*]}" >&2
    rc=1
fi
if [ "$rc" -eq 0 ]; then
    echo "run-integration: ${#expected[@]} targets passed: ${expected[*]}"
    rm -rf "$run_dir"
else
    echo "run-integration: FAILED; logs kept in $run_dir (w*/emulator/emulator.log, w*/TARGET.log)" >&2
fi
exit "$rc"
