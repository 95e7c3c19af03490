# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ksef_deploy role's proven rotation of key-on-host certificates (plugin_utils/_deploy_proof.py), as tables:
which successors are proven, what each host signs, which predecessors are revoked, and what the account says."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy_account, _deploy_proof
from ansible_collections.ksef.certificates.tests.unit.plugins.plugin_utils.test_deploy_account import (
    FILTERS,
    HEALTHY,
    NEW,
    NOW,
    OLD,
    SETTINGS,
)

PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
OLDER = '00000000000000AA'


def listed(serial, requested, name='a-authentication', cert_type='authentication'):
    return {'serial_number': serial, 'name': name, 'type': cert_type, 'valid_from': requested,
            'request_date': requested, 'valid_to': '2027-01-01T00:00:00+00:00'}


def prepared(host, certificates=None, **found):
    """What operation=prepare reports for `host`, with the role's defaults (revoke_superseded null: by type)."""
    settings = dict(SETTINGS, ksef_deploy_revoke_superseded=None,
                    ksef_deploy_certificates=certificates or [{'type': 'authentication'}])
    items = FILTERS['ksef_deploy_declarations'](settings, host)
    inspections = [dict(HEALTHY, item=item, **found) for item in items if item['key_location'] == 'host']
    return {'declarations': items, 'inspections': inspections}


INFO = {'certificates': [listed(OLD, '2026-01-01T00:00:00+00:00'), listed(NEW, '2026-05-01T00:00:00+00:00')]}


def test_predecessors_are_the_older_active_certificates_of_the_name_and_type():
    item = {'name': 'a-authentication', 'type': 'authentication'}
    active = [listed(OLD, '2026-01-01T00:00:00+00:00'), listed(NEW, '2026-05-01T00:00:00+00:00'),
              listed('00000000000000EF', '2026-05-02T00:00:00+00:00'),  # younger: a stopped run's enrollment, never one
              listed(OLDER, '2025-01-01T00:00:00+00:00', name='other-authentication'),
              listed('0000000000000011', '2025-01-01T00:00:00+00:00', cert_type='offline')]
    assert _deploy_proof.predecessors(item, NEW, active) == [{'serial_number': OLD, 'valid_to': '2027-01-01T00:00:00+00:00'}]
    assert _deploy_proof.predecessors(item, OLD, active) == []
    assert _deploy_proof.predecessors(item, 'FFFFFFFFFFFFFFFF', active) == []  # the deployed one is not listed


def test_a_deployed_successor_next_to_an_active_predecessor_is_proven_then_the_predecessor_revoked():
    host = prepared('a', serial_number=NEW, certificate_pem=PEM)
    batch = _deploy_account.batch({'a': host}, INFO, NOW)
    entry = batch['hosts']['a']['plan'][0]
    assert (batch['prove'], entry['action']) == (1, 'prove')
    assert entry['reason'] == ('superseded %s still active: the deployed certificate %s is proven before it is revoked'
                               % (OLD, NEW))
    assert FILTERS['ksef_deploy_proof_requests'](batch, {}, ['a']) == [
        {'id': 'a|a-authentication|authentication', 'type': 'authentication', 'certificate': PEM}]
    # A host that left the play (it failed earlier) proves nothing.
    assert FILTERS['ksef_deploy_proof_requests'](batch, {}, []) == []
    proof = {'id': 'a|a-authentication|authentication', 'data': 'ZGF0YQ==', 'scheme': 'ecdsa_sha256',
             'serial_number': NEW, 'method': 'login', 'proven': None}
    assert FILTERS['ksef_deploy_host_signing']({'proofs': [proof]}, batch, {}, 'a') == [
        {'id': proof['id'], 'key_path': '/k/a-authentication.key', 'data': 'ZGF0YQ==', 'scheme': 'ecdsa_sha256'}]
    assert FILTERS['ksef_deploy_host_signing']({'proofs': [proof]}, batch, {}, 'b') == []
    signed = FILTERS['ksef_deploy_signed_proofs']({'proofs': [proof]}, [{'item': {'id': proof['id']}, 'signature': 'c2ln'}])
    assert signed == [dict(proof, signature='c2ln')]

    finished = {'proofs': [dict(proof, proven=True, reason=None, valid_from=None)]}
    assert FILTERS['ksef_deploy_revocations'](batch, {}, finished, ['a']) == [OLD]
    line = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], {}, {}, False, 'a',
                                          {'finished': finished, 'revoked': {'revoked': [OLD], 'already_revoked': []}})[0]
    assert (line['action'], line['changed']) == ('rotated', True)
    assert line['superseded'] == [{'serial_number': OLD, 'valid_to': '2027-01-01T00:00:00+00:00', 'revoked': True}]
    assert line['proof']['proven'] is True
    assert '; proven by a login; superseded %s revoked' % OLD in line['message']


