# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Loading of the XAdES signer material: certificate + private key or PKCS#12.

Accepted: PEM or DER certificates; PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys in PEM or DER,
encrypted or not; PKCS#12/PFX bundles. Inline content may be PEM text or Base64 of DER/PKCS#12.
Messages never contain the passphrase or key material.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import re
from typing import Optional, Sequence, Union

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.hazmat.primitives.serialization import pkcs12
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

from ansible_collections.ksef.certificates.plugins.module_utils import _pkcs11
from ansible_collections.ksef.certificates.plugins.module_utils._crypto import (
    load_key_worded,
    pem_blocks,
    public_key_der,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefCredentialError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import QR_CODE_II_PSS_SALT_LENGTH


class SignerCredentials:
    """A signer certificate with its private key (and any extra certificates of the bundle)."""

    def __init__(self, certificate: 'x509.Certificate', private_key: 'Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]',
                 extra_certificates: 'Optional[Sequence[x509.Certificate]]' = None) -> None:
        self.certificate = certificate
        self.private_key = private_key
        self.extra_certificates = list(extra_certificates or [])

    @property
    def key_type(self) -> str:
        return 'rsa' if isinstance(self.private_key, rsa.RSAPrivateKey) else 'ec'

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        """XMLDSig signature value of data: RSA PKCS#1 v1.5 SHA-256, or ECDSA SHA-256 as raw r||s."""
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # XMLDSig wants raw r||s of fixed length, not the DER structure cryptography returns.
        der = self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        r_value, s_value = decode_dss_signature(der)
        size = (self.private_key.curve.key_size + 7) // 8
        return r_value.to_bytes(size, 'big') + s_value.to_bytes(size, 'big')

    def sign_pss(self, data: bytes) -> bytes:
        """RSASSA-PSS SHA-256 (MGF1 SHA-256, salt 32) of data: how an RSA Offline key signs a QR code II."""
        return self.private_key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=QR_CODE_II_PSS_SALT_LENGTH),
                                     hashes.SHA256())


