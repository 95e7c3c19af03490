# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Authentication with a KSeF token, encrypted with KSeF's current public key."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
except ImportError:  # pragma: no cover - reported through required_libraries()
    pass

from ansible_collections.ksef.certificates.plugins.module_utils import _credentials
from ansible_collections.ksef.certificates.plugins.module_utils._api import AUTH_CHALLENGE, PUBLIC_KEY_CERTIFICATES, KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_base import AuthMethod, RequiredLibrary, check_token
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import parse_datetime_or_none
from ansible_collections.ksef.certificates.plugins.module_utils._xades import CONTEXT_ELEMENTS, classify_allowed_ips

if TYPE_CHECKING:  # for the hints only: _connection imports the methods (a cycle at run time)
    from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions

TOKEN_ENCRYPTION_USAGE = 'KsefTokenEncryption'
UNKNOWN_PUBLIC_KEY = 21470


def choose_token_encryption_key(entries: Optional[List[Dict[str, Any]]], now: datetime.datetime) -> Optional[Dict[str, Any]]:
    """The currently valid KsefTokenEncryption certificate with the latest validFrom (or None)."""
    best = None
    best_from = None
    for entry in entries or []:
        if TOKEN_ENCRYPTION_USAGE not in (entry.get('usage') or []):
            continue
        valid_from = parse_datetime_or_none(entry.get('validFrom'))
        valid_to = parse_datetime_or_none(entry.get('validTo'))
        if valid_from is None or valid_to is None or not valid_from <= now <= valid_to:
            continue
        if best is None or valid_from > best_from:
            best, best_from = entry, valid_from
    return best


def encrypt_ksef_token(certificate_b64: str, ksef_token: str, timestamp_ms: int) -> str:
    """RSA-OAEP (SHA-256, MGF1-SHA-256) of '<token>|<timestampMs>', Base64."""
    certificate = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    plaintext = ('%s|%d' % (ksef_token, int(timestamp_ms))).encode('utf-8')
    ciphertext = certificate.public_key().encrypt(
        plaintext, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    return base64.b64encode(ciphertext).decode('ascii')


def challenge_ms(challenge: Mapping[str, Any]) -> int:
    """The challenge's time in milliseconds: timestampMs, else the ISO timestamp."""
    if challenge.get('timestampMs') is not None:
        return int(challenge['timestampMs'])
    parsed = parse_datetime_or_none(challenge.get('timestamp'))
    if parsed is None:
        raise KsefError('%s returned neither timestampMs nor a readable timestamp' % (AUTH_CHALLENGE,))
    return int(parsed.timestamp() * 1000)


class KsefTokenAuthMethod(AuthMethod):
    """Send the KSeF token encrypted with the newest valid KsefTokenEncryption key of KSeF."""
    NAME = 'ksef_token'
    OPTIONS = {'ksef_token': dict(type='str', no_log=True)}

    @classmethod
    def applies(cls, params: Mapping[str, Any]) -> bool:
        return bool(params.get('ksef_token'))

    @classmethod
    def check_given(cls, params: Mapping[str, Any]) -> None:
        check_token('ksef_token', params.get('ksef_token'))

    def required_libraries(self) -> List[RequiredLibrary]:
        return [('cryptography', _credentials.HAS_CRYPTOGRAPHY, _credentials.CRYPTOGRAPHY_IMPORT_ERROR)]

    def start(self, gateway: KsefAuthApi, challenge: Dict[str, Any], connection: 'ConnectionOptions', now: float) -> Dict[str, Any]:
        timestamp_ms = challenge_ms(challenge)
        body = {
            'challenge': challenge['challenge'],
            'contextIdentifier': {'type': CONTEXT_ELEMENTS[connection.context_type], 'value': connection.context_id},
        }
        if connection.allowed_ips:
            body['authorizationPolicy'] = {'allowedIps': classify_allowed_ips(connection.allowed_ips)}
        # A key can be withdrawn between listing and use (21470): list again once and retry.
        for attempt in (1, 2):
            key = self._encryption_key(gateway, now)
            body['encryptedToken'] = encrypt_ksef_token(key['certificate'], self.options['ksef_token'], timestamp_ms)
            body['publicKeyId'] = key.get('publicKeyId')
            if not body['publicKeyId']:
                del body['publicKeyId']
            try:
                return gateway.ksef_token(body)
            except KsefApiError as exc:
                if attempt == 1 and UNKNOWN_PUBLIC_KEY in exc.codes:
                    continue
                raise
        raise AssertionError('unreachable: the loop returns or raises')  # pragma: no cover

    @staticmethod
    def _encryption_key(gateway, now):
        moment = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        key = choose_token_encryption_key(gateway.public_key_certificates(), moment)
        if key is None:
            raise KsefError('%s returned no currently valid certificate with usage %s'
                            % (PUBLIC_KEY_CERTIFICATES, TOKEN_ENCRYPTION_USAGE))
        return key