def test_an_unproven_successor_keeps_its_predecessor_and_says_why():
    host = prepared('a', serial_number=NEW, certificate_pem=PEM)
    batch = _deploy_account.batch({'a': host}, INFO, NOW)
    why = 'certificate %s is valid only from 2026-06-03T12:00:00+00:00' % NEW
    finished = {'proofs': [{'id': 'a|a-authentication|authentication', 'serial_number': NEW, 'method': 'login',
                            'proven': False, 'reason': why, 'valid_from': '2026-06-03T12:00:00+00:00'}]}
    assert FILTERS['ksef_deploy_revocations'](batch, {}, finished, ['a']) == []
    line = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], {}, {}, False, 'a', {'finished': finished})[0]
    assert (line['action'], line['changed']) == ('unchanged', False)
    assert line['superseded'] == [{'serial_number': OLD, 'valid_to': '2027-01-01T00:00:00+00:00', 'revoked': False}]
    assert line['proof']['valid_from'] == '2026-06-03T12:00:00+00:00'
    assert line['message'].endswith('; not proven: %s; superseded %s left active; /p/a-authentication.crt' % (why, OLD))


def test_a_failed_proof_step_is_every_waiting_hosts_reason():
    host = prepared('a', serial_number=NEW, certificate_pem=PEM)
    batch = _deploy_account.batch({'a': host}, INFO, NOW)
    line = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], {}, {}, False, 'a',
                                          {'prepared': {'msg': 'POST /auth/challenge failed: HTTP 503'}})[0]
    assert line['superseded'][0]['revoked'] is False
    assert 'not proven: POST /auth/challenge failed: HTTP 503' in line['message']


def test_check_mode_predicts_the_proof_and_the_revocation():
    host = prepared('a', serial_number=NEW, certificate_pem=PEM)
    batch = _deploy_account.batch({'a': host}, INFO, NOW)
    line = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], {}, {}, True, 'a')[0]
    assert (line['action'], line['changed']) == ('rotated', True)
    assert line['message'].startswith('a: a-authentication (authentication, key on host): would prove certificate %s '
                                      'through the host and revoke serial %s' % (NEW, OLD))


def test_an_offline_predecessor_is_not_retried_it_stays_by_design():
    offline = [{'type': 'offline'}]
    host = prepared('a', offline, serial_number=NEW, certificate_pem=PEM)
    info = {'certificates': [listed(OLD, '2026-01-01T00:00:00+00:00', 'a-offline', 'offline'),
                             listed(NEW, '2026-05-01T00:00:00+00:00', 'a-offline', 'offline')]}
    batch = _deploy_account.batch({'a': host}, info, NOW)
    assert (batch['prove'], batch['hosts']['a']['plan'][0]['action']) == (0, 'keep')


def test_a_renewal_proves_the_issued_certificate_and_revokes_only_what_its_type_revokes():
    certificates = [{'type': 'authentication'}, {'type': 'offline'}]
    host = prepared('a', certificates, renewal_due=True)
    batch = _deploy_account.batch({'a': host}, {'certificates': [listed(OLD, '2026-01-01T00:00:00+00:00')]}, NOW)
    assert batch['enroll'] == 2
    enrolled = {'certificates': [
        {'name': 'a-authentication', 'type': 'authentication', 'action': 'enrolled', 'certificate_pem': PEM,
         'certificate': {'serial_number': NEW, 'valid_to': '2028-01-01T00:00:00+00:00'},
         'superseded': [{'serial_number': OLD, 'valid_to': '2026-12-01T00:00:00+00:00', 'revoked': False}]},
        {'name': 'a-offline', 'type': 'offline', 'action': 'enrolled', 'certificate_pem': PEM,
         'certificate': {'serial_number': '00000000000000EE', 'valid_to': '2028-01-01T00:00:00+00:00'},
         'superseded': [{'serial_number': OLDER, 'valid_to': '2026-12-01T00:00:00+00:00', 'revoked': False}]}]}
    requests = FILTERS['ksef_deploy_proof_requests'](batch, enrolled, ['a'])
    assert [(request['id'], request['type']) for request in requests] == [
        ('a|a-authentication|authentication', 'authentication'), ('a|a-offline|offline', 'offline')]
    finished = {'proofs': [{'id': request['id'], 'proven': True, 'method': 'login' if request['type'] == 'authentication'
                            else 'qr_code_ii', 'serial_number': 'x', 'reason': None, 'valid_from': None}
                           for request in requests]}
    # Both proven; the Offline predecessor stays active by type (QR codes II in circulation are checked against it).
    assert FILTERS['ksef_deploy_revocations'](batch, enrolled, finished, ['a']) == [OLD]
    lines = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], enrolled, {}, False, 'a',
                                           {'finished': finished, 'revoked': {'revoked': [OLD]}})
    assert [(line['action'], [old['revoked'] for old in line['superseded']]) for line in lines] == [
        ('renewed', [True]), ('renewed', [False])]
    assert 'proven by a QR code II; superseded %s left active' % OLDER in lines[1]['message']


