#!/usr/bin/env bash
# Stop the emulator with this pid (SIGTERM, then SIGKILL after 10 s); quiet when it is already gone.
pid=$1
kill -TERM "$pid" 2>/dev/null || exit 0
for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || exit 0
    sleep 0.2
done
kill -KILL "$pid" 2>/dev/null || true
