# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of ksef_token: main() through scripted HTTP exchanges (what KSeF answers, in order)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _tokens
from ansible_collections.ksef.certificates.plugins.modules import ksef_token
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

ACCESS_TOKEN = 'header.eyJleHAiOjQxMDI0NDQ4MDB9.signature'
CONNECTION = {'api_url': 'https://ksef.invalid/v2', 'access_token': ACCESS_TOKEN}
BASE = 'https://ksef.invalid/v2'
REF = '20261201-EC-0000000000-0000000000-01'
REF2 = '20261201-EC-0000000000-0000000000-02'
DESCRIPTION = 'erp invoicing'
SECRET = REF + '|nip-1234563218|' + 'ab' * 32
PRESENT = dict(CONNECTION, description=DESCRIPTION, permissions=['invoice_write', 'invoice_read'], _ansible_no_log=True)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    sleeps = []
    monkeypatch.setattr(_tokens.time, 'sleep', sleeps.append)
    return sleeps


@pytest.fixture
def warnings(monkeypatch):
    """The texts module.warn() was called with (the result's 'warnings' depend on ansible-core's global state)."""
    texts = []
    monkeypatch.setattr(AnsibleModule, 'warn', lambda self, text: texts.append(text))
    return texts


def item(reference=REF, description=DESCRIPTION, status='Active', permissions=('InvoiceRead', 'InvoiceWrite')):
    return {'referenceNumber': reference, 'description': description, 'status': status,
            'requestedPermissions': list(permissions), 'authorIdentifier': {'type': 'Nip', 'value': '1234563218'},
            'contextIdentifier': {'type': 'Nip', 'value': '1234563218'}, 'dateCreated': '2026-12-01T10:00:00+00:00'}


def listing(*items, **kwargs):
    return Exchange('GET', '/tokens', token=ACCESS_TOKEN, params={'pageSize': 100, 'description': DESCRIPTION},
                    reply=dict({'tokens': list(items)}, **kwargs))


def status(reference=REF, token_status='Active', **kwargs):
    return Exchange('GET', '%s/tokens/%s' % (BASE, reference), token=ACCESS_TOKEN,
                    reply=item(reference=reference, status=token_status, **kwargs))


def test_present_generates_waits_through_pending_and_returns_the_secret_once(run_module, monkeypatch, no_sleep, warnings):
    script = HttpScript([
        listing(item(description='erp invoicing (old)'), item(reference=REF2, status='Revoked')),
        Exchange('POST', '/tokens', token=ACCESS_TOKEN, status=202,
                 json={'description': DESCRIPTION, 'permissions': ['InvoiceRead', 'InvoiceWrite']},
                 reply={'referenceNumber': REF, 'token': SECRET}),
        status(token_status='Pending'),
        status(token_status='Active'),
    ]).install(monkeypatch)
    result = run_module(ksef_token, PRESENT, diff=True)
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is True and result['token'] == SECRET
    assert result['token_info']['status'] == 'active' and result['token_info']['reference_number'] == REF
    assert any('only there' in w and REF in w for w in warnings)
    assert result['diff'] == {'before': {}, 'after': {'description': DESCRIPTION, 'permissions': ['invoice_read', 'invoice_write'],
                                                      'status': 'active'}}
    assert no_sleep == [1.0]


def test_present_is_unchanged_when_the_token_is_active_and_returns_no_secret(run_module, monkeypatch):
    script = HttpScript([listing(item())]).install(monkeypatch)
    result = run_module(ksef_token, PRESENT)
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is False and result['token'] is None and result['token_info']['reference_number'] == REF
    assert 'diff' not in result and result['api_calls'] == 1


def test_present_waits_for_a_pending_token_without_a_change(run_module, monkeypatch):
    script = HttpScript([listing(item(status='Pending')), status(token_status='Active')]).install(monkeypatch)
    result = run_module(ksef_token, PRESENT)
    script.verify()
    assert result['changed'] is False and result['token_info']['status'] == 'active'


def test_check_mode_predicts_a_new_token_without_generating_it(run_module, monkeypatch):
    script = HttpScript([listing()]).install(monkeypatch)
    result = run_module(ksef_token, dict(PRESENT, _ansible_no_log=False), check_mode=True, diff=True)
    script.verify()
    assert result['changed'] is True and result['token'] is None
    assert result['diff']['before'] == {} and result['diff']['after']['status'] == 'active'
    assert result['msg'].startswith('Would generate')


def test_a_new_token_needs_no_log_before_anything_is_generated(run_module, monkeypatch):
    script = HttpScript([listing()]).install(monkeypatch)
    result = run_module(ksef_token, dict(PRESENT, _ansible_no_log=False))
    script.verify()
    assert result.exit_code == 1 and 'set no_log: true' in result['msg'] and 'Nothing was changed' in result['msg']


def test_two_active_tokens_with_the_description_are_refused_for_both_states(run_module, monkeypatch):
    for args in (PRESENT, dict(CONNECTION, description=DESCRIPTION, state='absent')):
        script = HttpScript([listing(item(), item(reference=REF2))]).install(monkeypatch)
        result = run_module(ksef_token, args)
        script.verify()
        assert result.exit_code == 1 and 'share the description' in result['msg'] and 'nothing was changed' in result['msg']
        assert [t['reference_number'] for t in result['tokens']] == [REF, REF2]


