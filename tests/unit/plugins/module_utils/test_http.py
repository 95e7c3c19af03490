# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
import requests

from ansible_collections.ksef.certificates.plugins.module_utils import _pacing
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    HINTS,
    KsefApiError,
    KsefRateLimitError,
    KsefTransportError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.plugins.module_utils._http_answers import (
    parse_error_body,
    parse_retry_after,
    sanitize_excerpt,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import CountingSession, Exchange, HttpScript

BASE = 'https://ksef.invalid/v2'


def make_client(script, clock=None, warnings=None, **kwargs):
    clock = clock or FakeClock()
    warn = warnings.append if warnings is not None else None
    return KsefHttpClient(BASE, session=script.session(), clock=clock, sleep=clock.sleep, warn=warn, **kwargs)


def exception_response(code, description, details=None, reference=None, service='00-abc-def-00'):
    body = {'exception': {
        'exceptionDetailList': [{'exceptionCode': code, 'exceptionDescription': description, 'details': details}],
        'serviceCode': service,
        'timestamp': '2025-10-11T12:23:56.0154302Z',
    }}
    if reference:
        body['exception']['referenceNumber'] = reference
    return body


def test_success_returns_json_and_counts_calls():
    script = HttpScript([
        Exchange('GET', '/certificates/limits', token='ACCESS', headers={'Accept': 'application/json'},
                 reply={'canRequest': True}),
        Exchange('POST', '/certificates/query', json={'name': 'erp'}, params={'pageSize': 50, 'pageOffset': 0},
                 reply={'certificates': [], 'hasMore': False}),
        Exchange('DELETE', '/auth/sessions/current', status=204),
    ])
    client = make_client(script, timeout=7, ca_path='/etc/ca.pem')
    assert client.request('GET', '/certificates/limits', token='ACCESS') == (200, {'canRequest': True})
    status, body = client.request('POST', '/certificates/query', json={'name': 'erp'},
                                  params={'pageSize': 50, 'pageOffset': 0})
    assert (status, body) == (200, {'certificates': [], 'hasMore': False})
    assert client.request('DELETE', '/auth/sessions/current', expect=(204,)) == (204, None)
    script.verify()
    assert client.calls == 3
    assert client.calls_by_endpoint == {'GET /certificates/limits': 1, 'POST /certificates/query': 1,
                                        'DELETE /auth/sessions/current': 1}
    assert script.timeouts == [7, 7, 7]
    assert script.verify_values == ['/etc/ca.pem'] * 3


def test_validate_certs_false_disables_verification():
    script = HttpScript([Exchange('GET', '/rate-limits', reply={})])
    make_client(script, validate_certs=False, ca_path='/etc/ca.pem').request('GET', '/rate-limits')
    assert script.verify_values == [False]


def test_path_parameters_are_quoted():
    script = HttpScript([Exchange('GET', BASE + '/certificates/enrollments/a%2Fb%20c', reply={})])
    make_client(script).request('GET', '/certificates/enrollments/{referenceNumber}',
                                path_params={'referenceNumber': 'a/b c'})
    script.verify()


def test_pacing_waits_instead_of_exceeding_per_second_and_per_minute_limits():
    clock = FakeClock()
    script = HttpScript([Exchange('GET', '/certificates/limits', reply={}) for _attempt in range(31)])
    client = make_client(script, clock=clock)
    start = clock()
    sent_at = []
    for _attempt in range(31):
        client.request('GET', '/certificates/limits')
        sent_at.append(clock() - start)
    script.verify()
    # 10 per second: the 11th request waits for the first to leave the 1 s window (plus the 0.25 s margin).
    assert sent_at[9] == 0 and sent_at[10] == pytest.approx(1.25)
    # 30 per minute: the 31st request waits until 60 s (plus the margin) after the first.
    assert sent_at[30] == pytest.approx(60.25)
    for i in range(len(sent_at)):
        window = [t for t in sent_at if sent_at[i] <= t < sent_at[i] + 1]
        assert len(window) <= 10
    assert client.pacer.paced_seconds == pytest.approx(60.25)


def test_pacing_counts_each_endpoint_separately_and_auth_endpoints_have_60_per_second():
    clock = FakeClock()
    script = HttpScript([Exchange('GET', '/certificates/limits', reply={}) for _attempt in range(10)]
                        + [Exchange('GET', '/certificates/enrollments/data', reply={})]
                        + [Exchange('POST', '/auth/challenge', reply={}) for _attempt in range(60)])
    client = make_client(script, clock=clock)
    for _attempt in range(10):
        client.request('GET', '/certificates/limits')
    client.request('GET', '/certificates/enrollments/data')
    for _attempt in range(60):
        client.request('POST', '/auth/challenge')
    script.verify()
    assert clock.sleeps == []


def test_set_rate_limits_uses_the_other_group():
    clock = FakeClock()
    script = HttpScript([Exchange('GET', '/certificates/limits', reply={}) for _attempt in range(3)])
    client = make_client(script, clock=clock)
    client.set_rate_limits({'other': {'perSecond': 2, 'perMinute': 100, 'perHour': 1000},
                            'invoiceSend': {'perSecond': 1, 'perMinute': 1, 'perHour': 1}})
    for _attempt in range(3):
        client.request('GET', '/certificates/limits')
    assert clock.sleeps == [pytest.approx(1.25)]


def _slow_first_call(index):
    """Latency (up, down) of call `index`: the first call of the window is slow to arrive."""
    return (0.3, 0.05) if index == 0 else (0.001, 0.001)


def _answer_in_10_ms(dummy_index):
    return (0.0, 0.01)


def _status_calls(client, count):
    for index in range(count):
        client.request('GET', '/certificates/enrollments/{referenceNumber}',
                       path_params={'referenceNumber': '20260301-EH-%010d' % index})


def test_pacing_counts_from_the_answer_with_a_margin_so_a_slow_first_call_meets_no_429():
    """The edge case of the 12-per-minute benchmark: the first call of the window was slow to arrive.

    Counting it at the moment it was sent, with no margin, the client sent the 13th call exactly 60 s after
    the first one had been SENT; KSeF had counted the first one 0.3 s later, so it still held 12 calls in
    its window and answered 429.
    """
    clock = FakeClock()
    server = CountingSession(clock, {1: 10, 60: 12}, _slow_first_call)
    client = KsefHttpClient(BASE, session=server, clock=clock, sleep=clock.sleep)
    client.set_rate_limits({'other': {'perSecond': 10, 'perMinute': 12, 'perHour': 120}})
    _status_calls(client, 15)
    assert server.refused == []
    assert client.rate_limited == 0 and client.calls == 15
    first_answer = server.sent[0][0] + 0.35
    # The 13th call (another reference number: one counter per route template) waits for the first call to
    # leave the window measured from its answer, plus the 0.25 s margin; not a moment less.
    assert server.sent[12][0] == pytest.approx(first_answer + 60.25)
    # The 11th call met the 1 s window the same way.
    assert server.sent[10][0] >= server.sent[0][0] + 0.35 + 1.25 - 1e-9


def test_without_margin_and_answer_stamping_the_same_calls_meet_a_429(monkeypatch):
    """The same scenario with the old rule (stamp at send, no margin): the strict server refuses call 13."""
    clock = FakeClock()
    server = CountingSession(clock, {1: 10, 60: 12}, _slow_first_call)
    client = KsefHttpClient(BASE, session=server, clock=clock, sleep=clock.sleep, max_retries=0)
    client.set_rate_limits({'other': {'perSecond': 10, 'perMinute': 12, 'perHour': 120}})
    client.pacer.margin = 0.0
    monkeypatch.setattr(_pacing.SlidingWindow, 'settle', lambda self, stamp, now: None)
    with pytest.raises(KsefRateLimitError):
        _status_calls(client, 13)
    assert len(server.refused) == 1


def test_seconds_until_slot_matches_pacing_at_the_window_edge():
    clock = FakeClock()
    server = CountingSession(clock, {1: 10, 60: 12})
    client = KsefHttpClient(BASE, session=server, clock=clock, sleep=clock.sleep)
    client.set_rate_limits({'other': {'perSecond': 10, 'perMinute': 12, 'perHour': 120}})
    assert client.seconds_until_slot('GET', '/certificates/enrollments/{referenceNumber}') == 0.0
    start = clock()
    _status_calls(client, 12)                      # 10, then 2 more after 1.25 s
    assert clock() - start == pytest.approx(1.25)
    wait = client.seconds_until_slot('get', '/certificates/enrollments/{referenceNumber}')
    assert wait == pytest.approx(start + 60.25 - clock())
    # Other endpoints have their own counters.
    assert client.seconds_until_slot('POST', '/certificates/enrollments') == 0.0
    assert client.seconds_until_slot('POST', '/certificates/retrieve') == 0.0
    # A hair before the edge the slot is still taken; at the edge it is free (KSeF: stamp > now - 60).
    clock.advance(wait - 0.001)
    assert client.seconds_until_slot('GET', '/certificates/enrollments/{referenceNumber}') == pytest.approx(0.001)
    clock.advance(0.001)
    assert client.seconds_until_slot('GET', '/certificates/enrollments/{referenceNumber}') == 0.0
    sleeps = list(clock.sleeps)
    _status_calls(client, 1)
    assert clock.sleeps == sleeps, 'a free slot means request() does not pace'
    assert server.refused == []


def test_refused_and_failed_calls_count_against_the_window():
    """KSeF does not count a refused call; the client does (over-counting only costs waiting)."""
    clock = FakeClock(start=1000.0)
    script = HttpScript([
        Exchange('GET', '/certificates/limits', status=429, reply_headers={'Retry-After': '1'}),
        Exchange('GET', '/certificates/limits', exc=requests.exceptions.ConnectionError('reset')),
        Exchange('GET', '/certificates/limits', reply={}),
    ])
    client = make_client(script, clock=clock)
    client.set_rate_limits({'other': {'perSecond': 10, 'perMinute': 3, 'perHour': 120}})
    client.request('GET', '/certificates/limits')
    script.verify()
    assert client.calls == 3
    assert client.seconds_until_slot('GET', '/certificates/limits') == pytest.approx(60.25 - (clock() - 1000.0))


def test_429_honours_retry_after_then_succeeds():
    clock = FakeClock()
    script = HttpScript([
        Exchange('GET', '/certificates/limits', status=429, reply_headers={'Retry-After': '3'},
                 reply={'status': {'code': 429, 'description': 'Too Many Requests', 'details': ['retry after 3 s']}}),
        Exchange('GET', '/certificates/limits', reply={'canRequest': True}),
    ])
    client = make_client(script, clock=clock)
    assert client.request('GET', '/certificates/limits')[1] == {'canRequest': True}
    script.verify()
    assert clock.sleeps == [3]
    assert (client.calls, client.retries, client.rate_limited) == (2, 1, 1)


def test_429_on_post_is_retried_because_the_request_was_rejected():
    clock = FakeClock()
    script = HttpScript([
        Exchange('POST', '/certificates/enrollments', status=429, reply_headers={'Retry-After': '1'}),
        Exchange('POST', '/certificates/enrollments', status=202, reply={'referenceNumber': 'R'}),
    ])
    client = make_client(script, clock=clock)
    assert client.request('POST', '/certificates/enrollments', json={}, expect=(202,), idempotent=False)[1] == {
        'referenceNumber': 'R'}
    script.verify()


def test_429_with_retry_after_above_max_retry_wait_fails_at_once():
    script = HttpScript([
        Exchange('GET', '/certificates/limits', status=429, reply_headers={'Retry-After': '600'},
                 reply={'status': {'code': 429, 'description': 'Too Many Requests', 'details': None}}),
    ])
    clock = FakeClock()
    client = make_client(script, clock=clock, max_retry_wait=60)
    with pytest.raises(KsefRateLimitError) as info:
        client.request('GET', '/certificates/limits')
    script.verify()
    assert info.value.retry_after == 600
    assert info.value.status == 429
    assert 'GET /certificates/limits failed: HTTP 429, KSeF 429: Too Many Requests' in str(info.value)
    assert clock.sleeps == []


def test_429_gives_up_after_max_retries():
    script = HttpScript([Exchange('GET', '/certificates/limits', status=429, reply_headers={'Retry-After': '2'})
                         for _attempt in range(3)])
    client = make_client(script, max_retries=2)
    with pytest.raises(KsefRateLimitError):
        client.request('GET', '/certificates/limits')
    script.verify()
    assert client.calls == 3


def test_5xx_is_retried_for_idempotent_requests_with_backoff():
    clock = FakeClock()
    script = HttpScript([
        Exchange('GET', '/certificates/limits', status=503, reply='<html><body>Service Unavailable</body></html>',
                 content_type='text/html'),
        Exchange('GET', '/certificates/limits', status=502),
        Exchange('GET', '/certificates/limits', reply={'ok': 1}),
        Exchange('POST', '/certificates/retrieve', status=500),
        Exchange('POST', '/certificates/retrieve', reply={'certificates': []}),
    ])
    client = make_client(script, clock=clock)
    assert client.request('GET', '/certificates/limits')[1] == {'ok': 1}
    assert client.request('POST', '/certificates/retrieve', json={}, idempotent=True)[1] == {'certificates': []}
    script.verify()
    assert clock.sleeps == [1.0, 2.0, 1.0]


def test_5xx_on_post_is_not_retried():
    script = HttpScript([Exchange('POST', '/certificates/enrollments', status=500,
                                  reply=exception_response(500, 'Internal error'))])
    client = make_client(script)
    with pytest.raises(KsefApiError) as info:
        client.request('POST', '/certificates/enrollments', json={}, expect=(202,))
    script.verify()
    assert info.value.status == 500
    assert client.calls == 1


def lost_enrollment_answer(exchange):
    """Send one enrollment whose answer the scripted `exchange` loses; (client, the error that may have reached KSeF)."""
    script = HttpScript([exchange])
    client = make_client(script)
    with pytest.raises(KsefTransportError) as info:
        client.request('POST', '/certificates/enrollments', json={}, expect=(202,))
    script.verify()
    assert info.value.may_have_reached_server is True
    return client, info.value


def test_read_timeout_on_post_is_not_retried_and_may_have_reached_server():
    client, error = lost_enrollment_answer(Exchange('POST', '/certificates/enrollments', exc=requests.exceptions.ReadTimeout('read')))
    assert 'may have reached KSeF' in str(error)
    assert error.fail_kwargs() == {'endpoint': 'POST /certificates/enrollments', 'may_have_reached_server': True}
    assert client.calls == 1


def test_connect_timeout_on_post_is_retried_because_nothing_was_sent():
    clock = FakeClock()
    script = HttpScript([
        Exchange('POST', '/certificates/enrollments', exc=requests.exceptions.ConnectTimeout('connect')),
        Exchange('POST', '/certificates/enrollments', status=202, reply={'referenceNumber': 'R'}),
    ])
    client = make_client(script, clock=clock)
    assert client.request('POST', '/certificates/enrollments', json={}, expect=(202,))[1] == {'referenceNumber': 'R'}
    script.verify()


def test_connection_errors_on_get_are_retried_then_reported():
    clock = FakeClock()
    script = HttpScript([Exchange('GET', '/certificates/limits', exc=requests.exceptions.ConnectionError('reset'))
                         for _attempt in range(3)])
    client = make_client(script, clock=clock, max_retries=2, max_retry_wait=1)
    with pytest.raises(KsefTransportError) as info:
        client.request('GET', '/certificates/limits')
    script.verify()
    assert clock.sleeps == [0.25, 0.75]
    assert client.retries == 2
    assert str(info.value).startswith('GET /certificates/limits failed: the connection broke before the answer was '
                                      'complete (ConnectionError: reset); sent 3 times, 1 s in total')
    assert 'may have reached' not in str(info.value)


def test_tls_errors_are_not_retried():
    script = HttpScript([Exchange('GET', '/certificates/limits', exc=requests.exceptions.SSLError('CERTIFICATE_VERIFY_FAILED'))])
    client = make_client(script)
    with pytest.raises(KsefTransportError) as info:
        client.request('GET', '/certificates/limits')
    script.verify()
    assert 'validate_certs/ca_path' in str(info.value)
    assert info.value.may_have_reached_server is False


def truncated_answer(method, route, status=200):
    """An answer whose connection breaks while the body arrives (Content-Length promises more)."""
    return Exchange(method, route, status=status, reply=b'{"certificates": [', reply_headers={'Content-Length': '500'})


def test_a_body_that_breaks_off_is_retried_on_an_idempotent_call():
    clock = FakeClock()
    script = HttpScript([
        truncated_answer('POST', '/certificates/query'),
        Exchange('POST', '/certificates/query', reply={'certificates': [], 'hasMore': False}),
    ])
    client = make_client(script, clock=clock)
    assert client.request('POST', '/certificates/query', json={}, idempotent=True)[1] == {'certificates': [], 'hasMore': False}
    script.verify()
    assert client.retries == 1


def test_a_body_that_breaks_off_after_an_enrollment_is_a_lost_answer():
    dummy_client, error = lost_enrollment_answer(truncated_answer('POST', '/certificates/enrollments', status=202))
    assert 'was not repeated' in str(error)


def test_a_tls_error_after_the_request_left_is_not_taken_for_a_refused_handshake():
    script = HttpScript([Exchange('POST', '/certificates/enrollments',
                                  exc=requests.exceptions.SSLError('[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed'))])
    client = make_client(script)
    with pytest.raises(KsefTransportError) as info:
        client.request('POST', '/certificates/enrollments', json={}, expect=(202,))
    script.verify()
    assert info.value.may_have_reached_server is True
    assert 'validate_certs/ca_path' not in str(info.value)


def test_system_warnings_are_surfaced_once():
    warnings = []
    script = HttpScript([
        Exchange('POST', '/auth/xades-signature', status=202, reply={},
                 reply_headers={'X-System-Warning': '[sig-001]: signature format not compliant | [x-2]: second'}),
        Exchange('GET', '/certificates/limits', reply={}, reply_headers={'X-System-Warning': '[sig-001]: signature format not compliant'}),
    ])
    client = make_client(script, warnings=warnings)
    client.request('POST', '/auth/xades-signature', data=b'<x/>', expect=(202,))
    client.request('GET', '/certificates/limits')
    assert warnings == ['KSeF system warning: [sig-001]: signature format not compliant',
                        'KSeF system warning: [x-2]: second']


def test_exception_response_message_format():
    script = HttpScript([Exchange('POST', '/certificates/enrollments', status=400,
                                  reply=exception_response(25007, 'Limit reached.', ['max 100'], reference='20251010-EH-1'))])
    with pytest.raises(KsefApiError) as info:
        make_client(script).request('POST', '/certificates/enrollments', json={}, expect=(202,))
    error = info.value
    assert str(error) == ('POST /certificates/enrollments failed: HTTP 400, KSeF 25007: Limit reached. (max 100); '
                          'reference number 20251010-EH-1; service code 00-abc-def-00; ' + HINTS[25007])
    assert error.codes == [25007]
    assert error.reference_number == '20251010-EH-1'
    assert error.fail_kwargs()['ksef_errors'] == [{'code': 25007, 'description': 'Limit reached.', 'details': ['max 100']}]


def test_expired_challenge_says_what_to_do():
    script = HttpScript([Exchange('POST', '/auth/xades-signature', status=400,
                                  reply=exception_response(21111, 'Nieprawidłowe wyzwanie autoryzacyjne.'))])
    with pytest.raises(KsefApiError) as info:
        make_client(script).request('POST', '/auth/xades-signature', data=b'<x/>', expect=(202,))
    message = str(info.value)
    assert message.startswith('POST /auth/xades-signature failed: HTTP 400, KSeF 21111: Nieprawidłowe wyzwanie autoryzacyjne.')
    assert 'the challenge expired or was already used' in message
    assert 'check the clock' in message


def test_unknown_codes_get_no_hint():
    script = HttpScript([Exchange('GET', '/certificates/limits', status=400, reply=exception_response(99999, 'Something.'))])
    with pytest.raises(KsefApiError) as info:
        make_client(script).request('GET', '/certificates/limits')
    assert not any(hint in str(info.value) for hint in HINTS.values())


def test_problem_details_bodies():
    bad_request = {'title': 'Bad Request', 'status': 400, 'instance': '/v2/x', 'detail': 'Validation failed',
                   'errors': [{'code': 21405, 'description': 'Input validation', 'details': ['name too short']},
                              {'code': 21406, 'description': 'Conflict'}],
                   'timestamp': '2025-01-01T00:00:00Z', 'traceId': 'trace-1'}
    forbidden = {'title': 'Forbidden', 'status': 403, 'detail': 'IP not allowed', 'reasonCode': 'ip-not-allowed',
                 'security': {'clientIp': '192.0.2.1'}, 'timestamp': '2025-01-01T00:00:00Z'}
    script = HttpScript([
        Exchange('POST', '/certificates/query', status=400, reply=bad_request, content_type='application/problem+json'),
        Exchange('GET', '/certificates/limits', status=403, reply=forbidden, content_type='application/problem+json'),
    ])
    client = make_client(script)
    with pytest.raises(KsefApiError) as info:
        client.request('POST', '/certificates/query', json={}, idempotent=True)
    assert info.value.codes == [21405, 21406]
    assert info.value.service_code == 'trace-1'
    assert 'KSeF 21405: Input validation (name too short); KSeF 21406: Conflict' in str(info.value)
    with pytest.raises(KsefApiError) as info:
        client.request('GET', '/certificates/limits')
    assert str(info.value) == ('GET /certificates/limits failed: HTTP 403, KSeF ip-not-allowed: IP not allowed '
                               '(clientIp: 192.0.2.1)')
    assert info.value.codes == []


def test_html_error_body_gives_a_short_sanitized_excerpt():
    html = '<html><head><style>p{}</style><script>alert(1)</script></head><body><h1>502 Bad Gateway</h1>' + \
        '<p>' + 'x' * 500000 + '</p></body></html>'
    script = HttpScript([Exchange('POST', '/certificates/enrollments', status=502, reply=html, content_type='text/html')])
    with pytest.raises(KsefApiError) as info:
        make_client(script).request('POST', '/certificates/enrollments', json={}, expect=(202,))
    message = str(info.value)
    assert message.startswith('POST /certificates/enrollments failed: HTTP 502, response body: 502 Bad Gateway x')
    assert '<' not in message and 'alert' not in message
    assert len(message) < 320


def test_non_json_success_body_with_json_content_type_is_an_error():
    script = HttpScript([Exchange('GET', '/certificates/limits', reply=b'<html>login portal</html>',
                                  content_type='application/json')])
    with pytest.raises(KsefApiError) as info:
        make_client(script).request('GET', '/certificates/limits')
    assert 'not valid JSON: login portal' in str(info.value)


def test_unexpected_success_status_is_an_error():
    script = HttpScript([Exchange('POST', '/certificates/enrollments', status=200, reply={'referenceNumber': 'R'})])
    with pytest.raises(KsefApiError) as info:
        make_client(script).request('POST', '/certificates/enrollments', json={}, expect=(202,))
    assert info.value.status == 200


def test_script_rejects_unexpected_requests():
    script = HttpScript([Exchange('GET', '/certificates/limits', reply={})])
    client = make_client(script)
    with pytest.raises(AssertionError):
        client.request('GET', '/certificates/enrollments/data')
    with pytest.raises(AssertionError):
        script.verify()


@pytest.mark.parametrize('value, expected', [
    ('5', 5),
    (' 12 ', 12),
    (None, None),
    ('soon', None),
    ('Wed, 21 Oct 2015 07:28:30 GMT', 10),
])
def test_parse_retry_after(value, expected):
    # 1445412500 = Wed, 21 Oct 2015 07:28:20 GMT
    assert parse_retry_after(value, now=1445412500) == expected


def test_parse_error_body_of_unknown_shapes():
    assert parse_error_body(['x']) == ([], None, None)
    assert parse_error_body({'something': 1}) == ([], None, None)


def test_sanitize_excerpt_strips_control_characters():
    assert sanitize_excerpt(b'a\x00b\r\nc\x1b[31m') == 'a b c [31m'


def test_a_429_teaches_the_minute_limit_so_the_endpoint_and_its_group_meet_no_second_one():
    """Limits lowered to 12/min without the client knowing (default options): one 429, then paced to 12/min."""
    clock = FakeClock()
    server = CountingSession(clock, {1: 10, 60: 12, 3600: 120}, _answer_in_10_ms)
    warnings = []
    client = KsefHttpClient(BASE, session=server, clock=clock, sleep=clock.sleep, warn=warnings.append)
    _status_calls(client, 30)
    for dummy in range(15):
        client.request('POST', '/certificates/retrieve', json={}, idempotent=True)
    assert len(server.refused) == 1 and server.refused[0][3] == 60
    assert client.rate_limited == 1
    assert client.pacer.other_limits == {1: 10, 60: 12, 3600: 120}
    assert client.pacer.limits_source == 'published+429'
    assert client.pacer.learned_limits == [{'endpoint': 'GET /certificates/enrollments/{referenceNumber}', 'window': 60,
                                            'limit': 12}]
    assert len(warnings) == 1 and 'at most 12 calls per 60 s' in warnings[0]


def test_a_429_teaches_the_second_limit_from_a_one_second_retry_after():
    clock = FakeClock()
    server = CountingSession(clock, {1: 5, 60: 30, 3600: 120}, _answer_in_10_ms)
    client = KsefHttpClient(BASE, session=server, clock=clock, sleep=clock.sleep)
    _status_calls(client, 25)
    assert [entry[3] for entry in server.refused] == [1]
    assert client.pacer.other_limits[1] == 5


def test_nothing_is_learned_without_retry_after_or_when_this_client_did_not_fill_the_window():
    clock = FakeClock()
    script = HttpScript([
        Exchange('GET', '/certificates/limits', status=429),
        Exchange('GET', '/certificates/limits', reply={}),
        Exchange('GET', '/certificates/limits', status=429, reply_headers={'Retry-After': '30'}),
        Exchange('GET', '/certificates/limits', reply={}),
    ])
    client = make_client(script, clock=clock)
    client.request('GET', '/certificates/limits')
    clock.advance(4000)
    client.request('GET', '/certificates/limits')   # the first call of the window was refused: someone else's calls
    script.verify()
    assert client.rate_limited == 2
    assert client.pacer.learned_limits == [] and client.pacer.other_limits == {1: 10, 60: 30, 3600: 120}


def test_read_limits_keep_what_a_429_taught():
    clock = FakeClock()
    server = CountingSession(clock, {1: 10, 60: 12, 3600: 120}, _answer_in_10_ms)
    client = KsefHttpClient(BASE, session=server, clock=clock, sleep=clock.sleep)
    _status_calls(client, 13)
    client.set_rate_limits({'other': {'perSecond': 10, 'perMinute': 30, 'perHour': 100}})
    assert client.pacer.other_limits == {1: 10, 60: 12, 3600: 100}
    assert client.limits_for('get', '/certificates/query') == {1: 10, 60: 12, 3600: 100}
    assert client.limits_for('POST', '/auth/challenge') == {1: 60}
