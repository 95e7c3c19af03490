# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rolling renewal through the engine, against the fake KSeF that counts its limits like KSeF does."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import functools
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._engine.budget import REVOKE
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import KsefView
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.rolling import (
    ADVICE,
    Limits,
    RollingRenewal,
    current_validity,
    forecast_quota,
    hold_message,
    record_in_use,
    slots_freed,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.result import KsefConvergeError
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecord
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import ENROLLMENT_DATA


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
    # planned again after the first wave: each certificate left out says so
    assert [name for name in ('auth-001', 'auth-002') if any(
        warning.startswith('Certificate %s/authentication' % name) and 'cannot be renewed now' in warning
        for warning in run.warnings)] == ['auth-001', 'auth-002']


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
    ('2026-01-01T00:00:00Z', True, 2),          # valid from now: installed, its predecessors revoked
])
def test_slots_freed_counts_the_predecessors_the_run_will_revoke(valid_from, revoke, expected):
    decl = type('Decl', (), dict(revoke_superseded=revoke, frees_superseded=revoke, valid_from=valid_from))()
    plan = type('Plan', (), dict(decl=decl, superseded=['A1', 'B2', 'C3']))()
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert slots_freed(plan, lambda plan, serial: serial == 'B2', now) == expected


# ---------------------------------------------------------------------------------------------
# the pieces of the wave run, one by one (each assertion kills a mutant `make mutation` found alive)
# ---------------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)


def days(count):
    return NOW + datetime.timedelta(days=count)


def record(serial, valid_to, status='active', name='n', cert_type='offline', requested=None):
    return CertificateRecord(serial, name, cert_type, status, valid_to, request_date=requested)


def decl(label='n/offline', state='present', cert_type='offline', revoke=False, renew_before_days=None, name='n',
         caller_revokes=False):
    return SimpleNamespace(label=label, state=state, type=cert_type, name=name, revoke_superseded=revoke,
                           caller_revokes_superseded=caller_revokes, frees_superseded=revoke or caller_revokes,
                           renew_before_days=renew_before_days, valid_from=None)


def plan(current=None, superseded=(), **fields):
    """The fields of a Plan the wave run reads, and its real hold()."""
    made = SimpleNamespace(decl=decl(**fields), current_item=current, superseded=list(superseded), revoked=[],
                           changed=False, held=None)
    made.hold = functools.partial(Plan.hold, made)
    return made


class Warnings:
    def __init__(self):
        self.messages = []

    def warn(self, message):
        self.messages.append(message)


def renewal(records, limits=None, release_offline=False):
    """A RollingRenewal in check mode over `records` at NOW, with nothing behind it that could call KSeF."""
    enroller = SimpleNamespace(view=KsefView(records), check_mode=True, revoker=SimpleNamespace(keeps_login=lambda plan, serial: False))
    rolling = RollingRenewal(Warnings(), None, enroller, None, lambda: NOW, release_offline=release_offline)
    rolling.limits = Limits(limits)
    return rolling


@pytest.mark.parametrize('value, expected', [(7, 7), (0, 0), (True, None), (False, None), ('7', None), (7.0, None), (None, None)])
def test_limits_take_only_whole_numbers(value, expected):
    limits = Limits({'canRequest': True, 'certificate': {'remaining': value, 'limit': value},
                     'enrollment': {'remaining': value, 'limit': value}})
    assert (limits.certificates_left, limits.certificate_limit, limits.enrollments_left, limits.enrollment_limit) == (expected,) * 4
    assert limits.can_request is True


def test_limits_without_an_answer_know_nothing():
    limits = Limits(None)
    assert (limits.can_request, limits.certificates_left, limits.certificate_limit, limits.enrollments_left,
            limits.enrollment_limit, limits.active) == (None,) * 6
    assert Limits({'certificate': {'remaining': 3, 'limit': 10}}).active == 7
    assert Limits({'certificate': {'limit': 10}}).active is None


