#!/usr/bin/env bash
# Run make targets one after another, keep going after a failure, print a per-stage summary with
# timings, and exit non-zero if any stage failed. `make test` (and so .ci/run) uses it.
#
# Usage: tools/run-stages.sh TARGET...
# The first stage (venv) is fatal: nothing can run without it.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
names=()
results=()
failed=0
passed=0
start_all=$SECONDS

for stage in "$@"; do
    echo
    echo "=================== make $stage ==================="
    start=$SECONDS
    make --no-print-directory "$stage"
    rc=$?
    elapsed=$((SECONDS - start))
    names+=("$stage")
    if [ "$rc" -eq 0 ]; then
        results+=("ok      ${elapsed}s")
        passed=$((passed + 1))
    else
        results+=("FAILED  ${elapsed}s (exit $rc)")
        failed=$((failed + 1))
        if [ "$stage" = venv ]; then
            echo "venv failed: the other stages cannot run" >&2
            break
        fi
    fi
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
