# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Proven rotation for a successor whose key stays on a managed host (ksef_certificate_proof).

The key never moves. The proof has two steps on the controller around one signature on the host:

- prepare(): per successor certificate, the bytes the host signs and how (a scheme of _rules.SIGNATURE_SCHEMES):
  - Authentication: POST /auth/challenge, the AuthTokenRequest with the successor certificate and its XAdES
    signature without SignatureValue (_xades.prepare_signature); the host signs the SignedInfo (XMLDSig form);
  - Offline: the QR code II string (_proof.qr_proof_text); the host signs it (RSASSA-PSS or ECDSA P1363);
  - a certificate not valid yet proves nothing (KSeF refuses its login with 21115): unproven, with the date.
- the host signs (ksef_deploy_host operation=sign);
- finish(): the controller checks the signature with the certificate, then
  - Authentication: fills in the SignatureValue, POST /auth/xades-signature, status polled to 200, tokens redeemed,
    session closed: the one auth layer (KsefAuthenticator.complete_login), exactly as a login of a key file;
  - Offline: the QR code II link verifies with the certificate (_proof.verify_qr_link), as KSeF's page does.

Each entry is a plain dict (the module's `proofs`): what prepare() made travels through the play to the host
and back into finish(). A proof that fails is an outcome (proven false, with the reason), not an error.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.serialization import Encoding
except ImportError:  # pragma: no cover - the module reports the missing library first
    pass

from ansible_collections.ksef.certificates.plugins.module_utils import _xades
from ansible_collections.ksef.certificates.plugins.module_utils._engine import proof as _proof
from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_base import AuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._crypto import (
    certificate_to_pem,
    key_type_of,
    load_certificate,
    serial_hex,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError, KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    format_datetime,
    qr_code_ii_scheme,
    xmldsig_scheme,
)

LOGIN, QR_CODE_II = 'login', 'qr_code_ii'


def _b64(data):
    return base64.b64encode(data).decode('ascii')


def _unb64(text, what):
    try:
        return base64.b64decode((text or '').encode('ascii'), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _proof.ProofFailed('%s is not Base64' % what)


def _certificate(entry):
    try:
        return load_certificate((entry.get('certificate') or '').encode('ascii'))
    except (ValueError, UnicodeEncodeError, KsefError):
        raise KsefInputError('certificate of proof %r is not a PEM certificate' % (entry.get('id') or '',))


def method_of(certificate_type):
    return LOGIN if certificate_type == 'authentication' else QR_CODE_II


def _outcome(entry, proven, reason=None, valid_from=None):
    entry.update(proven=proven, reason=reason, valid_from=format_datetime(valid_from) if valid_from else None)
    return entry


def prepare(gateway, connection, certificates, now, check_mode=False):
    """The proofs to sign: one entry per item of `certificates` ({id, type, certificate (PEM)}).

    Each entry: id, type, serial_number, method, proven (None: to be signed and finished; False: cannot be proven
    now, with reason and valid_from), and for a proof to sign: scheme, data (Base64 bytes the host signs),
    document (Base64 XAdES without SignatureValue, login) or text (the QR code II string).
    gateway: KsefAuthApi (POST /auth/challenge, safe to repeat); connection: ConnectionOptions with the context."""
    entries = []
    # Every certificate is read before the first challenge: bad input fails before any API call.
    for item, certificate in [(item, _certificate(item)) for item in certificates]:
        entry = {'id': item.get('id') or '', 'type': item['type'], 'serial_number': serial_hex(certificate),
                 'method': method_of(item['type']), 'certificate': certificate_to_pem(certificate).decode('ascii'),
                 'scheme': None, 'data': None, 'document': None, 'text': None}
        entries.append(entry)
        start = _proof.not_valid_yet(certificate, now)
        if start is not None:
            _outcome(entry, False, 'certificate %s is valid only from %s' % (entry['serial_number'], format_datetime(start)),
                     start)
            continue
        if check_mode:
            _outcome(entry, None, 'check mode: certificate %s would be proven' % entry['serial_number'])
            continue
        key_type = key_type_of(certificate.public_key())
        if entry['method'] == LOGIN:
            challenge = gateway.challenge()
            root = _xades.build_auth_token_request(challenge['challenge'], connection.context_type, connection.context_id,
                                                   'certificate_subject', connection.allowed_ips)
            signed_info = _xades.prepare_signature(root, certificate, certificate.public_bytes(Encoding.DER), key_type)
            entry.update(scheme=xmldsig_scheme(key_type), data=_b64(signed_info),
                         document=_b64(_xades.unsigned_document(root)))
        else:
            text = _proof.qr_proof_text(connection.base_url, connection.context_type, connection.context_id, certificate, now)
            entry.update(scheme=qr_code_ii_scheme(key_type), data=_b64(text.encode('utf-8')), text=text)
        _outcome(entry, None)
    return entries


def verify_xmldsig_signature(certificate, data, signature):
    """The host's signature of a SignedInfo verifies with the certificate (RSA PKCS#1 v1.5 or raw r||s ECDSA,
    SHA-256); ProofFailed otherwise, before anything is sent to KSeF."""
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return
        size = (public_key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise InvalidSignature()
        der = encode_dss_signature(int.from_bytes(signature[:size], 'big'), int.from_bytes(signature[size:], 'big'))
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise _proof.ProofFailed('the signature the host made does not verify with certificate %s: the key on the host '
                                 'is not that certificate\'s key' % serial_hex(certificate))


class HostSignedXades(AuthMethod):
    """The XAdES login whose document was signed on a managed host: its start is sent by finish() itself."""
    NAME = 'xades'

    @classmethod
    def applies(cls, params):
        return False

    def start(self, gateway, challenge, connection, now):
        raise KsefError('a login signed on a host is sent by the proof itself, not started again')


def _login(client, connection, document):
    """POST the signed document, poll its status to 200, redeem, close: KsefAuthenticator's own steps."""
    authenticator = KsefAuthenticator.certificate_owner(client, connection, HostSignedXades({}))
    try:
        authenticator.complete_login(authenticator.gateway.xades_signature(document, connection.verify_certificate_chain))
    finally:
        authenticator.close()


def finish_one(client, connection, entry):
    """Prove one prepared entry with its `signature` (Base64, from the host); ProofFailed or KsefError when not."""
    certificate = _certificate(entry)
    signature = _unb64(entry.get('signature'), 'the signature')
    if entry['method'] == LOGIN:
        root, signed_info = _xades.parse_prepared(_unb64(entry.get('document'), 'the prepared document'))
        if signed_info != _unb64(entry.get('data'), 'data') or not _xades.references_match(root):
            raise _proof.ProofFailed('the prepared document was changed after the host signed it')
        verify_xmldsig_signature(certificate, signed_info, signature)
        _login(client, connection, _xades.attach_signature_value(root, signature))
    else:
        text = entry.get('text') or ''
        _proof.verify_qr_link(certificate, _proof.qr_code_ii_link(text, signature), text)


def finish(client, connection, proofs, check_mode=False):
    """The outcome of each prepared proof: proven true, or false with the reason (never an error for one proof)."""
    done = []
    for prepared in proofs:
        entry = dict(prepared)
        entry.pop('signature', None)
        if prepared.get('proven') is not None or check_mode:
            done.append(dict(entry, proven=prepared.get('proven') if not check_mode else None))
            continue
        serial = entry.get('serial_number') or ''
        if not prepared.get('signature'):
            done.append(_outcome(entry, False, 'certificate %s was not signed for on its host (%s)'
                                 % (serial, prepared.get('sign_failure') or 'the host did not sign')))
            continue
        try:
            finish_one(client, connection, prepared)
        except (KsefError, _proof.ProofFailed) as exc:
            done.append(_outcome(entry, False, 'certificate %s did not prove itself: %s' % (serial, exc)))
            continue
        done.append(_outcome(entry, True))
    return done
