#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ksef_certificate
short_description: Enroll, renew and revoke KSeF certificates declaratively
version_added: 0.1.0
description:
  - Makes sure KSeF (API v2) holds a healthy certificate of the declared name, type and public key,
    and that the local files match it; or, with O(state=absent), that no such certificate is active.
  - "B(Identity.) A KSeF certificate is the declared one when its name equals O(name) exactly, its
    type is O(type), and its public key equals the declared key: the key in O(private_key_path) or the
    key of the CSR (O(csr_path) / O(csr_content)). Names are only hints: KSeF matches names as
    substrings and does not make them unique."
  - "B(API calls.) The whole declared set costs one login and one paginated C(POST /certificates/query)
    when nothing is due. A certificate whose local file belongs to the local key and which KSeF lists as
    active and outside the renewal window needs no other call. Only when local state cannot prove
    identity (no certificate file, or the file does not match) are the certificates of the exact name and
    type retrieved, ten per call, and their public keys compared."
  - "B(Enrollment.) When the declared certificate is missing the module checks the limits
    (C(GET /certificates/limits)) once for the whole set, builds the CSR from
    C(GET /certificates/enrollments/data) (subject attributes CN, surname, givenName, O,
    organizationIdentifier, C, serialNumber, uniqueIdentifier, one RDN each, in that order, UTF8String
    except C and serialNumber), enrolls, waits for the certificate, retrieves it and writes it."
  - "B(Renewal.) When the certificate is inside O(renew_before_days), expired, revoked, blocked, or KSeF
    only holds certificates of that name and type for other keys, the module rotates: a new key is
    written to C(<private_key_path>.next), enrolled, and installed together with the new certificate at
    the end; then every other active certificate of the same name and type is revoked with reason
    C(superseded) for V(authentication), and left active until it expires for V(offline) (QR codes II on
    invoices in circulation are checked against it; see O(revoke_superseded)). A certificate KSeF shows as
    C(Blocked) (its revocation is completing) is neither the declared certificate nor revoked again. A key
    that still backs an active certificate is never replaced in place, and a renewal in the local-key form
    always makes a new key. A key in O(private_key_path) that never backed a certificate of that name and
    type in KSeF (nor the local certificate file) is reused: enrolled as it is, with no C(.next) file.
    In the CSR form the same CSR is enrolled again (the key lives elsewhere); if KSeF refuses a key it has
    already certified (enrollment status 400), the module says to give a CSR of a new key."
  - "B(Crash safety.) Before the enrollment is sent, an intent record (name, type, public key
    fingerprint, time, no secrets) is written to the state file O(state_path); the reference number is
    added as soon as KSeF returns it. A rerun resumes the recorded enrollment instead of sending another.
    If the answer to the enrollment POST was lost (connection dropped after KSeF may have acted, an HTTP
    5xx or an unreadable 2xx answer, or the run was killed before the answer was recorded), the module
    looks for a certificate of that exact name, type and public key requested after the recorded time,
    other than those listed before the POST, and installs it (RV(action=installed)); until one appears
    it fails with a message saying so, and sends nothing."
  - "An unconfirmed intent stops blocking when it is older than one hour and no matching certificate
    exists (KSeF issues within seconds when it is up), or at once with O(force=true). The module then
    warns and enrolls again."
  - "A lock (C(fcntl.flock) on C(<state file>.lock)) per declared certificate keeps two runs on the same
    controller (a schedule and a manual run) from enrolling the same certificate twice: the key,
    certificate and state file are read again once the lock is held, and a key to be generated in
    O(private_key_path) is never written over a file that appeared meanwhile (the run fails instead).
    The lock file exists only while a run holds it; a converged run leaves no lock or state file behind."
  - "In the CSR form without any path option there is no state file and no lock: crash safety then
    relies only on the reconciliation by name and public key (an interrupted enrollment that KSeF already
    completed is found and returned; one that KSeF is still processing may be sent again)."
  - Check mode performs every read (query, retrieve, enrollment status, limits, enrollment data) and
    reports exactly what a real run would do, but sends no enrollment or revocation and writes no file.
