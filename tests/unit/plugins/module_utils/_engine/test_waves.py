# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The wave planner and the quota forecast (pure)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.module_utils._engine.waves import (
    Due,
    Renewal,
    expiry_order,
    forecast,
    plan_waves,
)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)


def day(days, hours=0):
    return NOW + datetime.timedelta(days=days, hours=hours)


def auth(name, days):
    """An Authentication renewal: its predecessor is revoked once the successor is installed."""
    return Due(name, name, day(days), 1)


def offline(name, days):
    """An Offline renewal: its predecessor stays active, the successor keeps its slot."""
    return Due(name, name, day(days), 0)


def new(name):
    return Due(name, name, None, 0)


def test_a_fleet_over_half_the_limit_renews_in_waves_of_the_free_slots():
    dues = [auth('a%02d' % index, 1 + index % 7) for index in range(95)]
    plan = plan_waves(dues, 5)
    assert [len(wave) for wave in plan.waves] == [5] * 19
    assert plan.deferred == [] and plan.blocked == []
    flat = [key for wave in plan.waves for key in wave]
    assert sorted(flat) == sorted(item.key for item in dues)
    # soonest expiry first
    expiries = [day(1 + int(key[1:]) % 7) for key in flat]
    assert expiries == sorted(expiries)


def test_expiry_order_puts_outages_first_then_soonest_then_name():
    items = [auth('b', 3), auth('a', 3), new('z'), auth('c', 1)]
    assert [item.key for item in sorted(items, key=expiry_order)] == ['z', 'c', 'a', 'b']


def test_one_free_slot_cycles_one_at_a_time():
    plan = plan_waves([auth('a', 2), auth('b', 1), auth('c', 3)], 1)
    assert plan.waves == [['b'], ['a'], ['c']]


def test_no_free_slot_blocks_everything():
    plan = plan_waves([auth('a', 2), offline('o', 1)], 0)
    assert plan.waves == [] and plan.blocked == [('o', 'certificate_quota'), ('a', 'certificate_quota')]


def test_certificates_that_keep_their_slot_leave_one_for_the_renewals_that_cycle():
    # Two free slots: the Offline renewals may take one for good; the last is kept for a1, a2 to cycle, and o2
    # takes it only after them.
    plan = plan_waves([offline('o1', 1), offline('o2', 2), auth('a1', 3), auth('a2', 4)], 2)
    assert plan.waves == [['o1', 'a1'], ['a2'], ['o2']]
    assert plan.blocked == []
    plan = plan_waves([offline('o1', 1), offline('o2', 2), offline('o3', 2), auth('a1', 3)], 2)
    assert plan.waves == [['o1', 'a1'], ['o2']]
    assert plan.blocked == [('o3', 'certificate_quota')]


def test_a_keeper_past_the_reserve_takes_a_slot_left_after_the_cycling_renewals():
    # Three slots, two keepers before the renewal that cycles: o1, o2 and a fit the first wave (3 slots), and
    # the reserve rule holds only while a cycling renewal is still to come.
    plan = plan_waves([offline('o1', 1), offline('o2', 1), offline('o3', 1), auth('a', 2)], 3)
    assert plan.waves == [['o1', 'o2', 'a'], ['o3']]
    assert plan.blocked == []
    plan = plan_waves([offline('o%d' % n, 1) for n in range(5)] + [auth('a', 2)], 3)
    assert plan.waves == [['o0', 'o1', 'a'], ['o2']]
    assert plan.blocked == [('o3', 'certificate_quota'), ('o4', 'certificate_quota')]


def test_without_renewals_that_cycle_keepers_use_every_slot():
    plan = plan_waves([offline('o1', 1), new('n1'), offline('o2', 2)], 2)
    assert plan.waves == [['n1', 'o1']] and plan.blocked == [('o2', 'certificate_quota')]


def test_a_renewal_that_frees_two_slots_gives_both_back():
    plan = plan_waves([Due('double', 'double', day(1), 2), offline('o1', 2), offline('o2', 3), auth('a', 4)], 1)
    # double frees two slots after the first wave: a cycles through them, then o1 and o2 keep them.
    assert plan.waves == [['double'], ['a'], ['o1', 'o2']]
    assert plan.blocked == []


def test_the_hour_budget_defers_the_latest_expiries_to_a_later_run():
    dues = [auth('a%d' % n, n + 1) for n in range(6)]
    plan = plan_waves(dues, 2, max_enrollments=4)
    assert plan.waves == [['a0', 'a1'], ['a2', 'a3']]
    assert plan.deferred == ['a4', 'a5'] and plan.blocked == []
    assert plan_waves(dues, 2, max_enrollments=0).waves == []


def test_the_enrollment_request_quota_blocks_what_it_cannot_cover():
    dues = [auth('a%d' % n, n + 1) for n in range(5)]
    plan = plan_waves(dues, 10, enrollments_left=3, max_enrollments=2)
    # deferred ones need requests too: 2 now, 1 later, 2 never within the quota
    assert plan.waves == [['a0', 'a1']]
    assert plan.deferred == ['a2']
    assert plan.blocked == [('a3', 'enrollment_quota'), ('a4', 'enrollment_quota')]
    assert plan_waves(dues, 10, enrollments_left=5).blocked == []
    assert plan_waves(dues, 10, enrollments_left=0).blocked == [(item.key, 'enrollment_quota') for item in dues]


