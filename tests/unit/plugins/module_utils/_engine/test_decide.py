# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure decision: tables of situations, each with the small plan it must give."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import (
    INTENT_CLOCK_SLACK,
    Decision,
    KsefView,
    decide,
    intent_candidates,
    intent_may_expire,
    known_before_post,
    wait_deadline,
    wanted_serials,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import INTENT_BLOCK_SECONDS
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecord
from ansible_collections.ksef.certificates.plugins.module_utils._rules import parse_datetime
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.certs import make_key

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = make_key('ec', slot=0)
OTHER_KEY = make_key('ec', slot=1)


def certificate(key, serial, days=700):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'Firma')])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))


def record(serial, status='active', days=700, name='erp-auth', certificate_type='authentication', requested_days_ago=1):
    return CertificateRecord(
        serial_number='%016X' % serial, name=name, certificate_type=certificate_type, status=status,
        valid_to=NOW + datetime.timedelta(days=days), valid_from=NOW - datetime.timedelta(days=requested_days_ago),
        request_date=NOW - datetime.timedelta(days=requested_days_ago))


class Files:
    """Local files as the decision sees them: what exists, whether the certificate files need writing."""

    def __init__(self, existing=(), stale=False):
        self.paths = set(existing)
        self.stale = stale

    def existing(self, paths):
        return [path for path in paths if path in self.paths]

    def need_install(self, decl, certificate):
        return self.stale


def declaration(key=KEY, local=None, state='present', record_=None, **options):
    values = dict(name='erp-auth', type='authentication', state=state, private_key_path='/k/erp.key',
                  certificate_path='/k/erp.pem', state_path='/k/erp.key.ksef-pending.json', renew_before_days=30,
                  force=False, remove_files=False)
    values.update(options)
    decl = Declaration(values)
    decl.key = key
    decl.local_certificate = local
    decl.record = record_
    return decl


def view(*pairs):
    """pairs: (record, certificate or None)."""
    return KsefView([r for r, dummy in pairs], dict((r.serial_number, c) for r, c in pairs if c is not None))


def summary(plan):
    return dict(action=plan.action, reason=plan.reason, enroll=plan.enroll, key_plan=plan.key_plan,
                superseded=plan.superseded, changed=plan.changed)


MINE = certificate(KEY, 1)
MINE_SOON = certificate(KEY, 2, days=10)
OTHERS = certificate(OTHER_KEY, 3)


@pytest.mark.parametrize('situation, decl_args, pairs, files, expected', [
    ('healthy: local certificate of the key, active, outside the window',
     dict(local=MINE), [(record(1), None)], Files(),
     dict(action='none', reason='healthy', enroll=False, key_plan=None, superseded=[], changed=False)),
    ('healthy but the certificate file is stale: install it',
     dict(local=MINE), [(record(1), None)], Files(stale=True),
     dict(action='installed', reason='healthy', enroll=False, key_plan=None, superseded=[], changed=True)),
    ('nothing in KSeF, no key yet: enroll with a new key in place',
     dict(key=None), [], Files(),
     dict(action='enrolled', reason='missing', enroll=True, key_plan='generate_in_place', superseded=[], changed=False)),
    ('nothing in KSeF, key never used: enroll it',
     dict(), [], Files(),
     dict(action='enrolled', reason='missing', enroll=True, key_plan='reuse', superseded=[], changed=False)),
    ('inside the renewal window: renew with a next key, supersede',
     dict(local=MINE_SOON), [(record(2, days=10), None)], Files(),
     dict(action='renewed', reason='renewal_window', enroll=True, key_plan='generate_next', superseded=['0000000000000002'],
          changed=False)),
    ('renew_before_days 5 keeps it',
     dict(local=MINE_SOON, renew_before_days=5), [(record(2, days=10), None)], Files(),
     dict(action='none', reason='healthy', enroll=False, key_plan=None, superseded=[], changed=False)),
    ('revoked: renew',
     dict(local=MINE), [(record(1, status='revoked'), MINE)], Files(),
     dict(action='renewed', reason='revoked', enroll=True, key_plan='generate_next', superseded=[], changed=False)),
    ('blocked: renew',
     dict(local=MINE), [(record(1, status='blocked'), MINE)], Files(),
     dict(action='renewed', reason='blocked', enroll=True, key_plan='generate_next', superseded=[], changed=False)),
    ('expired by date',
     dict(local=MINE), [(record(1, days=-1), MINE)], Files(),
     dict(action='renewed', reason='expired', enroll=True, key_plan='generate_next', superseded=['0000000000000001'],
          changed=False)),
    ('another key is active under the name: key mismatch',
     dict(), [(record(3), OTHERS)], Files(),
     dict(action='enrolled', reason='key_mismatch', enroll=True, key_plan='reuse', superseded=['0000000000000003'],
          changed=False)),
    ('force renews a healthy one',
     dict(local=MINE, force=True), [(record(1), None)], Files(),
     dict(action='renewed', reason='force', enroll=True, key_plan='generate_next', superseded=['0000000000000001'],
          changed=False)),
    ('other name or type does not count',
     dict(), [(record(3, name='erp-auth-2'), OTHERS), (record(4, certificate_type='offline'), OTHERS)], Files(),
     dict(action='enrolled', reason='missing', enroll=True, key_plan='reuse', superseded=[], changed=False)),
])
def test_decide_present(situation, decl_args, pairs, files, expected):
    plan = decide(declaration(**decl_args), view(*pairs), files, NOW)
    assert summary(plan) == expected, situation