def test_a_successor_valid_only_later_is_not_installed_nor_proven_and_the_account_says_when():
    host = prepared('a', renewal_due=True)
    batch = _deploy_account.batch({'a': host}, {'certificates': [listed(OLD, '2026-01-01T00:00:00+00:00')]}, NOW)
    why = 'certificate %s is valid only from 2026-06-03T12:00:00+00:00' % NEW
    enrolled = {'certificates': [
        {'name': 'a-authentication', 'type': 'authentication', 'action': 'pending', 'reason': 'not_valid_yet',
         'changed': True, 'certificate_pem': PEM, 'certificate': {'serial_number': NEW, 'valid_to': '2028-01-01T00:00:00+00:00'},
         'superseded': [{'serial_number': OLD, 'valid_to': '2026-12-01T00:00:00+00:00', 'revoked': False}],
         'proof': {'serial_number': NEW, 'method': 'login', 'proven': False, 'reason': why,
                   'valid_from': '2026-06-03T12:00:00+00:00'}}]}
    assert [item['installable'] for item in FILTERS['ksef_deploy_installs'](batch['hosts']['a']['plan'], enrolled)] == [False]
    assert FILTERS['ksef_deploy_proof_requests'](batch, enrolled, ['a']) == []
    line = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], enrolled, {}, False, 'a', {})[0]
    assert (line['action'], line['changed'], line['failed']) == ('pending', True, False)
    assert line['superseded'] == [{'serial_number': OLD, 'valid_to': '2026-12-01T00:00:00+00:00', 'revoked': False}]
    assert line['reason'].startswith(why + '; the first run after that installs it, proves it and revokes %s' % OLD)
    assert '; not proven: %s; superseded %s left active' % (why, OLD) in line['message']


def test_a_certificate_issued_earlier_for_the_hosts_key_supersedes_the_deployed_one():
    """The run after a successor that was not valid yet: ksef_certificate returns it (action none, superseding
    nothing in its eyes); the host installs it, proves it and revokes the deployed one in the same run."""
    host = prepared('a', renewal_due=True)
    info = {'certificates': [listed(OLD, '2026-01-01T00:00:00+00:00'), listed(NEW, '2026-05-01T00:00:00+00:00')]}
    batch = _deploy_account.batch({'a': host}, info, NOW)
    enrolled = {'certificates': [
        {'name': 'a-authentication', 'type': 'authentication', 'action': 'none', 'certificate_pem': PEM, 'superseded': [],
         'certificate': {'serial_number': NEW, 'valid_to': '2028-01-01T00:00:00+00:00'}}]}
    assert FILTERS['ksef_deploy_proof_requests'](batch, enrolled, ['a']) == [
        {'id': 'a|a-authentication|authentication', 'type': 'authentication', 'certificate': PEM}]
    finished = {'proofs': [{'id': 'a|a-authentication|authentication', 'proven': True, 'method': 'login',
                            'serial_number': NEW, 'reason': None, 'valid_from': None}]}
    assert FILTERS['ksef_deploy_revocations'](batch, enrolled, finished, ['a']) == [OLD]
    line = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], enrolled, {}, False, 'a',
                                          {'finished': finished, 'revoked': {'revoked': [OLD]}})[0]
    assert line['action'] == 'installed' and line['serial_number'] == NEW
    assert line['superseded'] == [{'serial_number': OLD, 'valid_to': '2027-01-01T00:00:00+00:00', 'revoked': True}]


def test_a_renewal_the_wave_planner_holds_waits_for_a_later_run_without_failing_its_host():
    host = prepared('a', renewal_due=True)
    batch = _deploy_account.batch({'a': host}, {'certificates': [listed(OLD, '2026-01-01T00:00:00+00:00')]}, NOW)
    # The shape ksef_certificate returns for a held renewal (_engine/result.hold_summary).
    hold = {'state': 'blocked', 'reason': 'no_free_slot', 'outage_at': '2027-01-01T00:00:00+00:00', 'retry_at': None,
            'message': 'no active-certificate slot is left for it before it ends'}
    enrolled = {'certificates': [{'name': 'a-authentication', 'type': 'authentication', 'action': 'blocked',
                                  'reason': 'no_free_slot', 'certificate': None, 'superseded': [], 'hold': hold}]}
    assert FILTERS['ksef_deploy_proof_requests'](batch, enrolled, ['a']) == []
    line = FILTERS['ksef_deploy_account'](host, batch['hosts']['a'], enrolled, {}, False, 'a', {})[0]
    assert (line['action'], line['failed'], line['changed']) == ('blocked', False, False)
    assert line['reason'].endswith('; ' + hold['message']) and line['outage_at'] == hold['outage_at']
    assert line['superseded'] == [] and line['proof'] is None
