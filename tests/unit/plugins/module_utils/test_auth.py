# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth import (
    KsefAuthenticator,
    jwt_expiry,
)
from ansible_collections.ksef.certificates.plugins.module_utils._rules import parse_datetime_or_none as parse_datetime
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefAuthError,
    KsefCredentialError,
    KsefInputError,
    KsefTimeoutError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

NOW = 1767268800.0  # 2026-01-01T12:00:00Z
CHALLENGE = {'challenge': '20260101-CR-0123456789-ABCDEF0123-4A', 'timestamp': '2026-01-01T12:00:00.1234567+00:00',
             'timestampMs': 1767268800123, 'clientIp': '192.0.2.1'}
REF = '20260101-AU-2DFC46C000-3AC6D5877F-D4'
OPERATION = 'OPERATION-TOKEN'
ACCESS = certs.fake_jwt(NOW + 900, 'access')
REFRESH = certs.fake_jwt(NOW + 7 * 86400, 'refresh')


def wall_at_now():
    """A FakeClock whose wall clock (clock.time, what KsefAuthenticator reads) starts at NOW."""
    return FakeClock(wall=datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc))


def make_client(script, clock=None, warnings=None):
    clock = clock or FakeClock()
    return KsefHttpClient('https://ksef.invalid/v2', session=script.session(), clock=clock, sleep=clock.sleep,
                          warn=(warnings.append if warnings is not None else None))


@pytest.fixture
def signer_params(tmp_path):
    key = certs.make_key('ec')
    cert = certs.make_seal_certificate(key)
    (tmp_path / 'c.pem').write_bytes(certs.cert_pem(cert))
    (tmp_path / 'k.pem').write_bytes(certs.key_bytes(key))
    params = {'environment': 'test', 'context_type': 'nip', 'context_id': certs.TEST_NIP,
              'auth_certificate_path': str(tmp_path / 'c.pem'), 'auth_private_key_path': str(tmp_path / 'k.pem'),
              'auth_subject_identifier_type': 'certificate_subject'}
    return params, cert


def status_reply(code, description='', details=None):
    return {'startDate': '2026-01-01T12:00:00Z', 'authenticationMethod': 'QualifiedSeal',
            'authenticationMethodInfo': {'category': 'XadesSignature', 'code': 'xades.self-signed', 'displayName': 'x'},
            'status': {'code': code, 'description': description, 'details': details}}


def tokens_reply(access=ACCESS, refresh=REFRESH):
    return {'accessToken': {'token': access, 'validUntil': '2026-01-01T12:15:00.0000000+00:00'},
            'refreshToken': {'token': refresh, 'validUntil': '2026-01-08T12:00:00+00:00'}}


def xades_body_check(cert, context_id=certs.TEST_NIP):
    """Matcher: the body is a signed AuthTokenRequest for our challenge that signxml accepts."""
    def check(body):
        from signxml.xades import XAdESVerifier
        results = XAdESVerifier().verify(body, x509_cert=certs.cert_pem(cert).decode(), expect_references=2)
        text = body.decode('utf-8')
        return CHALLENGE['challenge'] in text and '<Nip>%s</Nip>' % context_id in text and len(results) == 2
    return check


def xades_login(cert, poll_codes=(200,), verify_chain='false'):
    exchanges = [
        Exchange('POST', '/auth/challenge', reply=CHALLENGE),
        Exchange('POST', '/auth/xades-signature', status=202, params={'verifyCertificateChain': verify_chain},
                 headers={'Content-Type': 'application/xml'}, body=xades_body_check(cert),
                 reply={'referenceNumber': REF, 'authenticationToken': {'token': OPERATION, 'validUntil': '2026-01-01T12:45:00Z'}}),
    ]
    for code in poll_codes:
        exchanges.append(Exchange('GET', '/auth/%s' % REF, token=OPERATION, reply=status_reply(code)))
    exchanges.append(Exchange('POST', '/auth/token/redeem', token=OPERATION, reply=tokens_reply()))
    return exchanges


def test_xades_login_polls_redeems_and_closes(signer_params):
    params, cert = signer_params
    clock = FakeClock()
    script = HttpScript(xades_login(cert, poll_codes=(100, 100, 200)) + [
        Exchange('DELETE', '/auth/sessions/current', token=ACCESS, status=204),
    ])
    client = make_client(script, clock=clock)
    auth = KsefAuthenticator(client, params, wall_clock=wall_at_now().time)
    assert auth.method == 'xades'
    assert auth.access_token() == ACCESS
    assert auth.access_token() == ACCESS  # no second login
    assert clock.sleeps == [1.0, 1.0]
    assert auth.tokens() == {
        'access_token': ACCESS, 'access_token_valid_until': '2026-01-01T12:15:00+00:00',
        'refresh_token': REFRESH, 'refresh_token_valid_until': '2026-01-08T12:00:00+00:00', 'reference_number': REF}
    assert auth.authentication_method == 'xades.self-signed'
    auth.close()
    auth.close()  # only once
    script.verify()


