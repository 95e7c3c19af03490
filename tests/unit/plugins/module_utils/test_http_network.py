# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Network failures against real local sockets: a closed port, a server that accepts and never answers,
an unresolvable host (faked at the resolver, socket.getaddrinfo), and the transport security checks.

Time bounds are generous ceilings of the documented behaviour (retries 0.25 s and 0.75 s apart, at most
twice `timeout` for a request without an answer); the exact waits are measured by the fake-clock tests.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import re
import socket
import threading
import time

import pytest
import requests

from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefError,
    KsefInputError,
    KsefTransportError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient, TransportFailure
from ansible_collections.ksef.certificates.plugins.module_utils._connection import (
    transport_warnings,
    validate_connection_params,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

SECRET = 'eyJhbGciOi.SECRET-TOKEN-VALUE.sig'


def closed_port():
    """A local TCP port nothing listens on (bound once, then released)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@contextlib.contextmanager
def silent_server():
    """A listening socket that never accepts: the kernel completes the TCP handshake, nobody ever answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(('127.0.0.1', 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@contextlib.contextmanager
def reading_server():
    """Accepts connections and reads what is sent, but never answers (an HTTP request that is received)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(('127.0.0.1', 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    received = []
    connections = []

    def serve():
        while not stop.is_set():
            try:
                connection, _address = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            connections.append(connection)
            connection.settimeout(0.2)
            try:
                received.append(connection.recv(65536))
            except OSError:
                pass

    thread = threading.Thread(target=serve)
    thread.daemon = True
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join(5)
        for connection in connections:
            connection.close()
        server.close()


def timed(client, *args, **kwargs):
    start = time.monotonic()
    with pytest.raises(KsefTransportError) as info:
        client.request(*args, **kwargs)
    return info.value, time.monotonic() - start


def test_connection_refused_fails_fast_with_the_cause_first():
    port = closed_port()
    client = KsefHttpClient('https://127.0.0.1:%d/v2' % port, timeout=5)
    error, elapsed = timed(client, 'POST', '/auth/challenge', idempotent=True)
    message = str(error)
    assert message.startswith('POST /auth/challenge failed: connection refused by 127.0.0.1:%d; sent 3 times, ' % port)
    assert re.search(r'sent 3 times, [0-9.]+ s in total; check api_url \(https://127\.0\.0\.1:%d/v2\)' % port, message)
    assert 'may have reached' not in message and 'not repeated' not in message
    assert error.may_have_reached_server is False
    assert client.calls == 3 and client.unreachable is True
    # Two short retries (0.25 s + 0.75 s): well under the 5 s the issue allows, far from the old 32 s.
    assert elapsed < 5


def test_enrollment_to_a_refused_port_is_retried_because_nothing_was_sent():
    port = closed_port()
    client = KsefHttpClient('https://127.0.0.1:%d/v2' % port, timeout=5)
    error, _elapsed = timed(client, 'POST', '/certificates/enrollments', json={}, expect=(202,), idempotent=False)
    assert 'may have reached' not in str(error) and client.calls == 3


def test_https_server_that_never_answers_is_bounded_and_states_the_wait():
    with silent_server() as port:
        client = KsefHttpClient('https://127.0.0.1:%d/v2' % port, timeout=1)
        error, elapsed = timed(client, 'POST', '/auth/challenge', idempotent=True)
    message = str(error)
    # The TLS handshake never completes, so the request never left: one retry, then the total wait.
    assert message.startswith('POST /auth/challenge failed: no TLS handshake from 127.0.0.1:%d within the 1 s timeout; '
                              'sent 2 times, ' % port)
    total = float(re.search(r'sent 2 times, ([0-9.]+) s in total', message).group(1))
    assert 2.0 <= total < 10
    assert 'may have reached' not in message
    assert client.calls == 2
    assert elapsed < 10  # 2 x timeout + 0.25 s


def test_a_received_request_without_answer_is_repeated_only_when_safe():
    with reading_server() as (port, received):
        client = KsefHttpClient('http://127.0.0.1:%d/v2' % port, timeout=1)
        enroll, enroll_elapsed = timed(client, 'POST', '/certificates/enrollments', json={}, expect=(202,))
        query, query_elapsed = timed(client, 'POST', '/certificates/query', json={}, idempotent=True)
    assert str(enroll).startswith('POST /certificates/enrollments failed: no answer from 127.0.0.1:%d within the '
                                  '1 s timeout; the request may have reached KSeF' % port)
    assert 'the request may have reached KSeF, so it was not repeated' in str(enroll)
    assert enroll.may_have_reached_server is True and enroll.attempts == 1
    assert re.search(r'^POST /certificates/query failed: no answer from 127\.0\.0\.1:%d within the 1 s timeout; '
                     r'sent 2 times, [0-9.]+ s in total; check that' % port, str(query))
    assert 'may have reached' not in str(query)
    assert client.calls == 3
    assert sum(1 for data in received if data.startswith(b'POST /v2/certificates/enrollments')) == 1
    assert enroll_elapsed < 5 and query_elapsed < 10


def test_unresolvable_host_names_the_host_and_the_cause_early(monkeypatch):
    real_getaddrinfo = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == 'api-test.ksef.invalid':
            raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, 'getaddrinfo', resolver)
    client = KsefHttpClient('https://api-test.ksef.invalid/v2', timeout=5)
    error, elapsed = timed(client, 'POST', '/auth/challenge', idempotent=True)
    head = str(error)[:150]
    assert 'api-test.ksef.invalid' in head and 'Name or service not known' in head
    assert str(error).startswith('POST /auth/challenge failed: cannot resolve the host name api-test.ksef.invalid '
                                 '(Name or service not known); sent 3 times')
    assert error.may_have_reached_server is False
    assert elapsed < 5


def test_no_message_is_cut_before_its_cause():
    """The old client cut urllib3's long text at 200 characters, before '[Errno 111] Connection refused'."""
    long_host_url = 'https://127.0.0.1:%d/v2/' % closed_port() + 'x' * 300
    client = KsefHttpClient(long_host_url.rsplit('/', 1)[0], timeout=5, max_retries=0)
    error, _elapsed = timed(client, 'GET', '/certificates/limits')
    assert 'connection refused' in str(error)
    assert '...' not in str(error)


def test_after_no_answer_the_session_is_not_ended_over_the_network():
    from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
    warnings = []
    client = KsefHttpClient('https://127.0.0.1:%d/v2' % closed_port(), timeout=5, warn=warnings.append)
    auth = KsefAuthenticator(client, {'access_token': 'x', 'context_id': certs.TEST_NIP})
    auth._opened = True  # a session this run opened before KSeF stopped answering
    client.unreachable = True
    auth.close()
    assert client.calls == 0
    assert 'was not ended because KSeF did not answer' in warnings[0]


def test_an_answer_after_a_lost_one_ends_the_session_over_the_network():
    """A lost enrollment answer that the run reconciled does not keep the session open."""
    from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
    clock = FakeClock()
    script = HttpScript([
        Exchange('POST', '/certificates/enrollments', exc=requests.exceptions.ReadTimeout('read timed out')),
        Exchange('POST', '/certificates/query', reply={'certificates': [], 'hasMore': False}),
        Exchange('DELETE', '/auth/sessions/current', status=204),
    ])
    warnings = []
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session(), sleep=clock.sleep, clock=clock,
                            warn=warnings.append)
    with pytest.raises(KsefTransportError):
        client.request('POST', '/certificates/enrollments', json={}, expect=(202,))
    assert client.unreachable is True
    client.request('POST', '/certificates/query', json={}, idempotent=True)
    assert client.unreachable is False
    auth = KsefAuthenticator(client, {'access_token': 'x', 'context_id': certs.TEST_NIP})
    auth._opened = True
    auth.close()
    script.verify()
    assert not [w for w in warnings if 'was not ended' in w]


# -- transport security (issue 14, findings 4 and 5) --------------------------------------------------------

@pytest.mark.parametrize('value', [SECRET + '\n', ' ' + SECRET, SECRET[:5] + ' ' + SECRET[5:], SECRET + '\x01',
                                   SECRET + '\u0105', ''])
def test_tokens_are_validated_before_any_call_and_never_shown(value):
    for name in ('access_token', 'ksef_token'):
        params = {'api_url': 'https://ksef.invalid/v2', name: value, 'context_id': certs.TEST_NIP, 'context_type': 'nip'}
        with pytest.raises(KsefInputError) as info:
            validate_connection_params(params)
        assert str(info.value).startswith(name + ' ')
        assert SECRET not in str(info.value) and SECRET[:10] not in str(info.value)


@pytest.mark.parametrize('token', [SECRET + '\n', SECRET[:5] + '\n' + SECRET[5:], ' ' + SECRET, SECRET + '\x01'])
def test_a_bad_header_value_is_refused_before_sending_and_not_as_a_transport_error(token):
    script = HttpScript([])
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session())
    with pytest.raises(KsefError) as info:
        client.request('GET', '/certificates/limits', token=token)
    assert not isinstance(info.value, KsefTransportError)
    assert SECRET[:10] not in str(info.value) and repr(SECRET[:10])[1:-1] not in str(info.value)
    assert 'the token contains whitespace' in str(info.value)
    assert client.calls == 0 and script.requests == []


@pytest.mark.parametrize('exc', [
    requests.exceptions.InvalidHeader("Invalid leading whitespace, reserved character(s), or return character(s) in "
                                      "header value: %r" % ('Bearer ' + SECRET + '\n')),
    ValueError('Invalid header value %r' % ('Bearer ' + SECRET + '\n').encode()),
])
def test_header_exceptions_never_reach_the_message(exc):
    """A header problem that slipped past the check: its text (the token, repr-escaped) is never shown."""
    script = HttpScript([Exchange('GET', '/certificates/limits', exc=exc)])
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session(), max_retries=5)
    with pytest.raises(KsefError) as info:
        client.request('GET', '/certificates/limits')
    assert SECRET[:10] not in str(info.value)
    assert 'may have reached' not in str(info.value)
    assert getattr(info.value, 'may_have_reached_server', False) is False
    assert client.calls == 1  # not retried: it would fail the same way