author:
  - ksef.certificates contributors (@ksef-certificates)
requirements:
  - cryptography >= 3.4
  - requests
extends_documentation_fragment:
  - ksef.certificates.connection
  - ksef.certificates.attributes
  - ksef.certificates.attributes.actiongroup_ksef
  - ksef.certificates.attributes.files
  - ksef.certificates.certificate
  - ksef.certificates.certificate_list
  - ksef.certificates.rolling
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details:
      - Reads from KSeF, never enrolls, revokes or writes files.
  diff_mode:
    support: full
    details:
      - Before/after summaries (serial number, status, validity end, public key fingerprint, paths); never key material.
  idempotent:
    support: partial
    details:
      - A second run with the same options reports no change, until the certificate enters the renewal window.
      - With O(force=true) every run enrolls a new certificate.
  safe_file_operations:
    support: full
options:
  name:
    description:
      - Name of the certificate in KSeF (C(certificateName)), 5 to 100 characters from letters (Polish
        letters included), digits, space, V(_) and V(-).
      - Required in the single form; mutually exclusive with O(certificates).
    type: str
  type:
    description:
      - Certificate type. V(authentication) certificates log in to KSeF; V(offline) certificates only sign
        offline invoices (QR code II).
      - Required for every certificate (here, or in each O(certificates) item).
    type: str
    choices: [authentication, offline]
  lock_timeout:
    description: Seconds to wait for another run on this controller that manages the same certificate.
    type: int
    default: 60
notes:
  - Enrollment and revocation need a session authenticated with a signature (XAdES; the signer certificate
    options). A session opened with a KSeF token cannot enroll.
  - The O(mode), O(owner), O(group) and SELinux options apply to the certificate file; key and PKCS#12 files
    get the same owner and group but always mode C(0600).
  - "The module runs where the task runs; use C(delegate_to: localhost) to keep keys on the controller."
seealso:
  - module: ksef.certificates.ksef_certificate_info
  - module: ksef.certificates.ksef_certificate_revoke
  - module: ksef.certificates.ksef_session
'''

EXAMPLES = r'''
- name: One EC Authentication certificate, key and certificate on the controller
  ksef.certificates.ksef_certificate:
    name: erp-production
    type: authentication
    private_key_path: /etc/ksef/erp-production.key
    certificate_path: /etc/ksef/erp-production.pem
    auth_certificate_path: /etc/ksef/signer.pem
    auth_private_key_path: /etc/ksef/signer.key
    context_id: "1234563218"
  delegate_to: localhost
  register: erp

- name: Several certificates in one task (one login, one query), connection from module_defaults
  module_defaults:
    group/ksef.certificates.ksef:
      environment: test
      context_id: "1234563218"
      auth_certificate_path: /etc/ksef/signer.pem
      auth_private_key_path: /etc/ksef/signer.key
  ksef.certificates.ksef_certificate:
    renew_before_days: 45
    certificates:
      - name: erp-auth
        type: authentication
        private_key_path: /etc/ksef/erp-auth.key
        certificate_path: /etc/ksef/erp-auth.pem
      - name: erp-offline
        type: offline
        private_key_type: rsa
        private_key_path: /etc/ksef/erp-offline.key
        certificate_path: /etc/ksef/erp-offline.pem
        pkcs12_path: /etc/ksef/erp-offline.p12
        pkcs12_passphrase: "{{ vault_pkcs12_passphrase }}"
  delegate_to: localhost

- name: Enroll CSRs made on the hosts (the keys never leave them); nothing is written on the controller
  ksef.certificates.ksef_certificate:
    type: authentication
    return_content: true
    certificates:
      - name: host-app01
        csr_content: "{{ hostvars['app01'].ksef_csr }}"
      - name: host-app02
        csr_content: "{{ hostvars['app02'].ksef_csr }}"
  delegate_to: localhost
  run_once: true
  register: enrolled

