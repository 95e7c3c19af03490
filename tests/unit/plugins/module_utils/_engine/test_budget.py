# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._engine.budget import (
    ENROLL,
    ENROLLMENT_DATA,
    LIMITS,
    QUERY,
    RATE_LIMITS,
    RETRIEVE,
    REVOKE,
    STATUS,
    budget_summary,
    detection_query_pages,
    endpoint_limits,
    over_hour_message,
    plan_budget,
    plan_run,
    schedule_calls,
    work_calls,
)
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient

PUBLISHED = {1: 10, 60: 30, 3600: 120}
LOWERED = {1: 5, 60: 12, 3600: 120}
ENDPOINTS = (ENROLL, STATUS, RETRIEVE, QUERY, REVOKE, LIMITS, ENROLLMENT_DATA, RATE_LIMITS)


def every_endpoint(limits):
    return dict((endpoint, limits) for endpoint in ENDPOINTS)


@pytest.mark.parametrize('count, limits, earlier, groups', [
    # (calls, limits, calls sent before, [(send time, how many calls at it), ...])
    (5, PUBLISHED, (), [(0.0, 5)]),
    (12, PUBLISHED, (), [(0.0, 10), (1.25, 2)]),
    (100, PUBLISHED, (), [(0.0, 10), (1.25, 10), (2.5, 10), (60.25, 10), (61.5, 10), (62.75, 10), (120.5, 10),
                          (121.75, 10), (123.0, 10), (180.75, 10)]),
    (15, LOWERED, (), [(0.0, 5), (1.25, 5), (2.5, 2), (60.25, 3)]),
    (3, PUBLISHED, [-10.0] * 30, [(50.25, 3)]),
    (2, {1: 10, 60: 30, 3600: 2}, [-100.0], [(0.0, 1), (3500.25, 1)]),
    (0, PUBLISHED, (), []),
])
def test_schedule_calls(count, limits, earlier, groups):
    times = schedule_calls(count, limits, earlier)
    found = []
    for moment in times:
        if found and found[-1][0] == pytest.approx(moment):
            found[-1] = (found[-1][0], found[-1][1] + 1)
        else:
            found.append((moment, 1))
    assert [(pytest.approx(t), n) for t, n in groups] == found


@pytest.mark.parametrize('work, calls', [
    ({}, {}),
    ({'query_pages': 1}, {QUERY: 1}),
    ({'enrollments': 100, 'query_pages': 8, 'read_rate_limits': True},
     {RATE_LIMITS: 1, QUERY: 8, LIMITS: 1, ENROLLMENT_DATA: 1, ENROLL: 100, RETRIEVE: 10}),
    ({'enrollments': 3, 'retrievals': 8, 'revocations': 3, 'query_pages': 2, 'status_polls': 1},
     {QUERY: 2, LIMITS: 1, ENROLLMENT_DATA: 1, ENROLL: 3, RETRIEVE: 2, REVOKE: 3, STATUS: 1}),
])
def test_work_calls(work, calls):
    assert work_calls(**work) == calls


@pytest.mark.parametrize('enrollments, limits, pages', [
    (0, PUBLISHED, 0),
    (1, PUBLISHED, 2),
    (30, PUBLISHED, 2),
    (100, PUBLISHED, 8),         # 4 groups of up to 30 (one minute's worth), 2 rounds each
    (15, LOWERED, 4),
    (100, {1: 100, 60: 6000, 3600: 100000}, 4),   # one group of 100: 2 pages a round
])
def test_detection_query_pages(enrollments, limits, pages):
    assert detection_query_pages(enrollments, limits) == pages


