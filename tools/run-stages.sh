#!/usr/bin/env bash
# Run make targets, keep going after a failure, print a per-stage summary with timings, and exit
# non-zero if any stage failed. `make test` (and so .ci/run) uses it.
#
# Usage: tools/run-stages.sh STAGE...
#   STAGE is a make target, or several joined with '+' (e.g. integration-latest+units-2.16): those run
#   side by side, each line of their output prefixed with the target's name, and the group ends when
#   the last of them ends. Stages that mostly wait (emulators, processing delays, pacing) pair well
#   with stages that mostly compute; the machine has 2 cores.
# The first stage (venv) is fatal: nothing can run without it.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
names=()
results=()
failed=0
passed=0
start_all=$SECONDS
log_dir=build/stages
mkdir -p "$log_dir"

record() { # record NAME RC SECONDS
    names+=("$1")
    if [ "$2" -eq 0 ]; then
        results+=("ok      ${3}s")
        passed=$((passed + 1))
    else
        results+=("FAILED  ${3}s (exit $2)")
        failed=$((failed + 1))
    fi
}

for group in "$@"; do
    IFS=+ read -r -a members <<<"$group"
    echo
    echo "=================== make ${members[*]} ==================="
    if [ "${#members[@]}" -eq 1 ]; then
        start=$SECONDS
        make --no-print-directory "$group"
        rc=$?
        record "$group" "$rc" $((SECONDS - start))
        if [ "$rc" -ne 0 ] && [ "$group" = venv ]; then
            echo "venv failed: the other stages cannot run" >&2
            break
        fi
        continue
    fi
    pids=()
    for stage in "${members[@]}"; do
        # Each member writes its exit status and duration to a file: the pipeline's own status is sed's.
        rm -f "$log_dir/$stage.status"
        (
            s=$SECONDS
            make --no-print-directory "$stage" 2>&1 | sed -u "s/^/[$stage] /"
            rc=${PIPESTATUS[0]}
            echo "$rc $((SECONDS - s))" >"$log_dir/$stage.status"
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"
    for stage in "${members[@]}"; do
        read -r rc elapsed <"$log_dir/$stage.status" || { rc=1; elapsed=0; }
        record "$stage" "$rc" "$elapsed"
    done
done

echo
echo "=================== summary ==================="
for i in "${!names[@]}"; do
    printf '%-20s %s\n' "${names[$i]}" "${results[$i]}"
done
echo "total                $((SECONDS - start_all))s"
# Plain closing line that CI reads: stages passed and failed.
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
