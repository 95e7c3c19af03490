# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""ksef_certificate key_backend pkcs11: the key pairs of one declaration in a token (_pkcs11.Pkcs11Token)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Callable, Optional

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported through _credentials.HAS_CRYPTOGRAPHY
    pass

from ansible_collections.ksef.certificates.plugins.module_utils import _pkcs11
from ansible_collections.ksef.certificates.plugins.module_utils._crypto import public_key_der

_OPEN_TOKENS = {}


def open_token(module_path: str, token_label: str, pin: str, option_prefix: str = 'pkcs11_') -> _pkcs11.Pkcs11Token:
    """One logged-in Pkcs11Token per library and token for the module run (ksef_certificate reads twice)."""
    key = (module_path, token_label)
    if key not in _OPEN_TOKENS:
        _OPEN_TOKENS[key] = _pkcs11.Pkcs11Token(module_path, token_label, pin, option_prefix=option_prefix)
    return _OPEN_TOKENS[key]


class TokenKeyStore:
    """The token keys of one ksef_certificate declaration: every key pair labelled `label`.

    Normally one key pair with its certificate object. A renewal adds a second key pair with the same label
    (its own CKA_ID); once the new certificate is installed the other key pairs of the label are deleted.
    """

    REF_PREFIX = 'pkcs11:'

    def __init__(self, token: _pkcs11.Pkcs11Token, label: str) -> None:
        self.token = token
        self.label = label

    def ref(self, key: _pkcs11.TokenKey) -> str:
        """How the state file names a token key (no secret: label and CKA_ID)."""
        return '%s%s/%s:%s' % (self.REF_PREFIX, self.token.token_label, self.label, bytes(key.key_id).hex())

    def _matching(self, public_key):
        wanted = public_key_der(public_key)
        for key in self.token.private_keys(self.label):
            if public_key_der(key.public_key) == wanted:
                return key
        return None

    def current(self, certificate: 'Optional[x509.Certificate]' = None) -> Optional[_pkcs11.TokenKey]:
        """The key in use: the one of the local certificate; else the one certified in the token; else the only one."""
        if certificate is not None:
            return self._matching(certificate.public_key())
        keys = self.token.private_keys(self.label)
        certified = [key for key in keys if self.token.certificate_for(key) is not None]
        if len(certified) == 1:
            return certified[0]
        if len(keys) == 1:
            return keys[0]
        return None

    def by_ref(self, ref: str) -> Optional[_pkcs11.TokenKey]:
        for key in self.token.private_keys(self.label):
            if self.ref(key) == ref:
                return key
        return None

    def generate(self, key_type: str) -> _pkcs11.TokenKey:
        return self.token.generate_key_pair(self.label, key_type)

    def csr(self, key: _pkcs11.TokenKey, build: Callable[[Any], bytes]) -> bytes:
        """DER CSR of key: build(private_key) -> DER CSR, the same code path as a file key."""
        return self.token.csr(key, lambda throwaway: x509.load_der_x509_csr(build(throwaway)))

    def has_certificate(self, certificate: 'x509.Certificate') -> bool:
        key = self._matching(certificate.public_key())
        der = certificate.public_bytes(serialization.Encoding.DER)
        return key is not None and any(c.public_bytes(serialization.Encoding.DER) == der
                                       for _handle, c in self.token.certificates_of(key))

    def attach(self, certificate: 'x509.Certificate') -> _pkcs11.TokenKey:
        """Store certificate next to its key (once); the key must be in the token."""
        key = self._matching(certificate.public_key())
        if key is None:
            raise _pkcs11.Pkcs11Error('PKCS#11 token %r holds no key labelled %r for certificate %X; nothing was installed'
                                      % (self.token.token_label, self.label, certificate.serial_number))
        if not self.has_certificate(certificate):
            self.token.store_certificate(key, certificate)
        return key

    def remove_others(self, certificate: 'x509.Certificate') -> None:
        """After certificate is installed: delete the label's other key pairs and the key's older certificates."""
        key = self._matching(certificate.public_key())
        if key is None:
            return
        der = certificate.public_bytes(serialization.Encoding.DER)
        for other in self.token.private_keys(self.label):
            if other.key_id != key.key_id:
                self.token.delete_key(other)
        for handle, old in self.token.certificates_of(key):
            if old.public_bytes(serialization.Encoding.DER) != der:
                self.token.delete_object(handle)

    def discard(self, ref: str) -> None:
        """Delete a key pair made for an enrollment that never happened (unless it is the key in use)."""
        key = self.by_ref(ref)
        if key is not None:
            self.token.delete_key(key)