def test_the_certificate_in_use_is_the_declared_one_else_the_superseded_one_valid_longest():
    declared, longer = record('D1', days(10)), record('S2', days(50))
    view = KsefView([declared, longer, record('S3', days(40)), record('S4', days(90), status='revoked'),
                     record('S5', days(-1))])
    assert current_validity(plan(current=declared, superseded=['S2']), view, NOW) == days(10)
    assert current_validity(plan(superseded=['S3', 'S2', 'S4', 'S5', 'GONE']), view, NOW) == days(50)
    assert current_validity(plan(superseded=['S4', 'S5', 'GONE']), view, NOW) is None
    assert current_validity(plan(current=record('D6', days(-2))), view, NOW) is None
    assert record_in_use(plan(superseded=['S3', 'S2']), view, NOW) is longer


def test_a_quota_that_is_exactly_enough_is_no_problem():
    rolling = renewal([])
    limits = Limits({'canRequest': True, 'certificate': {'remaining': 2, 'limit': 100}, 'enrollment': {'remaining': 2, 'limit': 300}})
    assert rolling._problems(limits, 2) == 'no active-certificate slot is left for them'
    assert rolling._problems(limits, 3) == (
        'enrollment requests quota (KSeF 25006): 2 of 300 left, 3 needed; active certificates quota (KSeF 25007): 2 of 100 '
        'left, 3 needed (a renewal holds two certificates until the old one is revoked)')
    refused = Limits({'canRequest': False, 'certificate': {'remaining': 1, 'limit': 100}, 'enrollment': {'remaining': 9, 'limit': 300}})
    assert rolling._problems(refused, 1) == 'KSeF reports canRequest=false for this subject'
    assert rolling._problems(refused, 2) == ('active certificates quota (KSeF 25007): 1 of 100 left, 2 needed (a renewal '
                                             'holds two certificates until the old one is revoked)')


def held(held_as, reason, outage_at, retry_at=None, label='n/offline'):
    held_plan = plan(label=label)
    held_plan.held, held_plan.hold_reason, held_plan.outage_at, held_plan.retry_at = held_as, reason, outage_at, retry_at
    return held_plan


@pytest.mark.parametrize('held_as, reason, outage_at, retry_at, expected', [
    ('deferred', 'call_budget', days(9), days(0.5),
     "waits for a later run: the hour's call budget of KSeF's rate limits is spent; a run from 2026-06-01T12:00:00+00:00 "
     "can renew it; the certificate in use works until 2026-06-10T00:00:00+00:00 (an outage from then)"),
    ('blocked', 'enrollment_quota', None, None,
     'cannot be renewed now: no enrollment request is left (KSeF 25006, 300 per 30 days); it has no valid certificate '
     '(an outage now); ' + ADVICE),
    ('deferred', 'certificate_quota', days(9), days(3),
     'waits for a free slot: the active-certificate limit (KSeF 25007) leaves none now; a run from '
     '2026-06-04T00:00:00+00:00 can renew it; the certificate in use works until 2026-06-10T00:00:00+00:00 (an outage from then)'),
    ('blocked', 'certificate_quota', days(9), None,
     'cannot be renewed now: the active-certificate limit (KSeF 25007) leaves no slot for it; the certificate in use '
     'works until 2026-06-10T00:00:00+00:00 (an outage from then); ' + ADVICE),
])
def test_hold_messages_say_why_until_when_and_what_to_do(held_as, reason, outage_at, retry_at, expected):
    assert hold_message(held(held_as, reason, outage_at, retry_at)) == expected


def test_a_warning_for_each_held_certificate_that_still_has_a_valid_one():
    first, second = held('blocked', 'certificate_quota', None, label='a/offline'), held('blocked', 'certificate_quota', days(9), label='b/offline')
    for each in (first, second):
        each.hold_note = hold_message(each)
    assert list(renewal([])._hold_messages([first, second])) == ['Certificate b/offline ' + second.hold_note]


def test_a_blocked_entry_without_a_valid_certificate_is_an_outage_now():
    rolling = renewal([record('S1', days(9))])
    assert rolling._blocked_entry(plan(superseded=['S1'], label='a/offline'), 'certificate_quota') == {
        'certificate': 'a/offline', 'reason': 'certificate_quota', 'outage_at': '2026-06-10T00:00:00+00:00'}
    assert rolling._blocked_entry(plan(label='b/offline'), 'enrollment_quota') == {
        'certificate': 'b/offline', 'reason': 'enrollment_quota', 'outage_at': '2026-06-01T00:00:00+00:00'}


