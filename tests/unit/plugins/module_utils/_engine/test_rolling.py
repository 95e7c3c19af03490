# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rolling renewal through the engine, against the fake KSeF that counts its limits like KSeF does."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.rolling import slots_freed


def fleet(tmp_path, auth=0, offline=0, extra=()):
    items = [dict(name='auth-%03d' % n, type='authentication') for n in range(auth)]
    items += [dict(name='offl-%03d' % n, type='offline') for n in range(offline)]
    items += [dict(name=name, type=cert_type) for name, cert_type in extra]
    for item in items:
        item.update(private_key_path=str(tmp_path / (item['name'] + '.key')),
                    certificate_path=str(tmp_path / (item['name'] + '.pem')))
    return dict(certificates=items)


def make_due(ksef, clock, days=lambda index: 10 + index % 5, names=None):
    """Move the active certificates (of `names`, or all) into the renewal window; returns their serials."""
    due = []
    for index, entry in enumerate(sorted(ksef.certificates, key=lambda c: c['name'])):
        if entry['status'] == 'Active' and (names is None or entry['name'] in names):
            entry['valid_to'] = clock.now() + datetime.timedelta(days=days(index))
            due.append(entry['serial'])
    return due


def returned(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S+00:00')


def status_of(ksef, serials):
    return sorted(set(ksef.by_serial(serial)['status'] for serial in serials))


def test_a_fleet_over_half_the_limit_renews_in_waves_in_one_run(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=9)
    run(args)
    old = make_due(ksef, clock)
    ksef.quota(max_certificates=12)

    predicted = run(args, check_mode=True)
    assert predicted['quota']['waves'] == [
        ['auth-000/authentication (certificates[0])', 'auth-005/authentication (certificates[5])',
         'auth-001/authentication (certificates[1])'],
        ['auth-006/authentication (certificates[6])', 'auth-002/authentication (certificates[2])',
         'auth-007/authentication (certificates[7])'],
        ['auth-003/authentication (certificates[3])', 'auth-008/authentication (certificates[8])',
         'auth-004/authentication (certificates[4])']]
    assert predicted['quota']['certificates_left'] == 3 and predicted['quota']['blocked'] == []
    assert predicted['quota']['forecast']['peak_active'] == 12
    assert [entry['action'] for entry in predicted['certificates']] == ['renewed'] * 9
    assert 'enroll' not in ksef.names()

    result = run(args)
    assert [entry['action'] for entry in result['certificates']] == ['renewed'] * 9
    assert len(result['quota']['waves_sent']) == 3
    assert status_of(ksef, old) == ['Revoked']
    assert len(ksef.active()) == 9 and ksef.peak_active == 12
    # each wave's revocations come before the next wave's enrollments
    writes = [name for name in ksef.names() if name in ('enroll', 'revoke')]
    assert writes == ['enroll'] * 3 + ['revoke'] * 3 + ['enroll'] * 3 + ['revoke'] * 3 + ['enroll'] * 3 + ['revoke'] * 3

    assert run(args, check_mode=True)['changed'] is False
    assert run(args)['changed'] is False


def test_offline_renewals_keep_their_predecessors_and_their_slots(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=4, offline=2)
    run(args)
    old = make_due(ksef, clock)
    old_offline = [serial for serial in old if ksef.by_serial(serial)['type'] == 'Offline']
    ksef.quota(max_certificates=9)

    result = run(args)
    assert [entry['action'] for entry in result['certificates']] == ['renewed'] * 6
    assert status_of(ksef, old_offline) == ['Active']
    assert ksef.peak_active <= 9 and len(ksef.active()) == 8
    superseded = dict((entry['serial_number'], entry['revoked']) for entry in result['superseded'])
    assert [superseded[serial] for serial in old_offline] == [False, False]


def test_a_renewal_without_a_slot_waits_for_the_slot_that_comes_back_before_its_outage(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=2, offline=3)
    run(args)
    make_due(ksef, clock, days=lambda index: 10 + index)
    ksef.quota(max_certificates=7)      # 5 active, 2 free: one Offline keeps a slot, one slot cycles

    result = run(args)
    actions = dict((entry['name'], entry['action']) for entry in result['certificates'])
    assert actions == {'auth-000': 'renewed', 'auth-001': 'renewed', 'offl-000': 'renewed', 'offl-001': 'renewed',
                       'offl-002': 'deferred'}
    # offl-000's predecessor stays active and expires before offl-002 does: a later run renews offl-002 in time
    offl_000, offl_002 = [min((c for c in ksef.certificates if c['name'] == name), key=lambda c: c['valid_to'])
                          for name in ('offl-000', 'offl-002')]
    entry = [entry for entry in result['certificates'] if entry['name'] == 'offl-002'][0]
    assert entry['superseded'] == [] and entry['certificate']['serial_number'] == offl_002['serial']
    assert entry['hold'] == {'state': 'deferred', 'reason': 'certificate_quota', 'outage_at': returned(offl_002['valid_to']),
                             'retry_at': returned(offl_000['valid_to']), 'message': entry['hold']['message']}
    assert 'a run from %s can renew it' % returned(offl_000['valid_to']) in entry['hold']['message']
    assert result['quota']['blocked'] == [] and result['quota']['deferred'] == ['offl-002/offline (certificates[4])']
    assert any('offl-002/offline' in warning and 'waits for a free slot' in warning for warning in run.warnings)
    assert ksef.peak_active <= 7
    assert result['quota']['forecast']['outages'] == []
    assert [entry['hold'] for entry in result['certificates'] if entry['name'] != 'offl-002'] == [None] * 4


def test_a_slot_that_comes_back_only_when_the_certificate_ends_is_too_late(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, offline=2)
    run(args)
    make_due(ksef, clock, days=lambda index: 10)      # both end at the same moment
    ksef.quota(max_certificates=3)      # one free slot: offl-000's kept predecessor ends with offl-001's certificate
    result = run(args)
    assert [entry['action'] for entry in result['certificates']] == ['renewed', 'blocked']
    assert result['certificates'][1]['hold']['retry_at'] is None


def test_a_renewal_no_slot_comes_back_for_before_its_outage_is_blocked(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, offline=2)
    run(args)
    make_due(ksef, clock, days=lambda index: 10 + index)
    ksef.quota(max_certificates=2)      # no free slot, and no active certificate ends before these two do

    result = run(args)
    assert [entry['action'] for entry in result['certificates']] == ['blocked', 'blocked']
    offl_001 = [c for c in ksef.certificates if c['name'] == 'offl-001'][0]
    hold = result['certificates'][1]['hold']
    assert hold['state'] == 'blocked' and hold['reason'] == 'certificate_quota' and hold['retry_at'] is None
    assert hold['outage_at'] == returned(offl_001['valid_to'])
    assert 'cannot be renewed now' in hold['message'] and 'raise the subject' in hold['message']
    blocked = result['quota']['blocked']
    assert blocked[1] == {'certificate': 'offl-001/offline (certificates[1])', 'reason': 'certificate_quota',
                          'outage_at': returned(offl_001['valid_to'])}
    assert any('offl-001/offline' in warning and 'cannot be renewed now' in warning and 'raise the subject' in warning
               for warning in run.warnings)
    assert result['changed'] is False and ksef.count('enroll') == 0


def test_a_missing_certificate_without_a_slot_fails_after_the_rest_is_done(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=3)
    run(args)
    make_due(ksef, clock)
    ksef.quota(max_certificates=4)
    args['certificates'].extend(fleet(tmp_path, extra=[('new-one', 'offline'), ('new-two', 'offline')])['certificates'])
    with pytest.raises(KsefError) as error:
        run(args)
    # one slot: the renewals cycle through it, then new-one keeps it; nothing is left for new-two
    assert 'Cannot enroll 1 certificate(s) that have no valid certificate: new-two/offline' in str(error.value)
    assert 'Everything else in the set was done' in str(error.value)
    results = error.value.results
    assert [entry['action'] for entry in results] == ['renewed', 'renewed', 'renewed', 'enrolled', 'blocked']
    assert ksef.peak_active == 4 and len(ksef.active()) == 4

    del args['certificates'][3:]
    make_due(ksef, clock, names=['auth-000'])
    with pytest.raises(KsefError) as error:
        run(dict(args, certificates=args['certificates'] + fleet(tmp_path, extra=[('new-two', 'offline')])['certificates']))
    assert 'nothing was sent' in str(error.value) and ksef.count('enroll') == 0


def test_the_hour_budget_spreads_the_renewals_over_runs(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=6)
    run(args)
    make_due(ksef, clock)
    ksef.quota(max_certificates=8)
    ksef.limit_rate(per_minute=30, per_hour=6)

    first = run(args)
    # 6 calls an hour per endpoint: four renewals in two waves (two looks each, after the run's query) fit, six do not
    actions = [entry['action'] for entry in first['certificates']]
    assert actions.count('renewed') == 4 and actions.count('deferred') == 2
    assert first['quota']['deferred'] == [entry['name'] + '/authentication (certificates[%d])' % index
                                          for index, entry in enumerate(first['certificates'])
                                          if entry['action'] == 'deferred']
    assert any('wait for a later run' in warning for warning in run.warnings)
    assert ksef.refused == []
    for entry in first['certificates']:
        if entry['action'] == 'deferred':
            hold = entry['hold']
            assert (hold['state'], hold['reason'], hold['outage_at']) == ('deferred', 'call_budget', entry['certificate']['valid_to'])
            # an hour after the run (whose own clock moved a few seconds while it ran)
            assert returned(clock.now() + datetime.timedelta(minutes=59)) < hold['retry_at'] <= returned(
                clock.now() + datetime.timedelta(hours=1))
            assert "the hour's call budget" in entry['hold']['message']

    clock.advance(hours=1, seconds=5)
    hits = ksef.hits
    ksef.limit_rate(per_minute=30, per_hour=6)      # the next run's own client; KSeF's counters stay
    ksef.hits = hits
    second = run(args)
    assert sorted(entry['action'] for entry in second['certificates']) == ['none'] * 4 + ['renewed'] * 2
    assert ksef.refused == [] and ksef.peak_active <= 8


def test_the_enrollment_request_quota_is_said_before_sending(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=4)
    run(args)
    make_due(ksef, clock)
    ksef.quota(max_certificates=100, max_enrollments=len(ksef.enrollments) + 2)

    predicted = run(args, check_mode=True)
    assert predicted['quota']['enrollments_left'] == 2 and predicted['quota']['enrollments_needed'] == 2
    assert [entry['reason'] for entry in predicted['quota']['blocked']] == ['enrollment_quota'] * 2
    result = run(args)
    assert sorted(entry['action'] for entry in result['certificates']) == ['blocked', 'blocked', 'renewed', 'renewed']
    assert ksef.count('enroll') == 2
    assert any('no enrollment request is left' in warning for warning in run.warnings)


def test_quota_forecast_on_a_no_op_reads_the_limits_once(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=2, offline=1)
    run(args)
    ksef.quota(max_certificates=3)
    assert run(args)['quota'] is None
    result = run(dict(args, quota_forecast=True), check_mode=True)
    assert ksef.names() == ['query', 'limits']
    forecast = result['quota']['forecast']
    # In about 700 days the Offline renewal keeps its predecessor: nothing is left for the Authentication ones.
    assert forecast['active'] == 3 and forecast['limit'] == 3
    assert [entry['certificate'] for entry in forecast['outages']] == [
        'auth-000/authentication (certificates[0])', 'auth-001/authentication (certificates[1])',
        'offl-000/offline (certificates[2])']


def test_release_offline_predecessors_frees_slots_for_blocked_renewals(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=1, offline=2)
    run(args)
    offline_names = ['offl-000', 'offl-001']
    # offl-001's predecessor (the larger serial) expires first: the release goes by expiry, not by serial
    first_offline = make_due(ksef, clock, names=offline_names, days=lambda index: 10 - index)
    run(args)       # renewed; the Offline predecessors stay active
    assert status_of(ksef, first_offline) == ['Active'] and len(ksef.active()) == 5
    old_auth = make_due(ksef, clock, names=['auth-000'])
    ksef.quota(max_certificates=5)

    held = run(args)
    # no slot now; the kept Offline predecessors expire before auth-000 does: a later run renews it in time
    assert held['certificates'][0]['action'] == 'deferred' and held['quota']['released_offline'] == []
    assert held['certificates'][0]['hold']['retry_at'] == returned(min(ksef.by_serial(serial)['valid_to']
                                                                       for serial in first_offline))

    args['release_offline_predecessors'] = True
    soonest = sorted(first_offline, key=lambda serial: ksef.by_serial(serial)['valid_to'])[0]
    predicted = run(args, check_mode=True)
    assert predicted['quota']['released_offline'] == [soonest]
    assert predicted['certificates'][0]['action'] == 'renewed' and 'revoke' not in ksef.names()
    assert soonest == first_offline[1]
    assert (predicted['certificates'][2]['revoked'], predicted['certificates'][2]['changed']) == ([soonest], True)
    assert (predicted['certificates'][1]['revoked'], predicted['certificates'][1]['changed']) == ([], False)
    result = run(args)
    assert result['quota']['released_offline'] == [soonest]
    assert (result['certificates'][2]['revoked'], result['certificates'][2]['changed']) == ([soonest], True)
    assert (soonest, 'Superseded') in ksef.revocations()
    assert ksef.by_serial(soonest)['status'] == 'Revoked'
    assert result['certificates'][0]['action'] == 'renewed' and status_of(ksef, old_auth) == ['Revoked']
    assert ksef.peak_active <= 5
    # the declared Offline certificates themselves are untouched
    assert [entry['action'] for entry in result['certificates'][1:]] == ['none', 'none']
    assert all(ksef.by_serial(entry['certificate']['serial_number'])['status'] == 'Active'
               for entry in result['certificates'][1:])


# ---------------------------------------------------------------------------------------------
# the slots a wave frees are the revocations really made
# ---------------------------------------------------------------------------------------------

def test_a_successor_that_fails_its_proof_frees_no_slot_for_the_next_wave(run, ksef, clock, tmp_path, monkeypatch):
    args = fleet(tmp_path, auth=3)
    run(args)
    old = make_due(ksef, clock, days=lambda index: 10 + index)
    ksef.quota(max_certificates=4)      # one free slot: the renewals can only cycle through it

    def refuse(signer):
        raise KsefApiError('POST', '/auth/xades-signature', 400, errors=[{'code': 21115, 'description': 'Invalid certificate'}])
    monkeypatch.setattr(ksef, 'prove_login', refuse)
    result = run(args)
    actions = [entry['action'] for entry in result['certificates']]
    # auth-000 is renewed but its predecessor stays (no proof): nothing is left for the other two, nothing refused
    assert actions == ['renewed', 'blocked', 'blocked']
    assert status_of(ksef, old) == ['Active'] and ksef.revocations() == []
    assert ksef.count('enroll') == 1 and ksef.peak_active == 4
    assert [entry['reason'] for entry in result['quota']['blocked']] == ['certificate_quota'] * 2


def test_released_offline_predecessors_are_not_counted_again_after_their_wave(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=4, offline=1)
    run(args)
    predecessors = set()
    for dummy in range(2):      # two renewals of offl-000: two predecessors stay active
        predecessors.update(make_due(ksef, clock, names=['offl-000'], days=lambda index: 5))
        run(args)
    assert len(predecessors) == 2 and status_of(ksef, predecessors) == ['Active']
    for index, name in enumerate(['offl-000', 'auth-000', 'auth-001', 'auth-002', 'auth-003']):
        current = [c for c in ksef.certificates if c['name'] == name and c['status'] == 'Active' and c['serial'] not in predecessors]
        current[0]['valid_to'] = clock.now() + datetime.timedelta(days=3 + index)
    ksef.quota(max_certificates=len(ksef.active()))     # no free slot: both predecessors are released

    result = run(dict(args, release_offline_predecessors=True))
    assert sorted(result['quota']['released_offline']) == sorted(predecessors)
    assert [entry['action'] for entry in result['certificates']] == ['renewed'] * 5
    # two free slots: offl-000 and one renewal, then one slot cycles (the released ones are counted once)
    assert [len(wave) for wave in result['quota']['waves_sent']] == [2, 1, 1, 1]
    assert ksef.count('enroll') == 5 and ksef.peak_active <= ksef.max_certificates


@pytest.mark.parametrize('valid_from, revoke, expected', [
    (None, True, 2),
    (None, False, 0),
    ('2030-01-01T00:00:00Z', True, 0),          # held until valid: its predecessors stay
    ('2020-01-01T00:00:00Z', True, 2),
])
def test_slots_freed_counts_the_predecessors_the_run_will_revoke(valid_from, revoke, expected):
    decl = type('Decl', (), dict(revoke_superseded=revoke, valid_from=valid_from))()
    plan = type('Plan', (), dict(decl=decl, superseded=['A1', 'B2', 'C3']))()
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert slots_freed(plan, lambda plan, serial: serial == 'B2', now) == expected
