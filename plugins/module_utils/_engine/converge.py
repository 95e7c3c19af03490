# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The run of ksef.certificates.ksef_certificate: the parts in order.

1. declarations (_declaration.py): validate every declaration and read local material (no API call yet);
2. take the controller locks (_pending.py) and read the state files;
3. ONE paginated query for the whole set, as typed records (_api.py / _records.py); the status of a
   recorded enrollment; the certificates the decision needs;
4. the pure decision per declaration (_decide.py);
5. GET /rate-limits once when there is work, the call budget (_budget.py: a plan over the hour window
   fails before anything is sent), limits once when anything must be enrolled, then the enrollment phase: the scheduler
   (_scheduler.py) orders the calls, the enroller (_enroll.py) makes them, the installer
   (_install.py) writes files;
6. the result (_result.py).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import time
from typing import Any, Callable, Dict, Mapping, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine import proof as _proof
from ansible_collections.ksef.certificates.plugins.module_utils._api import ENROLLMENT_DATA, KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._engine.budget import (
    budget_summary,
    over_hour_message,
    plan_budget,
    plan_run,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import (
    KsefView,
    decide,
    intent_candidates,
    intent_may_expire,
    wanted_serials,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import (
    load_local_material,
    merge_declarations,
    validate_declaration,
    validate_set,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.enroll import Enroller
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError, KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.install import Installer
from ansible_collections.ksef.certificates.plugins.module_utils._login import LoginCertificate
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import LockSet, PendingStore
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.result import KsefConvergeError, build_result
from ansible_collections.ksef.certificates.plugins.module_utils._engine.rolling import (
    RollingRenewal,
    current_validity,
    forecast_quota,
    slots_freed,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.scheduler import (
    INITIAL_ISSUE_DELAY,
    EnrollmentScheduler,
)

__all__ = ['Converger', 'KsefConvergeError', 'LockSet']


class Converger:
    """Runs the whole declared set against KSeF; see the module docs for the behaviour."""

    def __init__(self, module: AnsibleModule, api_provider: Callable[[], KsefApi], params: Mapping[str, Any],
                 now: Optional[Callable[[], datetime.datetime]] = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, login: Optional[LoginCertificate] = None) -> None:
        self.module = module
        # _login.LoginCertificate of a signature login, None otherwise.
        self.login = login
        self._api_provider = api_provider
        self._api = None
        self.params = params
        self.check_mode = module.check_mode
        self._now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.sleep = sleep
        self.clock = clock
        self.declarations = []
        self.plans = []
        self.view = KsefView()
        self.installer = Installer(module)
        self.enroller = None
        self.rolling = None
        self.budget = None
        self.single = params.get('certificates') is None

    @property
    def api(self) -> KsefApi:
        if self._api is None:
            self._api = self._api_provider()
        return self._api

    def now(self) -> datetime.datetime:
        return self._now()

    # -- entry point ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Everything that happens before the first API call: validation and local files."""
        self.declarations = merge_declarations(self.params)
        for decl in self.declarations:
            validate_declaration(decl)
        validate_set(self.declarations)
        for decl in self.declarations:
            load_local_material(decl)
            decl.store = PendingStore(self.module, decl.state_path)
        self.plans = [Plan(decl) for decl in self.declarations]

    def run(self) -> Dict[str, Any]:
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
            self.view.records = self.api.certificate_records(**self._query_filter())
            self.enroller = Enroller(self.module, self.api, self.view, self.installer, self.now, clock=self.clock,
                                     login=self.login)
            self.enroller.plans = self.plans
            for plan in self.plans:
                self._collect_needs(plan)
            self.enroller.retrieve([serial for plan in self.plans for serial in plan.wanted_serials])
            for plan in self.plans:
                self._decide(plan)
            enrolling = [plan for plan in self.plans if plan.enroll]
            if self.check_mode:
                for plan in enrolling:
                    self.enroller.revoker.predict_kept_login(plan)
            scheduler = EnrollmentScheduler(self.api, self.enroller, clock=self.clock, sleep=self.sleep,
                                            check_mode=self.check_mode, warn=self.module.warn)
            self.rolling = RollingRenewal(self.module, self.api, self.enroller, scheduler, self.now,
                                          release_offline=self.params.get('release_offline_predecessors'))
            self._plan_budget(enrolling)
            if enrolling:
                waves = self.rolling.start(self.plans, enrolling)
                if waves.waves:
                    self.enroller.enrollment_data = self.api.enrollment_data()
                    self.rolling.run(self.plans, waves, self._check_csr_subject)
            elif self.params.get('quota_forecast'):
                self.rolling.read_limits()
            scheduler.wait(self.plans)
            self.enroller.finish()
            for plan in self.plans:
                if plan.decl.state == 'absent':
                    self.enroller.revoker.apply_absent(plan)
                else:
                    self.installer.apply_file_attributes(plan)
                    self._finish_rotation(plan)
            if enrolling:
                self.rolling.finish(self.plans)
        except KsefConvergeError as exc:
            if not exc.results:
                exc.results = self._results()
            raise
        except KsefError as exc:
            raise KsefConvergeError(str(exc), cause=exc, results=self._results(),
                                    changed=any(plan.changed for plan in self.plans))
        return self.result()

    # -- reading KSeF --------------------------------------------------------------------------

    def _query_filter(self):
        types = set(decl.type for decl in self.declarations)
        if len(types) == 1:
            return {'certificate_type': types.pop()}
        return {}

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
            plan.wanted_serials.extend(wanted_serials(decl, self.view))
            return
        if decl.record and decl.record['phase'] == 'pending':
            self.enroller.statuses.read_pending(plan)
            if plan.issued_serial:
                plan.wanted_serials.append(plan.issued_serial)
                return
            if decl.record is not None and decl.record['phase'] == 'pending':
                return
        if decl.record and decl.record['phase'] == 'intent':
            plan.intent_candidates = intent_candidates(decl, self.view)
            plan.wanted_serials.extend(plan.intent_candidates)
            if not intent_may_expire(decl, self.now()):
                return
        plan.wanted_serials.extend(wanted_serials(decl, self.view))

    def _decide(self, plan):
        """The pure decision, then what it asks of the engine: warnings, a record to discard, a wait deadline."""
        decision = decide(plan.decl, self.view, self.installer.local_files, self.now(), issued_serial=plan.issued_serial,
                          intent_candidates=plan.intent_candidates)
        plan.carry_out(decision)
        for warning in decision.warnings:
            self.module.warn(warning)
        if decision.discard_record:
            self.enroller.statuses.discard_record(plan)
        if plan.action == 'pending':
            plan.start_wait(self.clock())

    # -- limits and enrollment data ------------------------------------------------------------

    def _plan_budget(self, enrolling):
        """Effective rate limits, then the call budget: the enrollments (soonest expiry first) that fit the hour go
        now, the rest wait for a later run; work that cannot start within the hour fails before anything is sent."""
        absent = sum(len(plan.to_revoke) for plan in self.plans if plan.decl.state == 'absent') + sum(
            len(plan.decision.kept_predecessors) for plan in self.plans)
        expiries = dict((id(plan), current_validity(plan, self.view, self.now())) for plan in enrolling)
        order = sorted(enrolling, key=lambda plan: (expiries[id(plan)] is not None, expiries[id(plan)], plan.decl.label))
        # The run's own revocation calls: none where the caller revokes (caller_revokes_superseded).
        frees = [slots_freed(plan, self.enroller.revoker.keeps_login, self.now()) if plan.decl.revoke_superseded else 0
                 for plan in order]
        if enrolling or absent:
            # More to do than a no-op: pace to the limits KSeF reports for this context (one call, own counter).
            self.api.ensure_rate_limits()
        if enrolling:
            self.rolling.read_limits()      # GET /certificates/limits once: the waves the enrollments need

        def cost(count):
            waves = self.rolling.wave_count(order[:count]) if count else 1
            return plan_run(self.api, count, absent + sum(frees[:count]), issue_delay=INITIAL_ISSUE_DELAY, waves=waves)

        count = len(order)
        plan = cost(count)
        while not plan['fits_hour'] and count > 1:
            count -= 1
            plan = cost(count)
        self.budget = budget_summary(plan, self.api.limits_source())
        if not plan['fits_hour']:
            raise KsefError(over_hour_message(plan, 'The declared set (%d enrollment(s), %d revocation(s))'
                                              % (len(enrolling), absent + sum(frees))))
        if count < len(order):
            self.rolling.max_enrollments = count

    def _finish_rotation(self, plan):
        """Predecessors an earlier run kept (its successor did not prove itself): prove the declared certificate now,
        then revoke them (never this run's login while the new pair is not where the next login reads it).

        Check mode proves nothing and predicts the revocation unless the certificate is not valid yet."""
        keeps_login = self.enroller.revoker.keeps_login
        serials = [serial for serial in plan.decision.kept_predecessors if not keeps_login(plan, serial)]
        certificate = plan.current_certificate
        if not serials or certificate is None:
            return
        if self.check_mode:
            if _proof.not_valid_yet(certificate, self.now()) is None:
                plan.revoked.extend(serials)
                plan.changed = True
            return
        plan.proof = _proof.prove_installed(plan.decl, certificate, self.enroller.revoker.prove_login, self.module.params,
                                            self.now())
        if not plan.proof.proven:
            self.module.warn('%s: %s still kept active because %s'
                             % (plan.decl.label, ', '.join(serials), plan.proof.reason))
            return
        for serial in serials:
            self.enroller.revoker.revoke(plan, serial, 'superseded')
        plan.changed = True
        if plan.action == 'none':
            plan.action, plan.reason = 'revoked', 'proven'

    def _check_csr_subject(self, plan):
        """KSeF rejects (25003) a CSR whose subject differs from the signer's data: say so before sending."""
        decl = plan.decl
        if not decl.uses_csr:
            return
        differences = _crypto.csr_subject_differences(decl.csr, self.enroller.enrollment_data)
        if differences:
            raise KsefInputError('The CSR of certificate %s does not carry the subject KSeF requires (from '
                                 '%s): %s differ. Build the CSR with exactly these attributes'
                                 % (decl.label, ENROLLMENT_DATA.route, ', '.join(differences)))

    # -- results -------------------------------------------------------------------------------

    def _results(self):
        return build_result(self.plans, self.single, self.now(), view=self.view, check_mode=self.check_mode)['certificates']

    def result(self) -> Dict[str, Any]:
        result = build_result(self.plans, self.single, self.now(), diff=self.module._diff, view=self.view,
                              check_mode=self.check_mode)
        result['budget'] = self.budget or budget_summary(plan_budget({}, {}))
        result['quota'] = self._quota()
        return result

    def _quota(self):
        """Limits, waves and forecast of the run; None when the run did not read GET /certificates/limits."""
        if self.rolling is None or self.rolling.limits is None:
            return None
        quota = dict(self.rolling.quota or self.rolling.quota_of(self.rolling.limits))
        quota['forecast'] = forecast_quota(self.plans, self.rolling.limits, self.view, self.now())
        return quota