def test_the_next_free_slot_skips_what_the_declarations_use_after_an_absent_one():
    in_use, nobodys, later = record('C1', days(5), name='kept'), record('X2', days(20), name='other'), record('L3', days(30))
    rolling = renewal([in_use, nobodys, later, record('R4', days(2), status='revoked')])
    plans = [plan(state='absent', label='gone/offline'), plan(current=in_use, label='kept/offline')]
    assert rolling.next_free_slot(plans, []) == days(20)
    renewing = plan(superseded=['X2'], revoke=True)
    assert rolling.next_free_slot(plans + [renewing], [renewing]) == days(30)
    assert rolling.next_free_slot(plans + [plan(superseded=['L3'])], []) == days(20)


def test_release_takes_only_superseded_offline_certificates_by_expiry_then_serial():
    records = [record('A9', days(3), name='auth', cert_type='authentication'),       # an Authentication one: never
               record('B2', days(8)), record('B1', days(8)), record('B3', days(6)),
               record('B4', days(60)),                                               # in use by the CSR renewal
               record('G1', days(1), name='gone')]                                   # of an absent declaration
    rolling = renewal(records)
    auth = plan(current=record('A1', days(90), name='auth', cert_type='authentication'), name='auth', cert_type='authentication',
                label='auth/authentication')
    csr_renewal = plan(superseded=['B1', 'B2', 'B3', 'B4'], label='n/offline')
    plans = [auth, plan(state='absent', name='gone', label='gone/offline'), csr_renewal]
    assert rolling._release_offline_predecessors(plans, 2) == 2
    assert rolling.released == ['B3', 'B1'] and csr_renewal.revoked == ['B3', 'B1'] and csr_renewal.changed is True
    assert auth.revoked == [] and auth.changed is False
    assert rolling.module.messages == [
        'release_offline_predecessors: revoked 2 superseded Offline certificate(s) to free slots for due renewals '
        '(B3, B1); QR codes II signed with them no longer verify']
    assert renewal(records)._release_offline_predecessors(plans, 9) == 3       # B4 stays: the host uses it


def test_release_takes_every_active_one_of_a_declaration_that_has_none_in_use():
    rolling = renewal([record('Q1', days(40), name='q'), record('Q2', days(-3), name='q', status='expired')])
    new_one = plan(name='q', label='q/offline')
    assert rolling._release_offline_predecessors([new_one], 5) == 1 and rolling.released == ['Q1']


def test_start_without_a_certificate_limit_plans_one_wave():
    plans = due_plans(3)
    assert renewal([each.current_item for each in plans], {}).start(plans, plans).waves == [plans]


def test_release_without_a_predecessor_frees_nothing_and_says_nothing():
    rolling = renewal([record('B4', days(60))])
    assert rolling._release_offline_predecessors([plan(superseded=['B4'])], 1) == 0
    assert rolling.module.messages == [] and rolling.released == []


def forecast_of(plans, records, certificate_left=1, limit=4):
    limits = Limits({'certificate': {'remaining': certificate_left, 'limit': limit}})
    return forecast_quota(plans, limits, KsefView(records), NOW)


def test_the_forecast_renews_each_certificate_its_own_days_before_it_ends():
    auth, offline = record('A1', days(100), cert_type='authentication', name='a'), record('O1', days(200))
    plans = [plan(state='absent', label='gone/offline'),
             plan(current=auth, revoke=True, renew_before_days=10, cert_type='authentication', name='a', label='a/authentication'),
             plan(current=offline, label='o/offline')]
    assert forecast_of(plans, [auth, offline], certificate_left=2) == {
        'active': 2, 'limit': 4, 'peak_active': 3, 'peak_date': '2026-08-30T00:00:00+00:00', 'outages': []}
    # the Authentication renewal (day 90) gives its slot back; the Offline ones (days 170, 180) keep theirs
    second = plan(current=record('O2', days(210), name='p'), name='p', label='p/offline')
    assert forecast_of(plans + [second], [auth, offline], certificate_left=7, limit=10) == {
        'active': 3, 'limit': 10, 'peak_active': 5, 'peak_date': '2026-11-28T00:00:00+00:00', 'outages': []}
    # an Offline renewal (day 95) before the revoked Authentication predecessor would have ended (day 100)
    soon = plan(current=record('O3', days(125), name='q'), name='q', label='q/offline')
    assert forecast_of(plans[:2] + [soon], [auth], certificate_left=7, limit=10)['peak_active'] == 4
    # no free slot and nothing that ends before them: both are outages, each from the end of its certificate
    assert forecast_of(plans, [auth, offline], certificate_left=0, limit=2)['outages'] == [
        {'certificate': 'a/authentication', 'outage_at': '2026-09-09T00:00:00+00:00'},
        {'certificate': 'o/offline', 'outage_at': '2026-12-18T00:00:00+00:00'}]


