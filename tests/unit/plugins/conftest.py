# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the one fake KSeF (fake_ksef.py) for every unit test under tests/unit/plugins.

    def test_x(run, ksef, clock, tmp_path):   # run: the ksef_certificate engine on `ksef`, at `clock`'s time
        result = run(single(tmp_path))
        assert ksef.names() == [...]
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock, FakeKsef, Run


@pytest.fixture
def clock():
    """FakeClock: monotonic seconds from 0, wall clock from fake_ksef.START; sleeping advances it at once."""
    return FakeClock()


@pytest.fixture
def ksef(clock):
    """FakeKsef on `clock`: no certificates, published rate limits, enrollments issued at once."""
    return FakeKsef(clock)


@pytest.fixture
def run(ksef, clock):
    """Run: run(args, check_mode=False, diff=False, login=None) -> the engine's result; run.warnings."""
    return Run(ksef, clock)
