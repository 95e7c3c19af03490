# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The decision engine of ksef.certificates.ksef_certificate.

One run: validate every declaration and read local material (no API call yet), take the controller
locks, run ONE paginated query for the whole set, decide per declaration (retrieving candidate
certificates only when local state cannot prove identity), check the limits once when anything must
be enrolled, then act: enroll, wait, retrieve, install, revoke superseded certificates.

Identity of a declared certificate in KSeF: exact name, type, and public key equal to the declared key
(private key file or CSR). Names alone are hints: KSeF matches names as substrings and does not make
them unique.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import time

from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefError,
    KsefInputError,
    KsefTransportError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    CERTIFICATE_TYPES as CERTIFICATE_TYPE_CHOICES,
    certificate_name_problem,
    days_remaining,
    expired,
    parse_datetime,
    renewal_due,
)
from ansible_collections.ksef.certificates.plugins.module_utils._pending import (
    INTENT_BLOCK_SECONDS,
    LockSet,
    PendingStore,
    default_state_path,
    format_time,
    intent_record,
)

POLL_INTERVAL = 2
# Endpoints (method, route template) whose rate-limit slots the enrollment phase watches.
ENROLL_ENDPOINT = ('POST', '/certificates/enrollments')
STATUS_ENDPOINT = ('GET', '/certificates/enrollments/{referenceNumber}')
RETRIEVE_ENDPOINT = ('POST', '/certificates/retrieve')
RETRIEVE_BATCH = 10
# Shortest sleep of the enrollment phase (guards against spinning on rounding at a window edge).
MIN_OVERLAP_SLEEP = 0.01
RECONCILE_POLL_INTERVAL = 5
# Controller and KSeF clocks may differ: look this far before the recorded intent time.
INTENT_CLOCK_SLACK = datetime.timedelta(minutes=10)
NEXT_KEY_SUFFIX = '.next'
DEFAULT_CERTIFICATE_MODE = 0o644
QUOTA_ENROLLMENTS = 25006
QUOTA_CERTIFICATES = 25007

# Options that may be set per certificate (in `certificates` items) and at the top level (defaults).
PER_CERTIFICATE_OPTIONS = (
    'name', 'type', 'state', 'private_key_path', 'private_key_type', 'private_key_passphrase', 'csr_path',
    'csr_content', 'certificate_path', 'pkcs12_path', 'pkcs12_passphrase', 'state_path', 'renew_before_days',
    'force', 'valid_from', 'revoke_superseded', 'revocation_reason', 'remove_files', 'backup', 'return_content',
    'wait', 'wait_timeout',
)
PATH_OPTIONS = ('private_key_path', 'certificate_path', 'pkcs12_path', 'state_path')


class KsefConvergeError(KsefError):
    """A failure in the middle of a run; carries what was already done so nothing is lost from the output."""

    def __init__(self, message, cause=None, results=None, changed=False):
        super(KsefConvergeError, self).__init__(message)
        self.cause = cause
        self.results = results or []
        self.changed = changed

    def fail_kwargs(self):
        extras = self.cause.fail_kwargs() if isinstance(self.cause, KsefError) else {}
        extras['certificates'] = self.results
        extras['changed'] = self.changed
        return extras


# ---------------------------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------------------------

class Declaration:
    """One desired certificate, with its options merged from the top level and its local material."""

    def __init__(self, options, index=None):
        self.options = options
        self.index = index
        for key in PER_CERTIFICATE_OPTIONS:
            setattr(self, key, options.get(key))
        self.key = None              # the private key at private_key_path, None when it does not exist yet
        self.csr = None              # parsed CSR in the csr form
        self.local_certificate = None
        self.store = None
        self.record = None

    @property
    def label(self):
        where = ' (certificates[%d])' % self.index if self.index is not None else ''
        return '%s/%s%s' % (self.name, self.type, where)

    @property
    def uses_csr(self):
        return self.csr is not None

    @property
    def declared_public_key_sha256(self):
        """Fingerprint of the declared public key; None when the key is still to be generated."""
        if self.csr is not None:
            return _crypto.public_key_fingerprint(self.csr.public_key())
        if self.key is not None:
            return _crypto.public_key_fingerprint(self.key)
        return None

    @property
    def next_key_path(self):
        return self.private_key_path + NEXT_KEY_SUFFIX if self.private_key_path else None


def merge_declarations(params):
    """The declared set: the single form, or `certificates` items with top-level values as defaults."""
    if params.get('certificates') is None:
        return [Declaration(dict((key, params.get(key)) for key in PER_CERTIFICATE_OPTIONS))]
    declarations = []
    for index, item in enumerate(params['certificates']):
        options = {}
        for key in PER_CERTIFICATE_OPTIONS:
            value = item.get(key)
            options[key] = value if value is not None else params.get(key)
        declarations.append(Declaration(options, index=index))
    return declarations


def validate_declaration(decl):
    """Input checks that need neither files nor KSeF; raise KsefInputError."""
    name = decl.name
    if not name:
        raise KsefInputError('name is required for every certificate%s' % (
            ' (certificates[%d])' % decl.index if decl.index is not None else ''))
    problem = certificate_name_problem(name)
    if problem:
        raise KsefInputError(problem)
    if decl.type not in CERTIFICATE_TYPE_CHOICES:
        raise KsefInputError('Certificate %s: type must be one of %s' % (name, ', '.join(CERTIFICATE_TYPE_CHOICES)))
    if decl.csr_path and decl.csr_content:
        raise KsefInputError('Certificate %s: set csr_path or csr_content, not both' % decl.label)
    has_csr = bool(decl.csr_path or decl.csr_content)
    if decl.private_key_path and has_csr:
        raise KsefInputError('Certificate %s: set private_key_path or a CSR (csr_path/csr_content), not both'
                             % decl.label)
    if decl.state == 'present' and not decl.private_key_path and not has_csr:
        raise KsefInputError('Certificate %s: set private_key_path (the module keeps the key) or csr_path/csr_content '
                             '(the key stays where the CSR was made)' % decl.label)
    if decl.pkcs12_path and not decl.private_key_path:
        raise KsefInputError('Certificate %s: pkcs12_path needs private_key_path (a PKCS#12 file holds the key)'
                             % decl.label)
    if decl.renew_before_days is not None and decl.renew_before_days < 0:
        raise KsefInputError('Certificate %s: renew_before_days must not be negative' % decl.label)
    if decl.wait_timeout is not None and decl.wait_timeout < 0:
        raise KsefInputError('Certificate %s: wait_timeout must not be negative' % decl.label)
    if decl.valid_from:
        try:
            parse_datetime(decl.valid_from)
        except ValueError:
            raise KsefInputError('Certificate %s: valid_from %r is not an ISO 8601 date-time' % (decl.label, decl.valid_from))
    if decl.state_path is None:
        decl.state_path = default_state_path(decl.private_key_path, decl.certificate_path)