def _to_bytes(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return value.encode('utf-8')


def _read(path, what):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise KsefCredentialError('cannot read %s %s: %s' % (what, path, exc.strerror or exc))


def _content_bytes(content):
    """Inline content: PEM text as is, otherwise Base64 of DER / PKCS#12 (binary cannot live in YAML)."""
    data = _to_bytes(content)
    if b'-----BEGIN' in data:
        return data
    compact = re.sub(br'\s+', b'', data)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return data


BASE64_TEXT = re.compile(br'[A-Za-z0-9+/=\s]+')


def _file_bytes(data):
    """A file's content: PEM or binary as is; Base64 text of DER or PKCS#12 decoded (AWX/AAP credential file
    injectors can only write text, so a PKCS#12 bundle reaches the job as its Base64)."""
    if b'-----BEGIN' in data or not BASE64_TEXT.fullmatch(data):
        return data
    try:
        return base64.b64decode(re.sub(br'\s+', b'', data), validate=True)
    except (binascii.Error, ValueError):
        return data


def _material(path, content, what, option):
    """(bytes, source for messages) of the material given as option_path or option_content; (None, None) when neither."""
    if path:
        return _file_bytes(_read(path, what)), '%s_path (%s)' % (option, path)
    if content:
        return _content_bytes(content), '%s_content' % option
    return None, None


def _parse_certificates(data):
    """All certificates in data (PEM, possibly several, or one DER); [] if none."""
    if b'-----BEGIN' in data:
        certs = []
        for block in pem_blocks(data, ('CERTIFICATE', 'TRUSTED CERTIFICATE', 'X509 CERTIFICATE')):
            try:
                certs.append(x509.load_pem_x509_certificate(block.replace(b'TRUSTED CERTIFICATE', b'CERTIFICATE')))
            except ValueError:
                raise KsefCredentialError('the signer certificate contains a PEM block that is not a valid X.509 certificate')
        return certs
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        return []


# What a signature login says for each KeyLoadError reason of the signer's key (they name auth_passphrase).
SIGNER_KEY_MESSAGES = {
    'no_pem_key': '%s holds no PEM private key',
    'needs_passphrase': 'the private key in %s is encrypted but no passphrase was given: set auth_passphrase',
    'wrong_passphrase': 'the private key in %s could not be decrypted: the passphrase (auth_passphrase) is wrong',
    'unsupported': '%s cannot be parsed as a supported private key',
    'invalid': '%s cannot be parsed as a private key (expected PEM or DER PKCS#8, PKCS#1 or SEC1)',
}


def _load_key(data, passphrase, source):
    """The signer's private key (_crypto.parse_private_key)."""
    return load_key_worded(data, passphrase, source, SIGNER_KEY_MESSAGES)


def _load_pkcs12(data, passphrase, source):
    password = _to_bytes(passphrase) if passphrase else None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        if password is None:
            raise KsefCredentialError('%s is not a readable certificate, or it is a PKCS#12 bundle that needs a passphrase: '
                                      'set auth_passphrase' % source)
        raise KsefCredentialError('%s could not be opened as PKCS#12: the passphrase (auth_passphrase) is wrong or '
                                  'the file is damaged' % source)
    except Exception:
        raise KsefCredentialError('%s cannot be parsed as a certificate or PKCS#12 bundle' % source)
    if cert is None or key is None:
        raise KsefCredentialError('the PKCS#12 bundle %s must hold both the signer certificate and its private key' % source)
    return SignerCredentials(cert, key, extra)


def _check_key(credentials):
    key = credentials.private_key
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise KsefCredentialError('the RSA signer key has %d bits; KSeF requires at least 2048' % key.key_size)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size < 256:
            raise KsefCredentialError('the EC signer key uses curve %s; KSeF requires at least 256 bits' % key.curve.name)
    else:
        raise KsefCredentialError('the signer key must be RSA or EC (got %s)' % type(key).__name__)
    if public_key_der(key.public_key()) != public_key_der(credentials.certificate.public_key()):
        raise KsefCredentialError('the signer private key does not match the signer certificate '
                                  '(check auth_private_key_path/content against auth_certificate_path/content)')
    return credentials


def load_signer_credentials(certificate_path: Optional[str] = None, certificate_content: Optional[str] = None,
                            private_key_path: Optional[str] = None, private_key_content: Optional[str] = None,
                            passphrase: Optional[str] = None) -> SignerCredentials:
    """Load and check the signer material; raise KsefCredentialError with a safe message."""
    if not HAS_CRYPTOGRAPHY:
        raise KsefCredentialError('the cryptography Python library is required to load the signer certificate')
    cert_data, cert_source = _material(certificate_path, certificate_content, 'signer certificate', 'auth_certificate')
    if cert_data is None:
        raise KsefCredentialError('no signer certificate given (auth_certificate_path or auth_certificate_content)')
    key_data, key_source = _material(private_key_path, private_key_content, 'signer private key', 'auth_private_key')

    certificates = _parse_certificates(cert_data)
    if not certificates:
        if b'-----BEGIN' in cert_data:
            raise KsefCredentialError('%s holds no PEM certificate' % cert_source)
        # Not a certificate: it can only be a PKCS#12 bundle, which carries its own key.
        credentials = _load_pkcs12(cert_data, passphrase, cert_source)
        return _check_key(credentials)

    if key_data is None:
        if b'PRIVATE KEY' in cert_data:
            key_data, key_source = cert_data, cert_source
        else:
            raise KsefCredentialError('the signer certificate needs its private key: set auth_private_key_path or '
                                      'auth_private_key_content (or give a PKCS#12 bundle as the certificate)')
    key = _load_key(key_data, passphrase, key_source)
    key_der = public_key_der(key.public_key())
    # A PEM bundle may carry the chain; the signer is the certificate that matches the key.
    signer = certificates[0]
    for candidate in certificates:
        if public_key_der(candidate.public_key()) == key_der:
            signer = candidate
            break
    extra = [c for c in certificates if c is not signer]
    return _check_key(SignerCredentials(signer, key, extra))


def load_token_signer(module_path: str, token_label: str, key_label: str, pin: str, certificate_path: Optional[str] = None,
                      certificate_content: Optional[str] = None) -> '_pkcs11.TokenSigner':
    """The login signer of a key in a PKCS#11 token (_pkcs11.TokenSigner); the certificate from the options or the token."""
    if not HAS_CRYPTOGRAPHY:
        raise KsefCredentialError('the cryptography Python library is required to load the signer certificate')
    certificates = None
    data, source = _material(certificate_path, certificate_content, 'signer certificate', 'auth_certificate')
    if data is not None:
        certificates = _parse_certificates(data)
        if not certificates:
            raise KsefCredentialError('%s holds no certificate (with auth_pkcs11_module the key is in the token: give '
                                      'the signer certificate as PEM or DER)' % source)
    signer = _pkcs11.open_login_signer(module_path, token_label, key_label, pin, certificates)
    key = signer.key.public_key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        signer.close()
        raise KsefCredentialError('the RSA signer key has %d bits; KSeF requires at least 2048' % key.key_size)
    return signer
