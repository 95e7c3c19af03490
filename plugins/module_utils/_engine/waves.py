# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Rolling renewal within KSeF's limits: which due certificates go in which wave, and the quota forecast.

Pure functions, no I/O and no clock read. KSeF counts the subject's active certificates against a limit (100 per
NIP) and its enrollment requests over 30 days (300 per NIP). A renewal holds one more active certificate from its
enrollment until its predecessor is revoked: an Authentication predecessor is revoked once its successor is
installed (the slot comes back for the next wave), an Offline one stays Active until it expires (QR codes II in
circulation), so its successor keeps the slot. A new certificate keeps its slot too.

plan_waves() orders the due certificates by expiry (soonest first) and cuts them into waves that fit the free
slots; a certificate that takes a slot for good never takes the last slot the later renewals need to cycle.
forecast() runs the same rules over the coming renewal dates: the peak of active certificates, its date, and the
first outage (a certificate that cannot be renewed before it expires).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import datetime
import heapq
from typing import Any, Iterable, Optional, Tuple

# One due certificate. key: the caller's handle (a plan); label: 'name/type' for messages; expires: aware datetime
# of the end of the current certificate, None when there is none that is valid (missing, expired, revoked: an
# outage already, so it goes first); frees: active slots its renewal gives back once installed (predecessors this
# run revokes); 0 for an Offline renewal (predecessor kept) and for a new certificate.
Due = collections.namedtuple('Due', 'key label expires frees')

# The plan of one run. waves: lists of keys, in order; deferred: keys left for a later run (the hour's call
# budget); blocked: (key, reason) that cannot be enrolled under the limits now: reason 'enrollment_quota' (no
# enrollment request left) or 'certificate_quota' (no active-certificate slot left for it).
WavePlan = collections.namedtuple('WavePlan', 'waves deferred blocked')

# One renewal to come, for the forecast. renew_at: when it becomes due (aware datetime); expires: end of the
# current certificate (None: none valid); frees as in Due.
Renewal = collections.namedtuple('Renewal', 'label renew_at expires frees')

Forecast = collections.namedtuple('Forecast', 'peak_active peak_date outages')


def expiry_order(item: Any) -> Tuple[bool, Optional[datetime.datetime], str]:
    """Soonest expiry first; without a valid certificate (an outage already) before any; labels break ties."""
    return (item.expires is not None, item.expires, item.label)


def plan_waves(dues: Iterable[Due], free_slots: int, enrollments_left: Optional[int] = None,
               max_enrollments: Optional[int] = None) -> WavePlan:
    """Cut the due certificates into waves that fit `free_slots` active-certificate slots.

    enrollments_left: enrollment requests KSeF still accepts (None: unknown, no bound); max_enrollments: how many
    enrollments the run's call budget allows (None: no bound). In expiry order: a certificate that keeps its slot
    (Offline, new) may not take the last free slot while a renewal that gives its slot back is due (that one
    would never cycle); past the enrollment quota a certificate is blocked, past the call budget deferred to a
    later run.
    """
    order = sorted(dues, key=expiry_order)
    cycling = any(item.frees > 0 for item in order)
    keeper_room = free_slots - 1 if cycling else free_slots
    chosen = []
    last = []                   # keepers past keeper_room: after every renewal that cycles, if a slot is left
    deferred = []
    blocked = []
    for item in order:
        keeps = item.frees <= 0
        planned = len(chosen) + len(last)
        if free_slots <= 0:
            blocked.append((item.key, 'certificate_quota'))
        elif enrollments_left is not None and planned + len(deferred) >= enrollments_left:
            blocked.append((item.key, 'enrollment_quota'))
        elif max_enrollments is not None and planned >= max_enrollments:
            deferred.append(item.key)
        elif keeps and keeper_room <= 0:
            last.append(item)
        else:
            keeper_room -= 1 if keeps else 0
            chosen.append(item)
    waves = []
    wave = []
    settled = free_slots        # free slots once the closed waves are done (their revocations included)
    for item in chosen:
        if len(wave) >= settled:
            settled -= _kept(wave)
            waves.append(wave)
            wave = []
        wave.append(item)
    if wave:
        waves.append(wave)
        settled -= _kept(wave)
    if last and settled > 0:
        waves.append(last[:settled])
    blocked.extend((item.key, 'certificate_quota') for item in last[max(settled, 0):])
    return WavePlan([[item.key for item in each] for each in waves], deferred, blocked)


def _kept(wave):
    """Slots a wave keeps once it is done: each enrollment takes one, each revoked predecessor gives one back."""
    return sum(1 - item.frees for item in wave)


def forecast(renewals: Iterable[Renewal], active: int, limit: int, now: datetime.datetime,
             releases: Iterable[Optional[datetime.datetime]] = ()) -> Forecast:
    """Peak of active certificates the coming renewals reach under `limit`, its date, and the outages.

    active: active certificates now; releases: end dates of active certificates that no renewal replaces (an
    Offline predecessor kept after its renewal, a certificate nobody declares): each gives its slot back then.
    Renewals due on the same day go in waves that fill the free slots (plan_waves); an Offline renewal keeps its
    predecessor until that expires. Returns Forecast(peak_active, peak_date, outages): outages lists
    (label, date) of certificates that find no slot before they expire, the date being when the outage begins.
    """
    ends = [moment for moment in releases if moment is not None]
    heapq.heapify(ends)
    state = {'count': active, 'peak': active, 'peak_date': now}
    outages = []
    days = collections.OrderedDict()
    for renewal in sorted(renewals, key=lambda item: (max(item.renew_at, now), expiry_order(item))):
        days.setdefault(max(renewal.renew_at, now).date(), []).append(renewal)
    for renewals_of_day in days.values():
        moment = max(renewals_of_day[0].renew_at, now)
        _release(ends, state, moment)
        plan = plan_waves([Due(item, item.label, item.expires, item.frees) for item in renewals_of_day],
                          limit - state['count'])
        for wave in plan.waves:
            _renew(wave, ends, state, moment)
        for item, dummy in plan.blocked:
            # Later slots: certificates that expire (kept Offline predecessors) before this one does.
            while state['count'] >= limit and ends and (item.expires is None or ends[0] < item.expires):
                moment = ends[0]
                _release(ends, state, moment)
            if state['count'] < limit:
                _renew([item], ends, state, moment)
            else:
                outages.append((item.label, item.expires if item.expires is not None else now))
    return Forecast(state['peak'], state['peak_date'], outages)


def _renew(wave, ends, state, moment):
    """One wave of the forecast: every successor takes a slot, revoked predecessors give theirs back."""
    if state['count'] + len(wave) > state['peak']:
        state['peak'], state['peak_date'] = state['count'] + len(wave), moment
    for item in wave:
        state['count'] += 1 - item.frees
        if item.frees <= 0 and item.expires is not None:
            # An Offline predecessor stays active until it expires.
            heapq.heappush(ends, item.expires)


def _release(ends, state, moment):
    """Give back the slots of the certificates that expired by `moment`."""
    while ends and ends[0] <= moment:
        heapq.heappop(ends)
        state['count'] -= 1
