# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of _tokens: the module form of a token, descriptions as identity, and the bounded wait."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _tokens
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError, KsefTimeoutError
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock, FakeKsef

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)


def api_token(reference='20261201-EC-0000000000-0000000000-01', description='erp invoicing', status='Active',
              permissions=('InvoiceWrite', 'InvoiceRead'), last_use='2026-12-01T11:59:59.1234567+01:00'):
    item = {'referenceNumber': reference, 'description': description, 'status': status,
            'requestedPermissions': list(permissions), 'authorIdentifier': {'type': 'Pesel', 'value': '90010112345'},
            'contextIdentifier': {'type': 'Nip', 'value': '1234563218'}, 'dateCreated': '2026-01-10T12:00:00Z'}
    if last_use:
        item['lastUseDate'] = last_use
    return item


def test_summary_is_snake_case_utc_with_days_since_last_use():
    summary = _tokens.token_summary(api_token(), NOW)
    assert summary == {
        'reference_number': '20261201-EC-0000000000-0000000000-01', 'description': 'erp invoicing', 'status': 'active',
        'permissions': ['invoice_read', 'invoice_write'], 'author_identifier_type': 'pesel',
        'author_identifier': '90010112345', 'context_identifier_type': 'Nip', 'context_identifier': '1234563218',
        'date_created': '2026-01-10T12:00:00+00:00', 'last_use_date': '2026-12-01T10:59:59+00:00',
        'days_since_last_use': 5, 'days_since_created': 330, 'status_details': [],
    }


def test_a_token_never_used_has_no_days_since_last_use():
    summary = _tokens.token_summary(api_token(last_use=None), NOW)
    assert summary['last_use_date'] is None and summary['days_since_last_use'] is None


@pytest.mark.parametrize('description, problem', [
    ('erp', '5 to 256 characters'),
    ('x' * 257, '5 to 256 characters'),
    (' erp invoicing', 'leading or trailing spaces'),
    ('erp\ninvoicing', 'control character'),
])
def test_descriptions_ksef_would_refuse_or_that_never_match_are_named(description, problem):
    assert problem in _tokens.description_problem(description)


def test_a_good_description_has_no_problem():
    assert _tokens.description_problem('erp invoicing integration') is None


def ksef_with_tokens(*items):
    """The fake KSeF listing `items`; like KSeF it matches a description filter as a case-blind substring."""
    ksef = FakeKsef(FakeClock(wall=NOW))
    for item in items:
        ksef.add_token(item)
    return ksef


def test_only_exact_descriptions_count_and_two_live_tokens_are_refused():
    api = ksef_with_tokens(api_token(description='ERP invoicing'), api_token(description='erp invoicing (old)'),
                           api_token(reference='R2', description='erp invoicing', status='Revoked'),
                           api_token(reference='R3', description='erp invoicing', status='Pending'))
    tokens = _tokens.tokens_described(api, 'erp invoicing', NOW)
    assert [t['reference_number'] for t in tokens] == ['R2', 'R3']
    assert _tokens.live_token(tokens, 'erp invoicing')['reference_number'] == 'R3'
    api.add_token(api_token(reference='R4', description='erp invoicing'))
    with pytest.raises(_tokens.DuplicateDescriptionError) as caught:
        _tokens.live_token(_tokens.tokens_described(api, 'erp invoicing', NOW), 'erp invoicing')
    assert 'R3 pending' in str(caught.value) and 'R4 active' in str(caught.value)
    assert [t['reference_number'] for t in caught.value.fail_kwargs()['tokens']] == ['R3', 'R4']


def ksef_with_status(statuses):
    """The fake KSeF with token R1, whose status reads `statuses` in turn (then the last one)."""
    ksef = FakeKsef(FakeClock(wall=NOW))
    ksef.add_token(api_token(reference='R1'), statuses=statuses)
    return ksef


def test_the_wait_polls_with_growing_sleeps_until_the_goal():
    clock = FakeClock()
    api = ksef_with_status(['Pending', 'Pending', 'Pending', 'Active'])
    waiter = _tokens.TokenWaiter(api, 60, clock=clock, sleep=clock.sleep, now=lambda: NOW)
    assert waiter.wait('R1', 'active')['status'] == 'active'
    assert clock.sleeps == [1.0, 1.5, 2.25] and api.count('token_status') == 4


def test_a_failed_token_ends_the_wait_for_active():
    clock = FakeClock()
    waiter = _tokens.TokenWaiter(ksef_with_status(['Pending', 'Failed']), 60, clock=clock, sleep=clock.sleep, now=lambda: NOW)
    assert waiter.wait('R1', 'active')['status'] == 'failed'


def test_the_wait_is_bounded_and_says_what_to_do():
    clock = FakeClock()
    waiter = _tokens.TokenWaiter(ksef_with_status(['Revoking']), 10, clock=clock, sleep=clock.sleep, now=lambda: NOW)
    with pytest.raises(KsefTimeoutError) as caught:
        waiter.wait('R1', 'revoked')
    assert 'still revoking after 10 s' in str(caught.value) and 'run the task again later' in str(caught.value)
    assert caught.value.fail_kwargs() == {'reference_number': 'R1'}
    assert clock() <= 10


def test_search_filters_need_three_characters():
    _tokens.check_description_filter('description', 'erp')
    _tokens.check_description_filter('description', None)
    with pytest.raises(KsefInputError, match='at least 3 characters'):
        _tokens.check_description_filter('author_identifier', '12')
