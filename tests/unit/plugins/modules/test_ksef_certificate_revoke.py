# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of ksef_certificate_revoke's logic against the fake KSeF."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefInputError
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate_revoke as revoke_module
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock, FakeKsef
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript


def api_item(serial, name, status='Active', cert_type='Authentication'):
    return {
        'certificateSerialNumber': serial,
        'name': name,
        'type': cert_type,
        'commonName': 'Firma Sp. z o.o.',
        'status': status,
        'subjectIdentifier': {'type': 'Nip', 'value': '1234563218'},
        'validFrom': '2026-01-01T00:00:00+00:00',
        'validTo': '2028-01-01T00:00:00+00:00',
        'requestDate': '2025-12-31T23:59:00+00:00',
    }


def fake_ksef(items, race_serials=(), failing_serials=()):
    """The fake KSeF holding `items`: `race_serials` are revoked by someone else right after our query, KSeF
    answers a revocation of `failing_serials` with an error."""
    api = FakeKsef(FakeClock())
    for item in items:
        api.add_item(item)
    api.revoked_elsewhere = set(race_serials)
    api.revoke_errors = dict((serial, KsefApiError('POST', '/certificates/{certificateSerialNumber}/revoke', 500,
                                                   errors=[{'code': 500, 'description': 'Internal error'}],
                                                   service_code='svc-1')) for serial in failing_serials)
    return api


def params(**overrides):
    result = dict(serial_numbers=None, name=None, type=None, reason='unspecified')
    result.update(overrides)
    revoke_module.validate_params(result)
    return result


ITEMS = [
    api_item('00000000000000A1', 'erp'),
    api_item('00000000000000A2', 'erp', status='Revoked'),
    api_item('00000000000000A3', 'erp', status='Expired'),
    api_item('00000000000000A4', 'erp', status='Blocked'),
    api_item('00000000000000A5', 'erp-old'),                        # name merely contains "erp"
    api_item('00000000000000A6', 'erp', cert_type='Offline'),       # same name, other type
    api_item('00000000000000A7', 'erp'),
]


def test_revokes_active_serials_and_reports_the_others_as_already_revoked():
    api = fake_ksef(ITEMS)
    result = revoke_module.revoke_certificates(
        api, params(serial_numbers=['00000000000000A1', '00000000000000A2', '00000000000000A3', '00000000000000A4'],
                    reason='key_compromise'), check_mode=False, diff_mode=False)
    assert result['changed'] is True
    assert result['revoked'] == ['00000000000000A1']
    assert result['already_revoked'] == ['00000000000000A2', '00000000000000A3', '00000000000000A4']
    assert api.revocations() == [('00000000000000A1', 'KeyCompromise')]
    assert api.by_serial('00000000000000A1')['status'] == 'Revoked'
    # several serials: one listing, not one query per serial
    assert api.details('query') == [dict(name=None, certificate_type=None, status=None, serial_number=None, expires_after=None)]
    statuses = dict((c['serial_number'], (c['previous_status'], c['status'])) for c in result['certificates'])
    assert statuses == {'00000000000000A1': ('active', 'revoked'), '00000000000000A2': ('revoked', 'revoked'),
                        '00000000000000A3': ('expired', 'expired'), '00000000000000A4': ('blocked', 'blocked')}
    assert 'diff' not in result


def test_second_run_is_unchanged():
    api = fake_ksef(ITEMS)
    selection = params(serial_numbers=['00000000000000A1'])
    revoke_module.revoke_certificates(api, selection, check_mode=False, diff_mode=False)
    again = revoke_module.revoke_certificates(api, selection, check_mode=False, diff_mode=False)
    assert again['changed'] is False
    assert again['revoked'] == [] and again['already_revoked'] == ['00000000000000A1']
    assert len(api.revocations()) == 1


