#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ksef_certificate_revoke
short_description: Revoke KSeF certificates
version_added: 0.1.0
description:
  - Revokes KSeF certificates (API v2 C(POST /certificates/{certificateSerialNumber}/revoke)) chosen
    by serial number, or all active certificates with exactly a given name and type.
  - The module first queries the current status of the selected certificates, then revokes only the
    ones that are V(active). Certificates that are already V(revoked) or V(expired) are reported in
    RV(already_revoked) and leave the task unchanged.
  - A certificate in status V(blocked) is treated as a revocation that KSeF is still completing; it is
    reported in RV(already_revoked) and not revoked again.
  - When O(serial_numbers) names a certificate KSeF does not know, the module fails and names it
    before it revokes anything.
  - When KSeF answers a revocation with error 25009 (the certificate was revoked, blocked or expired
    between the query and the revocation, for example by a parallel run), the certificate counts as
    already revoked.
  - Revocation is final; a revoked certificate cannot be used again. KSeF does not allow it in sessions
    opened with a KSeF token; log in with a signature (certificate and private key).
author:
  - ksef.certificates contributors (@ksef-certificates)
extends_documentation_fragment:
  - ksef.certificates.connection
  - ksef.certificates.attributes
  - ksef.certificates.attributes.actiongroup_ksef
attributes:
  check_mode:
    support: full
    details:
      - The certificates are queried and the result is predicted from their current status; no revocation
        is sent.
  diff_mode:
    support: full
    details:
      - Returns the status of each selected certificate before and after the run.
  idempotent:
    description: When run twice in a row with the same options, the second run reports no change.
    support: full
options:
  serial_numbers:
    description:
      - Serial numbers (16 hexadecimal characters; lower case is accepted) of the certificates to revoke.
      - Mutually exclusive with O(name) and O(type). An empty list is an error; the module never
        revokes "everything".
    type: list
    elements: str
  name:
    description:
      - Revoke every active certificate whose name is exactly this (case-sensitive). A certificate
        whose name merely contains O(name) is not touched.
      - Requires O(type). When no active certificate has this name and type, the task succeeds
        unchanged and RV(msg) says so.
    type: str
  type:
    description:
      - Certificate type that, together with O(name), selects the certificates.
    type: str
    choices: [authentication, offline]
  reason:
    description:
      - Revocation reason sent to KSeF.
    type: str
    choices: [unspecified, superseded, key_compromise]
    default: unspecified
notes:
  - In check mode the module queries the certificates and predicts the result from their current
    status; it sends no revocation.
  - With O(serial_numbers) the module needs one query call for one serial number, and otherwise one
    listing of every certificate of the subject (50 a page) so that it never needs more query calls
    than there are serial numbers; then one revocation call per active certificate.
  - In diff mode the module returns the status of each selected certificate before and after the run.
seealso:
  - module: ksef.certificates.ksef_certificate_info
  - module: ksef.certificates.ksef_certificate
'''

EXAMPLES = r'''
- name: Revoke two certificates whose keys leaked
  ksef.certificates.ksef_certificate_revoke:
    context_id: "1234563218"
    auth_certificate_path: /etc/ksef/seal.pem
    auth_private_key_path: /etc/ksef/seal.key
    serial_numbers:
      - 01F2A3B4C5D6E7F8
      - 0A0B0C0D0E0F1011
    reason: key_compromise

- name: Revoke every active authentication certificate named exactly "erp-old"
  ksef.certificates.ksef_certificate_revoke:
    name: erp-old
    type: authentication
    reason: superseded
  register: revoked

- name: Show what was revoked
  ansible.builtin.debug:
    msg: "Revoked now: {{ revoked.revoked }}; already revoked: {{ revoked.already_revoked }}"
'''

RETURN = r'''
revoked:
  description:
    - Serial numbers revoked by this run (in check mode, the ones that would be revoked).
  returned: always
  type: list
  elements: str
  sample: [01F2A3B4C5D6E7F8]
already_revoked:
  description:
    - Selected serial numbers that were not active, so nothing was done for them (status V(revoked),
      V(expired) or V(blocked), or KSeF answered 25009).
  returned: always
  type: list
  elements: str
  sample: [0A0B0C0D0E0F1011]