OLDER = dict(requested_days_ago=30)


@pytest.mark.parametrize('situation, decl_args, pairs, expected', [
    ('an older active certificate of the name and type: a predecessor an earlier run kept',
     dict(), [(record(1), None), (record(3, **OLDER), None)], ['0000000000000003']),
    ('every older one, newest request first',
     dict(), [(record(1), None), (record(3, **OLDER), None), (record(4, requested_days_ago=60), None)],
     ['0000000000000003', '0000000000000004']),
    ('a newer one is no predecessor', dict(), [(record(1, **OLDER), None), (record(3), None)], []),
    ('requested at the same moment: no predecessor', dict(), [(record(1), None), (record(3), None)], []),
    ('revoked, blocked, another name or type: none',
     dict(), [(record(1), None), (record(3, status='revoked', **OLDER), None), (record(4, status='blocked', **OLDER), None),
              (record(5, name='erp-auth-2', **OLDER), None), (record(6, certificate_type='offline', **OLDER), None)], []),
    ('revoke_superseded false keeps them', dict(revoke_superseded=False), [(record(1), None), (record(3, **OLDER), None)], []),
    ('Offline by type keeps them', dict(type='offline'),
     [(record(1, certificate_type='offline'), None), (record(3, certificate_type='offline', **OLDER), None)], []),
    ('Offline with revoke_superseded true', dict(type='offline', revoke_superseded=True),
     [(record(1, certificate_type='offline'), None), (record(3, certificate_type='offline', **OLDER), None)],
     ['0000000000000003']),
])
def test_a_healthy_certificate_names_the_older_active_ones_to_revoke_once_it_proves_itself(situation, decl_args, pairs,
                                                                                           expected):
    plan = decide(declaration(local=MINE, **decl_args), view(*pairs), Files(), NOW)
    assert plan.reason == 'healthy' and plan.current_item.serial_number == '0000000000000001', situation
    assert plan.kept_predecessors == expected, situation
    assert plan.changed is False and plan.superseded == [] and plan.enroll is False, situation


def test_a_csr_declaration_never_names_kept_predecessors():
    csr = x509.load_der_x509_csr(_crypto.build_csr(KEY, {'commonName': 'Firma', 'countryName': 'PL'}))
    decl = declaration(key=None, csr_path='/k/erp.csr', private_key_path=None)
    decl.csr = csr
    plan = decide(decl, view((record(1), MINE), (record(3, **OLDER), None)), Files(), NOW)
    assert plan.reason == 'healthy' and plan.kept_predecessors == []


def test_a_renewal_names_no_kept_predecessor():
    plan = decide(declaration(local=MINE_SOON), view((record(2, days=10), None), (record(3, **OLDER), None)), Files(), NOW)
    assert plan.enroll and plan.kept_predecessors == [] and plan.superseded == ['0000000000000002', '0000000000000003']


def test_healthy_plan_installs_the_current_certificate():
    plan = decide(declaration(local=MINE), view((record(1), None)), Files(stale=True), NOW)
    assert plan.install_certificate is MINE and plan.install_item.serial_number == '0000000000000001'