- name: Revoke a certificate and remove its files
  ksef.certificates.ksef_certificate:
    name: erp-production
    type: authentication
    state: absent
    revocation_reason: key_compromise
    private_key_path: /etc/ksef/erp-production.key
    certificate_path: /etc/ksef/erp-production.pem
    remove_files: true
  delegate_to: localhost
'''

RETURN = r'''
action:
  description:
    - What the run did (or, in check mode, would do). For the list form the common action of all items,
      or V(multiple).
    - V(none) nothing to do; V(enrolled) a new certificate was enrolled and installed; V(renewed) an
      existing one was replaced; V(installed) a certificate already in KSeF was written locally (also a
      reconciled lost enrollment); V(pending) KSeF is still processing (see RV(reference_number));
      V(revoked) O(state=absent) revoked certificates, or kept predecessors once their successor proved itself (V(proven)); V(removed)
      O(state=absent) removed files only; V(deferred) due, a later run renews it in time; V(blocked) due, no slot or request left in time (RV(hold)).
  returned: always
  type: str
  choices: [none, enrolled, renewed, installed, pending, revoked, removed, deferred, blocked, multiple]
  sample: enrolled
reason:
  description:
    - Why (single form only, else V(null)) - V(healthy), V(missing), V(key_mismatch), V(renewal_window),
      V(expired), V(revoked), V(blocked), V(force), V(resumed), V(reconciled), V(present), V(absent), V(not_valid_yet), V(proven).
  returned: always
  type: str
  sample: renewal_window
certificate:
  description:
    - The declared certificate after the run (single form only, else V(null)); V(null) while an enrollment is
      pending or predicted in check mode, and when none exists.
  returned: always
  type: dict
  contains:
    serial_number:
      description: Serial number (16 upper-case hexadecimal characters).
      type: str
      returned: success
      sample: 01F2A3B4C5D6E7F8
    name:
      description: Certificate name.
      type: str
      returned: success
      sample: erp-production
    type:
      description: Certificate type.
      type: str
      returned: success
      sample: authentication
    status:
      description: KSeF status (V(active), V(blocked), V(revoked), V(expired)).
      type: str
      returned: success
      sample: active
    valid_from:
      description: Start of validity (KSeF's when known, else the certificate's; UTC, ISO 8601, whole seconds, like every date-time the modules return).
      type: str
      returned: success
      sample: "2026-01-10T12:00:00+00:00"
    valid_to:
      description: End of validity (KSeF's when known, else the certificate's; UTC, ISO 8601, whole seconds, like every date-time the modules return).
      type: str
      returned: success
      sample: "2028-01-10T12:00:00+00:00"
    days_remaining:
      description: Whole days until RV(certificate.valid_to), rounded down.
      type: int
      returned: success
      sample: 702
    fingerprint_sha256:
      description: SHA-256 of the certificate (DER), lower-case hexadecimal; V(null) when not retrieved.
      type: str
      returned: success
      sample: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
    subject:
      description: Subject distinguished name (RFC 4514); V(null) when not retrieved.
      type: str
      returned: success
      sample: 2.5.4.5=TINPL-1234563218,C=PL,2.5.4.42=Jan,2.5.4.4=Kowalski,CN=Jan Kowalski
    public_key_sha256:
      description: SHA-256 of the certificate's public key (DER SubjectPublicKeyInfo), lower-case hexadecimal.
      type: str
      returned: success
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
certificate_pem:
  description: The certificate in PEM form (single form). Never the key.
  returned: when O(return_content=true) in the single form
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
reference_number:
  description:
    - Reference number of this run's enrollment (single form) while it is pending, or when it was sent or
      resumed and its certificate installed in this run; else V(null) (also for a certificate found by
      reconciliation).
  returned: always
  type: str
  sample: 20251010-EH-1B6C9EB000-4B15D3AEB9-89
