# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ksef_session through main(), with scripted KSeF exchanges."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

import pytest

from ansible_collections.ksef.certificates.plugins.modules import ksef_session
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

REF = '20260101-AU-2DFC46C000-3AC6D5877F-D4'
OPERATION = 'OPERATION-TOKEN'
PASSPHRASE = 'module-test-passphrase'
BASE = 'https://api-test.ksef.mf.gov.pl/v2'


@pytest.fixture(autouse=True)
def no_ksef_environment(monkeypatch):
    import os
    for name in list(os.environ):
        if name.startswith('KSEF_'):
            monkeypatch.delenv(name)


@pytest.fixture
def signer_files(tmp_path):
    key = certs.make_key('ec')
    cert = certs.make_seal_certificate(key)
    (tmp_path / 'signer.pem').write_bytes(certs.cert_pem(cert))
    (tmp_path / 'signer.key').write_bytes(certs.key_bytes(key, passphrase=PASSPHRASE))
    return {'auth_certificate_path': str(tmp_path / 'signer.pem'), 'auth_private_key_path': str(tmp_path / 'signer.key'),
            'auth_passphrase': PASSPHRASE}


def login_exchanges(access, refresh, final_status=200):
    now = time.time()
    return [
        Exchange('POST', BASE + '/auth/challenge', reply={
            'challenge': '20260101-CR-0123456789-ABCDEF0123-4A', 'timestamp': '2026-01-01T12:00:00Z',
            'timestampMs': int(now * 1000), 'clientIp': '192.0.2.1'}),
        Exchange('POST', BASE + '/auth/xades-signature', status=202, params={'verifyCertificateChain': 'false'},
                 reply={'referenceNumber': REF, 'authenticationToken': {'token': OPERATION, 'validUntil': 'x'}}),
        Exchange('GET', BASE + '/auth/' + REF, token=OPERATION, reply={
            'startDate': '2026-01-01T12:00:00Z', 'authenticationMethod': 'QualifiedSeal',
            'authenticationMethodInfo': {'category': 'XadesSignature', 'code': 'xades.self-signed', 'displayName': 'x'},
            'status': {'code': final_status, 'description': 'status %d' % final_status,
                       'details': ['no permission'] if final_status != 200 else None}}),
        Exchange('POST', BASE + '/auth/token/redeem', token=OPERATION, reply={
            'accessToken': {'token': access, 'validUntil': '2030-01-01T12:15:00Z'},
            'refreshToken': {'token': refresh, 'validUntil': '2030-01-08T12:00:00Z'}}),
    ]


def test_present_logs_in_and_keeps_the_session_open(run_module, monkeypatch, signer_files):
    access = certs.fake_jwt(time.time() + 900, 'a')
    refresh = certs.fake_jwt(time.time() + 86400, 'r')
    script = HttpScript(login_exchanges(access, refresh)).install(monkeypatch)
    args = dict(signer_files, context_id=certs.TEST_NIP)
    result = run_module(ksef_session, args)
    script.verify()  # no DELETE /auth/sessions/current: the session stays open
    assert result.exit_code == 0, result
    assert result['changed'] is True
    assert result['access_token'] == access
    assert result['refresh_token'] == refresh
    assert result['access_token_valid_until'] == '2030-01-01T12:15:00+00:00'
    assert result['refresh_token_valid_until'] == '2030-01-08T12:00:00+00:00'
    assert result['reference_number'] == REF
    assert result['authentication_method'] == 'xades'
    assert result['ksef_authentication_method'] == 'xades.self-signed'
    assert result['api_calls'] == 4
    assert PASSPHRASE not in json.dumps(result)


def test_present_in_check_mode_does_not_log_in(run_module, monkeypatch, signer_files):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_session, dict(signer_files, context_id=certs.TEST_NIP), check_mode=True)
    script.verify()
    assert result['changed'] is True
    assert 'access_token' not in result
    assert result['api_calls'] == 0


def test_connection_options_from_environment(run_module, monkeypatch, signer_files):
    access = certs.fake_jwt(time.time() + 900, 'a')
    script = HttpScript(login_exchanges(access, 'r')).install(monkeypatch)
    monkeypatch.setenv('KSEF_CONTEXT_ID', certs.TEST_NIP)
    monkeypatch.setenv('KSEF_AUTH_CERTIFICATE_PATH', signer_files['auth_certificate_path'])
    monkeypatch.setenv('KSEF_AUTH_PRIVATE_KEY_PATH', signer_files['auth_private_key_path'])
    monkeypatch.setenv('KSEF_AUTH_PASSPHRASE', PASSPHRASE)
    monkeypatch.setenv('KSEF_ENVIRONMENT', 'test')
    result = run_module(ksef_session, {})
    script.verify()
    assert result['access_token'] == access


