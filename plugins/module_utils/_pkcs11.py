# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Keys that never leave a PKCS#11 token (smart card, USB token, HSM; SoftHSM2 in the tests).

Through PyKCS11 (an optional dependency: only the options that name a PKCS#11 library need it):
open the library, find the token by label, log in with the user PIN, find keys and certificates by
label, sign (RSA PKCS#1 v1.5 SHA-256; ECDSA P-256 as raw r||s), generate key pairs inside the token
(sensitive, never extractable), store a certificate object next to its key and delete objects.

A key pair and its certificate share CKA_LABEL and CKA_ID (the usual PKCS#11 convention, also what
pkcs11-tool and p11-kit expect). Every failure is a Pkcs11Error: one short message that names the
library, token or label and the PKCS#11 return code; the PIN never appears in it.

A CSR or a certificate signed by a token key is made by _der.sign_with_swapped_key: cryptography's
builder with a throw-away key of the same type, the token's public key swapped in, the to-be-signed part
signed by the token; the subject layout is therefore exactly the one of file keys.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import hashlib
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

try:
    import PyKCS11
    HAS_PYKCS11 = True
    PYKCS11_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    PyKCS11 = None
    HAS_PYKCS11 = False
    PYKCS11_IMPORT_ERROR = exc

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError:  # pragma: no cover - reported through _credentials.HAS_CRYPTOGRAPHY
    pass

from ansible_collections.ksef.certificates.plugins.module_utils import _der
from ansible_collections.ksef.certificates.plugins.module_utils._crypto import (
    RSA_KEY_SIZE,
    certificate_not_before,
    key_type_of,
    public_key_der,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefCredentialError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import QR_CODE_II_PSS_SALT_LENGTH

PYKCS11_PIP_NAME = 'PyKCS11'
# DER of the named curve OID prime256v1 (CKA_EC_PARAMS of a P-256 key).
P256_PARAMS = bytes.fromhex('06082a8648ce3d030107')
EC_COORDINATE_BYTES = 32


class Pkcs11Error(KsefCredentialError):
    """The PKCS#11 library, token, PIN or object cannot be used; the message never holds the PIN."""


def _return_code(exc):
    """'CKR_PIN_INCORRECT' for a PyKCS11Error (the name only: str() adds the hex value)."""
    value = getattr(exc, 'value', None)
    name = PyKCS11.CKR.get(value) if PyKCS11 is not None else None
    return name if isinstance(name, str) else 'PKCS#11 error %s' % value


def _load_quietly(lib, path):
    """lib.load(path) with the C library's stdout muted: PyKCS11 prints dlopen errors there, and a module's
    stdout must hold nothing but its JSON result."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        try:
            lib.load(path)
        finally:
            try:
                ctypes.CDLL(None).fflush(None)
            except (OSError, AttributeError):  # pragma: no cover - every libc has fflush
                pass
            os.dup2(saved, 1)
    finally:
        os.close(devnull)
        os.close(saved)


def _bytes(value):
    return bytes(bytearray(value)) if value is not None else None


class TokenKey:
    """A private key object in a token, with its public key (read from the token, never the private part)."""

    def __init__(self, handle: Any, label: Optional[str], key_id: Optional[bytes], public_key: Any) -> None:
        self.handle = handle
        self.label = label
        self.key_id = key_id
        self.public_key = public_key

    @property
    def key_type(self) -> Optional[str]:
        return key_type_of(self.public_key)


class Pkcs11Token:
    """One logged-in session on one token. Use as a context manager or call close()."""

    def __init__(self, module_path: str, token_label: str, pin: str, option_prefix: str = 'pkcs11_') -> None:
        self.module_path = module_path
        self.token_label = token_label
        self.prefix = option_prefix
        self._lib = None
        self._session = None
        self._open(pin)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- opening -----------------------------------------------------------------------------------
    def _open(self, pin):
        if not HAS_PYKCS11:
            raise Pkcs11Error('the PyKCS11 Python library is required for %smodule' % self.prefix)
        path = self.module_path
        if not path:
            raise Pkcs11Error('%smodule (the path to the PKCS#11 library) is required' % self.prefix)
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise Pkcs11Error('cannot read the PKCS#11 library %s (%smodule): no such readable file' % (path, self.prefix))
        if not self.token_label:
            raise Pkcs11Error('%stoken_label is required with %smodule' % (self.prefix, self.prefix))
        if pin is None or pin == '':
            raise Pkcs11Error('%spin is required to log in to PKCS#11 token %r' % (self.prefix, self.token_label))
        lib = PyKCS11.PyKCS11Lib()
        try:
            _load_quietly(lib, path)
        except PyKCS11.PyKCS11Error:
            raise Pkcs11Error('cannot load the PKCS#11 library %s (%smodule): not a PKCS#11 module for this system, '
                              'or it failed to start' % (path, self.prefix))
        self._lib = lib
        try:
            slot = self._find_slot()
            self._session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
            self._login(pin)
        except PyKCS11.PyKCS11Error as exc:
            code = _return_code(exc)
            self.close()
            if code in ('CKR_PIN_INCORRECT', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE'):
                raise Pkcs11Error('PKCS#11 token %r rejected the PIN (%spin): %s' % (self.token_label, self.prefix, code))
            if code == 'CKR_PIN_LOCKED':
                raise Pkcs11Error('the PIN of PKCS#11 token %r is locked (%s); unlock it with the SO PIN'
                                  % (self.token_label, code))
            raise Pkcs11Error('cannot log in to PKCS#11 token %r: %s' % (self.token_label, code))
        except Pkcs11Error:
            self.close()
            raise

    def _login(self, pin):
        try:
            self._session.login(pin)
        except PyKCS11.PyKCS11Error as exc:
            # Another session of this process (the login signer and the enrolled keys on one token) is logged in.
            if _return_code(exc) != 'CKR_USER_ALREADY_LOGGED_IN':
                raise

    def _find_slot(self):
        labels = []
        for slot in self._lib.getSlotList(tokenPresent=True):
            label = self._lib.getTokenInfo(slot).label.strip()
            if label == self.token_label:
                return slot
            if label:
                labels.append(label)
        raise Pkcs11Error('no PKCS#11 token labelled %r (%stoken_label) in %s; tokens present: %s'
                          % (self.token_label, self.prefix, self.module_path,
                             ', '.join(repr(label) for label in labels) or 'none'))

    def close(self) -> None:
        session, lib = self._session, self._lib
        self._session = self._lib = None
        if session is not None:
            # No explicit logout: it would end the login of every session of this process on the token;
            # closing the last session logs out (PKCS#11 C_CloseSession).
            try:
                session.closeSession()
            except PyKCS11.PyKCS11Error:
                pass
        if lib is not None:
            try:
                lib.unload()
            # Unloading must never hide the real outcome.
            except Exception:  # pylint: disable=broad-except
                pass

    # -- helpers -----------------------------------------------------------------------------------
    def _call(self, what, func, *args):
        try:
            return func(*args)
        except PyKCS11.PyKCS11Error as exc:
            raise Pkcs11Error('PKCS#11 %s failed on token %r: %s' % (what, self.token_label, _return_code(exc)))

    def _find(self, template):
        return self._call('object search', self._session.findObjects, template)

    def _attributes(self, handle, names):
        return self._call('attribute read', self._session.getAttributeValue, handle, names)

    def _public_from_public_object(self, handle):
        """The public key held by a public key object (or the public attributes of an RSA private key)."""
        if self._is_rsa(handle):
            modulus, exponent = self._attributes(handle, [PyKCS11.CKA_MODULUS, PyKCS11.CKA_PUBLIC_EXPONENT])
            return rsa.RSAPublicNumbers(int.from_bytes(_bytes(exponent), 'big'),
                                        int.from_bytes(_bytes(modulus), 'big')).public_key()
        params, point = self._attributes(handle, [PyKCS11.CKA_EC_PARAMS, PyKCS11.CKA_EC_POINT])
        if _bytes(params) != P256_PARAMS:
            raise Pkcs11Error('a key in PKCS#11 token %r is not RSA or EC P-256' % self.token_label)
        point = _bytes(point)
        if point[:1] == b'\x04' and len(point) != 1 + 2 * EC_COORDINATE_BYTES:
            point = _der.content(point)  # the DER OCTET STRING wrapper most tokens return
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)

    def _is_rsa(self, handle):
        return self._attributes(handle, [PyKCS11.CKA_KEY_TYPE])[0] == PyKCS11.CKK_RSA

    def _label_and_id(self, handle):
        label, key_id = self._attributes(handle, [PyKCS11.CKA_LABEL, PyKCS11.CKA_ID])
        return label, _bytes(key_id) or b''

    def _public_key_of(self, private_handle, label, key_id):
        """The public key of a private key object: its public key object, else its certificate, else RSA numbers."""
        template = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY)]
        template.append((PyKCS11.CKA_ID, key_id) if key_id else (PyKCS11.CKA_LABEL, label))
        for handle in self._find(template):
            return self._public_from_public_object(handle)
        for _handle, certificate in self._certificates(key_id=key_id, label=None if key_id else label):
            return certificate.public_key()
        if self._is_rsa(private_handle):
            return self._public_from_public_object(private_handle)
        raise Pkcs11Error('the public key of %r in PKCS#11 token %r is neither a public key object nor a certificate'
                          % (label, self.token_label))

    def _certificates(self, label=None, key_id=None):
        """[(handle, x509 certificate)] of the certificate objects with that label and/or CKA_ID."""
        template = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE)]
        if label is not None:
            template.append((PyKCS11.CKA_LABEL, label))
        if key_id:
            template.append((PyKCS11.CKA_ID, key_id))
        found = []
        for handle in self._find(template):
            value = _bytes(self._attributes(handle, [PyKCS11.CKA_VALUE])[0])
            try:
                certificate = x509.load_der_x509_certificate(value)
            except ValueError:
                continue
            found.append((handle, certificate))
        return found

    # -- keys and certificates -----------------------------------------------------------------------
    def private_keys(self, label: str) -> List[TokenKey]:
        """Every private key object labelled label (more than one only mid-rotation), with public keys."""
        keys = []
        for handle in self._find([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_LABEL, label)]):
            _label, key_id = self._label_and_id(handle)
            keys.append(TokenKey(handle, label, key_id, self._public_key_of(handle, label, key_id)))
        return keys

    def private_key(self, label: str, public_key: Any = None, option: str = '{prefix}key_label') -> TokenKey:
        """The private key labelled label (the one matching public_key when given)."""
        keys = self.private_keys(label)
        if not keys:
            raise Pkcs11Error('no private key labelled %r (%s) in PKCS#11 token %r'
                              % (label, option.format(prefix=self.prefix), self.token_label))
        if public_key is not None:
            wanted = public_key_der(public_key)
            for key in keys:
                if public_key_der(key.public_key) == wanted:
                    return key
            raise Pkcs11Error('no private key labelled %r in PKCS#11 token %r matches the signer certificate'
                              % (label, self.token_label))
        if len(keys) > 1:
            # Mid-rotation: the key whose certificate is in the token is the one in use.
            certified = [key for key in keys if self.certificate_for(key) is not None]
            if len(certified) == 1:
                return certified[0]
            raise Pkcs11Error('PKCS#11 token %r holds %d private keys labelled %r; give the signer certificate '
                              '(auth_certificate_path) to pick one' % (self.token_label, len(keys), label))
        return keys[0]

    def certificate_for(self, key: TokenKey) -> 'Optional[x509.Certificate]':
        """The newest certificate object of key (same CKA_ID, or label, and the same public key), or None."""
        wanted = public_key_der(key.public_key)
        candidates = [certificate for _handle, certificate
                      in self._certificates(label=None if key.key_id else key.label, key_id=key.key_id)
                      if public_key_der(certificate.public_key()) == wanted]
        if not candidates:
            return None
        return max(candidates, key=certificate_not_before)

    def certificates_of(self, key: TokenKey) -> 'List[Tuple[Any, x509.Certificate]]':
        """[(handle, certificate)] of every certificate object stored with key's CKA_ID (or label)."""
        return self._certificates(label=None if key.key_id else key.label, key_id=key.key_id)

    def key_flags(self, key: TokenKey) -> Dict[str, bool]:
        """{'sensitive': bool, 'extractable': bool, 'always_sensitive': bool, 'never_extractable': bool}."""
        values = self._attributes(key.handle, [PyKCS11.CKA_SENSITIVE, PyKCS11.CKA_EXTRACTABLE,
                                               PyKCS11.CKA_ALWAYS_SENSITIVE, PyKCS11.CKA_NEVER_EXTRACTABLE])
        return dict(zip(('sensitive', 'extractable', 'always_sensitive', 'never_extractable'),
                        (bool(value) for value in values)))

    def sign(self, key: TokenKey, data: bytes, pss: bool = False) -> bytes:
        """Signature of data: RSA PKCS#1 v1.5 SHA-256 (pss: RSASSA-PSS SHA-256, MGF1 SHA-256, salt 32, the QR
        code II form), or ECDSA SHA-256 as raw r||s (what XMLDSig and QR codes II want)."""
        if key.key_type == 'rsa' and pss:
            mechanism = PyKCS11.RSA_PSS_Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS_PSS, PyKCS11.CKM_SHA256,
                                                  PyKCS11.CKG_MGF1_SHA256, QR_CODE_II_PSS_SALT_LENGTH)
            payload = data
        elif key.key_type == 'rsa':
            mechanism = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS, None)
            payload = data
        else:
            # CKM_ECDSA over a local SHA-256 digest: every token has it, not all have CKM_ECDSA_SHA256.
            mechanism = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA, None)
            payload = hashlib.sha256(data).digest()
        return _bytes(self._call('signing with %r' % key.label, self._session.sign, key.handle, payload, mechanism))

    def signer(self, key: TokenKey) -> Callable[[bytes], bytes]:
        """A callable data -> signature for _xades (raw r||s for EC)."""
        return lambda data: self.sign(key, data)

    def generate_key_pair(self, label: str, key_type: str) -> TokenKey:
        """A new key pair in the token: private part sensitive, never extractable; returns its TokenKey."""
        key_id = os.urandom(20)
        common = [(PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE), (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_ID, key_id)]
        public = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_VERIFY, PyKCS11.CK_TRUE),
                  (PyKCS11.CKA_PRIVATE, PyKCS11.CK_FALSE)] + common
        private = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_SIGN, PyKCS11.CK_TRUE),
                   (PyKCS11.CKA_PRIVATE, PyKCS11.CK_TRUE), (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE),
                   (PyKCS11.CKA_EXTRACTABLE, PyKCS11.CK_FALSE), (PyKCS11.CKA_DECRYPT, PyKCS11.CK_FALSE)] + common
        if key_type == 'rsa':
            public += [(PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA), (PyKCS11.CKA_MODULUS_BITS, RSA_KEY_SIZE),
                       (PyKCS11.CKA_PUBLIC_EXPONENT, (0x01, 0x00, 0x01))]
            private.append((PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA))
            mechanism = PyKCS11.MechanismRSAGENERATEKEYPAIR
        elif key_type == 'ec':
            public += [(PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC), (PyKCS11.CKA_EC_PARAMS, P256_PARAMS)]
            private.append((PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC))
            mechanism = PyKCS11.MechanismECGENERATEKEYPAIR
        else:
            raise Pkcs11Error('unsupported key type %r for a PKCS#11 key (use ec or rsa)' % key_type)
        public_handle, private_handle = self._call('key pair generation (%s) for %r' % (key_type, label),
                                                   self._session.generateKeyPair, public, private, mechanism)
        return TokenKey(private_handle, label, key_id, self._public_from_public_object(public_handle))

    def store_certificate(self, key: TokenKey, certificate: 'x509.Certificate') -> Any:
        """Store certificate as a token object with the key's label and CKA_ID."""
        der = certificate.public_bytes(serialization.Encoding.DER)
        serial_der = _der.encode_integer(certificate.serial_number)
        template = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE), (PyKCS11.CKA_CERTIFICATE_TYPE, PyKCS11.CKC_X_509),
            (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE), (PyKCS11.CKA_PRIVATE, PyKCS11.CK_FALSE),
            (PyKCS11.CKA_LABEL, key.label), (PyKCS11.CKA_ID, key.key_id), (PyKCS11.CKA_VALUE, der),
            (PyKCS11.CKA_SUBJECT, certificate.subject.public_bytes()),
            (PyKCS11.CKA_ISSUER, certificate.issuer.public_bytes()), (PyKCS11.CKA_SERIAL_NUMBER, serial_der),
        ]
        return self._call('storing the certificate of %r' % key.label, self._session.createObject, template)

    def delete_key(self, key: TokenKey) -> None:
        """Delete a key pair and its certificate objects (everything with its CKA_ID and label)."""
        template = [(PyKCS11.CKA_ID, key.key_id), (PyKCS11.CKA_LABEL, key.label)]
        handles = self._find(template) if key.key_id else [key.handle]
        for handle in handles:
            self._call('deleting an object of %r' % key.label, self._session.destroyObject, handle)

    def delete_object(self, handle: Any) -> None:
        self._call('deleting an object', self._session.destroyObject, handle)

    def csr(self, key: TokenKey, build: Callable[[Any], Any]) -> bytes:
        """DER CSR for the token key: build(private_key) -> cryptography CSR (the file-key code path)."""
        return _der.sign_with_swapped_key(build, key.public_key, self.signer(key))