def validate_set(declarations):
    seen = {}
    paths = {}
    for decl in declarations:
        key = (decl.name, decl.type)
        if key in seen:
            raise KsefInputError('Certificate %s/%s is declared twice (items %s and %s); each name and type may '
                                 'appear once' % (decl.name, decl.type, seen[key], decl.index))
        seen[key] = decl.index
        for option in PATH_OPTIONS:
            path = getattr(decl, option)
            if not path:
                continue
            if path in paths:
                raise KsefInputError('Path %s is used by two certificates (%s and %s); each certificate needs its own '
                                     'files' % (path, paths[path], decl.label))
            paths[path] = decl.label


def load_local_material(decl):
    """Read the key or CSR and the local certificate; fail on unusable input before any API call."""
    decl.key = None
    decl.csr = None
    decl.local_certificate = None
    if decl.csr_content:
        decl.csr = _crypto.load_csr(decl.csr_content, source='CSR of certificate %s' % decl.label)
    elif decl.csr_path:
        decl.csr = _crypto.read_csr_file(decl.csr_path)
    elif decl.private_key_path:
        if os.path.exists(decl.private_key_path):
            decl.key = _crypto.load_private_key(decl.private_key_path, decl.private_key_passphrase)
            _crypto.check_key_supported(decl.key, what='private key %s' % decl.private_key_path)
        elif decl.state == 'present':
            directory = os.path.dirname(os.path.abspath(decl.private_key_path))
            if not os.path.isdir(directory):
                raise KsefInputError('Directory %s for private_key_path does not exist' % directory)
    if decl.certificate_path:
        decl.local_certificate = _crypto.read_certificate_file(decl.certificate_path)


# ---------------------------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------------------------

class Plan:
    """What the run decided (and later did) for one declaration."""

    def __init__(self, decl):
        self.decl = decl
        self.action = 'none'
        self.reason = None
        self.changed = False
        self.current_item = None          # CertificateRecord of the declared certificate before the run
        self.current_certificate = None   # its X.509 certificate when known
        self.enroll = False
        self.key_plan = None              # 'reuse' | 'generate_in_place' | 'generate_next' (key form only)
        self.enroll_key = None
        self.enroll_key_path = None
        self.superseded = []
        self.revoked = []
        self.already_revoked = []         # serials KSeF reported as not active when this run revoked them
        self.reference_number = None
        self.status_code = None
        self.issued_serial = None
        self.issued_public_key_sha256 = None
        self.install_certificate = None   # an X.509 certificate to install/return
        self.install_item = None
        self.removed_files = []
        self.backup_files = []
        self.wanted_serials = []
        self.intent_candidates = []
        self.deadline = None
        self.polled_at = None             # controller clock of the last status poll
        self.sent_clock = None            # controller clock when the enrollment's answer came
        self.finished = False             # issued certificate retrieved (and installed unless check mode)
        self.completion_action = None     # action of a resumed enrollment once it is installed

    def summary(self, now):
        if self.enroll and self.install_certificate is None:
            # Enrollment predicted (check mode) or still pending: the new certificate is not known yet.
            return None
        item = self.install_item if self.install_certificate is not None else self.current_item
        certificate = self.install_certificate if self.install_certificate is not None else self.current_certificate
        if item is None and certificate is None:
            return None
        return certificate_summary(self.decl, item, certificate, now)


def certificate_summary(decl, item, certificate, now):
    """The module's view of one certificate; KSeF's validTo wins over the X.509 notAfter (KSeF can shorten it)."""
    summary = {
        'serial_number': None, 'name': decl.name, 'type': decl.type, 'status': None, 'valid_from': None,
        'valid_to': None, 'days_remaining': None, 'fingerprint_sha256': None, 'subject': None, 'public_key_sha256': None,
    }
    if certificate is not None:
        summary.update(_crypto.certificate_summary(certificate))
        summary['status'] = 'active'
    if item is not None:
        fields = item.module_fields()    # the date-times as KSeF sent them
        summary['serial_number'] = item.serial_number or summary['serial_number']
        summary['name'] = item.name or summary['name']
        summary['status'] = item.status or summary['status']
        summary['valid_from'] = fields.get('valid_from') or summary['valid_from']
        summary['valid_to'] = fields.get('valid_to') or summary['valid_to']
    if summary['valid_to']:
        summary['days_remaining'] = days_remaining(summary['valid_to'], now)
    return summary


def _known_before_post(record):
    """Serials an enrollment cannot have created: superseded ones and those listed before its POST."""
    record = record or {}
    return set(record.get('superseded') or []) | set(record.get('known_serials') or [])


