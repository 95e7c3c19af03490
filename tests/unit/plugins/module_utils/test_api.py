# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import base64
import datetime
import os
import re

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _api
from ansible_collections.ksef.certificates.plugins.module_utils._api import (
    CERTIFICATE_STATUSES,
    CERTIFICATE_TYPES,
    REVOCATION_REASONS,
    KsefApi,
    KsefAuthApi,
    from_api,
    snake_item,
    snake_name,
    to_api,
)
from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefError,
    KsefInputError,
    KsefTransportError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

TOKEN = 'ACCESS'
SERIALS = ['%016X' % i for i in range(1, 24)]


def make_api(script):
    clock = FakeClock()
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session(), clock=clock, sleep=clock.sleep)
    return KsefApi(client, KsefAuthenticator(client, {'access_token': TOKEN}))


def error_body(code, description):
    return {'exception': {'exceptionDetailList': [{'exceptionCode': code, 'exceptionDescription': description}]}}


def test_simple_gets():
    script = HttpScript([
        Exchange('GET', '/certificates/limits', token=TOKEN, reply={'canRequest': True}),
        Exchange('GET', '/certificates/enrollments/data', token=TOKEN, reply={'commonName': 'X'}),
        Exchange('GET', '/certificates/enrollments/20251010-EH-1B6C9EB000-4B15D3AEB9-89', token=TOKEN,
                 reply={'status': {'code': 100}}),
    ])
    api = make_api(script)
    assert api.limits() == {'canRequest': True}
    assert api.enrollment_data() == {'commonName': 'X'}
    assert api.enrollment_status('20251010-EH-1B6C9EB000-4B15D3AEB9-89') == {'status': {'code': 100}}
    script.verify()


def test_rate_limits_are_applied_to_pacing():
    limits = {'other': {'perSecond': 1, 'perMinute': 2, 'perHour': 3}}
    script = HttpScript([Exchange('GET', '/rate-limits', reply=limits)])
    api = make_api(script)
    assert api.rate_limits() == limits
    assert api.client.pacer.other_limits == {1: 1, 60: 2, 3600: 3}


def test_enroll_sends_base64_csr_and_is_never_retried():
    expected = {'certificateName': 'erp auth', 'certificateType': 'Authentication', 'csr': base64.b64encode(b'CSR').decode(),
                'validFrom': '2026-01-02T00:00:00+00:00'}
    script = HttpScript([
        Exchange('POST', '/certificates/enrollments', json=expected, status=202,
                 reply={'referenceNumber': 'REF', 'timestamp': '2026-01-01T00:00:00Z'}),
        Exchange('POST', '/certificates/enrollments', status=503),
    ])
    api = make_api(script)
    assert api.enroll('erp auth', 'authentication', b'CSR', valid_from=datetime.datetime(2026, 1, 2)) == {
        'referenceNumber': 'REF', 'timestamp': '2026-01-01T00:00:00Z'}
    with pytest.raises(KsefApiError):
        api.enroll('erp auth', 'Offline', b'CSR')
    script.verify()


def test_enroll_transport_error_says_it_may_have_reached_the_server():
    import requests
    script = HttpScript([Exchange('POST', '/certificates/enrollments', exc=requests.exceptions.ReadTimeout('x'))])
    with pytest.raises(KsefTransportError) as info:
        make_api(script).enroll('erp auth', 'offline', b'CSR')
    assert info.value.may_have_reached_server is True
    script.verify()


def test_retrieve_in_chunks_of_ten():
    def reply(serials):
        return {'certificates': [{'certificateSerialNumber': s, 'certificate': 'AAAA', 'certificateName': 'n',
                                  'certificateType': 'Offline'} for s in serials]}
    script = HttpScript([
        Exchange('POST', '/certificates/retrieve', json={'certificateSerialNumbers': SERIALS[0:10]}, reply=reply(SERIALS[0:10])),
        Exchange('POST', '/certificates/retrieve', json={'certificateSerialNumbers': SERIALS[10:20]}, status=502),
        Exchange('POST', '/certificates/retrieve', json={'certificateSerialNumbers': SERIALS[10:20]}, reply=reply(SERIALS[10:20])),
        Exchange('POST', '/certificates/retrieve', json={'certificateSerialNumbers': SERIALS[20:]}, reply=reply(SERIALS[20:])),
    ])
    items = make_api(script).retrieve(SERIALS)
    script.verify()
    assert [i['certificateSerialNumber'] for i in items] == SERIALS
    assert make_api(HttpScript([])).retrieve([]) == []


def list_item(n):
    """A certificate list item with the fields KsefApi.query checks, numbered by n."""
    return {'n': n, 'certificateSerialNumber': '%016X' % n, 'name': 'erp', 'type': 'Authentication',
            'status': 'Active', 'validTo': '2027-01-01T00:00:00+00:00'}