def test_classify_keeps_no_text_of_header_or_url_exceptions():
    failure = TransportFailure.classify(requests.exceptions.InvalidHeader('value: %r' % SECRET))
    assert failure.kind == 'invalid' and failure.sent is False and SECRET not in failure.cause


@pytest.mark.parametrize('url, allowed, error', [
    ('http://127.0.0.1:8080/v2', False, 'uses http://, which would send the tokens in clear text'),
    ('http://127.0.0.1:8080/v2', True, None),
    ('https://127.0.0.1:8443/v2', False, None),
])
def test_plain_http_needs_allow_insecure_http(url, allowed, error):
    params = {'api_url': url, 'allow_insecure_http': allowed, 'access_token': 'token'}
    if error:
        with pytest.raises(KsefInputError) as info:
            validate_connection_params(params)
        assert error in str(info.value) and 'allow_insecure_http' in str(info.value)
    else:
        validate_connection_params(params)


def test_insecure_settings_are_warned_about(monkeypatch):
    for name in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):
        monkeypatch.delenv(name, raising=False)
    assert transport_warnings({'api_url': 'https://ksef.invalid/v2', 'validate_certs': True}) == []
    http = transport_warnings({'api_url': 'http://127.0.0.1:8080/v2', 'allow_insecure_http': True, 'validate_certs': True})
    assert len(http) == 1 and 'plain http' in http[0]
    unverified = transport_warnings({'environment': 'prod', 'validate_certs': False})
    assert len(unverified) == 1 and unverified[0].startswith('validate_certs is false: the TLS certificate of '
                                                             'https://api.ksef.mf.gov.pl/v2 is not verified')


