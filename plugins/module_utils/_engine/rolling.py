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

from ansible_collections.ksef.certificates.plugins.module_utils._engine.enroll import QUOTA_CERTIFICATES, QUOTA_ENROLLMENTS
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.result import KsefConvergeError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    DEFAULT_RENEW_BEFORE_DAYS,
    expired,
    format_datetime,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.waves import Due, Renewal, WavePlan, forecast, plan_waves

ADVICE = ('raise the subject\'s active-certificate limit (KSeF allows 100 per NIP; more on a justified request), '
          'revoke certificates nobody uses (ksef_certificate_revoke), or let superseded Offline certificates go '
          'before they expire (release_offline_predecessors: true; QR codes II signed with them stop verifying)')


def _number(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Limits:
    """GET /certificates/limits as numbers (None where KSeF gave none)."""

    def __init__(self, reply):
        reply = reply or {}
        certificate = reply.get('certificate') or {}
        enrollment = reply.get('enrollment') or {}
        self.can_request = reply.get('canRequest')
        self.certificates_left = _number(certificate.get('remaining'))
        self.certificate_limit = _number(certificate.get('limit'))
        self.enrollments_left = _number(enrollment.get('remaining'))
        self.enrollment_limit = _number(enrollment.get('limit'))

    @property
    def active(self):
        if self.certificate_limit is None or self.certificates_left is None:
            return None
        return self.certificate_limit - self.certificates_left


def current_validity(plan, view, now):
    """End of the validity of the certificate in use now, None when there is none (an outage already).

    The declared certificate; without one (the CSR of a new key, as the role sends), the superseded certificate
    of that name and type that stays valid longest: the one the host uses until its successor is installed.
    """
    records = [plan.current_item] if plan.current_item is not None else [view.by_serial(serial) for serial in plan.superseded]
    valid = [record.valid_to for record in records if record is not None and record.active and not expired(record.valid_to, now)]
    return max(valid) if valid else None


def slots_freed(plan, keeps_login):
    """Predecessors the run revokes once the plan's successor is installed (each gives back a slot)."""
    if not plan.decl.revoke_superseded:
        return 0
    return len([serial for serial in plan.superseded if not keeps_login(plan, serial)])


class RollingRenewal:
    """Runs the enrollments of a run in waves within the limits; `quota` is the return value."""

    def __init__(self, module, api, enroller, scheduler, now, max_enrollments=None, release_offline=False):
        # max_enrollments: what the hour's call budget allows (Converger._plan_budget sets it; None: all)
        self.module = module
        self.release_offline = release_offline
        self.api = api
        self.enroller = enroller
        self.scheduler = scheduler
        self.now = now
        self.max_enrollments = max_enrollments
        self.limits = None
        self.quota = None
        self.released = []

    def read_limits(self):
        self.limits = Limits(self.api.limits())
        return self.limits

    def valid_to(self, plan):
        return current_validity(plan, self.enroller.view, self.now())

    def due(self, plan):
        return Due(plan, plan.decl.label, self.valid_to(plan), slots_freed(plan, self.enroller.revoker.keeps_login))

    def plan(self, enrolling, free_slots, enrollments_left, max_enrollments):
        return plan_waves([self.due(plan) for plan in enrolling], free_slots, enrollments_left, max_enrollments)

    def free_and_enrollments_left(self, enrolling):
        """Free active-certificate slots and enrollment requests left, from the limits read (None: no bound)."""
        limits = self.limits
        free = limits.certificates_left if limits.certificates_left is not None else len(enrolling)
        enrollments_left = limits.enrollments_left
        if limits.can_request is False and free > 0 and (enrollments_left is None or enrollments_left > 0):
            enrollments_left = 0    # KSeF refuses the subject for a reason the two counts do not show
        return free, enrollments_left

    def wave_count(self, enrolling):
        """How many waves these enrollments (soonest expiry first) take under the limits read (the call budget)."""
        free, enrollments_left = self.free_and_enrollments_left(enrolling)
        return max(len(self.plan(enrolling, free, enrollments_left, None).waves), 1)

    def start(self, plans, enrolling):
        """The waves under the limits read: returns the plan; deferred and blocked plans are held (nothing sent here)."""
        limits = self.limits if self.limits is not None else self.read_limits()
        free, enrollments_left = self.free_and_enrollments_left(enrolling)
        waves = self.plan(enrolling, free, enrollments_left, self.max_enrollments)
        short = len([plan for plan, reason in waves.blocked if reason == 'certificate_quota'])
        if short and self.release_offline:
            released = self._release_offline_predecessors(plans, short)
            if released:
                free += released
                limits.certificates_left = free
                waves = self.plan(enrolling, free, enrollments_left, self.max_enrollments)
        self.quota = self.quota_of(limits, waves)
        for plan in waves.deferred:
            plan.hold('deferred')
        for plan, dummy in waves.blocked:
            plan.hold('blocked')
        if not waves.waves and any(self.valid_to(plan) is None for plan, dummy in waves.blocked):
            raise KsefError('Cannot enroll %d certificate(s): %s. Revoke unused certificates or wait for the '
                            'enrollment window; nothing was sent' % (len(enrolling), self._problems(limits, len(enrolling))))
        for message in self._outage_messages(waves.blocked):
            self.module.warn(message)
        if waves.deferred:
            self.module.warn('%d due certificate(s) wait for a later run, as the hour\'s call budget allows %d '
                             'enrollment(s) now: %s' % (len(waves.deferred), self.max_enrollments,
                                                        ', '.join(plan.decl.label for plan in waves.deferred)))
        return waves

    def _release_offline_predecessors(self, plans, needed):
        """release_offline_predecessors: revoke superseded Offline certificates still active, soonest expiry first.

        Only predecessors: never the declared certificate of a plan (nor the one a renewal replaces). QR codes II
        signed with them stop verifying, which is why it takes an explicit option. Returns the slots freed.
        """
        lingering = []
        for plan in plans:
            if plan.decl.state != 'present' or plan.decl.type != 'offline':
                continue
            keep = plan.current_item.serial_number if plan.current_item is not None else None
            lingering.extend((record.valid_to, record.serial_number, plan) for record in self.enroller.view.candidates(
                plan.decl) if record.active and record.serial_number != keep)
        freed = 0
        for dummy, serial, plan in sorted(lingering, key=lambda entry: (entry[0], entry[1]))[:needed]:
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

    def run(self, plans, waves, check_csr):
        """Send the waves one after the other; after each, plan the rest again from the slots really free."""
        limits = self.limits
        free = limits.certificates_left if limits.certificates_left is not None else None
        remaining = [plan for wave in waves.waves for plan in wave]
        for plan in remaining:
            check_csr(plan)
        if self.enroller.check_mode:
            for wave in waves.waves:
                self.scheduler.send_all(plans, wave)
            return
        wave = waves.waves[0]
        sent = 0
        freed = 0
        while wave:
            self.quota['waves_sent'].append([plan.decl.label for plan in wave])
            self.scheduler.send_all(plans, wave)
            self.scheduler.wait(plans)
            self.enroller.finish()
            sent += len(wave)
            freed += sum(len(plan.revoked) + len(plan.already_revoked) for plan in wave)
            remaining = [plan for plan in remaining if plan not in wave]
            if not remaining:
                break
            enrollments_left = None if limits.enrollments_left is None else limits.enrollments_left - sent
            again = self.plan(remaining, len(remaining) if free is None else free - sent + freed, enrollments_left,
                              None if self.max_enrollments is None else self.max_enrollments - sent)
            for plan, dummy in again.blocked:
                plan.hold('blocked')
            for plan in again.deferred:
                plan.hold('deferred')
            self.quota['deferred'].extend(plan.decl.label for plan in again.deferred)
            if again.blocked:
                self.quota['blocked'].extend(self._blocked_entry(plan, reason) for plan, reason in again.blocked)
                for message in self._outage_messages(again.blocked):
                    self.module.warn(message)
            wave = again.waves[0] if again.waves else []
            remaining = [plan for plan in remaining if plan.held is None]

    def finish(self, plans):
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

    def _blocked_entry(self, plan, reason):
        valid_to = self.valid_to(plan)
        return {'certificate': plan.decl.label, 'reason': reason,
                'outage_at': format_datetime(valid_to if valid_to is not None else self.now())}

    def _outage_messages(self, blocked):
        for plan, reason in blocked:
            valid_to = self.valid_to(plan)
            if valid_to is None:
                continue
            which = ('no enrollment request is left (KSeF %d, over 30 days)' % QUOTA_ENROLLMENTS
                     if reason == 'enrollment_quota' else
                     'the active-certificate limit (KSeF %d) leaves no slot for it' % QUOTA_CERTIFICATES)
            yield ('Certificate %s cannot be renewed now: %s. It stops working at %s (an outage from then); %s'
                   % (plan.decl.label, which, format_datetime(valid_to), ADVICE))

    def quota_of(self, limits, waves=None):
        waves = waves or WavePlan([], [], [])
        return {
            'certificate_limit': limits.certificate_limit,
            'certificates_left': limits.certificates_left,
            'enrollment_limit': limits.enrollment_limit,
            'enrollments_left': limits.enrollments_left,
            'waves': [[plan.decl.label for plan in wave] for wave in waves.waves],
            'waves_sent': [],
            'enrollments_needed': sum(len(wave) for wave in waves.waves),
            'deferred': [plan.decl.label for plan in waves.deferred],
            'blocked': [self._blocked_entry(plan, reason) for plan, reason in waves.blocked],
            'released_offline': list(self.released),
        }


def forecast_quota(plans, limits, view, now):
    """The coming renewals of the declared set against the active-certificate limit (peak, its date, outages)."""
    if limits is None or limits.active is None or limits.certificate_limit is None:
        return None
    renewals = []
    for plan in plans:
        if plan.decl.state != 'present':
            continue
        valid_to = current_validity(plan, view, now)
        days = plan.decl.renew_before_days
        renew_at = now if valid_to is None else valid_to - datetime.timedelta(
            days=DEFAULT_RENEW_BEFORE_DAYS if days is None else days)
        frees = 1 if plan.decl.revoke_superseded and valid_to is not None else 0
        renewals.append(Renewal(plan.decl.label, renew_at, valid_to, frees))
    result = forecast(renewals, limits.active, limits.certificate_limit, now)
    return {
        'active': limits.active,
        'limit': limits.certificate_limit,
        'peak_active': result.peak_active,
        'peak_date': format_datetime(result.peak_date),
        'outages': [{'certificate': label, 'outage_at': format_datetime(moment)} for label, moment in result.outages],
    }
