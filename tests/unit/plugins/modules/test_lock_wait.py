# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""issue 14 test gap: two overlapping runs of the same declaration, and proof that the second waited for
the controller lock (not merely that one enrollment was made, which a lucky timing also gives).

Run A is held inside its enrollment POST (it holds the lock); run B is started then, and its lock wait
is observed through the sleep the lock calls while the lock is busy. Only then is A released. The order
of the in-memory KSeF's records shows B's first call after A's last; nothing compares wall-clock times.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils._engine.converge import Converger
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate
from ansible_collections.ksef.certificates.tests.unit.conftest import module_args
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import (
    FakeClock,
    FakeKsef,
    assert_pair,
    single,
)

# A safety net so a broken lock cannot hang the test run; never a measure of anything.
SAFETY_TIMEOUT = 30


class RunTracker:
    """FakeKsef.before_call: records which run made each call and holds run A inside its enrollment POST."""

    def __init__(self):
        self.log = []                           # (run, call) in the order KSeF saw them
        self.a_in_enroll = threading.Event()
        self.release_a = threading.Event()

    def __call__(self, call, details):
        self.log.append((threading.current_thread().name, call))
        if call == 'enroll' and threading.current_thread().name == 'A':
            self.a_in_enroll.set()
            assert self.release_a.wait(SAFETY_TIMEOUT), 'run A was never released'


def _converger(ksef, args, sleep, clock):
    with module_args(dict(args)):
        module = AnsibleModule(argument_spec=ksef_certificate.argument_spec(), supports_check_mode=True,
                               add_file_common_args=True, mutually_exclusive=ksef_certificate.MUTUALLY_EXCLUSIVE,
                               required_one_of=ksef_certificate.REQUIRED_ONE_OF)
    module.warn = lambda message: None
    return Converger(module, lambda: ksef, module.params, now=clock.now, sleep=sleep, clock=clock.monotonic)


def _thread(name, converger, results):
    def target():
        try:
            results[name] = converger.run()
        except Exception as exc:  # pylint: disable=broad-except
            results[name] = exc
    return threading.Thread(target=target, name=name)


def test_the_second_run_waits_for_the_lock_and_finds_the_certificate_in_place(tmp_path):
    clock = FakeClock()
    ksef = FakeKsef(clock)
    ksef.before_call = tracker = RunTracker()
    args = single(tmp_path)
    b_waiting = threading.Event()
    b_lock_sleeps = []

    def b_sleep(seconds):
        """The sleep of run B: called by the lock while another run holds it (B has no enrollment to poll)."""
        b_lock_sleeps.append([run for run, dummy in tracker.log])
        b_waiting.set()
        tracker.release_a.wait(0.05)

    results = {}
    run_a = _thread('A', _converger(ksef, args, clock.sleep, clock), results)
    run_b = _thread('B', _converger(ksef, args, b_sleep, FakeClock()), results)

    run_a.start()
    assert tracker.a_in_enroll.wait(SAFETY_TIMEOUT), 'run A never reached its enrollment'
    run_b.start()
    assert b_waiting.wait(SAFETY_TIMEOUT), 'run B never waited for the lock while run A held it'
    # B waited before it made any call: it was blocked by the lock, not by KSeF.
    assert 'B' not in b_lock_sleeps[0]
    tracker.release_a.set()
    run_a.join(SAFETY_TIMEOUT)
    run_b.join(SAFETY_TIMEOUT)
    assert not run_a.is_alive() and not run_b.is_alive()

    assert not isinstance(results['A'], Exception), results['A']
    assert not isinstance(results['B'], Exception), results['B']
    assert results['A']['action'] == 'enrolled'
    assert results['B']['action'] == 'none' and results['B']['changed'] is False
    # KSeF saw every call of A before the first call of B, and one enrollment in all.
    runs = [run for run, dummy in tracker.log]
    assert runs == sorted(runs) and runs.count('B') >= 1, tracker.log
    assert [call for run, call in tracker.log].count('enroll') == 1
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')