def test_authentication_failure_reports_code_and_reference(run_module, monkeypatch, signer_files):
    script = HttpScript(login_exchanges('a', 'r', final_status=415)[:3]).install(monkeypatch)
    result = run_module(ksef_session, dict(signer_files, context_id=certs.TEST_NIP))
    script.verify()
    assert result.exit_code == 1
    assert result['failed'] is True
    assert 'status 415' in result['msg'] and REF in result['msg']
    assert 'no permissions in context nip %s' % certs.TEST_NIP in result['msg']
    assert result['auth_status'] == {'code': 415, 'description': 'status 415', 'details': ['no permission']}
    assert result['reference_number'] == REF
    assert result['api_calls'] == 3


@pytest.mark.parametrize('args, message', [
    ({'context_id': '1234563219'}, 'is not a valid NIP'),
    ({'context_id': certs.TEST_NIP, 'auth_allowed_ips': ['10.0.0.0/40']}, 'auth_allowed_ips entry'),
    ({'context_id': certs.TEST_NIP, 'context_type': 'peppol_id'}, 'not a Peppol provider identifier'),
])
def test_invalid_input_fails_before_any_call(run_module, monkeypatch, signer_files, args, message):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_session, dict(signer_files, **args))
    script.verify()
    assert result['failed'] is True
    assert message in result['msg']
    assert result['api_calls'] == 0


def test_wrong_passphrase_fails_without_echoing_it(run_module, monkeypatch, signer_files):
    HttpScript([]).install(monkeypatch)
    wrong = 'Wrong-Passphrase-123'
    result = run_module(ksef_session, dict(signer_files, context_id=certs.TEST_NIP, auth_passphrase=wrong))
    assert result['failed'] is True
    assert 'passphrase (auth_passphrase) is wrong' in result['msg']
    assert wrong not in json.dumps(result)


def test_no_credential_fails(run_module, monkeypatch):
    HttpScript([]).install(monkeypatch)
    result = run_module(ksef_session, {'context_id': certs.TEST_NIP})
    assert result['failed'] is True
    assert 'no KSeF credential given' in result['msg']


def test_environment_and_api_url_are_mutually_exclusive(run_module, monkeypatch, signer_files):
    HttpScript([]).install(monkeypatch)
    result = run_module(ksef_session, dict(signer_files, context_id=certs.TEST_NIP, environment='demo',
                                           api_url='https://x.invalid/v2'))
    assert result['failed'] is True
    assert 'mutually exclusive' in result['msg']


def test_present_with_access_token_is_refused(run_module, monkeypatch):
    HttpScript([]).install(monkeypatch)
    result = run_module(ksef_session, {'access_token': 'abc'})
    assert result['failed'] is True
    assert 'only used with state=absent' in result['msg']


def test_absent_ends_the_session_of_the_refresh_token(run_module, monkeypatch):
    refresh = certs.fake_jwt(time.time() + 86400, 'r')
    script = HttpScript([
        Exchange('DELETE', 'https://emulator.invalid/v2/auth/sessions/current', token=refresh, status=204),
    ]).install(monkeypatch)
    result = run_module(ksef_session, {'state': 'absent', 'refresh_token': refresh, 'access_token': 'other',
                                       'api_url': 'https://emulator.invalid/v2'})
    script.verify()
    assert result['changed'] is True
    assert result['api_calls'] == 1


def test_absent_for_an_ended_session_is_no_change(run_module, monkeypatch):
    script = HttpScript([
        Exchange('DELETE', BASE + '/auth/sessions/current', token='ACCESS', status=401,
                 reply={'title': 'Unauthorized', 'status': 401, 'detail': 'invalid token'}),
    ]).install(monkeypatch)
    result = run_module(ksef_session, {'state': 'absent', 'access_token': 'ACCESS'})
    script.verify()
    assert result['changed'] is False


def test_absent_server_error_fails(run_module, monkeypatch):
    script = HttpScript([Exchange('DELETE', BASE + '/auth/sessions/current', status=400,
                                  reply={'exception': {'exceptionDetailList': [
                                      {'exceptionCode': 21304, 'exceptionDescription': 'unknown'}]}})]).install(monkeypatch)
    result = run_module(ksef_session, {'state': 'absent', 'access_token': 'ACCESS'})
    script.verify()
    assert result['failed'] is True
    assert result['msg'] == 'DELETE /auth/sessions/current failed: HTTP 400, KSeF 21304: unknown'
    assert result['http_status'] == 400


def test_absent_in_check_mode_predicts_from_token_expiry(run_module, monkeypatch):
    script = HttpScript([]).install(monkeypatch)
    expired = certs.fake_jwt(time.time() - 10)
    valid = certs.fake_jwt(time.time() + 600)
    assert run_module(ksef_session, {'state': 'absent', 'refresh_token': expired}, check_mode=True)['changed'] is False
    assert run_module(ksef_session, {'state': 'absent', 'refresh_token': valid}, check_mode=True)['changed'] is True
    script.verify()


def test_absent_without_token_fails(run_module, monkeypatch):
    HttpScript([]).install(monkeypatch)
    result = run_module(ksef_session, {'state': 'absent'})
    assert result['failed'] is True
    assert 'needs the refresh_token or access_token' in result['msg']