superseded:
  description:
    - The certificates replaced by this run's renewals (also in each RV(certificates[].superseded)).
    - Revoked when O(revoke_superseded) is true (by default for V(authentication)); a superseded V(offline)
      certificate stays active until RV(superseded[].valid_to) by default (QR codes II in circulation).
  returned: always
  type: list
  elements: dict
  contains:
    serial_number:
      description: Serial number of the superseded certificate.
      type: str
    type:
      description: Its type.
      type: str
    valid_to:
      description: End of its validity as KSeF lists it (UTC, ISO 8601, whole seconds).
      type: str
    revoked:
      description: Whether this run revoked it (in check mode, would revoke it).
      type: bool
  sample: [{serial_number: 01F2A3B4C5D6E7F8, type: offline, valid_to: '2027-03-01T10:00:00+00:00', revoked: false}]
revoked:
  description:
    - Serial numbers this run revoked (superseded ones and, with O(state=absent), the matches).
    - Includes a serial the run saw active for which KSeF answered that it is no longer active (KSeF 25009), as its
      status changed during this run, usually because the answer to this run's own revoke was lost and the
      request was repeated.
    - A serial KSeF does not know (KSeF 25008) is in RV(already_revoked) instead.
  returned: always
  type: list
  elements: str
  sample: [01F2A3B4C5D6E7F8]
already_revoked:
  description:
    - Serial numbers this run was to revoke but KSeF answered that it does not know them (KSeF 25008).
    - The run does not fail for them (the certificate is not active, as intended). Not in RV(revoked).
  returned: always
  type: list
  elements: str
  sample: []
superseded_login:
  description:
    - Superseded serial numbers this run did not revoke because the run logged in with them and the new
      certificate and key did not reach the place the next login reads (see O(revoke_superseded)).
    - Revoke them with M(ksef.certificates.ksef_certificate_revoke) once the login uses the new certificate.
  returned: always
  type: list
  elements: str
  sample: [01F2A3B4C5D6E7F8]
hold:
  description: A due renewal the run did not send, else V(null) - C(state) (V(deferred), V(blocked)), C(reason) (V(call_budget), V(certificate_quota),
    V(enrollment_quota)), C(outage_at) (the certificate in use ends), C(retry_at) (a later run can renew it from then), C(message) (what to do).
  returned: always
  type: dict
backup_files:
  description: Backup copies made (O(backup=true)).
  returned: always
  type: list
  elements: str
  sample: [/etc/ksef/erp-production.pem.12345.2026-01-10@12:00:00~]
certificates:
  description: One entry per declared certificate (also in the single form), in declaration order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Certificate name.
      type: str
      returned: always
      sample: erp-auth
    type:
      description: Certificate type.
      type: str
      returned: always
      sample: authentication
    state:
      description: Declared state.
      type: str
      returned: always
      sample: present
    action:
      description: What happened to this certificate, see RV(action).
      type: str
      returned: always
      sample: none
    reason:
      description: Why, see RV(reason).
      type: str
      returned: always
      sample: healthy
    changed:
      description: Whether this certificate (in KSeF or on disk) changed.
      type: bool
      returned: always
      sample: false
    certificate:
      description: Summary of the certificate, same keys as RV(certificate); V(null) when none is known.
      type: dict
      returned: always
      sample: {"serial_number": "01F2A3B4C5D6E7F8", "status": "active", "days_remaining": 702}
    reference_number:
      description: Enrollment reference number while pending or when this run resumed it, else V(null).
      type: str
      returned: always
      sample: 20251010-EH-1B6C9EB000-4B15D3AEB9-89
    superseded:
      description: The certificates this certificate's renewal replaced, as in RV(superseded).
      type: list
      elements: dict
      returned: always
      sample: []
    revoked:
      description: Serial numbers this run revoked for this certificate.
      type: list
      elements: str
      returned: always
      sample: []
    already_revoked:
      description: Serial numbers of this certificate KSeF did not know when revoked, see RV(already_revoked).
      type: list
      elements: str
      returned: always
      sample: []
    superseded_login:
      description: Superseded serial numbers of this certificate left active, see RV(superseded_login).
      type: list
      elements: str
      returned: always
      sample: []
    proof:
      description: The new certificate's proof before any revocation (see O(revoke_superseded) and O(valid_from)), else V(null).
      type: dict
      returned: always
      sample: {serial_number: 01F2A3B4C5D6E7F9, method: login, proven: true, reason: null, valid_from: null}
    hold:
      description: See RV(hold).
      type: dict
      returned: always
    certificate_pem:
      description: The certificate in PEM form (V(null) when none is known yet). Never the key.
      type: str
      returned: when O(return_content=true)
      sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
    private_key_path:
      description: The private key file, if any.
      type: str
      returned: always
      sample: /etc/ksef/erp-auth.key
    certificate_path:
      description: The certificate file, if any.
      type: str
      returned: always
      sample: /etc/ksef/erp-auth.pem
    pkcs12_path:
      description: The PKCS#12 file, if any.
      type: str
      returned: always
      sample: null
    state_path:
      description: The state file used for crash safety, if any.
      type: str
      returned: always
      sample: /etc/ksef/erp-auth.key.ksef-pending.json
    backup_files:
      description: Backup copies made for this certificate.
      type: list
      elements: str
      returned: always
      sample: []
    removed_files:
      description: Files removed (O(state=absent) with O(remove_files=true)).
      type: list
      elements: str
      returned: always
      sample: []
