#!/usr/bin/env bash
# The demo: provision KSeF certificates on three local demo hosts against the KSeF emulator.
#
#   demo/run.sh        (`make demo`)       provision; a second run asserts changed=0
#   demo/run.sh up     (`make demo-up`)    keep the emulator running, write build/demo/env.sh to source
#   demo/run.sh down   (`make demo-down`)  stop the emulator started by `up`
#
# State lives in build/demo/ (emulator SQLite, the TEST-style seal used to log in, the hosts'
# files), so a second run sees the first one. `make demo-clean` removes build/demo/ to start over.
# `make demo` uses the emulator of `make demo-up` when it runs, and otherwise starts one for the
# duration of the run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv_bin=$repo/.venv/bin
demo_dir=$repo/build/demo
env_file=$demo_dir/env.sh
pid_file=$demo_dir/emulator.pid
# Written by `up`: the user may change the demo (revoke, their own playbooks) between two `make demo` runs.
explored_marker=$demo_dir/explored
mkdir -p "$demo_dir"

# The collection must be importable as ksef.certificates.
link=$repo/build/collections/ansible_collections/ksef/certificates
if [ ! -e "$link" ]; then
    mkdir -p "$(dirname "$link")"
    ln -sfn "$repo" "$link"
fi

emulator_running() {
    [ -s "$pid_file" ] && [ -s "$demo_dir/emulator.url" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

# Starts the emulator in the background: TLS on a free port, state kept in build/demo/emulator.sqlite.
# Sets emulator_pid; the URL is in build/demo/emulator.url once it is ready.
start_emulator() {
    rm -f "$demo_dir/emulator.url"
    setsid "$venv_bin/python" -m ksef_emulator --host 127.0.0.1 --port 0 --processing-delay 1 \
        --state "$demo_dir/emulator.sqlite" --tls-ca-file "$demo_dir/emulator-ca.pem" \
        --ready-file "$demo_dir/emulator.url" < /dev/null > /dev/null 2> "$demo_dir/emulator.log" &
    emulator_pid=$!
    for _ in $(seq 1 100); do
        [ -s "$demo_dir/emulator.url" ] && return 0
        kill -0 "$emulator_pid" 2>/dev/null || { echo "demo: the emulator did not start:" >&2; cat "$demo_dir/emulator.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "demo: the emulator did not become ready (see $demo_dir/emulator.log)" >&2
    kill "$emulator_pid" 2>/dev/null || true
    exit 1
}

# The subject: a random valid NIP and a self-signed TEST-style company seal, made once and reused.
make_subject() {
    if [ ! -s "$demo_dir/seal.pem" ] || [ ! -s "$demo_dir/seal.key" ] || [ ! -s "$demo_dir/nip" ]; then
        "$venv_bin/python" -m ksef_emulator.testcerts nip > "$demo_dir/nip"
        "$venv_bin/python" -m ksef_emulator.testcerts seal --nip "$(cat "$demo_dir/nip")" --key-type ec \
            --cert-out "$demo_dir/seal.pem" --key-out "$demo_dir/seal.key"
    fi
}

# Connection settings the way an AWX credential would provide them: KSEF_* variables. The same lines
# go to build/demo/env.sh for a shell.
write_env() {
    local target=$1
    cat > "$target" <<EOF
# Written by demo/run.sh for the demo emulator at $(cat "$demo_dir/emulator.url"); source it:  . build/demo/env.sh
export KSEF_API_URL='$(cat "$demo_dir/emulator.url")'
export KSEF_CA_PATH='$demo_dir/emulator-ca.pem'
export KSEF_CONTEXT_ID='$(cat "$demo_dir/nip")'
export KSEF_AUTH_CERTIFICATE_PATH='$demo_dir/seal.pem'
export KSEF_AUTH_PRIVATE_KEY_PATH='$demo_dir/seal.key'
export KSEF_VERIFY_CERTIFICATE_CHAIN=false  # a self-signed seal, as on KSeF TEST
export ANSIBLE_COLLECTIONS_PATH='$repo/build/collections'
export ANSIBLE_INVENTORY='$repo/demo/inventory.yml'
export KSEF_DEMO_DIR='$demo_dir'
export ANSIBLE_LOCALHOST_WARNING=false
export PATH='$venv_bin':"\$PATH"
EOF
}

explore_hint() {
    echo "Explore the demo from a shell (the emulator keeps running until 'make demo-down'):"
    echo "  make demo-up && . build/demo/env.sh"
    echo "  ansible-doc ksef.certificates.ksef_certificate"
    echo "  ansible-playbook ksef.certificates.report -e ksef_report_dir=build/demo/report"
    echo "  ansible-playbook ksef.certificates.revoke -e ksef_revoke_name=web01-demo-example-authentication \\"
    echo "      -e ksef_revoke_type=authentication -e ksef_revoke_reason=key_compromise -e ksef_revoke_hosts=web01.demo.example"
    echo "  make demo        # provisions again: web01 gets a new certificate"
    echo "  make demo-down"
}

case "${1:-demo}" in
up)
    make_subject
    if emulator_running; then
        echo "demo-up: the emulator is already running (pid $(cat "$pid_file"))"
    else
        start_emulator
        echo "$emulator_pid" > "$pid_file"
        echo "demo-up: KSeF emulator at $(cat "$demo_dir/emulator.url") (pid $emulator_pid, log build/demo/emulator.log)"
    fi
    write_env "$env_file"
    touch "$explored_marker"
    echo "demo-up: wrote build/demo/env.sh (KSEF_* connection, ANSIBLE_COLLECTIONS_PATH, ANSIBLE_INVENTORY, PATH)"
    echo
    explore_hint
    exit 0
    ;;
down)
    if emulator_running; then
        kill "$(cat "$pid_file")"
        echo "demo-down: stopped the emulator (pid $(cat "$pid_file")); its state stays in build/demo/"
    else
        echo "demo-down: no demo emulator is running"
    fi
    rm -f "$pid_file" "$env_file"
    exit 0
    ;;
demo) ;;
*)
    echo "usage: demo/run.sh [up|down]" >&2
    exit 2
    ;;
