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
  certificates:
    description:
      - Manage several certificates in one task (one login, one query for the whole set).
      - Each item takes the per-certificate options; top-level options act as defaults for the items.
      - A name and type pair may appear only once, and no two items may share a file.
    type: list
    elements: dict
    suboptions:
      name:
        description: See O(name).
        type: str
        required: true
      type:
        description: See O(type). Defaults to the top-level O(type).
        type: str
        choices: [authentication, offline]
      state:
        description: See O(state). Defaults to the top-level O(state).
        type: str
        choices: [present, absent]
      private_key_path:
        description: See O(private_key_path).
        type: path
      key_backend:
        description: See O(key_backend). Defaults to the top-level value.
        type: str
        choices: [file, pkcs11]
      pkcs11_module:
        description: See O(pkcs11_module). Defaults to the top-level value.
        type: path
      pkcs11_token_label:
        description: See O(pkcs11_token_label). Defaults to the top-level value.
        type: str
      pkcs11_pin:
        description: See O(pkcs11_pin). Defaults to the top-level value.
        type: str
      pkcs11_key_label:
        description: See O(pkcs11_key_label). Defaults to the item's O(certificates[].name).
        type: str
      private_key_type:
        description: See O(private_key_type). Defaults to the top-level value.
        type: str
        choices: [ec, rsa]
      private_key_passphrase:
        description: See O(private_key_passphrase). Defaults to the top-level value.
        type: str
      csr_path:
        description: See O(csr_path).
        type: path
      csr_content:
        description: See O(csr_content).
        type: str
      certificate_path:
        description: See O(certificate_path).
        type: path
      pkcs12_path:
        description: See O(pkcs12_path).
        type: path
      pkcs12_passphrase:
        description: See O(pkcs12_passphrase). Defaults to the top-level value.
        type: str
      state_path:
        description: See O(state_path).
        type: path
      renew_before_days:
        description: See O(renew_before_days). Defaults to the top-level value.
        type: int
      force:
        description: See O(force). Defaults to the top-level value.
        type: bool
      valid_from:
        description: See O(valid_from). Defaults to the top-level value.
        type: str
      revoke_superseded:
        description: See O(revoke_superseded). Defaults to the top-level value, else by type.
        type: bool
      revocation_reason:
        description: See O(revocation_reason). Defaults to the top-level value.
        type: str
        choices: [unspecified, superseded, key_compromise]
      remove_files:
        description: See O(remove_files). Defaults to the top-level value.
        type: bool
      backup:
        description: See O(backup). Defaults to the top-level value.
        type: bool
      backup_keep:
        description: See O(backup_keep). Defaults to the top-level value.
        type: int
      return_content:
        description: See O(return_content). Defaults to the top-level value.
        type: bool
      wait:
        description: See O(wait). Defaults to the top-level value.
        type: bool
      wait_timeout:
        description: See O(wait_timeout). Defaults to the top-level value.
        type: int
  state:
    description:
      - V(present) makes sure a healthy certificate with the declared name, type and key exists in KSeF
        (and in the local files).
      - V(absent) revokes the active certificates of this name and type (only those with the declared
        public key when a key file or CSR is given and readable), with O(revocation_reason); with
        O(remove_files=true) it also removes the local files. A second run changes nothing.
    type: str
    choices: [present, absent]
    default: present
  private_key_path:
    description:
      - Private key file on the controller (where the module runs). Generated (O(private_key_type)) when
        missing, written atomically with mode C(0600) from the start, optionally encrypted with
        O(private_key_passphrase).
      - Accepted formats for an existing key are PEM or DER PKCS#8 (plain or encrypted), PKCS#1, SEC1
        and PKCS#12. KSeF accepts RSA keys of exactly 2048 bits and EC keys on P-256.
      - A rotated key is first written to C(<private_key_path>.next) and moved over O(private_key_path)
        only with the new certificate.
      - Mutually exclusive with O(csr_path) and O(csr_content); one of them is required for O(state=present).
    type: path
  key_backend:
    description:
      - Where the key pair of the certificate lives. V(file) is O(private_key_path) (or the CSR's key).
      - V(pkcs11) generates the key pair inside a PKCS#11 token (smart card, USB token, HSM) as sensitive and
        never extractable, has the token sign the CSR, writes the certificate to O(certificate_path) and
        stores it in the token next to its key. A renewal makes a new key pair with the same label; the
        superseded key pair is deleted from the token only after the new certificate is installed.
        O(certificate_path) is required; O(private_key_path), O(csr_path), O(csr_content) and O(pkcs12_path)
        cannot be used. V(absent) leaves the token objects in place.
      - Needs the C(PyKCS11) Python library.
    type: str
    choices: [file, pkcs11]
    default: file
  pkcs11_module:
    description: Path to the PKCS#11 library of the token for O(key_backend=pkcs11).
    type: path
  pkcs11_token_label:
    description: Label of the token for O(key_backend=pkcs11).
    type: str
  pkcs11_pin:
    description: User PIN of the token for O(key_backend=pkcs11).
    type: str
  pkcs11_key_label:
    description:
      - Label (C(CKA_LABEL)) of the key pair and certificate in the token for O(key_backend=pkcs11).
      - Defaults to the certificate's O(name). For a self-renewing Authentication certificate, use the same
        label as O(auth_pkcs11_key_label).
    type: str
  private_key_type:
    description: Type of a generated key. V(ec) is NIST P-256 (recommended by KSeF), V(rsa) is RSA 2048.
    type: str
    choices: [ec, rsa]
    default: ec
  private_key_passphrase:
    description:
      - Passphrase of O(private_key_path). Generated keys are written encrypted with it (PKCS#8, best
        available encryption).
    type: str
  csr_path:
    description:
      - A PKCS#10 certificate signing request made elsewhere (PEM or DER), for example on the target host
        so the private key never moves. The declared public key is the CSR's.
      - The CSR subject must carry exactly the attributes of C(/certificates/enrollments/data); the module
        checks this before enrolling.
    type: path
  csr_content:
    description: Like O(csr_path), with the CSR given inline (PEM, or base64 of DER).
    type: str
  certificate_path:
    description:
      - Where the certificate is written (PEM). Mode C(0644) unless O(mode) is given.
      - Optional; without it the certificate is only returned (with O(return_content=true)).
    type: path
  pkcs12_path:
    description:
      - Also write a PKCS#12 file with the key and the certificate (mode C(0600)). Needs O(private_key_path).
    type: path
  pkcs12_passphrase:
    description: Passphrase of the O(pkcs12_path) file; without it the file is not encrypted.
    type: str
  state_path:
    description:
      - JSON file that records an enrollment in flight (see B(Crash safety) above). It holds no secret and
        is removed when the certificate is installed.
      - Defaults to C(<private_key_path>.ksef-pending.json), else C(<certificate_path>.ksef-pending.json);
        without any of these paths there is no state file.
    type: path
  renew_before_days:
    description:
      - Renew when the certificate's validity (C(validTo) as KSeF reports it) ends within this many days.
    type: int
    default: 30
  force:
    description:
      - Enroll a new certificate even if a healthy one exists (the old one is then superseded), and stop
        waiting for an unconfirmed earlier enrollment (see B(Crash safety)).
    type: bool
    default: false
  valid_from:
    description:
      - Start of validity requested from KSeF (ISO 8601 date-time), passed through to the enrollment.
      - Only used when the module enrolls; it does not make an existing certificate due.
    type: str
  revoke_superseded:
    description:
      - After a renewal is installed, revoke the other active certificates of the same name and type with
        reason V(superseded).
      - When not set, the default depends on the type. V(authentication) certificates are revoked when
        superseded (the new certificate replaces them for logging in).
      - V(offline) certificates are B(not) revoked by default. An Offline certificate signs QR code II on invoices
        issued offline, and KSeF checks the code against the certificate's state when someone scans it, so
        revoking it would make the codes on invoices already in circulation fail verification. A superseded
        Offline certificate stays active until it expires and is returned in RV(superseded) with its
        RV(superseded[].valid_to) and RV(superseded[].revoked=false).
      - An explicit value wins for either type. A lost or compromised key is revoked with reason
        V(key_compromise) through M(ksef.certificates.ksef_certificate_revoke) or the revoke playbook.
      - The certificate this run logged in with is revoked only when the login reads the files this task has just
        written (O(auth_certificate_path) and O(auth_private_key_path) are O(certificate_path) and
        O(private_key_path), or O(auth_certificate_path) is O(pkcs12_path)). Otherwise the next login would use a
        revoked certificate (under AWX/AAP the login comes from a credential). It stays active, the run warns, and
        its serial is in RV(superseded_login). See docs/awx/README.md for the loop that updates the credential
        and then revokes it.
    type: bool
  revocation_reason:
    description: Reason sent when O(state=absent) revokes.
    type: str
    choices: [unspecified, superseded, key_compromise]
    default: unspecified
  remove_files:
    description:
      - With O(state=absent), also remove O(certificate_path), O(pkcs12_path), O(private_key_path), the
        C(.next) key and the state file.
    type: bool
    default: false
  backup:
    description:
      - Keep a timestamped copy of every file the module replaces or removes, next to it, named
        C(<file>.<pid>.<YYYY-MM-DD@HH:MM:SS>~).
      - A backup is created with mode C(0600) before anything is written to it (it may hold a private key),
        whatever the mode of the file it copies.
    type: bool
    default: false
  backup_keep:
    description:
      - With O(backup=true), how many backups of each file to keep; after a new backup is made, older ones
        of the same file beyond this number are removed (backups made by earlier versions, named the same
        way, included).
      - Must be 1 or more.
    type: int
    default: 5
  return_content:
    description:
      - Return the certificate in PEM form in RV(certificate_pem) and RV(certificates[].certificate_pem).
        The private key is never returned.
    type: bool
    default: false
  wait:
    description:
      - Wait for KSeF to issue an enrolled certificate (polling every 2 seconds). When V(false), or when
        O(wait_timeout) runs out, the module returns RV(action=pending) with the RV(reference_number); the
        next run resumes it.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for an enrollment to be processed.
    type: int
    default: 300
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
      V(revoked) O(state=absent) revoked certificates; V(removed) O(state=absent) removed files only.
  returned: always
  type: str
  choices: [none, enrolled, renewed, installed, pending, revoked, removed, multiple]
  sample: enrolled
reason:
  description:
    - Why (single form only, else V(null)) - V(healthy), V(missing), V(key_mismatch), V(renewal_window),
      V(expired), V(revoked), V(blocked), V(force), V(resumed), V(reconciled), V(present), V(absent).
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
from ansible_collections.ksef.certificates.plugins.module_utils._converge import Converger
from ansible_collections.ksef.certificates.plugins.module_utils._crypto import serial_hex
from ansible_collections.ksef.certificates.plugins.module_utils._login import LoginCertificate
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.plugins.module_utils._rules import DEFAULT_RENEW_BEFORE_DAYS


def certificate_options(with_defaults):
    """Per-certificate options; the list items get no defaults so the top-level values can fill them."""
    def default(value):
        return value if with_defaults else None

    options = dict(
        type=dict(type='str', choices=['authentication', 'offline']),
        state=dict(type='str', choices=['present', 'absent'], default=default('present')),
        private_key_path=dict(type='path', no_log=False),
        private_key_type=dict(type='str', choices=['ec', 'rsa'], default=default('ec'), no_log=False),
        private_key_passphrase=dict(type='str', no_log=True),
        csr_path=dict(type='path'),
        csr_content=dict(type='str'),
        certificate_path=dict(type='path'),
        pkcs12_path=dict(type='path'),
        pkcs12_passphrase=dict(type='str', no_log=True),
        state_path=dict(type='path'),
        renew_before_days=dict(type='int', default=default(DEFAULT_RENEW_BEFORE_DAYS)),
        force=dict(type='bool', default=default(False)),
        valid_from=dict(type='str'),
        revoke_superseded=dict(type='bool'),   # None: by type (Declaration)
        revocation_reason=dict(type='str', choices=['unspecified', 'superseded', 'key_compromise'],
                               default=default('unspecified')),
        remove_files=dict(type='bool', default=default(False)),
        backup=dict(type='bool', default=default(False)),
        backup_keep=dict(type='int', default=default(_crypto.DEFAULT_BACKUP_KEEP)),
        return_content=dict(type='bool', default=default(False)),
        wait=dict(type='bool', default=default(True)),
        wait_timeout=dict(type='int', default=default(300)),
        key_backend=dict(type='str', choices=['file', 'pkcs11'], default=default('file')),
        pkcs11_module=dict(type='path'),
        pkcs11_token_label=dict(type='str', no_log=False),
        pkcs11_pin=dict(type='str', no_log=True),
        pkcs11_key_label=dict(type='str', no_log=False),
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
        name=dict(type='str'),
        certificates=dict(type='list', elements='dict', options=item_options),
        lock_timeout=dict(type='int', default=60),
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
    ksef = KsefModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        add_file_common_args=True,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_one_of=REQUIRED_ONE_OF,
    )
    if not _crypto.HAS_CRYPTOGRAPHY:
        ksef.module.fail_json(msg=missing_required_lib('cryptography'), exception=_crypto.CRYPTOGRAPHY_IMPORT_ERROR)
    ksef.run(run_module)


if __name__ == '__main__':
    main()
