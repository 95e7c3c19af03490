#!/usr/bin/env bash
# `make demo`: provision KSeF certificates on three local demo hosts against the KSeF emulator.
#
# State lives in build/demo/ (emulator SQLite, the TEST-style seal used to log in, the hosts'
# files), so a second run sees the first one and must change nothing: it asserts changed=0.
# `make demo-clean` removes build/demo/ to start over. The emulator stops when this script ends.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv_bin=$repo/.venv/bin
demo_dir=$repo/build/demo
mkdir -p "$demo_dir"

# The collection must be importable as ksef.certificates.
link=$repo/build/collections/ansible_collections/ksef/certificates
if [ ! -e "$link" ]; then
    mkdir -p "$(dirname "$link")"
    ln -sfn "$repo" "$link"
fi

# A second run is one that finds the hosts of a previous run.
if [ -d "$demo_dir/hosts" ]; then second_run=true; else second_run=false; fi

# The subject: a random valid NIP and a self-signed TEST-style company seal, made once and reused.
if [ ! -s "$demo_dir/seal.pem" ] || [ ! -s "$demo_dir/seal.key" ] || [ ! -s "$demo_dir/nip" ]; then
    "$venv_bin/python" -m ksef_emulator.testcerts nip > "$demo_dir/nip"
    "$venv_bin/python" -m ksef_emulator.testcerts seal --nip "$(cat "$demo_dir/nip")" --key-type ec \
        --cert-out "$demo_dir/seal.pem" --key-out "$demo_dir/seal.key"
fi
nip=$(cat "$demo_dir/nip")

# The emulator: TLS on a free port, state kept in build/demo/emulator.sqlite.
rm -f "$demo_dir/emulator.url"
"$venv_bin/python" -m ksef_emulator --host 127.0.0.1 --port 0 --processing-delay 1 \
    --state "$demo_dir/emulator.sqlite" --tls-ca-file "$demo_dir/emulator-ca.pem" \
    --ready-file "$demo_dir/emulator.url" 2> "$demo_dir/emulator.log" &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null || true; wait "$emulator_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    [ -s "$demo_dir/emulator.url" ] && break
    kill -0 "$emulator_pid" 2>/dev/null || { echo "demo: the emulator did not start:" >&2; cat "$demo_dir/emulator.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$demo_dir/emulator.url" ] || { echo "demo: the emulator did not become ready" >&2; exit 1; }
api_url=$(cat "$demo_dir/emulator.url")

# Connection settings the way an AWX credential would provide them: KSEF_* variables.
export KSEF_API_URL=$api_url
export KSEF_CA_PATH=$demo_dir/emulator-ca.pem
export KSEF_CONTEXT_ID=$nip
export KSEF_AUTH_CERTIFICATE_PATH=$demo_dir/seal.pem
export KSEF_AUTH_PRIVATE_KEY_PATH=$demo_dir/seal.key
export KSEF_VERIFY_CERTIFICATE_CHAIN=false  # a self-signed seal, as on KSeF TEST
export ANSIBLE_COLLECTIONS_PATH=$repo/build/collections
export ANSIBLE_LOCALHOST_WARNING=false
export ANSIBLE_NOCOLOR=1

echo "demo: KSeF emulator at $api_url, subject NIP $nip"
"$venv_bin/ansible-playbook" -i demo/inventory.yml playbooks/provision.yml \
    -e "demo_dir=$demo_dir" -e @demo/vars.yml | tee "$demo_dir/provision.log"

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
if $second_run; then
    if grep -E '^[^ ].*: ok=[0-9]+ +changed=[1-9]' "$demo_dir/provision.log"; then
        echo "demo: FAILED, the second run changed something (see above)" >&2
        exit 1
    fi
    echo "demo: second run, changed=0 on every host (idempotent)"
else
    echo "demo: first run done; run 'make demo' again to see that nothing changes, 'make demo-clean' to start over"
fi