esac

# A second run is one that finds the hosts of a previous run; after `make demo-up` the user may
# have changed things (revoked a certificate), so this run may change them back.
if [ -d "$demo_dir/hosts" ] && [ ! -e "$explored_marker" ]; then second_run=true; else second_run=false; fi

make_subject
demo_up=false
if emulator_running; then
    demo_up=true
    echo "demo: using the running emulator of 'make demo-up'"
else
    start_emulator
    trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true' EXIT
fi
api_url=$(cat "$demo_dir/emulator.url")
nip=$(cat "$demo_dir/nip")

run_env=$demo_dir/run-env.sh
write_env "$run_env"
# shellcheck source=/dev/null
. "$run_env"
export ANSIBLE_NOCOLOR=1

echo "demo: KSeF emulator at $api_url, subject NIP $nip"
ansible-playbook playbooks/provision.yml -e @demo/vars.yml | tee "$demo_dir/provision.log"

# The summary of what is deployed where, from the playbook's JSON summary.
"$venv_bin/python" - "$demo_dir/summary.json" "$demo_dir" <<'PY'
import json
import sys

summary_path, demo_dir = sys.argv[1], sys.argv[2]
with open(summary_path, encoding='utf-8') as handle:
    summary = json.load(handle)
print('\nKSeF certificates deployed by the demo:')
for host in sorted(summary):
    for cert in summary[host]:
        where = cert['certificate_path'].replace(demo_dir + '/', 'build/demo/')
        bundle = ' + ' + cert['pkcs12_path'].replace(demo_dir + '/', 'build/demo/') if cert['pkcs12_path'] else ''
        print('  %-20s %-38s %-14s serial %s valid until %s (%s)\n  %-20s   -> %s%s' % (
            host, cert['name'], cert['type'], cert['serial_number'], cert['valid_to'][:10], cert['action'],
            '', where, bundle))
PY

# The recap must show no change on a second run: everything already converged.
changed=false
if grep -qE '^[^ ].*: ok=[0-9]+ +changed=[1-9]' "$demo_dir/provision.log"; then changed=true; fi
echo
if $second_run; then
    if $changed; then
        grep -E '^[^ ].*: ok=[0-9]+ +changed=[1-9]' "$demo_dir/provision.log" >&2
        echo "demo: FAILED, the second run changed something (see above)" >&2
        exit 1
    fi
    echo "demo: second run, changed=0 on every host (idempotent)"
elif [ -e "$explored_marker" ] && [ -d "$demo_dir/hosts" ]; then
    # Once the emulator of `make demo-up` is down, nothing changes the demo but `make demo`: check again.
    $demo_up || rm -f "$explored_marker"
    if $changed; then
        echo "demo: converged again after changes made since 'make demo-up' (revoked or removed certificates)"
    else
        echo "demo: changed=0 on every host"
    fi
else
    echo "demo: first run done; run 'make demo' again to see that nothing changes, 'make demo-clean' to start over"
fi
explore_hint