@pytest.mark.parametrize('variables, named', [
    ({'REQUESTS_CA_BUNDLE': '/etc/ssl/corporate.pem'}, 'REQUESTS_CA_BUNDLE is set but not used'),
    ({'CURL_CA_BUNDLE': '/etc/ssl/corporate.pem'}, 'CURL_CA_BUNDLE is set but not used'),
    ({'REQUESTS_CA_BUNDLE': '/a.pem', 'CURL_CA_BUNDLE': '/b.pem'}, 'REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE are set but not used'),
])
def test_a_ca_bundle_variable_that_would_have_chosen_the_trust_store_is_warned_about(monkeypatch, variables, named):
    """requests would let these variables replace the trust store; the modules ignore them and say so."""
    for name in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    warnings = transport_warnings({'api_url': 'https://ksef.invalid/v2', 'validate_certs': True})
    assert len(warnings) == 1 and warnings[0].startswith(named) and 'set ca_path (KSEF_CA_PATH)' in warnings[0]
    # ca_path chooses explicitly: nothing to warn about. validate_certs false has its own (louder) warning.
    assert transport_warnings({'api_url': 'https://ksef.invalid/v2', 'validate_certs': True, 'ca_path': '/ca.pem'}) == []
    unverified = transport_warnings({'api_url': 'https://ksef.invalid/v2', 'validate_certs': False})
    assert len(unverified) == 1 and unverified[0].startswith('validate_certs is false')