def test_the_forecast_counts_the_slots_that_other_active_certificates_give_back_when_they_end():
    offline, kept = record('O1', days(100)), record('K1', days(75))
    plans = [plan(current=offline, label='o/offline')]
    records = [offline, kept, record('E1', days(-1)), record('R1', days(50), status='revoked')]
    # full: the renewal (day 70) waits for the kept predecessor's end (day 75), before its own certificate's
    assert forecast_of(plans, records, certificate_left=0, limit=2) == {
        'active': 2, 'limit': 2, 'peak_active': 2, 'peak_date': '2026-06-01T00:00:00+00:00', 'outages': []}
    outage = [{'certificate': 'o/offline', 'outage_at': '2026-09-09T00:00:00+00:00'}]
    assert forecast_of(plans, [offline], certificate_left=0, limit=2)['outages'] == outage
    # one that ends only after the certificate does comes too late; an expired one gives nothing back
    late = [offline, record('K2', days(120)), record('E1', days(-1))]
    assert forecast_of(plans, late, certificate_left=0, limit=2)['outages'] == outage


def test_the_forecast_of_a_missing_certificate_is_now_and_it_frees_nothing():
    plans = [plan(revoke=True, label='new/offline'), plan(revoke=True, label='other/offline')]
    assert forecast_of(plans, [], certificate_left=1, limit=1) == {
        'active': 0, 'limit': 1, 'peak_active': 1, 'peak_date': '2026-06-01T00:00:00+00:00',
        'outages': [{'certificate': 'other/offline', 'outage_at': '2026-06-01T00:00:00+00:00'}]}


def test_no_forecast_without_the_limits():
    assert forecast_quota([], None, KsefView([]), NOW) is None
    assert forecast_quota([], Limits({'certificate': {'limit': 4}}), KsefView([]), NOW) is None


def test_a_run_that_leaves_certificates_without_any_fails_naming_each_and_keeps_changed():
    rolling = renewal([], {'certificate': {'remaining': 0, 'limit': 2}})
    done, first, second = plan(label='done/offline'), plan(label='a/offline'), plan(label='b/offline')
    done.changed = True
    first.held = second.held = 'blocked'
    with pytest.raises(KsefConvergeError) as error:
        rolling.finish([done, first, second])
    assert str(error.value).startswith('Cannot enroll 2 certificate(s) that have no valid certificate: a/offline, b/offline; '
                                       'active certificates quota (KSeF 25007): 0 of 2 left, 2 needed')
    assert error.value.changed is True
    done.changed = False
    with pytest.raises(KsefConvergeError) as error:
        rolling.finish([done, first, second])
    assert error.value.changed is False
    rolling.finish([done])


def test_a_certificate_without_an_enrollment_request_is_blocked_even_when_a_slot_comes_back():
    in_use, nobodys = record('S1', days(9)), record('X2', days(3), name='other')
    rolling = renewal([in_use, nobodys])
    waiting = plan(superseded=['S1'])
    rolling._hold(waiting, 'enrollment_quota', [], [waiting])
    assert (waiting.held, waiting.hold_reason, waiting.outage_at, waiting.retry_at) == ('blocked', 'enrollment_quota', days(9), None)
    rolling._hold(waiting, 'certificate_quota', [], [waiting])
    assert (waiting.held, waiting.retry_at) == ('deferred', days(3))


def test_renewals_that_end_together_go_in_the_order_of_their_names(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, extra=[('zeta-cert', 'authentication'), ('alpha-cert', 'authentication')])
    run(args)
    make_due(ksef, clock, days=lambda index: 10)
    ksef.quota(max_certificates=3)
    assert run(args, check_mode=True)['quota']['waves'] == [['alpha-cert/authentication (certificates[1])'],
                                                            ['zeta-cert/authentication (certificates[0])']]


