# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The call budget: what a run's work costs per KSeF endpoint counter, and how long the limits make it take.

Pure functions, no I/O: the converge engine describes its work (enrollments, certificates to retrieve,
revocations, query pages), gets the calls per endpoint and the earliest moment each call may be sent under
the sliding windows (1 s / 60 s / 3600 s) of every endpoint, and refuses a plan that does not fit the hour
window before it sends anything.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.ksef.certificates.plugins.module_utils import _api

# Counter labels ('METHOD /route'), the same the HTTP client counts calls by; the routes live in the gateway.
ENROLL = str(_api.ENROLL)
STATUS = str(_api.ENROLLMENT_STATUS)
RETRIEVE = str(_api.RETRIEVE)
QUERY = str(_api.QUERY)
REVOKE = str(_api.REVOKE)
LIMITS = str(_api.LIMITS)
ENROLLMENT_DATA = str(_api.ENROLLMENT_DATA)
RATE_LIMITS = str(_api.RATE_LIMITS)

RETRIEVE_BATCH = 10
QUERY_PAGE_SIZE = 50
HOUR = 3600
# Seconds added to each window edge, as the HTTP client paces (_http.PACING_MARGIN).
DEFAULT_MARGIN = 0.25
# Query rounds per group of enrollments sent together: one when they should be issued, one more if the
# issuing took longer than observed so far.
QUERY_ROUNDS_PER_GROUP = 2


def detection_query_pages(enrollments: int, limits: Mapping[int, int]) -> int:
    """Query pages expected to see `enrollments` issued: one round per group that one minute lets through."""
    if enrollments <= 0:
        return 0
    group = min(enrollments, limits.get(60) or enrollments, limits.get(HOUR) or enrollments)
    groups = int(math.ceil(enrollments / float(group)))
    pages_per_round = int(math.ceil(min(group, enrollments) / float(QUERY_PAGE_SIZE)))
    return groups * QUERY_ROUNDS_PER_GROUP * pages_per_round


def work_calls(enrollments: int = 0, retrievals: int = 0, revocations: int = 0, query_pages: int = 0, status_polls: int = 0,
               read_rate_limits: bool = False) -> Dict[str, int]:
    """Calls per endpoint (METHOD route template) of the described work; endpoints with no call are left out.

    `retrievals` counts certificates (10 per call); enrollments bring their own retrievals, the limits and
    enrollment-data reads and `query_pages` for detecting the issued certificates.
    """
    calls = {
        RATE_LIMITS: 1 if read_rate_limits else 0,
        QUERY: query_pages,
        LIMITS: 1 if enrollments else 0,
        ENROLLMENT_DATA: 1 if enrollments else 0,
        ENROLL: enrollments,
        STATUS: status_polls,
        RETRIEVE: int(math.ceil((enrollments + retrievals) / float(RETRIEVE_BATCH))),
        REVOKE: revocations,
    }
    return dict((endpoint, count) for endpoint, count in calls.items() if count > 0)


def schedule_calls(count: int, limits: Mapping[int, int], earlier: Sequence[float] = (), margin: float = DEFAULT_MARGIN) -> List[float]:
    """Earliest send times (seconds from now, ascending) of `count` calls to one endpoint.

    `limits` is {window seconds: calls}; `earlier` holds the times (<= 0) of calls already sent to the
    endpoint. A call may go when fewer than `limit` calls are in each window, a call staying in a window
    until `window + margin` seconds after it was sent.
    """
    sent = sorted(earlier)
    times = []
    moment = 0.0
    for dummy in range(count):
        for window, limit in limits.items():
            if limit and len(sent) >= limit:
                moment = max(moment, sent[-limit] + window + margin)
        times.append(moment)
        sent.append(moment)
    return times


def _window_name(window):
    return {1: 'second', 60: 'minute', HOUR: 'hour'}.get(window, '%d s' % window)