def test_ca_bundle_variables_do_not_replace_the_trust_store(monkeypatch, tmp_path):
    other = tmp_path / 'other-ca.pem'
    other.write_text('not used')
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', str(other))
    monkeypatch.setenv('CURL_CA_BUNDLE', str(other))
    script = HttpScript([Exchange('GET', '/certificates/limits', reply={}),
                         Exchange('GET', '/certificates/limits', reply={})])
    KsefHttpClient('https://ksef.invalid/v2', session=script.session()).request('GET', '/certificates/limits')
    KsefHttpClient('https://ksef.invalid/v2', session=script.session(), ca_path='/etc/ca.pem').request(
        'GET', '/certificates/limits')
    assert script.verify_values == [requests.certs.where(), '/etc/ca.pem']


def test_a_failed_certificate_check_names_the_ignored_variable(monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/etc/ssl/corporate.pem')
    monkeypatch.delenv('CURL_CA_BUNDLE', raising=False)
    script = HttpScript([Exchange('GET', '/certificates/limits', exc=requests.exceptions.SSLError(
        '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate'))])
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session())
    with pytest.raises(KsefTransportError) as info:
        client.request('GET', '/certificates/limits')
    message = str(info.value)
    assert message.startswith('GET /certificates/limits failed: TLS handshake failed (SSLError: [SSL: '
                              'CERTIFICATE_VERIFY_FAILED]')
    assert 'check validate_certs/ca_path; REQUESTS_CA_BUNDLE is set but not used' in message


