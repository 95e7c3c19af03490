# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of ksef_token_info: main() through scripted HTTP exchanges, paging by continuation token."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.modules import ksef_token_info
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

ACCESS_TOKEN = 'header.eyJleHAiOjQxMDI0NDQ4MDB9.signature'
CONNECTION = {'api_url': 'https://ksef.invalid/v2', 'access_token': ACCESS_TOKEN}


def item(number, description='erp invoicing', status='Active', last_use='2026-11-01T08:00:00+00:00'):
    result = {'referenceNumber': '20261201-EC-0000000000-0000000000-%02d' % number, 'description': description,
              'status': status, 'requestedPermissions': ['InvoiceRead'],
              'authorIdentifier': {'type': 'Pesel', 'value': '90010112345'},
              'contextIdentifier': {'type': 'Nip', 'value': '1234563218'}, 'dateCreated': '2026-01-01T00:00:00+00:00'}
    if last_use:
        result['lastUseDate'] = last_use
    return result


def test_every_page_is_read_through_the_continuation_token_with_the_filters(run_module, monkeypatch):
    filters = {'pageSize': 100, 'status': 'Active', 'description': 'erp', 'authorIdentifier': '9001',
               'authorIdentifierType': 'Pesel'}
    script = HttpScript([
        Exchange('GET', '/tokens', token=ACCESS_TOKEN, params=filters,
                 reply={'tokens': [item(3), item(2)], 'continuationToken': 'next-page'}),
        Exchange('GET', '/tokens', token=ACCESS_TOKEN, params=filters, headers={'x-continuation-token': 'next-page'},
                 reply={'tokens': [item(2), item(1, last_use=None)], 'continuationToken': None}),
    ]).install(monkeypatch)
    result = run_module(ksef_token_info, dict(CONNECTION, status=['active'], description='erp', author_identifier='9001',
                                              author_identifier_type='pesel'))
    script.verify()
    assert result.exit_code == 0, result
    assert [t['reference_number'][-2:] for t in result['tokens']] == ['03', '02', '01']
    assert result['tokens'][0]['days_since_last_use'] >= 35 and result['tokens'][2]['days_since_last_use'] is None
    assert result['changed'] is False and result['msg'] == '3 KSeF token(s), 3 active'


def test_description_exact_keeps_only_that_description(run_module, monkeypatch):
    script = HttpScript([Exchange('GET', '/tokens', reply={'tokens': [
        item(1, 'erp invoicing (old)', status='Revoked'), item(2)]})]).install(monkeypatch)
    result = run_module(ksef_token_info, dict(CONNECTION, description='erp invoicing', description_exact=True))
    script.verify()
    assert [t['description'] for t in result['tokens']] == ['erp invoicing']


def test_an_answer_without_the_fields_callers_index_is_a_clear_error(run_module, monkeypatch):
    script = HttpScript([Exchange('GET', '/tokens', reply={'tokens': [{'referenceNumber': 'x'}]})]).install(monkeypatch)
    result = run_module(ksef_token_info, CONNECTION)
    script.verify()
    assert result.exit_code == 1 and 'GET /tokens' in result['msg'] and 'unexpected body' in result['msg']


@pytest.mark.parametrize('args, message', [
    (dict(description='ab'), 'description must have at least 3 characters'),
    (dict(author_identifier='12'), 'author_identifier must have at least 3 characters'),
    (dict(description_exact=True), 'description_exact needs description'),
])
def test_bad_filters_fail_before_any_request(run_module, monkeypatch, args, message):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_token_info, dict(CONNECTION, **args))
    script.verify()
    assert result.exit_code == 1 and message in result['msg'] and result['api_calls'] == 0
