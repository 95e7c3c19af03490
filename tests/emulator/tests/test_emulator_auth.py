"""Authentication flows of the emulator: challenge, XAdES login, statuses, tokens, sessions, policies."""

import base64
import re
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ksef_emulator import testcerts, util

from conftest import (auth_token_request, exception_codes, login, new_seal, sign_xades, start_xades,
                      wait_for_auth)

CHALLENGE_RE = re.compile(r'^\d{8}-CR-[A-F0-9]{10}-[A-F0-9]{10}-[A-F0-9]{2}$')


def test_challenge_shape(client):
    before_ms = int(time.time() * 1000)
    body = client.call('POST', '/auth/challenge').json()
    assert CHALLENGE_RE.match(body['challenge'])
    assert body['clientIp'] == '127.0.0.1'
    assert before_ms - 1000 <= body['timestampMs'] <= int(time.time() * 1000) + 1000
    assert abs(util.parse_iso(body['timestamp']) * 1000 - body['timestampMs']) < 1


def test_challenge_is_single_use(client):
    nip, cert, key = new_seal()
    challenge = client.call('POST', '/auth/challenge').json()['challenge']
    assert start_xades(client, cert, key, nip, challenge=challenge).status_code == 202
    second = start_xades(client, cert, key, nip, challenge=challenge)
    assert second.status_code == 400
    assert exception_codes(second) == [21111]


def test_unknown_and_expired_challenge(client, emulator_server):
    nip, cert, key = new_seal()
    unknown = start_xades(client, cert, key, nip, challenge='20250101-CR-0000000000-0000000000-00')
    assert exception_codes(unknown) == [21111]
    challenge = client.call('POST', '/auth/challenge').json()['challenge']
    # Age the challenge past its 10 minutes in the server's store.
    emulator_server.emulator.store.execute('UPDATE challenges SET created = created - 601 WHERE challenge = ?',
                                           (challenge,))
    expired = start_xades(client, cert, key, nip, challenge=challenge)
    assert expired.status_code == 400 and exception_codes(expired) == [21111]


def test_seal_login_status_goes_100_then_200(start_server, emulator_clock):
    # The login stays in progress until the test moves the emulator's clock, however slow the first poll.
    _server, slow_client = start_server(auth_processing_delay=300)
    nip, cert, key = new_seal('rsa')
    init = start_xades(slow_client, cert, key, nip)
    assert init.status_code == 202
    body = init.json()
    token = body['authenticationToken']['token']
    assert token.count('.') == 2
    first = slow_client.call('GET', '/auth/{referenceNumber}', {'referenceNumber': body['referenceNumber']},
                             token=token)
    assert first.json()['status']['code'] == 100
    emulator_clock.advance(300)
    final = wait_for_auth(slow_client, body)
    assert final['status']['code'] == 200
    assert final['authenticationMethodInfo'] == {'category': 'XadesSignature', 'code': 'xades.qualified-seal',
                                                 'displayName': 'Pieczęć kwalifikowana'}
    assert final['authenticationMethod'] == 'QualifiedSeal'


def test_wrong_content_type_is_415(client):
    nip, cert, key = new_seal()
    challenge = client.call('POST', '/auth/challenge').json()['challenge']
    signed = sign_xades(auth_token_request(challenge, nip), cert, key)
    response = client.call('POST', '/auth/xades-signature', data=signed, headers={'Content-Type': 'text/plain'},
                           check=False)
    assert response.status_code == 415
    assert response.headers['Content-Type'].startswith('application/problem+json')


def test_tampered_document_is_rejected_synchronously(client):
    nip, cert, key = new_seal()
    challenge = client.call('POST', '/auth/challenge').json()['challenge']
    signed = sign_xades(auth_token_request(challenge, nip), cert, key)
    tampered = signed.replace(nip.encode(), testcerts.valid_nip().encode(), 1)
    response = client.call('POST', '/auth/xades-signature', data=tampered, headers={'Content-Type': 'application/xml'})
    assert response.status_code == 400
    assert exception_codes(response) == [9105]


def test_no_permission_in_context_is_415(client):
    nip, cert, key = new_seal()
    other_context = testcerts.valid_nip()
    init = start_xades(client, cert, key, other_context).json()
    status = wait_for_auth(client, init)
    assert status['status']['code'] == 415
    redeem = client.call('POST', '/auth/token/redeem', token=init['authenticationToken']['token'])
    assert redeem.status_code == 400 and exception_codes(redeem) == [21301]


