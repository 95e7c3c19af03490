# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_detect: issued certificates found by POST /certificates/query pages (the in-memory KSeF, and scripted HTTP)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import Decision, KsefView
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._engine.detect import (
    detect_issued,
    release_foreign_match,
    requested_after,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.enroll import Enroller
from ansible_collections.ksef.certificates.plugins.module_utils._engine.install import Installer
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import PendingStore, format_time, intent_record
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecord
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.test_api import make_api
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils._engine.test_enroll import Module
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import (
    ENROLLMENT_DATA,
    START,
    FakeClock,
    FakeKsef,
)

UTC = datetime.timezone.utc
MINUTE = datetime.timedelta(minutes=1)
SLACK = datetime.timedelta(minutes=10)
API_TYPE = {'authentication': 'Authentication', 'offline': 'Offline'}


def _csr(key=None):
    return x509.CertificateSigningRequestBuilder().subject_name(_crypto.build_subject(ENROLLMENT_DATA)).sign(
        key or ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())


def _issue(ksef, name, requested, cert_type='authentication'):
    """A certificate KSeF lists with this request date (another run's, or the one an enrollment created)."""
    return ksef.issue({'csr': _csr(), 'name': name, 'type': API_TYPE[cert_type], 'sent_at': requested})


def _plan(tmp_path, name, cert_type='authentication', intent=START, known=(), superseded=(), record=True, key_plan=None):
    """A plan waiting for its enrollment: the state file's record of an enrollment POSTed at `intent`."""
    decl = Declaration(dict(name=name, type=cert_type, state='present', private_key_type='ec',
                            private_key_path=str(tmp_path / (name + '.key')),
                            certificate_path=str(tmp_path / (name + '.pem')),
                            state_path=str(tmp_path / (name + '.key.ksef-pending.json')), wait=True))
    plan = Plan(decl, Decision(decl, action='enrolled', enroll=True, key_plan=key_plan))
    plan.reference_number = '20260301-EH-%s' % name
    plan.status_code = 100
    if record:
        decl.record = intent_record(name, cert_type, 'f' * 64, None, 'enrolled', list(superseded), intent, list(known))
        decl.record.update(phase='pending', reference_number=plan.reference_number)
    return plan


def _record(ksef, serial):
    return CertificateRecord.from_api(ksef.item(ksef.by_serial(serial)))


# -- requested_after -------------------------------------------------------------------------------

def test_requested_after_is_the_intent_time_minus_the_clock_slack():
    assert requested_after({'intent_time': format_time(START)}) == START - SLACK
    assert requested_after({'intent_time': '2026-03-01T12:00:00.000000Z'}) == START - SLACK
    assert requested_after({'intent_time': '2026-03-01T14:00:00+02:00'}) == START - SLACK


def test_requested_after_without_an_intent_time_excludes_nothing_by_date():
    earliest = datetime.datetime.min.replace(tzinfo=UTC)
    assert requested_after(None) == requested_after({}) == requested_after({'intent_time': None}) == earliest


# -- what a match is ---------------------------------------------------------------------------------

def test_only_the_exact_name_and_type_match_and_a_set_aside_serial_never_does(tmp_path):
    ksef = FakeKsef(FakeClock())
    plan = _plan(tmp_path, 'erp-auth')
    other_type = _plan(tmp_path, 'erp-offline', cert_type='offline')
    # The enrollment's own certificate is the oldest candidate: every decoy below is listed before it (newest
    # first), so a decoy that slipped through any one of the conditions would be taken instead.
    own = _issue(ksef, 'erp-auth', START + MINUTE)
    rejected = _issue(ksef, 'erp-auth', START + 2 * MINUTE)
    plan.rejected_serials.add(rejected)
    _issue(ksef, 'erp-auth-2', START + 3 * MINUTE)                  # the name only contains the declared one
    _issue(ksef, 'x-erp-auth', START + 4 * MINUTE)
    _issue(ksef, 'erp-auth', START + 6 * MINUTE, cert_type='offline')   # same name, the other type
    view = KsefView()
    plans = [plan, other_type]

    assert detect_issued(ksef, view, plans, plans, max_pages=5) == [plan]

    assert plan.issued_serial == own and plan.detected_by_query and plan.status_code == 200
    assert (other_type.issued_serial, other_type.detected_by_query, other_type.status_code) == (None, False, 100)
    assert [record.serial_number for record in view.records] == [own], 'only the match joins the view'
    # Two types waited for: no type filter; the names' common prefix as KSeF's contains-filter.
    assert ksef.calls[0][1]['name'] == 'erp-' and ksef.calls[0][1]['certificate_type'] is None


def test_a_certificate_known_before_the_post_is_not_the_enrollments(tmp_path):
    ksef = FakeKsef(FakeClock())
    # Both requested within the clock slack before the intent; the state file lists them as existing before.
    known = _issue(ksef, 'erp-auth', START - 2 * MINUTE)
    superseded = _issue(ksef, 'erp-auth', START - 3 * MINUTE)   # the certificate the enrollment renews
    plan = _plan(tmp_path, 'erp-auth', known=[known], superseded=[superseded])
    assert detect_issued(ksef, KsefView(), [plan], [plan], max_pages=5) == [] and plan.issued_serial is None
    own = _issue(ksef, 'erp-auth', START + MINUTE)
    assert detect_issued(ksef, KsefView(), [plan], [plan], max_pages=5) == [plan] and plan.issued_serial == own


def test_a_plan_takes_the_newest_of_two_candidates_and_is_found_once(tmp_path):
    ksef = FakeKsef(FakeClock())
    _issue(ksef, 'erp-auth', START + MINUTE)
    newest = _issue(ksef, 'erp-auth', START + 2 * MINUTE)
    plan = _plan(tmp_path, 'erp-auth')
    view = KsefView()
    assert detect_issued(ksef, view, [plan], [plan], max_pages=5) == [plan]
    assert plan.issued_serial == newest and [record.serial_number for record in view.records] == [newest]


def test_a_certificate_requested_before_the_intent_minus_the_slack_is_not_the_enrollments(tmp_path):
    ksef = FakeKsef(FakeClock())
    plan = _plan(tmp_path, 'erp-auth')
    _issue(ksef, 'erp-auth', START - SLACK - datetime.timedelta(seconds=1))
    assert detect_issued(ksef, KsefView(), [plan], [plan], max_pages=5) == []
    assert plan.issued_serial is None and not plan.detected_by_query and plan.status_code == 100
    # KSeF's clock may be up to the slack behind ours: a request date exactly the slack before the intent counts.
    at_the_edge = _issue(ksef, 'erp-auth', START - SLACK)
    assert detect_issued(ksef, KsefView(), [plan], [plan], max_pages=5) == [plan]
    assert plan.issued_serial == at_the_edge
    assert (ksef.calls[-1][1]['name'], ksef.calls[-1][1]['certificate_type']) == ('erp-auth', 'authentication')


def test_each_plan_is_matched_by_its_own_intent_time(tmp_path):
    ksef = FakeKsef(FakeClock())
    early = _plan(tmp_path, 'fleet-a', intent=START)
    late = _plan(tmp_path, 'fleet-b', intent=START + datetime.timedelta(hours=1))
    # fleet-b's name, requested between the two intents: after fleet-a's, but too early for fleet-b's.
    _issue(ksef, 'fleet-b', START + 5 * MINUTE)
    plans = [early, late]
    assert detect_issued(ksef, KsefView(), plans, plans, max_pages=5) == []
    assert late.issued_serial is None


def test_a_serial_another_plan_of_the_run_holds_is_not_matched_again(tmp_path):
    ksef = FakeKsef(FakeClock())
    first = _issue(ksef, 'erp-auth', START + MINUTE)
    second = _issue(ksef, 'erp-auth', START + 2 * MINUTE)
    holder = _plan(tmp_path, 'erp-auth')
    holder.issued_serial = second        # found by an earlier round, not retrieved yet
    waiting = _plan(tmp_path, 'erp-auth')
    assert detect_issued(ksef, KsefView(), [holder, waiting], [holder, waiting], max_pages=5) == [waiting]
    assert waiting.issued_serial == first and holder.issued_serial == second


def test_nothing_to_look_for_costs_no_call(tmp_path):
    ksef = FakeKsef(FakeClock())
    _issue(ksef, 'erp-auth', START + MINUTE)
    found = _plan(tmp_path, 'erp-auth')
    found.issued_serial = 'ABCDEF0123456789'
    unrecorded = _plan(tmp_path, 'erp-other', record=False)     # no state file record: nothing was sent
    plans = [found, unrecorded]
    assert detect_issued(ksef, KsefView(), plans, plans, max_pages=5) == [] and ksef.calls == []
    assert found.issued_serial == 'ABCDEF0123456789' and unrecorded.issued_serial is None


# -- several plans, pages ------------------------------------------------------------------------

def test_several_plans_are_found_in_one_page_each_with_its_own_certificate(tmp_path):
    ksef = FakeKsef(FakeClock(), page_size=50)
    plans = [_plan(tmp_path, name) for name in ('fleet-a', 'fleet-b', 'fleet-c')]
    serial_c = _issue(ksef, 'fleet-c', START + MINUTE)
    _issue(ksef, 'fleet-x', START + 2 * MINUTE)
    serial_a = _issue(ksef, 'fleet-a', START + 3 * MINUTE)
    serial_b = _issue(ksef, 'fleet-b', START + 4 * MINUTE)
    view = KsefView([_record(ksef, serial_a)])       # already listed by the run's first query
    found = detect_issued(ksef, view, plans, plans, max_pages=5)
    assert found == [plans[1], plans[0], plans[2]], 'in the order the page lists them, newest first'
    assert [plan.issued_serial for plan in plans] == [serial_a, serial_b, serial_c]
    assert all(plan.detected_by_query and plan.status_code == 200 for plan in plans)
    assert ksef.names() == ['query'] and ksef.calls[0][1]['name'] == 'fleet-'
    assert ksef.calls[0][1]['certificate_type'] == 'authentication', 'one type waited for: filtered by it'
    assert sorted(record.serial_number for record in view.records) == sorted([serial_a, serial_b, serial_c])


def test_paging_stops_at_max_pages(tmp_path):
    ksef = FakeKsef(FakeClock(), page_size=2)
    plan = _plan(tmp_path, 'fleet-a')
    own = _issue(ksef, 'fleet-a', START + MINUTE)
    for index in range(4):             # listed by the name filter 'fleet-a', requested after it: pages 1 and 2
        _issue(ksef, 'fleet-a-%d' % index, START + (2 + index) * MINUTE)
    assert detect_issued(ksef, KsefView(), [plan], [plan], max_pages=2) == []
    assert ksef.names() == ['query', 'query'] and plan.issued_serial is None
    del ksef.calls[:]
    assert detect_issued(ksef, KsefView(), [plan], [plan], max_pages=3) == [plan]
    assert ksef.names() == ['query'] * 3 and plan.issued_serial == own


def test_paging_stops_when_every_plan_is_found(tmp_path):
    ksef = FakeKsef(FakeClock(), page_size=2)
    plans = [_plan(tmp_path, 'fleet-a'), _plan(tmp_path, 'fleet-b')]
    for index in range(6):             # requested after the intents too, so only the finds end the round
        _issue(ksef, 'fleet-x%d' % index, START + datetime.timedelta(seconds=index + 1))
    _issue(ksef, 'fleet-a', START + MINUTE)
    _issue(ksef, 'fleet-b', START + 2 * MINUTE)
    assert detect_issued(ksef, KsefView(), plans, plans, max_pages=10) == [plans[1], plans[0]]
    assert ksef.names() == ['query']


def test_paging_stops_at_a_page_reaching_before_the_oldest_intent(tmp_path):
    ksef = FakeKsef(FakeClock(), page_size=2)
    early = _plan(tmp_path, 'fleet-a', intent=START)
    late = _plan(tmp_path, 'fleet-b', intent=START + datetime.timedelta(hours=1))
    for index in range(6):             # a day old
        _issue(ksef, 'fleet-old%d' % index, START - datetime.timedelta(days=1, minutes=index))
    _issue(ksef, 'fleet-x1', START + 20 * MINUTE)
    _issue(ksef, 'fleet-x2', START + 30 * MINUTE)
    serial_b = _issue(ksef, 'fleet-b', START + 61 * MINUTE)
    # Pages: [fleet-b, x2] [x1, old0] [old1, old2] ... Page 1 ends before fleet-b's intent but after fleet-a's
    # (the oldest), so page 2 is read; it reaches the day-old certificates, so page 3 is not.
    plans = [early, late]
    assert detect_issued(ksef, KsefView(), plans, plans, max_pages=10) == [late]
    assert late.issued_serial == serial_b and early.issued_serial is None
    assert ksef.names() == ['query', 'query']


def _page(offset, items, has_more):
    return Exchange('POST', '/certificates/query', json={'name': 'fleet-', 'type': 'Authentication'},
                    params={'pageSize': 50, 'pageOffset': offset}, reply={'certificates': items, 'hasMore': has_more})


def test_over_http_a_round_filters_by_prefix_and_type_and_requests_no_page_beyond_max_pages(tmp_path):
    ksef = FakeKsef(FakeClock())       # only makes the list items
    plans = [_plan(tmp_path, 'fleet-a'), _plan(tmp_path, 'fleet-b')]
    own = _issue(ksef, 'fleet-a', START + MINUTE)
    foreign = [_issue(ksef, 'fleet-x%d' % index, START + (2 + index) * MINUTE) for index in range(3)]

    def item(serial):
        return ksef.item(ksef.by_serial(serial))

    # KSeF says there is more after page 2: reading on is the round's choice, and max_pages ends it.
    script = HttpScript([_page(0, [item(foreign[2]), item(foreign[1])], True),
                         _page(1, [item(foreign[0]), item(own)], True)])
    view = KsefView()
    assert detect_issued(make_api(script), view, plans, plans, max_pages=2) == [plans[0]]
    script.verify()
    assert plans[0].issued_serial == own and plans[1].issued_serial is None
    assert [record.serial_number for record in view.records] == [own]


# -- a match without the enrolled key --------------------------------------------------------------

def test_release_foreign_match_warns_and_asks_for_the_enrollment_by_reference(tmp_path):
    module = Module()
    plan = _plan(tmp_path, 'erp-auth')
    plan.issued_serial, plan.detected_by_query, plan.status_code = '1A00000000000007', True, 200
    plan.rejected_serials.add('1A00000000000003')
    release_foreign_match(module, plan, 1234.5)
    assert len(module.warnings) == 1
    warning = module.warnings[0]
    assert '1A00000000000007' in warning and 'erp-auth/authentication' in warning and plan.reference_number in warning
    assert 'does not carry the public key' in warning
    assert plan.rejected_serials == {'1A00000000000003', '1A00000000000007'}
    assert (plan.issued_serial, plan.detected_by_query, plan.status_code) == (None, False, 100)
    assert plan.by_status and plan.next_check == 1234.5
    assert plan.reference_number == '20260301-EH-erp-auth', 'the reference it will be asked for by'


def test_a_match_with_another_key_is_set_aside_not_installed_and_found_by_reference(tmp_path):
    clock = FakeClock()
    ksef = FakeKsef(clock, processing_seconds=5)
    module = Module()
    enroller = Enroller(module, ksef, KsefView(), Installer(module), clock.now, clock=clock.monotonic)
    enroller.enrollment_data = dict(ENROLLMENT_DATA)
    plan = _plan(tmp_path, 'erp-auth', record=False, key_plan='generate_in_place')
    plan.decl.store = PendingStore(module, plan.decl.state_path)
    enroller.plans = [plan]
    enroller.send(plan)
    reference = plan.reference_number
    clock.advance(seconds=1)
    # Another run enrolled the same name and type after this one's intent, with its own key.
    foreign = _issue(ksef, 'erp-auth', clock.now())
    assert enroller.detect([plan], max_pages=5) == [plan] and plan.issued_serial == foreign

    enroller.finish([plan])
    assert not plan.finished
    assert not (tmp_path / 'erp-auth.pem').exists(), 'the foreign certificate is not installed'
    assert plan.issued_serial is None and plan.by_status and plan.status_code == 100
    assert plan.reference_number == reference and 'does not carry the public key' in module.warnings[-1]
    # The next round does not take the same foreign certificate again.
    assert enroller.detect([plan], max_pages=5) == [] and plan.issued_serial is None

    clock.advance(seconds=5)
    del ksef.calls[:]
    enroller.poll(plan)
    assert ksef.calls[0][0] == 'enrollment_status' and ksef.calls[0][1]['reference'] == reference
    assert plan.issued_serial not in (None, foreign)
    enroller.finish([plan])
    assert plan.finished and (tmp_path / 'erp-auth.pem').exists()
    installed = x509.load_pem_x509_certificate((tmp_path / 'erp-auth.pem').read_bytes())
    assert _crypto.serial_hex(installed) == plan.issued_serial
    assert _crypto.public_key_fingerprint(installed.public_key()) == plan.issued_public_key_sha256
