# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The per-certificate options of ksef.certificates.ksef_certificate (top level: the single form, and the
    # defaults of the certificates items).
    DOCUMENTATION = r'''
options:
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
      - This and the other file paths (O(csr_path), O(certificate_path), O(pkcs12_path), O(state_path)) are
        taken literally, so a C($), quote or backtick is part of a file name; only a leading C(~) is expanded.
      - Accepted formats for an existing key are PEM or DER PKCS#8 (plain or encrypted), PKCS#1, SEC1
        and PKCS#12. KSeF accepts RSA keys of exactly 2048 bits and EC keys on P-256.
      - A rotated key is first written to C(<private_key_path>.next) and moved over O(private_key_path)
        only with the new certificate.
      - Mutually exclusive with O(csr_path) and O(csr_content); one of them is required for O(state=present).
    type: str
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
    type: str
  csr_content:
    description: Like O(csr_path), with the CSR given inline (PEM, or base64 of DER).
    type: str
  certificate_path:
    description:
      - Where the certificate is written (PEM). Mode C(0644) unless O(mode) is given.
      - Optional; without it the certificate is only returned (with O(return_content=true)).
    type: str
  pkcs12_path:
    description:
      - Also write a PKCS#12 file with the key and the certificate (mode C(0600)). Needs O(private_key_path).
    type: str
  pkcs12_passphrase:
    description:
      - Passphrase of the O(pkcs12_path) file (AES-256-CBC, PBKDF2 with HMAC-SHA256, a SHA-256 MAC).
      - Required with O(pkcs12_path) unless O(pkcs12_unencrypted=true).
    type: str
  pkcs12_unencrypted:
    description:
      - Write the O(pkcs12_path) file without a passphrase, so that anyone who can read it has the private key.
      - Without this opt-in, O(pkcs12_path) without O(pkcs12_passphrase) fails before any API call.
    type: bool
    default: false
  state_path:
    description:
      - JSON file that records an enrollment in flight (see B(Crash safety) above). It holds no secret and
        is removed when the certificate is installed.
      - Defaults to C(<private_key_path>.ksef-pending.json), else C(<certificate_path>.ksef-pending.json);
        without any of these paths there is no state file.
    type: str
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
  replace_missing_key:
    description:
      - "What to do when the file in O(private_key_path) does not exist while KSeF still lists an active
        certificate of the exact name and type. Nothing then proves whether that certificate belongs to a key
        that was lost (for example a key directory that did not survive an AWX/AAP job, whose execution
        environment keeps no files), and enrolling again on every such run would spend the subject's
        enrollment quota and leave the old certificates active."
      - V(false) (the default) fails before anything is sent, saying to put the key back (keep its directory on
        persistent storage) or to set this option. Check mode predicts the same failure.
      - V(true) enrolls a new key and certificate and supersedes the active ones (with a warning), as for a
        key mismatch. O(force) does not imply it.
      - Does not apply to the CSR form (the key lives where the CSR was made) nor to O(key_backend=pkcs11).
    type: bool
    default: false
  valid_from:
    description:
      - Start of validity requested from KSeF (ISO 8601 date-time), passed through to the enrollment.
      - Only used when the module enrolls; it does not make an existing certificate due.
      - When it lies ahead of a renewal, the new certificate is installed, proven and the old one revoked only by a run
        after that moment (RV(certificates[].proof) gives it).
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
      - Proven rotation. Nothing is revoked before the new certificate has proven itself - an V(authentication) one by
        a login with the new pair, an V(offline) one by a QR code II signature its certificate verifies (RSASSA-PSS or
        ECDSA P1363). If it fails the predecessors stay active (with a warning and RV(certificates[].proof)). The
        CSR form cannot prove (the key is elsewhere); it revokes as before and says so in RV(certificates[].proof).
      - A later run that finds the declared certificate installed and older active certificates of the same name and
        type (kept because the proof failed, or because revoke_superseded was false then) proves the declared
        certificate and then revokes them (RV(action=revoked), RV(reason=proven), RV(certificates[].proof)); check
        mode predicts it. The CSR form leaves them alone.
    type: bool
  caller_revokes_superseded:
    description:
      - The caller revokes the superseded certificates itself, once the new certificate has proven itself. The
        C(ksef.certificates.ksef_deploy) role does so for keys kept on hosts (it sets this option by certificate
        type, unless the declaration's C(revoke_superseded) says otherwise).
      - The module then revokes none of them (O(revoke_superseded) is false unless set, and V(true) with this
        option fails before any API call), but plans its renewal waves and C(quota.forecast) as if their slots
        came back. So a renewal that keeps its slot (V(offline)) does not take the last free slot while one
        whose slot comes back is due; the caller's revocation frees the slot its next call uses.
      - A run sends the first wave, the one the free slots take, and holds the rest for a slot (RV(certificates[].hold)
        reason V(certificate_quota)) until the caller has revoked and calls again. Check mode predicts every wave as if
        the caller revoked after each one, as the role's check mode does.
    type: bool
    default: false
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
'''