def test_active_valid_longest_is_current_among_certificates_of_the_key():
    second = certificate(KEY, 5, days=800)
    plan = decide(declaration(), view((record(1), MINE), (record(5, days=800), second)), Files(), NOW)
    assert plan.current_item.serial_number == '0000000000000005' and plan.reason == 'healthy'


@pytest.mark.parametrize('pairs, files, remove_files, expected', [
    ([(record(1), MINE)], Files(), False, dict(action='revoked', reason='present', revoked=['0000000000000001'],
                                               removed=[], changed=True)),
    ([(record(3), OTHERS)], Files(), False, dict(action='none', reason='absent', revoked=[], removed=[], changed=False)),
    ([(record(1, status='revoked'), MINE)], Files(existing=['/k/erp.pem', '/k/erp.key']), True,
     dict(action='removed', reason='absent', revoked=[], removed=['/k/erp.pem', '/k/erp.key'], changed=True)),
])
def test_decide_absent(pairs, files, remove_files, expected):
    plan = decide(declaration(state='absent', remove_files=remove_files), view(*pairs), files, NOW)
    assert dict(action=plan.action, reason=plan.reason, revoked=plan.to_revoke, removed=plan.removed_files,
                changed=plan.changed) == expected


def test_absent_without_a_key_revokes_every_active_exact_match():
    ksef = view((record(1), None), (record(3), None), (record(4, status='expired'), None))
    plan = decide(declaration(key=None, state='absent'), ksef, Files(), NOW)
    assert plan.to_revoke == ['0000000000000001', '0000000000000003']


def intent(minutes_ago, **extra):
    values = dict(phase='intent', name='erp-auth', type='authentication', key_path='/k/erp.key.next',
                  public_key_sha256=_crypto.public_key_fingerprint(OTHER_KEY), superseded=['0000000000000001'],
                  known_serials=['0000000000000001'], action='renewed',
                  intent_time=(NOW - datetime.timedelta(minutes=minutes_ago)).strftime('%Y-%m-%dT%H:%M:%S.%fZ'))
    values.update(extra)
    return values


def test_intent_reconciled_by_public_key():
    decl = declaration(local=MINE, record_=intent(5))
    ksef = view((record(1), MINE), (record(3, requested_days_ago=0), OTHERS))
    candidates = intent_candidates(decl, ksef)
    assert candidates == ['0000000000000003']
    plan = decide(decl, ksef, Files(), NOW, intent_candidates=candidates)
    assert (plan.action, plan.reason, plan.issued_serial, plan.superseded) == (
        'installed', 'reconciled', '0000000000000003', ['0000000000000001'])
    assert not plan.discard_record


def test_recent_intent_without_its_certificate_blocks():
    decl = declaration(local=MINE, record_=intent(5))
    with pytest.raises(KsefError, match='may still be processing the enrollment'):
        decide(decl, view((record(1), MINE)), Files(), NOW)


def test_old_intent_is_discarded_and_the_normal_rules_apply():
    decl = declaration(local=MINE, record_=intent(61))
    plan = decide(decl, view((record(1), MINE)), Files(), NOW)
    assert plan.discard_record and 'a new enrollment is allowed' in plan.warnings[0]
    assert plan.reason == 'healthy'
    assert decl.record is not None, 'decide never touches the state: the engine discards'


def test_intent_expiry():
    assert not intent_may_expire(declaration(record_=intent(59)), NOW)
    assert intent_may_expire(declaration(record_=intent(61)), NOW)
    assert intent_may_expire(declaration(record_=intent(1), force=True), NOW)


def test_pending_enrollment_resumes():
    pending = intent(1, phase='pending', reference_number='REF')
    plan = decide(declaration(record_=pending), view(), Files(), NOW)
    assert (plan.action, plan.reason, plan.reference_number, plan.completion_action) == ('pending', 'resumed', 'REF',
                                                                                         'renewed')
    assert plan.changed is False and plan.enroll is False and plan.issued_serial is None
    assert plan.enroll_key_path == '/k/erp.key.next' and plan.superseded == ['0000000000000001']
    assert plan.issued_public_key_sha256 == _crypto.public_key_fingerprint(OTHER_KEY)
    issued = decide(declaration(record_=pending), view(), Files(), NOW, issued_serial='0000000000000003')
    assert (issued.action, issued.changed, issued.reason) == ('renewed', True, 'resumed')
    assert issued.enroll_key_path == '/k/erp.key.next' and issued.issued_serial == '0000000000000003'
    without_action = dict(pending)
    del without_action['action']
    assert decide(declaration(record_=without_action), view(), Files(), NOW, issued_serial='3').action == 'enrolled'


