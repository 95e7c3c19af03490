# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The enrollment scheduler alone: a scripted worker and scripted rate-limit slots on a fake clock."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ksef.certificates.plugins.module_utils._scheduler import (
    ENROLL_ENDPOINT,
    POLL_INTERVAL,
    EnrollmentScheduler,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import FakeClock


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


class Worker:
    """Sends at once; an enrollment is issued `issue_after` seconds after it was sent."""

    def __init__(self, clock, issue_after=3.0):
        self.clock = clock
        self.issue_after = issue_after
        self.log = []

    def send(self, plan):
        self.log.append(('send', plan.name, self.clock()))
        plan.reference_number = 'REF-' + plan.name
        plan.status_code = 100
        plan.sent_clock = self.clock()
        plan.deadline = self.clock() + plan.wait

    def poll(self, plan):
        self.log.append(('poll', plan.name, self.clock()))
        plan.polled_at = self.clock()
        if self.clock() - plan.sent_clock >= self.issue_after:
            plan.status_code = 200
            plan.issued_serial = 'SERIAL-' + plan.name

    def finish(self, plans=None):
        self.log.append(('finish', [plan.name for plan in plans], self.clock()))
        for plan in plans:
            plan.finished = True

    def calls(self, kind):
        return [entry for entry in self.log if entry[0] == kind]


class Slots:
    """seconds_until_slot: one enrollment per `enroll_every` seconds after the worker's last send; others are free."""

    def __init__(self, clock, worker, enroll_every=0.0):
        self.clock = clock
        self.worker = worker
        self.enroll_every = enroll_every

    def seconds_until_slot(self, method, endpoint):
        sends = self.worker.calls('send')
        if (method, endpoint) != ENROLL_ENDPOINT or not self.enroll_every or not sends:
            return 0.0
        return max(sends[-1][2] + self.enroll_every - self.clock(), 0.0)


def test_without_rate_pressure_everything_is_sent_first_then_polled():
    clock = FakeClock()
    worker = Worker(clock)
    plans = [Plan('a'), Plan('b'), Plan('c')]
    scheduler = EnrollmentScheduler(Slots(clock, worker), worker, clock=clock, sleep=clock.sleep)
    scheduler.send_all(plans, plans)
    assert [entry[0] for entry in worker.log] == ['send', 'send', 'send']
    scheduler.wait(plans)
    assert all(plan.issued_serial for plan in plans)
    polls = worker.calls('poll')
    assert all(later[2] - earlier[2] in (0, POLL_INTERVAL) for earlier, later in zip(polls, polls[1:]))


def test_under_rate_pressure_waits_for_the_enrollment_slot_are_used_to_poll_and_finish():
    clock = FakeClock()
    worker = Worker(clock, issue_after=3.0)
    plans = [Plan(str(n)) for n in range(4)]
    scheduler = EnrollmentScheduler(Slots(clock, worker, enroll_every=10.0), worker, clock=clock, sleep=clock.sleep)
    scheduler.send_all(plans, plans)
    sends = worker.calls('send')
    assert [entry[1] for entry in sends] == ['0', '1', '2', '3'], 'each once, in order'
    assert [later[2] - earlier[2] >= 10.0 for earlier, later in zip(sends, sends[1:])] == [True] * 3
    first_poll = worker.calls('poll')[0]
    assert first_poll[1] == '0' and sends[0][2] < first_poll[2] < sends[1][2], 'polled while waiting for a slot'
    finished_early = [entry for entry in worker.calls('finish') if entry[2] < sends[-1][2]]
    assert finished_early, 'issued certificates are retrieved before the last enrollment is sent'


def test_wait_ends_at_the_deadline_and_marks_pending():
    clock = FakeClock()
    worker = Worker(clock, issue_after=1000.0)
    plan = Plan('slow', wait=5)
    scheduler = EnrollmentScheduler(Slots(clock, worker), worker, clock=clock, sleep=clock.sleep)
    scheduler.send_all([plan], [plan])
    scheduler.wait([plan])
    assert plan.action == 'pending' and not plan.issued_serial
    # every 2 s from the send; the poll at 6 s is the first after the deadline (5 s) and the last one
    assert [entry[2] - 1000.0 for entry in worker.calls('poll')] == [0.0, 2.0, 4.0, 6.0]


def test_check_mode_sends_without_overlap_and_never_polls():
    clock = FakeClock()
    worker = Worker(clock)
    plans = [Plan('a'), Plan('b')]
    scheduler = EnrollmentScheduler(Slots(clock, worker, enroll_every=10.0), worker, clock=clock, sleep=clock.sleep,
                                    check_mode=True)
    scheduler.send_all(plans, plans)
    scheduler.wait(plans)
    assert [entry[0] for entry in worker.log] == ['send', 'send'] and clock.sleeps == []


def test_an_api_without_slot_probe_never_waits():
    clock = FakeClock()
    scheduler = EnrollmentScheduler(object(), Worker(clock), clock=clock, sleep=clock.sleep)
    assert scheduler.seconds_until_slot(ENROLL_ENDPOINT) == 0.0