def test_proxies_still_come_from_the_environment(monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://proxy.invalid:3128')
    monkeypatch.setenv('NO_PROXY', 'localhost')
    script = HttpScript([Exchange('GET', '/certificates/limits', reply={})])
    seen = []
    adapter_send = script.adapter.send

    def send(request, **kwargs):
        seen.append(kwargs.get('proxies'))
        return adapter_send(request, **kwargs)

    script.adapter.send = send
    KsefHttpClient('https://ksef.invalid/v2', session=script.session()).request('GET', '/certificates/limits')
    assert seen[0].get('https') == 'http://proxy.invalid:3128'


# -- a wrong API root ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('base, expected', [
    ('https://ksef.invalid', 'api_url https://ksef.invalid does not end with /v2'),
    ('https://ksef.invalid/v2', 'KSeF has this endpoint, so check api_url (https://ksef.invalid/v2)'),
])
def test_404_on_a_fixed_route_hints_at_the_api_root(base, expected):
    script = HttpScript([Exchange('POST', base + '/auth/challenge', status=404, reply='<html>Not Found</html>',
                                  content_type='text/html')])
    client = KsefHttpClient(base, session=script.session(), clock=FakeClock(), sleep=FakeClock().sleep)
    with pytest.raises(KsefApiError) as info:
        client.request('POST', '/auth/challenge', idempotent=True)
    assert str(info.value).startswith('POST /auth/challenge failed: HTTP 404')
    assert expected in str(info.value)


def test_404_of_an_unknown_reference_number_gets_no_api_root_hint():
    script = HttpScript([Exchange('GET', '/certificates/enrollments/{referenceNumber}', status=404, reply={
        'exception': {'exceptionDetailList': [{'exceptionCode': 21405, 'exceptionDescription': 'Not found'}]}})])
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session())
    with pytest.raises(KsefApiError) as info:
        client.request('GET', '/certificates/enrollments/{referenceNumber}', path_params={'referenceNumber': 'R'})
    assert 'api_url' not in str(info.value)