def test_single_serial_is_queried_exactly():
    api = fake_ksef(ITEMS)
    revoke_module.revoke_certificates(api, params(serial_numbers=['00000000000000a7']), check_mode=False, diff_mode=False)
    assert api.names()[0] == 'query'
    assert api.details('query')[0] == dict(name=None, certificate_type=None, status=None, serial_number='00000000000000A7',
                                           expires_after=None)
    assert api.revocations() == [('00000000000000A7', 'Unspecified')]


def test_unknown_serial_fails_naming_it_before_anything_is_revoked():
    api = fake_ksef(ITEMS)
    with pytest.raises(revoke_module.UnknownCertificateError) as caught:
        revoke_module.revoke_certificates(
            api, params(serial_numbers=['00000000000000A1', 'DEADBEEFDEADBEEF']), check_mode=False, diff_mode=False)
    assert 'DEADBEEFDEADBEEF' in str(caught.value)
    assert '00000000000000A1' not in str(caught.value)
    assert caught.value.fail_kwargs() == {'unknown_serial_numbers': ['DEADBEEFDEADBEEF']}
    assert api.revocations() == []


def test_check_mode_predicts_without_revoking_and_diff_shows_status_per_serial():
    api = fake_ksef(ITEMS)
    result = revoke_module.revoke_certificates(
        api, params(serial_numbers=['00000000000000A1', '00000000000000A2']), check_mode=True, diff_mode=True)
    assert result['changed'] is True
    assert result['revoked'] == ['00000000000000A1'] and result['already_revoked'] == ['00000000000000A2']
    assert api.revocations() == []
    assert api.by_serial('00000000000000A1')['status'] == 'Active'
    assert result['diff'] == {'before': {'00000000000000A1': 'active', '00000000000000A2': 'revoked'},
                              'after': {'00000000000000A1': 'revoked', '00000000000000A2': 'revoked'}}
    assert result['msg'].startswith('Would revoke 1 certificate(s)')


def test_race_25009_counts_as_already_revoked():
    api = fake_ksef(ITEMS, race_serials=['00000000000000A1'])
    result = revoke_module.revoke_certificates(
        api, params(serial_numbers=['00000000000000A1', '00000000000000A7']), check_mode=False, diff_mode=False)
    assert result['revoked'] == ['00000000000000A7']
    assert result['already_revoked'] == ['00000000000000A1']
    assert result['changed'] is True


def test_by_name_and_type_revokes_only_exact_active_matches():
    api = fake_ksef(ITEMS)
    result = revoke_module.revoke_certificates(
        api, params(name='erp', type='authentication', reason='superseded'), check_mode=False, diff_mode=True)
    assert result['revoked'] == ['00000000000000A1', '00000000000000A7']
    assert result['already_revoked'] == ['00000000000000A2', '00000000000000A3', '00000000000000A4']
    assert sorted(call[0] for call in api.revocations()) == ['00000000000000A1', '00000000000000A7']
    assert all(call[1] == 'Superseded' for call in api.revocations())
    assert api.by_serial('00000000000000A5')['status'] == 'Active'
    assert api.by_serial('00000000000000A6')['status'] == 'Active'
    assert api.names()[0] == 'query'
    assert api.details('query')[0] == dict(name='erp', certificate_type='Authentication', status=None, serial_number=None,
                                           expires_after=None)
    assert set(result['diff']['before']) == set(['00000000000000A1', '00000000000000A2', '00000000000000A3',
                                                 '00000000000000A4', '00000000000000A7'])


def test_by_name_with_nothing_active_is_unchanged_with_a_clear_message():
    api = fake_ksef(ITEMS)
    result = revoke_module.revoke_certificates(api, params(name='erp', type='offline'), check_mode=False, diff_mode=False)
    assert result['revoked'] == ['00000000000000A6']
    again = revoke_module.revoke_certificates(api, params(name='erp', type='offline'), check_mode=False, diff_mode=False)
    assert again['changed'] is False
    assert again['already_revoked'] == ['00000000000000A6']
    assert "no active certificate named 'erp' of type offline" in again['msg']


