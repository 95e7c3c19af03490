# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""One declaration through a run of ksef_certificate: its Decision (_decide.py) and its enrollment.

The decision says what to do and is not changed afterwards (read through the properties below); the Plan
keeps what the run did: the outcome (action, reason, changed), the enrollment's progress and the serials
revoked. One meaning per field: `decision.to_revoke` is what an absent declaration revokes, `revoked` what
this run revoked.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import Decision, wait_deadline


class Plan:
    """What the run decided (`decision`) and did (the other fields) for one declaration."""

    def __init__(self, decl, decision=None):
        self.decl = decl
        self.decision = decision if decision is not None else Decision(decl)
        # -- the outcome (starts as the decision says, changes as the run carries it out)
        self.action = self.decision.action
        self.reason = self.decision.reason
        self.changed = self.decision.changed
        self.held = None                  # 'deferred' (a later run can renew it in time) | 'blocked' (KSeF's limits): not sent
        self.hold_reason = None           # 'call_budget' | 'certificate_quota' | 'enrollment_quota'
        self.outage_at = None             # held: end of the certificate in use (aware datetime; None: none is valid)
        self.retry_at = None              # deferred: from when a later run can enroll it
        self.hold_note = None             # held: why and until when, in words (_rolling.hold_message)
        self.revoked = []                 # serials this run revoked
        self.already_revoked = []         # serials KSeF reported as not active when this run revoked them
        self.superseded_login = []        # superseded serials left active: this run's login (see _login.py)
        self.proof = None                 # _proof.RotationProof of the successor: made before revoking, or not valid yet
        self.backup_files = []
        # -- inputs the engine resolves before deciding (state file, status of a pending enrollment)
        self.wanted_serials = []
        self.intent_candidates = []
        # -- the enrollment
        self.reference_number = self.decision.reference_number
        self.status_code = None
        self.issued_serial = self.decision.issued_serial
        self.issued_public_key_sha256 = self.decision.issued_public_key_sha256
        self.enroll_key_path = self.decision.enroll_key_path
        self.completion_action = self.decision.completion_action
        self.install_certificate = self.decision.install_certificate   # the X.509 certificate to install/return
        self.install_item = self.decision.install_item
        self.deadline = None              # controller clock when the wait for the issued certificate ends
        self.polled_at = None             # controller clock of the last status poll
        self.sent_clock = None            # controller clock when the enrollment's answer came
        self.finished = False             # issued certificate retrieved (and installed unless check mode)
        # -- detection (_scheduler.py): query pages first, the status endpoint for what they do not show in time
        self.next_check = None            # controller clock of the next look for the issued certificate
        self.last_check = None            # controller clock of the last look (query round or status poll)
        self.misses = 0                   # looks since it was due that did not show it issued
        self.by_status = False            # poll GET /certificates/enrollments/{referenceNumber} from now on
        self.detected_by_query = False    # issued_serial came from a query page (its key is checked at retrieval)
        self.rejected_serials = set()     # query matches whose public key was not the enrolled one
        self.lost_answer = None           # _enroll.LostAnswer: the POST's answer was lost, looked for by name, type and key

    def carry_out(self, decision):
        """Take the decision the engine made once it resolved the state file (status reads stay as they are)."""
        self.decision = decision
        self.action, self.reason, self.changed = decision.action, decision.reason, decision.changed
        for name in ('reference_number', 'issued_serial', 'issued_public_key_sha256', 'enroll_key_path',
                     'completion_action', 'install_certificate', 'install_item'):
            if getattr(decision, name) is not None:
                setattr(self, name, getattr(decision, name))

    def start_wait(self, clock_now):
        """The enrollment was sent (or resumed): wait for it until wait_timeout (_decide.wait_deadline)."""
        self.deadline = wait_deadline(self.decl, clock_now)

    def hold(self, why, reason=None, outage_at=None, retry_at=None):
        """A due enrollment this run does not send (see _rolling.py): the certificate stays as it is."""
        self.held = why
        self.hold_reason = reason
        self.outage_at = outage_at
        self.retry_at = retry_at
        self.action = why
        self.changed = False

    # -- the decision, read-only ---------------------------------------------------------------

    @property
    def enroll(self):
        return self.decision.enroll and self.held is None

    @property
    def key_plan(self):
        return self.decision.key_plan

    @property
    def superseded(self):
        return self.decision.superseded

    @property
    def current_item(self):
        return self.decision.current_item

    @property
    def current_certificate(self):
        return self.decision.current_certificate

    @property
    def to_revoke(self):
        return self.decision.to_revoke

    @property
    def removed_files(self):
        return self.decision.removed_files
