"""Server-level behaviour: rate limits, TLS, persistence across restarts, the CLI, recording, faults."""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import (EmulatorClient, enroll, enroll_and_wait, exception_codes, login, new_seal,
                      wait_for_enrollment)

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_429_with_retry_after_within_35_rapid_calls(client):
    nip, cert, key = new_seal()
    token = login(client, cert, key, nip)['accessToken']
    statuses = [client.call('GET', '/certificates/limits', token=token) for dummy in range(35)]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused, 'no 429 within 35 calls'
    assert [r.status_code for r in statuses[:10]] == [200] * 10
    first = refused[0]
    assert 1 <= int(first.headers['Retry-After']) <= 60
    assert first.json()['status']['code'] == 429
    # After 30 accepted calls the per-minute window refuses too, here asked for problem-details.
    for dummy in range(40):
        problem = client.call('GET', '/certificates/limits', token=token, headers={'X-Error-Format': 'problem-details'})
        if problem.status_code == 429:
            break
    assert problem.status_code == 429 and problem.headers['Content-Type'].startswith('application/problem+json')
    assert sum(r.status_code == 200 for r in statuses) <= 30
    # Another endpoint has its own counter.
    assert client.call('GET', '/certificates/enrollments/data', token=token).status_code == 200


def test_rate_limit_override_per_minute(client):
    nip, cert, key = new_seal()
    token = login(client, cert, key, nip)['accessToken']
    limits = client.call('GET', '/rate-limits', token=token).json()
    assert limits['other'] == {'perSecond': 10, 'perMinute': 30, 'perHour': 120}
    limits['other']['perMinute'] = 12
    assert client.call('POST', '/testdata/rate-limits', token=token, json={'rateLimits': limits}).status_code == 200
    for dummy in range(12):
        assert client.call('GET', '/certificates/limits', token=token).status_code == 200
        time.sleep(0.11)
    refused = client.call('GET', '/certificates/limits', token=token)
    assert refused.status_code == 429
    assert 30 <= int(refused.headers['Retry-After']) <= 60   # the oldest of the 12 calls leaves the minute
    assert client.call('GET', '/rate-limits', token=token).json()['other']['perMinute'] == 12
    assert client.call('DELETE', '/testdata/rate-limits', token=token).status_code == 200
    assert client.call('GET', '/rate-limits', token=token).json()['other']['perMinute'] == 30
    assert client.call('GET', '/certificates/limits', token=token).status_code == 200
    assert client.call('POST', '/testdata/rate-limits/production', token=token).status_code == 200
    assert client.call('GET', '/rate-limits', token=token).json()['other'] == {'perSecond': 10, 'perMinute': 30,
                                                                               'perHour': 120}


def test_rate_limits_off(start_server):
    _server, plain = start_server(rate_limits='off')
    nip, cert, key = new_seal()
    token = login(plain, cert, key, nip)['accessToken']
    assert {plain.call('GET', '/certificates/limits', token=token).status_code for dummy in range(15)} == {200}


def test_tls_needs_the_emulator_ca(emulator_server):
    trusted = EmulatorClient(emulator_server.base_url, emulator_server.ca_file)
    assert trusted.call('POST', '/auth/challenge').status_code == 200
    with open(emulator_server.ca_file, 'rb') as handle:
        assert handle.read() == emulator_server.tls_ca_pem()
    untrusted = EmulatorClient(emulator_server.base_url, None)
    with pytest.raises(requests.exceptions.SSLError):
        untrusted.call('POST', '/auth/challenge')


