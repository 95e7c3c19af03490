#!/bin/sh
# Reports, as one JSON object, the state of one deployed KSeF certificate on this host.
# Reads the private keys only to derive their public keys; prints nothing secret.
# Usage: ksef_probe.sh OPENSSL KEY_PATH NEXT_KEY_PATH CERT_PATH RENEW_SECONDS PKCS12_PATH
# The PKCS#12 passphrase, if any, comes in the environment (KSEF_DEPLOY_PKCS12_PASSPHRASE).
set -u
openssl=$1 key=$2 next_key=$3 cert=$4 renew_seconds=$5 pkcs12=$6

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

# The bundle is current when it opens with the passphrase and holds the current certificate.
pkcs12_current() {
    [ -n "$pkcs12" ] && [ -s "$pkcs12" ] && cert_parsed || return 1
    bundled=$("$openssl" pkcs12 -in "$pkcs12" -nokeys -clcerts -passin env:KSEF_DEPLOY_PKCS12_PASSPHRASE 2>/dev/null \
        | "$openssl" x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/^.*=//')
    [ -n "$bundled" ] && [ "$bundled" = "$fingerprint" ]
}

printf '{"key_exists": %s, "next_key_exists": %s, "certificate_exists": %s, "certificate_parsed": %s,' \
    "$(json_bool test -s "$key")" "$(json_bool test -s "$next_key")" "$(json_bool test -e "$cert")" "$(json_bool cert_parsed)"
printf ' "certificate_matches_key": %s, "certificate_matches_next_key": %s, "certificate_outside_renewal_window": %s,' \
    "$(json_bool matches "$key")" "$(json_bool matches "$next_key")" "$(json_bool fresh)"
printf ' "pkcs12_current": %s, "key_dir_exists": %s, "certificate_dir_exists": %s,' \
    "$(json_bool pkcs12_current)" "$(json_bool test -d "$(dirname "$key")")" "$(json_bool test -d "$(dirname "$cert")")"
printf ' "serial": "%s", "not_after": "%s", "fingerprint_sha256": "%s"}\n' "$serial" "$not_after" "$fingerprint"
