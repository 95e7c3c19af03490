# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""When the enrollment phase sends, polls and retrieves: the call budget of ksef_certificate.

The scheduler decides the order and the waiting; a worker (_enroll.Enroller) does each call:

    worker.send(plan)      POST /certificates/enrollments for one planned enrollment (exactly once)
    worker.poll(plan)      GET /certificates/enrollments/{referenceNumber} for one waiting enrollment
    worker.finish(plans)   POST /certificates/retrieve for issued ones, then install (and revoke superseded)

Plans carry the state the scheduler reads: reference_number, status_code (100 while processing),
issued_serial, finished, deadline / polled_at / sent_clock (controller clock seconds).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.ksef.certificates.plugins.module_utils._api import (
    ENROLL_ENDPOINT,
    RETRIEVE_CHUNK as RETRIEVE_BATCH,
    RETRIEVE_ENDPOINT,
    STATUS_ENDPOINT,
)

POLL_INTERVAL = 2
# Shortest sleep of the enrollment phase (guards against spinning on rounding at a window edge).
MIN_OVERLAP_SLEEP = 0.01


class EnrollmentScheduler:
    """Sends every planned enrollment once, in order, and waits for them, using rate-limit waits for other work."""

    def __init__(self, api, worker, clock=time.monotonic, sleep=time.sleep, check_mode=False):
        self.api = api
        self.worker = worker
        self.clock = clock
        self.sleep = sleep
        self.check_mode = check_mode

    def send_all(self, plans, enrolling):
        """Send every planned enrollment, each exactly once, in order.

        While the enrollment endpoint has no free rate-limit slot (KsefApi.seconds_until_slot), the time
        is used for the enrollments already sent: their status endpoint and the retrieve endpoint have
        counters of their own. Check mode sends nothing and so has nothing to overlap.
        """
        for index, plan in enumerate(enrolling):
            if index and not self.check_mode:
                self._overlap_until_enroll_slot(plans)
            self.worker.send(plan)

    def wait(self, plans):
        """Poll every waiting enrollment every POLL_INTERVAL seconds until it is done or its wait_timeout ends."""
        waiting = [plan for plan in plans if plan.reference_number and plan.status_code == 100 and
                   plan.deadline is not None and not plan.issued_serial]
        if self.check_mode:
            return
        while waiting:
            for plan in list(waiting):
                if plan.polled_at is not None and self.clock() - plan.polled_at < POLL_INTERVAL:
                    continue
                self.worker.poll(plan)
                if plan.status_code != 100:
                    waiting.remove(plan)
                elif self.clock() >= plan.deadline:
                    waiting.remove(plan)
            if waiting:
                self.sleep(POLL_INTERVAL)
        for plan in plans:
            if plan.reference_number and plan.status_code == 100 and not plan.issued_serial:
                plan.action = 'pending'

    # -- overlap -------------------------------------------------------------------------------

    def seconds_until_slot(self, endpoint):
        probe = getattr(self.api, 'seconds_until_slot', None)
        if probe is None:
            return 0.0
        return probe(*endpoint)

    def _waiting(self, plans):
        """Enrollments being waited for whose wait has not run out (resumed ones included)."""
        now = self.clock()
        return [plan for plan in plans if plan.reference_number and plan.status_code == 100 and
                not plan.issued_serial and plan.deadline is not None and now < plan.deadline]

    def _poll_due_in(self, plan):
        """Seconds until the plan's next poll (POLL_INTERVAL after the last poll, or after sending)."""
        last = plan.polled_at if plan.polled_at is not None else plan.sent_clock
        if last is None:
            return 0.0
        return last + POLL_INTERVAL - self.clock()

    @staticmethod
    def _retrieve_ready(issued, waiting):
        """Retrieve a full batch, or whatever is issued once nothing else is being waited for."""
        return bool(issued) and (len(issued) >= RETRIEVE_BATCH or not waiting)

    def _overlap_until_enroll_slot(self, plans):
        """Poll, retrieve and install what was already sent until the enrollment endpoint has a free slot."""
        while True:
            enroll_wait = self.seconds_until_slot(ENROLL_ENDPOINT)
            if enroll_wait <= 0:
                return
            waiting = self._waiting(plans)
            issued = [plan for plan in plans if plan.issued_serial and not plan.finished]
            next_event = enroll_wait
            if self._retrieve_ready(issued, waiting):
                retrieve_wait = self.seconds_until_slot(RETRIEVE_ENDPOINT)
                if retrieve_wait <= 0:
                    self.worker.finish(issued[:RETRIEVE_BATCH])
                    continue
                next_event = min(next_event, retrieve_wait)
            if waiting:
                status_wait = self.seconds_until_slot(STATUS_ENDPOINT)
                due = min(waiting, key=self._poll_due_in)
                due_in = self._poll_due_in(due)
                if due_in <= 0 and status_wait <= 0:
                    self.worker.poll(due)
                    continue
                next_event = min(next_event, max(due_in, status_wait))
            self.sleep(max(next_event, MIN_OVERLAP_SLEEP))