def test_record_dir_and_request_log(client, emulator_server):
    since = client.control('GET', '/emulator/requests').json()[-1]['seq']
    nip, cert, key = new_seal()
    login(client, cert, key, nip)
    records = client.control('GET', '/emulator/requests', params={'since': since}).json()
    assert [r['route'] for r in records][:2] == ['/auth/challenge', '/auth/xades-signature']
    assert all(r['seq'] > since for r in records)
    xades = records[1]
    assert xades['status'] == 202 and xades['method'] == 'POST' and xades['path'] == '/v2/auth/xades-signature'
    with open(os.path.join(emulator_server.record_dir, '%d.json' % xades['seq']), encoding='utf-8') as handle:
        saved = json.load(handle)
    assert saved['route'] == '/auth/xades-signature' and saved['contentType'] == 'application/xml'
    with open(os.path.join(emulator_server.record_dir, '%d.body' % xades['seq']), 'rb') as handle:
        assert b'AuthTokenRequest' in handle.read()
    assert not os.path.exists(os.path.join(emulator_server.record_dir, '%d.body' % records[0]['seq']))
    polls = [r for r in records if r['route'] == '/auth/{referenceNumber}']
    assert polls and polls[0]['path'].startswith('/v2/auth/2')


def _add_fault(client, **fault):
    response = client.control('POST', '/emulator/faults', json=fault)
    assert response.status_code == 201, response.text


def test_fault_status(client):
    nip, cert, key = new_seal()
    token = login(client, cert, key, nip)['accessToken']
    _add_fault(client, method='GET', route='/certificates/limits', mode='status', status=503, count=2)
    statuses = [client.call('GET', '/certificates/limits', token=token, check=False).status_code for dummy in range(3)]
    assert statuses == [503, 503, 200]
    _add_fault(client, method='POST', route='/certificates/enrollments', mode='status', status=429)
    refused = client.call('POST', '/certificates/enrollments', token=token, json={})
    assert refused.status_code == 429 and refused.headers['Retry-After'] == '1'
    assert client.state()['enrollmentCounts'].get('Nip:%s' % nip) is None   # nothing was done
    assert client.control('POST', '/emulator/faults', json={'mode': 'explode'}).status_code == 400


def _enroll_through_a_connection_fault(client, mode, name):
    """A new seal logs in and sends an enrollment that the fault `mode` breaks off; (nip, access token)."""
    nip, cert, key = new_seal()
    token = login(client, cert, key, nip)['accessToken']
    _add_fault(client, method='POST', route='/certificates/enrollments', mode=mode)
    with pytest.raises(requests.exceptions.ConnectionError):
        enroll(client, token, ec.generate_private_key(ec.SECP256R1()), name=name)
    return nip, token


def test_fault_drop_response_performs_the_operation(client):
    nip, token = _enroll_through_a_connection_fault(client, 'drop-response', 'Dropped answer')
    enrollments = [e for e in client.state()['enrollments'] if e['subjectIdentifier']['value'] == nip]
    assert [e['name'] for e in enrollments] == ['Dropped answer']
    record = [r for r in client.control('GET', '/emulator/requests').json()
              if r['route'] == '/certificates/enrollments'][-1]
    assert record['fault'] == 'drop-response' and record['status'] == 202
    # The connection after the fault works normally.
    assert client.call('GET', '/certificates/limits', token=token).status_code == 200


def test_fault_reset_does_nothing(client):
    nip, token = _enroll_through_a_connection_fault(client, 'reset', 'Reset request')
    assert not [e for e in client.state()['enrollments'] if e['subjectIdentifier']['value'] == nip]
    assert enroll(client, token, ec.generate_private_key(ec.SECP256R1()), name='After reset').status_code == 202


@pytest.mark.parametrize('code', [400, 550])
def test_fault_enrollment_status_ends_the_enrollment(client, code):
    nip, cert, key = new_seal()
    token = login(client, cert, key, nip)['accessToken']
    _add_fault(client, method='POST', route='/certificates/enrollments', mode='enrollment-status', status=code)
    accepted = enroll(client, token, ec.generate_private_key(ec.SECP256R1()), name='Failing enrollment')
    assert accepted.status_code == 202
    status = wait_for_enrollment(client, token, accepted.json()['referenceNumber'])
    assert status['status']['code'] == code and 'certificateSerialNumber' not in status
    assert not [c for c in client.state()['certificates'] if c['subjectIdentifier']['value'] == nip]
    # The fault is used up: the next enrollment is issued.
    assert enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    assert client.control('POST', '/emulator/faults', json={'mode': 'enrollment-status', 'status': 200}).status_code == 400