certificates:
  description:
    - Summaries of the selected certificates, with the status after this run (predicted in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    serial_number:
      description: Serial number (C(certificateSerialNumber) in the KSeF API).
      type: str
      returned: always
      sample: 01F2A3B4C5D6E7F8
    name:
      description: Certificate name.
      type: str
      returned: always
      sample: erp-old
    type:
      description: Certificate type.
      type: str
      returned: always
      choices: [authentication, offline]
      sample: authentication
    common_name:
      description: Common name (CN) of the certificate subject.
      type: str
      returned: always
      sample: Example Sp. z o.o.
    status:
      description: Status after this run (predicted in check mode).
      type: str
      returned: always
      choices: [active, blocked, revoked, expired]
      sample: revoked
    previous_status:
      description: Status before this run.
      type: str
      returned: always
      choices: [active, blocked, revoked, expired]
      sample: active
    valid_from:
      description: Start of validity (UTC, ISO 8601, whole seconds, like every date-time the modules return).
      type: str
      returned: always
      sample: "2026-01-10T12:00:00+00:00"
    valid_to:
      description: End of validity (UTC, ISO 8601, whole seconds, like every date-time the modules return).
      type: str
      returned: always
      sample: "2028-01-10T12:00:00+00:00"
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: Revoked 1 certificate(s); 1 already revoked, blocked or expired.
diff:
  description: Status of each selected certificate before and after the run, keyed by serial number.
  returned: in diff mode
  type: dict
  sample: {"before": {"01F2A3B4C5D6E7F8": "active"}, "after": {"01F2A3B4C5D6E7F8": "revoked"}}
api_calls:
  description: Number of HTTP requests the module sent to KSeF (login and retries included).
  returned: always
  type: int
  sample: 7
system_warnings:
  description:
    - KSeF's C(X-System-Warning) entries of this run, each once (see O(system_warnings)); empty when there were none.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: Warning code, e.g. C(sig-001); V(null) when KSeF sent a text without a code.
      type: str
    text:
      description: Warning text.
      type: str
    endpoint:
      description: The request that got the warning.
      type: str
  sample: [{code: sig-001, text: Format podpisu niezgodny z akceptowanymi profilami XAdES, endpoint: POST /auth/xades-signature}]
'''


from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError, KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.plugins.module_utils._rules import CERTIFICATE_TYPES, has_control_characters
from ansible_collections.ksef.certificates.plugins.module_utils._api import (
    CERTIFICATE_TYPES as API_CERTIFICATE_TYPES, REVOCATION_REASONS, normalize_serial_numbers, to_api,
)


SUMMARY_KEYS = ('serial_number', 'name', 'type', 'common_name', 'status', 'previous_status', 'valid_from', 'valid_to')


class UnknownCertificateError(KsefError):
    """Some requested serial numbers do not exist for the authenticated subject."""

    def __init__(self, serial_numbers):
        self.serial_numbers = list(serial_numbers)
        super(UnknownCertificateError, self).__init__(
            'KSeF has no certificate with serial number(s) %s for the authenticated subject; nothing was revoked'
            % ', '.join(self.serial_numbers))

    def fail_kwargs(self):
        return {'unknown_serial_numbers': self.serial_numbers}


class PartialRevocationError(KsefError):
    """A revocation failed after others in the same run succeeded; says which ones were revoked."""

    def __init__(self, cause, serial_number, revoked):
        self.cause = cause
        self.revoked = list(revoked)
        super(PartialRevocationError, self).__init__(
            'revoking %s failed: %s; certificates revoked by this run before the failure: %s'
            % (serial_number, cause, ', '.join(self.revoked)))

    def fail_kwargs(self):
        result = dict(self.cause.fail_kwargs())
        result.update(changed=True, revoked=self.revoked)
        return result


def validate_params(params):
    """Check and normalise the selection before any API call; an empty selection is an error."""
    if params.get('serial_numbers') is not None:
        if params.get('name') is not None or params.get('type') is not None:
            raise KsefInputError('serial_numbers cannot be combined with name or type')
        if not params['serial_numbers']:
            raise KsefInputError('serial_numbers is an empty list; name the certificates to revoke '
                                 '(the module never revokes all certificates)')
        params['serial_numbers'] = normalize_serial_numbers(params['serial_numbers'])
        return
    name = params.get('name')
    if name is None and params.get('type') is None:
        raise KsefInputError('select the certificates to revoke with serial_numbers, or with name and type')
    if name is None or not name.strip():
        raise KsefInputError('name must be a non-empty certificate name when type is given')
    if params.get('type') is None:
        raise KsefInputError('type is required with name (authentication or offline)')
    if has_control_characters(name):
        # No certificate can carry such a name (a trailing newline is a common cause): nothing would match.
        raise KsefInputError('name %r contains a control character (a newline, tab, ...); no certificate name does'
                             % name)


def find_selected(api, params):
    """Query KSeF and return the selected certificates (module form). Fails on unknown serial numbers."""
    serials = params.get('serial_numbers')
    if serials:
        if len(serials) == 1:
            found = api.certificate_records(serial_number=serials[0])
        else:
            found = api.certificate_records()
        by_serial = {}
        for record in found:
            by_serial[record.serial_number] = record.module_fields()
        unknown = [s for s in serials if s not in by_serial]
        if unknown:
            raise UnknownCertificateError(unknown)
        return [by_serial[s] for s in serials]
    # By name: KSeF filters names by substring, so keep only exact matches. Not filtered by status
    # on the server so that the non-active matches can be reported as already revoked.
    found = api.certificate_records(name=params['name'], certificate_type=to_api(API_CERTIFICATE_TYPES, params['type']))
    selected = {}
    for record in found:
        if record.name == params['name'] and record.type == params['type']:
            # keyed by serial: a page shift between page requests may repeat an item
            selected[record.serial_number] = record.module_fields()
    return sorted(selected.values(), key=lambda c: c['serial_number'])


def revoke_selected(api, certificates, reason, check_mode):
    """Revoke the active ones; return (revoked, already_revoked) serial lists and set each status."""
    revoked = []
    already_revoked = []
    for certificate in certificates:
        certificate['previous_status'] = certificate['status']
        if certificate['status'] != 'active':
            already_revoked.append(certificate['serial_number'])
            continue
        try:
            revoked_now = check_mode or api.revoke(certificate['serial_number'], to_api(REVOCATION_REASONS, reason))
        except KsefError as exc:
            if not revoked:
                raise
            raise PartialRevocationError(exc, certificate['serial_number'], revoked)
        if revoked_now:
            revoked.append(certificate['serial_number'])
            certificate['status'] = 'revoked'
        else:
            # 25009: revoked, blocked or expired since the query; KSeF did not say which.
            already_revoked.append(certificate['serial_number'])
            certificate['status'] = 'revoked'
    return revoked, already_revoked


def describe(params, revoked, already_revoked, selected, check_mode):
    if not selected:
        return ('No certificate named %r of type %s exists; nothing to revoke'
                % (params['name'], params['type']))
    verb = 'Would revoke' if check_mode else 'Revoked'
    message = '%s %d certificate(s)' % (verb, len(revoked))
    if already_revoked:
        message += '; %d already revoked, blocked or expired' % len(already_revoked)
    if params.get('name') is not None and not revoked:
        message += '; no active certificate named %r of type %s' % (params['name'], params['type'])
    return message


def revoke_certificates(api, params, check_mode, diff_mode):
    """Everything the module returns except api_calls. `params` must have been validated."""
    selected = find_selected(api, params)
    revoked, already_revoked = revoke_selected(api, selected, params['reason'], check_mode)
    result = {
        'changed': bool(revoked),
        'revoked': revoked,
        'already_revoked': already_revoked,
        'certificates': [dict((key, c.get(key)) for key in SUMMARY_KEYS) for c in selected],
        'msg': describe(params, revoked, already_revoked, selected, check_mode),
    }
    if diff_mode:
        result['diff'] = {
            'before': dict((c['serial_number'], c['previous_status']) for c in selected),
            'after': dict((c['serial_number'], c['status']) for c in selected),
        }
    return result


def run_module(ksef):
    params = dict(ksef.params)
    validate_params(params)
    return revoke_certificates(ksef.api, params, ksef.check_mode, ksef.module._diff)


def main():
    argument_spec = dict(
        serial_numbers=dict(type='list', elements='str'),
        name=dict(type='str'),
        type=dict(type='str', choices=list(CERTIFICATE_TYPES)),
        reason=dict(type='str', choices=['unspecified', 'superseded', 'key_compromise'], default='unspecified'),
    )
    ksef = KsefModule(
        argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[('serial_numbers', 'name'), ('serial_numbers', 'type')],
        required_together=[('name', 'type')],
        required_one_of=[('serial_numbers', 'name')],
    )
    ksef.run(run_module)


if __name__ == '__main__':
    main()