def test_testdata_grant_and_person_link_give_permission(client):
    owner_nip = testcerts.valid_nip()
    delegate_nip, delegate_cert, delegate_key = new_seal()
    grant = {'contextIdentifier': {'type': 'Nip', 'value': owner_nip},
             'authorizedIdentifier': {'type': 'Nip', 'value': delegate_nip},
             'permissions': [{'permissionType': 'CredentialsManage', 'description': 'test grant'}]}
    assert client.call('POST', '/testdata/permissions', json=grant).status_code == 200
    assert login(client, delegate_cert, delegate_key, owner_nip)['accessToken']

    pesel = testcerts.valid_pesel()
    person_cert, person_key = testcerts.make_person('Jan', 'Kowalski', pesel=pesel)
    company_nip = testcerts.valid_nip()
    status = wait_for_auth(client, start_xades(client, person_cert, person_key, company_nip).json())
    assert status['status']['code'] == 415
    person = {'nip': company_nip, 'pesel': pesel, 'isBailiff': False, 'description': 'owner by NIP-PESEL link'}
    assert client.call('POST', '/testdata/person', json=person).status_code == 200
    tokens = login(client, person_cert, person_key, company_nip)
    data = client.call('GET', '/certificates/enrollments/data', token=tokens['accessToken']).json()
    assert data['serialNumber'] == 'PNOPL-%s' % pesel and data['organizationName'] is None


def test_verify_certificate_chain_true_fails_self_signed_with_460(client):
    nip, cert, key = new_seal()
    status = wait_for_auth(client, start_xades(client, cert, key, nip, verify_chain=True).json())
    assert status['status']['code'] == 460
    assert status['status']['details']


def test_redeem_once_refresh_and_token_kinds(client):
    nip, cert, key = new_seal()
    tokens = login(client, cert, key, nip)
    again = client.call('POST', '/auth/token/redeem', token=tokens['authenticationToken'])
    assert again.status_code == 400 and exception_codes(again) == [21301]
    # The operation token serves only the auth status and redeem; the access token serves the API.
    assert client.call('GET', '/certificates/limits', token=tokens['authenticationToken']).status_code == 401
    assert client.call('POST', '/auth/token/refresh', token=tokens['accessToken']).status_code == 401
    assert client.call('GET', '/certificates/limits', token=tokens['accessToken']).status_code == 200
    refreshed = client.call('POST', '/auth/token/refresh', token=tokens['refreshToken'])
    assert refreshed.status_code == 200
    new_access = refreshed.json()['accessToken']['token']
    assert new_access != tokens['accessToken']
    assert client.call('GET', '/certificates/limits', token=new_access).status_code == 200
    status = client.call('GET', '/auth/{referenceNumber}', {'referenceNumber': tokens['referenceNumber']},
                         token=tokens['authenticationToken']).json()
    assert status['isTokenRedeemed'] is True and status['lastTokenRefreshDate']


def test_forged_and_garbage_tokens_are_401_problem_json(client):
    nip, cert, key = new_seal()
    access = login(client, cert, key, nip)['accessToken']
    header, payload, signature = access.split('.')
    forged = '%s.%s.%s' % (header, payload, signature[:-2] + ('AA' if signature[-2:] != 'AA' else 'BB'))
    for token in (forged, 'garbage', None):
        response = client.call('GET', '/certificates/limits', token=token)
        assert response.status_code == 401
        assert response.headers['Content-Type'].startswith('application/problem+json')


def test_closing_the_session_invalidates_the_refresh_token(client):
    nip, cert, key = new_seal()
    tokens = login(client, cert, key, nip)
    sessions = client.call('GET', '/auth/sessions', token=tokens['accessToken']).json()
    assert [s['isCurrent'] for s in sessions['items']] == [True]
    assert client.call('DELETE', '/auth/sessions/current', token=tokens['accessToken']).status_code == 204
    assert client.call('POST', '/auth/token/refresh', token=tokens['refreshToken']).status_code == 401
    # Access tokens already issued live until they expire (documented KSeF behaviour).
    assert client.call('GET', '/certificates/limits', token=tokens['accessToken']).status_code == 200


def test_access_token_expires(start_server, emulator_clock):
    server, short_client = start_server(access_token_ttl=300)
    nip, cert, key = new_seal()
    tokens = login(short_client, cert, key, nip)
    assert short_client.call('GET', '/certificates/limits', token=tokens['accessToken']).status_code == 200
    emulator_clock.advance(301)
    expired = short_client.call('GET', '/certificates/limits', token=tokens['accessToken'])
    assert expired.status_code == 401
    assert 'expired' in expired.json()['detail']


def test_ip_allow_list_policy(client):
    nip, cert, key = new_seal()
    denied = login(client, cert, key, nip, allowed_ips={'ip4Addresses': ['10.1.2.3']})['accessToken']
    response = client.call('GET', '/certificates/limits', token=denied)
    assert response.status_code == 403
    assert response.json()['reasonCode'] == 'ip-not-allowed'
    assert response.json()['security'] == {'clientIp': '127.0.0.1'}
    allowed = login(client, cert, key, nip, allowed_ips={'ip4Masks': ['127.0.0.0/8']})['accessToken']
    assert client.call('GET', '/certificates/limits', token=allowed).status_code == 200


