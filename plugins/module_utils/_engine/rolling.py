# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Rolling renewal: the enrollments of one run in waves that fit KSeF's limits (the plan is _waves.py).

GET /certificates/limits once; the due certificates are cut into waves (soonest expiry first); each wave is
sent, waited for, installed and its superseded Authentication predecessors revoked (which frees the slots of
the next wave) before the next one is planned again from what really happened. What the hour's call budget
does not allow is deferred to the next run; what no slot or enrollment request is left for is blocked, with
the date its outage begins. The `quota` return value says all of it (in check mode as the prediction).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import KsefView
from ansible_collections.ksef.certificates.plugins.module_utils._engine.enroll import QUOTA_CERTIFICATES, QUOTA_ENROLLMENTS, Enroller
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.scheduler import EnrollmentScheduler
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecord
from ansible_collections.ksef.certificates.plugins.module_utils._engine.result import KsefConvergeError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    DEFAULT_RENEW_BEFORE_DAYS,
    expired,
    format_datetime,
    parse_datetime,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.waves import Due, Renewal, WavePlan, forecast, plan_waves

# The window of KSeF's hourly rate limits: enrollments the hour's call budget leaves out can go one hour later.
BUDGET_WINDOW = datetime.timedelta(hours=1)
ADVICE = ('raise the subject\'s active-certificate limit (KSeF allows 100 per NIP; more on a justified request), '
          'revoke certificates nobody uses (ksef_certificate_revoke), or let superseded Offline certificates go '
          'before they expire (release_offline_predecessors: true; QR codes II signed with them stop verifying)')