@contextlib.contextmanager
def answering_server(port=0):
    """A plain-HTTP server on 127.0.0.1 that answers every request 200 with a small JSON body."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get('Content-Length') or 0)
            if length:
                self.rfile.read(length)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = HTTPServer(('127.0.0.1', port), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.daemon = True
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_connection_after_an_answer_is_ridden_out_as_a_restart():
    """The server answered once in this run, went away (a restart) and came back: the request succeeds."""
    waits = []
    restarted = []
    with answering_server() as port:
        client = KsefHttpClient('http://127.0.0.1:%d/v2' % port, timeout=5, sleep=waits.append)
        assert client.request('GET', '/certificates/limits')[1] == {'ok': True}

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 5 and not restarted:  # back after a few refused attempts
            restarted.append(stack.enter_context(answering_server(port)))

    with contextlib.ExitStack() as stack:
        client.sleep = sleep
        status, body = client.request('GET', '/certificates/enrollments/{referenceNumber}',
                                      path_params={'referenceNumber': 'R-1'})
    assert (status, body) == (200, {'ok': True})
    assert restarted and client.unreachable is False
    # The first two waits are the short ones every refused connection gets, then the restart backoff.
    assert waits[:5] == [0.25, 0.75, 1.0, 2.0, 3.0]


def test_a_server_that_never_comes_back_fails_after_the_bounded_ride_out():
    waits = []
    with answering_server() as port:
        client = KsefHttpClient('http://127.0.0.1:%d/v2' % port, timeout=5, sleep=waits.append)
        client.request('GET', '/certificates/limits')
    with pytest.raises(KsefTransportError) as info:
        client.request('GET', '/certificates/limits')
    assert str(info.value).startswith('GET /certificates/limits failed: connection refused by 127.0.0.1:%d; sent 9 times' % port)
    assert waits == [0.25, 0.75, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0]
    assert client.unreachable is True


def test_a_refused_first_connection_still_fails_fast():
    waits = []
    client = KsefHttpClient('http://127.0.0.1:%d/v2' % closed_port(), timeout=5, sleep=waits.append)
    with pytest.raises(KsefTransportError):
        client.request('GET', '/certificates/limits')
    assert waits == [0.25, 0.75] and client.calls == 3


# ---------------------------------------------------------------------------------------------
# issue 17, findings 5 to 8: a hostile HTTPS server on 127.0.0.1 (a real TLS socket, ssl + http.server)
# ---------------------------------------------------------------------------------------------

ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY2Nlc3MifQ.QUNDRVNTLVNJR05BVFVSRQ'
REFRESH_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZWZyZXNoIn0.UkVGUkVTSC1TSUdOQVRVUkU'


def _server_certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (key and certificate PEM files); the client trusts it as ca_path."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    key = certs.make_key('ec')
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'127.0.0.1')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(u'127.0.0.1'))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / 'server.crt', tmp_path / 'server.key'
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _answer(handler, status, body=b'', headers=()):
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header('Content-Length', str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _hostile_routes():
    """path -> what the server does; each a finding of the review."""
    import json

    def redirect(handler):
        _answer(handler, 307, headers=[('Location', 'http://collector.invalid:8080/steal')])

    def oversized(handler):
        handler.send_response(200)
        handler.send_header('Content-Type', 'application/json')
        handler.end_headers()  # no Content-Length: the body ends when the connection closes
        chunk = b' ' * 65536
        try:
            for dummy_index in range(200):  # 12.5 MiB
                handler.wfile.write(chunk)
        except OSError:
            pass
        handler.close_connection = True

    def declared_oversized(handler):
        handler.send_response(200)
        handler.send_header('Content-Length', str(900 * 1024 * 1024))
        handler.end_headers()
        handler.close_connection = True

    def trickle_body(handler):
        handler.send_response(200)
        handler.send_header('Content-Type', 'application/json')
        handler.send_header('Content-Length', '40')
        handler.end_headers()
        _trickle(handler, b'{"a": "' + b'x' * 31 + b'"}')

    def trickle_headers(handler):
        handler.wfile.write(b'HTTP/1.1 200 OK\r\n')
        _trickle(handler, b'X-Slow: ' + b'y' * 40 + b'\r\n\r\n')

    def nested(handler):
        _answer(handler, 200, b'[' * 200000 + b']' * 200000, [('Content-Type', 'application/json')])

    def nested_error(handler):
        _answer(handler, 400, b'{"a":' * 100000 + b'1' + b'}' * 100000, [('Content-Type', 'application/json')])

    def bad_retry_after(handler):
        _answer(handler, 429, b'{}', [('Content-Type', 'application/json'), ('Retry-After', u'\u00b2'.encode('utf-8').decode('latin-1'))])

    def login(handler):
        body = {'accessToken': {'token': ACCESS_TOKEN, 'validUntil': '2030-01-01T00:00:00Z'},
                'refreshToken': {'token': REFRESH_TOKEN, 'validUntil': '2030-01-01T00:00:00Z'}}
        _answer(handler, 200, json.dumps(body).encode('ascii'), [('Content-Type', 'application/json')])

    def echo(handler):
        authorization = handler.headers.get('Authorization', '')
        body = {'exception': {'exceptionDetailList': [{
            'exceptionCode': 21111, 'exceptionDescription': 'Bad request, header was Authorization: %s' % authorization,
            'details': [authorization.split(' ')[-1], 'token=%s' % REFRESH_TOKEN]}],
            'referenceNumber': authorization, 'serviceCode': 'x'}}
        _answer(handler, 400, json.dumps(body).encode('ascii'), [('Content-Type', 'application/json')])

    return {'/v2/redirect': redirect, '/v2/oversized': oversized, '/v2/declared-oversized': declared_oversized,
            '/v2/trickle-body': trickle_body, '/v2/trickle-headers': trickle_headers, '/v2/nested': nested,
            '/v2/nested-error': nested_error, '/v2/bad-retry-after': bad_retry_after, '/v2/login': login,
            '/v2/echo': echo}


def _trickle(handler, data):
    try:
        for index in range(len(data)):
            handler.wfile.write(data[index:index + 1])
            handler.wfile.flush()
            time.sleep(0.3)
    except OSError:
        pass
    handler.close_connection = True


@pytest.fixture
def hostile_server(tmp_path):
    """https://127.0.0.1:PORT/v2 served by _hostile_routes(); yields (base_url, ca_path, requests seen)."""
    import ssl
    try:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    except ImportError:  # pragma: no cover
        pytest.skip('http.server.ThreadingHTTPServer needs Python 3.7')
    routes = _hostile_routes()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def handle_one_request_for(self):
            seen.append((self.command, self.path))
            length = int(self.headers.get('Content-Length') or 0)
            if length:
                self.rfile.read(length)
            routes[self.path.split('?')[0]](self)

        do_GET = do_POST = handle_one_request_for

    cert_path, key_path = _server_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield 'https://127.0.0.1:%d/v2' % server.server_address[1], cert_path, seen
    finally:
        server.shutdown()
        server.server_close()


