# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Carrying out enrollments, one small part per duty; the scheduler (_scheduler.py) says when:

- StatusReader: the status of a recorded or waiting enrollment (GET /certificates/enrollments/{referenceNumber});
- Sender: each enrollment sent once, the intent on disk first; an answer that was lost is never re-sent, its
  certificate is looked for by name, type and public key instead (look_for_lost, one look: the scheduler's loop
  makes the looks, and the state file keeps the intent for the next run);
- Revoker: revocations (superseded predecessors, absent declarations), the login kept, proven rotation;
- Enroller: the scheduler's worker over those parts, and retrieval and installation of the issued certificates.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine import proof as _proof
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import INTENT_CLOCK_SLACK, KsefView, known_before_post
from ansible_collections.ksef.certificates.plugins.module_utils._engine.detect import detect_issued, release_foreign_match
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefError,
    KsefTransportError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.install import Installer
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import format_time, intent_record
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.result import KsefConvergeError
from ansible_collections.ksef.certificates.plugins.module_utils._login import LoginCertificate
from ansible_collections.ksef.certificates.plugins.module_utils._records import EnrollmentStatus

QUOTA_ENROLLMENTS = 25006
QUOTA_CERTIFICATES = 25007
UNKNOWN_SERIAL = 25008
UNKNOWN_ENROLLMENT = 25005
# Status 400 detail of KSeF for a public key already certified (documented for another subject's key; KSeF is
# silent about the same subject's, which the emulator's refuseReusedKey switch answers in the same words).
KEY_ALREADY_CERTIFIED = u'klucz publiczny zosta\u0142 ju\u017c certyfikowany'


class StatusReader:
    """The status of an enrollment KSeF has a reference number for, and what it means for the state file."""

    def __init__(self, module: AnsibleModule, api: KsefApi, installer: Installer, clock: Callable[[], float]) -> None:
        self.module = module
        self.check_mode = module.check_mode
        self.api = api
        self.installer = installer
        self.clock = clock

    def read_pending(self, plan: Plan) -> None:
        """The status of a recorded enrollment; a reference KSeF no longer knows falls back to the intent."""
        decl = plan.decl
        reference = decl.record['reference_number']
        plan.reference_number = reference
        try:
            status = self.api.enrollment(reference)
            plan.polled_at = self.clock()
        except KsefApiError as exc:
            if exc.status == 410 or UNKNOWN_ENROLLMENT in exc.codes:
                # KSeF no longer knows the reference: fall back to reconciling by name, type and public key.
                self.module.warn('KSeF no longer reports enrollment %s of %s; reconciling by name, type and public key'
                                 % (reference, decl.label))
                decl.record = dict(decl.record, phase='intent')
                plan.reference_number = None
                return
            raise
        self.apply(plan, status)

    def poll(self, plan: Plan) -> None:
        """One status call for a waiting enrollment."""
        status = self.api.enrollment(plan.reference_number)
        plan.polled_at = self.clock()
        self.apply(plan, status)
        if plan.status_code != 100 and plan.reference_number is None:
            raise KsefError('KSeF gave up on the enrollment of certificate %s (status 500/550); the state '
                            'file was cleared, run again to send a new enrollment' % plan.decl.label)

    def apply(self, plan: Plan, status: EnrollmentStatus) -> None:
        """Record an EnrollmentStatus on the plan; a rejection clears the state file and fails."""
        decl = plan.decl
        plan.status_code = status.code
        if status.processing:
            return
        if status.done:
            if not status.serial_number:
                raise KsefError('KSeF reports enrollment %s of %s as done but gives no serial number'
                                % (plan.reference_number, decl.label))
            plan.issued_serial = status.serial_number
            return
        description = status.description or ''
        details = '; '.join(to_text(d) for d in status.details)
        text = 'KSeF status %s%s%s' % (status.code, ': ' + description if description else '',
                                       ' (%s)' % details if details else '')
        if status.given_up:
            # KSeF gave up on the request (unknown error / cancelled): a new enrollment is allowed.
            self.module.warn('Enrollment %s of %s ended with %s; a new enrollment will be sent'
                             % (plan.reference_number, decl.label, text))
            self.discard_record(plan)
            plan.reference_number = None
            plan.status_code = None
            return
        self.discard_record(plan)
        hint = 'fix the cause and run again'
        if KEY_ALREADY_CERTIFIED in details.lower():
            # Local-key form: a renewal always makes a new key, so only a key used elsewhere gets here.
            hint = ('KSeF refuses a public key that is already certified: give a CSR of a new key (csr_path/csr_content) '
                    'and run again' if decl.uses_csr else
                    'KSeF refuses a public key that is already certified: remove or replace %s so that a new key is '
                    'generated, and run again' % decl.private_key_path)
        raise KsefError('KSeF rejected enrollment %s of certificate %s: %s. The state file was cleared; %s'
                        % (plan.reference_number, decl.label, text, hint))

    def discard_record(self, plan: Plan) -> None:
        """Forget a finished enrollment; a key made only for it (the .next file) goes too."""
        decl = plan.decl
        record = decl.record
        decl.record = None
        if self.check_mode or record is None:
            return
        self.installer.discard_next_key(decl, record)
        decl.store.clear()


