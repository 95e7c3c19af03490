# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The enroller alone, against the in-memory KSeF of the module tests."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto

from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import Decision, KsefView
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._engine.enroll import Enroller
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.install import Installer
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import PendingStore
from ansible_collections.ksef.certificates.plugins.module_utils._records import EnrollmentStatus
from ansible_collections.ksef.certificates.plugins.module_utils._engine.scheduler import EnrollmentScheduler
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils._engine.test_install import FileModule
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import (
    ENROLLMENT_DATA,
    FakeClock,
    FakeKsef,
)


class Module(FileModule):
    def __init__(self):
        super(Module, self).__init__()
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


@pytest.fixture
def setup(tmp_path):
    clock = FakeClock()
    ksef = FakeKsef(clock)
    module = Module()
    decl = Declaration(dict(name='erp-auth', type='authentication', state='present', private_key_type='ec',
                            private_key_path=str(tmp_path / 'erp.key'), certificate_path=str(tmp_path / 'erp.pem'),
                            state_path=str(tmp_path / 'erp.key.ksef-pending.json'), wait=True, revoke_superseded=True))
    decl.store = PendingStore(module, decl.state_path)
    plan = Plan(decl, Decision(decl, action='enrolled', key_plan='generate_in_place', enroll=True))
    enroller = Enroller(module, ksef, KsefView(), Installer(module), clock.now, clock=clock.monotonic)
    enroller.enrollment_data = dict(ENROLLMENT_DATA)
    enroller.plans = [plan]
    return clock, ksef, module, plan, enroller


def send_all(clock, ksef, enroller, plans):
    """Send through the scheduler, whose loop also looks for the certificate of an answer that was lost."""
    EnrollmentScheduler(ksef, enroller, clock=clock.monotonic, sleep=clock.sleep).send_all(plans, plans)


def state(plan):
    with open(plan.decl.state_path) as handle:
        return json.load(handle)


def test_send_records_the_reference_then_finish_installs(setup):
    clock, ksef, dummy_module, plan, enroller = setup
    enroller.send(plan)
    assert state(plan)['phase'] == 'pending' and state(plan)['reference_number'] == plan.reference_number
    assert plan.status_code == 100 and plan.deadline == clock.monotonic() + 300
    enroller.poll(plan)
    assert plan.issued_serial
    enroller.view.records = ksef.certificate_records()
    enroller.finish()
    assert plan.finished and plan.changed and plan.install_item.serial_number == plan.issued_serial
    assert ksef.names() == ['enroll', 'enrollment_status', 'query', 'retrieve']


def test_refused_enrollment_forgets_the_intent_and_the_key_made_for_it(setup, tmp_path):
    dummy_clock, ksef, dummy_module, plan, enroller = setup
    ksef.enroll_error = KsefApiError('POST', '/certificates/enrollments', 400,
                                     errors=[{'code': 25001, 'description': 'Bad CSR'}])
    with pytest.raises(KsefApiError):
        enroller.send(plan)
    assert not (tmp_path / 'erp.key.ksef-pending.json').exists()


def test_lost_answer_is_reconciled_by_public_key_never_resent(setup):
    clock, ksef, dummy_module, plan, enroller = setup
    ksef.lose_enroll_response = KsefApiError('POST', '/certificates/enrollments', 502,
                                             errors=[{'code': 502, 'description': 'Bad Gateway'}])
    send_all(clock, ksef, enroller, [plan])
    assert (plan.action, plan.reason) == ('installed', 'reconciled') and plan.issued_serial
    assert ksef.count('enroll') == 1 and state(plan)['phase'] == 'intent'


def test_a_lost_answer_that_never_shows_costs_few_queries_and_never_resends(setup):
    """Reconciling queries 5, 10, 20, 40, 60, 60 ... s apart until wait_timeout (300 s), not every 5 s."""
    clock, ksef, dummy_module, plan, enroller = setup
    ksef.processing_seconds = 10000
    plan.decl.wait_timeout = 300
    ksef.lose_enroll_response = KsefApiError('POST', '/certificates/enrollments', 503,
                                             errors=[{'code': 503, 'description': 'Service Unavailable'}])
    started = clock.monotonic()
    with pytest.raises(KsefError, match='KSeF may still be processing'):
        send_all(clock, ksef, enroller, [plan])
    # Queries at 0, 5, 15, 35, 75, 135, 195, 255 and 300 s (the last one at the deadline).
    assert ksef.count('query') == 9
    assert clock.monotonic() - started == 300
    assert ksef.count('enroll') == 1 and state(plan)['phase'] == 'intent'


def test_given_up_status_discards_the_record_and_warns(setup):
    dummy_clock, dummy_ksef, module, plan, enroller = setup
    enroller.send(plan)
    enroller.statuses.apply(plan, EnrollmentStatus(550, description='Cancelled'))
    assert plan.reference_number is None and plan.decl.record is None
    assert 'a new enrollment will be sent' in module.warnings[0]


def test_rejected_status_clears_the_state_and_fails(setup):
    dummy_clock, dummy_ksef, dummy_module, plan, enroller = setup
    enroller.send(plan)
    with pytest.raises(KsefError, match='KSeF rejected enrollment .* KSeF status 400: Bad'):
        enroller.statuses.apply(plan, EnrollmentStatus(400, description='Bad'))
    assert plan.decl.record is None