def _encrypt_token(client, token, timestamp_ms):
    keys = client.call('GET', '/security/public-key-certificates').json()
    entry = [k for k in keys if 'KsefTokenEncryption' in k['usage']][0]
    cert = x509.load_der_x509_certificate(base64.b64decode(entry['certificate']))
    ciphertext = cert.public_key().encrypt(('%s|%d' % (token, timestamp_ms)).encode(), padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    return base64.b64encode(ciphertext).decode(), entry['publicKeyId']


def _token_login(client, nip, token, public_key_id=None, shift_ms=0):
    challenge = client.call('POST', '/auth/challenge').json()
    encrypted, key_id = _encrypt_token(client, token, challenge['timestampMs'] + shift_ms)
    body = {'challenge': challenge['challenge'], 'contextIdentifier': {'type': 'Nip', 'value': nip},
            'encryptedToken': encrypted, 'publicKeyId': public_key_id or key_id}
    return client.call('POST', '/auth/ksef-token', json=body)


def wait_for_token_status(client, access, reference, status, timeout=10):
    """Poll GET /tokens/{ref} until the token has `status`; the token's body."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.call('GET', '/tokens/{referenceNumber}', {'referenceNumber': reference}, token=access).json()
        if body['status'] == status or time.monotonic() > deadline:
            assert body['status'] == status
            return body
        time.sleep(0.1)


def test_ksef_token_flow(client):
    nip, cert, key = new_seal()
    xades_tokens = login(client, cert, key, nip)
    generated = client.call('POST', '/tokens', token=xades_tokens['accessToken'],
                            json={'permissions': ['CredentialsRead'], 'description': 'token for tests'})
    assert generated.status_code == 202
    ksef_token = generated.json()['token']
    reference = generated.json()['referenceNumber']
    listed = client.call('GET', '/tokens', token=xades_tokens['accessToken']).json()
    assert [t['referenceNumber'] for t in listed['tokens']] == [reference]
    wait_for_token_status(client, xades_tokens['accessToken'], reference, 'Active')

    init = _token_login(client, nip, ksef_token)
    assert init.status_code == 202
    status = wait_for_auth(client, init.json())
    assert status['status']['code'] == 200 and status['authenticationMethodInfo']['category'] == 'Token'
    token_access = client.call('POST', '/auth/token/redeem',
                               token=init.json()['authenticationToken']['token']).json()['accessToken']['token']
    data = client.call('GET', '/certificates/enrollments/data', token=token_access)
    assert data.status_code == 400 and exception_codes(data) == [25001]
    enroll = client.call('POST', '/certificates/enrollments', token=token_access,
                         json={'certificateName': 'Token cert', 'certificateType': 'Authentication', 'csr': 'AAAA'})
    assert enroll.status_code == 400 and exception_codes(enroll) == [25002]
    assert client.call('GET', '/certificates/limits', token=token_access).status_code == 200

    wrong_time = _token_login(client, nip, ksef_token, shift_ms=1)
    assert wait_for_auth(client, wrong_time.json())['status']['code'] == 450
    wrong_key = _token_login(client, nip, ksef_token, public_key_id=base64.b64encode(b'x' * 32).decode())
    assert wrong_key.status_code == 400 and exception_codes(wrong_key) == [21470]

    assert client.call('DELETE', '/tokens/{referenceNumber}', {'referenceNumber': reference},
                       token=xades_tokens['accessToken']).status_code == 204
    revoked = _token_login(client, nip, ksef_token)
    assert wait_for_auth(client, revoked.json())['status']['code'] == 450
    wait_for_token_status(client, xades_tokens['accessToken'], reference, 'Revoked')


def test_error_formats_and_system_warning_echo(client):
    nip, cert, key = new_seal()
    access = login(client, cert, key, nip)['accessToken']
    default = client.call('POST', '/certificates/retrieve', token=access, json={'certificateSerialNumbers': []})
    body = default.json()['exception']
    assert default.status_code == 400 and body['exceptionDetailList'][0]['exceptionCode'] == 21405
    assert body['serviceCode'] and body['timestamp']
    problem = client.call('POST', '/certificates/retrieve', token=access, json={'certificateSerialNumbers': []},
                          headers={'X-Error-Format': 'problem-details'})
    assert problem.headers['Content-Type'].startswith('application/problem+json')
    assert problem.json()['errors'][0]['code'] == 21405
    warned = client.call('GET', '/certificates/limits', token=access,
                         headers={'X-Test-System-Warning': '[sig-001]: test warning'})
    assert warned.headers['X-System-Warning'] == '[sig-001]: test warning'
    assert 'X-System-Warning' not in client.call('GET', '/certificates/limits', token=access).headers