class LostAnswer:
    """An enrollment POST that may have reached KSeF but whose answer was lost (plan.lost_answer)."""

    def __init__(self, sent_at: float, error: BaseException, checked: Iterable[str]) -> None:
        self.sent_at = sent_at
        self.reason = error.reason if isinstance(error, KsefTransportError) else str(error)
        self.checked = checked             # serials that cannot be its certificate (known before, or another key)


class Sender:
    """POST /certificates/enrollments for one plan, exactly once; the intent is on disk before it is sent."""

    def __init__(self, module: AnsibleModule, api: KsefApi, view: KsefView, installer: Installer, statuses: StatusReader,
                 retrieve: Callable[[List[str]], None], now: Callable[[], datetime.datetime], clock: Callable[[], float]) -> None:
        self.check_mode = module.check_mode
        self.api = api
        self.view = view
        self.installer = installer
        self.statuses = statuses
        self.retrieve = retrieve           # Enroller.retrieve: certificates into the view
        self.now = now
        self.clock = clock
        self.enrollment_data = None

    def _request(self, plan):
        """(CSR DER, public key SHA-256, key path or None) of the enrollment; a new key is made unless a CSR is declared."""
        decl = plan.decl
        if decl.uses_csr:
            return _crypto.csr_der(decl.csr), decl.declared_public_key_sha256, None
        key, key_path = self.installer.generate_key(plan)
        if decl.uses_token:
            # The token signs the CSR; the subject is built exactly as for a file key.
            csr_der = decl.keystore.csr(key, lambda throwaway: _crypto.build_csr(throwaway, self.enrollment_data))
            return csr_der, _crypto.public_key_fingerprint(key.public_key), key_path
        return _crypto.build_csr(key, self.enrollment_data), _crypto.public_key_fingerprint(key), key_path

    def send(self, plan: Plan) -> None:
        """Send one planned enrollment: intent first, the reference number as soon as it is known."""
        decl = plan.decl
        plan.changed = True
        if self.check_mode:
            return
        csr_der, fingerprint, key_path = self._request(plan)
        plan.issued_public_key_sha256 = fingerprint
        plan.enroll_key_path = key_path
        sent_at = self.now()
        # Certificates that exist before the POST can never be the one it creates (a CSR renewal reuses the key).
        known = sorted(set(plan.superseded) | set(record.serial_number for record in self.view.candidates(decl)))
        intent = intent_record(decl.name, decl.type, fingerprint, key_path, plan.action, plan.superseded, sent_at, known)
        # decl.record follows the file, so a later failure (400/550) can clear it with discard_record.
        decl.record = intent
        decl.store.write(intent)
        try:
            response = self.api.enroll(decl.name, decl.type, csr_der, valid_from=decl.valid_from)
        except KsefTransportError as exc:
            if not exc.may_have_reached_server:
                self._forget_unsent(plan)
                raise
            self._lost(plan, sent_at, exc)
            return
        except KsefApiError as exc:
            if exc.status is None or not 400 <= exc.status < 500:
                # A 5xx (a gateway, or KSeF failing after it recorded the request) or a 2xx whose body could
                # not be read: the request may have been taken, so keep the intent and never re-send blindly.
                self._lost(plan, sent_at, exc)
                return
            # 4xx: KSeF refused the request (business errors, 429 after the client's retries).
            self._forget_unsent(plan)
            if QUOTA_ENROLLMENTS in exc.codes or QUOTA_CERTIFICATES in exc.codes:
                which = 'enrollment requests quota' if QUOTA_ENROLLMENTS in exc.codes else 'active certificates quota'
                raise KsefConvergeError('KSeF refused to enroll certificate %s: the %s is exhausted (%s)'
                                        % (decl.label, which, exc), cause=exc, changed=True)
            raise
        plan.reference_number = response.get('referenceNumber')
        if not plan.reference_number:
            raise KsefError('KSeF accepted the enrollment of %s but returned no reference number; the state file %s '
                            'keeps the intent so the next run reconciles it' % (decl.label, decl.state_path))
        decl.record = dict(intent, phase='pending', reference_number=plan.reference_number)
        decl.store.write(decl.record)
        plan.status_code = 100
        plan.sent_clock = self.clock()
        plan.start_wait(plan.sent_clock)

    def _forget_unsent(self, plan):
        """KSeF did not take the request: drop the intent (and a .next key made for it)."""
        plan.decl.record = plan.decl.store.read()
        self.statuses.discard_record(plan)

    def _lost(self, plan, sent_at, exc):
        """The POST may have reached KSeF but its answer was lost: look for the certificate now and until the wait
        ends (the scheduler's loop calls look_for_lost), never re-send."""
        plan.lost_answer = LostAnswer(sent_at, exc, known_before_post(plan.decl.record))
        plan.start_wait(self.clock())
        if plan.deadline is None:
            plan.deadline = self.clock()   # wait: false looks once
        plan.next_check = self.clock()

    def look_for_lost(self, plan: Plan) -> bool:
        """One look for the certificate of an enrollment whose answer was lost: True when found (name, type, key)."""
        decl, lost = plan.decl, plan.lost_answer
        records = [record for record in self.api.certificate_records(name=decl.name, certificate_type=decl.type)
                   if record.name == decl.name and record.type == decl.type and
                   record.requested_at >= lost.sent_at - INTENT_CLOCK_SLACK and record.serial_number not in lost.checked]
        self.retrieve([record.serial_number for record in records])
        for record in records:
            lost.checked.add(record.serial_number)
            if self.view.public_key_sha256(record.serial_number) == plan.issued_public_key_sha256:
                self.view.records.append(record)
                plan.action = 'installed'
                plan.reason = 'reconciled'
                plan.issued_serial = record.serial_number
                plan.lost_answer = None
                return True
        return False

    def lost_error(self, plan: Plan) -> KsefError:
        """The wait for a lost answer's certificate ended without it."""
        decl, lost = plan.decl, plan.lost_answer
        return KsefError('The answer to the enrollment of certificate %s was lost (%s). KSeF may still be processing the '
                         'enrollment sent at %s; rerun later: the state file %s keeps the intent and the next run '
                         'reconciles by name, type and public key instead of sending another; or set force to send a '
                         'new one' % (decl.label, lost.reason, format_time(lost.sent_at), decl.state_path))