def test_by_name_matching_nothing_at_all_is_unchanged():
    api = fake_ksef(ITEMS)
    result = revoke_module.revoke_certificates(api, params(name='er', type='authentication'), check_mode=False, diff_mode=False)
    assert result['changed'] is False
    assert result['revoked'] == [] and result['already_revoked'] == [] and result['certificates'] == []
    assert result['msg'] == "No certificate named 'er' of type authentication exists; nothing to revoke"
    assert api.revocations() == []


def test_summaries_carry_no_unexpected_fields():
    api = fake_ksef(ITEMS)
    result = revoke_module.revoke_certificates(api, params(serial_numbers=['00000000000000A1']), check_mode=False, diff_mode=False)
    assert result['certificates'] == [{
        'serial_number': '00000000000000A1', 'name': 'erp', 'type': 'authentication', 'common_name': 'Firma Sp. z o.o.',
        'status': 'revoked', 'previous_status': 'active', 'valid_from': '2026-01-01T00:00:00+00:00',
        'valid_to': '2028-01-01T00:00:00+00:00',
    }]


@pytest.mark.parametrize('overrides, message', [
    (dict(), 'select the certificates to revoke'),
    (dict(serial_numbers=[]), 'serial_numbers is an empty list'),
    (dict(serial_numbers=['nothex!']), "invalid: 'nothex!'"),
    (dict(serial_numbers=['00000000000000A1'], name='erp', type='offline'), 'cannot be combined'),
    (dict(name='erp'), 'type is required with name'),
    (dict(type='offline'), 'name must be a non-empty certificate name'),
    (dict(name=' ', type='offline'), 'name must be a non-empty certificate name'),
])
def test_bad_selection_is_rejected_before_any_call(overrides, message):
    with pytest.raises(KsefInputError) as caught:
        params(**overrides)
    assert message in str(caught.value)


def test_serial_numbers_are_normalised():
    assert params(serial_numbers=['00000000000000a1', '00000000000000A1'])['serial_numbers'] == ['00000000000000A1']


def test_failure_after_some_revocations_names_what_was_revoked():
    api = fake_ksef(ITEMS, failing_serials=['00000000000000A7'])
    with pytest.raises(revoke_module.PartialRevocationError) as caught:
        revoke_module.revoke_certificates(
            api, params(serial_numbers=['00000000000000A1', '00000000000000A7']), check_mode=False, diff_mode=False)
    message = str(caught.value)
    assert message.startswith('revoking 00000000000000A7 failed: POST /certificates/{certificateSerialNumber}/revoke failed')
    assert message.endswith('revoked by this run before the failure: 00000000000000A1')
    extras = caught.value.fail_kwargs()
    assert extras['changed'] is True and extras['revoked'] == ['00000000000000A1']
    assert extras['http_status'] == 500 and extras['service_code'] == 'svc-1'


def test_failure_on_the_first_revocation_is_raised_unchanged():
    api = fake_ksef(ITEMS, failing_serials=['00000000000000A1'])
    with pytest.raises(KsefApiError) as caught:
        revoke_module.revoke_certificates(
            api, params(serial_numbers=['00000000000000A1', '00000000000000A7']), check_mode=False, diff_mode=False)
    assert not isinstance(caught.value, revoke_module.PartialRevocationError)
    assert api.revocations() == [('00000000000000A1', 'Unspecified')]


# --- main() through scripted HTTP exchanges -------------------------------------------------------

ACCESS_TOKEN = 'header.eyJleHAiOjQxMDI0NDQ4MDB9.signature'
CONNECTION = {'api_url': 'https://ksef.invalid/v2', 'access_token': ACCESS_TOKEN}
REVOKE_ROUTE = '/certificates/{certificateSerialNumber}/revoke'


def query_exchange(certificates, body):
    return Exchange('POST', '/certificates/query', json=body, token=ACCESS_TOKEN, params={'pageSize': 50, 'pageOffset': 0},
                    reply={'certificates': certificates, 'hasMore': False})