api_calls:
  description: Number of HTTP requests sent to KSeF (login included).
  returned: always
  type: int
  sample: 6
budget:
  description:
    - The call budget of the run's work after the query (in check mode the prediction), planned before anything
      is sent against the rate limits of each KSeF endpoint counter (per second, minute and hour). A plan needing
      more calls of one endpoint than its hourly limit allows fails before any enrollment is sent and says how long
      it would have to wait.
  returned: success
  type: dict
  contains:
    calls:
      description: Expected calls per endpoint (C(METHOD route)); issued certificates are found by query pages and
        retrieved 10 per call.
      type: dict
      returned: success
      sample: {"POST /certificates/enrollments": 15, "POST /certificates/query": 2, "POST /certificates/retrieve": 2}
    expected_seconds:
      description: Expected duration of the planned calls, the wait for the rate limits and issuing included.
      type: float
      returned: success
      sample: 61.2
    fits_hour:
      description: Whether every endpoint's calls fit its hourly limit.
      type: bool
      returned: success
      sample: true
    limits_source:
      description: Where the limits come from - V(published), V(GET /rate-limits) (read once when the run has work),
        with V(+429) once a 429 answer taught a lower limit.
      type: str
      returned: success
      sample: GET /rate-limits
quota:
  description: Limits before the run (C(certificate_limit), C(certificates_left), C(enrollment_limit), C(enrollments_left)), the
    renewal C(waves) (in check mode predicted), C(waves_sent), C(enrollments_needed), C(deferred), C(blocked) (C(reason), C(outage_at)),
    C(released_offline), and the C(forecast) of the coming renewals (C(active), C(limit), C(peak_active), C(peak_date), C(outages));
    see O(quota_forecast). V(null) when the run did not read C(GET /certificates/limits).
  returned: success
  type: dict
system_warnings:
  description:
    - KSeF's C(X-System-Warning) entries of this run, each once (see O(system_warnings)); empty when there were none.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: Warning code, e.g. C(sig-001); V(null) when KSeF sent a text without a code.
      type: str
    text:
      description: Warning text.
      type: str
    endpoint:
      description: The request that got the warning.
      type: str
  sample: [{code: sig-001, text: Format podpisu niezgodny z akceptowanymi profilami XAdES, endpoint: POST /auth/xades-signature}]