def test_fault_hold_waits_for_the_release(client):
    """A held enrollment POST acts only once released: a test can kill its client in between, on an event."""
    nip, cert, key = new_seal()
    token = login(client, cert, key, nip)['accessToken']
    data = client.call('GET', '/certificates/enrollments/data', token=token).json()
    _add_fault(client, method='POST', route='/certificates/enrollments', mode='hold')
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(enroll, EmulatorClient(client.base_url, client.verify), token,
                             ec.generate_private_key(ec.SECP256R1()), name='Held enrollment', data=data)
        held = client.control('GET', '/emulator/faults/held', params={'wait': 60}).json()
        record = [r for r in client.control('GET', '/emulator/requests').json() if r['seq'] == held[0]['seq']][0]
        assert [(h['method'], h['route']) for h in held] == [('POST', '/certificates/enrollments')]
        assert record['route'] == '/certificates/enrollments' and record['status'] is None
        assert not [e for e in client.state()['enrollments'] if e['subjectIdentifier']['value'] == nip]
        assert not answer.done()
        assert client.control('POST', '/emulator/faults/release').json() == {'released': 1}
        assert answer.result(timeout=30).status_code == 202
    assert [e['name'] for e in client.state()['enrollments'] if e['subjectIdentifier']['value'] == nip] == ['Held enrollment']
    assert client.control('GET', '/emulator/faults/held').json() == []
    bad_wait = client.control('GET', '/emulator/faults/held', params={'wait': 'x'})
    assert (bad_wait.status_code, bad_wait.json()) == (400, {'error': "'wait' must be a number of seconds"})
    bad_since = client.control('GET', '/emulator/requests', params={'since': 'x'})
    assert (bad_since.status_code, bad_since.json()) == (400, {'error': "'since' must be an integer"})
    assert client.control('POST', '/emulator/faults', json={'mode': 'hold', 'timeout': 0}).status_code == 400


def test_fault_hold_is_released_by_clearing_the_faults(client):
    _add_fault(client, method='POST', route='/auth/challenge', mode='hold')
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(EmulatorClient(client.base_url, client.verify).call, 'POST', '/auth/challenge')
        assert len(client.control('GET', '/emulator/faults/held', params={'wait': 60}).json()) == 1
        assert client.control('DELETE', '/emulator/faults').status_code == 204
        assert answer.result(timeout=30).status_code == 200


def test_fault_delay_and_clear(client):
    _add_fault(client, method='POST', route='/auth/challenge', mode='delay', delay=0.6, count=5)
    started = time.monotonic()
    assert client.call('POST', '/auth/challenge').status_code == 200
    assert time.monotonic() - started >= 0.6
    assert client.control('GET', '/emulator/faults').json()[0]['count'] == 4
    assert client.control('DELETE', '/emulator/faults').status_code == 204
    assert client.control('GET', '/emulator/faults').json() == []
    # After the clear the next call is not delayed: the request log says so (a wall-clock bound would not hold
    # on a loaded machine).
    assert client.call('POST', '/auth/challenge').status_code == 200
    records = [r for r in client.control('GET', '/emulator/requests').json() if r['route'] == '/auth/challenge']
    assert [r['fault'] for r in records[-2:]] == ['delay', None]


# --- the command line, persistence across restarts -------------------------------------------------------

