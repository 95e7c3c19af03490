# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The return values of ksef_certificate, built from the plans (also after a failure half way)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import KsefView
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecord
from ansible_collections.ksef.certificates.plugins.module_utils._rules import days_remaining, format_datetime

if TYPE_CHECKING:  # cryptography is optional at import time (ansible-test import sanity runs without it)
    from cryptography import x509

DIFF_CERTIFICATE_KEYS = ('serial_number', 'status', 'valid_to', 'public_key_sha256')


class KsefConvergeError(KsefError):
    """A failure in the middle of a run; carries what was already done so nothing is lost from the output."""

    def __init__(self, message: str, cause: Optional[BaseException] = None, results: Optional[List[Dict[str, Any]]] = None,
                 changed: bool = False) -> None:
        super(KsefConvergeError, self).__init__(message)
        self.cause = cause
        self.results = results or []
        self.changed = changed

    def fail_kwargs(self) -> Dict[str, Any]:
        extras = self.cause.fail_kwargs() if isinstance(self.cause, KsefError) else {}
        extras['certificates'] = self.results
        extras['changed'] = self.changed
        return extras


def certificate_summary(decl: Declaration, record: Optional[CertificateRecord], certificate: 'Optional[x509.Certificate]',
                        now: datetime.datetime) -> Dict[str, Any]:
    """The module's view of one certificate; KSeF's validTo wins over the X.509 notAfter (KSeF can shorten it)."""
    summary = {
        'serial_number': None, 'name': decl.name, 'type': decl.type, 'status': None, 'valid_from': None,
        'valid_to': None, 'days_remaining': None, 'fingerprint_sha256': None, 'subject': None, 'public_key_sha256': None,
    }
    if certificate is not None:
        summary.update(_crypto.certificate_summary(certificate))
        summary['status'] = 'active'
    if record is not None:
        fields = record.module_fields()    # the date-times as KSeF sent them
        summary['serial_number'] = record.serial_number or summary['serial_number']
        summary['name'] = record.name or summary['name']
        summary['status'] = record.status or summary['status']
        summary['valid_from'] = fields.get('valid_from') or summary['valid_from']
        summary['valid_to'] = fields.get('valid_to') or summary['valid_to']
    if summary['valid_to']:
        summary['days_remaining'] = days_remaining(summary['valid_to'], now)
    return summary


def plan_summary(plan: Plan, now: datetime.datetime) -> Optional[Dict[str, Any]]:
    """The certificate a plan ends with; None while an enrollment is predicted (check mode) or pending."""
    if plan.enroll and plan.install_certificate is None:
        return None
    record = plan.install_item if plan.install_certificate is not None else plan.current_item
    certificate = plan.install_certificate if plan.install_certificate is not None else plan.current_certificate
    if record is None and certificate is None:
        return None
    return certificate_summary(plan.decl, record, certificate, now)


def superseded_entries(plan: Plan, view: Optional[KsefView] = None, check_mode: bool = False) -> List[Dict[str, Any]]:
    """Each superseded serial with its validity end (as KSeF listed it) and whether this run revoked it (in check
    mode: would revoke it). A superseded Offline certificate stays active by default (revoke_superseded)."""
    entries = []
    for serial in list(plan.superseded) + list(plan.decision.kept_predecessors):
        record = view.by_serial(serial) if view is not None else None
        revoked = serial in plan.revoked or serial in plan.already_revoked or (
            check_mode and plan.decl.revoke_superseded and serial in plan.superseded and serial != plan.issued_serial
            and serial not in plan.superseded_login)
        entries.append({'serial_number': serial, 'type': plan.decl.type,
                        'valid_to': record.module_fields().get('valid_to') if record is not None else None,
                        'revoked': bool(revoked)})
    return entries


def hold_summary(plan: Plan) -> Optional[Dict[str, Any]]:
    """A due enrollment the run held (_rolling.py): deferred or blocked, why, and the dates; None otherwise."""
    if plan.held is None:
        return None
    return {'state': plan.held, 'reason': plan.hold_reason, 'outage_at': format_datetime(plan.outage_at),
            'retry_at': format_datetime(plan.retry_at), 'message': plan.hold_note}


def plan_result(plan: Plan, now: datetime.datetime, view: Optional[KsefView] = None, check_mode: bool = False) -> Dict[str, Any]:
    """One entry of `certificates`."""
    decl = plan.decl
    result = {
        'name': decl.name,
        'type': decl.type,
        'state': decl.state,
        'action': plan.action,
        'reason': plan.reason,
        'changed': plan.changed,
        'certificate': plan_summary(plan, now),
        'reference_number': plan.reference_number if plan.action == 'pending' or plan.issued_serial else None,
        # a held renewal (deferred, blocked) supersedes nothing in this run
        'superseded': superseded_entries(plan, view, check_mode) if decl.state == 'present' and plan.held is None else [],
        'revoked': list(plan.to_revoke if check_mode and decl.state == 'absent' else plan.revoked),
        'already_revoked': list(plan.already_revoked),
        'superseded_login': list(plan.superseded_login),
        'proof': plan.proof.summary() if plan.proof is not None else None,
        'hold': hold_summary(plan),
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


def _diff_certificate(summary):
    if summary is None:
        return dict((key, None) for key in DIFF_CERTIFICATE_KEYS)
    return dict((key, summary.get(key)) for key in DIFF_CERTIFICATE_KEYS)


def diff_entry(plan: Plan, now: datetime.datetime, after: bool) -> Dict[str, Any]:
    """The before or after view of one plan for diff mode."""
    decl = plan.decl
    entry = {'name': decl.name, 'type': decl.type, 'private_key_path': decl.private_key_path,
             'certificate_path': decl.certificate_path}
    if not after:
        summary = None
        if plan.current_item is not None or plan.current_certificate is not None:
            summary = certificate_summary(decl, plan.current_item, plan.current_certificate, now)
        entry.update(_diff_certificate(summary))
        return entry
    summary = plan_summary(plan, now) if decl.state == 'present' else None
    if plan.enroll and summary is None:
        entry.update({'serial_number': '(new)', 'status': 'active', 'valid_to': None,
                      'public_key_sha256': plan.issued_public_key_sha256 or '(new key)'})
    elif decl.state == 'absent':
        entry.update({'serial_number': None, 'status': 'revoked' if plan.to_revoke else None, 'valid_to': None,
                      'public_key_sha256': None})
    else:
        entry.update(_diff_certificate(summary))
    return entry


def build_result(plans: List[Plan], single: bool, now: datetime.datetime, diff: bool = False, view: Optional[KsefView] = None,
                 check_mode: bool = False) -> Dict[str, Any]:
    """The module's return values: the single form mirrors its one entry, the list form aggregates."""
    results = [plan_result(plan, now, view, check_mode) for plan in plans]
    changed = any(entry['changed'] for entry in results)
    superseded = [superseded_entry for entry in results for superseded_entry in entry['superseded']]
    if single:
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
            'superseded_login': entry['superseded_login'],
            'backup_files': entry['backup_files'],
            'hold': entry['hold'],
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
            'superseded_login': [serial for entry in results for serial in entry['superseded_login']],
            'backup_files': [path for entry in results for path in entry['backup_files']],
            'certificates': results,
        }
    if diff:
        before = [diff_entry(plan, now, after=False) for plan in plans]
        after = [diff_entry(plan, now, after=True) for plan in plans]
        if single:
            output['diff'] = {'before': before[0], 'after': after[0]}
        else:
            output['diff'] = {'before': {'certificates': before}, 'after': {'certificates': after}}
    return output