'''


from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine.converge import Converger
from ansible_collections.ksef.certificates.plugins.module_utils._crypto import serial_hex
from ansible_collections.ksef.certificates.plugins.module_utils._login import LoginCertificate
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.plugins.module_utils._rules import CERTIFICATE_TYPES, DEFAULT_KEY_TYPE, DEFAULT_RENEW_BEFORE_DAYS, KEY_TYPES


def certificate_options(with_defaults):
    """Per-certificate options; the list items get no defaults so the top-level values can fill them."""
    def default(value):
        return value if with_defaults else None

    options = dict(
        type=dict(type='str', choices=list(CERTIFICATE_TYPES)),
        state=dict(type='str', choices=['present', 'absent'], default=default('present')),
        private_key_path=dict(type='str', no_log=False),
        private_key_type=dict(type='str', choices=list(KEY_TYPES), default=default(DEFAULT_KEY_TYPE), no_log=False),
        private_key_passphrase=dict(type='str', no_log=True),
        csr_path=dict(type='str'), csr_content=dict(type='str'),
        certificate_path=dict(type='str'), pkcs12_path=dict(type='str'),
        pkcs12_passphrase=dict(type='str', no_log=True), pkcs12_unencrypted=dict(type='bool', default=default(False)),
        state_path=dict(type='str'),
        renew_before_days=dict(type='int', default=default(DEFAULT_RENEW_BEFORE_DAYS)),
        force=dict(type='bool', default=default(False)),
        replace_missing_key=dict(type='bool', default=default(False), no_log=False),
        valid_from=dict(type='str'),
        revoke_superseded=dict(type='bool'), caller_revokes_superseded=dict(type='bool', default=default(False)),  # the first None: by type
        revocation_reason=dict(type='str', choices=['unspecified', 'superseded', 'key_compromise'], default=default('unspecified')),
        remove_files=dict(type='bool', default=default(False)), backup=dict(type='bool', default=default(False)),
        backup_keep=dict(type='int', default=default(_crypto.DEFAULT_BACKUP_KEEP)), return_content=dict(type='bool', default=default(False)),
        wait=dict(type='bool', default=default(True)), wait_timeout=dict(type='int', default=default(300)),
        key_backend=dict(type='str', choices=['file', 'pkcs11'], default=default('file')),
        pkcs11_module=dict(type='path'), pkcs11_token_label=dict(type='str', no_log=False),
        pkcs11_pin=dict(type='str', no_log=True), pkcs11_key_label=dict(type='str', no_log=False),
    )
    for spec in options.values():
        if spec.get('default', 'unset') is None:
            del spec['default']
    return options


def argument_spec():
    item_options = certificate_options(with_defaults=False)
    item_options['name'] = dict(type='str', required=True)
    spec = certificate_options(with_defaults=True)
    spec.update(
        name=dict(type='str'), certificates=dict(type='list', elements='dict', options=item_options),
        lock_timeout=dict(type='int', default=60),
        quota_forecast=dict(type='bool', default=False), release_offline_predecessors=dict(type='bool', default=False),
    )
    return spec


MUTUALLY_EXCLUSIVE = [('name', 'certificates'), ('csr_path', 'csr_content')]
REQUIRED_ONE_OF = [('name', 'certificates')]


def login_certificate(ksef):
    """The certificate of a signature login (its serial and files), None for token logins."""
    credentials = ksef.authenticator.credentials if not ksef.params.get('access_token') else None
    if credentials is None:
        return None
    return LoginCertificate.from_params(ksef.params, serial_hex(credentials.certificate))


def run_module(ksef):
    converger = Converger(ksef.module, lambda: ksef.api, ksef.params, login=login_certificate(ksef))
    return converger.run()


def main():
    ksef = KsefModule(argument_spec=argument_spec(), supports_check_mode=True, add_file_common_args=True,
                      mutually_exclusive=MUTUALLY_EXCLUSIVE, required_one_of=REQUIRED_ONE_OF)
    if not _crypto.HAS_CRYPTOGRAPHY:
        ksef.module.fail_json(msg=missing_required_lib('cryptography'), exception=_crypto.CRYPTOGRAPHY_IMPORT_ERROR)
    ksef.run(run_module)


if __name__ == '__main__':
    main()
