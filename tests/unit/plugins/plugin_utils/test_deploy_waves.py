# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Several renewal waves of key-on-host certificates in one run of the ksef_deploy role (plugin_utils/_deploy_waves.py):
which held renewals the next wave sends, and what each host's account says after all the waves."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy_account, _deploy_waves
from ansible_collections.ksef.certificates.tests.unit.plugins.plugin_utils.test_deploy_account import FILTERS, NOW
from ansible_collections.ksef.certificates.tests.unit.plugins.plugin_utils.test_deploy_proof import PEM, listed, prepared

OLD_A, OLD_B = '00000000000000A1', '00000000000000B1'
NEW_A, NEW_B = '00000000000000A2', '00000000000000B2'
HOSTS = {'a': prepared('a', renewal_due=True, serial_number=OLD_A), 'b': prepared('b', renewal_due=True, serial_number=OLD_B)}
INFO = {'certificates': [listed(OLD_A, '2026-01-01T00:00:00+00:00'),
                         listed(OLD_B, '2026-01-01T00:00:00+00:00', name='b-authentication')]}
HOLD = {'state': 'blocked', 'reason': 'certificate_quota', 'outage_at': '2027-01-01T00:00:00+00:00', 'retry_at': None,
        'message': 'cannot be renewed now: the active-certificate limit (KSeF 25010) leaves no slot for it'}


def issued(host, serial, old):
    return {'name': '%s-authentication' % host, 'type': 'authentication', 'action': 'enrolled', 'certificate_pem': PEM,
            'certificate': {'serial_number': serial, 'valid_to': '2028-01-01T00:00:00+00:00'},
            'superseded': [{'serial_number': old, 'valid_to': '2027-01-01T00:00:00+00:00', 'revoked': False}]}


def held(host, hold=None):
    hold = hold or HOLD
    return {'name': '%s-authentication' % host, 'type': 'authentication', 'action': hold['state'], 'reason': hold['reason'],
            'certificate': None, 'superseded': [], 'hold': hold}


def proven(host, serial):
    return {'proofs': [{'id': '%s|%s-authentication|authentication' % (host, host), 'proven': True, 'method': 'login',
                        'serial_number': serial, 'reason': None, 'valid_from': None}]}


# The first wave: one free slot, so ksef_certificate enrolls a (its certificate expires sooner) and holds b.
BATCH = _deploy_account.batch(HOSTS, INFO, NOW)
FIRST = {'certificates': [issued('a', NEW_A, OLD_A), held('b')]}
FIRST_PROOFS = {'finished': proven('a', NEW_A), 'revoked': {'revoked': [OLD_A], 'already_revoked': []}}
CSRS = [{'csr': 'CSR-%s' % host, 'item': HOSTS[host]['inspections'][0]['item']} for host in ('a', 'b')]


def test_the_renewals_held_for_a_slot_go_in_the_next_wave_once_a_revocation_gave_a_slot_back():
    wave = FILTERS['ksef_deploy_next_wave'](BATCH, FIRST, FIRST_PROOFS['revoked'], 2, 20)
    assert (wave['number'], wave['ids'], wave['send'], wave['left'], wave['enroll']) == (
        2, ['b-authentication|authentication'], True, [], 1)
    assert wave['hosts']['a']['plan'] == [] and [entry['id'] for entry in wave['hosts']['b']['plan']] == [
        'b-authentication|authentication']
    # The wave sends b's CSR made before the first wave (its .next key), and nothing else.
    assert [request['csr_content'] for request in FILTERS['ksef_deploy_requests'](CSRS, wave['ids'])] == ['CSR-b']
    assert len(FILTERS['ksef_deploy_requests'](CSRS)) == 2
    # The wave installs and proves b only (a was installed and proven in the first wave).
    second = {'certificates': [issued('b', NEW_B, OLD_B)]}
    assert [item['id'] for item in FILTERS['ksef_deploy_installs'](wave['hosts']['b']['plan'], second)] == [
        'b-authentication|authentication']
    assert [request['id'] for request in FILTERS['ksef_deploy_proof_requests'](wave, second, ['a', 'b'])] == [
        'b|b-authentication|authentication']
    assert FILTERS['ksef_deploy_revocations'](wave, second, proven('b', NEW_B), ['a', 'b']) == [OLD_B]

    later = [{'ids': wave['ids'], 'enrolled': second,
              'proofs': {'finished': proven('b', NEW_B), 'revoked': {'revoked': [OLD_B], 'already_revoked': []}}}]
    waves = {'later': later, 'left': [], 'max_waves': 20}
    for host, new, old in (('a', NEW_A, OLD_A), ('b', NEW_B, OLD_B)):
        line = FILTERS['ksef_deploy_account'](HOSTS[host], BATCH['hosts'][host], FIRST, {}, False, host, FIRST_PROOFS, waves)[0]
        assert (line['action'], line['serial_number'], line['changed'], line['failed']) == ('renewed', new, True, False)
        assert line['superseded'] == [{'serial_number': old, 'valid_to': '2027-01-01T00:00:00+00:00', 'revoked': True}]
        assert line['proof']['proven'] is True and line['proof']['serial_number'] == new
    # The wave after it: nothing is held any more.
    merged = FILTERS['ksef_deploy_waves_merged'](FIRST, later)
    assert [cert['action'] for cert in merged['certificates']] == ['enrolled', 'enrolled']
    assert FILTERS['ksef_deploy_next_wave'](BATCH, merged, later[0]['proofs']['revoked'], 3, 20)['send'] is False


