# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""RatePacer and SlidingWindow alone, on a fake clock (the client's pacing is tested in test_http.py)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._pacing import (
    AUTH_PUBLIC_LIMITS,
    OTHER_LIMITS,
    RatePacer,
    SlidingWindow,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock


class Host:
    """What RatePacer uses of the client: clock(), sleep(), warn(), log()."""

    def __init__(self):
        self.clock = FakeClock()
        self.sleep = self.clock.sleep
        self.warnings = []
        self.logs = []
        self.warn = self.warnings.append
        self.log = self.logs.append


def test_a_window_counts_a_call_from_its_answer_plus_the_margin():
    window = SlidingWindow(margin=0.25)
    stamp = window.record(0.0)
    window.settle(stamp, 2.0)  # the answer came 2 s later: KSeF may have counted it then
    assert window.accepted_since(1.0) == 1
    window.mark_refused(2.0)  # KSeF answered 429: not in its count
    assert window.accepted_since(1.0) == 0
    assert window.delay_needed(2.5, {1: 1}) == pytest.approx(0.75)
    assert window.delay_needed(3.25, {1: 1}) == 0.0


def test_auth_endpoints_and_certificate_endpoints_have_their_own_groups():
    pacer = RatePacer(Host())
    assert pacer.limits_for('post', '/auth/challenge') == AUTH_PUBLIC_LIMITS
    assert pacer.limits_for('GET', '/certificates/limits') == OTHER_LIMITS
    assert pacer.limits_source == 'published'


def test_pace_waits_for_a_free_slot_and_counts_the_wait():
    host = Host()
    pacer = RatePacer(host, margin=0.0)
    pacer.set_rate_limits({'other': {'perSecond': 2, 'perMinute': 100, 'perHour': 1000}})
    for dummy in range(3):
        pacer.pace('GET /certificates/limits')
    assert host.clock.sleeps == [1.0]
    assert pacer.paced_seconds == pytest.approx(1.0)
    assert pacer.seconds_until_slot('GET', '/certificates/limits') == 0.0
    pacer.pace('GET /certificates/limits')  # the second call in this second fills it
    assert pacer.seconds_until_slot('GET', '/certificates/limits') == pytest.approx(1.0)
    assert pacer.seconds_until_slot('GET', '/certificates/enrollments/data') == 0.0  # a counter of its own


def test_a_429_below_the_assumed_limit_teaches_the_lower_one_for_the_group():
    host = Host()
    pacer = RatePacer(host, margin=0.0)
    window, stamp = None, None
    for dummy in range(3):
        window, stamp = pacer.pace('POST /certificates/query')
    window.mark_refused(stamp)  # the third call met the 429
    assert pacer.learn_from_429('POST /certificates/query', window, 30, stamp) == (60, 2)
    assert pacer.other_limits[60] == 2
    assert pacer.limits_source == 'published+429'
    assert pacer.learned_limits == [{'endpoint': 'POST /certificates/query', 'window': 60, 'limit': 2}]
    assert len(host.warnings) == 1
    # Effective limits read later keep what the 429 taught (the lower value wins).
    pacer.set_rate_limits({'other': {'perSecond': 10, 'perMinute': 30, 'perHour': 120}})
    assert pacer.other_limits == {1: 10, 60: 2, 3600: 120}
    assert pacer.limits_source == 'GET /rate-limits'
    # Without Retry-After nothing is learned.
    assert pacer.learn_from_429('POST /certificates/query', window, None, stamp) is None
