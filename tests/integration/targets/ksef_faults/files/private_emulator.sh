#!/usr/bin/env bash
# Start a private KSeF emulator in the background and wait until it is ready.
# Usage: private_emulator.sh PYTHON DIR PORT [EMULATOR OPTIONS...]   (PORT 0 picks a free port)
# Prints the emulator's pid; the base URL is in DIR/ready. The state (DIR/state.sqlite) is kept, so a
# second start with the same DIR and PORT is a restart of the same emulator.
set -euo pipefail
python=$1 dir=$2 port=$3
shift 3
mkdir -p "$dir"
rm -f "$dir/ready"
nohup "$python" -m ksef_emulator --host 127.0.0.1 --port "$port" --ready-file "$dir/ready" \
    --state "$dir/state.sqlite" --tls-ca-file "$dir/ca.pem" "$@" >>"$dir/emulator.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 150); do
    if [ -s "$dir/ready" ]; then
        echo "$pid"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/emulator.log" >&2; exit 1; }
    sleep 0.2
done
echo "private emulator not ready after 30 s" >&2
kill "$pid" 2>/dev/null || true
exit 1