def test_no_wave_follows_when_no_revocation_gave_a_slot_back():
    for revoked in ({'revoked': [], 'already_revoked': [OLD_A]}, {'skipped': True}, {}, None):
        wave = FILTERS['ksef_deploy_next_wave'](BATCH, FIRST, revoked, 2, 20)
        assert (wave['ids'], wave['send'], wave['left'], wave['enroll']) == ([], False, [], 0)


def test_what_the_call_budget_defers_or_the_enrollment_quota_blocks_is_no_next_wave():
    budget = dict(HOLD, state='deferred', reason='call_budget', retry_at='2026-06-01T13:00:00+00:00')
    quota = dict(HOLD, reason='enrollment_quota')
    for hold in (budget, quota):
        enrolled = {'certificates': [issued('a', NEW_A, OLD_A), held('b', hold)]}
        assert FILTERS['ksef_deploy_next_wave'](BATCH, enrolled, FIRST_PROOFS['revoked'], 2, 20)['ids'] == []


def test_the_bound_leaves_the_held_renewals_to_the_next_run_as_deferred():
    wave = FILTERS['ksef_deploy_next_wave'](BATCH, FIRST, FIRST_PROOFS['revoked'], 2, 1)
    assert (wave['send'], wave['left']) == (False, ['b-authentication|authentication'])
    waves = {'later': [], 'left': wave['left'], 'max_waves': 1}
    line = FILTERS['ksef_deploy_account'](HOSTS['b'], BATCH['hosts']['b'], FIRST, {}, False, 'b', FIRST_PROOFS, waves)[0]
    assert (line['action'], line['changed'], line['failed'], line['serial_number']) == ('deferred', False, False, OLD_B)
    assert line['outage_at'] == HOLD['outage_at'] and line['retry_at'] == ''
    assert line['reason'].endswith('; waits for the next run: this run sent the 1 waves ksef_deploy_max_waves allows, and '
                                   'the certificate in use works until %s' % HOLD['outage_at'])
    assert 'b: b-authentication (authentication, key on host): deferred, serial %s stays in use' % OLD_B in line['message']
    # a is not held: the bound changes nothing there.
    line = FILTERS['ksef_deploy_account'](HOSTS['a'], BATCH['hosts']['a'], FIRST, {}, False, 'a', FIRST_PROOFS, waves)[0]
    assert line['action'] == 'renewed'


def test_a_renewal_a_later_wave_did_not_get_back_fails_its_host_with_that_calls_message():
    later = [{'ids': ['b-authentication|authentication'], 'proofs': {},
              'enrolled': {'msg': 'POST /certificates/enrollments failed: HTTP 503', 'certificates': []}}]
    line = FILTERS['ksef_deploy_account'](HOSTS['b'], BATCH['hosts']['b'], FIRST, {}, False, 'b', FIRST_PROOFS,
                                          {'later': later})[0]
    assert (line['action'], line['failed']) == ('failed', True)
    assert 'HTTP 503; rerun to resume, the key /k/b-authentication.key.next is kept' in line['failure']
    line = FILTERS['ksef_deploy_account'](HOSTS['a'], BATCH['hosts']['a'], FIRST, {}, False, 'a', FIRST_PROOFS,
                                          {'later': later})[0]
    assert (line['action'], line['failed']) == ('renewed', False)


def test_a_renewal_held_again_in_a_later_wave_keeps_that_waves_hold():
    again = dict(HOLD, state='deferred', reason='call_budget', retry_at='2026-06-01T13:00:00+00:00',
                 message="waits for a later run: the hour's call budget of KSeF's rate limits is spent")
    later = [{'ids': ['b-authentication|authentication'], 'proofs': {}, 'enrolled': {'certificates': [held('b', again)]}}]
    line = FILTERS['ksef_deploy_account'](HOSTS['b'], BATCH['hosts']['b'], FIRST, {}, False, 'b', FIRST_PROOFS,
                                          {'later': later})[0]
    assert (line['action'], line['retry_at'], line['failed']) == ('deferred', again['retry_at'], False)
    assert line['reason'].endswith(again['message'])


