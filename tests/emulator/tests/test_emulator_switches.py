"""Switches of real KSeF behaviour (off by default): Blocked revocations, status record expiry (410),
escalating 429 blocks, refusal of a re-used key, injected X-System-Warning; command line and /emulator/switches."""

import signal
import time

from cryptography.hazmat.primitives.asymmetric import ec

from conftest import EmulatorClient, enroll, enroll_and_wait, exception_codes, login, new_seal, start_xades, wait_for_auth, \
    wait_for_enrollment
from test_emulator_server import _start_cli

from ksef_emulator import switches

REVOKE = '/certificates/{certificateSerialNumber}/revoke'


def _session(client):
    nip, cert, key = new_seal()
    return login(client, cert, key, nip)['accessToken']


def _query_status(client, token, serial, status=None):
    body = {'certificateSerialNumber': serial}
    if status:
        body['status'] = status
    return client.call('POST', '/certificates/query', token=token, json=body).json()['certificates']


def _until(predicate, timeout=10, interval=0.1):
    """Poll predicate() until it returns a result (not None, False or []); the switches work on the emulator's
    clock. A requests.Response of an error is falsy, hence the explicit comparison."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if not (value is None or value is False or value == []) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_switches_are_off_by_default(client):
    assert client.control('GET', '/emulator/switches').json() == switches.DEFAULTS


def test_blocked_revocation(start_server, emulator_clock):
    server, client = start_server(rate_limits='off')
    # Blocked until the test moves the emulator's clock: the checks below do not race a short block.
    assert client.control('PUT', '/emulator/switches', json={'revocationBlockedSeconds': 300}).status_code == 200
    token = _session(client)
    serial = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    response = client.call('POST', REVOKE, {'certificateSerialNumber': serial}, token=token,
                           json={'revocationReason': 'Superseded'})
    assert response.status_code == 204
    blocked = _query_status(client, token, serial, 'Blocked')
    assert [item['status'] for item in blocked] == ['Blocked']
    assert _query_status(client, token, serial, 'Active') == []
    assert [c['status'] for c in server.emulator.store.all('SELECT status FROM certificates')] == ['Blocked']
    again = client.call('POST', REVOKE, {'certificateSerialNumber': serial}, token=token)
    assert again.status_code == 400 and exception_codes(again) == [25009]
    assert 'Blocked' in again.text
    # A Blocked certificate does not count as active (limits) and reads Revoked once the revocation completes.
    assert client.call('GET', '/certificates/limits', token=token).json()['certificate']['remaining'] == 100
    assert _query_status(client, token, serial, 'Blocked')[0]['status'] == 'Blocked'
    emulator_clock.advance(300)
    assert _query_status(client, token, serial, 'Revoked')[0]['status'] == 'Revoked'
    state = client.state()['certificates'][0]
    assert state['status'] == 'Revoked' and state['revocationReason'] == 'Superseded'


def test_revocation_is_immediate_when_off(start_server):
    dummy, client = start_server(rate_limits='off')
    token = _session(client)
    serial = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    assert client.call('POST', REVOKE, {'certificateSerialNumber': serial}, token=token).status_code == 204
    assert [c['status'] for c in _query_status(client, token, serial)] == ['Revoked']


def test_enrollment_and_auth_records_expire(start_server, emulator_clock):
    dummy, client = start_server(rate_limits='off')
    # Kept until the test moves the emulator's clock, so the records are read before they expire however slowly.
    assert client.control('PUT', '/emulator/switches', json={'enrollmentRetentionSeconds': 300,
                                                             'authRetentionSeconds': 300}).status_code == 200
    nip, cert, key = new_seal()
    init = start_xades(client, cert, key, nip).json()
    assert wait_for_auth(client, init)['status']['code'] == 200
    token = login(client, cert, key, nip)['accessToken']
    reference = enroll(client, token, ec.generate_private_key(ec.SECP256R1())).json()['referenceNumber']
    assert wait_for_enrollment(client, token, reference)['status']['code'] == 200

    def gone(route, params, bearer):
        response = client.call('GET', route, params, token=bearer)
        return response if response.status_code == 410 else None

    emulator_clock.advance(301)
    expired = _until(lambda: gone('/certificates/enrollments/{referenceNumber}', {'referenceNumber': reference}, token))
    assert expired.headers['Content-Type'].startswith('application/problem+json')
    assert expired.json()['status'] == 410 and reference in expired.json()['detail']
    auth_gone = _until(lambda: gone('/auth/{referenceNumber}', {'referenceNumber': init['referenceNumber']},
                                    init['authenticationToken']['token']))
    assert auth_gone.json()['status'] == 410
    # The certificate itself stays: only the status record is forgotten.
    assert len(client.state()['certificates']) == 1
    # Restoring the starting values (KSeF's 30 / 7 days) brings the record back into its retention.
    client.control('DELETE', '/emulator/switches')
    assert client.call('GET', '/certificates/enrollments/{referenceNumber}', {'referenceNumber': reference},
                       token=token).status_code == 200


def test_rate_limit_blocks_lengthen_on_repeated_violations(start_server, emulator_clock):
    dummy, client = start_server()
    token = _session(client)
    other = _session(client)
    # Every call below falls into the same second of the emulator's clock, however slowly a loaded machine sends them.
    emulator_clock.freeze()
    assert client.control('PUT', '/emulator/switches', json={'rateLimitEscalation': 2}).status_code == 200
    answers = [client.call('GET', '/certificates/limits', token=token) for dummy in range(13)]
    assert [r.status_code for r in answers[:10]] == [200] * 10
    waits = [int(r.headers['Retry-After']) for r in answers[10:]]
    assert [r.status_code for r in answers[10:]] == [429] * 3
    assert waits[0] == 1 and waits[1] == 2 and waits[2] == 4, waits
    assert 'wydłużona' in answers[11].json()['status']['details'][0]
    # Without escalation (the default) the block ends as soon as a slot of the window frees.
    client.control('DELETE', '/emulator/switches')
    plain = [client.call('GET', '/certificates/enrollments/data', token=other) for dummy in range(13)]
    assert {int(r.headers['Retry-After']) for r in plain[10:]} == {1}


def test_reused_key_refused_for_the_same_subject(start_server):
    dummy, client = start_server(rate_limits='off', switches={'refuseReusedKey': True})
    token = _session(client)
    key = ec.generate_private_key(ec.SECP256R1())
    enroll_and_wait(client, token, key)
    reference = enroll(client, token, key, name='Same key again').json()['referenceNumber']
    status = wait_for_enrollment(client, token, reference)
    assert status['status']['code'] == 400
    assert status['status']['details'] == ['Klucz publiczny został już certyfikowany.']
    assert 'certificateSerialNumber' not in status
    enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()), name='New key')
    # Off: the same key is certified again (KSeF documents only the refusal for another subject).
    client.control('PUT', '/emulator/switches', json={'refuseReusedKey': False})
    enroll_and_wait(client, token, key, name='Same key allowed')
    assert len(client.state()['certificates']) == 3


def test_system_warning_on_chosen_answers(start_server):
    dummy, client = start_server(rate_limits='off')
    answer = client.control('PUT', '/emulator/switches', json={'systemWarnings': [
        {'method': 'POST', 'route': '/auth/challenge', 'warning': switches.SIG_001},
        {'route': '/certificates/limits', 'warning': '[x-002]: Zażółć gęślą jaźń'}]})
    assert answer.status_code == 200
    assert answer.json()['systemWarnings'][1] == {'method': '*', 'route': '/certificates/limits',
                                                  'warning': '[x-002]: Zazolc gesla jazn'}
    assert client.call('POST', '/auth/challenge').headers['X-System-Warning'] == switches.SIG_001
    assert 'X-System-Warning' not in client.call('GET', '/security/public-key-certificates').headers
    echoed = client.call('POST', '/auth/challenge', headers={'X-Test-System-Warning': '[t-1]: test'})
    assert echoed.headers['X-System-Warning'] == '[t-1]: test | ' + switches.SIG_001
    token = _session(client)
    assert client.call('GET', '/certificates/limits', token=token).headers['X-System-Warning'].startswith('[x-002]')
    bad = client.control('PUT', '/emulator/switches', json={'systemWarnings': [{'route': 'auth'}], 'nope': 1})
    assert bad.status_code == 400 and 'nope' in bad.json()['error']
    assert client.control('DELETE', '/emulator/switches').json()['systemWarnings'] == []
    assert 'X-System-Warning' not in client.call('POST', '/auth/challenge').headers


def test_cli_switches(tmp_path):
    process, base_url = _start_cli(tmp_path, '--no-tls', '--revocation-blocked-seconds', '2', '--refuse-reused-key',
                                   '--enrollment-retention', '60', '--rate-limit-escalation', '3',
                                   '--system-warning', 'POST /auth/challenge=' + switches.SIG_001)
    try:
        plain = EmulatorClient(base_url)
        expected = dict(switches.DEFAULTS, revocationBlockedSeconds=2.0, refuseReusedKey=True,
                        enrollmentRetentionSeconds=60.0, rateLimitEscalation=3.0,
                        systemWarnings=[{'method': 'POST', 'route': '/auth/challenge', 'warning': switches.SIG_001}])
        assert plain.control('GET', '/emulator/switches').json() == expected
        assert plain.call('POST', '/auth/challenge').headers['X-System-Warning'] == switches.SIG_001
        # DELETE restores the command line's values, not the defaults.
        plain.control('PUT', '/emulator/switches', json={'refuseReusedKey': False})
        assert plain.control('DELETE', '/emulator/switches').json() == expected
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    bad, dummy = None, None
    try:
        _start_cli(tmp_path, '--system-warning', 'no route')
    except AssertionError as exc:
        bad = str(exc)
    assert bad and "ROUTE=WARNING" in bad


def test_issued_valid_from_delays_the_start_of_validity_and_the_login(start_server):
    dummy, client = start_server(rate_limits='off', switches={'issuedValidFromSeconds': 3600})
    token = _session(client)
    later = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()), name='Valid later')
    client.control('PUT', '/emulator/switches', json={'issuedValidFromSeconds': 0})
    now = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()), name='Valid now')
    by_serial = dict((cert['serialNumber'], cert) for cert in client.state()['certificates'])
    starts = [time.mktime(time.strptime(by_serial[serial]['validFrom'][:19], '%Y-%m-%dT%H:%M:%S')) for serial in (later, now)]
    assert 3500 < starts[0] - starts[1] <= 3600
