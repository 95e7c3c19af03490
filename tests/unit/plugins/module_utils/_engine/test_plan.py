# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan: the decision stays as decided, the plan keeps what the run did (one meaning per field)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import Decision
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan


class Decl:
    """The two fields of a declaration the plan reads itself (wait and its timeout)."""

    def __init__(self, wait=True, wait_seconds=300):
        self.wait = wait
        self.wait_seconds = wait_seconds


def test_a_plan_starts_as_its_decision_says():
    decision = Decision(Decl(), action='renewed', reason='renewal_due', changed=True, enroll=True,
                        key_plan='generate_next', superseded=['01'], reference_number='REF-1')
    plan = Plan(decision.decl, decision)
    assert (plan.action, plan.reason, plan.changed, plan.enroll) == ('renewed', 'renewal_due', True, True)
    assert (plan.key_plan, plan.superseded, plan.reference_number) == ('generate_next', ['01'], 'REF-1')
    assert plan.revoked == [] and plan.held is None and not plan.finished


def test_without_a_decision_the_plan_does_nothing():
    plan = Plan(Decl())
    assert (plan.action, plan.changed, plan.enroll, plan.superseded) == ('none', False, False, [])


def test_carry_out_takes_the_new_decision_but_keeps_what_it_does_not_name():
    decl = Decl()
    plan = Plan(decl, Decision(decl, reference_number='REF-1', issued_serial='0A'))
    plan.carry_out(Decision(decl, action='pending', reason='processing', changed=True, issued_serial='0B'))
    assert (plan.action, plan.reason, plan.changed) == ('pending', 'processing', True)
    assert plan.issued_serial == '0B'            # named by the new decision
    assert plan.reference_number == 'REF-1'      # not named (None): the resolved value stays


def test_hold_keeps_the_certificate_as_it_is():
    decl = Decl()
    plan = Plan(decl, Decision(decl, action='renewed', changed=True, enroll=True))
    plan.hold('deferred')
    assert (plan.held, plan.action, plan.changed, plan.enroll) == ('deferred', 'deferred', False, False)
    assert plan.decision.enroll and plan.decision.action == 'renewed'   # the decision itself is not rewritten


def test_the_wait_ends_wait_timeout_after_the_answer_or_never_without_wait():
    plan = Plan(Decl(wait=True, wait_seconds=120))
    plan.start_wait(1000.0)
    assert plan.deadline == 1120.0
    no_wait = Plan(Decl(wait=False))
    no_wait.start_wait(1000.0)
    assert no_wait.deadline is None