@pytest.mark.parametrize('calls, limits, delay, expected, fits', [
    ({QUERY: 1}, PUBLISHED, 0, 0.0, True),                                  # a no-op
    (work_calls(enrollments=100, query_pages=8), PUBLISHED, 5, 185.8, True),  # 180.75 + 5
    (work_calls(enrollments=50, query_pages=4), PUBLISHED, 5, 66.5, True),    # 61.5 + 5
    (work_calls(enrollments=15, query_pages=4), LOWERED, 5, 65.2, True),      # 60.25 + 5 (rounded half to even)
    (work_calls(revocations=40), PUBLISHED, 0, 60.2, True),               # 60.25, rounded half to even
    (work_calls(enrollments=150, query_pages=10), PUBLISHED, 5, 3607.8, False),  # 121st at 3600.25
])
def test_plan_budget(calls, limits, delay, expected, fits):
    plan = plan_budget(calls, every_endpoint(limits), issue_delay=delay)
    assert plan['calls'] == calls
    assert plan['expected_seconds'] == pytest.approx(expected, abs=0.05)
    assert plan['fits_hour'] is fits
    assert set(plan['endpoints']) == set(calls)


def test_a_plan_over_the_hour_budget_says_which_endpoint_and_how_long():
    plan = plan_budget(work_calls(enrollments=150, query_pages=10), every_endpoint(PUBLISHED), issue_delay=5)
    assert plan['over_hour'] == [{'endpoint': ENROLL, 'calls': 150, 'per_hour': 120, 'wait_seconds': 3603}]
    message = over_hour_message(plan, 'Enrolling 150 certificates')
    assert 'POST /certificates/enrollments needs 150 calls and KSeF allows 120 an hour' in message
    assert 'about 61 minutes' in message and 'Nothing was sent' in message


def test_calls_already_sent_count_against_the_hour():
    plan = plan_budget({ENROLL: 20}, every_endpoint(PUBLISHED), earlier={ENROLL: [-600.0] * 110})
    assert not plan['fits_hour']
    assert plan['over_hour'][0]['wait_seconds'] == 3001       # the 11th waits for the first of the 110 to leave


def gateway(other=None):
    """The real KsefApi on a pacing client that sends nothing: its limits and call counters, no HTTP."""
    client = KsefHttpClient('https://ksef.invalid/v2')
    if other:
        client.set_rate_limits({'other': other})
    return KsefApi(client, None)


def test_plan_run_paces_to_the_client_limits_and_counts_calls_already_made():
    api = gateway({'perSecond': 5, 'perMinute': 12, 'perHour': 120})
    assert endpoint_limits(api, ENROLL) == LOWERED
    assert endpoint_limits(gateway(), ENROLL) == PUBLISHED, 'before GET /rate-limits: the published limits'
    api.client.calls_by_endpoint = {QUERY: 12}
    plan = plan_run(api, enrollments=15, issue_delay=5)
    assert plan['fits_hour'] and plan['calls'][ENROLL] == 15
    # 12 a minute: the 13th enrollment goes after the first minute; its certificate 5 s later
    assert plan['endpoints'][ENROLL]['last_call_seconds'] == 60.25 and plan['expected_seconds'] == 65.2
    # the query page this run already made fills the minute: its detection pages wait for the next one
    assert plan['endpoints'][QUERY]['last_call_seconds'] >= 60.25
    summary = budget_summary(plan, api.limits_source())
    assert summary == {'calls': plan['calls'], 'expected_seconds': 65.2, 'fits_hour': True,
                       'limits_source': 'GET /rate-limits'}


def test_plan_run_over_the_hour_budget_counts_what_this_run_already_sent():
    api = gateway()
    assert plan_run(api, enrollments=120)['fits_hour']
    api.client.calls_by_endpoint = {ENROLL: 1}
    plan = plan_run(api, enrollments=120)
    assert not plan['fits_hour'] and plan['over_hour'][0]['endpoint'] == ENROLL


def test_plan_run_counts_the_looks_and_issuing_delay_of_each_renewal_wave():
    api = gateway()
    one = plan_run(api, enrollments=95, revocations=95, issue_delay=5)
    nineteen = plan_run(api, enrollments=95, revocations=95, issue_delay=5, waves=19)
    assert nineteen['calls'][QUERY] == 38 and one['calls'][QUERY] < 38
    assert nineteen['fits_hour'] and nineteen['expected_seconds'] >= one['expected_seconds'] + 18 * 5
    # one slot free: 95 waves of one need 190 looks, more than the hour allows
    assert not plan_run(api, enrollments=95, revocations=95, issue_delay=5, waves=95)['fits_hour']
    assert plan_run(api, enrollments=0, revocations=3, waves=5)['calls'].get(QUERY) is None