class Converger:
    """Runs the whole declared set against KSeF; see the module docs for the behaviour."""

    def __init__(self, module, api_provider, params, now=None, sleep=time.sleep, clock=time.monotonic):
        self.module = module
        self._api_provider = api_provider
        self._api = None
        self.params = params
        self.check_mode = module.check_mode
        self._now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.sleep = sleep
        self.clock = clock
        self.declarations = []
        self.plans = []
        self.items = []
        self.retrieved = {}
        self.enrollment_data = None
        self.limits = None
        self.single = params.get('certificates') is None

    @property
    def api(self):
        if self._api is None:
            self._api = self._api_provider()
        return self._api

    def now(self):
        return self._now()

    # -- entry point ---------------------------------------------------------------------------

    def prepare(self):
        """Everything that happens before the first API call: validation and local files."""
        self.declarations = merge_declarations(self.params)
        for decl in self.declarations:
            validate_declaration(decl)
        validate_set(self.declarations)
        for decl in self.declarations:
            load_local_material(decl)
            decl.store = PendingStore(self.module, decl.state_path)
        self.plans = [Plan(decl) for decl in self.declarations]

    def run(self):
        self.prepare()
        lock_paths = [decl.state_path for decl in self.declarations if decl.state_path]
        if self.check_mode:
            # Check mode writes nothing, not even lock files; state files are only read.
            return self._run_locked()
        with LockSet(lock_paths, timeout=self.params.get('lock_timeout') or 60, sleep=self.sleep,
                     clock=self.clock):
            # Another run may have written the key or certificate since prepare() read them (whether or
            # not this run had to wait for the lock): read them again under the lock, or this run would
            # enroll (and overwrite the key) a second time.
            for decl in self.declarations:
                load_local_material(decl)
            return self._run_locked()

    def _run_locked(self):
        try:
            for decl in self.declarations:
                decl.record = decl.store.read()
                self._check_record_matches(decl)
            self.items = self.api.certificate_records(**self._query_filter())
            for plan in self.plans:
                self._collect_needs(plan)
            self._retrieve([serial for plan in self.plans for serial in plan.wanted_serials])
            for plan in self.plans:
                if plan.decl.state == 'absent':
                    self._decide_absent(plan)
                else:
                    self._decide_present(plan)
            enrolling = [plan for plan in self.plans if plan.enroll]
            if enrolling:
                self._check_limits(len(enrolling))
                self._load_enrollment_data()
                for plan in enrolling:
                    self._check_csr_subject(plan)
            self._send_enrollments(enrolling)
            self._wait_for_enrollments()
            self._finish_issued()
            for plan in self.plans:
                if plan.decl.state == 'absent':
                    self._apply_absent(plan)
                else:
                    self._apply_file_attributes(plan)
        except KsefConvergeError:
            raise
        except KsefError as exc:
            raise KsefConvergeError(str(exc), cause=exc, results=self._results(partial=True),
                                    changed=any(plan.changed for plan in self.plans))
        return self.result()

    # -- reading KSeF --------------------------------------------------------------------------

    def _query_filter(self):
        types = set(decl.type for decl in self.declarations)
        if len(types) == 1:
            return {'certificate_type': types.pop()}
        return {}

    def _candidates(self, decl):
        """KSeF certificates with exactly the declared name and type, newest request first."""
        found = [item for item in self.items if item.name == decl.name and item.type == decl.type]
        return sorted(found, key=lambda item: item.requested_at, reverse=True)

    def _item_by_serial(self, serial):
        for item in self.items:
            if item.serial_number == serial:
                return item
        return None

    def _retrieve(self, serials):
        missing = []
        for serial in serials:
            if serial not in self.retrieved and serial not in missing:
                missing.append(serial)
        if not missing:
            return
        for entry in self.api.retrieve_certificates(missing):
            try:
                certificate = _crypto.load_certificate(entry.der)
            except (TypeError, ValueError):
                raise KsefError('KSeF returned an unreadable certificate for serial %s' % entry.serial_number)
            self.retrieved[entry.serial_number or _crypto.serial_hex(certificate)] = certificate

    def _check_record_matches(self, decl):
        record = decl.record
        if record and (record.get('name') != decl.name or record.get('type') != decl.type):
            raise KsefError('The enrollment state file %s belongs to certificate %s/%s, not %s/%s; restore that '
                            'declaration or remove the file after checking the enrollment in KSeF'
                            % (decl.state_path, record.get('name'), record.get('type'), decl.name, decl.type))

    def _collect_needs(self, plan):
        """Serials whose certificates the decision needs; state files are resolved here (status calls)."""
        decl = plan.decl
        if decl.state == 'absent':
            # An enrollment still in flight is not resumed for a certificate that should not exist; its
            # certificate, once issued, carries the exact name and type and is revoked by a later run.
            if decl.declared_public_key_sha256:
                plan.wanted_serials.extend(item.serial_number for item in self._candidates(decl) if item.active)
            return
        record = decl.record
        if record and record['phase'] == 'pending':
            self._read_pending_status(plan)
            if plan.issued_serial:
                plan.wanted_serials.append(plan.issued_serial)
                return
            if decl.record is not None and decl.record['phase'] == 'pending':
                return
        record = decl.record
        if record and record['phase'] == 'intent':
            intent_time = parse_datetime(record['intent_time'])
            known = _known_before_post(record)
            plan.intent_candidates = [
                item.serial_number for item in self._candidates(decl)
                if item.requested_at >= intent_time - INTENT_CLOCK_SLACK and item.serial_number not in known]
            plan.wanted_serials.extend(plan.intent_candidates)
            if not self._intent_may_expire(decl):
                return
        if self._known_current(plan) is not None:
            return
        if decl.declared_public_key_sha256 is None:
            return
        for item in self._candidates(decl):
            # A key that ever backed a certificate must not be used again, so the key form looks at every status.
            if decl.uses_csr and item.status not in ('active', 'blocked'):
                continue
            plan.wanted_serials.append(item.serial_number)

    def _intent_may_expire(self, decl):
        if decl.force:
            return True
        age = self.now() - parse_datetime(decl.record['intent_time'])
        return age.total_seconds() > INTENT_BLOCK_SECONDS

    def _known_current(self, plan):
        """The declared certificate proven by local files alone: local cert of the declared key, listed in KSeF."""
        decl = plan.decl
        certificate = decl.local_certificate
        fingerprint = decl.declared_public_key_sha256
        if certificate is None or fingerprint is None:
            return None
        if _crypto.public_key_fingerprint(certificate.public_key()) != fingerprint:
            return None
        item = self._item_by_serial(_crypto.serial_hex(certificate))
        if item is None or item.name != decl.name or item.type != decl.type:
            return None
        if not item.active:
            # Not healthy: look at the other candidates too (a renewal may already exist).
            return None
        return item, certificate

    def _read_pending_status(self, plan):
        decl = plan.decl
        reference = decl.record['reference_number']
        plan.reference_number = reference
        try:
            status = self.api.enrollment(reference)
            plan.polled_at = self.clock()
        except KsefApiError as exc:
            if exc.status == 410 or 25005 in exc.codes:
                # KSeF no longer knows the reference: fall back to reconciling by name, type and public key.
                self.module.warn('KSeF no longer reports enrollment %s of %s; reconciling by name, type and public key'
                                 % (reference, decl.label))
                decl.record = dict(decl.record, phase='intent')
                plan.reference_number = None
                return
            raise
        self._apply_status(plan, status)

    def _apply_status(self, plan, status):
        decl = plan.decl
        code = status.code
        plan.status_code = code
        if status.processing:
            return
        if status.done:
            serial = status.serial_number
            if not serial:
                raise KsefError('KSeF reports enrollment %s of %s as done but gives no serial number'
                                % (plan.reference_number, decl.label))
            plan.issued_serial = serial
            return
        description = status.description or ''
        details = '; '.join(to_text(d) for d in status.details)
        text = 'KSeF status %s%s%s' % (code, ': ' + description if description else '', ' (%s)' % details if details else '')
        if status.given_up:
            # KSeF gave up on the request (unknown error / cancelled): a new enrollment is allowed.
            self.module.warn('Enrollment %s of %s ended with %s; a new enrollment will be sent'
                             % (plan.reference_number, decl.label, text))
            self._discard_record(plan)
            plan.reference_number = None
            plan.status_code = None
            return
        self._discard_record(plan)
        raise KsefError('KSeF rejected enrollment %s of certificate %s: %s. The state file was cleared; fix the '
                        'cause and run again' % (plan.reference_number, decl.label, text))

    def _discard_record(self, plan):
        """Forget a finished enrollment; a key made only for it (the .next file) goes too."""
        decl = plan.decl
        record = decl.record
        decl.record = None
        if self.check_mode or record is None:
            return
        key_path = record.get('key_path')
        if key_path and key_path == decl.next_key_path and os.path.exists(key_path):
            os.unlink(key_path)
        decl.store.clear()

    # -- decisions -----------------------------------------------------------------------------

    def _decide_present(self, plan):
        decl = plan.decl
        record = decl.record
        if record is not None and record['phase'] == 'pending':
            self._decide_resume(plan)
            return
        if record is not None and record['phase'] == 'intent':
            if self._decide_intent(plan):
                return
        candidates = self._candidates(decl)
        actives = [item for item in candidates if item.active]
        fingerprint = decl.declared_public_key_sha256
        known = self._known_current(plan)
        ours = []
        if known is not None:
            ours = [known]
        elif fingerprint is not None:
            for item in candidates:
                certificate = self.retrieved.get(item.serial_number)
                if certificate is not None and _crypto.public_key_fingerprint(certificate.public_key()) == fingerprint:
                    ours.append((item, certificate))
        current = self._pick_current(ours)
        if current is not None:
            plan.current_item, plan.current_certificate = current
        now = self.now()
        key_used = bool(ours) or (decl.local_certificate is not None and fingerprint is not None and
                                  _crypto.public_key_fingerprint(decl.local_certificate.public_key()) == fingerprint)

        if decl.force:
            reason = 'force'
        elif current is None:
            reason = 'key_mismatch' if actives else 'missing'
        else:
            item = current[0]
            if item.status == 'revoked':
                reason = 'revoked'
            elif item.status == 'blocked':
                reason = 'blocked'
            elif item.status == 'expired' or expired(item.valid_to, now):
                reason = 'expired'
            elif renewal_due(item.valid_to, now, decl.renew_before_days):
                reason = 'renewal_window'
            else:
                reason = None

        if reason is None:
            plan.reason = 'healthy'
            self._plan_install_current(plan)
            return

        plan.reason = reason
        plan.enroll = True
        plan.action = 'renewed' if current is not None else 'enrolled'
        plan.superseded = [item.serial_number for item in actives]
        if decl.uses_csr:
            plan.key_plan = None
        elif decl.key is None:
            plan.key_plan = 'generate_in_place'
        elif key_used:
            plan.key_plan = 'generate_next'
        else:
            plan.key_plan = 'reuse'

    def _pick_current(self, ours):
        """Among certificates of the declared key: the active one valid longest, else the newest request."""
        if not ours:
            return None
        actives = [pair for pair in ours if pair[0].active]
        if actives:
            return max(actives, key=lambda pair: pair[0].valid_to)
        return max(ours, key=lambda pair: pair[0].requested_at)

    def _plan_install_current(self, plan):
        """Healthy in KSeF: write local files that are missing or stale (action installed), else nothing."""
        decl = plan.decl
        certificate = plan.current_certificate
        plan.install_certificate = certificate
        plan.install_item = plan.current_item
        if self._files_need_install(decl, certificate):
            plan.action = 'installed'
            plan.changed = True

    def _files_need_install(self, decl, certificate):
        if decl.certificate_path:
            local = decl.local_certificate
            if local is None or _crypto.certificate_to_pem(local) != _crypto.certificate_to_pem(certificate):
                return True
        if decl.pkcs12_path and not self._pkcs12_holds(decl, certificate):
            return True
        return False

    @staticmethod
    def _pkcs12_holds(decl, certificate):
        return _crypto.pkcs12_matches(decl.pkcs12_path, decl.pkcs12_passphrase, decl.key, certificate)

    def _decide_resume(self, plan):
        """A recorded enrollment: still processing, or issued and waiting to be installed."""
        decl = plan.decl
        record = decl.record
        plan.reference_number = record['reference_number']
        plan.superseded = list(record.get('superseded') or [])
        plan.enroll_key_path = record.get('key_path')
        plan.issued_public_key_sha256 = record.get('public_key_sha256')
        plan.completion_action = record.get('action') or 'enrolled'
        if plan.issued_serial:
            plan.action = plan.completion_action
            plan.reason = 'resumed'
            plan.changed = True
            return
        plan.action = 'pending'
        plan.reason = 'resumed'
        if decl.wait:
            plan.deadline = self.clock() + (decl.wait_timeout if decl.wait_timeout is not None else 300)

    def _decide_intent(self, plan):
        """An enrollment may have been sent without its answer being recorded: look for its certificate.

        Returns True when the intent decided the plan; False when it expired and normal rules apply.
        """
        decl = plan.decl
        record = decl.record
        fingerprint = record.get('public_key_sha256')
        for serial in plan.intent_candidates:
            certificate = self.retrieved.get(serial)
            if certificate is not None and _crypto.public_key_fingerprint(certificate.public_key()) == fingerprint:
                plan.action = 'installed'
                plan.reason = 'reconciled'
                plan.changed = True
                plan.issued_serial = serial
                plan.issued_public_key_sha256 = fingerprint
                plan.enroll_key_path = record.get('key_path')
                plan.superseded = list(record.get('superseded') or [])
                return True
        if self._intent_may_expire(decl):
            self.module.warn('No certificate of %s with the public key of the enrollment attempted at %s appeared in '
                             'KSeF; %s, a new enrollment is allowed'
                             % (decl.label, record['intent_time'],
                                'force is set' if decl.force else 'the attempt is older than %d s' % INTENT_BLOCK_SECONDS))
            self._discard_record(plan)
            return False
        raise KsefError('KSeF may still be processing the enrollment of certificate %s sent at %s (its answer was never '
                        'recorded); no certificate with that name, type and public key exists yet. Rerun later, or set '
                        'force to send a new enrollment. State file: %s'
                        % (decl.label, record['intent_time'], decl.state_path))

    def _decide_absent(self, plan):
        decl = plan.decl
        fingerprint = decl.declared_public_key_sha256
        matches = []
        for item in self._candidates(decl):
            if not item.active:
                continue
            if fingerprint is not None:
                certificate = self.retrieved.get(item.serial_number)
                if certificate is None or _crypto.public_key_fingerprint(certificate.public_key()) != fingerprint:
                    continue
            matches.append(item)
        plan.revoked = [item.serial_number for item in matches]
        if matches:
            plan.current_item = matches[0]
            plan.current_certificate = self.retrieved.get(matches[0].serial_number)
        plan.reason = 'present' if matches else 'absent'
        if decl.remove_files:
            plan.removed_files = [path for path in self._local_files(decl) if os.path.exists(path)]
        if plan.revoked:
            plan.action = 'revoked'
            plan.changed = True
        elif plan.removed_files:
            plan.action = 'removed'
            plan.changed = True

    def _local_files(self, decl):
        paths = [decl.certificate_path, decl.pkcs12_path, decl.private_key_path, decl.next_key_path, decl.state_path]
        return [path for path in paths if path]

    # -- limits and enrollment data ------------------------------------------------------------

    def _check_limits(self, needed):
        limits = self.api.limits()
        self.limits = limits
        enrollment = limits.get('enrollment') or {}
        certificate = limits.get('certificate') or {}
        problems = []
        if enrollment.get('remaining') is not None and enrollment['remaining'] < needed:
            problems.append('enrollment requests quota (KSeF %d): %s of %s left, %d needed'
                            % (QUOTA_ENROLLMENTS, enrollment['remaining'], enrollment.get('limit'), needed))
        if certificate.get('remaining') is not None and certificate['remaining'] < needed:
            problems.append('active certificates quota (KSeF %d): %s of %s left, %d needed (a renewal holds two '
                            'certificates until the old one is revoked)'
                            % (QUOTA_CERTIFICATES, certificate['remaining'], certificate.get('limit'), needed))
        if not problems and limits.get('canRequest') is False:
            problems.append('KSeF reports canRequest=false for this subject')
        if problems:
            raise KsefError('Cannot enroll %d certificate(s): %s. Revoke unused certificates or wait for the '
                            'enrollment window; nothing was sent' % (needed, '; '.join(problems)))

    def _load_enrollment_data(self):
        self.enrollment_data = self.api.enrollment_data()

    def _check_csr_subject(self, plan):
        """KSeF rejects (25003) a CSR whose subject differs from the signer's data: say so before sending."""
        decl = plan.decl
        if not decl.uses_csr:
            return
        differences = _crypto.csr_subject_differences(decl.csr, self.enrollment_data)
        if differences:
            raise KsefInputError('The CSR of certificate %s does not carry the subject KSeF requires (from '
                                 '/certificates/enrollments/data): %s differ. Build the CSR with exactly these '
                                 'attributes' % (decl.label, ', '.join(differences)))

    # -- enrollment ----------------------------------------------------------------------------

    def _send_enrollment(self, plan):
        decl = plan.decl
        plan.changed = True
        if self.check_mode:
            return
        if decl.uses_csr:
            csr_der = _crypto.csr_der(decl.csr)
            fingerprint = decl.declared_public_key_sha256
            key_path = None
        else:
            key, key_path = self._enrollment_key(plan)
            csr_der = _crypto.build_csr(key, self.enrollment_data)
            fingerprint = _crypto.public_key_fingerprint(key)
        plan.issued_public_key_sha256 = fingerprint
        plan.enroll_key_path = key_path
        sent_at = self.now()
        # Certificates that exist before the POST can never be the one it creates (a CSR renewal reuses the key).
        known = sorted(set(plan.superseded) | set(item.serial_number for item in self._candidates(decl)))
        # decl.record follows the file, so a later failure (400/550) can clear it with _discard_record.
        decl.record = intent_record(decl.name, decl.type, fingerprint, key_path, plan.action, plan.superseded, sent_at,
                                    known)
        decl.store.write(decl.record)
        plan.changed = True
        try:
            response = self.api.enroll(decl.name, decl.type, csr_der, valid_from=decl.valid_from)
        except KsefTransportError as exc:
            if not exc.may_have_reached_server:
                self._forget_unsent(plan)
                raise
            self._reconcile_lost_response(plan, sent_at, exc)
            return
        except KsefApiError as exc:
            if exc.status is None or not 400 <= exc.status < 500:
                # A 5xx (a gateway, or KSeF failing after it recorded the request) or a 2xx whose body could
                # not be read: the request may have been taken, so keep the intent and never re-send blindly.
                self._reconcile_lost_response(plan, sent_at, exc)
                return
            # 4xx: KSeF refused the request (business errors, 429 after the client's retries).
            self._forget_unsent(plan)
            if self._is_quota_error(exc):
                raise KsefConvergeError(self._enroll_error_message(decl, exc), cause=exc,
                                        results=self._results(), changed=True)
            raise
        plan.reference_number = response.get('referenceNumber')
        if not plan.reference_number:
            raise KsefError('KSeF accepted the enrollment of %s but returned no reference number; the state file %s '
                            'keeps the intent so the next run reconciles it' % (decl.label, decl.state_path))
        record = intent_record(decl.name, decl.type, fingerprint, key_path, plan.action, plan.superseded, sent_at,
                               known)
        record.update(phase='pending', reference_number=plan.reference_number)
        decl.store.write(record)
        decl.record = record
        plan.status_code = 100
        plan.sent_clock = self.clock()
        if decl.wait:
            plan.deadline = self.clock() + (decl.wait_timeout if decl.wait_timeout is not None else 300)

    def _send_enrollments(self, enrolling):
        """Send every planned enrollment, each exactly once, in order.

        While the enrollment endpoint has no free rate-limit slot (KsefApi.seconds_until_slot), the time
        is used for the enrollments already sent: their status endpoint and the retrieve endpoint have
        counters of their own. Check mode sends nothing and so has nothing to overlap.
        """
        for index, plan in enumerate(enrolling):
            if index and not self.check_mode:
                self._overlap_until_enroll_slot()
            self._send_enrollment(plan)

    def _seconds_until_slot(self, endpoint):
        probe = getattr(self.api, 'seconds_until_slot', None)
        if probe is None:
            return 0.0
        return probe(*endpoint)

    def _waiting(self):
        """Enrollments being waited for whose wait has not run out (resumed ones included)."""
        now = self.clock()
        return [plan for plan in self.plans if plan.reference_number and plan.status_code == 100 and
                not plan.issued_serial and plan.deadline is not None and now < plan.deadline]

    def _poll_due_in(self, plan):
        """Seconds until the plan's next poll (POLL_INTERVAL after the last poll, or after sending)."""
        last = plan.polled_at if plan.polled_at is not None else plan.sent_clock
        if last is None:
            return 0.0
        return last + POLL_INTERVAL - self.clock()

    def _issued_unfinished(self):
        return [plan for plan in self.plans if plan.issued_serial and not plan.finished]

    def _retrieve_ready(self, issued, waiting):
        """Retrieve a full batch, or whatever is issued once nothing else is being waited for."""
        return bool(issued) and (len(issued) >= RETRIEVE_BATCH or not waiting)

    def _overlap_until_enroll_slot(self):
        """Poll, retrieve and install what was already sent until the enrollment endpoint has a free slot."""
        while True:
            enroll_wait = self._seconds_until_slot(ENROLL_ENDPOINT)
            if enroll_wait <= 0:
                return
            waiting = self._waiting()
            issued = self._issued_unfinished()
            next_event = enroll_wait
            if self._retrieve_ready(issued, waiting):
                retrieve_wait = self._seconds_until_slot(RETRIEVE_ENDPOINT)
                if retrieve_wait <= 0:
                    self._finish_issued(issued[:RETRIEVE_BATCH])
                    continue
                next_event = min(next_event, retrieve_wait)
            if waiting:
                status_wait = self._seconds_until_slot(STATUS_ENDPOINT)
                due = min(waiting, key=self._poll_due_in)
                due_in = self._poll_due_in(due)
                if due_in <= 0 and status_wait <= 0:
                    self._poll(due)
                    continue
                next_event = min(next_event, max(due_in, status_wait))
            self.sleep(max(next_event, MIN_OVERLAP_SLEEP))

    def _enrollment_key(self, plan):
        """The key the CSR is made for; a new key is on disk before anything is sent."""
        decl = plan.decl
        if plan.key_plan == 'reuse':
            return decl.key, decl.private_key_path
        key = _crypto.generate_private_key(decl.private_key_type or 'ec')
        path = decl.private_key_path if plan.key_plan == 'generate_in_place' else decl.next_key_path
        if plan.key_plan == 'generate_in_place' and os.path.exists(path):
            # Backstop: the key was absent when this run read its files under the lock; something outside
            # the lock wrote it since. Never overwrite a private key.
            raise KsefError('Private key %s of certificate %s appeared while this run was preparing to enroll (it '
                            'did not exist when the files were read under the lock); nothing was sent and the file '
                            'was left as it is. Check what wrote it, then run again'
                            % (path, decl.label))
        _crypto.write_private_key(self.module, path, key, decl.private_key_passphrase)
        if plan.key_plan == 'generate_in_place':
            decl.key = key
        return key, path

    def _forget_unsent(self, plan):
        """KSeF did not take the request: drop the intent (and a .next key made for it)."""
        plan.decl.record = plan.decl.store.read()
        self._discard_record(plan)

    @staticmethod
    def _is_quota_error(exc):
        return QUOTA_ENROLLMENTS in exc.codes or QUOTA_CERTIFICATES in exc.codes

    @staticmethod
    def _enroll_error_message(decl, exc):
        which = ('enrollment requests quota' if QUOTA_ENROLLMENTS in exc.codes else 'active certificates quota')
        return 'KSeF refused to enroll certificate %s: the %s is exhausted (%s)' % (decl.label, which, exc)

    def _reconcile_lost_response(self, plan, sent_at, exc):
        """The POST may have reached KSeF but its answer was lost: look for the certificate, never re-send."""
        decl = plan.decl
        fingerprint = plan.issued_public_key_sha256
        deadline = self.clock() + (decl.wait_timeout if decl.wait and decl.wait_timeout is not None else 0)
        checked = _known_before_post(decl.record)
        while True:
            items = [item for item in self.api.certificate_records(name=decl.name, certificate_type=decl.type)
                     if item.name == decl.name and item.type == decl.type and
                     item.requested_at >= sent_at - INTENT_CLOCK_SLACK and item.serial_number not in checked]
            self._retrieve([item.serial_number for item in items])
            for item in items:
                serial = item.serial_number
                checked.add(serial)
                certificate = self.retrieved.get(serial)
                if certificate is not None and _crypto.public_key_fingerprint(certificate.public_key()) == fingerprint:
                    self.items.append(item)
                    plan.action = 'installed'
                    plan.reason = 'reconciled'
                    plan.issued_serial = serial
                    return
            if self.clock() >= deadline:
                break
            self.sleep(RECONCILE_POLL_INTERVAL)
        reason = exc.reason if isinstance(exc, KsefTransportError) else str(exc)
        raise KsefError('The answer to the enrollment of certificate %s was lost (%s). KSeF may still be processing the '
                        'enrollment sent at %s; rerun later: the state file %s keeps the intent and the next run '
                        'reconciles by name, type and public key instead of sending another; or set force to send a '
                        'new one' % (decl.label, reason, format_time(sent_at), decl.state_path))

    def _wait_for_enrollments(self):
        """Poll every waiting enrollment every POLL_INTERVAL seconds until it is done or its wait_timeout ends."""
        waiting = [plan for plan in self.plans if plan.reference_number and plan.status_code == 100 and
                   plan.deadline is not None and not plan.issued_serial]
        if self.check_mode:
            return
        while waiting:
            for plan in list(waiting):
                if plan.polled_at is not None and self.clock() - plan.polled_at < POLL_INTERVAL:
                    continue
                self._poll(plan)
                if plan.status_code != 100:
                    waiting.remove(plan)
                elif self.clock() >= plan.deadline:
                    waiting.remove(plan)
            if waiting:
                self.sleep(POLL_INTERVAL)
        for plan in self.plans:
            if plan.reference_number and plan.status_code == 100 and not plan.issued_serial:
                plan.action = 'pending'

    def _poll(self, plan):
        """One status call for a waiting enrollment."""
        status = self.api.enrollment(plan.reference_number)
        plan.polled_at = self.clock()
        self._apply_status(plan, status)
        if plan.status_code != 100 and plan.reference_number is None:
            raise KsefError('KSeF gave up on the enrollment of certificate %s (status 500/550); the state '
                            'file was cleared, run again to send a new enrollment' % plan.decl.label)

    def _finish_issued(self, plans=None):
        """Retrieve and install issued certificates (all of them, or the given batch) not finished yet."""
        issued = [plan for plan in (self.plans if plans is None else plans) if plan.issued_serial and not plan.finished]
        self._retrieve([plan.issued_serial for plan in issued])
        for plan in issued:
            certificate = self.retrieved.get(plan.issued_serial)
            if certificate is None:
                raise KsefError('KSeF did not return certificate %s of %s' % (plan.issued_serial, plan.decl.label))
            if _crypto.public_key_fingerprint(certificate.public_key()) != plan.issued_public_key_sha256:
                raise KsefError('Certificate %s issued for enrollment %s of %s does not carry the enrolled public key; '
                                'nothing was installed' % (plan.issued_serial, plan.reference_number, plan.decl.label))
            plan.install_certificate = certificate
            plan.install_item = self._item_by_serial(plan.issued_serial)
            if plan.action == 'pending':
                # A resumed enrollment that KSeF finished while this run waited.
                plan.action = plan.completion_action
            if self.check_mode:
                plan.finished = True
                continue
            self._install(plan, certificate)
            self._revoke_superseded(plan)
            plan.decl.store.clear()
            plan.changed = True
            plan.finished = True

    # -- local files ---------------------------------------------------------------------------

    def _file_args(self, path, mode):
        args = self.module.load_file_common_arguments(self.module.params, path=path)
        if mode is not None:
            args['mode'] = mode
        return args

    def _certificate_mode(self):
        """The user's mode for certificate files, None to keep what the file has (0644 when written)."""
        return self.module.params.get('mode')

    def _install(self, plan, certificate):
        """Put the enrolled key in place, then the certificate (a crash in between is resumed from the state file)."""
        decl = plan.decl
        key = None
        if decl.private_key_path:
            source = plan.enroll_key_path
            if source and source != decl.private_key_path and os.path.exists(source):
                self._backup(plan, decl.private_key_path)
                _crypto.move_file_atomic(self.module, source, decl.private_key_path, _crypto.PRIVATE_KEY_MODE)
            key = _crypto.load_private_key(decl.private_key_path, decl.private_key_passphrase)
            if _crypto.public_key_fingerprint(key) != _crypto.public_key_fingerprint(certificate.public_key()):
                raise KsefError('The key in %s does not belong to certificate %s; the state file %s was kept, inspect '
                                'the files before running again' % (decl.private_key_path, _crypto.serial_hex(certificate),
                                                                    decl.state_path))
            decl.key = key
            self.module.set_fs_attributes_if_different(self._file_args(decl.private_key_path, '0600'), False)
        self._write_certificate_files(plan, certificate)

    def _write_certificate_files(self, plan, certificate):
        decl = plan.decl
        if decl.certificate_path:
            pem = _crypto.certificate_to_pem(certificate)
            local = decl.local_certificate
            if local is None or _crypto.certificate_to_pem(local) != pem:
                self._backup(plan, decl.certificate_path)
                _crypto.write_file_atomic(self.module, decl.certificate_path, pem, DEFAULT_CERTIFICATE_MODE,
                                          self._file_args(decl.certificate_path, None))
                decl.local_certificate = certificate
        if decl.pkcs12_path and not self._pkcs12_holds(decl, certificate):
            self._backup(plan, decl.pkcs12_path)
            data = _crypto.pkcs12_bundle(decl.name, decl.key, certificate, decl.pkcs12_passphrase)
            _crypto.write_file_atomic(self.module, decl.pkcs12_path, data, _crypto.PRIVATE_KEY_MODE,
                                      self._file_args(decl.pkcs12_path, '0600'))

    def _backup(self, plan, path):
        if plan.decl.backup and path and os.path.exists(path):
            plan.backup_files.append(self.module.backup_local(path))

    def _apply_file_attributes(self, plan):
        """Owner/group/mode of files that already existed (a healthy run fixes a widened key mode)."""
        decl = plan.decl
        if plan.action == 'installed' and not self.check_mode and plan.install_certificate is not None \
                and plan.issued_serial is None:
            self._write_certificate_files(plan, plan.install_certificate)
        changed = False
        if decl.private_key_path and os.path.exists(decl.private_key_path):
            changed = self.module.set_fs_attributes_if_different(
                self._file_args(decl.private_key_path, '0600'), changed)
        if decl.certificate_path and os.path.exists(decl.certificate_path):
            changed = self.module.set_fs_attributes_if_different(
                self._file_args(decl.certificate_path, self._certificate_mode()), changed)
        if decl.pkcs12_path and os.path.exists(decl.pkcs12_path):
            changed = self.module.set_fs_attributes_if_different(self._file_args(decl.pkcs12_path, '0600'), changed)
        if changed:
            plan.changed = True

    # -- revocation ----------------------------------------------------------------------------

    def _revoke(self, plan, serial, reason):
        """Revoke one serial this run's query showed active.

        `revoked`: KSeF revoked it, or answered 25009 (no longer active): its status went from active to
        revoked during this run, usually through this run's own request whose answer was lost and which
        the client repeated. `already_revoked`: KSeF does not know the serial (25008). Neither fails the run.
        """
        try:
            self.api.revoke(serial, reason)
            done = True
        except KsefApiError as exc:
            if 25008 not in exc.codes:
                raise
            done = False
        (plan.revoked if done else plan.already_revoked).append(serial)

    def _revoke_superseded(self, plan):
        if not plan.decl.revoke_superseded:
            return
        for serial in plan.superseded:
            if serial == plan.issued_serial:
                continue
            self._revoke(plan, serial, 'superseded')

    def _apply_absent(self, plan):
        decl = plan.decl
        if self.check_mode:
            return
        planned, plan.revoked = plan.revoked, []
        for serial in planned:
            self._revoke(plan, serial, decl.revocation_reason or 'unspecified')
        if planned and not plan.revoked and not plan.removed_files:
            # KSeF did not know any of them: nothing changed in this run.
            plan.action = 'none'
            plan.changed = False
        for path in plan.removed_files:
            self._backup(plan, path)
            os.unlink(path)

    # -- results -------------------------------------------------------------------------------

    def _plan_result(self, plan, now):
        decl = plan.decl
        certificate = plan.summary(now)
        result = {
            'name': decl.name,
            'type': decl.type,
            'state': decl.state,
            'action': plan.action,
            'reason': plan.reason,
            'changed': plan.changed,
            'certificate': certificate,
            'reference_number': plan.reference_number if plan.action == 'pending' or plan.issued_serial else None,
            'superseded': list(plan.superseded) if decl.state == 'present' else [],
            'revoked': list(plan.revoked),
            'already_revoked': list(plan.already_revoked),
            'private_key_path': decl.private_key_path,
            'certificate_path': decl.certificate_path,
            'pkcs12_path': decl.pkcs12_path,
            'state_path': decl.state_path,
            'backup_files': list(plan.backup_files),
            'removed_files': list(plan.removed_files),
        }
        if decl.return_content:
            pem = None
            if plan.install_certificate is not None and decl.state == 'present':
                pem = to_native(_crypto.certificate_to_pem(plan.install_certificate))
            result['certificate_pem'] = pem
        return result

    def _results(self, partial=False):
        now = self.now()
        return [self._plan_result(plan, now) for plan in self.plans]

    def _diff_entry(self, plan, after):
        decl = plan.decl
        entry = {'name': decl.name, 'type': decl.type, 'private_key_path': decl.private_key_path,
                 'certificate_path': decl.certificate_path}
        if after:
            summary = plan.summary(self.now()) if plan.decl.state == 'present' else None
            if plan.enroll and summary is None:
                entry.update({'serial_number': '(new)', 'status': 'active', 'valid_to': None,
                              'public_key_sha256': plan.issued_public_key_sha256 or '(new key)'})
            elif plan.decl.state == 'absent':
                entry.update({'serial_number': None, 'status': 'revoked' if plan.revoked else None, 'valid_to': None,
                              'public_key_sha256': None})
            else:
                entry.update(self._diff_certificate(summary))
        else:
            summary = None
            if plan.current_item is not None or plan.current_certificate is not None:
                summary = certificate_summary(decl, plan.current_item, plan.current_certificate, self.now())
            entry.update(self._diff_certificate(summary))
        return entry

    @staticmethod
    def _diff_certificate(summary):
        if summary is None:
            return {'serial_number': None, 'status': None, 'valid_to': None, 'public_key_sha256': None}
        return dict((key, summary.get(key)) for key in ('serial_number', 'status', 'valid_to', 'public_key_sha256'))

    def result(self):
        results = self._results()
        changed = any(entry['changed'] for entry in results)
        superseded = [serial for entry in results for serial in entry['superseded']]
        if self.single:
            entry = results[0]
            output = {
                'changed': changed,
                'action': entry['action'],
                'reason': entry['reason'],
                'certificate': entry['certificate'],
                'reference_number': entry['reference_number'],
                'superseded': superseded,
                'revoked': entry['revoked'],
                'already_revoked': entry['already_revoked'],
                'backup_files': entry['backup_files'],
                'certificates': results,
            }
            if 'certificate_pem' in entry:
                output['certificate_pem'] = entry['certificate_pem']
        else:
            actions = set(entry['action'] for entry in results)
            output = {
                'changed': changed,
                'action': actions.pop() if len(actions) == 1 else 'multiple',
                'reason': None,
                'certificate': None,
                'reference_number': None,
                'superseded': superseded,
                'revoked': [serial for entry in results for serial in entry['revoked']],
                'already_revoked': [serial for entry in results for serial in entry['already_revoked']],
                'backup_files': [path for entry in results for path in entry['backup_files']],
                'certificates': results,
            }
        if self.module._diff:
            before = [self._diff_entry(plan, after=False) for plan in self.plans]
            after = [self._diff_entry(plan, after=True) for plan in self.plans]
            if self.single:
                output['diff'] = {'before': before[0], 'after': after[0]}
            else:
                output['diff'] = {'before': {'certificates': before}, 'after': {'certificates': after}}
        return output
