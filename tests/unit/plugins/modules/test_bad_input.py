# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input through the modules' main(): malformed KSeF answers (missing fields, wrong types, huge
bodies, HTML pages from a proxy) and odd option values. Every case ends in exit_json or fail_json with
a short message, never a traceback, and nothing is written on disk before KSeF answered well."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate_info
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate_revoke
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import (
    Exchange,
    HttpScript,
)

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
API_URL = 'https://ksef.invalid/v2'
TOKEN = 'unit-test-access-token-0123456789'
MAX_MESSAGE = 2000

# JSON values of every shape, for "wrong type" fields and whole bodies.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)

# A certificate list item with fields missing or of the wrong type.
item_fields = {
    'certificateSerialNumber': st.sampled_from(['0123456789ABCDEF', '', None, 12, 'not-a-serial']),
    'name': st.sampled_from(['bad-input', 'bad', None, 5, '']),
    'type': st.sampled_from(['Authentication', 'Offline', 'Weird', None, 1]),
    'status': st.sampled_from(['Active', 'Revoked', 'Gone', None, []]),
    'validTo': st.sampled_from(['2030-01-01T00:00:00+00:00', 'tomorrow', '', None, 7]),
    'validFrom': st.sampled_from(['2026-01-01T00:00:00Z', 'x', None]),
    'requestDate': st.sampled_from(['2026-01-01T00:00:00Z', None, {}]),
}
broken_items = st.fixed_dictionaries({}, optional=item_fields)

html_page = st.sampled_from([
    b'<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>',
    b'<!DOCTYPE html><html><body><script>var x = 1;</script>Service temporarily unavailable</body></html>',
    b'<html>' + b'A' * 300000 + b'</html>',
])

# (status, body, content type) of a malformed answer to POST /certificates/query.
query_answers = st.one_of(
    st.tuples(st.just(200), json_values, st.just('application/json')),
    st.tuples(st.just(200), st.fixed_dictionaries({'certificates': st.lists(broken_items, max_size=3),
                                                   'hasMore': st.sampled_from([False, None, 'no'])}),
              st.just('application/json')),
    st.tuples(st.just(200), st.fixed_dictionaries({'certificates': json_values}), st.just('application/json')),
    st.tuples(st.sampled_from([200, 400, 401, 403, 404, 500, 502]), html_page, st.just('text/html')),
    st.tuples(st.just(200), st.just(b'{"certificates": [' + b'{"name": "x"},' * 2000 + b'{}]}'),
              st.just('application/json')),
    st.tuples(st.sampled_from([400, 403, 409]), json_values, st.just('application/json')),
)


def scripted(monkeypatch, status, body, content_type, then=()):
    """KSeF answers one query with this body (no retries: max_retries=0), then the `then` exchanges."""
    script = HttpScript([Exchange('POST', '/certificates/query', status=status, reply=body, content_type=content_type)]
                        + list(then))
    script.install(monkeypatch)
    return script


def assert_clean_failure_or_success(result):
    assert result.exit_code in (0, 1), result
    if result.exit_code == 1:
        message = result['msg']
        assert message and len(message) < MAX_MESSAGE, message
        assert 'Traceback' not in message and 'Traceback' not in str(result.get('exception', ''))
        assert '<html' not in message.lower() and '<script' not in message.lower()
        assert TOKEN not in str(result)


CONNECTION = dict(api_url=API_URL, access_token=TOKEN, context_id='1234563218', max_retries=0,
                  validate_certs=False)


@SETTINGS
@given(answer=query_answers)
def test_info_survives_malformed_query_answers(run_module, monkeypatch, answer):
    script = scripted(monkeypatch, *answer)
    result = run_module(ksef_certificate_info, dict(CONNECTION))
    assert_clean_failure_or_success(result)
    assert script.remaining == []


@SETTINGS
@given(answer=query_answers)
def test_certificate_fails_cleanly_before_writing_anything(run_module, monkeypatch, tmp_path_factory, answer):
    workdir = tmp_path_factory.mktemp('bad')
    # An answer that reads as "no certificate" is valid: the module then reads the rate limits once (it has work)
    # and asks for the certificate limits, which fail.
    scripted(monkeypatch, *answer, then=[
        Exchange('GET', '/rate-limits', reply={'other': {'perSecond': 10, 'perMinute': 30, 'perHour': 120}}),
        Exchange('GET', '/certificates/limits', status=503, reply={'title': 'down'})])
    result = run_module(ksef_certificate, dict(CONNECTION, name='bad-input', type='authentication',
                                               private_key_path=str(workdir / 'bad.key'),
                                               certificate_path=str(workdir / 'bad.pem')))
    assert_clean_failure_or_success(result)
    # No key, certificate, state or lock file: the run stopped before any decision.
    assert os.listdir(str(workdir)) == []


@SETTINGS
@given(answer=query_answers)
def test_revoke_survives_malformed_query_answers(run_module, monkeypatch, answer):
    scripted(monkeypatch, *answer)
    result = run_module(ksef_certificate_revoke, dict(CONNECTION, name='bad-input', type='authentication'))
    assert_clean_failure_or_success(result)


option_values = st.one_of(st.none(), st.text(max_size=30), st.integers(-5, 10 ** 6), st.booleans(),
                          st.lists(st.text(max_size=5), max_size=3))


@SETTINGS
@given(name=option_values, cert_type=option_values, renew=option_values, wait_timeout=option_values,
       valid_from=option_values, context_id=option_values, api_url=option_values)
def test_certificate_options_fail_before_any_request(run_module, monkeypatch, tmp_path_factory, name, cert_type,
                                                     renew, wait_timeout, valid_from, context_id, api_url):
    workdir = tmp_path_factory.mktemp('opts')
    script = HttpScript([])   # no exchange: any request fails the test
    script.install(monkeypatch)
    args = dict(access_token=TOKEN, api_url=api_url, context_id=context_id, name=name, type=cert_type,
                renew_before_days=renew, wait_timeout=wait_timeout, valid_from=valid_from,
                private_key_path=str(workdir / 'k.key'))
    args = dict((key, value) for key, value in args.items() if value is not None)
    result = run_module(ksef_certificate, args)
    # Whatever the values, the module answers (argument errors or a clean failure), sends nothing it was
    # not scripted for, and has written no key.
    assert result.exit_code in (0, 1), result
    if result.exit_code == 1:
        assert result['msg'] and 'Traceback' not in result['msg']
    assert not os.path.exists(str(workdir / 'k.key')) or result.exit_code == 0
