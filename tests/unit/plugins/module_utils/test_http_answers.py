# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_http_answers alone: nothing in a KSeF answer is trusted (issue 17, findings 7 and 8; the hostile HTTPS server
tests of the whole client are in test_http_network.py)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _http_answers as answers
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError

JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl'


@pytest.mark.parametrize('value, seconds', [('5', 5), (' 30 ', 30), ('0', 0),
                                            ('Sun, 06 Nov 1994 08:49:37 GMT', 0)])
def test_retry_after_digits_or_an_http_date(value, seconds):
    assert answers.parse_retry_after(value, now=784111777 + 10) == seconds


def test_retry_after_http_date_in_the_future():
    assert answers.parse_retry_after('Sun, 06 Nov 1994 08:49:37 GMT', now=784111777 - 20) == 20


@pytest.mark.parametrize('value', [u'\u00b2', u'\u0665', '-1', '1.5', '9' * 5000, 'soon', 'Sun, 06 Nov 1994',
                                   'Sunday, 06-Nov-94 08:49:37 GMT', 'Sun, 99 Nov 1994 08:49:37 GMT', ''])
def test_retry_after_anything_else_is_none(value):
    assert answers.parse_retry_after(value) is None


def test_nested_json_is_not_json():
    assert answers.decode_json(b'[' * 100000 + b']' * 100000) == (False, None)
    with pytest.raises(KsefApiError, match='not valid JSON'):
        answers.success_body('GET', '/x', 200, b'{"a":' * 100000 + b'1' + b'}' * 100000,
                             {'Content-Type': 'application/json'})


def test_redact_bearer_jwt_and_registered_secrets():
    text = 'Authorization: Bearer abc.def-123, token %s and key 20250101-EC-SECRETKSEFTOKEN' % JWT
    redacted = answers.redact(text, {'20250101-EC-SECRETKSEFTOKEN'})
    assert redacted == 'Authorization: Bearer ********, token ******** and key ********'
    assert answers.sanitize_excerpt('<p>Bearer %s</p>' % JWT) == 'Bearer ********'


def test_error_texts_are_redacted():
    body = b'{"exception": {"exceptionDetailList": [{"exceptionCode": 1, "exceptionDescription": "got Bearer ' + \
        JWT.encode('ascii') + b'", "details": ["' + JWT.encode('ascii') + b'"]}], "referenceNumber": "' + \
        JWT.encode('ascii') + b'"}}'
    error = answers.api_error('GET', '/x', 400, body, {}, 'https://ksef.invalid/v2')
    assert JWT not in repr((str(error), error.fail_kwargs()))


def test_tokens_in_finds_every_token_field():
    body = {'authenticationToken': {'token': 'a'}, 'items': [{'token': 'b'}, {'name': 'token'}], 'token': 'c',
            'accessToken': {'token': None}}
    assert sorted(answers.tokens_in(body)) == ['a', 'b', 'c']
    assert answers.tokens_in('text') == [] and answers.tokens_in(None) == []


def test_a_redirect_names_the_location_host():
    error = answers.refused_redirect('POST', '/auth/xades-signature', 307, {'Location': 'http://evil.invalid:81/x?y'})
    assert 'redirect to evil.invalid' in str(error) and error.status == 307