class Revoker:
    """Revocations: superseded predecessors (once their successor has proven itself), absent declarations."""

    def __init__(self, module: AnsibleModule, api: KsefApi, installer: Installer, now: Callable[[], datetime.datetime],
                 login: Optional[LoginCertificate] = None) -> None:
        self.module = module
        self.check_mode = module.check_mode
        self.api = api
        self.installer = installer
        self.now = now
        self.login = login                 # _login.LoginCertificate of a signature login, None otherwise
        self.prove_login = api.prove_login  # signer -> None: a login with a successor's pair

    def revoke(self, plan: Plan, serial: str, reason: Optional[str]) -> None:
        """Revoke one serial this run's query showed active.

        `revoked`: KSeF revoked it, or answered 25009 (no longer active): its status went from active to
        revoked during this run, usually through this run's own request whose answer was lost and which
        the client repeated. `already_revoked`: KSeF does not know the serial (25008). Neither fails the run.
        """
        try:
            self.api.revoke(serial, reason)
            done = True
        except KsefApiError as exc:
            if UNKNOWN_SERIAL not in exc.codes:
                raise
            done = False
        (plan.revoked if done else plan.already_revoked).append(serial)

    def keeps_login(self, plan: Plan, serial: str) -> bool:
        """True when `serial` is this run's login and the new pair will not be where the next login reads it."""
        return self.login is not None and serial == self.login.serial_number and not self.login.reaches_next_login(plan.decl)

    def predict_kept_login(self, plan: Plan) -> None:
        """Check mode: the superseded login certificate a renewal would leave active (see revoke_superseded)."""
        if plan.decl.revoke_superseded:
            plan.superseded_login = [serial for serial in plan.superseded if self.keeps_login(plan, serial)]

    def revoke_superseded(self, plan: Plan) -> None:
        if not plan.decl.revoke_superseded:
            return
        if _proof.kept_unproven(plan, self.prove_login, self.module.params, self.now(), self.module.warn):
            return  # proven rotation: a predecessor goes only once its successor has done its job
        for serial in plan.superseded:
            if serial == plan.issued_serial:
                continue
            if self.keeps_login(plan, serial):
                # Revoking it now would lock the next run out: the new pair is not where the login reads.
                plan.superseded_login.append(serial)
                self.module.warn(self.login.why_kept(plan.decl))
                continue
            self.revoke(plan, serial, 'superseded')

    def apply_absent(self, plan: Plan) -> None:
        """Revoke what an absent plan lists, then remove its files."""
        decl = plan.decl
        if self.check_mode:
            return
        for serial in plan.to_revoke:
            self.revoke(plan, serial, decl.revocation_reason or 'unspecified')
        if plan.to_revoke and not plan.revoked and not plan.removed_files:
            # KSeF did not know any of them: nothing changed in this run.
            plan.action = 'none'
            plan.changed = False
        self.installer.remove_files(plan)