def plan_budget(calls: Mapping[str, int], limits: Mapping[str, Mapping[int, int]], issue_delay: float = 0.0,
                earlier: Optional[Mapping[str, Sequence[float]]] = None, margin: float = DEFAULT_MARGIN) -> Dict[str, Any]:
    """Schedule `calls` ({endpoint: count}) under `limits` ({endpoint: {window: limit}}) and say how long it takes.

    `issue_delay` is how long KSeF takes to issue a certificate after its enrollment: the last enrollment
    cannot be retrieved before it. Returns a dict:
      calls:            {endpoint: count}
      endpoints:        {endpoint: {'calls', 'limits', 'last_call_seconds'}}
      expected_seconds: when the last call can be made (the last enrollment plus the issuing delay)
      fits_hour:        False when an endpoint needs more calls than its hour window allows
      over_hour:        for those: {'endpoint', 'calls', 'per_hour', 'wait_seconds'} (the wait for the rest)
    """
    earlier = earlier or {}
    endpoints = {}
    expected = 0.0
    over_hour = []
    for endpoint in sorted(calls):
        count = calls[endpoint]
        endpoint_limits = dict(limits.get(endpoint) or {})
        times = schedule_calls(count, endpoint_limits, earlier.get(endpoint, ()), margin)
        last = times[-1] if times else 0.0
        endpoints[endpoint] = {'calls': count, 'limits': dict((_window_name(w), n) for w, n in endpoint_limits.items()),
                               'last_call_seconds': round(last, 2)}
        end = last
        if endpoint in (ENROLL, RETRIEVE, REVOKE) and calls.get(ENROLL):
            # Issued certificates are retrieved (and superseded ones revoked) after the last one is issued.
            end = max(end, (schedule_calls(calls[ENROLL], dict(limits.get(ENROLL) or {}), earlier.get(ENROLL, ()),
                                           margin)[-1]) + issue_delay)
        expected = max(expected, end)
        per_hour = endpoint_limits.get(HOUR)
        if per_hour and count + len(earlier.get(endpoint, ())) > per_hour:
            over_hour.append({'endpoint': endpoint, 'calls': count, 'per_hour': per_hour,
                              'wait_seconds': int(math.ceil(last))})
    return {
        'calls': dict(calls),
        'endpoints': endpoints,
        'expected_seconds': round(expected, 1),
        'fits_hour': not over_hour,
        'over_hour': over_hour,
    }


def over_hour_message(plan: Mapping[str, Any], what: str) -> str:
    """The message for a plan that does not fit the hour window (nothing has been sent)."""
    parts = []
    for entry in plan['over_hour']:
        parts.append('%s needs %d calls and KSeF allows %d an hour, so the last one could go only after about %d '
                     'minutes' % (entry['endpoint'], entry['calls'], entry['per_hour'],
                                  int(math.ceil(entry['wait_seconds'] / 60.0))))
    return ('%s does not fit KSeF\'s hourly rate limit: %s (expected duration %d s). Nothing was sent. Declare fewer '
            'certificates in one run, or run again after the hour' % (what, '; '.join(parts), plan['expected_seconds']))


def endpoint_limits(api: _api.KsefApi, endpoint: str) -> Dict[int, int]:
    """{window: calls} the run paces `endpoint` to: the client's (published, GET /rate-limits, learned from a 429)."""
    return dict(api.limits_for(endpoint))


def plan_run(api: _api.KsefApi, enrollments: int, revocations: int = 0, issue_delay: float = 0.0, waves: int = 1) -> Dict[str, Any]:
    """The budget of a run's remaining work, counting the calls it already made as made just now.

    `waves`: renewal waves (_waves.py) the enrollments go in; each waits for its certificates to be issued and
    looks for them (QUERY_ROUNDS_PER_GROUP looks, query pages or status polls) before the next one is sent.
    """
    pages = detection_query_pages(enrollments, endpoint_limits(api, ENROLL))
    calls = work_calls(enrollments=enrollments, revocations=revocations,
                       query_pages=max(pages, QUERY_ROUNDS_PER_GROUP * waves) if enrollments else pages)
    made = api.calls_by_endpoint()
    earlier = dict((endpoint, [0.0] * made[endpoint]) for endpoint in calls if made.get(endpoint))
    return plan_budget(calls, dict((endpoint, endpoint_limits(api, endpoint)) for endpoint in calls),
                       issue_delay=issue_delay * max(waves, 1), earlier=earlier)


def budget_summary(plan: Mapping[str, Any], limits_source: Optional[str] = None) -> Dict[str, Any]:
    """The `budget` return value: expected calls per endpoint and duration of the planned work."""
    return {
        'calls': dict(plan['calls']),
        'expected_seconds': plan['expected_seconds'],
        'fits_hour': plan['fits_hour'],
        'limits_source': limits_source or 'published',
    }
