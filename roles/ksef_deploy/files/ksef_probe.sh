#!/bin/sh
# Reports, as one JSON object, the state of one deployed KSeF certificate on this host.
# Reads the private keys only to derive their public keys; prints nothing secret.
# Usage: ksef_probe.sh OPENSSL KEY_PATH NEXT_KEY_PATH CERT_PATH RENEW_SECONDS
# Takes no secret: its command line and environment are shown at -vvv. (PKCS#12 bundles are
# checked by tasks/pkcs12.yml, which passes the passphrase to openssl on standard input.)
set -u
openssl=$1 key=$2 next_key=$3 cert=$4 renew_seconds=$5

if ! command -v "$openssl" >/dev/null 2>&1; then
    echo "ksef_deploy: '$openssl' not found on this host; install OpenSSL or set ksef_deploy_openssl_executable" >&2
    exit 2
fi

json_bool() { if "$@"; then printf true; else printf false; fi; }
key_public() { "$openssl" pkey -in "$1" -pubout 2>/dev/null; }

cert_public=""
if [ -s "$cert" ]; then
    cert_public=$("$openssl" x509 -in "$cert" -noout -pubkey 2>/dev/null)
fi
cert_parsed() { [ -n "$cert_public" ]; }
matches() { cert_parsed && [ -s "$1" ] && [ "$(key_public "$1")" = "$cert_public" ]; }
# -checkend N fails when the certificate expires within N seconds (or has already expired).
fresh() { cert_parsed && "$openssl" x509 -in "$cert" -noout -checkend "$renew_seconds" >/dev/null 2>&1; }

serial="" not_after="" fingerprint=""
if cert_parsed; then
    serial=$("$openssl" x509 -in "$cert" -noout -serial | sed 's/^serial=//')
    not_after=$("$openssl" x509 -in "$cert" -noout -enddate | sed 's/^notAfter=//')
    fingerprint=$("$openssl" x509 -in "$cert" -noout -fingerprint -sha256 | sed 's/^.*=//')
fi

printf '{"key_exists": %s, "next_key_exists": %s, "certificate_exists": %s, "certificate_parsed": %s,' \
    "$(json_bool test -s "$key")" "$(json_bool test -s "$next_key")" "$(json_bool test -e "$cert")" "$(json_bool cert_parsed)"
printf ' "certificate_matches_key": %s, "certificate_matches_next_key": %s, "certificate_outside_renewal_window": %s,' \
    "$(json_bool matches "$key")" "$(json_bool matches "$next_key")" "$(json_bool fresh)"
printf ' "serial": "%s", "not_after": "%s", "fingerprint_sha256": "%s"}\n' "$serial" "$not_after" "$fingerprint"
