# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This plugin_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Several renewal waves in one run of the ksef_deploy role, for certificates whose key stays on the host.

ksef_certificate plans the role's enrollments from the active-certificate slots free now and holds the rest (its
`hold`, reason certificate_quota): it cannot count on the predecessors' slots, as only the role revokes them, once
the successors are proven through their hosts (_deploy_proof), after the enrollment call. So the role sends what
was held again, wave after wave (tasks/wave.yml), while the previous wave's revocations gave slots back and
ksef_deploy_max_waves allows; the CSRs and .next keys made before the first wave are sent as they are.

- next_wave(): the held renewals the next wave sends and the batch narrowed to them (what it installs and proves);
- merged(): the first enrollment call's result with each later wave's entries for the certificates that wave sent;
- proofs_of(): the proof results of the wave that last sent a certificate;
- left_by_bound(): the line of a renewal the bound left for the next run;
- predict() / predicted_line(): check mode, which sends nothing: the same waves from the limits KSeF reports.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.module_utils import _rules
from ansible_collections.ksef.certificates.plugins.module_utils._engine.waves import Due, plan_waves
from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy

# ksef_certificate's hold reason for a renewal that found no free active-certificate slot (_engine/rolling.py).
SLOT_REASON = 'certificate_quota'


def _id(cert):
    return _deploy.deploy_id(cert['name'], cert['type'])


def held_for_slots(enrolled):
    """The ids of the certificates ksef_certificate held for the active-certificate limit (deferred or blocked: it
    counted no slot coming back from the role's revocations), in its order."""
    return [_id(cert) for cert in (enrolled or {}).get('certificates') or []
            if cert.get('action') in ('deferred', 'blocked') and (cert.get('hold') or {}).get('reason') == SLOT_REASON]


def next_wave(batch, enrolled, revoked, number, max_waves):
    """{number, ids, send, enroll, hosts} of wave `number` (the first enrollment call is wave 1).

    batch: the role's batch decision (_deploy_account.batch); enrolled: every enrollment so far (merged());
    revoked: the previous wave's ksef_certificate_revoke result. ids: the renewals held for a slot, when that
    revocation gave slots back (a serial KSeF had revoked already gives none); none otherwise, as the next wave
    would find the same slots (they wait for a later run, as ksef_certificate's hold says). send: there are some
    and the wave is within max_waves; left: those the bound keeps for the next run. hosts: the batch's plans
    narrowed to those renewals, for the installs and proofs of the wave (enroll counts them)."""
    if int(max_waves) < 1:
        raise ValueError('ksef_deploy_max_waves must be 1 or more, not %s' % max_waves)
    revoked = revoked or {}
    freed = not revoked.get('skipped') and bool(revoked.get('revoked'))
    ids = held_for_slots(enrolled) if freed else []
    hosts = {}
    for host, decided in ((batch or {}).get('hosts') or {}).items():
        hosts[host] = {'plan': [entry for entry in decided.get('plan') or [] if entry['action'] == 'enroll' and entry['id'] in ids],
                       'failures': {}}
    send = bool(ids) and int(number) <= int(max_waves)
    return {'number': int(number), 'ids': ids, 'send': send, 'left': [] if send else ids,
            'enroll': sum(len(decided['plan']) for decided in hosts.values()), 'hosts': hosts}


def _entries(result):
    return (result or {}).get('certificates') or []


def merged(first, later=None):
    """The first enrollment call's result, with the entries of each later wave for the certificates it sent.

    A certificate a later wave sent and its call did not return (the call failed) loses its earlier entry (the
    hold), so the account fails its host with that call's message, as for a failed first call. The diffs are
    joined (host_diff reads the last entry of each certificate)."""
    if not later:
        return first or {}
    result = dict(first or {})
    by_id = dict((_id(cert), cert) for cert in _entries(first))
    order = [_id(cert) for cert in _entries(first)]
    diff = result.get('diff')
    for wave in later:
        sent = dict((_id(cert), cert) for cert in _entries(wave.get('enrolled')))
        for item_id in wave.get('ids') or []:
            if item_id in sent:
                by_id[item_id] = sent[item_id]
                if item_id not in order:
                    order.append(item_id)
            else:
                by_id.pop(item_id, None)
        if (wave.get('enrolled') or {}).get('msg'):
            result['msg'] = wave['enrolled']['msg']
        wave_diff = (wave.get('enrolled') or {}).get('diff')
        if diff and wave_diff:
            diff = dict((side, {'certificates': ((diff.get(side) or {}).get('certificates') or [])
                                + ((wave_diff.get(side) or {}).get('certificates') or [])}) for side in ('before', 'after'))
    result['certificates'] = [by_id[item_id] for item_id in order if item_id in by_id]
    if diff:
        result['diff'] = diff
    return result


def proofs_of(item_id, first, later=None):
    """The proofs ({prepared, finished, revoked}) of the wave that last sent the certificate `item_id`: the
    first wave's unless a later one sent it."""
    for wave in reversed(later or []):
        if item_id in (wave.get('ids') or []):
            return wave.get('proofs') or {}
    return first or {}


def left_by_bound(line, why, max_waves):
    """A renewal still held for a slot when the run had sent ksef_deploy_max_waves waves: deferred to the next run
    (which continues the waves), not blocked; the certificate in use stays. why: the plan's reason to renew."""
    line.update(action='deferred', retry_at='',
                reason='%s; waits for the next run: this run sent the %d waves ksef_deploy_max_waves allows, and the '
                'certificate in use works until %s' % (why, int(max_waves), line['outage_at']))
    return line