def revoke_exchange(serial, reason, status=204, reply=None):
    return Exchange('POST', 'https://ksef.invalid/v2/certificates/%s/revoke' % serial, json={'revocationReason': reason},
                    token=ACCESS_TOKEN, status=status, reply=reply)


ALREADY_REVOKED_REPLY = {'exception': {'serviceCode': 'svc', 'exceptionDetailList': [
    {'exceptionCode': 25009, 'exceptionDescription': 'Nie można unieważnić certyfikatu.', 'details': None}]}}

SELECTION = ['00000000000000A1', '00000000000000A2', '00000000000000A7']


def test_main_check_mode_queries_but_sends_no_revocation(run_module, monkeypatch):
    script = HttpScript([query_exchange(ITEMS, {})]).install(monkeypatch)
    result = run_module(revoke_module, dict(CONNECTION, serial_numbers=SELECTION), check_mode=True, diff=True)
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is True
    assert result['revoked'] == ['00000000000000A1', '00000000000000A7']
    assert result['already_revoked'] == ['00000000000000A2']
    assert result['diff']['after'] == {'00000000000000A1': 'revoked', '00000000000000A2': 'revoked',
                                       '00000000000000A7': 'revoked'}
    assert result['api_calls'] == 1


def test_main_revokes_and_treats_25009_as_already_revoked(run_module, monkeypatch):
    script = HttpScript([
        query_exchange(ITEMS, {}),
        revoke_exchange('00000000000000A1', 'KeyCompromise'),
        revoke_exchange('00000000000000A7', 'KeyCompromise', status=400, reply=ALREADY_REVOKED_REPLY),
    ]).install(monkeypatch)
    result = run_module(revoke_module, dict(CONNECTION, serial_numbers=SELECTION, reason='key_compromise'))
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is True
    assert result['revoked'] == ['00000000000000A1']
    assert result['already_revoked'] == ['00000000000000A2', '00000000000000A7']
    assert result['api_calls'] == 3
    assert 'diff' not in result


def test_main_by_name_and_type_revokes_only_exact_matches(run_module, monkeypatch):
    matches = [i for i in ITEMS if 'erp' in i['name'] and i['type'] == 'Authentication']
    script = HttpScript([
        query_exchange(matches, {'name': 'erp', 'type': 'Authentication'}),
        revoke_exchange('00000000000000A1', 'Unspecified'),
        revoke_exchange('00000000000000A7', 'Unspecified'),
    ]).install(monkeypatch)
    result = run_module(revoke_module, dict(CONNECTION, name='erp', type='authentication'))
    script.verify()
    assert result.exit_code == 0, result
    assert result['revoked'] == ['00000000000000A1', '00000000000000A7']
    assert '00000000000000A5' not in [c['serial_number'] for c in result['certificates']]


def test_main_unknown_serial_fails_before_any_revocation(run_module, monkeypatch):
    script = HttpScript([query_exchange(ITEMS, {})]).install(monkeypatch)
    result = run_module(revoke_module, dict(CONNECTION, serial_numbers=['00000000000000A1', 'ABCDEF0123456789']))
    script.verify()
    assert result.exit_code == 1
    assert 'ABCDEF0123456789' in result['msg'] and 'nothing was revoked' in result['msg']
    assert result['unknown_serial_numbers'] == ['ABCDEF0123456789']
    assert result['api_calls'] == 1


@pytest.mark.parametrize('args, message', [
    (dict(serial_numbers=[]), 'serial_numbers is an empty list'),
    (dict(serial_numbers=['00000000000000A1'], name='erp', type='offline'), 'mutually exclusive'),
    (dict(name='erp'), 'parameters are required together: name, type'),
    (dict(), 'one of the following is required: serial_numbers, name'),
])
def test_main_rejects_bad_selection_without_any_request(run_module, monkeypatch, args, message):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(revoke_module, dict(CONNECTION, **args))
    script.verify()
    assert result.exit_code == 1
    assert message in result['msg']