def hostile_client(hostile_server, **kwargs):
    base_url, ca_path, dummy_seen = hostile_server
    secrets = []
    kwargs.setdefault('timeout', 5)
    client = KsefHttpClient(base_url, ca_path=ca_path, on_secret=secrets.append, **kwargs)
    return client, secrets


def test_finding_5_a_redirect_is_refused_and_names_the_location_host(hostile_server):
    client, dummy_secrets = hostile_client(hostile_server)
    with pytest.raises(KsefApiError) as info:
        client.request('POST', '/redirect', json={'signed': 'login document'})
    message = str(info.value)
    assert 'HTTP 307' in message and 'redirect to collector.invalid' in message and 'not followed' in message
    # The request went to the server once and never to the Location.
    assert hostile_server[2] == [('POST', '/v2/redirect')]


@pytest.mark.parametrize('path', ['/oversized', '/declared-oversized'])
def test_finding_6_an_oversized_answer_is_refused(hostile_server, path):
    client, dummy_secrets = hostile_client(hostile_server)
    start = time.monotonic()
    with pytest.raises(KsefApiError, match='larger than 8388608 bytes'):
        client.request('GET', path)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize('path', ['/trickle-body', '/trickle-headers'])
def test_finding_6_a_trickling_server_is_bounded_by_about_twice_the_timeout(hostile_server, path):
    client, dummy_secrets = hostile_client(hostile_server, timeout=1)
    error, elapsed = timed(client, 'GET', path)
    # The server would take 12 s or more; a trickle is cut off at 2 x timeout and not asked again.
    assert elapsed < 2 * 1 + 1, elapsed
    assert 'did not arrive within 2 s' in str(error) and 'too slowly' in str(error)
    assert len(hostile_server[2]) == 1


def test_finding_7_nested_json_is_a_clean_error(hostile_server):
    client, dummy_secrets = hostile_client(hostile_server)
    with pytest.raises(KsefApiError, match='not valid JSON'):
        client.request('GET', '/nested')
    with pytest.raises(KsefApiError, match='HTTP 400'):
        client.request('GET', '/nested-error')


def test_finding_7_a_bad_retry_after_is_a_clean_rate_limit_error(hostile_server):
    client, dummy_secrets = hostile_client(hostile_server, max_retries=0)
    with pytest.raises(KsefApiError) as info:
        client.request('GET', '/bad-retry-after')
    assert info.value.status == 429 and info.value.retry_after is None


def test_finding_8_login_tokens_are_secrets_and_never_in_an_error(hostile_server):
    client, secrets = hostile_client(hostile_server)
    status, body = client.request('POST', '/login', json={})
    assert status == 200 and set(secrets) == {ACCESS_TOKEN, REFRESH_TOKEN}
    with pytest.raises(KsefApiError) as info:
        client.request('GET', '/echo', token=ACCESS_TOKEN)
    shown = repr((str(info.value), info.value.fail_kwargs()))
    assert ACCESS_TOKEN not in shown and REFRESH_TOKEN not in shown
    assert 'Authorization: Bearer ********' in shown and 'token=********' in shown
