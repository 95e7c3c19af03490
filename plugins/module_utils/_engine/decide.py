# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The decision of ksef_certificate: declaration + KSeF records + local files + now -> Decision.

No I/O and no clock read here: `decide()` gets what KSeF said (KsefView), a reader of the local
files (for the PKCS#12 check and remove_files) and `now`, and returns a Decision. A plan that must forget
the enrollment state file says so (`discard_record`); the engine does it.

Identity of a declared certificate in KSeF: exact name, type, and public key equal to the declared key
(private key file or CSR). Names alone are hints: KSeF matches names as substrings.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import INTENT_BLOCK_SECONDS
from ansible_collections.ksef.certificates.plugins.module_utils._rules import expired, parse_datetime, renewal_due, renews_every_run

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


class Decision:
    """What the run decided for one declaration: decide() fills it once, nothing changes it afterwards.

    The engine carries it out on a Plan (_plan.py), which keeps what was done apart from what was decided.
    """

    def __init__(self, decl, **fields):
        self.decl = decl
        self.action = 'none'              # none | installed | enrolled | renewed | pending | revoked | removed
        self.reason = None
        self.changed = False              # true when the decision alone changes something (install, revoke, remove)
        self.current_item = None          # CertificateRecord of the declared certificate before the run
        self.current_certificate = None   # its X.509 certificate when known
        self.enroll = False
        self.key_plan = None              # 'reuse' | 'generate_in_place' | 'generate_next' (key form only)
        self.superseded = []              # active serials of the name and type that a new certificate replaces
        self.kept_predecessors = []       # healthy: older active serials of the name and type an earlier run kept
        self.to_revoke = []               # absent: the serials to revoke
        self.removed_files = []           # absent with remove_files: the files to remove
        self.install_certificate = None   # an X.509 certificate already in KSeF to install/return
        self.install_item = None
        self.discard_record = False       # the state file's record is finished: the engine removes it
        self.warnings = []
        # -- a recorded enrollment (state file): resumed, or reconciled by its public key
        self.reference_number = None
        self.issued_serial = None
        self.issued_public_key_sha256 = None
        self.enroll_key_path = None
        self.completion_action = None     # action of a resumed enrollment once it is installed
        for name, value in fields.items():
            if not hasattr(self, name):
                raise AttributeError('Decision has no field %s' % name)
            setattr(self, name, value)


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


def decide(decl, view, local_files, now, issued_serial=None, intent_candidates=()):
    """The Decision for one declaration.

    view: KsefView; local_files: a reader with need_install(decl, certificate) and existing(paths)
    (_install.LocalFiles); now: an aware datetime. The state file's record must be resolved already:
    `issued_serial` is what the status of a pending enrollment gave, `intent_candidates` the serials that may
    be the certificate of an unconfirmed intent.
    """
    decision = Decision(decl, issued_serial=issued_serial)
    if decl.state == 'absent':
        decide_absent(decision, view, local_files)
        return decision
    record = decl.record
    if record is not None and record['phase'] == 'pending':
        decide_resume(decision)
        return decision
    if record is not None and record['phase'] == 'intent':
        if decide_intent(decision, view, now, intent_candidates):
            return decision
    decide_present(decision, view, local_files, now)
    return decision


def decide_present(decision, view, local_files, now):
    decl = decision.decl
    candidates = view.candidates(decl)
    actives = [record for record in candidates if record.active]
    fingerprint = decl.declared_public_key_sha256
    known = known_current(decl, view)
    # The declared key's certificates: the one local files prove, else those KSeF holds for the key (none without one).
    ours = [known] if known is not None else [
        (record, view.retrieved[record.serial_number]) for record in candidates
        if fingerprint is not None and view.public_key_sha256(record.serial_number) == fingerprint]
    current = pick_current(ours)
    if current is not None:
        decision.current_item, decision.current_certificate = current
    warning = renew_window_warning(decl, decision.current_item, decl.local_certificate)
    if warning:
        decision.warnings.append(warning)
    key_used = bool(ours) or (decl.local_certificate is not None and fingerprint is not None and
                              _crypto.public_key_fingerprint(decl.local_certificate.public_key()) == fingerprint)
    refusal = missing_key_refusal(decl, actives, decision)
    if refusal:
        raise KsefError(refusal)
    reason = renewal_reason(decl, current, now)
    if reason is None and current is None:
        reason = 'key_mismatch' if actives else 'missing'
    if reason is None:
        # Healthy in KSeF: write local files that are missing or stale (action installed), else nothing.
        decision.reason = 'healthy'
        decision.install_certificate = decision.current_certificate
        decision.install_item = decision.current_item
        decision.kept_predecessors = kept_predecessors(decl, actives, decision.current_item)
        if local_files.need_install(decl, decision.current_certificate):
            decision.action = 'installed'
            decision.changed = True
        return
    decision.reason = reason
    decision.enroll = True
    decision.action = 'renewed' if current is not None else 'enrolled'
    decision.superseded = [record.serial_number for record in actives]
    if decl.uses_csr:
        decision.key_plan = None
    elif decl.key is None:
        decision.key_plan = 'generate_in_place'
    elif key_used:
        decision.key_plan = 'generate_next'
    else:
        decision.key_plan = 'reuse'


def kept_predecessors(decl, actives, current):
    """Active certificates of the declared name and type requested before the declared one, to revoke now.

    An earlier run kept them: its successor (the declared certificate) did not prove itself, or revoke_superseded
    was off. The engine proves the declared certificate first and revokes them only then. None for a CSR
    declaration: its key is not here to prove anything (the role proves a key-on-host successor on its host).
    """
    if not decl.revoke_superseded or decl.uses_csr:
        return []
    return [record.serial_number for record in actives
            if record.serial_number != current.serial_number and record.requested_at < current.requested_at]


def renew_window_warning(decl, record, local_certificate=None):
    """renew_before_days at or above the certificate's lifetime makes it due from its first day: every run renews.

    The lifetime is KSeF's (the record's validFrom..validTo), else the local certificate's; None when unknown.
    """
    if record is not None and record.valid_from is not None:
        lifetime = renews_every_run(decl.renew_before_days, record.valid_from, record.valid_to)
    elif local_certificate is not None:
        lifetime = renews_every_run(decl.renew_before_days, _crypto.certificate_not_before(local_certificate),
                                    _crypto.certificate_not_after(local_certificate))
    else:
        return None
    if lifetime is None:
        return None
    return ('Certificate %s: renew_before_days %d is at or above its lifetime of %d days, so it is due as soon as it is '
            'issued and every run renews it (one enrollment request each); choose fewer days (30 is the default)'
            % (decl.label, decl.renew_before_days, lifetime))


def missing_key_refusal(decl, actives, decision):
    """A private key file that is gone while KSeF still lists active certificates of the exact name and type.

    Nothing left on the controller says whether one of them was this key's: if it was, enrolling again would spend
    one of the subject's enrollment requests on every run whose key directory is not kept (an AWX job starts with
    an empty one), and leave one more active Offline certificate each time. So it is refused (the message, before
    anything is sent) unless replace_missing_key allows the replacement (a warning then). None when it does not apply.
    """
    if not actives or decl.key is not None or decl.uses_csr or decl.uses_token or not decl.private_key_path:
        return None
    serials = ', '.join('%s (valid until %s)' % (record.serial_number, record.valid_to.strftime('%Y-%m-%d'))
                        for record in actives)
    if decl.replace_missing_key:
        decision.warnings.append('Certificate %s: the private key %s does not exist while KSeF lists active %s; '
                                 'replace_missing_key is set, so a new key is enrolled and the active ones are superseded'
                                 % (decl.label, decl.private_key_path, serials))
        return None
    return ('Certificate %s: the private key %s does not exist, but KSeF still lists active %s of this name and type. '
            'If that key was lost (an AWX/AAP execution environment keeps no files between jobs), a new enrollment '
            'would replace it on every run and spend the enrollment quota. Keep the key directory on persistent '
            'storage and put the key back (docs/awx/README.md, "Keys kept on the controller"), or set '
            'replace_missing_key=true (role: ksef_deploy_replace_missing_keys) to enroll a replacement once. '
            'Nothing was sent' % (decl.label, decl.private_key_path, serials))


def wait_deadline(decl, clock_now):
    """The one computation of how long the run waits for an enrollment: clock_now + wait_timeout (wait: true)."""
    return clock_now + decl.wait_seconds if decl.wait else None


def decide_resume(decision):
    """A recorded enrollment: still processing, or issued and waiting to be installed."""
    record = decision.decl.record
    decision.reference_number = record['reference_number']
    decision.superseded = list(record.get('superseded') or [])
    decision.enroll_key_path = record.get('key_path')
    decision.issued_public_key_sha256 = record.get('public_key_sha256')
    decision.completion_action = record.get('action') or 'enrolled'
    decision.reason = 'resumed'
    if decision.issued_serial:
        decision.action = decision.completion_action
        decision.changed = True
    else:
        decision.action = 'pending'


def decide_intent(decision, view, now, candidates):
    """An enrollment may have been sent without its answer being recorded: look for its certificate.

    Returns True when the intent settled the decision; False when it expired (the decision then discards the
    record and the normal rules apply). Raises KsefError while the intent still blocks.
    """
    decl = decision.decl
    record = decl.record
    fingerprint = record.get('public_key_sha256')
    for serial in candidates:
        if view.public_key_sha256(serial) == fingerprint:
            decision.action = 'installed'
            decision.reason = 'reconciled'
            decision.changed = True
            decision.issued_serial = serial
            decision.issued_public_key_sha256 = fingerprint
            decision.enroll_key_path = record.get('key_path')
            decision.superseded = list(record.get('superseded') or [])
            return True
    if intent_may_expire(decl, now):
        decision.warnings.append('No certificate of %s with the public key of the enrollment attempted at %s appeared in '
                                 'KSeF; %s, a new enrollment is allowed'
                                 % (decl.label, record['intent_time'],
                                    'force is set' if decl.force else 'the attempt is older than %d s' % INTENT_BLOCK_SECONDS))
        decision.discard_record = True
        return False
    raise KsefError('KSeF may still be processing the enrollment of certificate %s sent at %s (its answer was never '
                    'recorded); no certificate with that name, type and public key exists yet. Rerun later, or set '
                    'force to send a new enrollment. State file: %s'
                    % (decl.label, record['intent_time'], decl.state_path))


def decide_absent(decision, view, local_files):
    decl = decision.decl
    fingerprint = decl.declared_public_key_sha256
    matches = [record for record in view.candidates(decl) if record.active and
               (fingerprint is None or view.public_key_sha256(record.serial_number) == fingerprint)]
    decision.to_revoke = [record.serial_number for record in matches]
    if matches:
        decision.current_item = matches[0]
        decision.current_certificate = view.retrieved.get(matches[0].serial_number)
    decision.reason = 'present' if matches else 'absent'
    if decl.remove_files:
        decision.removed_files = local_files.existing(decl.local_files())
    if decision.to_revoke:
        decision.action = 'revoked'
        decision.changed = True
    elif decision.removed_files:
        decision.action = 'removed'
        decision.changed = True