class Enroller:
    """The scheduler's worker (send, poll, detect, look_for_lost, finish) over the parts above, and the run's
    retrieval and installation of issued certificates."""

    def __init__(self, module: AnsibleModule, api: KsefApi, view: KsefView, installer: Installer, now: Callable[[], datetime.datetime],
                 clock: Callable[[], float] = time.monotonic, login: Optional[LoginCertificate] = None) -> None:
        self.module = module
        self.check_mode = module.check_mode
        self.api = api
        self.view = view                   # _decide.KsefView, extended with what this run learns
        self.installer = installer
        self.now = now
        self.clock = clock
        self.plans = []
        self.statuses = StatusReader(module, api, installer, clock)
        self.sender = Sender(module, api, view, installer, self.statuses, self.retrieve, now, clock)
        self.revoker = Revoker(module, api, installer, now, login=login)
        # the scheduler's worker calls
        self.send = self.sender.send
        self.look_for_lost = self.sender.look_for_lost
        self.lost_error = self.sender.lost_error
        self.poll = self.statuses.poll

    @property
    def enrollment_data(self) -> Optional[Dict[str, Any]]:
        return self.sender.enrollment_data

    @enrollment_data.setter
    def enrollment_data(self, value: Optional[Dict[str, Any]]) -> None:
        self.sender.enrollment_data = value

    def retrieve(self, serials: List[str]) -> None:
        """Retrieve the certificates of serials not retrieved yet into the view."""
        missing = []
        for serial in serials:
            if serial not in self.view.retrieved and serial not in missing:
                missing.append(serial)
        if not missing:
            return
        for entry in self.api.retrieve_certificates(missing):
            try:
                certificate = _crypto.load_certificate(entry.der)
            except (TypeError, ValueError):
                raise KsefError('KSeF returned an unreadable certificate for serial %s' % entry.serial_number)
            self.view.retrieved[entry.serial_number or _crypto.serial_hex(certificate)] = certificate

    def detect(self, plans: List[Plan], max_pages: int) -> List[Plan]:
        """One query round (_detect.detect_issued): the waiting plans KSeF lists as issued."""
        return detect_issued(self.api, self.view, self.plans, plans, max_pages)

    def finish(self, plans: Optional[List[Plan]] = None) -> None:
        """Retrieve and install issued certificates (all of them, or the given batch) not finished yet."""
        issued = [plan for plan in (self.plans if plans is None else plans) if plan.issued_serial and not plan.finished]
        self.retrieve([plan.issued_serial for plan in issued])
        for plan in issued:
            certificate = self.view.retrieved.get(plan.issued_serial)
            if certificate is None and plan.detected_by_query:
                release_foreign_match(self.module, plan, self.clock())
                continue
            if certificate is None:
                raise KsefError('KSeF did not return certificate %s of %s' % (plan.issued_serial, plan.decl.label))
            if _crypto.public_key_fingerprint(certificate.public_key()) != plan.issued_public_key_sha256:
                if plan.detected_by_query:
                    release_foreign_match(self.module, plan, self.clock())
                    continue
                raise KsefError('Certificate %s issued for enrollment %s of %s does not carry the enrolled public key; '
                                'nothing was installed' % (plan.issued_serial, plan.reference_number, plan.decl.label))
            plan.install_certificate = certificate
            plan.install_item = self.view.by_serial(plan.issued_serial)
            if plan.action == 'pending':
                # A resumed enrollment that KSeF finished while this run waited.
                plan.action = plan.completion_action
            if _proof.hold_until_valid(plan, certificate, self.now(), self.module.warn):
                continue
            if self.check_mode:
                plan.finished = True
                continue
            self.installer.install(plan, certificate)
            self.revoker.revoke_superseded(plan)
            plan.decl.store.clear()
            plan.changed = True
            plan.finished = True
