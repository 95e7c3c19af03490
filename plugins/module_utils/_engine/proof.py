# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Proven rotation: a predecessor is revoked only after its successor has shown it can do its job.

- An Authentication successor logs in: challenge, AuthTokenRequest signed (XAdES) with the new key and
  certificate, status 200, tokens redeemed, session closed. The login is the collection's one auth layer
  (KsefApi.prove_login: KsefAuthenticator with the new pair as its signer).
- An Offline successor signs a QR code II (KOD II) string with the new key, and the signature is verified
  with the new certificate, exactly as KSeF's verification page does (SPEC 13.1): RSASSA-PSS (SHA-256, MGF1
  SHA-256, salt 32) or ECDSA P-256 SHA-256 in IEEE P1363 form (r||s), Base64URL without padding in the link.
- A successor whose validity has not started proves nothing (KSeF refuses its login with 21115): the rotation
  waits for a later run.

The signer is any object with .key_type ('rsa'|'ec'), .certificate, .certificate_der, .sign(data) (the XMLDSig
form: RSA PKCS#1 v1.5 or raw r||s ECDSA, SHA-256) and, for RSA, .sign_pss(data): _credentials.SignerCredentials
(a key file) and _pkcs11.TokenSigner (a token key). A key kept on a managed host signs through
ksef_deploy_host operation sign (remote_proof.py: the controller builds the bytes and checks the result with
these functions; the scheme names are _rules.SIGNATURE_SCHEMES).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib

from urllib.parse import urlsplit

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - ksef_certificate reports the missing library before any proof
    HAS_CRYPTOGRAPHY = False

from ansible_collections.ksef.certificates.plugins.module_utils._connection import DEFAULT_CONTEXT_TYPE, base_url
from ansible_collections.ksef.certificates.plugins.module_utils._credentials import SignerCredentials
from ansible_collections.ksef.certificates.plugins.module_utils._crypto import certificate_not_before, serial_hex
from ansible_collections.ksef.certificates.plugins.module_utils._der import signature_value
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._pkcs11 import TokenSigner
from ansible_collections.ksef.certificates.plugins.module_utils._rules import QR_CODE_II_PSS_SALT_LENGTH, format_datetime
from ansible_collections.ksef.certificates.plugins.module_utils._xades import CONTEXT_ELEMENTS

# The host of the QR code II verification page per KSeF environment (SPEC 13.1); anything that is not the
# production or demo API (the test environment, an emulator) links to the test page.
QR_HOSTS = {'test': 'qr-test.ksef.mf.gov.pl', 'demo': 'qr-demo.ksef.mf.gov.pl', 'prod': 'qr.ksef.mf.gov.pl'}
API_HOSTS = {'api.ksef.mf.gov.pl': 'prod', 'api-demo.ksef.mf.gov.pl': 'demo'}
P256_FIELD_BYTES = 32
MIN_RSA_BITS = 2048


class ProofFailed(Exception):
    """The successor did not prove itself; str() says why (never a secret)."""


def b64url(data):
    """Base64URL without padding, the form of the hash and the signature in a QR code II link."""
    return base64.urlsafe_b64encode(data).decode('ascii').rstrip('=')


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def qr_host(base_url):
    """The verification page's host for the KSeF API at base_url."""
    host = (urlsplit(base_url).hostname or '').lower()
    return QR_HOSTS[API_HOSTS.get(host, 'test')]


def seller_nip(context_id):
    """The seller NIP of the proof's link: the context's NIP (a NIP, an internal id or a NIP-VAT-UE starts with it)."""
    head = (context_id or '')[:10]
    return head if head.isdigit() else (context_id or '')


def qr_code_ii_text(host, context_type, context_id, nip, serial_number, invoice_sha256):
    """The string an Offline certificate signs: the link up to and including the invoice hash, without
    https:// and without a trailing '/' (SPEC 13.1)."""
    return '%s/certificate/%s/%s/%s/%s/%s' % (host, CONTEXT_ELEMENTS[context_type], context_id, nip, serial_number,
                                              b64url(invoice_sha256))


def qr_code_ii_link(text, signature):
    return 'https://%s/%s' % (text, b64url(signature))


def split_qr_code_ii_link(link):
    """(signed text, signature bytes) of a QR code II link."""
    if not link.startswith('https://'):
        raise ProofFailed('a QR code II link starts with https://, not %r' % link[:20])
    text, dummy, signature = link[len('https://'):].rpartition('/')
    return text, b64url_decode(signature)


def sign_qr(signer, data):
    """The QR code II signature of `data` by `signer`: RSASSA-PSS, or ECDSA as IEEE P1363 r||s (which is the
    raw form XMLDSig wants too, so the login signer's sign() gives it)."""
    if signer.key_type == 'rsa':
        return signer.sign_pss(data)
    return signer.sign(data)


def verify_qr_signature(certificate, text, signature):
    """Verify a QR code II signature of `text` with the certificate's public key as KSeF does; ProofFailed if not."""
    public_key = certificate.public_key()
    data = text.encode('utf-8')
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if public_key.key_size < MIN_RSA_BITS:
                raise ProofFailed('the RSA key has %d bits; KSeF verifies QR codes II with %d or more'
                                  % (public_key.key_size, MIN_RSA_BITS))
            public_key.verify(signature, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=QR_CODE_II_PSS_SALT_LENGTH),
                              hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            if not isinstance(public_key.curve, ec.SECP256R1):
                raise ProofFailed('the EC key is on %s; KSeF verifies QR codes II with P-256' % public_key.curve.name)
            if len(signature) != 2 * P256_FIELD_BYTES:
                raise ProofFailed('the ECDSA signature is %d bytes, not the %d of IEEE P1363 r||s on P-256'
                                  % (len(signature), 2 * P256_FIELD_BYTES))
            public_key.verify(signature_value('ec', signature), data, ec.ECDSA(hashes.SHA256()))
        else:
            raise ProofFailed('the certificate key is neither RSA nor EC')
    except InvalidSignature:
        raise ProofFailed('the QR code II signature does not verify with certificate %s' % serial_hex(certificate))


class QrContext:
    """What a QR code II link names besides the certificate: the verification page's host (from the API URL) and
    the context (type and identifier) the invoices are issued in."""

    def __init__(self, api_url, context_type, context_id):
        self.base_url = api_url
        self.context_type = context_type or DEFAULT_CONTEXT_TYPE
        self.context_id = context_id or ''

    @classmethod
    def from_params(cls, params):
        """From a module's connection options (environment or api_url, context_type, context_id)."""
        return cls(base_url(params), params.get('context_type'), params.get('context_id'))


def qr_proof_text(base_url, context_type, context_id, certificate, now):
    """The QR code II string a successor signs to prove itself: KSeF's layout, with the hash of a proof
    document (the certificate's serial number and the time) in place of an invoice's."""
    serial = serial_hex(certificate)
    invoice = ('ksef.certificates rotation proof %s %s' % (serial, format_datetime(now))).encode('utf-8')
    return qr_code_ii_text(qr_host(base_url), context_type, context_id, seller_nip(context_id), serial,
                           hashlib.sha256(invoice).digest())


def verify_qr_link(certificate, link, text):
    """The link carries `text` and a signature of it that the certificate verifies."""
    signed, signature = split_qr_code_ii_link(link)
    if signed != text:
        raise ProofFailed('the QR code II link does not carry the string that was signed')
    verify_qr_signature(certificate, signed, signature)


def not_valid_yet(certificate, now):
    """The start of the certificate's validity when it is after `now`, else None."""
    start = certificate_not_before(certificate)
    return start if start > now else None


class RotationProof:
    """The outcome of proving one successor: serial_number, method ('login' | 'qr_code_ii'), proven, reason."""

    def __init__(self, serial_number, method, proven, reason=None, valid_from=None):
        self.serial_number = serial_number
        self.method = method
        self.proven = proven
        self.reason = reason
        self.valid_from = valid_from

    def summary(self):
        """The module's `proof` return value."""
        return {'serial_number': self.serial_number, 'method': self.method, 'proven': self.proven,
                'reason': self.reason, 'valid_from': format_datetime(self.valid_from)}


def hold_until_valid(plan, certificate, now, warn):
    """A successor whose validity starts later (valid_from) that replaces a certificate is not installed yet: the
    next login would read a certificate KSeF refuses, and it cannot be proven. The state file keeps the issued
    enrollment; the first run after its start installs it, proves it and revokes the predecessor.

    Marks the plan (action pending, reason not_valid_yet), warns and returns True; False when nothing is held.
    """
    start = not_valid_yet(certificate, now)
    if start is None or not plan.superseded:
        return False
    plan.proof = RotationProof(serial_hex(certificate), 'login' if plan.decl.type == 'authentication' else 'qr_code_ii',
                               False, 'certificate %s is valid only from %s' % (serial_hex(certificate), format_datetime(start)),
                               valid_from=start)
    plan.action = 'pending'
    plan.reason = 'not_valid_yet'
    plan.finished = True
    # Changed only by the run that sent the enrollment; a later run that finds it still not valid changes nothing.
    plan.changed = plan.sent_clock is not None
    warn('Certificate %s (the renewal of %s) is valid only from %s: it is not installed yet and %s stays active. '
         'The first run after %s installs it, proves it and finishes the rotation.'
         % (plan.issued_serial, plan.decl.label, format_datetime(start), ', '.join(plan.superseded),
            format_datetime(start)))
    return True


def prove_offline(context, signer, certificate, now):
    text = qr_proof_text(context.base_url, context.context_type, context.context_id, certificate, now)
    link = qr_code_ii_link(text, sign_qr(signer, text.encode('utf-8')))
    verify_qr_link(certificate, link, text)


def prove_successor(certificate_type, signer, certificate, login, context, now):
    """RotationProof of the successor `certificate` (of `certificate_type`) with `signer` (None: the key is not
    available to this run). login: signer -> None, a login with that signer that raises KsefError when it fails
    (None: no login is possible in this run); context: QrContext."""
    serial = serial_hex(certificate)
    method = 'login' if certificate_type == 'authentication' else 'qr_code_ii'
    start = not_valid_yet(certificate, now)
    if start is not None:
        return RotationProof(serial, method, False, 'certificate %s is valid only from %s' % (serial, format_datetime(start)),
                             valid_from=start)
    if signer is None:
        return RotationProof(serial, method, False, 'the private key of certificate %s is not available to this run '
                             '(a CSR was given), so it could not be proven' % serial)
    try:
        if method == 'login':
            if login is None:
                return RotationProof(serial, method, False, 'this run cannot log in with certificate %s' % serial)
            login(signer)
        else:
            prove_offline(context, signer, certificate, now)
    except (KsefError, ProofFailed) as exc:
        return RotationProof(serial, method, False, 'certificate %s did not prove itself: %s' % (serial, exc))
    return RotationProof(serial, method, True)


def successor_signer(decl, certificate):
    """The installed successor's key and certificate as a signer; None when the key is not here (a CSR)."""
    if decl.uses_token:
        return TokenSigner(decl.keystore.token, decl.token_key, certificate)
    if decl.uses_csr or decl.key is None:
        return None
    return SignerCredentials(certificate, decl.key)


def prove_installed(decl, certificate, login, params, now):
    """RotationProof of the successor ksef_certificate just installed for `decl` (params: the module's options)."""
    return prove_successor(decl.type, successor_signer(decl, certificate), certificate, login,
                           QrContext.from_params(params), now)


def kept_unproven(plan, login, params, now, warn):
    """Prove the successor ksef_certificate just installed for `plan`, once, before its predecessors are revoked.

    Records plan.proof. Returns False when the predecessors may go; True when they stay because the successor did
    not prove itself (the warning says why). A CSR declaration's key is not on the
    controller: its successor cannot be proven here and its predecessors are revoked as before (proof.proven
    false, with the reason).
    """
    serials = [serial for serial in plan.superseded if serial != plan.issued_serial]
    if not serials:
        return False
    plan.proof = prove_installed(plan.decl, plan.install_certificate, login, params, now)
    if plan.proof.proven or plan.decl.uses_csr:
        return False
    warn('%s: %s kept active because %s' % (plan.decl.label, ', '.join(serials), plan.proof.reason))
    return True