@pytest.mark.parametrize('limits, expected', [
    ({}, (3, None)),                                                                   # KSeF said nothing: no bound
    ({'certificate': {'remaining': 1}, 'enrollment': {'remaining': 5}}, (1, 5)),
    ({'canRequest': True, 'certificate': {'remaining': 1}, 'enrollment': {'remaining': 5}}, (1, 5)),
    ({'canRequest': False, 'certificate': {'remaining': 1}}, (1, 0)),                  # refused for another reason
    ({'canRequest': False, 'certificate': {'remaining': 0}, 'enrollment': {'remaining': 5}}, (0, 5)),   # for the slots
    ({'canRequest': False, 'certificate': {'remaining': 2}, 'enrollment': {'remaining': 1}}, (2, 0)),
])
def test_free_slots_and_enrollment_requests_from_the_limits(limits, expected):
    assert renewal([], limits).free_and_enrollments_left([plan(), plan(), plan()]) == expected


def due_plans(count, revoke=True, cert_type='authentication'):
    return [plan(current=record('C%d' % index, days(5 + index), name='p%d' % index, cert_type=cert_type), revoke=revoke,
                 superseded=['C%d' % index], name='p%d' % index, cert_type=cert_type, label='p%d/%s' % (index, cert_type))
            for index in range(count)]


def test_the_wave_count_the_call_budget_is_planned_for():
    plans = due_plans(3)
    records = [each.current_item for each in plans]
    assert renewal(records, {'certificate': {'remaining': 1}}).wave_count(plans) == 3
    assert renewal(records, {'certificate': {'remaining': 3}}).wave_count(plans) == 1
    assert renewal(records, {}).wave_count(plans) == 1
    assert renewal(records, {'certificate': {'remaining': 0}}).wave_count(plans) == 1


def test_start_plans_the_waves_and_says_what_waits_for_the_call_budget():
    plans = due_plans(4)
    limits = {'canRequest': True, 'certificate': {'remaining': 2, 'limit': 10}, 'enrollment': {'remaining': 250, 'limit': 300}}
    rolling = renewal([each.current_item for each in plans], limits)
    rolling.max_enrollments = 2
    waves = rolling.start(plans, plans)
    assert waves.waves == [plans[:2]] and waves.deferred == plans[2:]
    assert [each.held for each in plans] == [None, None, 'deferred', 'deferred']
    assert rolling.module.messages == ["2 due certificate(s) wait for a later run, as the hour's call budget allows 2 "
                                       "enrollment(s) now: p2/authentication, p3/authentication"]
    assert rolling.quota == {
        'certificate_limit': 10, 'certificates_left': 2, 'enrollment_limit': 300, 'enrollments_left': 250,
        'waves': [['p0/authentication', 'p1/authentication']], 'waves_sent': [], 'enrollments_needed': 2,
        'deferred': ['p2/authentication', 'p3/authentication'], 'blocked': [], 'released_offline': []}


def test_start_without_any_slot_for_certificates_that_have_none_sends_nothing():
    plans = [plan(label='a/offline'), plan(label='b/offline')]
    rolling = renewal([], {'certificate': {'remaining': 0, 'limit': 2}, 'enrollment': {'remaining': 1, 'limit': 300}})
    with pytest.raises(KsefError) as error:
        rolling.start(plans, plans)
    assert str(error.value) == (
        'Cannot enroll 2 certificate(s): enrollment requests quota (KSeF 25006): 1 of 300 left, 2 needed; active '
        'certificates quota (KSeF 25007): 0 of 2 left, 2 needed (a renewal holds two certificates until the old one is '
        'revoked). Revoke unused certificates or wait for the enrollment window; nothing was sent')


def offline_fleet_with_lingering_predecessors():
    """Three due Offline certificates and, for the first, two superseded ones still active (free for release)."""
    plans = due_plans(3, revoke=False, cert_type='offline')
    lingering = [record('L1', days(20), name='p0'), record('L2', days(30), name='p0')]
    return plans, [each.current_item for each in plans] + lingering