class TokenSigner:
    """The XAdES login signer of a token key: what _xades.sign_enveloped needs, the private key stays inside."""

    def __init__(self, token: Pkcs11Token, key: TokenKey, certificate: 'x509.Certificate',
                 extra_certificates: 'Optional[Sequence[x509.Certificate]]' = None) -> None:
        self.token = token
        self.key = key
        self.certificate = certificate
        self.extra_certificates = list(extra_certificates or [])

    @property
    def key_type(self) -> Optional[str]:
        return self.key.key_type

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        return self.token.sign(self.key, data)

    def sign_pss(self, data: bytes) -> bytes:
        return self.token.sign(self.key, data, pss=True)

    def close(self) -> None:
        self.token.close()


def open_login_signer(module_path: str, token_label: str, key_label: str, pin: str,
                      certificates: 'Optional[Sequence[x509.Certificate]]' = None) -> TokenSigner:
    """TokenSigner for the auth_pkcs11_* options.

    certificates: the certificates of auth_certificate_path/_content (a chain may come along); the signer is
    the one whose public key is a key labelled key_label. Without them the token's certificate object of that
    key is the signer certificate.
    """
    if not key_label:
        raise Pkcs11Error('auth_pkcs11_key_label is required with auth_pkcs11_module')
    token = Pkcs11Token(module_path, token_label, pin, option_prefix='auth_pkcs11_')
    try:
        if certificates:
            keys = token.private_keys(key_label)
            if not keys:
                raise Pkcs11Error('no private key labelled %r (auth_pkcs11_key_label) in PKCS#11 token %r'
                                  % (key_label, token_label))
            for key in keys:
                for certificate in certificates:
                    if public_key_der(certificate.public_key()) == public_key_der(key.public_key):
                        extra = [c for c in certificates if c is not certificate]
                        return TokenSigner(token, key, certificate, extra)
            raise Pkcs11Error('the signer certificate (auth_certificate_path/content) does not belong to the key '
                              'labelled %r in PKCS#11 token %r' % (key_label, token_label))
        key = token.private_key(key_label, option='auth_pkcs11_key_label')
        certificate = token.certificate_for(key)
        if certificate is None:
            raise Pkcs11Error('PKCS#11 token %r holds no certificate for the key labelled %r: store it in the token '
                              'or set auth_certificate_path' % (token_label, key_label))
        return TokenSigner(token, key, certificate)
    except Pkcs11Error:
        token.close()
        raise
