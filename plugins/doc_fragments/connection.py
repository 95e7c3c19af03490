# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection and authentication options shared by every KSeF module.
    DOCUMENTATION = r'''
options:
  environment:
    description:
      - The KSeF environment to talk to.
      - V(test) is C(https://api-test.ksef.mf.gov.pl/v2), V(demo) is C(https://api-demo.ksef.mf.gov.pl/v2)
        and V(prod) is C(https://api.ksef.mf.gov.pl/v2).
      - If neither O(environment) nor O(api_url) is set, V(test) is used.
      - Mutually exclusive with O(api_url), also when one of them comes from an environment variable.
      - Fallback environment variable E(KSEF_ENVIRONMENT).
    type: str
    choices: [test, demo, prod]
  api_url:
    description:
      - Base URL of a KSeF API v2 endpoint, including the C(/v2) path, for example a local emulator.
      - An C(http://) URL is refused unless O(allow_insecure_http=true).
      - Mutually exclusive with O(environment).
      - Fallback environment variable E(KSEF_API_URL).
    type: str
  allow_insecure_http:
    description:
      - Accept an O(api_url) that starts with C(http://). The access token, and the KSeF token or signed login
        document, then travel unencrypted; only for a test server on the same machine. The module warns on every
        run that uses it.
      - Fallback environment variable E(KSEF_ALLOW_INSECURE_HTTP).
    type: bool
    default: false
  ca_path:
    description:
      - PEM file with the CA certificates that sign the server certificate of the API.
      - Defaults to the CA bundle of the Python C(requests) library (C(certifi), or the system bundle where the
        operating system's C(requests) package points it there).
      - The environment variables E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE) are not used, so that a variable
        set for other tools does not silently change whom the modules trust; when one is set and O(ca_path) is
        not, the module warns, and a failed certificate check names it. Use O(ca_path) (or E(KSEF_CA_PATH))
        instead.
      - Proxies are taken from E(HTTPS_PROXY), E(HTTP_PROXY) and E(NO_PROXY) as usual; C(~/.netrc) is not used.
      - Fallback environment variable E(KSEF_CA_PATH).
    type: path
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API. Only set to V(false) against a local test server;
        the module warns on every run that does. To trust a private CA, set O(ca_path) instead.
      - Fallback environment variable E(KSEF_VALIDATE_CERTS).
    type: bool
    default: true
  timeout:
    description:
      - Timeout in seconds for connecting to the API and for each response.
      - A request that gets no answer within O(timeout) is sent once more at most, and only when that is safe,
        so one request waits at most about twice O(timeout); the error message states the total wait.
      - Fallback environment variable E(KSEF_TIMEOUT).
    type: int
    default: 30
  max_retries:
    description:
      - How many times one request is retried after HTTP 429, or after HTTP 5xx on requests that are safe to repeat.
        A new enrollment (C(POST /certificates/enrollments)) is never repeated.
      - Network failures are retried fewer times, within this limit. A refused connection, an unknown host name or
        a broken connection twice (0.25 s and 0.75 s later), a request without an answer once. A request that may have
        reached KSeF is repeated only when it is safe to repeat.
      - Once KSeF has answered in a run, a refused connection is taken for a restart of the server and ridden out
        for about 30 s (six more retries, 1 to 10 s apart) unless O(max_retries=0), so that a run with an
        enrollment in flight finishes it.
      - Fallback environment variable E(KSEF_MAX_RETRIES).
    type: int
    default: 5
  max_retry_wait:
    description:
      - The longest wait in seconds before one retry. When KSeF asks (C(Retry-After)) for a longer wait after
        HTTP 429, the module fails instead of waiting.
      - Fallback environment variable E(KSEF_MAX_RETRY_WAIT).
    type: int
    default: 60
  read_rate_limits:
    description:
      - Read the effective limits with C(GET /rate-limits) right after logging in and pace the requests to them.
      - M(ksef.certificates.ksef_certificate) reads them anyway, once, whenever a run has something to enroll or
        revoke; a run that only looks (a no-op converge, the info module) paces to the published KSeF limits
        (10 per second, 30 per minute and 120 per hour for each certificate endpoint) unless this is true.
        Reading them costs one API call.
      - Pacing works within one module run; KSeF counts per context and client IP across runs.
      - Fallback environment variable E(KSEF_READ_RATE_LIMITS).
    type: bool
    default: false
  system_warnings:
    description:
      - What to do when KSeF answers with an C(X-System-Warning) header, a warning KSeF sends ahead of a change
        that will make it refuse requests (for example C(sig-001), a signature format outside the accepted XAdES
        profiles, seen on DEMO and production before the refusals began).
      - Every warning is returned in RV(system_warnings) (code and text) either way.
      - V(warn) shows each warning once as an Ansible warning.
      - V(fail) also fails the task once the module has done its work (what it did is still in the result), so a
        pipeline on the TEST or DEMO environment stops before production meets the refusal.
      - Fallback environment variable E(KSEF_SYSTEM_WARNINGS).
    type: str
    choices: [warn, fail]
    default: warn
  context_type:
    description:
      - Type of O(context_id), the context (taxpayer) in which the session is opened.
      - Fallback environment variable E(KSEF_CONTEXT_TYPE).
    type: str
    choices: [nip, internal_id, nip_vat_ue, peppol_id]
    default: nip
  context_id:
    description:
      - Identifier of the context, for example the NIP of the company. A NIP is checked (format and checksum)
        before any API call.
      - Required unless O(access_token) is used.
      - Fallback environment variable E(KSEF_CONTEXT_ID).
    type: str
  auth_certificate_path:
    description:
      - Signer certificate for XAdES authentication, as a PEM or DER file, or a PKCS#12 (PFX) bundle that
        also holds the private key.
      - A file that holds the Base64 text of a DER certificate or of a PKCS#12 bundle is read too (an AWX/AAP
        credential file injector writes text, see docs/awx/credential-type.yml).
      - Mutually exclusive with O(auth_certificate_content).
      - Fallback environment variable E(KSEF_AUTH_CERTIFICATE_PATH).
    type: path
  auth_certificate_content:
    description:
      - Signer certificate as PEM text, or Base64 of a DER certificate or of a PKCS#12 bundle.
      - Treated as a secret because a PKCS#12 bundle holds the private key.
      - Mutually exclusive with O(auth_certificate_path).
      - Fallback environment variable E(KSEF_AUTH_CERTIFICATE_CONTENT).
    type: str
  auth_private_key_path:
    description:
      - Private key of the signer certificate (PEM or DER; PKCS#8, PKCS#1 or SEC1; encrypted or not).
      - Required with a PEM or DER certificate, unless the certificate file also holds the key.
      - Mutually exclusive with O(auth_private_key_content).
      - Fallback environment variable E(KSEF_AUTH_PRIVATE_KEY_PATH).
    type: path
  auth_private_key_content:
    description:
      - Private key of the signer certificate as PEM text or Base64 of DER.
      - Mutually exclusive with O(auth_private_key_path).
      - Fallback environment variable E(KSEF_AUTH_PRIVATE_KEY_CONTENT).
    type: str
  auth_passphrase:
    description:
      - Passphrase of an encrypted private key or of a PKCS#12 bundle.
      - Fallback environment variable E(KSEF_AUTH_PASSPHRASE).
    type: str
  auth_pkcs11_module:
    description:
      - Path to the PKCS#11 library of a smart card, USB token or HSM whose key signs the login (XAdES), for
        example C(/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so) or C(/usr/lib/softhsm/libsofthsm2.so). The key
        never leaves the device.
      - The signer certificate is O(auth_certificate_path) or O(auth_certificate_content) when given, otherwise
        the certificate object stored in the token with the key's label.
      - Needs the C(PyKCS11) Python library. Mutually exclusive with O(auth_private_key_path) and
        O(auth_private_key_content).
      - Fallback environment variable E(KSEF_AUTH_PKCS11_MODULE).
    type: path
  auth_pkcs11_token_label:
    description:
      - Label of the token (card, HSM partition) that holds the signer key. Required with O(auth_pkcs11_module).
      - Fallback environment variable E(KSEF_AUTH_PKCS11_TOKEN_LABEL).
    type: str
  auth_pkcs11_key_label:
    description:
      - Label (C(CKA_LABEL)) of the signer's private key in the token. Required with O(auth_pkcs11_module).
      - Fallback environment variable E(KSEF_AUTH_PKCS11_KEY_LABEL).
    type: str
  auth_pkcs11_pin:
    description:
      - User PIN of the token. Required with O(auth_pkcs11_module).
      - Fallback environment variable E(KSEF_AUTH_PKCS11_PIN).
    type: str
  auth_subject_identifier_type:
    description:
      - How KSeF identifies the signer. V(certificate_subject) reads the NIP or PESEL from the certificate
        subject; V(certificate_fingerprint) uses the SHA-256 fingerprint of the certificate (for certificates
        without NIP/PESEL whose fingerprint was granted permissions).
      - Fallback environment variable E(KSEF_AUTH_SUBJECT_IDENTIFIER_TYPE).
    type: str
    choices: [certificate_subject, certificate_fingerprint]
    default: certificate_subject
  verify_certificate_chain:
    description:
      - Sent to KSeF as the C(verifyCertificateChain) query parameter of XAdES authentication. On the test
        environment V(false) lets self-signed signer certificates through.
      - When not set, V(false) on O(environment=test) (also the default environment) and V(true) on
        V(demo), V(prod) and with O(api_url).
      - Fallback environment variable E(KSEF_VERIFY_CERTIFICATE_CHAIN).
    type: bool
  auth_allowed_ips:
    description:
      - Restrict the access token to these client IPv4 addresses (KSeF C(AuthorizationPolicy)). Each entry is
        an address (C(192.0.2.10)), a range (C(192.0.2.10-192.0.2.20)) or a mask (C(192.0.2.0/24)); at most ten
        of each kind.
      - Fallback environment variable E(KSEF_AUTH_ALLOWED_IPS) (comma separated).
    type: list
    elements: str
  ksef_token:
    description:
      - KSeF token for token authentication, used when no signer certificate is given.
      - KSeF does not allow certificate enrollment or revocation in a session opened with a KSeF token.
      - Fallback environment variable E(KSEF_TOKEN).
    type: str
  access_token:
    description:
      - An access token obtained before, for example by M(ksef.certificates.ksef_session). It is used as is
        and takes priority over every other credential; the module neither logs in nor ends the session.
      - Like O(ksef_token), checked before any API call; a token with whitespace or control characters (a trailing
        newline) is refused without being shown.
      - Fallback environment variable E(KSEF_ACCESS_TOKEN).
    type: str
notes:
  - Credentials are used in this order of priority, O(access_token), then a signer certificate (XAdES), then
    O(ksef_token).
  - Unless O(access_token) is given, the module logs in once (challenge, XAdES signature or KSeF token, status
    polling for up to two minutes, token redemption), refreshes the access token when it nears expiry, and ends
    its session with C(DELETE /auth/sessions/current) when it finishes.
  - Option combinations and the signer material are checked before any API call.
  - >-
    Environment variables are read on the host that runs the module. Run KSeF modules on the controller
    (C(delegate_to: localhost)) when the variables are set there, for example by an AWX credential.
  - Every module returns C(api_calls), the number of HTTP requests it sent to KSeF.
requirements:
  - requests
  - cryptography (for XAdES and KSeF token authentication)
  - lxml (for XAdES authentication)
'''