def test_wanted_serials():
    ksef = view((record(1), None), (record(3), None), (record(4, status='revoked'), None))
    assert wanted_serials(declaration(local=MINE), ksef) == [], 'local files prove the current certificate'
    assert wanted_serials(declaration(), ksef) == ['0000000000000001', '0000000000000003', '0000000000000004']
    assert wanted_serials(declaration(key=None), ksef) == [], 'a key still to be made matches nothing'
    assert wanted_serials(declaration(state='absent'), ksef) == ['0000000000000001', '0000000000000003']


def test_known_before_post():
    assert known_before_post(None) == set()
    assert known_before_post({'superseded': ['A'], 'known_serials': ['B']}) == {'A', 'B'}


def test_a_key_file_that_is_gone_while_its_name_is_active_is_not_replaced_silently():
    # The controller lost the key (an AWX job's fresh directory): KSeF still lists the active certificate.
    decl = declaration(key=None, local=None)
    with pytest.raises(KsefError) as raised:
        decide(decl, view((record(3), OTHERS)), Files(), NOW)
    message = str(raised.value)
    assert 'the private key /k/erp.key does not exist' in message and '0000000000000003' in message
    assert 'persistent storage' in message and 'replace_missing_key=true' in message and 'Nothing was sent' in message


def test_force_does_not_replace_a_missing_key():
    with pytest.raises(KsefError, match='replace_missing_key'):
        decide(declaration(key=None, force=True), view((record(3), OTHERS)), Files(), NOW)


def test_replace_missing_key_enrolls_a_new_key_and_warns():
    plan = decide(declaration(key=None, replace_missing_key=True), view((record(3), OTHERS)), Files(), NOW)
    assert summary(plan) == dict(action='enrolled', reason='key_mismatch', enroll=True, key_plan='generate_in_place',
                                 superseded=['0000000000000003'], changed=False)
    assert 'replace_missing_key is set' in plan.warnings[0] and '0000000000000003' in plan.warnings[0]


@pytest.mark.parametrize('situation, decl_args, pairs', [
    ('no active certificate of the name: a first enrollment', dict(key=None), [(record(3, status='revoked'), OTHERS)]),
    ('the CSR form keeps its key elsewhere', dict(key=None, private_key_path=None, csr_content='x'), [(record(3), OTHERS)]),
])
def test_a_missing_key_is_enrolled_when_nothing_active_can_be_its(situation, decl_args, pairs):
    decl = declaration(**decl_args)
    if decl.csr_content:
        decl.csr = _crypto.load_csr(_csr_pem(), source='test')
    plan = decide(decl, view(*pairs), Files(), NOW)
    assert plan.enroll and not plan.warnings, situation


