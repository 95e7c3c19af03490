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
    worker.look_for_lost(plan)    one look (query, retrieve) for the certificate of a POST whose answer was lost
    worker.lost_error(plan)       the error when the wait for it ends without it
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

An enrollment whose answer was lost (plan.lost_answer) is looked for before the next one is sent, by the same
loop: at once, then LOST_ANSWER_GAP seconds later, twice as long each time up to LOST_ANSWER_MAX_GAP, a last
time when the wait ends (a handful of the 120 query calls an hour, not one every 5 s); then the run fails
and the state file keeps the intent for the next run. It is never sent again.

Plans carry the state the scheduler reads: reference_number, status_code (100 while processing),
issued_serial, finished, deadline / sent_clock / polled_at, next_check / last_check / misses / by_status.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import math
import time
from typing import Any, Callable, List, Optional

from ansible_collections.ksef.certificates.plugins.module_utils._api import (
    ENROLL_ENDPOINT,
    QUERY,
    QUERY_PAGE_SIZE,
    RETRIEVE_CHUNK as RETRIEVE_BATCH,
    RETRIEVE_ENDPOINT,
    STATUS_ENDPOINT,
    Endpoint,
    KsefApi,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
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
# Gaps between the looks for a lost answer's certificate (seconds): the first, and the longest.
LOST_ANSWER_GAP = 5
LOST_ANSWER_MAX_GAP = 60


class EnrollmentScheduler:
    """Sends every planned enrollment once, in order, and waits for them, using rate-limit waits for other work."""

    # worker: any object with send, detect, poll and finish (the module docstring); the Enroller in a run.
    def __init__(self, api: KsefApi, worker: Any, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, check_mode: bool = False,
                 warn: Optional[Callable[[str], None]] = None) -> None:
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

    def send_all(self, plans: List[Plan], enrolling: List[Plan]) -> None:
        """Send every planned enrollment, each exactly once, in order.

        While the enrollment endpoint has no free rate-limit slot (KsefApi.seconds_until_slot), the time
        is used for the enrollments already sent: the query, status and retrieve endpoints have counters
        of their own. Check mode sends nothing and so has nothing to overlap.
        """
        for index, plan in enumerate(enrolling):
            if index and not self.check_mode:
                # Look for, retrieve and install what was already sent until the enrollment endpoint has a free slot.
                self._until_idle(plans, sending=True, until_enroll_slot=True)
            self.worker.send(plan)
            if plan.lost_answer is not None:
                self._until_idle([plan], sending=True)   # found, or the error once its wait ends

    def wait(self, plans: List[Plan]) -> None:
        """Look for the waiting enrollments until each is issued (and retrieved) or its wait_timeout ends."""
        if not self.check_mode:
            self._until_idle(plans, sending=False)
        for plan in plans:
            if plan.reference_number and plan.status_code == 100 and not plan.issued_serial:
                plan.action = 'pending'

    def _until_idle(self, plans, sending, until_enroll_slot=False):
        """The one loop of the enrollment phase: the call that is due, else sleep until one is; until none is left
        (or, until_enroll_slot, until the enrollment endpoint has a free slot)."""
        while True:
            slot_wait = self.seconds_until_slot(ENROLL_ENDPOINT) if until_enroll_slot else None
            if slot_wait is not None and slot_wait <= 0:
                return
            acted, delay = self._step(plans, sending)
            if acted:
                continue
            waits = [wait for wait in (delay, slot_wait) if wait is not None]
            if not waits:
                return
            self.sleep(max(min(waits), MIN_OVERLAP_SLEEP))

    # -- one decision --------------------------------------------------------------------------

    def seconds_until_slot(self, endpoint: Endpoint) -> float:
        return self.api.seconds_until_slot(*endpoint)

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
        lost = [plan for plan in plans if plan.lost_answer is not None]
        if lost and self._first_due(lost, QUERY_ENDPOINT, self._look_for_lost, now, delays):
            return True, None
        by_status = [plan for plan in waiting if self._by_status(plan, waiting)]
        by_query = [plan for plan in waiting if not self._by_status(plan, waiting)]
        if by_status and self._first_due(by_status, STATUS_ENDPOINT, self._poll, now, delays):
            return True, None
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

    def _first_due(self, plans, endpoint, look, now, delays):
        """look(plan) for the plan whose look is due first, when its endpoint has a slot (True); else the wait joins delays."""
        due = min(plans, key=self._next_check)
        if self._next_check(due) > now:
            delays.append(self._next_check(due) - now)
            return False
        wait = self.seconds_until_slot(endpoint)
        if wait > 0:
            delays.append(wait)
            return False
        look(due)
        return True

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

    def _look_for_lost(self, plan):
        """One look for a lost answer's certificate; a miss sets the next look, or fails once the wait has ended."""
        if self.worker.look_for_lost(plan):
            return
        now = self.clock()
        if now >= plan.deadline:
            raise self.worker.lost_error(plan)
        plan.misses += 1
        plan.next_check = now + min(LOST_ANSWER_MAX_GAP, LOST_ANSWER_GAP * 2 ** (plan.misses - 1))

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