def test_revoke_sorts_revoked_from_unknown(setup):
    dummy_clock, ksef, dummy_module, plan, enroller = setup
    serial = ksef.add_certificate('erp-auth', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    enroller.revoker.revoke(plan, serial, 'superseded')
    assert plan.revoked == [serial] and ksef.revocations() == [(serial, 'Superseded')]


# -- detection by query pages ---------------------------------------------------------------------

def _plans(tmp_path, module, names):
    plans = []
    for name in names:
        decl = Declaration(dict(name=name, type='authentication', state='present', private_key_type='ec',
                                private_key_path=str(tmp_path / (name + '.key')),
                                certificate_path=str(tmp_path / (name + '.pem')),
                                state_path=str(tmp_path / (name + '.key.ksef-pending.json')), wait=True,
                                revoke_superseded=True))
        decl.store = PendingStore(module, decl.state_path)
        plan = Plan(decl, Decision(decl, action='enrolled', key_plan='generate_in_place', enroll=True))
        plans.append(plan)
    return plans


@pytest.fixture
def fleet(tmp_path):
    clock = FakeClock()
    ksef = FakeKsef(clock, processing_seconds=5, page_size=2)
    module = Module()
    enroller = Enroller(module, ksef, KsefView(), Installer(module), clock.now, clock=clock.monotonic)
    enroller.enrollment_data = dict(ENROLLMENT_DATA)
    return clock, ksef, module, enroller


def test_detect_finds_issued_enrollments_on_the_newest_page_without_status_calls(fleet, tmp_path):
    clock, ksef, dummy_module, enroller = fleet
    for index in range(6):   # older certificates of the same names' prefix, requested the day before
        ksef.add_certificate('fleet-old-%d' % index, 'authentication', ec.generate_private_key(ec.SECP256R1()))
    plans = enroller.plans = _plans(tmp_path, enroller.module, ['fleet-a', 'fleet-b'])
    for plan in plans:
        enroller.send(plan)
    assert enroller.detect(plans, max_pages=5) == [], 'not issued yet'
    clock.advance(seconds=6)
    del ksef.calls[:]
    assert enroller.detect(plans, max_pages=5) == plans
    # The two newest certificates are the two enrolled: one page of 2, no status call, the names' common prefix
    assert ksef.names() == ['query'] and ksef.calls[0][1]['name'] == 'fleet-'
    assert all(plan.detected_by_query and plan.status_code == 200 for plan in plans)
    enroller.finish()
    assert all(plan.finished for plan in plans)
    assert [name for name in ksef.names() if name != 'query'] == ['retrieve']


def test_detect_stops_at_certificates_requested_before_the_enrollments(fleet, tmp_path):
    clock, ksef, dummy_module, enroller = fleet
    for index in range(6):
        ksef.add_certificate('fleet-old-%d' % index, 'authentication', ec.generate_private_key(ec.SECP256R1()))
    plans = enroller.plans = _plans(tmp_path, enroller.module, ['fleet-a', 'fleet-b'])
    for plan in plans:
        enroller.send(plan)
    del ksef.calls[:]
    # Not issued: the first page already reaches the day-old certificates (older than the intent minus the slack).
    assert enroller.detect(plans, max_pages=5) == [] and ksef.names() == ['query']


def test_detect_reads_at_most_max_pages(fleet, tmp_path):
    clock, ksef, dummy_module, enroller = fleet
    plans = enroller.plans = _plans(tmp_path, enroller.module, ['fleet-a', 'fleet-b'])
    for plan in plans:
        enroller.send(plan)
    for index in range(6):   # someone else's certificates requested after ours were sent, listed first
        ksef.issue({'csr': _csr(), 'name': 'fleet-x%d' % index, 'type': 'Authentication', 'sent_at': clock.now()})
    del ksef.calls[:]
    assert enroller.detect(plans, max_pages=2) == [] and ksef.names() == ['query', 'query']


def test_a_query_match_without_the_enrolled_key_is_asked_for_by_reference(fleet, tmp_path):
    clock, ksef, module, enroller = fleet
    plans = enroller.plans = _plans(tmp_path, enroller.module, ['erp-auth', 'erp-other'])
    for plan in plans:
        enroller.send(plan)
    # Another run enrolled the same name after this one's intent: same name and type, another key.
    foreign = ksef.issue({'csr': _csr(), 'name': 'erp-auth', 'type': 'Authentication', 'sent_at': clock.now()})
    assert plans[0] in enroller.detect(plans, max_pages=5) and plans[0].issued_serial == foreign
    enroller.finish([plans[0]])
    assert not plans[0].finished and plans[0].issued_serial is None and plans[0].by_status
    assert plans[0].rejected_serials == {foreign} and 'does not carry the public key' in module.warnings[-1]
    assert not (tmp_path / 'erp-auth.pem').exists() and state(plans[0])['phase'] == 'pending'
    clock.advance(seconds=6)
    enroller.detect(plans, max_pages=5)
    assert plans[0].issued_serial not in (None, foreign)
    enroller.finish()
    assert all(plan.finished for plan in plans) and (tmp_path / 'erp-auth.pem').exists()


def _csr():
    return x509.CertificateSigningRequestBuilder().subject_name(_crypto.build_subject(ENROLLMENT_DATA)).sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