def test_query_reads_every_page_with_mapped_filters():
    body = {'name': 'erp', 'type': 'Authentication', 'status': 'Active', 'certificateSerialNumber': SERIALS[0],
            'expiresAfter': '2026-01-01T00:00:00+00:00'}
    script = HttpScript([
        Exchange('POST', '/certificates/query', json=body, params={'pageSize': 50, 'pageOffset': 0},
                 reply={'certificates': [list_item(i) for i in range(50)], 'hasMore': True}),
        Exchange('POST', '/certificates/query', json=body, params={'pageSize': 50, 'pageOffset': 1},
                 reply={'certificates': [list_item(50)], 'hasMore': False}),
    ])
    items = make_api(script).query(name='erp', certificate_type='authentication', status='active',
                                   serial_number=SERIALS[0],
                                   expires_after=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    script.verify()
    assert [i['n'] for i in items] == list(range(51))


def test_query_without_filters_sends_an_empty_object():
    script = HttpScript([Exchange('POST', '/certificates/query', json={}, reply={'certificates': [], 'hasMore': False})])
    assert make_api(script).query() == []
    script.verify()


def test_revoke_maps_reason_and_treats_25009_as_already_revoked():
    script = HttpScript([
        Exchange('POST', '/certificates/%s/revoke' % SERIALS[0], json={'revocationReason': 'KeyCompromise'}, status=204),
        Exchange('POST', '/certificates/%s/revoke' % SERIALS[1], json={}, status=400, reply=error_body(25009, 'already')),
        Exchange('POST', '/certificates/%s/revoke' % SERIALS[2], json={}, status=400, reply=error_body(25008, 'missing')),
    ])
    api = make_api(script)
    assert api.revoke(SERIALS[0], 'key_compromise') is True
    assert api.revoke(SERIALS[1]) is False
    with pytest.raises(KsefApiError) as info:
        api.revoke(SERIALS[2])
    assert info.value.codes == [25008]
    script.verify()


def test_enum_maps():
    assert to_api(CERTIFICATE_TYPES, 'offline') == 'Offline'
    assert to_api(CERTIFICATE_TYPES, 'Offline') == 'Offline'
    assert to_api(REVOCATION_REASONS, None) is None
    with pytest.raises(KsefInputError) as info:
        to_api(CERTIFICATE_STATUSES, 'gone', 'status')
    assert "status must be one of active, blocked, expired, revoked, got 'gone'" == str(info.value)
    assert from_api(REVOCATION_REASONS, 'KeyCompromise') == 'key_compromise'
    assert from_api(CERTIFICATE_STATUSES, 'SomethingNew') == 'something_new'


def test_snake_item_converts_nested_keys_only():
    item = {'certificateSerialNumber': 'ABC', 'subjectIdentifier': {'type': 'Nip', 'value': '1'}, 'validTo': 'x',
            'list': [{'lastUseDate': None}]}
    assert snake_item(item) == {'certificate_serial_number': 'ABC', 'subject_identifier': {'type': 'Nip', 'value': '1'},
                                'valid_to': 'x', 'list': [{'last_use_date': None}]}
    assert snake_name('HTTPStatus') == 'http_status'
    assert snake_name('pageSize') == 'page_size'


def test_ensure_rate_limits_reads_once_and_paces_to_them():
    limits = {'other': {'perSecond': 5, 'perMinute': 12, 'perHour': 120}}
    script = HttpScript([Exchange('GET', '/rate-limits', token=TOKEN, reply=limits)])
    api = make_api(script)
    api.ensure_rate_limits()
    api.ensure_rate_limits()
    script.verify()
    assert api.client.pacer.other_limits == {1: 5, 60: 12, 3600: 120}
    assert api.client.pacer.limits_source == 'GET /rate-limits'


def test_the_run_reads_its_limits_and_call_counts_from_the_gateway():
    limits = {'other': {'perSecond': 5, 'perMinute': 12, 'perHour': 120}}
    script = HttpScript([
        Exchange('GET', '/certificates/limits', token=TOKEN, reply={'canRequest': True}),
        Exchange('GET', '/rate-limits', token=TOKEN, reply=limits),
    ])
    api = make_api(script)
    assert api.limits_for(_api.ENROLL) == {1: 10, 60: 30, 3600: 120} and api.limits_source() == 'published'
    assert api.limits_for(str(_api.AUTH_CHALLENGE)) == {1: 60}, 'the auth/public group has limits of its own'
    api.limits()
    api.ensure_rate_limits()
    script.verify()
    assert api.limits_for(str(_api.ENROLL)) == {1: 5, 60: 12, 3600: 120} and api.limits_source() == 'GET /rate-limits'
    assert api.calls_by_endpoint() == {'GET /certificates/limits': 1, 'GET /rate-limits': 1}


def test_ensure_rate_limits_refused_keeps_the_published_limits_and_warns():
    warnings = []
    script = HttpScript([Exchange('GET', '/rate-limits', status=403, reply={'title': 'Forbidden', 'status': 403})])
    api = make_api(script)
    api.client.warn = warnings.append
    api.ensure_rate_limits()
    api.ensure_rate_limits()
    script.verify()
    assert api.client.pacer.other_limits == {1: 10, 60: 30, 3600: 120}
    assert len(warnings) == 1 and 'published KSeF limits' in warnings[0] and 'HTTP 403' in warnings[0]


def test_auth_gateway_calls():
    script = HttpScript([
        Exchange('POST', '/auth/challenge', reply={'challenge': 'C', 'timestampMs': 1}),
        Exchange('POST', '/auth/xades-signature', status=202, params={'verifyCertificateChain': 'true'},
                 headers={'Content-Type': 'application/xml'}, body=lambda body: body == b'<xml/>',
                 reply={'referenceNumber': 'R'}),
        Exchange('POST', '/auth/ksef-token', status=202, json={'challenge': 'C'}, reply={'referenceNumber': 'R2'}),
        Exchange('GET', '/security/public-key-certificates', reply={'not': 'a list'}),
        Exchange('GET', '/auth/R', token='OP', reply={'status': {'code': 200}}),
        Exchange('POST', '/auth/token/redeem', token='OP', reply={'accessToken': {'token': 'A'}}),
        Exchange('POST', '/auth/token/refresh', token='REF', reply={'accessToken': {'token': 'A2'}}),
        Exchange('DELETE', '/auth/sessions/current', token='REF', status=204),
        Exchange('DELETE', '/auth/sessions/current', token='REF', status=401, reply={'title': 'Unauthorized'}),
    ])
    clock = FakeClock()
    gateway = KsefAuthApi(KsefHttpClient('https://ksef.invalid/v2', session=script.session(), clock=clock,
                                         sleep=clock.sleep))
    assert gateway.challenge() == {'challenge': 'C', 'timestampMs': 1}
    assert gateway.xades_signature(b'<xml/>', verify_chain=True) == {'referenceNumber': 'R'}
    assert gateway.ksef_token({'challenge': 'C'}) == {'referenceNumber': 'R2'}
    assert gateway.public_key_certificates() == []
    assert gateway.status('R', 'OP') == {'status': {'code': 200}}
    assert gateway.redeem('OP') == {'accessToken': {'token': 'A'}}
    assert gateway.refresh('REF') == {'accessToken': {'token': 'A2'}}
    gateway.close_session('REF')
    with pytest.raises(KsefApiError) as info:
        gateway.close_session('REF')
    assert info.value.status == 401
    assert info.value.endpoint == '/auth/sessions/current'
    script.verify()


def test_a_challenge_without_challenge_is_an_unexpected_answer():
    script = HttpScript([Exchange('POST', '/auth/challenge', reply={'timestampMs': 1})])
    gateway = KsefAuthApi(KsefHttpClient('https://ksef.invalid/v2', session=script.session()))
    with pytest.raises(KsefError) as info:
        gateway.challenge()
    assert str(info.value).startswith('KSeF answered POST /auth/challenge with an unexpected body (no challenge)')


def _code_strings(path):
    """The string literals of a Python file that are code: not docstrings, not the module's documentation."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) in ('DOCUMENTATION', 'EXAMPLES', 'RETURN')
                                                for t in node.targets):
            skipped.add(id(node.value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped]


def test_every_endpoint_route_is_written_only_in_the_gateway():
    """Issue 9: every KSeF endpoint the collection calls appears in _api.py and nowhere else in plugins/."""
    plugins = os.path.dirname(os.path.dirname(os.path.abspath(_api.__file__)))
    routes = [value.route for value in vars(_api).values() if isinstance(value, _api.Endpoint)]
    assert '/auth/sessions/current' in routes and '/certificates/enrollments' in routes
    route_like = re.compile(r'/(auth|certificates|security|rate-limits|testdata|sessions|permissions|tokens)(/|\b)')
    offenders = []
    for directory, dummy, files in os.walk(plugins):
        for name in files:
            path = os.path.join(directory, name)
            if not name.endswith('.py') or path == os.path.abspath(_api.__file__).replace('.pyc', '.py'):
                continue
            for text in _code_strings(path):
                if text.startswith('http://ksef.mf.gov.pl/'):
                    continue  # an XML namespace of the login document, not an endpoint
                if route_like.search(text) or any(route in text for route in routes):
                    offenders.append('%s: %r' % (os.path.relpath(path, plugins), text))
    assert not offenders, 'endpoint routes outside _api.py:\n' + '\n'.join(offenders)