def test_keepers_count_against_the_budget_and_the_enrollment_quota():
    dues = [offline('o1', 1), offline('o2', 2), offline('o3', 3), auth('a', 4)]
    plan = plan_waves(dues, 2, max_enrollments=3)
    assert plan.waves == [['o1'], ['o2']] and plan.deferred == ['a'] and plan.blocked == [('o3', 'certificate_quota')]
    plan = plan_waves(dues, 2, enrollments_left=3)
    assert plan.waves == [['o1'], ['o2']]
    assert plan.blocked == [('a', 'enrollment_quota'), ('o3', 'certificate_quota')]


def test_new_certificates_go_first_and_keep_their_slots():
    plan = plan_waves([auth('a', 1), new('n')], 2)
    assert plan.waves == [['n', 'a']]


# ---------------------------------------------------------------------------------------------
# forecast
# ---------------------------------------------------------------------------------------------

def test_forecast_of_a_fleet_that_fits_peaks_at_the_limit_on_the_renewal_day_without_outage():
    renewals = [Renewal('a%02d' % n, day(10), day(40), 1) for n in range(95)]
    result = forecast(renewals, 95, 100, NOW)
    assert result.peak_active == 100 and result.peak_date == day(10) and result.outages == []


def test_forecast_peak_counts_only_the_largest_wave_of_a_day():
    renewals = [Renewal('a', day(3), day(33), 1), Renewal('b', day(5), day(35), 1)]
    result = forecast(renewals, 10, 100, NOW)
    assert result.peak_active == 11 and result.peak_date == day(3) and result.outages == []


def test_forecast_offline_predecessors_hold_their_slots_until_they_expire():
    renewals = [Renewal('o1', day(5), day(35), 0), Renewal('o2', day(6), day(36), 0), Renewal('a', day(40), day(70), 1)]
    result = forecast(renewals, 3, 10, NOW)
    assert result.peak_active == 5 and result.peak_date == day(6) and result.outages == []


def test_forecast_says_when_a_renewal_finds_no_slot_before_it_expires():
    renewals = [Renewal('o%d' % n, day(5), day(35), 0) for n in range(3)] + [Renewal('a', day(50), day(80), 1)]
    result = forecast(renewals, 3, 4, NOW)
    # one free slot: o0 renews; o1, o2 cannot before they expire on day 35 (their outage begins then)
    assert result.outages == [('o1', day(35)), ('o2', day(35))]
    assert result.peak_active == 4 and result.peak_date == day(5)


def test_forecast_a_blocked_renewal_waits_for_a_slot_that_comes_back_before_it_expires():
    # o renewed on day 2 keeps its predecessor until day 20; 'late' (due day 3, expires day 30) gets that slot then.
    renewals = [Renewal('o', day(2), day(20), 0), Renewal('late', day(3), day(30), 0)]
    result = forecast(renewals, 2, 3, NOW)
    assert result.outages == []
    assert result.peak_active == 3 and result.peak_date == day(2)


def test_forecast_releases_give_slots_back_and_missing_certificates_are_outages_now():
    result = forecast([Renewal('gone', NOW - datetime.timedelta(days=1), None, 0)], 5, 5, NOW, releases=[day(10)])
    assert result.outages == []
    assert result.peak_active == 5 and result.peak_date == NOW
    result = forecast([Renewal('gone', NOW, None, 0)], 5, 5, NOW)
    assert result.outages == [('gone', NOW)]
    assert result.peak_active == 5 and result.peak_date == NOW


def test_forecast_renewals_already_due_count_from_now():
    result = forecast([Renewal('a', day(-3), day(20), 1)], 1, 1, NOW)
    assert result.outages == [('a', day(20))]
    result = forecast([Renewal('a', day(-3), day(20), 1)], 1, 2, NOW)
    assert result.peak_active == 2 and result.peak_date == NOW and result.outages == []


def test_a_wave_is_as_large_as_the_slots_the_waves_before_it_left():
    # Three slots: o1 keeps one for good, so after the first wave two are left for each later wave.
    plan = plan_waves([offline('o1', 1)] + [auth('a%d' % n, 2 + n) for n in range(6)], 3)
    assert plan.waves == [['o1', 'a0', 'a1'], ['a2', 'a3'], ['a4', 'a5']]


def test_renewals_that_cycle_take_nothing_from_the_room_of_keepers():
    plan = plan_waves([auth('a1', 1), auth('a2', 2), offline('o1', 3)], 3)
    assert plan.waves == [['a1', 'a2', 'o1']]


def test_forecast_gives_a_slot_of_the_day_to_the_renewal_that_expires_first():
    # Same renewal day, one free slot: b-soon (expires day 35) renews; a-late waits for b-soon's predecessor.
    renewals = [Renewal('a-late', day(5), day(36), 0), Renewal('b-soon', day(5), day(35), 0)]
    result = forecast(renewals, 1, 2, NOW)
    assert result.outages == []


def test_forecast_a_revoked_authentication_predecessor_gives_back_no_second_slot():
    # a renews on day 1 and its predecessor is revoked at once: its end (day 30) frees nothing more later.
    renewals = [Renewal('a', day(1), day(30), 1), Renewal('n1', day(40), None, 0), Renewal('n2', day(40), None, 0)]
    result = forecast(renewals, 1, 2, NOW)
    assert result.outages == [('n2', NOW)]
    assert result.peak_active == 2 and result.peak_date == day(1)


def test_forecast_a_release_gives_back_exactly_one_slot():
    renewals = [Renewal('n1', day(20), None, 0), Renewal('n2', day(20), None, 0)]
    result = forecast(renewals, 3, 3, NOW, releases=[day(10)])
    assert result.outages == [('n2', NOW)]