def _csr_pem():
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'Firma')])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(KEY, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode('ascii')


@pytest.mark.parametrize('renew_before_days, pairs, local, warned', [
    # record(...): KSeF's validity from 1 day ago to 700 days ahead, a lifetime of 701 days.
    (701, [(record(1), None)], MINE, True),
    (700, [(record(1), None)], MINE, False),
    (3650, [(record(1), None)], MINE, True),
    # Before KSeF lists one: the local certificate's lifetime (MINE: 1 day ago .. 700 days ahead).
    (701, [], MINE, True),
    (30, [], MINE, False),
    # Nothing known yet: nothing to compare with.
    (3650, [], None, False),
])
def test_renew_before_days_at_or_above_the_lifetime_warns_that_every_run_renews(renew_before_days, pairs, local, warned):
    plan = decide(declaration(local=local, renew_before_days=renew_before_days), view(*pairs), Files(), NOW)
    warnings = [warning for warning in plan.warnings if 'at or above its lifetime' in warning]
    assert bool(warnings) == warned
    if warned:
        assert 'renew_before_days %d is at or above its lifetime of 701 days' % renew_before_days in warnings[0]
        assert plan.enroll, 'due from its first day'


# -- what the mutation run of _decide.py showed untested ---------------------------------------------

def test_the_lifetime_ksef_lists_wins_over_the_local_certificate_for_the_every_run_warning():
    """KSeF can shorten a certificate: its validFrom..validTo (21 days here) is the lifetime that counts, not the
    701 days of the local file."""
    plan = decide(declaration(local=MINE, renew_before_days=30), view((record(1, days=20), None)), Files(), NOW)
    assert [warning for warning in plan.warnings if 'at or above its lifetime of 21 days' in warning]


def test_without_a_key_nothing_in_ksef_is_the_declared_certificate():
    """No key yet (a missing key replaced): no certificate KSeF holds is ours, even one whose key was not read."""
    plan = decide(declaration(key=None, replace_missing_key=True), view((record(1), None), (record(3), OTHERS)), Files(), NOW)
    assert plan.current_item is None and plan.action == 'enrolled' and plan.key_plan == 'generate_in_place'


def test_candidates_are_the_exact_name_and_type_newest_request_first():
    ksef = view((record(1, requested_days_ago=5), None), (record(2, requested_days_ago=1), None),
                (record(3, requested_days_ago=3), None), (record(4, name='erp-auth-2'), None),
                (record(5, certificate_type='offline'), None))
    assert [r.serial_number for r in ksef.candidates(declaration())] == [
        '0000000000000002', '0000000000000003', '0000000000000001']
    assert ksef.by_serial('0000000000000004').name == 'erp-auth-2' and ksef.by_serial('FFFF') is None


def test_absent_names_the_newest_active_match_as_current():
    ksef = view((record(1, requested_days_ago=5), MINE), (record(3, requested_days_ago=1), OTHERS))
    decision = decide(declaration(key=None, state='absent'), ksef, Files(), NOW)
    assert decision.current_item.serial_number == '0000000000000003' and decision.current_certificate is OTHERS


@pytest.mark.parametrize('record_args', [dict(name='erp-auth-old'), dict(certificate_type='offline')])
def test_a_local_certificate_listed_under_another_name_or_type_is_not_the_declared_one(record_args):
    # The same serial and key, but KSeF lists it under another name (or type): not proven by local files.
    decl = declaration(local=MINE)
    ksef = view((record(1, **record_args), MINE))
    assert wanted_serials(decl, ksef) == []   # no candidate of the exact name and type to retrieve
    decision = decide(decl, ksef, Files(), NOW)
    assert (decision.action, decision.reason, decision.enroll) == ('enrolled', 'missing', True)
    # the key backs a certificate (the local one): never enrolled again as it is
    assert decision.key_plan == 'generate_next'


def test_a_key_that_backs_only_the_local_certificate_is_not_reused():
    # KSeF lists no certificate of the key (revoked and gone), but the local certificate carries it.
    decision = decide(declaration(local=MINE), view(), Files(), NOW)
    assert (decision.reason, decision.key_plan) == ('missing', 'generate_next')


def test_a_local_certificate_of_another_key_leaves_the_declared_key_unused():
    decision = decide(declaration(local=OTHERS), view(), Files(), NOW)
    assert (decision.reason, decision.key_plan) == ('missing', 'reuse')
    decision = decide(declaration(key=None, local=OTHERS), view(), Files(), NOW)
    assert decision.key_plan == 'generate_in_place'


def test_a_key_known_to_ksef_without_a_local_certificate_is_not_reused():
    decision = decide(declaration(), view((record(1, status='revoked'), MINE)), Files(), NOW)
    assert (decision.reason, decision.key_plan, decision.superseded) == ('revoked', 'generate_next', [])


def test_the_csr_form_has_no_key_plan():
    decl = declaration(key=None)
    decl.csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'Firma')]))
                .sign(OTHER_KEY, hashes.SHA256()))
    decision = decide(decl, view((record(1), MINE)), Files(), NOW)
    assert (decision.reason, decision.enroll, decision.key_plan, decision.superseded) == (
        'key_mismatch', True, None, ['0000000000000001'])


def test_wait_deadline_is_the_one_computation_of_the_wait():
    assert wait_deadline(declaration(wait=True, wait_timeout=120), 1000.0) == 1120.0
    assert wait_deadline(declaration(wait=True, wait_timeout=None), 10.0) == 310.0, 'wait_timeout unset: 300 s'
    assert wait_deadline(declaration(wait=False, wait_timeout=120), 1000.0) is None


def test_a_decision_takes_only_its_own_fields():
    decl = declaration()
    assert Decision(decl, key_plan='reuse', enroll=True).key_plan == 'reuse'
    with pytest.raises(AttributeError, match='Decision has no field revoked'):
        Decision(decl, revoked=['A'])