@pytest.mark.parametrize('enrollments_left, max_enrollments, released, held', [
    (None, None, ['L1', 'L2'], [None, None, None]),
    # only what the active-certificate limit holds back is released; the other limits still hold afterwards
    (2, None, ['L1'], [None, None, ('blocked', 'enrollment_quota')]),
    (None, 2, ['L1'], [None, None, ('deferred', 'call_budget')]),
])
def test_released_offline_predecessors_add_to_the_free_slots(enrollments_left, max_enrollments, released, held):
    plans, records = offline_fleet_with_lingering_predecessors()
    limits = {'certificate': {'remaining': 1, 'limit': 7}}
    if enrollments_left is not None:
        limits['enrollment'] = {'remaining': enrollments_left, 'limit': 300}
    rolling = renewal(records, limits, release_offline=True)
    rolling.max_enrollments = max_enrollments
    waves = rolling.start(plans, plans)
    assert rolling.released == released and rolling.limits.certificates_left == 1 + len(released)
    assert waves.waves == [[each for each, hold in zip(plans, held) if hold is None]]
    assert [each.held and (each.held, each.hold_reason) for each in plans] == held


def test_without_limits_from_ksef_every_renewal_goes_in_one_wave(run, ksef, clock, tmp_path):
    args = fleet(tmp_path, auth=2, offline=1)
    run(args)
    old = make_due(ksef, clock)
    ksef.limits_reply = {}
    result = run(args)
    assert [entry['action'] for entry in result['certificates']] == ['renewed'] * 3
    assert len(result['quota']['waves_sent']) == 1 and result['quota']['certificates_left'] is None
    assert status_of(ksef, old[:2]) == ['Revoked'] and status_of(ksef, old[2:]) == ['Active']


# ---------------------------------------------------------------------------------------------
# caller_revokes_superseded: the caller (the ksef_deploy role, keys on hosts) revokes the predecessors once the
# successor proved itself; the module revokes none but plans as if their slots came back (issue 18)
# ---------------------------------------------------------------------------------------------

def declared(cert_type='authentication', **options):
    """A real Declaration (its frees_superseded is the predicate under test)."""
    return Declaration(dict(options, name='host-app', type=cert_type, state='present'))


@pytest.mark.parametrize('options, revokes, frees', [
    (dict(), True, True),                                                       # by type: the module revokes
    (dict(caller_revokes_superseded=True), False, True),                        # the caller revokes
    (dict(caller_revokes_superseded=True, revoke_superseded=False), False, True),
    (dict(revoke_superseded=False), False, False),                              # nobody revokes: the slots stay taken
    (dict(caller_revokes_superseded=False, revoke_superseded=False), False, False),
])
def test_the_caller_revoking_frees_the_slots_but_the_module_revokes_nothing(options, revokes, frees):
    decl = declared(**options)
    assert (decl.revoke_superseded, decl.frees_superseded) == (revokes, frees)
    offline = declared('offline', **options)
    assert offline.revoke_superseded is False
    assert offline.frees_superseded == bool(options.get('caller_revokes_superseded'))


@pytest.mark.parametrize('valid_from, expected', [
    (None, 2),
    ('2030-01-01T00:00:00Z', 0),                # held until valid: the caller proves nothing before, revokes nothing
])
def test_slots_freed_counts_the_predecessors_the_caller_revokes(valid_from, expected):
    successor = SimpleNamespace(decl=declared('offline', caller_revokes_superseded=True, valid_from=valid_from),
                                superseded=['A1', 'B2', 'C3'])
    assert slots_freed(successor, lambda plan, serial: serial == 'B2', NOW) == expected
    kept = SimpleNamespace(decl=declared('authentication', revoke_superseded=False), superseded=['A1'])
    assert slots_freed(kept, lambda plan, serial: False, NOW) == 0


def test_the_next_free_slot_counts_what_the_caller_revokes_as_cycling():
    soon, later = record('S1', days(5), name='a', cert_type='authentication'), record('L2', days(30), name='o')
    rolling = renewal([soon, later])
    by_caller = plan(superseded=['S1'], caller_revokes=True, cert_type='authentication', name='a', label='a/authentication')
    kept = plan(superseded=['S1'], cert_type='authentication', name='a', label='a/authentication')
    # S1's slot cycles through the waves (the caller revokes it): the next one to come back is L2's
    assert rolling.next_free_slot([by_caller], [by_caller]) == days(30)
    # a renewal that keeps its predecessor: S1 ends first and gives its slot back then
    assert rolling.next_free_slot([kept], [kept]) == days(5)


