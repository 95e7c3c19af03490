# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The enrollment scheduler alone: a scripted worker and scripted rate-limit slots on a fake clock."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefTransportError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.scheduler import (
    ENROLL_ENDPOINT,
    INITIAL_ISSUE_DELAY,
    STATUS_AFTER_SECONDS,
    EnrollmentScheduler,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock, FakeKsef


class Plan:
    def __init__(self, name, wait=60):
        self.name = name
        self.wait = wait
        self.reference_number = None
        self.status_code = None
        self.issued_serial = None
        self.finished = False
        self.deadline = None
        self.polled_at = None
        self.sent_clock = None
        self.action = 'enrolled'
        self.next_check = None
        self.last_check = None
        self.misses = 0
        self.by_status = False
        self.lost_answer = None


class Worker:
    """Sends at once; an enrollment is issued `issue_after` seconds after it was sent; `rejected` ones never are."""

    def __init__(self, clock, issue_after=3.0, rejected=(), failures=()):
        self.clock = clock
        self.issue_after = issue_after
        self.rejected = set(rejected)
        self.failures = list(failures)   # raised by the next looks (query or status), one each
        self.log = []

    def _fail(self):
        if self.failures:
            raise self.failures.pop(0)

    def _issued(self, plan):
        return plan.name not in self.rejected and self.clock() - plan.sent_clock >= self.issue_after

    def send(self, plan):
        self.log.append(('send', plan.name, self.clock()))
        plan.reference_number = 'REF-' + plan.name
        plan.status_code = 100
        plan.sent_clock = self.clock()
        plan.deadline = self.clock() + plan.wait

    def detect(self, plans, max_pages):
        self.log.append(('query', sorted(plan.name for plan in plans), self.clock()))
        self._fail()
        found = [plan for plan in plans if self._issued(plan)]
        for plan in found:
            plan.status_code = 200
            plan.issued_serial = 'SERIAL-' + plan.name
        return found

    def poll(self, plan):
        self.log.append(('poll', plan.name, self.clock()))
        self._fail()
        plan.polled_at = self.clock()
        if plan.name in self.rejected:
            plan.status_code = 400
        elif self._issued(plan):
            plan.status_code = 200
            plan.issued_serial = 'SERIAL-' + plan.name

    def finish(self, plans=None):
        self.log.append(('finish', [plan.name for plan in plans], self.clock()))
        for plan in plans:
            plan.finished = True

    def calls(self, kind):
        return [entry for entry in self.log if entry[0] == kind]


class Slots:
    """seconds_until_slot: `burst` enrollments, then a pause (a window): `pause` seconds, or the next of `pauses`.

    The scheduler's only call on the gateway is seconds_until_slot(). These tests script its answers in patterns
    (pauses of chosen lengths after each burst) that fake_ksef.FakeKsef's real pacing does not produce on demand,
    against the Worker above rather than a KSeF; the engine against FakeKsef is tested in test_enroll/test_rolling.
    """

    def __init__(self, clock, worker, burst=0, pause=0.0, pauses=None):
        self.clock = clock
        self.worker = worker
        self.burst = burst
        self.pause = pause
        self.pauses = pauses

    def seconds_until_slot(self, method, endpoint):
        sends = self.worker.calls('send')
        if (method, endpoint) != ENROLL_ENDPOINT or not self.burst or not sends or len(sends) % self.burst:
            return 0.0
        pause = self.pauses[len(sends) // self.burst - 1] if self.pauses else self.pause
        return max(sends[-1][2] + pause - self.clock(), 0.0)


def run(plans, worker, clock, slots=None, check_mode=False):
    scheduler = EnrollmentScheduler(slots or Slots(clock, worker), worker, clock=clock, sleep=clock.sleep,
                                    check_mode=check_mode)
    scheduler.send_all(plans, plans)
    scheduler.wait(plans)
    return scheduler


def test_one_enrollment_is_asked_for_by_reference_with_a_doubling_gap():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=7.0)
    plan = Plan('only')
    run([plan], worker, clock)
    assert plan.issued_serial == 'SERIAL-only' and plan.finished
    # first look after the assumed 1 s issuing delay, then 1, 2, 4 s later
    assert [entry[2] - 1000.0 for entry in worker.calls('poll')] == [1.0, 2.0, 4.0, 8.0]
    assert worker.calls('query') == []


