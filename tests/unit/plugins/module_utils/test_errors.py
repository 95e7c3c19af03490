# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The typed errors: an API failure names the endpoint, HTTP status, KSeF code and reference number."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefAuthError,
    KsefError,
    KsefRateLimitError,
    KsefTimeoutError,
    KsefTransportError,
    format_seconds,
)


def test_api_error_names_endpoint_status_code_reference_and_hint():
    error = KsefApiError('POST', '/certificates/enrollments', 400,
                         [{'code': 25006, 'description': 'Limit wniosków', 'details': ['1 of 1 used']}],
                         reference_number='REF', service_code='SVC')
    assert str(error) == ('POST /certificates/enrollments failed: HTTP 400, KSeF 25006: Limit wniosków (1 of 1 used); '
                          'reference number REF; service code SVC; the enrollment request quota of the subject is '
                          'spent; KSeF counts requests over a period, revoking does not give them back')
    assert error.codes == [25006]
    assert error.fail_kwargs() == {
        'http_status': 400, 'endpoint': 'POST /certificates/enrollments', 'reference_number': 'REF',
        'service_code': 'SVC',
        'ksef_errors': [{'code': 25006, 'description': 'Limit wniosków', 'details': ['1 of 1 used']}]}


def test_api_error_without_a_body_and_codes_that_are_not_numbers():
    assert str(KsefApiError('GET', '/certificates/limits', 503)) == 'GET /certificates/limits failed: HTTP 503'
    assert KsefApiError('GET', '/x', 400, [{'code': 'abc'}, {'code': None}]).codes == []
    limited = KsefRateLimitError('GET', '/x', 429, retry_after=30)
    assert isinstance(limited, KsefApiError) and limited.fail_kwargs()['retry_after'] == 30


def test_transport_error_says_what_was_tried_and_whether_it_may_have_reached_ksef():
    error = KsefTransportError('POST', '/certificates/enrollments', 'read timeout', may_have_reached_server=True,
                               attempts=2, elapsed=61.25, repeat_safe=False, hint='check the network')
    assert str(error) == ('POST /certificates/enrollments failed: read timeout; sent 2 times, 61.2 s in total; the '
                          'request may have reached KSeF, so it was not repeated (check the server state before '
                          'trying again); check the network')
    assert error.fail_kwargs() == {'endpoint': 'POST /certificates/enrollments', 'may_have_reached_server': True}
    assert 'may have reached' not in str(KsefTransportError('GET', '/x', 'refused', may_have_reached_server=True,
                                                            repeat_safe=True))


def test_auth_and_timeout_errors_carry_structured_fields():
    error = KsefAuthError(460, 'Certificate error', None, 'REF', hint='Check it')
    assert str(error) == 'KSeF authentication failed with status 460: Certificate error; reference number REF. Check it'
    assert error.fail_kwargs() == {'auth_status': {'code': 460, 'description': 'Certificate error', 'details': []},
                                   'reference_number': 'REF'}
    assert KsefTimeoutError('waited', reference_number='R').fail_kwargs() == {'reference_number': 'R'}
    assert KsefTimeoutError('waited').fail_kwargs() == {}
    assert all(issubclass(cls, KsefError) for cls in (KsefApiError, KsefAuthError, KsefTimeoutError, KsefTransportError))


def test_format_seconds():
    assert format_seconds(3) == '3 s'
    assert format_seconds(10.54) == '10.5 s'
