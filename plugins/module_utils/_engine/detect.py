# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Detecting issued certificates by POST /certificates/query pages instead of one status poll per enrollment.

One page lists up to 50 certificates, newest request first, so one round sees a whole group of enrollments
issued. KSeF's `name` filter is a single contains-match: a round asks for the common prefix of the names it
waits for (if any) and matches names exactly itself. A match is only a candidate until its certificate is
retrieved: the enroller installs it only when it carries the enrolled public key (release_foreign_match).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
from typing import Any, List, Mapping, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import INTENT_CLOCK_SLACK, KsefView, known_before_post
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._rules import parse_datetime

_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def requested_after(record: Optional[Mapping[str, Any]]) -> datetime.datetime:
    """The earliest request date the certificate of a recorded enrollment can carry (KSeF's clock may differ)."""
    intent_time = (record or {}).get('intent_time')
    if not intent_time:
        return _EPOCH
    return parse_datetime(intent_time) - INTENT_CLOCK_SLACK


def _matches(plan, record, requested_from):
    decl = plan.decl
    return (not plan.issued_serial and record.name == decl.name and record.type == decl.type and
            record.requested_at >= requested_from and
            record.serial_number not in known_before_post(decl.record) and
            record.serial_number not in plan.rejected_serials)


def detect_issued(api: KsefApi, view: KsefView, all_plans: List[Plan], plans: List[Plan], max_pages: int) -> List[Plan]:
    """One query round: which of `plans` (waiting enrollments) does KSeF list as issued? Returns those found.

    Pages through the newest certificates until every plan is matched, a page reaches certificates requested
    before the oldest intent (minus the clock slack), or `max_pages` pages were read. A match has the exact
    name and type, was requested after the intent, was not known before the POST and is not claimed by
    another plan of the run; the plan gets issued_serial, status 200 and detected_by_query, and the record
    joins the view.
    """
    targets = [plan for plan in plans if not plan.issued_serial and plan.decl.record]
    if not targets:
        return []
    types = set(plan.decl.type for plan in targets)
    prefix = os.path.commonprefix([plan.decl.name for plan in targets])
    requested_from = dict((id(plan), requested_after(plan.decl.record)) for plan in targets)
    oldest = min(requested_from.values())
    claimed = set(plan.issued_serial for plan in all_plans if plan.issued_serial)
    known = set(record.serial_number for record in view.records)
    found = []
    pages = 0
    for records in api.certificate_record_pages(name=prefix or None,
                                                certificate_type=types.pop() if len(types) == 1 else None):
        pages += 1
        for record in records:
            if record.serial_number in claimed:
                continue
            plan = next((plan for plan in targets if _matches(plan, record, requested_from[id(plan)])), None)
            if plan is None:
                continue
            plan.issued_serial = record.serial_number
            plan.detected_by_query = True
            plan.status_code = 200
            claimed.add(record.serial_number)
            if record.serial_number not in known:
                view.records.append(record)
            found.append(plan)
        if len(found) == len(targets) or pages >= max_pages or not records or records[-1].requested_at < oldest:
            break
    return found


def release_foreign_match(module: AnsibleModule, plan: Plan, now: float) -> None:
    """A query match that does not carry the enrolled key (another run's certificate of the same name).

    It is not installed; the serial is remembered so no later round matches it again, and the plan is asked
    for by its reference number from now on (the status names the exact serial).
    """
    module.warn('Certificate %s listed for %s does not carry the public key of enrollment %s; asking KSeF for that '
                'enrollment\'s status instead' % (plan.issued_serial, plan.decl.label, plan.reference_number))
    plan.rejected_serials.add(plan.issued_serial)
    plan.issued_serial = None
    plan.detected_by_query = False
    plan.status_code = 100
    plan.by_status = True
    plan.next_check = now