def test_the_diffs_of_the_waves_are_joined():
    def diff(host, old, new):
        entry = {'name': '%s-authentication' % host, 'type': 'authentication'}
        return {'before': {'certificates': [dict(entry, serial_number=old)]}, 'after': {'certificates': [dict(entry, serial_number=new)]}}
    first = dict(FIRST, diff=diff('a', OLD_A, NEW_A))
    merged = _deploy_waves.merged(first, [{'ids': ['b-authentication|authentication'], 'enrolled': {
        'certificates': [issued('b', NEW_B, OLD_B)], 'diff': diff('b', OLD_B, NEW_B)}}])
    assert [entry['serial_number'] for entry in merged['diff']['after']['certificates']] == [NEW_A, NEW_B]
    assert _deploy_waves.merged(first, []) is first


def test_the_bound_must_be_at_least_one():
    with pytest.raises(AnsibleFilterError, match='ksef_deploy_max_waves must be 1 or more'):
        FILTERS['ksef_deploy_next_wave'](BATCH, FIRST, FIRST_PROOFS['revoked'], 2, 0)


# --- check mode: the waves predicted from the limits ---------------------------------------------------------

def _active(serial, name, cert_type, valid_to):
    return {'serial_number': serial, 'name': name, 'type': cert_type, 'valid_from': '2026-01-01T00:00:00+00:00',
            'request_date': '2026-01-01T00:00:00+00:00', 'valid_to': valid_to}


# a and b Authentication, c and d Offline, due a day apart; X: a certificate no declaration uses, ending before d's.
FLEET = {'a': prepared('a', renewal_due=True, serial_number=OLD_A), 'b': prepared('b', renewal_due=True, serial_number=OLD_B),
         'c': prepared('c', [{'type': 'offline'}], renewal_due=True, serial_number='00000000000000C1'),
         'd': prepared('d', [{'type': 'offline'}], renewal_due=True, serial_number='00000000000000D1')}
FLEET_ACTIVE = [_active(OLD_A, 'a-authentication', 'authentication', '2026-06-09T00:00:00+00:00'),
                _active(OLD_B, 'b-authentication', 'authentication', '2026-06-10T00:00:00+00:00'),
                _active('00000000000000C1', 'c-offline', 'offline', '2026-06-11T00:00:00+00:00'),
                _active('00000000000000D1', 'd-offline', 'offline', '2026-06-12T00:00:00+00:00'),
                _active('00000000000000F1', 'x-authentication', 'authentication', '2026-06-10T12:00:00+00:00')]
FLEET_BATCH = _deploy_account.batch(FLEET, {'certificates': FLEET_ACTIVE}, NOW)


def limits(free, enrollments=300):
    counts = {'certificate': {'remaining': free, 'limit': 10}, 'enrollment': {'remaining': enrollments, 'limit': 300}}
    return {'certificates': FLEET_ACTIVE, 'limits': counts}


def waves_of(predicted):
    return dict((item_id.split('-')[0], entry.get('wave') or (entry['state'] + (' bound' if entry.get('bound') else '')))
                for item_id, entry in predicted.items())


def test_check_mode_predicts_a_wave_per_slot_given_back_soonest_expiry_first():
    predicted = FILTERS['ksef_deploy_waves_predicted'](FLEET_BATCH, limits(1), 20, NOW)
    # c (Offline) keeps the slot its wave took: d waits; X ends before d's certificate, so a later run renews d in time.
    assert waves_of(predicted) == {'a': 1, 'b': 2, 'c': 3, 'd': 'deferred'}
    assert predicted['d-offline|offline']['retry_at'] == '2026-06-10T12:00:00+00:00'
    assert predicted['d-offline|offline']['outage_at'] == '2026-06-12T00:00:00+00:00'
    assert waves_of(FILTERS['ksef_deploy_waves_predicted'](FLEET_BATCH, limits(2), 20, NOW)) == {'a': 1, 'b': 1, 'c': 2, 'd': 2}
    line = FILTERS['ksef_deploy_account'](FLEET['d'], FLEET_BATCH['hosts']['d'], {}, {}, True, 'd', {},
                                          {'predicted': predicted, 'max_waves': 20})[0]
    assert (line['action'], line['changed'], line['superseded'], line['serial_number']) == ('deferred', False, [], '00000000000000D1')
    assert 'waits for a free slot: the active-certificate limit leaves none after this run' in line['reason']
    line = FILTERS['ksef_deploy_account'](FLEET['b'], FLEET_BATCH['hosts']['b'], {}, {}, True, 'b', {},
                                          {'predicted': predicted, 'max_waves': 20})[0]
    assert (line['action'], line['changed']) == ('renewed', True)
    assert line['superseded'] == [{'serial_number': OLD_B, 'valid_to': '2026-06-10T00:00:00+00:00', 'revoked': True}]