def test_the_wait_ends_with_a_last_look_at_the_deadline_and_marks_pending():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=1000.0)
    plan = Plan('slow', wait=5)
    run([plan], worker, clock)
    assert plan.action == 'pending' and not plan.issued_serial
    assert [entry[2] - 1000.0 for entry in worker.calls('poll')] == [1.0, 2.0, 4.0, 5.0]


def test_many_enrollments_are_found_by_query_rounds_not_status_polls():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=3.0)
    plans = [Plan('p%02d' % n) for n in range(30)]
    scheduler = run(plans, worker, clock)
    assert all(plan.finished for plan in plans)
    assert worker.calls('poll') == []
    # looks at 1, 2 and 4 s after sending: the third round finds all thirty
    assert [entry[2] - 1000.0 for entry in worker.calls('query')] == [1.0, 2.0, 4.0]
    assert all(len(entry[1]) == 30 for entry in worker.calls('query')), 'one round looks for every waiting plan'
    assert [len(entry[1]) for entry in worker.calls('finish')] == [10, 10, 10]
    assert scheduler.observed_delay == 4.0


def test_the_observed_issuing_delay_times_the_first_look_at_the_next_group():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=5.0)
    plans = [Plan('p%02d' % n) for n in range(40)]
    # 20 enrollments, then a 60 s pause (a minute window), then 20 more
    scheduler = run(plans, worker, clock, slots=Slots(clock, worker, burst=20, pause=60.0))
    assert all(plan.finished for plan in plans) and worker.calls('poll') == []
    second_group_sent = worker.calls('send')[20][2]
    later = [entry for entry in worker.calls('query') if entry[2] > second_group_sent]
    # The first group was found 8 s after it was sent (looks at 1, 2, 4, 8): one round finds the second group.
    assert scheduler.observed_delay == 8.0
    assert [entry[2] - second_group_sent for entry in later] == [8.0]
    # Full batches were retrieved while the enrollment endpoint had no slot: before the second group was sent.
    assert [len(entry[1]) for entry in worker.calls('finish') if entry[2] < second_group_sent] == [10, 10]


def test_one_round_covers_a_burst_sent_over_a_few_seconds():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=5.0)
    plans = [Plan('p%02d' % n) for n in range(60)]
    # KSeF's published limits: 10 a second (a burst of 30 spans 2.5 s), 30 a minute
    scheduler = run(plans, worker, clock, slots=Slots(clock, worker, burst=10, pauses=[1.25, 1.25, 57.5, 1.25, 1.25]))
    assert all(plan.finished for plan in plans) and worker.calls('poll') == []
    sends = worker.calls('send')
    second = [entry for entry in worker.calls('query') if entry[2] > sends[30][2]]
    # The youngest enrollment found in the first group bounds the issuing delay: the second group's first
    # look comes that long after its first enrollment, or a little later for its youngest (GROUP_SECONDS)...
    assert 5.0 <= scheduler.observed_delay < 6.0
    # ...and that single round finds all thirty.
    assert len(second) == 1 and second[0][2] - sends[59][2] >= 5.0
    assert len(worker.calls('query')) <= 6


def test_enrollments_the_query_never_shows_are_asked_for_by_reference_once_late():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=2.0, rejected=['p03', 'p04'])
    plans = [Plan('p%02d' % n) for n in range(6)]
    run(plans, worker, clock)
    polls = worker.calls('poll')
    assert sorted(entry[1] for entry in polls) == ['p03', 'p04'], 'only the enrollments the query did not show'
    assert min(entry[2] for entry in polls) - 1000.0 >= STATUS_AFTER_SECONDS
    assert [plans[3].status_code, plans[4].status_code] == [400, 400]
    assert all(plan.finished for plan in plans if plan.name not in ('p03', 'p04'))