def _start_cli(work, *extra):
    ready = work / ('ready-%d' % time.monotonic_ns())
    env = dict(os.environ, PYTHONPATH=EMULATOR_DIR + os.pathsep + os.environ.get('PYTHONPATH', ''))
    process = subprocess.Popen([sys.executable, '-m', 'ksef_emulator', '--port', '0', '--ready-file', str(ready),
                                '--processing-delay', '0.3', '--auth-processing-delay', '0.05'] + list(extra),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (ready.exists() and ready.read_text().strip()):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, 'emulator did not start'
        time.sleep(0.05)
    return process, ready.read_text().strip()


def _stop_cli(process):
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def test_cli_state_survives_restart_with_the_same_ca(tmp_path):
    state, ca_file = str(tmp_path / 'state.sqlite'), tmp_path / 'ca.pem'
    process, base_url = _start_cli(tmp_path, '--state', state, '--tls-ca-file', str(ca_file))
    try:
        assert base_url.startswith('https://127.0.0.1:') and base_url.endswith('/v2')
        first = EmulatorClient(base_url, str(ca_file))
        nip, cert, key = new_seal()
        tokens = login(first, cert, key, nip)
        serial = enroll_and_wait(first, tokens['accessToken'], ec.generate_private_key(ec.SECP256R1()))
        pending = enroll(first, tokens['accessToken'], ec.generate_private_key(ec.SECP256R1()), name='Pending cert')
        ca_pem = ca_file.read_bytes()
        der = first.call('POST', '/certificates/retrieve', token=tokens['accessToken'],
                         json={'certificateSerialNumbers': [serial]}).json()['certificates'][0]['certificate']
    finally:
        _stop_cli(process)

    ca_file.unlink()
    process, base_url = _start_cli(tmp_path, '--state', state, '--tls-ca-file', str(ca_file))
    try:
        assert ca_file.read_bytes() == ca_pem
        second = EmulatorClient(base_url, str(ca_file))
        # The access token issued before the restart still works (same signing secret, same session).
        retrieved = second.call('POST', '/certificates/retrieve', token=tokens['accessToken'],
                                json={'certificateSerialNumbers': [serial]}).json()['certificates']
        assert retrieved[0]['certificate'] == der
        status = wait_for_enrollment(second, tokens['accessToken'], pending.json()['referenceNumber'])
        assert status['status']['code'] == 200
        assert second.call('POST', '/auth/token/refresh', token=tokens['refreshToken']).status_code == 200
        assert len(second.state()['certificates']) == 2
    finally:
        _stop_cli(process)


def test_cli_plain_http_and_sigint(tmp_path):
    process, base_url = _start_cli(tmp_path, '--no-tls', '--rate-limits', 'off')
    try:
        assert base_url.startswith('http://')
        plain = EmulatorClient(base_url)
        assert plain.call('POST', '/auth/challenge').status_code == 200
        nip, cert, key = new_seal()
        token = login(plain, cert, key, nip)['accessToken']
        unknown = plain.call('GET', '/certificates/enrollments/{referenceNumber}',
                             {'referenceNumber': '20250101-EH-0000000000-0000000000-00'}, token=token)
        assert exception_codes(unknown) == [25005]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0


def test_concurrent_enrollments_are_consistent(start_server):
    """Parallel requests against the threaded server: every enrollment is stored once, serials are unique."""
    _server, parallel = start_server(rate_limits='off', processing_delay=0.2)
    nip, cert, key = new_seal()
    token = login(parallel, cert, key, nip)['accessToken']
    data = parallel.call('GET', '/certificates/enrollments/data', token=token).json()

    def one(index):
        return enroll(EmulatorClient(parallel.base_url), token, ec.generate_private_key(ec.SECP256R1()),
                      name='Parallel cert %02d' % index, data=data).json()['referenceNumber']

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        references = list(pool.map(one, range(16)))
    assert len(set(references)) == 16
    serials = [wait_for_enrollment(parallel, token, reference)['certificateSerialNumber'] for reference in references]
    assert len(set(serials)) == 16
    state = parallel.state()
    assert state['enrollmentCounts'] == {'Nip:%s' % nip: 16}
    assert sorted(c['serialNumber'] for c in state['certificates']) == sorted(serials)
