#!/usr/bin/env bash
# Start the KSeF emulator, run a command against it, and always stop the emulator afterwards.
#
# Usage: tools/with-emulator.sh [--python PY] [--dir DIR] [--processing-delay S] [--record-dir D]
#                               [--no-tls] -- COMMAND [ARGS...]
#
#   --python   interpreter with ksef_emulator installed (default: .venv/bin/python)
#   --dir      emulator files: state.sqlite, ca.pem, ready file, emulator.log
#              (default: build/emulator-run; wiped first so every run starts with empty state)
#
# The emulator listens on 127.0.0.1 on a free port (--port 0) and reports it in the ready file.
# COMMAND runs with these variables exported:
#   KSEF_EMULATOR_API_URL   https://127.0.0.1:PORT/v2    (what modules use as api_url)
#   KSEF_EMULATOR_URL       https://127.0.0.1:PORT       (control endpoints /emulator/...)
#   KSEF_EMULATOR_CA        CA certificate of the emulator's TLS server (empty with --no-tls)
#   KSEF_EMULATOR_PYTHON    the interpreter that has ksef_emulator (for ksef_emulator.testcerts)
#   KSEF_EMULATOR_DIR       the directory above
# The exit status is COMMAND's, or 1 when the emulator fails to start.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python="$repo/.venv/bin/python"
dir="$repo/build/emulator-run"
emulator_args=()
tls=1

while [ $# -gt 0 ]; do
    case "$1" in
        --python) python=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --processing-delay) emulator_args+=(--processing-delay "$2"); shift 2 ;;
        --record-dir) emulator_args+=(--record-dir "$2"); shift 2 ;;
        --no-tls) tls=0; emulator_args+=(--no-tls); shift ;;
        --) shift; break ;;
        *) echo "with-emulator: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "with-emulator: no command given" >&2
    exit 2
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir/state.sqlite" "$dir/state.sqlite-"* "$dir/ready" "$dir/ca.pem" "$dir/emulator.log"

"$python" -m ksef_emulator --host 127.0.0.1 --port 0 --ready-file "$dir/ready" \
    --state "$dir/state.sqlite" --tls-ca-file "$dir/ca.pem" "${emulator_args[@]}" \
    >"$dir/emulator.log" 2>&1 &
pid=$!

# shellcheck disable=SC2317  # called by the EXIT trap
stop_emulator() {
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
trap stop_emulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The ready file appears once the server accepts connections. Its exact shape belongs to the
# emulator; accept JSON with a URL or a port, or plain text with a URL or a port.
base_url=
for _ in $(seq 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "with-emulator: the emulator exited before it was ready; its log:" >&2
        tail -n 40 "$dir/emulator.log" >&2
        exit 1
    fi
    if [ -s "$dir/ready" ]; then
        base_url=$("$python" - "$dir/ready" "$tls" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read().strip()
scheme = 'https' if sys.argv[2] == '1' else 'http'
url = None
try:
    data = json.loads(text)
except ValueError:
    data = text
if isinstance(data, dict):
    for key in ('base_url', 'url', 'api_url', 'control_url'):
        if isinstance(data.get(key), str):
            url = data[key]
            break
    else:
        if data.get('port'):
            url = '%s://%s:%s' % (scheme, data.get('host', '127.0.0.1'), data['port'])
elif isinstance(data, int):
    url = '%s://127.0.0.1:%d' % (scheme, data)
else:
    match = re.search(r'https?://[^\s"]+', text) or re.fullmatch(r'\d+', text)
    if match and match.group(0).isdigit():
        url = '%s://127.0.0.1:%s' % (scheme, match.group(0))
    elif match:
        url = match.group(0)
if url:
    url = url.rstrip('/')
    if url.endswith('/v2'):
        url = url[:-3]
    print(url)
PY
)
        [ -n "$base_url" ] && break
    fi
    sleep 0.2
done
if [ -z "$base_url" ]; then
    echo "with-emulator: no usable ready file after 60 s ($dir/ready); emulator log:" >&2
    tail -n 40 "$dir/emulator.log" >&2
    exit 1
fi

export KSEF_EMULATOR_URL="$base_url"
export KSEF_EMULATOR_API_URL="$base_url/v2"
export KSEF_EMULATOR_CA=
if [ "$tls" = 1 ]; then
    KSEF_EMULATOR_CA="$dir/ca.pem"
fi
export KSEF_EMULATOR_PYTHON="$python"
export KSEF_EMULATOR_DIR="$dir"
echo "with-emulator: emulator (pid $pid) ready at $KSEF_EMULATOR_API_URL, log $dir/emulator.log"

rc=0
"$@" || rc=$?
exit "$rc"