def test_a_fresh_decision_decides_nothing():
    # Plan.carry_out takes the enrollment fields only when they are not None: the defaults must be None.
    fresh = Decision(declaration())
    assert (fresh.action, fresh.reason, fresh.changed, fresh.enroll, fresh.key_plan) == ('none', None, False, False, None)
    assert (fresh.current_item, fresh.current_certificate, fresh.install_certificate, fresh.install_item) == (None,) * 4
    assert (fresh.reference_number, fresh.issued_serial, fresh.issued_public_key_sha256, fresh.enroll_key_path,
            fresh.completion_action) == (None,) * 5
    assert (fresh.superseded, fresh.to_revoke, fresh.removed_files, fresh.warnings) == ([], [], [], [])
    assert fresh.discard_record is False


def test_a_serial_not_retrieved_has_no_public_key():
    assert view((record(1), MINE)).public_key_sha256('0000000000000009') is None


def test_an_intent_blocks_for_exactly_the_block_time():
    decl = declaration(record_=intent(0))
    at_edge = parse_datetime(decl.record['intent_time']) + datetime.timedelta(seconds=INTENT_BLOCK_SECONDS)
    assert not intent_may_expire(decl, at_edge)
    assert intent_may_expire(decl, at_edge + datetime.timedelta(microseconds=1))


def test_intent_candidates_are_new_and_unknown():
    decl = declaration(record_=intent(0, known_serials=['0000000000000004'], superseded=['0000000000000005']))
    edge = record(3)
    edge.request_date = parse_datetime(decl.record['intent_time']) - INTENT_CLOCK_SLACK
    ksef = view((record(2, requested_days_ago=1), None),                   # requested before the intent
                (edge, None),                                              # exactly at intent time - slack
                (record(4, requested_days_ago=0), None),                   # known before the POST
                (record(5, requested_days_ago=0), None),                   # superseded by it
                (record(6, requested_days_ago=0), None))
    assert sorted(intent_candidates(decl, ksef)) == ['0000000000000003', '0000000000000006']


def test_the_csr_form_retrieves_active_and_blocked_candidates_only():
    decl = declaration(key=None)
    decl.csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'Firma')]))
                .sign(OTHER_KEY, hashes.SHA256()))
    ksef = view((record(1), None), (record(2, status='blocked'), None), (record(3, status='revoked'), None),
                (record(4, status='expired'), None))
    assert sorted(wanted_serials(decl, ksef)) == ['0000000000000001', '0000000000000002']


def test_without_an_active_certificate_the_newest_request_of_the_key_is_current():
    older = certificate(KEY, 1)
    newer = certificate(KEY, 2)
    ksef = view((record(1, status='revoked', requested_days_ago=9), older),
                (record(2, status='revoked', requested_days_ago=2), newer),
                (record(3, status='revoked', requested_days_ago=5), certificate(KEY, 3)))
    decision = decide(declaration(), ksef, Files(), NOW)
    assert decision.current_item.serial_number == '0000000000000002' and decision.reason == 'revoked'


def test_a_certificate_ksef_lists_as_expired_is_renewed_even_before_its_valid_to():
    decision = decide(declaration(local=MINE), view((record(1, status='expired'), MINE)), Files(), NOW)
    assert (decision.reason, decision.enroll) == ('expired', True)


def test_the_install_check_gets_the_declaration_and_its_current_certificate():
    seen = []

    class Recording(Files):
        def need_install(self, decl, certificate):
            seen.append((decl, certificate))
            return False

    decl = declaration(local=MINE)
    decide(decl, view((record(1), MINE)), Recording(), NOW)
    assert seen == [(decl, MINE)]


def test_a_reconciled_intent_installs_with_the_recorded_key_and_fingerprint():
    decl = declaration(local=MINE, record_=intent(5))
    ksef = view((record(1), MINE), (record(3, requested_days_ago=0), OTHERS))
    decision = decide(decl, ksef, Files(), NOW, intent_candidates=['0000000000000003'])
    assert decision.changed is True and decision.enroll is False
    assert decision.enroll_key_path == '/k/erp.key.next'
    assert decision.issued_public_key_sha256 == _crypto.public_key_fingerprint(OTHER_KEY)