@pytest.mark.parametrize('overrides, expected', [
    ({'environment': 'demo'}, 'true'),
    ({'environment': None, 'api_url': 'https://emulator.invalid/v2'}, 'true'),
    ({'environment': 'test', 'verify_certificate_chain': True}, 'true'),
    ({'environment': 'prod', 'verify_certificate_chain': False}, 'false'),
])
def test_verify_certificate_chain_query_parameter(signer_params, overrides, expected):
    params, cert = signer_params
    params.update(overrides)
    script = HttpScript(xades_login(cert, verify_chain=expected))
    KsefAuthenticator(make_client(script), params, wall_clock=wall_at_now().time).login()
    script.verify()


@pytest.mark.parametrize('code, hint', [
    (415, 'The signer has no permissions in context nip %s' % certs.TEST_NIP),
    (460, 'self-signed certificates work only on the test environment'),
    (450, 'check ksef_token'),
    (480, 'contact the Ministry of Finance'),
])
def test_failed_authentication_status(signer_params, code, hint):
    params, cert = signer_params
    script = HttpScript(xades_login(cert)[:2] + [
        Exchange('GET', '/auth/%s' % REF, reply=status_reply(code, 'Uwierzytelnianie zakończone niepowodzeniem',
                                                             ['detail one'])),
    ])
    auth = KsefAuthenticator(make_client(script), params, wall_clock=wall_at_now().time)
    with pytest.raises(KsefAuthError) as info:
        auth.login()
    script.verify()
    error = info.value
    assert error.status_code == code
    assert error.reference_number == REF
    assert error.details == ['detail one']
    assert str(error).startswith('KSeF authentication failed with status %d: Uwierzytelnianie' % code)
    assert '(detail one); reference number %s' % REF in str(error)
    assert hint in str(error)
    assert error.fail_kwargs()['reference_number'] == REF
    assert auth.session_opened is False


def test_authentication_polling_is_bounded(signer_params):
    params, cert = signer_params
    clock = FakeClock()
    # 1 s interval, 120 s budget: 121 polls, then give up.
    script = HttpScript(xades_login(cert)[:2] + [Exchange('GET', '/auth/%s' % REF, reply=status_reply(100))
                                                 for _attempt in range(121)])
    auth = KsefAuthenticator(make_client(script, clock=clock), params, wall_clock=wall_at_now().time)
    with pytest.raises(KsefTimeoutError) as info:
        auth.login()
    script.verify()
    assert info.value.reference_number == REF
    assert sum(clock.sleeps) == pytest.approx(120.0)


def _token_encryption_entry(key, valid_from, valid_to, usage=('KsefTokenEncryption',)):
    cert = certs.make_seal_certificate(key, common_name='MF key')
    der = certs.cert_der(cert)
    return {'certificate': base64.b64encode(der).decode(), 'certificateId': 'cid-%s' % valid_from,
            'publicKeyId': 'pk-%s' % valid_from, 'validFrom': valid_from, 'validTo': valid_to, 'usage': list(usage)}