def test_other_permissions_are_refused_without_a_change(run_module, monkeypatch):
    script = HttpScript([listing(item(permissions=['InvoiceRead']))]).install(monkeypatch)
    result = run_module(ksef_token, PRESENT)
    script.verify()
    assert result.exit_code == 1 and 'cannot change a token\'s permissions' in result['msg']


def test_a_token_that_failed_to_activate_fails_the_task_with_its_reference(run_module, monkeypatch):
    script = HttpScript([
        listing(),
        Exchange('POST', '/tokens', status=202, reply={'referenceNumber': REF, 'token': SECRET}),
        status(token_status='Failed'),
    ]).install(monkeypatch)
    result = run_module(ksef_token, PRESENT)
    script.verify()
    assert result.exit_code == 1 and 'ended failed' in result['msg'] and REF in result['msg']


def test_a_token_still_pending_at_the_timeout_keeps_its_secret(run_module, monkeypatch, warnings):
    script = HttpScript([
        listing(),
        Exchange('POST', '/tokens', status=202, reply={'referenceNumber': REF, 'token': SECRET}),
        status(token_status='Pending'),
    ]).install(monkeypatch)
    result = run_module(ksef_token, dict(PRESENT, wait_timeout=0))
    script.verify()
    assert result.exit_code == 0 and result['changed'] is True and result['token'] == SECRET

    assert result['token_info']['status'] == 'pending' and any('still pending' in w for w in warnings)


def test_absent_revokes_and_waits_through_revoking(run_module, monkeypatch):
    script = HttpScript([
        listing(item(), item(reference=REF2, status='Revoked')),
        Exchange('DELETE', '%s/tokens/%s' % (BASE, REF), status=204),
        status(token_status='Revoking'),
        status(token_status='Revoked'),
    ]).install(monkeypatch)
    result = run_module(ksef_token, dict(CONNECTION, description=DESCRIPTION, state='absent'), diff=True)
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is True and result['token_info']['status'] == 'revoked'
    assert result['diff']['before']['status'] == 'active' and result['diff']['after']['status'] == 'revoked'


def test_absent_is_unchanged_when_only_revoked_tokens_carry_the_description(run_module, monkeypatch):
    script = HttpScript([listing(item(status='Revoked'))]).install(monkeypatch)
    result = run_module(ksef_token, dict(CONNECTION, description=DESCRIPTION, state='absent'))
    script.verify()
    assert result['changed'] is False and result['token_info'] is None


def test_absent_waits_for_a_revocation_under_way_without_a_change(run_module, monkeypatch):
    script = HttpScript([listing(item(status='Revoking')), status(token_status='Revoked')]).install(monkeypatch)
    result = run_module(ksef_token, dict(CONNECTION, description=DESCRIPTION, state='absent'))
    script.verify()
    assert result['changed'] is False and result['token_info']['status'] == 'revoked'


def test_absent_in_check_mode_predicts_without_revoking(run_module, monkeypatch):
    script = HttpScript([listing(item())]).install(monkeypatch)
    result = run_module(ksef_token, dict(CONNECTION, description=DESCRIPTION, state='absent'), check_mode=True)
    script.verify()
    assert result['changed'] is True and result['msg'] == 'Would revoke KSeF token %s' % REF


def test_a_refused_repeat_of_a_revocation_that_went_through_counts_as_revoked(run_module, monkeypatch):
    refused = {'exception': {'serviceCode': 'svc', 'exceptionDetailList': [
        {'exceptionCode': 21405, 'exceptionDescription': 'Błąd walidacji danych wejściowych.', 'details': ['Revoking']}]}}
    script = HttpScript([
        status(token_status='Active'),
        Exchange('DELETE', '%s/tokens/%s' % (BASE, REF), status=400, reply=refused),
        status(token_status='Revoking'),
        status(token_status='Revoked'),
    ]).install(monkeypatch)
    result = run_module(ksef_token, dict(CONNECTION, reference_number=REF, state='absent'))
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is True and result['token_info']['status'] == 'revoked'


@pytest.mark.parametrize('args, message', [
    (dict(description=DESCRIPTION), 'permissions is required'),
    (dict(description='erp', permissions=['invoice_read']), '5 to 256 characters'),
    (dict(description=DESCRIPTION, permissions=['invoice_read'], reference_number=REF), 'only for state=absent'),
    (dict(state='absent'), 'description is required'),
    (dict(description=DESCRIPTION, state='absent', wait_timeout=-1), 'wait_timeout'),
])
def test_bad_input_fails_before_any_request(run_module, monkeypatch, args, message):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_token, dict(CONNECTION, **args))
    script.verify()
    assert result.exit_code == 1 and message in result['msg'] and result['api_calls'] == 0


def test_a_ksef_token_login_is_refused_before_any_request(run_module, monkeypatch):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_token, {'api_url': BASE, 'context_id': '1234563218', 'ksef_token': SECRET,
                                     'description': DESCRIPTION, 'state': 'absent'})
    script.verify()
    assert result.exit_code == 1 and 'signature login' in result['msg'] and result['api_calls'] == 0
    assert SECRET not in str(result)