def test_check_mode_predicts_the_bound_and_what_no_slot_can_take():
    predicted = FILTERS['ksef_deploy_waves_predicted'](FLEET_BATCH, limits(1), 2, NOW)
    assert waves_of(predicted) == {'a': 1, 'b': 2, 'c': 'deferred bound', 'd': 'deferred bound'}
    line = FILTERS['ksef_deploy_account'](FLEET['c'], FLEET_BATCH['hosts']['c'], {}, {}, True, 'c', {},
                                          {'predicted': predicted, 'max_waves': 2})[0]
    assert line['action'] == 'deferred' and 'this run sent the 2 waves ksef_deploy_max_waves allows' in line['reason']
    # No slot free: nothing is sent; what ends before X's slot comes back is blocked.
    assert waves_of(FILTERS['ksef_deploy_waves_predicted'](FLEET_BATCH, limits(0), 20, NOW)) == {
        'a': 'blocked', 'b': 'blocked', 'c': 'deferred', 'd': 'deferred'}
    # No enrollment request left.
    predicted = FILTERS['ksef_deploy_waves_predicted'](FLEET_BATCH, limits(4, enrollments=1), 20, NOW)
    assert waves_of(predicted) == {'a': 1, 'b': 'blocked', 'c': 'blocked', 'd': 'blocked'}
    assert predicted['b-authentication|authentication']['reason'] == 'enrollment_quota'


# The same fleet with c's Offline certificate ending first (issue 18): ksef_certificate counts the slots the role
# gives back (caller_revokes_superseded), so c never takes the last free slot while a or b is due.
OFFLINE_FIRST_ACTIVE = [dict(cert, valid_to='2026-06-08T00:00:00+00:00') if cert['name'] == 'c-offline' else cert
                        for cert in FLEET_ACTIVE]
OFFLINE_FIRST_BATCH = _deploy_account.batch(FLEET, {'certificates': OFFLINE_FIRST_ACTIVE}, NOW)


def test_check_mode_predicts_the_authentication_renewals_before_a_sooner_offline_one():
    info = dict(limits(1), certificates=OFFLINE_FIRST_ACTIVE)
    predicted = FILTERS['ksef_deploy_waves_predicted'](OFFLINE_FIRST_BATCH, info, 20, NOW)
    # c waits for the slot a and b cycle through; then it keeps it: d waits until c's old certificate ends
    assert waves_of(predicted) == {'a': 1, 'b': 2, 'c': 3, 'd': 'deferred'}
    assert predicted['d-offline|offline']['retry_at'] == '2026-06-08T00:00:00+00:00'
    # with the bound of one wave, c waits for the next run, which continues the waves
    bounded = FILTERS['ksef_deploy_waves_predicted'](OFFLINE_FIRST_BATCH, info, 1, NOW)
    assert waves_of(bounded) == {'a': 1, 'b': 'blocked bound', 'c': 'blocked bound', 'd': 'deferred bound'}
    line = FILTERS['ksef_deploy_account'](FLEET['c'], OFFLINE_FIRST_BATCH['hosts']['c'], {}, {}, True, 'c', {},
                                          {'predicted': bounded, 'max_waves': 1})[0]
    assert line['action'] == 'deferred' and 'this run sent the 1 waves ksef_deploy_max_waves allows' in line['reason']
    # two free slots: c takes the one a keeper may, a the other; b and then d cycle through a's
    assert waves_of(FILTERS['ksef_deploy_waves_predicted'](OFFLINE_FIRST_BATCH, dict(info, limits=limits(2)['limits']), 20, NOW)) == {
        'a': 1, 'b': 2, 'c': 1, 'd': 3}


def test_without_the_limits_check_mode_predicts_every_renewal():
    assert FILTERS['ksef_deploy_waves_predicted'](FLEET_BATCH, {'certificates': FLEET_ACTIVE}, 20, NOW) == {}
    line = FILTERS['ksef_deploy_account'](FLEET['d'], FLEET_BATCH['hosts']['d'], {}, {}, True, 'd', {}, {'predicted': {}})[0]
    assert line['action'] == 'renewed'
