# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""When the enrollment phase sends, looks for issued certificates and retrieves: the call budget of ksef_certificate.

The scheduler decides the order and the waiting; a worker (_enroll.Enroller) does each call:

    worker.send(plan)             POST /certificates/enrollments for one planned enrollment (exactly once)
    worker.detect(plans, pages)   POST /certificates/query pages: which waiting enrollments are issued
    worker.poll(plan)             GET /certificates/enrollments/{referenceNumber} for one waiting enrollment
    worker.finish(plans)          POST /certificates/retrieve for issued ones, then install (and revoke superseded)

Detection: one query page shows up to 50 of the newest certificates, so one page sees a whole group of
enrollments issued; the status endpoint (one call per enrollment, its own 120/h counter) is used only for
an enrollment the query does not show in time (a rejection, 400, or KSeF giving up, 500/550, never shows
in the query) or when it is the only one being waited for (then both cost one call and the status is exact).
The first look at an enrollment comes `issue_delay` seconds after it was sent: the delay this run observed
(the youngest age at which a recent query round found an enrollment issued: the tightest upper bound of
KSeF's issuing delay), 1 s before anything was observed. Each look that does not show it doubles the gap to
the next (at most MAX_CHECK_GAP). A query round waits up to GROUP_SECONDS for younger enrollments to come
due, so that one round covers a burst of enrollments sent together.

Plans carry the state the scheduler reads: reference_number, status_code (100 while processing),
issued_serial, finished, deadline / sent_clock / polled_at, next_check / last_check / misses / by_status.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import math
import time

from ansible_collections.ksef.certificates.plugins.module_utils._api import (
    ENROLL_ENDPOINT,
    QUERY,
    QUERY_PAGE_SIZE,
    RETRIEVE_CHUNK as RETRIEVE_BATCH,
    RETRIEVE_ENDPOINT,
    STATUS_ENDPOINT,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefTransportError

QUERY_ENDPOINT = QUERY
# Issuing delay assumed before this run has observed one (seconds).
INITIAL_ISSUE_DELAY = 1.0
# Longest gap between two looks at one enrollment (seconds).
MAX_CHECK_GAP = 30.0
# A query round waits this long at most for younger enrollments to come due (a burst of 10/s spans 2.5 s).
GROUP_SECONDS = 3.0
# Rounds whose youngest find sets the issuing delay (it may grow again when KSeF slows down).
RECENT_ROUNDS = 3
# An enrollment still not shown by the query this long after it was sent (and after two looks) is asked
# for by its reference number: max(STATUS_AFTER_SECONDS, STATUS_AFTER_DELAYS x the observed issuing delay).
STATUS_AFTER_SECONDS = 15.0
STATUS_AFTER_DELAYS = 3
STATUS_AFTER_MISSES = 2
# Shortest sleep of the enrollment phase (guards against spinning on rounding at a window edge).
MIN_OVERLAP_SLEEP = 0.01


class EnrollmentScheduler:
    """Sends every planned enrollment once, in order, and waits for them, using rate-limit waits for other work."""

    def __init__(self, api, worker, clock=time.monotonic, sleep=time.sleep, check_mode=False, warn=None):
        self.api = api
        self.worker = worker
        self.clock = clock
        self.sleep = sleep
        self.check_mode = check_mode
        self.warn = warn or (lambda message: None)
        self.failed_looks = 0
        self.issue_delay = INITIAL_ISSUE_DELAY
        self.observed_delay = None          # the issuing delay this run observed (see the module docstring)
        self._recent_finds = collections.deque(maxlen=RECENT_ROUNDS)
        self.query_rounds = 0
        self.status_polls = 0

    # -- the two phases ------------------------------------------------------------------------

    def send_all(self, plans, enrolling):
        """Send every planned enrollment, each exactly once, in order.

        While the enrollment endpoint has no free rate-limit slot (KsefApi.seconds_until_slot), the time
        is used for the enrollments already sent: the query, status and retrieve endpoints have counters
        of their own. Check mode sends nothing and so has nothing to overlap.
        """
        for index, plan in enumerate(enrolling):
            if index and not self.check_mode:
                self._overlap_until_enroll_slot(plans)
            self.worker.send(plan)

    def wait(self, plans):
        """Look for the waiting enrollments until each is issued (and retrieved) or its wait_timeout ends."""
        if not self.check_mode:
            while True:
                acted, delay = self._step(plans, sending=False)
                if acted:
                    continue
                if delay is None:
                    break
                self.sleep(max(delay, MIN_OVERLAP_SLEEP))
        for plan in plans:
            if plan.reference_number and plan.status_code == 100 and not plan.issued_serial:
                plan.action = 'pending'

    # -- one decision --------------------------------------------------------------------------

    def seconds_until_slot(self, endpoint):
        probe = getattr(self.api, 'seconds_until_slot', None)
        if probe is None:
            return 0.0
        return probe(*endpoint)

    def _waiting(self, plans):
        """Enrollments being waited for: sent (or resumed), not issued, and not yet looked at after their deadline."""
        now = self.clock()
        return [plan for plan in plans if plan.reference_number and plan.status_code == 100 and
                not plan.issued_serial and plan.deadline is not None and
                (now < plan.deadline or plan.last_check is None or plan.last_check < plan.deadline)]

    def _next_check(self, plan):
        if plan.next_check is None:
            sent = plan.sent_clock if plan.sent_clock is not None else plan.polled_at
            plan.next_check = (sent if sent is not None else self.clock()) + self.issue_delay
        return min(plan.next_check, plan.deadline)

    def _age(self, plan, now):
        sent = plan.sent_clock if plan.sent_clock is not None else plan.polled_at
        return now - sent if sent is not None else 0.0

    def _by_status(self, plan, waiting):
        return plan.by_status or len(waiting) == 1

    def _missed(self, plan, now):
        """A look that did not show the plan issued: the next one comes later; a late one goes to the status endpoint."""
        plan.misses += 1
        plan.next_check = now + min(MAX_CHECK_GAP, max(self.issue_delay, INITIAL_ISSUE_DELAY) * 2 ** (plan.misses - 1))
        status_after = max(STATUS_AFTER_SECONDS, STATUS_AFTER_DELAYS * (self.observed_delay or 0.0))
        if plan.misses >= STATUS_AFTER_MISSES and self._age(plan, now) >= status_after:
            plan.by_status = True

    def _step(self, plans, sending):
        """Do the one call that is due (acted=True), or say how long until one is: (acted, seconds or None)."""
        now = self.clock()
        waiting = self._waiting(plans)
        issued = [plan for plan in plans if plan.issued_serial and not plan.finished]
        delays = []
        # Retrieve full batches of 10; the rest once nothing is being sent or waited for.
        if issued and (len(issued) >= RETRIEVE_BATCH or (not waiting and not sending)):
            retrieve_wait = self.seconds_until_slot(RETRIEVE_ENDPOINT)
            if retrieve_wait <= 0:
                self.worker.finish(issued[:RETRIEVE_BATCH])
                return True, None
            delays.append(retrieve_wait)
        by_status = [plan for plan in waiting if self._by_status(plan, waiting)]
        by_query = [plan for plan in waiting if not self._by_status(plan, waiting)]
        if by_status:
            due = min(by_status, key=self._next_check)
            if self._next_check(due) <= now:
                status_wait = self.seconds_until_slot(STATUS_ENDPOINT)
                if status_wait <= 0:
                    self._poll(due)
                    return True, None
                delays.append(status_wait)
            else:
                delays.append(self._next_check(due) - now)
        if by_query:
            round_at = self._round_at(by_query)
            if round_at <= now:
                query_wait = self.seconds_until_slot(QUERY_ENDPOINT)
                if query_wait <= 0:
                    self._query_round(by_query, now)
                    return True, None
                delays.append(query_wait)
            else:
                delays.append(round_at - now)
        return False, (max(min(delays), 0.0) if delays else None)

    def _round_at(self, plans):
        """When the next query round goes: when the first plan is due, or up to GROUP_SECONDS later for the
        younger ones due by then (one round for a burst)."""
        checks = sorted(self._next_check(plan) for plan in plans)
        return max(check for check in checks if check <= checks[0] + GROUP_SECONDS)

    def _look(self, call, *args):
        """A look (query page or status read) that KSeF could not answer counts as a miss, not as a failure.

        The enrollments were sent and their state files say so: KSeF unreachable for a while (a restart, a
        network hiccup, 5xx after the client's retries) only delays the next look; when the wait ends the
        plans are pending and the next run resumes them. Anything else (4xx, a rejection) still fails the run.
        """
        try:
            return True, call(*args)
        except (KsefTransportError, KsefApiError) as exc:
            if isinstance(exc, KsefApiError) and exc.status is not None and exc.status < 500:
                raise
            self.failed_looks += 1
            if self.failed_looks == 1:
                self.warn('Looking for the issued certificates failed (%s); trying again later' % exc)
            return False, None

    def _poll(self, plan):
        self.status_polls += 1
        self._look(self.worker.poll, plan)
        plan.last_check = self.clock()
        if plan.status_code == 100 and not plan.issued_serial:
            self._missed(plan, plan.last_check)

    def _query_round(self, targets, started):
        """One query round for every waiting enrollment the query looks for (not only the due ones)."""
        self.query_rounds += 1
        pages = int(math.ceil(len(targets) / float(QUERY_PAGE_SIZE))) + 1
        found = self._look(self.worker.detect, targets, pages)[1] or []
        now = self.clock()
        if found:
            # Every age at which an enrollment is found issued bounds KSeF's issuing delay from above; the
            # youngest is the tightest (an old straggler found late says little).
            self._recent_finds.append(min(self._age(plan, now) for plan in found))
            self.observed_delay = min(self._recent_finds)
            self.issue_delay = min(MAX_CHECK_GAP, max(self.observed_delay, INITIAL_ISSUE_DELAY))
        missed = []
        for plan in targets:
            plan.last_check = now
            if not plan.issued_serial and self._next_check(plan) <= started:
                self._missed(plan, now)
                missed.append(plan)
        if missed:
            # One round looks at every target: the younger ones wait for the next round of the due ones
            # instead of each starting a round of its own.
            next_round = min(plan.next_check for plan in missed)
            for plan in targets:
                if not plan.issued_serial and plan not in missed:
                    plan.next_check = max(self._next_check(plan), next_round)

    def _overlap_until_enroll_slot(self, plans):
        """Look for, retrieve and install what was already sent until the enrollment endpoint has a free slot."""
        while True:
            enroll_wait = self.seconds_until_slot(ENROLL_ENDPOINT)
            if enroll_wait <= 0:
                return
            acted, delay = self._step(plans, sending=True)
            if acted:
                continue
            self.sleep(max(min(enroll_wait, delay) if delay is not None else enroll_wait, MIN_OVERLAP_SLEEP))