def test_the_last_enrollment_waited_for_is_asked_for_by_reference():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=2.0, rejected=['p03'])
    plans = [Plan('p%02d' % n) for n in range(5)]
    run(plans, worker, clock)
    # rounds at 1 s (nothing) and 2 s (all but p03); then a status poll costs what a query page costs and is exact
    assert [entry[2] - 1000.0 for entry in worker.calls('query')] == [1.0, 2.0]
    assert [entry[1] for entry in worker.calls('poll')] == ['p03'] and plans[3].status_code == 400


def test_enrollments_are_sent_once_each_in_order():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock, issue_after=INITIAL_ISSUE_DELAY)
    plans = [Plan('p%02d' % n) for n in range(25)]
    run(plans, worker, clock, slots=Slots(clock, worker, burst=10, pause=1.25))
    assert [entry[1] for entry in worker.calls('send')] == ['p%02d' % n for n in range(25)]
    finished = [name for entry in worker.calls('finish') for name in entry[1]]
    assert sorted(finished) == sorted(plan.name for plan in plans), 'each retrieved exactly once'


def test_ksef_unreachable_for_a_while_delays_the_next_look_and_the_run_goes_on():
    clock = FakeClock(start=1000.0)
    refused = KsefTransportError('POST', '/certificates/query', 'connection refused')
    gateway = KsefApiError('POST', '/certificates/query', 502, errors=[{'code': 502, 'description': 'Bad Gateway'}])
    worker = Worker(clock, issue_after=1.0, failures=[refused, gateway])
    plans = [Plan('a'), Plan('b')]
    warnings = []
    scheduler = EnrollmentScheduler(Slots(clock, worker), worker, clock=clock, sleep=clock.sleep, warn=warnings.append)
    scheduler.send_all(plans, plans)
    scheduler.wait(plans)
    assert all(plan.finished for plan in plans) and scheduler.failed_looks == 2
    assert [entry[2] - 1000.0 for entry in worker.calls('query')] == [1.0, 2.0, 4.0]
    assert len(warnings) == 1 and 'trying again later' in warnings[0]


def test_ksef_unreachable_until_the_deadline_leaves_the_enrollment_pending():
    clock = FakeClock(start=1000.0)
    refused = KsefTransportError('GET', '/certificates/enrollments/{referenceNumber}', 'connection refused')
    worker = Worker(clock, issue_after=1.0, failures=[refused] * 10)
    plan = Plan('only', wait=10)
    run([plan], worker, clock)
    assert plan.action == 'pending' and not plan.issued_serial and len(worker.calls('poll')) == 5


def test_a_refused_look_still_fails_the_run():
    clock = FakeClock(start=1000.0)
    bad = KsefApiError('POST', '/certificates/query', 400, errors=[{'code': 21405, 'description': 'Bad request'}])
    worker = Worker(clock, failures=[bad])
    with pytest.raises(KsefApiError):
        run([Plan('a'), Plan('b')], worker, clock)


def test_check_mode_sends_without_overlap_and_never_looks():
    clock = FakeClock(start=1000.0)
    worker = Worker(clock)
    plans = [Plan('a'), Plan('b')]
    run(plans, worker, clock, slots=Slots(clock, worker, burst=1, pause=10.0), check_mode=True)
    assert [entry[0] for entry in worker.log] == ['send', 'send'] and clock.sleeps == []


def test_a_gateway_with_a_free_slot_never_waits():
    clock = FakeClock(start=1000.0)
    scheduler = EnrollmentScheduler(FakeKsef(clock), Worker(clock), clock=clock, sleep=clock.sleep)
    assert scheduler.seconds_until_slot(ENROLL_ENDPOINT) == 0.0