# ---------------------------------------------------------------------------------------------
# Check mode: the waves a real run would send
# ---------------------------------------------------------------------------------------------

def _wave_of(entries, free, enrollments_left):
    """(sent, held [(entry, reason)]) of one enrollment call, as ksef_certificate plans the role's CSRs: each
    renewal whose predecessors the role revokes gives their slots back (caller_revokes_superseded), so an Offline
    one does not take the last free slot while such a renewal is due. The call sends only its first wave: the
    later ones wait for the role's revocations (held for a slot, like what finds none)."""
    dues = [Due(index, entry['id'], _rules.parse_datetime_or_none(entry.get('valid_to')),
                len(entry.get('predecessors') or []) if entry['revoke_superseded'] else 0) for index, entry in enumerate(entries)]
    planned = plan_waves(dues, free, enrollments_left)
    first = set(planned.waves[0]) if planned.waves else set()
    later = set(index for wave in planned.waves[1:] for index in wave)
    held = dict(planned.blocked)
    held.update((index, SLOT_REASON) for index in later)
    return ([entry for index, entry in enumerate(entries) if index in first],
            [(entry, held[index]) for index, entry in enumerate(entries) if index in held])


def _retry_at(held, active, revoked, now):
    """When a slot comes back for a renewal held without one, as ksef_certificate tells it: the first end of an
    active certificate the held renewals do not use (None: none)."""
    in_use = set(old['serial_number'] for entry, dummy in held for old in entry.get('predecessors') or [])
    ends = [_rules.parse_datetime_or_none(cert.get('valid_to')) for cert in active
            if cert['serial_number'].upper() not in in_use and cert['serial_number'].upper() not in revoked]
    ends = [end for end in ends if end is not None and end > now]
    return min(ends) if ends else None


def _hold(entry, reason, retry_at):
    outage = _rules.parse_datetime_or_none(entry.get('valid_to'))
    state = 'deferred' if reason == SLOT_REASON and retry_at is not None and outage is not None and retry_at < outage else 'blocked'
    if reason != SLOT_REASON:
        why = 'cannot be renewed now: no enrollment request is left'
    elif state == 'deferred':
        why = 'waits for a free slot: the active-certificate limit leaves none after this run; a run from %s can renew it' % (
            _rules.format_datetime(retry_at))
    else:
        why = 'cannot be renewed now: the active-certificate limit leaves no slot for it'
    return {'state': state, 'reason': reason, 'outage_at': _rules.format_datetime(outage) if outage else '',
            'retry_at': _rules.format_datetime(retry_at) if state == 'deferred' else '', 'message': why}


def predict(batch, info, max_waves, now=None):
    """{id: {'wave': n} or {'state', 'reason', 'outage_at', 'retry_at', 'message'} or {'bound': true}} for the
    key-on-host renewals of the batch: the waves the real run would send (tasks/wave.yml), each the soonest-expiring
    renewals that fit the slots free then, each Authentication predecessor revoked after its wave giving its slot
    back; {} without the limits (info from ksef_certificate_info with include_limits, check mode only).

    The hour's call budget is not foreseen (ksef_certificate decides it when it sends)."""
    free = ((((info or {}).get('limits') or {}).get('certificate')) or {}).get('remaining')
    if free is None:
        return {}
    enrollments_left = (((info.get('limits') or {}).get('enrollment')) or {}).get('remaining')
    now = now or datetime.datetime.now(datetime.timezone.utc)
    active = info.get('certificates') or []
    remaining = [entry for decided in ((batch or {}).get('hosts') or {}).values()
                 for entry in decided.get('plan') or [] if entry['action'] == 'enroll']
    # The first wave also revokes the predecessors of deployed successors (plan actions install, prove).
    proving = [entry for decided in ((batch or {}).get('hosts') or {}).values()
               for entry in decided.get('plan') or [] if entry['action'] in ('install', 'prove')]
    outcome, revoked, number = {}, set(), 0
    while remaining:
        number += 1
        sent, held = _wave_of(remaining, free, enrollments_left)
        freed = [old['serial_number'] for entry in sent + (proving if number == 1 else []) if entry['revoke_superseded']
                 for old in entry.get('predecessors') or []]
        for entry in sent:
            outcome[entry['id']] = {'wave': number}
        revoked.update(freed)
        free += len(freed) - len(sent)
        if enrollments_left is not None:
            enrollments_left -= len(sent)
        waiting = [entry for entry, reason in held if reason == SLOT_REASON]
        retry_at = _retry_at(held, active, revoked, now)
        for entry, reason in held:
            if reason != SLOT_REASON or not freed:
                outcome[entry['id']] = _hold(entry, reason, retry_at)
            elif number >= int(max_waves):
                outcome[entry['id']] = dict(_hold(entry, reason, retry_at), bound=True)
        remaining = waiting if freed and number < int(max_waves) else []
    return outcome


def predicted_line(line, entry, prediction, max_waves):
    """Check mode: a renewal the real run would hold (prediction from predict()) says so instead of `renewed`."""
    if not prediction or 'wave' in prediction:
        return line
    line.update(action=prediction['state'], serial_number=line['previous_serial_number'], valid_to=entry['valid_to'],
                superseded=[], outage_at=prediction['outage_at'], retry_at=prediction['retry_at'],
                reason='%s; %s' % (entry['reason'], prediction['message']))
    if prediction.get('bound'):
        line['reason'] = entry['reason']
        left_by_bound(line, entry['reason'], max_waves)
    return line
