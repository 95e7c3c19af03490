# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The decision of ksef_certificate: declaration + KSeF records + local files + now -> plan.

No I/O and no clock read here: `decide()` gets what KSeF said (KsefView), a reader of the local
files (for the PKCS#12 check and remove_files) and `now`, and returns a Plan. A plan that must forget
the enrollment state file says so (`discard_record`); the engine does it.

Identity of a declared certificate in KSeF: exact name, type, and public key equal to the declared key
(private key file or CSR). Names alone are hints: KSeF matches names as substrings.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._pending import INTENT_BLOCK_SECONDS
from ansible_collections.ksef.certificates.plugins.module_utils._rules import expired, parse_datetime, renewal_due

# Controller and KSeF clocks may differ: look this far before the recorded intent time.
INTENT_CLOCK_SLACK = datetime.timedelta(minutes=10)


class KsefView:
    """What the run knows of KSeF: the query's certificate records and the certificates retrieved so far."""

    def __init__(self, records=None, retrieved=None):
        self.records = list(records or [])
        self.retrieved = dict(retrieved or {})    # serial number -> x509 certificate

    def candidates(self, decl):
        """Certificates with exactly the declared name and type, newest request first."""
        found = [record for record in self.records if record.name == decl.name and record.type == decl.type]
        return sorted(found, key=lambda record: record.requested_at, reverse=True)

    def by_serial(self, serial):
        for record in self.records:
            if record.serial_number == serial:
                return record
        return None

    def public_key_sha256(self, serial):
        """Fingerprint of the public key of a retrieved certificate; None when it was not retrieved."""
        certificate = self.retrieved.get(serial)
        return _crypto.public_key_fingerprint(certificate.public_key()) if certificate is not None else None


class Plan:
    """What the run decided (and later did) for one declaration."""

    def __init__(self, decl):
        self.decl = decl
        # -- the decision
        self.action = 'none'              # none | installed | enrolled | renewed | pending | revoked | removed
        self.reason = None
        self.changed = False
        self.current_item = None          # CertificateRecord of the declared certificate before the run
        self.current_certificate = None   # its X.509 certificate when known
        self.enroll = False
        self.key_plan = None              # 'reuse' | 'generate_in_place' | 'generate_next' (key form only)
        self.superseded = []
        self.revoked = []                 # absent: the serials to revoke; then those revoked
        self.removed_files = []
        self.discard_record = False       # the state file's record is finished: the engine removes it
        self.warnings = []
        # -- the enrollment, filled in while the plan is carried out
        self.enroll_key_path = None
        self.already_revoked = []         # serials KSeF reported as not active when this run revoked them
        self.superseded_login = []        # superseded serials left active: this run's login (see _login.py)
        self.proof = None                 # _proof.RotationProof of the successor: made before revoking, or not valid yet
        self.reference_number = None
        self.status_code = None
        self.issued_serial = None
        self.issued_public_key_sha256 = None
        self.install_certificate = None   # an X.509 certificate to install/return
        self.install_item = None
        self.backup_files = []
        self.wanted_serials = []
        self.intent_candidates = []
        self.deadline = None
        self.polled_at = None             # controller clock of the last status poll
        self.sent_clock = None            # controller clock when the enrollment's answer came
        self.finished = False             # issued certificate retrieved (and installed unless check mode)
        self.completion_action = None     # action of a resumed enrollment once it is installed
        # -- detection (_scheduler.py): query pages first, the status endpoint for what they do not show in time
        self.next_check = None            # controller clock of the next look for the issued certificate
        self.last_check = None            # controller clock of the last look (query round or status poll)
        self.misses = 0                   # looks since it was due that did not show it issued
        self.by_status = False            # poll GET /certificates/enrollments/{referenceNumber} from now on
        self.detected_by_query = False    # issued_serial came from a query page (its key is checked at retrieval)
        self.rejected_serials = set()     # query matches whose public key was not the enrolled one


def known_before_post(record):
    """Serials an enrollment cannot have created: superseded ones and those listed before its POST."""
    record = record or {}
    return set(record.get('superseded') or []) | set(record.get('known_serials') or [])


def intent_may_expire(decl, now):
    """An unconfirmed intent stops blocking new enrollments after INTENT_BLOCK_SECONDS (or at once with force)."""
    if decl.force:
        return True
    age = now - parse_datetime(decl.record['intent_time'])
    return age.total_seconds() > INTENT_BLOCK_SECONDS


def intent_candidates(decl, view):
    """Serials that may be the certificate of a recorded intent: requested after it, not known before it."""
    intent_time = parse_datetime(decl.record['intent_time'])
    known = known_before_post(decl.record)
    return [record.serial_number for record in view.candidates(decl)
            if record.requested_at >= intent_time - INTENT_CLOCK_SLACK and record.serial_number not in known]


def known_current(decl, view):
    """The declared certificate proven by local files alone: local cert of the declared key, listed active."""
    certificate = decl.local_certificate
    fingerprint = decl.declared_public_key_sha256
    if certificate is None or fingerprint is None:
        return None
    if _crypto.public_key_fingerprint(certificate.public_key()) != fingerprint:
        return None
    record = view.by_serial(_crypto.serial_hex(certificate))
    if record is None or record.name != decl.name or record.type != decl.type:
        return None
    if not record.active:
        # Not healthy: look at the other candidates too (a renewal may already exist).
        return None
    return record, certificate


def wanted_serials(decl, view):
    """Serials whose certificates the decision needs beyond what local files prove (state files aside)."""
    if decl.state == 'absent':
        if decl.declared_public_key_sha256:
            return [record.serial_number for record in view.candidates(decl) if record.active]
        return []
    if known_current(decl, view) is not None or decl.declared_public_key_sha256 is None:
        return []
    # A key that ever backed a certificate must not be used again, so the key form looks at every status.
    return [record.serial_number for record in view.candidates(decl)
            if not decl.uses_csr or record.status in ('active', 'blocked')]


def pick_current(ours):
    """Among (record, certificate) pairs of the declared key: the active one valid longest, else the newest."""
    if not ours:
        return None
    actives = [pair for pair in ours if pair[0].active]
    if actives:
        return max(actives, key=lambda pair: pair[0].valid_to)
    return max(ours, key=lambda pair: pair[0].requested_at)


def renewal_reason(decl, current, now):
    """Why the declared certificate must be enrolled again, or None when it is healthy."""
    if decl.force:
        return 'force'
    if current is None:
        return None
    record = current[0]
    if record.status in ('revoked', 'blocked'):
        return record.status
    if record.status == 'expired' or expired(record.valid_to, now):
        return 'expired'
    if renewal_due(record.valid_to, now, decl.renew_before_days):
        return 'renewal_window'
    return None


def decide(decl, view, local_files, now, plan=None):
    """The plan for one declaration.

    view: KsefView; local_files: a reader with need_install(decl, certificate) and existing(paths)
    (_install.LocalFiles); now: an aware datetime. The state file's record must be resolved already:
    `plan` is the plan the engine started while it read a pending enrollment's status (issued_serial,
    intent_candidates); without one a fresh Plan is made.
    """
    plan = plan if plan is not None else Plan(decl)
    if decl.state == 'absent':
        decide_absent(plan, view, local_files)
        return plan
    record = decl.record
    if record is not None and record['phase'] == 'pending':
        decide_resume(plan)
        return plan
    if record is not None and record['phase'] == 'intent':
        if decide_intent(plan, view, now):
            return plan
    decide_present(plan, view, local_files, now)
    return plan


def decide_present(plan, view, local_files, now):
    decl = plan.decl
    candidates = view.candidates(decl)
    actives = [record for record in candidates if record.active]
    fingerprint = decl.declared_public_key_sha256
    known = known_current(decl, view)
    ours = []
    if known is not None:
        ours = [known]
    elif fingerprint is not None:
        ours = [(record, view.retrieved[record.serial_number]) for record in candidates
                if view.public_key_sha256(record.serial_number) == fingerprint]
    current = pick_current(ours)
    if current is not None:
        plan.current_item, plan.current_certificate = current
    key_used = bool(ours) or (decl.local_certificate is not None and fingerprint is not None and
                              _crypto.public_key_fingerprint(decl.local_certificate.public_key()) == fingerprint)
    reason = renewal_reason(decl, current, now)
    if reason is None and current is None:
        reason = 'key_mismatch' if actives else 'missing'
    if reason is None:
        # Healthy in KSeF: write local files that are missing or stale (action installed), else nothing.
        plan.reason = 'healthy'
        plan.install_certificate = plan.current_certificate
        plan.install_item = plan.current_item
        if local_files.need_install(decl, plan.current_certificate):
            plan.action = 'installed'
            plan.changed = True
        return
    plan.reason = reason
    plan.enroll = True
    plan.action = 'renewed' if current is not None else 'enrolled'
    plan.superseded = [record.serial_number for record in actives]
    if decl.uses_csr:
        plan.key_plan = None
    elif decl.key is None:
        plan.key_plan = 'generate_in_place'
    elif key_used:
        plan.key_plan = 'generate_next'
    else:
        plan.key_plan = 'reuse'


def decide_resume(plan):
    """A recorded enrollment: still processing, or issued and waiting to be installed."""
    record = plan.decl.record
    plan.reference_number = record['reference_number']
    plan.superseded = list(record.get('superseded') or [])
    plan.enroll_key_path = record.get('key_path')
    plan.issued_public_key_sha256 = record.get('public_key_sha256')
    plan.completion_action = record.get('action') or 'enrolled'
    plan.reason = 'resumed'
    if plan.issued_serial:
        plan.action = plan.completion_action
        plan.changed = True
    else:
        plan.action = 'pending'


def decide_intent(plan, view, now):
    """An enrollment may have been sent without its answer being recorded: look for its certificate.

    Returns True when the intent decided the plan; False when it expired (the plan then discards the
    record and the normal rules apply). Raises KsefError while the intent still blocks.
    """
    decl = plan.decl
    record = decl.record
    fingerprint = record.get('public_key_sha256')
    for serial in plan.intent_candidates:
        if view.public_key_sha256(serial) == fingerprint:
            plan.action = 'installed'
            plan.reason = 'reconciled'
            plan.changed = True
            plan.issued_serial = serial
            plan.issued_public_key_sha256 = fingerprint
            plan.enroll_key_path = record.get('key_path')
            plan.superseded = list(record.get('superseded') or [])
            return True
    if intent_may_expire(decl, now):
        plan.warnings.append('No certificate of %s with the public key of the enrollment attempted at %s appeared in '
                             'KSeF; %s, a new enrollment is allowed'
                             % (decl.label, record['intent_time'],
                                'force is set' if decl.force else 'the attempt is older than %d s' % INTENT_BLOCK_SECONDS))
        plan.discard_record = True
        return False
    raise KsefError('KSeF may still be processing the enrollment of certificate %s sent at %s (its answer was never '
                    'recorded); no certificate with that name, type and public key exists yet. Rerun later, or set '
                    'force to send a new enrollment. State file: %s'
                    % (decl.label, record['intent_time'], decl.state_path))


def decide_absent(plan, view, local_files):
    decl = plan.decl
    fingerprint = decl.declared_public_key_sha256
    matches = [record for record in view.candidates(decl) if record.active and
               (fingerprint is None or view.public_key_sha256(record.serial_number) == fingerprint)]
    plan.revoked = [record.serial_number for record in matches]
    if matches:
        plan.current_item = matches[0]
        plan.current_certificate = view.retrieved.get(matches[0].serial_number)
    plan.reason = 'present' if matches else 'absent'
    if decl.remove_files:
        plan.removed_files = local_files.existing(decl.local_files())
    if plan.revoked:
        plan.action = 'revoked'
        plan.changed = True
    elif plan.removed_files:
        plan.action = 'removed'
        plan.changed = True