def _number(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Limits:
    """GET /certificates/limits as numbers (None where KSeF gave none)."""

    def __init__(self, reply: Optional[Mapping[str, Any]]) -> None:
        reply = reply or {}
        certificate = reply.get('certificate') or {}
        enrollment = reply.get('enrollment') or {}
        self.can_request = reply.get('canRequest')
        self.certificates_left = _number(certificate.get('remaining'))
        self.certificate_limit = _number(certificate.get('limit'))
        self.enrollments_left = _number(enrollment.get('remaining'))
        self.enrollment_limit = _number(enrollment.get('limit'))

    @property
    def active(self) -> Optional[int]:
        if self.certificate_limit is None or self.certificates_left is None:
            return None
        return self.certificate_limit - self.certificates_left


def record_in_use(plan: Plan, view: KsefView, now: datetime.datetime) -> Optional[CertificateRecord]:
    """The certificate in use now, None when there is none that is active and valid (an outage already).

    The declared certificate; without one (the CSR of a new key, as the role sends), the superseded certificate
    of that name and type that stays valid longest: the one the host uses until its successor is installed.
    """
    records = [plan.current_item] if plan.current_item is not None else [view.by_serial(serial) for serial in plan.superseded]
    valid = [record for record in records if record is not None and record.active and not expired(record.valid_to, now)]
    return max(valid, key=lambda record: record.valid_to) if valid else None


def current_validity(plan: Plan, view: KsefView, now: datetime.datetime) -> Optional[datetime.datetime]:
    """End of the validity of the certificate in use now (record_in_use), None when there is none."""
    record = record_in_use(plan, view, now)
    return record.valid_to if record is not None else None


def slots_freed(plan: Plan, keeps_login: Callable[[Plan, str], bool], now: datetime.datetime) -> int:
    """Predecessors the run is to revoke once the plan's successor is installed and proven (each gives back a slot).

    None unless the predecessors go (frees_superseded: revoke_superseded, or the caller revokes them once the
    successor proved itself, as the ksef_deploy role does); none when the successor is valid only later (valid_from): it is not installed
    and its predecessors stay until then (_proof.hold_until_valid); never the run's login while the new pair is not
    where the next login reads it (keeps_login). A successor that then fails its proof keeps its predecessors too,
    which nothing knows ahead: RollingRenewal.run plans each next wave from the revocations really made.
    """
    if not plan.decl.frees_superseded:
        return 0
    if plan.decl.valid_from and parse_datetime(plan.decl.valid_from) > now:
        return 0
    return len([serial for serial in plan.superseded if not keeps_login(plan, serial)])


def revocations(plans: List[Plan]) -> int:
    """Revocations the run made so far for these plans (KSeF's 25008, a serial it does not know, freed no slot)."""
    return sum(len(plan.revoked) for plan in plans)


class RollingRenewal:
    """Runs the enrollments of a run in waves within the limits; `quota` is the return value."""

    def __init__(self, module: AnsibleModule, api: KsefApi, enroller: Enroller, scheduler: EnrollmentScheduler,
                 now: Callable[[], datetime.datetime], release_offline: bool) -> None:
        self.module = module
        self.release_offline = release_offline
        self.api = api
        self.enroller = enroller
        self.scheduler = scheduler
        self.now = now
        self.max_enrollments = None     # what the hour's call budget allows (Converger._plan_budget sets it; None: all)
        self.limits = None
        self.quota = None
        self.released = []

    def read_limits(self) -> Limits:
        self.limits = Limits(self.api.limits())
        return self.limits

    def valid_to(self, plan: Plan) -> Optional[datetime.datetime]:
        return current_validity(plan, self.enroller.view, self.now())

    def due(self, plan: Plan) -> Due:
        return Due(plan, plan.decl.label, self.valid_to(plan), slots_freed(plan, self.enroller.revoker.keeps_login, self.now()))

    def plan(self, enrolling: List[Plan], free_slots: int, enrollments_left: Optional[int], max_enrollments: Optional[int]) -> WavePlan:
        return plan_waves([self.due(plan) for plan in enrolling], free_slots, enrollments_left, max_enrollments)

    def free_and_enrollments_left(self, enrolling: List[Plan]) -> Tuple[int, Optional[int]]:
        """Free active-certificate slots and enrollment requests left, from the limits read (None: no bound)."""
        limits = self.limits
        free = limits.certificates_left if limits.certificates_left is not None else len(enrolling)
        # canRequest=false with a free slot: KSeF refuses the subject for a reason the two counts do not show.
        # (Without a free slot it is that: the slots a release of Offline predecessors frees are usable.)
        refused = limits.can_request is False and free > 0
        return free, 0 if refused else limits.enrollments_left

    def wave_count(self, enrolling: List[Plan]) -> int:
        """How many waves these enrollments (soonest expiry first) take under the limits read (the call budget)."""
        free, enrollments_left = self.free_and_enrollments_left(enrolling)
        return max(len(self.plan(enrolling, free, enrollments_left, None).waves), 1)

    def start(self, plans: List[Plan], enrolling: List[Plan]) -> WavePlan:
        """The waves under the limits read (read_limits first): returns the plan; deferred and blocked plans are
        held (nothing sent here)."""
        limits = self.limits
        free, enrollments_left = self.free_and_enrollments_left(enrolling)
        waves = self.plan(enrolling, free, enrollments_left, self.max_enrollments)
        short = len([plan for plan, reason in waves.blocked if reason == 'certificate_quota'])
        if short and self.release_offline:
            released = self._release_offline_predecessors(plans, short)
            if released:
                free += released
                limits.certificates_left = free
                waves = self.plan(enrolling, free, enrollments_left, self.max_enrollments)
        self._hold_all(plans, waves, [plan for wave in waves.waves for plan in wave])
        self.quota = self.quota_of(limits, waves)
        if not waves.waves and any(self.valid_to(plan) is None for plan, dummy in waves.blocked):
            raise KsefError('Cannot enroll %d certificate(s): %s. Revoke unused certificates or wait for the '
                            'enrollment window; nothing was sent' % (len(enrolling), self._problems(limits, len(enrolling))))
        for message in self._hold_messages([plan for plan, dummy in waves.blocked]):
            self.module.warn(message)
        if waves.deferred:
            self.module.warn('%d due certificate(s) wait for a later run, as the hour\'s call budget allows %s '
                             'enrollment(s) now: %s' % (len(waves.deferred), self.max_enrollments,
                                                        ', '.join(plan.decl.label for plan in waves.deferred)))
        return waves

    def _hold_all(self, plans, waves, renewing):
        """Hold what the waves leave out: past the call budget deferred; without a slot or an enrollment request
        deferred when a slot comes back before its certificate ends (a later run renews it in time), else blocked."""
        for plan in waves.deferred:
            plan.hold('deferred', 'call_budget', self.valid_to(plan), self.now() + BUDGET_WINDOW)
            plan.hold_note = hold_message(plan)
        for plan, reason in waves.blocked:
            self._hold(plan, reason, renewing, plans)

    def _hold(self, plan, reason, renewing, plans):
        """Hold a plan the limits leave out (reason enrollment_quota or certificate_quota)."""
        outage_at = self.valid_to(plan)
        retry_at = self.next_free_slot(plans, renewing) if reason == 'certificate_quota' else None
        if outage_at is not None and retry_at is not None and retry_at < outage_at:
            plan.hold('deferred', reason, outage_at, retry_at)
        else:
            plan.hold('blocked', reason, outage_at)
        plan.hold_note = hold_message(plan)

    def next_free_slot(self, plans: List[Plan], renewing: List[Plan]) -> Optional[datetime.datetime]:
        """When the first active certificate that nothing of the run keeps in use expires (a superseded Offline
        predecessor, a certificate nobody declares): its slot comes back then. None when there is none.

        In use: the certificate of each declaration that is not renewed in this run (for a CSR renewal, the
        superseded ones: the host uses one until its successor is installed) and the predecessors that the run's
        renewals give back, revoked by the run or by its caller (their slots are the ones the waves cycle through)."""
        in_use = set()
        for plan in plans:
            if plan.decl.state != 'present':
                continue
            if plan in renewing:
                if plan.decl.frees_superseded:
                    in_use.update(plan.superseded)
            elif plan.current_item is not None:
                in_use.add(plan.current_item.serial_number)
            else:
                in_use.update(plan.superseded)
        now = self.now()
        ends = [record.valid_to for record in self.enroller.view.records
                if record.active and record.serial_number not in in_use and not expired(record.valid_to, now)]
        return min(ends) if ends else None

    def _release_offline_predecessors(self, plans, needed):
        """release_offline_predecessors: revoke superseded Offline certificates still active, soonest expiry first.

        Only predecessors: never the certificate in use (the declared one, or for a CSR renewal the one its host
        uses until the successor is installed). QR codes II signed with them stop verifying, which is why it takes
        an explicit option. Returns the slots freed.
        """
        lingering = {}      # serial -> (valid_to, plan)
        now = self.now()
        for plan in plans:
            if plan.decl.state != 'present' or plan.decl.type != 'offline':
                continue
            in_use = record_in_use(plan, self.enroller.view, now)
            keep = in_use.serial_number if in_use is not None else None
            lingering.update((record.serial_number, (record.valid_to, plan)) for record in self.enroller.view.candidates(
                plan.decl) if record.active and record.serial_number != keep)
        freed = 0
        for serial in sorted(lingering, key=lambda serial: (lingering[serial][0], serial))[:needed]:
            plan = lingering[serial][1]
            self.released.append(serial)
            if self.enroller.check_mode:
                plan.revoked.append(serial)
            else:
                self.enroller.revoker.revoke(plan, serial, 'superseded')
            plan.changed = True
            freed += 1
        if freed:
            self.module.warn('release_offline_predecessors: revoked %d superseded Offline certificate(s) to free slots '
                             'for due renewals (%s); QR codes II signed with them no longer verify'
                             % (freed, ', '.join(self.released)))
        return freed

    def run(self, plans: List[Plan], waves: WavePlan, check_csr: Callable[[Plan], None]) -> None:
        """Send the waves one after the other; after each, plan the rest again from the slots really free.

        The first plan (start) already left out what the enrollment quota and the call budget do not allow, so
        what remains fits both: only the free slots can change, when a successor does not prove itself."""
        remaining = [plan for wave in waves.waves for plan in wave]
        for plan in remaining:
            check_csr(plan)
        if self.enroller.check_mode:
            for wave in waves.waves:
                self.scheduler.send_all(plans, wave)
            return
        # No certificate limit known: start planned everything as one wave, so this is never used up.
        free = self.free_and_enrollments_left(remaining)[0]
        wave = waves.waves[0]
        sent_plans = []
        freed = 0
        while wave:
            self.quota['waves_sent'].append([plan.decl.label for plan in wave])
            # The slots the wave really frees: the revocations made while it is finished (a predecessor kept
            # because its successor did not prove itself frees none; those made before, such as released Offline
            # predecessors, are in `free` already).
            revoked_before = revocations(plans)
            self.scheduler.send_all(plans, wave)
            self.scheduler.wait(plans)
            self.enroller.finish()
            sent_plans.extend(wave)
            freed += revocations(plans) - revoked_before
            remaining = [plan for plan in remaining if plan not in wave]
            again = self.plan(remaining, free - len(sent_plans) + freed, None, None)
            self._hold_all(plans, again, sent_plans + [plan for each in again.waves for plan in each])
            self.quota['deferred'].extend(self._deferred_labels(again))
            self.quota['blocked'].extend(self._blocked_entries(again))
            for message in self._hold_messages([plan for plan, dummy in again.blocked]):
                self.module.warn(message)
            wave = again.waves[0] if again.waves else []
            remaining = [plan for plan in remaining if plan.held is None]

    def finish(self, plans: List[Plan]) -> None:
        """After the run: a blocked certificate that has no valid certificate any more fails the run."""
        outages = [plan for plan in plans if plan.held == 'blocked' and self.valid_to(plan) is None]
        if outages:
            raise KsefConvergeError(
                'Cannot enroll %d certificate(s) that have no valid certificate: %s; %s. Everything else in the set '
                'was done; to fix it, %s' % (len(outages), ', '.join(plan.decl.label for plan in outages),
                                             self._problems(self.limits, len(outages)), ADVICE),
                changed=any(plan.changed for plan in plans))

    # -- return value and messages -----------------------------------------------------------

    def _problems(self, limits, needed):
        problems = []
        if limits.enrollments_left is not None and limits.enrollments_left < needed:
            problems.append('enrollment requests quota (KSeF %d): %s of %s left, %d needed'
                            % (QUOTA_ENROLLMENTS, limits.enrollments_left, limits.enrollment_limit, needed))
        if limits.certificates_left is not None and limits.certificates_left < needed:
            problems.append('active certificates quota (KSeF %d): %s of %s left, %d needed (a renewal holds two '
                            'certificates until the old one is revoked)'
                            % (QUOTA_CERTIFICATES, limits.certificates_left, limits.certificate_limit, needed))
        if not problems and limits.can_request is False:
            problems.append('KSeF reports canRequest=false for this subject')
        return '; '.join(problems) or 'no active-certificate slot is left for them'

    def _blocked_entries(self, waves):
        return [self._blocked_entry(plan, reason) for plan, reason in waves.blocked if plan.held == 'blocked']

    def _deferred_labels(self, waves):
        return [plan.decl.label for plan in waves.deferred] + [
            plan.decl.label for plan, dummy in waves.blocked if plan.held == 'deferred']

    def _blocked_entry(self, plan, reason):
        valid_to = self.valid_to(plan)
        return {'certificate': plan.decl.label, 'reason': reason,
                'outage_at': format_datetime(valid_to if valid_to is not None else self.now())}

    def _hold_messages(self, held):
        """A warning per certificate held for KSeF's limits while its certificate is still valid (a missing one
        fails the run in finish())."""
        for plan in held:
            if plan.outage_at is None:
                continue
            yield 'Certificate %s %s' % (plan.decl.label, plan.hold_note)

    def quota_of(self, limits: Limits, waves: Optional[WavePlan] = None) -> Dict[str, Any]:
        waves = waves or WavePlan([], [], [])
        return {
            'certificate_limit': limits.certificate_limit,
            'certificates_left': limits.certificates_left,
            'enrollment_limit': limits.enrollment_limit,
            'enrollments_left': limits.enrollments_left,
            'waves': [[plan.decl.label for plan in wave] for wave in waves.waves],
            'waves_sent': [],
            'enrollments_needed': sum(len(wave) for wave in waves.waves),
            'deferred': self._deferred_labels(waves),
            'blocked': self._blocked_entries(waves),
            'released_offline': list(self.released),
        }


def hold_message(plan: Plan) -> str:
    """Why a held plan waits, and until when it can (the message of the module's `hold` return value)."""
    outage = ('it has no valid certificate (an outage now)' if plan.outage_at is None else
              'the certificate in use works until %s (an outage from then)' % format_datetime(plan.outage_at))
    if plan.hold_reason == 'call_budget':
        why = "waits for a later run: the hour's call budget of KSeF's rate limits is spent"
    elif plan.hold_reason == 'enrollment_quota':
        why = 'cannot be renewed now: no enrollment request is left (KSeF %d, 300 per 30 days)' % QUOTA_ENROLLMENTS
    else:
        why = ('waits for a free slot: the active-certificate limit (KSeF %d) leaves none now' % QUOTA_CERTIFICATES
               if plan.held == 'deferred' else
               'cannot be renewed now: the active-certificate limit (KSeF %d) leaves no slot for it' % QUOTA_CERTIFICATES)
    if plan.held == 'deferred':
        return '%s; a run from %s can renew it; %s' % (why, format_datetime(plan.retry_at), outage)
    return '%s; %s; %s' % (why, outage, ADVICE)


def forecast_quota(plans: List[Plan], limits: Optional[Limits], view: KsefView, now: datetime.datetime) -> Optional[Dict[str, Any]]:
    """The coming renewals of the declared set against the active-certificate limit (peak, its date, outages).

    Every other active certificate (a superseded Offline one kept for its QR codes II, one nobody declares) gives
    its slot back when it expires, as in the report's forecast (plugin_utils/_report.quota_forecast).
    """
    if limits is None or limits.active is None or limits.certificate_limit is None:
        return None
    renewals = []
    in_use = set()
    for plan in plans:
        if plan.decl.state != 'present':
            continue
        record = record_in_use(plan, view, now)
        valid_to = record.valid_to if record is not None else None
        if record is not None:
            in_use.add(record.serial_number)
        days = plan.decl.renew_before_days
        renew_at = now if valid_to is None else valid_to - datetime.timedelta(
            days=DEFAULT_RENEW_BEFORE_DAYS if days is None else days)
        frees = 1 if plan.decl.frees_superseded and valid_to is not None else 0
        renewals.append(Renewal(plan.decl.label, renew_at, valid_to, frees))
    releases = [record.valid_to for record in view.records
                if record.active and record.serial_number not in in_use and not expired(record.valid_to, now)]
    result = forecast(renewals, limits.active, limits.certificate_limit, now, releases=releases)
    return {
        'active': limits.active,
        'limit': limits.certificate_limit,
        'peak_active': result.peak_active,
        'peak_date': format_datetime(result.peak_date),
        'outages': [{'certificate': label, 'outage_at': format_datetime(moment)} for label, moment in result.outages],
    }