def test_an_expired_intent_says_why_a_new_enrollment_is_allowed():
    old = decide(declaration(local=MINE, record_=intent(61)), view((record(1), MINE)), Files(), NOW)
    assert 'the attempt is older than %d s' % INTENT_BLOCK_SECONDS in old.warnings[0]
    forced = decide(declaration(local=MINE, record_=intent(5), force=True), view((record(1), MINE)), Files(), NOW)
    assert 'force is set' in forced.warnings[0] and forced.reason == 'force'


# -- every message of the decision, word for word (the mutation run's survivors of decide.py) ----------------------

VALID_UNTIL = '2028-05-01'      # record(...): 700 days after NOW


def test_a_decision_names_the_field_it_does_not_have():
    with pytest.raises(AttributeError) as raised:
        Decision(declaration(), bogus=1)
    assert str(raised.value) == 'Decision has no field bogus'


def test_the_every_run_warning_word_for_word():
    plan = decide(declaration(local=MINE, renew_before_days=701), view((record(1), None)), Files(), NOW)
    assert plan.warnings == [
        'Certificate erp-auth/authentication: renew_before_days 701 is at or above its lifetime of 701 days, so it is due '
        'as soon as it is issued and every run renews it (one enrollment request each); choose fewer days (30 is the default)']


def test_the_missing_key_refusal_and_warning_word_for_word():
    actives = view((record(3), OTHERS), (record(4, requested_days_ago=2), None))
    with pytest.raises(KsefError) as raised:
        decide(declaration(key=None), actives, Files(), NOW)
    assert str(raised.value) == (
        'Certificate erp-auth/authentication: the private key /k/erp.key does not exist, but KSeF still lists active '
        '0000000000000003 (valid until %s), 0000000000000004 (valid until %s) of this name and type. If that key was lost '
        '(an AWX/AAP execution environment keeps no files between jobs), a new enrollment would replace it on every run '
        'and spend the enrollment quota. Keep the key directory on persistent storage and put the key back '
        '(docs/awx/README.md, "Keys kept on the controller"), or set replace_missing_key=true (role: '
        'ksef_deploy_replace_missing_keys) to enroll a replacement once. Nothing was sent' % (VALID_UNTIL, VALID_UNTIL))
    plan = decide(declaration(key=None, replace_missing_key=True), actives, Files(), NOW)
    assert plan.warnings == [
        'Certificate erp-auth/authentication: the private key /k/erp.key does not exist while KSeF lists active '
        '0000000000000003 (valid until %s), 0000000000000004 (valid until %s); replace_missing_key is set, so a new key '
        'is enrolled and the active ones are superseded' % (VALID_UNTIL, VALID_UNTIL)]


@pytest.mark.parametrize('decl_args', [
    dict(private_key_path=None),                     # no key file declared: nothing can have been lost
    dict(key_backend='pkcs11'),                      # the key lives in a token
])
def test_no_missing_key_refusal_without_a_key_file(decl_args):
    decl = declaration(key=None, **decl_args)
    plan = decide(decl, view((record(3), OTHERS)), Files(), NOW)
    assert (plan.reason, plan.enroll, plan.warnings) == ('key_mismatch', True, [])


def test_the_intent_messages_word_for_word():
    expired = decide(declaration(local=MINE, record_=intent(61)), view((record(1), MINE)), Files(), NOW)
    sent_at = intent(61)['intent_time']
    assert expired.warnings == [
        'No certificate of erp-auth/authentication with the public key of the enrollment attempted at %s appeared in '
        'KSeF; the attempt is older than 3600 s, a new enrollment is allowed' % sent_at]
    forced = decide(declaration(local=MINE, record_=intent(5), force=True), view((record(1), MINE)), Files(), NOW)
    assert forced.warnings == [
        'No certificate of erp-auth/authentication with the public key of the enrollment attempted at %s appeared in '
        'KSeF; force is set, a new enrollment is allowed' % intent(5)['intent_time']]
    with pytest.raises(KsefError) as raised:
        decide(declaration(local=MINE, record_=intent(5)), view((record(1), MINE)), Files(), NOW)
    assert str(raised.value) == (
        'KSeF may still be processing the enrollment of certificate erp-auth/authentication sent at %s (its answer was '
        'never recorded); no certificate with that name, type and public key exists yet. Rerun later, or set force to '
        'send a new enrollment. State file: /k/erp.key.ksef-pending.json' % intent(5)['intent_time'])