def test_ksef_token_login_encrypts_with_the_newest_valid_key():
    newest_key = certs.make_key('rsa', slot=7)
    entries = [
        _token_encryption_entry(certs.make_key('rsa', slot=8), '2024-01-01T00:00:00Z', '2025-01-01T00:00:00Z'),
        _token_encryption_entry(certs.make_key('rsa', slot=9), '2025-01-01T00:00:00Z', '2027-01-01T00:00:00Z'),
        _token_encryption_entry(newest_key, '2025-06-01T00:00:00+00:00', '2027-01-01T00:00:00+00:00'),
        _token_encryption_entry(certs.make_key('rsa', slot=10), '2025-12-01T00:00:00Z', '2027-01-01T00:00:00Z',
                                usage=('SymmetricKeyEncryption',)),
        _token_encryption_entry(certs.make_key('rsa', slot=11), '2026-06-01T00:00:00Z', '2027-01-01T00:00:00Z'),
    ]
    seen = {}

    def check_body(body):
        seen.update(body)
        return True

    script = HttpScript([
        Exchange('POST', '/auth/challenge', reply=CHALLENGE),
        Exchange('GET', '/security/public-key-certificates', reply=entries),
        Exchange('POST', '/auth/ksef-token', status=202, json=check_body,
                 reply={'referenceNumber': REF, 'authenticationToken': {'token': OPERATION, 'validUntil': 'x'}}),
        Exchange('GET', '/auth/%s' % REF, token=OPERATION, reply=status_reply(200)),
        Exchange('POST', '/auth/token/redeem', token=OPERATION, reply=tokens_reply()),
    ])
    params = {'context_type': 'nip', 'context_id': certs.TEST_NIP, 'ksef_token': 'KSEF-TOKEN-VALUE',
              'auth_allowed_ips': ['192.0.2.10', '198.51.100.0/24']}
    auth = KsefAuthenticator(make_client(script), params, wall_clock=wall_at_now().time)
    assert auth.method == 'ksef_token'
    assert auth.access_token() == ACCESS
    script.verify()
    assert seen['challenge'] == CHALLENGE['challenge']
    assert seen['contextIdentifier'] == {'type': 'Nip', 'value': certs.TEST_NIP}
    assert seen['publicKeyId'] == 'pk-2025-06-01T00:00:00+00:00'
    assert seen['authorizationPolicy'] == {'allowedIps': {'ip4Addresses': ['192.0.2.10'], 'ip4Ranges': [],
                                                          'ip4Masks': ['198.51.100.0/24']}}
    plaintext = newest_key.decrypt(base64.b64decode(seen['encryptedToken']), padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    assert plaintext == b'KSEF-TOKEN-VALUE|1767268800123'


def test_ksef_token_retries_once_with_fresh_keys_after_21470():
    key = certs.make_key('rsa', slot=7)
    entries = [_token_encryption_entry(key, '2025-01-01T00:00:00Z', '2027-01-01T00:00:00Z')]
    unknown_key = {'exception': {'exceptionDetailList': [{'exceptionCode': 21470, 'exceptionDescription': 'unknown key'}]}}
    script = HttpScript([
        Exchange('POST', '/auth/challenge', reply=CHALLENGE),
        Exchange('GET', '/security/public-key-certificates', reply=entries),
        Exchange('POST', '/auth/ksef-token', status=400, reply=unknown_key),
        Exchange('GET', '/security/public-key-certificates', reply=entries),
        Exchange('POST', '/auth/ksef-token', status=202, reply={'referenceNumber': REF, 'authenticationToken': {'token': OPERATION}}),
        Exchange('GET', '/auth/%s' % REF, reply=status_reply(200)),
        Exchange('POST', '/auth/token/redeem', reply=tokens_reply()),
    ])
    auth = KsefAuthenticator(make_client(script), {'context_id': certs.TEST_NIP, 'ksef_token': 't'}, wall_clock=wall_at_now().time)
    auth.login()
    script.verify()


def test_ksef_token_without_a_valid_key_fails_clearly():
    entries = [_token_encryption_entry(certs.make_key('rsa', slot=8), '2024-01-01T00:00:00Z', '2025-01-01T00:00:00Z')]
    script = HttpScript([
        Exchange('POST', '/auth/challenge', reply=CHALLENGE),
        Exchange('GET', '/security/public-key-certificates', reply=entries),
    ])
    auth = KsefAuthenticator(make_client(script), {'context_id': certs.TEST_NIP, 'ksef_token': 't'}, wall_clock=wall_at_now().time)
    with pytest.raises(Exception) as info:
        auth.login()
    assert 'no currently valid certificate with usage KsefTokenEncryption' in str(info.value)


def test_access_token_is_used_as_is_and_nothing_is_closed():
    script = HttpScript([Exchange('GET', '/certificates/limits', token=ACCESS, reply={'canRequest': True})])
    auth = KsefAuthenticator(make_client(script), {'access_token': ACCESS, 'ksef_token': 'ignored'}, wall_clock=wall_at_now().time)
    assert auth.method == 'access_token'
    assert KsefApi(auth.client, auth).limits() == {'canRequest': True}
    auth.close()
    script.verify()


def test_given_access_token_rejected_with_401_is_reported():
    script = HttpScript([Exchange('GET', '/certificates/limits', status=401,
                                  reply={'title': 'Unauthorized', 'status': 401, 'detail': 'Token expired'})])
    auth = KsefAuthenticator(make_client(script), {'access_token': ACCESS}, wall_clock=wall_at_now().time)
    with pytest.raises(KsefApiError) as info:
        KsefApi(auth.client, auth).limits()
    script.verify()
    assert info.value.status == 401
    assert 'Token expired' in str(info.value)


def test_401_refreshes_once_and_repeats_the_call(signer_params):
    params, cert = signer_params
    new_access = certs.fake_jwt(NOW + 1800, 'access-2')
    script = HttpScript(xades_login(cert) + [
        Exchange('GET', '/certificates/limits', token=ACCESS, status=401, reply={'title': 'Unauthorized', 'status': 401}),
        Exchange('POST', '/auth/token/refresh', token=REFRESH, reply={'accessToken': {'token': new_access, 'validUntil': None}}),
        Exchange('GET', '/certificates/limits', token=new_access, reply={'canRequest': True}),
    ])
    auth = KsefAuthenticator(make_client(script), params, wall_clock=wall_at_now().time)
    assert KsefApi(auth.client, auth).limits() == {'canRequest': True}
    script.verify()
    assert auth.tokens()['access_token_valid_until'] == '2026-01-01T12:30:00+00:00'


def test_second_401_is_not_retried_again(signer_params):
    params, cert = signer_params
    script = HttpScript(xades_login(cert) + [
        Exchange('GET', '/certificates/limits', status=401, reply={'title': 'Unauthorized', 'status': 401}),
        Exchange('POST', '/auth/token/refresh', reply={'accessToken': {'token': ACCESS, 'validUntil': None}}),
        Exchange('GET', '/certificates/limits', status=401, reply={'title': 'Unauthorized', 'status': 401}),
    ])
    auth = KsefAuthenticator(make_client(script), params, wall_clock=wall_at_now().time)
    with pytest.raises(KsefApiError):
        KsefApi(auth.client, auth).limits()
    script.verify()


def test_access_token_is_refreshed_before_expiry_and_relogin_when_refresh_fails(signer_params):
    params, cert = signer_params
    wall = wall_at_now()
    refreshed = certs.fake_jwt(NOW + 1800, 'access-2')
    script = HttpScript(xades_login(cert) + [
        Exchange('POST', '/auth/token/refresh', token=REFRESH,
                 reply={'accessToken': {'token': refreshed, 'validUntil': '2026-01-01T12:30:00Z'}}),
        Exchange('POST', '/auth/token/refresh', token=REFRESH, status=400,
                 reply={'exception': {'exceptionDetailList': [{'exceptionCode': 21301, 'exceptionDescription': 'x'}]}}),
    ] + xades_login(cert))
    auth = KsefAuthenticator(make_client(script), params, wall_clock=wall.time)
    assert auth.access_token() == ACCESS
    wall.advance(850)  # NOW + 850, 50 s left: refresh
    assert auth.access_token() == refreshed
    wall.advance(940)  # NOW + 1790, refreshed token nearly expired, refresh token rejected: log in again
    assert auth.access_token() == ACCESS
    script.verify()


def test_close_errors_become_warnings(signer_params):
    params, cert = signer_params
    warnings = []
    script = HttpScript(xades_login(cert) + [Exchange('DELETE', '/auth/sessions/current', status=500, reply='oops')] * 6)
    client = make_client(script, warnings=warnings)
    auth = KsefAuthenticator(client, params, wall_clock=wall_at_now().time)
    auth.login()
    auth.close()
    script.verify()
    assert len(warnings) == 1
    assert warnings[0].startswith('could not end the KSeF session (reference number %s): DELETE' % REF)


def test_constructor_validates_before_any_call(tmp_path):
    script = HttpScript([])
    client = make_client(script)
    with pytest.raises(KsefInputError) as info:
        KsefAuthenticator(client, {'context_id': certs.TEST_NIP})
    assert 'no KSeF credential given' in str(info.value)
    with pytest.raises(KsefInputError) as info:
        KsefAuthenticator(client, {'ksef_token': 'x'})
    assert 'context_id is required' in str(info.value)
    with pytest.raises(KsefCredentialError):
        KsefAuthenticator(client, {'context_id': certs.TEST_NIP, 'auth_certificate_path': str(tmp_path / 'none.pem'),
                                   'auth_private_key_path': str(tmp_path / 'none.key')})
    assert client.calls == 0


def test_parse_datetime_and_jwt_expiry():
    assert parse_datetime('2025-10-11T12:23:56.0154302+00:00') == datetime.datetime(
        2025, 10, 11, 12, 23, 56, 15430, datetime.timezone.utc)
    assert parse_datetime('2025-10-11T14:23:56+02:00').timestamp() == parse_datetime('2025-10-11T12:23:56Z').timestamp()
    assert parse_datetime('yesterday') is None
    assert jwt_expiry(certs.fake_jwt(12345)) == 12345
    assert jwt_expiry('not-a-jwt') is None