def test_the_forecast_counts_the_slots_the_caller_gives_back():
    first, second = record('A1', days(100), cert_type='authentication', name='a'), record('B1', days(95), cert_type='authentication', name='b')

    def renewals(caller_revokes):
        return [plan(current=first, caller_revokes=caller_revokes, renew_before_days=10, cert_type='authentication',
                     name='a', label='a/authentication'),
                plan(current=second, caller_revokes=caller_revokes, renew_before_days=3, cert_type='authentication',
                     name='b', label='b/authentication')]
    # one free slot: a renews on day 90 and its predecessor gives the slot back, so b renews on day 92
    assert forecast_of(renewals(True), [first, second], certificate_left=1, limit=3) == {
        'active': 2, 'limit': 3, 'peak_active': 3, 'peak_date': '2026-08-30T00:00:00+00:00', 'outages': []}
    # nobody revokes: a's predecessor keeps the slot until day 100, after b's certificate ends (day 95)
    assert forecast_of(renewals(False), [first, second], certificate_left=1, limit=3)['outages'] == [
        {'certificate': 'b/authentication', 'outage_at': '2026-09-04T00:00:00+00:00'}]


def csr_of(key):
    return (x509.CertificateSigningRequestBuilder().subject_name(_crypto.build_subject(ENROLLMENT_DATA))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode('ascii'))


def role_requests(caller_revokes):
    """What the ksef_deploy role sends for keys on hosts: a CSR of a new key each, revoke_superseded false, and (with
    the fix) caller_revokes_superseded by type."""
    items = []
    for name, cert_type in (('app-auth1', 'authentication'), ('app-offl', 'offline'), ('app-auth2', 'authentication')):
        item = dict(name=name, type=cert_type, csr_content=csr_of(ec.generate_private_key(ec.SECP256R1())),
                    revoke_superseded=False)
        if caller_revokes:
            item['caller_revokes_superseded'] = cert_type == 'authentication'
        items.append(item)
    return dict(certificates=items)


@pytest.mark.parametrize('caller_revokes, first_wave', [
    (True, ['app-auth1/authentication (certificates[0])']),
    # before the option: every role renewal looked like a keeper, so the Offline one took the last slot for good
    (False, ['app-offl/offline (certificates[1])']),
])
def test_with_one_free_slot_the_role_s_authentication_renewal_goes_before_a_sooner_offline_one(
        run, ksef, clock, tmp_path, caller_revokes, first_wave):
    run(role_requests(caller_revokes))
    # the Offline one ends first (day 8), then app-auth1 (day 9), app-auth2 (day 10)
    old = make_due(ksef, clock, days=lambda index: {0: 9, 1: 10, 2: 8}[index])
    ksef.quota(max_certificates=len(old) + 1)
    args = role_requests(caller_revokes)

    predicted = run(args, check_mode=True)
    assert predicted['quota']['waves'][0] == first_wave
    result = run(args)
    assert result['quota']['waves_sent'] == [first_wave]
    actions = dict((entry['name'], entry['action']) for entry in result['certificates'])
    if caller_revokes:
        # the Offline renewal is not sent while an Authentication one is still due: it waits for the caller's
        # revocation to give the slot back (held for a slot, which the role's next wave sends again)
        assert actions['app-auth1'] in ('enrolled', 'renewed')
        assert actions['app-offl'] in ('deferred', 'blocked') and actions['app-auth2'] in ('deferred', 'blocked')
        holds = [entry['hold']['reason'] for entry in result['certificates'] if entry['name'] != 'app-auth1']
        assert holds == ['certificate_quota'] * 2
        # check mode predicted every wave, as if the caller revoked after each one (the role's check mode does too)
        assert predicted['quota']['waves'] == [[first_wave[0]], ['app-auth2/authentication (certificates[2])'],
                                               ['app-offl/offline (certificates[1])']]
        assert [entry['action'] for entry in predicted['certificates']] == ['enrolled'] * 3
    # the module revokes nothing (nor plans a revocation call in its budget): the caller does, once its hosts
    # proved the successors
    assert REVOKE not in predicted['budget']['calls'] and REVOKE not in result['budget']['calls']
    assert ksef.count('revoke') == 0 and status_of(ksef, old) == ['Active']
    assert ksef.peak_active <= ksef.max_certificates
