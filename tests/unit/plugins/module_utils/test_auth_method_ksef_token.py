# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""KsefTokenAuthMethod alone: the key choice, the encryption, and its scripted exchanges."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_ksef_token import (
    KsefTokenAuthMethod,
    challenge_ms,
    choose_token_encryption_key,
)
from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefError, KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

NOW = 1767268800.0  # 2026-01-01T12:00:00Z
CHALLENGE = {'challenge': '20260101-CR-0123456789-ABCDEF0123-4A', 'timestampMs': 1767268800123}
STARTED = {'referenceNumber': 'R', 'authenticationToken': {'token': 'OP'}}
UNKNOWN_KEY = {'exception': {'exceptionDetailList': [{'exceptionCode': 21470, 'exceptionDescription': 'unknown key'}]}}


def entry(key, valid_from, valid_to, usage=('KsefTokenEncryption',), key_id=None):
    der = certs.cert_der(certs.make_seal_certificate(key, common_name='MF key'))
    return {'certificate': base64.b64encode(der).decode(), 'publicKeyId': key_id or 'pk-%s' % valid_from,
            'validFrom': valid_from, 'validTo': valid_to, 'usage': list(usage)}


def gateway(script):
    return KsefAuthApi(KsefHttpClient('https://ksef.invalid/v2', session=script.session()))


def decrypt(key, value):
    return key.decrypt(base64.b64decode(value), padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()),
                                                             algorithm=hashes.SHA256(), label=None))


def test_declares_its_option():
    assert KsefTokenAuthMethod.OPTIONS == {'ksef_token': dict(type='str', no_log=True)}
    assert KsefTokenAuthMethod.applies({'ksef_token': 't'}) and not KsefTokenAuthMethod.applies({})
    with pytest.raises(KsefInputError, match='ksef_token is empty'):
        KsefTokenAuthMethod.check_given({'ksef_token': ''})


def test_choose_key_takes_the_newest_valid_token_encryption_key():
    now = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.timezone.utc)
    key = certs.make_key('rsa', slot=7)
    old = entry(key, '2024-01-01T00:00:00Z', '2025-01-01T00:00:00Z')
    valid = entry(key, '2025-01-01T00:00:00Z', '2027-01-01T00:00:00Z')
    newest = entry(key, '2025-06-01T00:00:00+00:00', '2027-01-01T00:00:00Z')
    other_usage = entry(key, '2025-12-01T00:00:00Z', '2027-01-01T00:00:00Z', usage=('SymmetricKeyEncryption',))
    future = entry(key, '2026-06-01T00:00:00Z', '2027-01-01T00:00:00Z')
    assert choose_token_encryption_key([old, valid, newest, other_usage, future], now) is newest
    assert choose_token_encryption_key([old, future], now) is None


def test_challenge_time_from_milliseconds_or_the_timestamp():
    assert challenge_ms({'timestampMs': 5}) == 5
    assert challenge_ms({'timestamp': '2026-01-01T12:00:00.5+00:00'}) == 1767268800500
    with pytest.raises(KsefError, match='POST /auth/challenge returned neither timestampMs'):
        challenge_ms({'timestamp': 'noon'})


def test_start_sends_the_encrypted_token_with_the_context():
    key = certs.make_key('rsa', slot=7)
    seen = {}
    script = HttpScript([
        Exchange('GET', '/security/public-key-certificates', reply=[entry(key, '2025-01-01T00:00:00Z', '2027-01-01T00:00:00Z')]),
        Exchange('POST', '/auth/ksef-token', status=202, json=seen.update, reply=STARTED),
    ])
    connection = ConnectionOptions.from_params({'ksef_token': 'KSEF-TOKEN', 'context_type': 'nip_vat_ue',
                                                'context_id': certs.TEST_NIP + '-DE123456789'})
    assert connection.auth.start(gateway(script), CHALLENGE, connection, NOW) == STARTED
    script.verify()
    assert seen['contextIdentifier'] == {'type': 'NipVatUe', 'value': certs.TEST_NIP + '-DE123456789'}
    assert seen['publicKeyId'] == 'pk-2025-01-01T00:00:00Z'
    assert 'authorizationPolicy' not in seen
    assert decrypt(key, seen['encryptedToken']) == b'KSEF-TOKEN|1767268800123'


def test_a_withdrawn_key_is_listed_again_once_then_the_error_stands():
    key = certs.make_key('rsa', slot=7)
    keys = [entry(key, '2025-01-01T00:00:00Z', '2027-01-01T00:00:00Z')]
    script = HttpScript([
        Exchange('GET', '/security/public-key-certificates', reply=keys),
        Exchange('POST', '/auth/ksef-token', status=400, reply=UNKNOWN_KEY),
        Exchange('GET', '/security/public-key-certificates', reply=keys),
        Exchange('POST', '/auth/ksef-token', status=400, reply=UNKNOWN_KEY),
    ])
    connection = ConnectionOptions.from_params({'ksef_token': 't', 'context_id': certs.TEST_NIP})
    with pytest.raises(KsefApiError) as info:
        connection.auth.start(gateway(script), CHALLENGE, connection, NOW)
    assert 21470 in info.value.codes
    script.verify()
