#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ksef_certificate_info
short_description: List KSeF certificates of the authenticated subject
version_added: 0.1.0
description:
  - Lists the KSeF certificates (API v2 C(POST /certificates/query)) that belong to the subject the
    module authenticates as, with optional filters, and optionally returns the certificate limits,
    the enrollment data and the certificates themselves in PEM form.
  - Every page of the query is fetched; the result is the complete list.
  - The list is sorted by RV(certificates[].valid_to) ascending (soonest expiry first); certificates
    with the same expiry are ordered by serial number.
  - The module never changes anything in KSeF; RV(ignore:changed) is always V(false).
  - "API call economy: a filter that KSeF supports with a single value (one O(status), one entry in
    O(serial_numbers), O(name), O(type)) is sent to KSeF. Several statuses or several serial numbers
    are filtered locally after one listing, because KSeF accepts only one value per filter and one
    listing (50 certificates a page) costs fewer calls than one query per value for any realistic
    number of certificates of a subject (at most 100 active ones)."
author:
  - ksef.certificates contributors (@ksef-certificates)
extends_documentation_fragment:
  - ksef.certificates.connection
  - ksef.certificates.attributes
  - ksef.certificates.attributes.actiongroup_ksef
  - ksef.certificates.attributes.info_module
attributes:
  idempotent:
    description: When run twice in a row with the same options, the second run returns the same result.
options:
  name:
    description:
      - Certificate name (the name given at enrollment) to look for.
      - How it is compared is set by O(name_match).
    type: str
  name_match:
    description:
      - V(exact) returns only certificates whose name equals O(name) (case-sensitive). KSeF itself
        filters by substring, so the module sends O(name) to KSeF and removes the other matches
        locally.
      - V(contains) returns every certificate whose name contains O(name), the way KSeF filters.
      - Ignored when O(name) is not set.
    type: str
    choices: [exact, contains]
    default: exact
  type:
    description:
      - Only certificates of this type.
    type: str
    choices: [authentication, offline]
  status:
    description:
      - Only certificates in one of these statuses.
      - V(blocked) is the transitional state while KSeF completes a revocation.
      - When not set, certificates in every status are returned (KSeF keeps revoked and expired ones).
    type: list
    elements: str
    choices: [active, blocked, revoked, expired]
  serial_numbers:
    description:
      - Only the certificates with these serial numbers (16 hexadecimal characters, exact match;
        lower case is accepted and converted to upper case).
      - A serial number KSeF does not know is not an error here; it is simply not in the result.
    type: list
    elements: str
  expires_within_days:
    description:
      - Only certificates whose validity ends within this many days from now, that is whose
        RV(certificates[].valid_to) is at or before now plus O(expires_within_days) days.
      - Certificates whose validity already ended are included too; combine with O(status=[active])
        to get only the ones that still work.
    type: int
  include_limits:
    description:
      - Also return RV(limits), the enrollment and active-certificate limits of the subject
        (one more API call).
    type: bool
    default: false
  include_enrollment_data:
    description:
      - Also return RV(enrollment_data), the subject attributes a certificate signing request must
        carry (one more API call).
      - KSeF serves this only to sessions opened with a signature (XAdES), not with a KSeF token.
    type: bool
    default: false
  include_content:
    description:
      - Also return each listed certificate in PEM form (RV(certificates[].certificate_pem)) and its
        SHA-256 fingerprint (RV(certificates[].fingerprint_sha256)).
      - Fetched with C(POST /certificates/retrieve), ten certificates a call.
    type: bool
    default: false
notes:
  - The serial number field is called C(certificateSerialNumber) in the KSeF API; the module returns it
    as RV(certificates[].serial_number). All other field names are the API names in snake_case, and
    enumerated values (type, status, subject identifier type) are lower-case snake_case.
seealso:
  - module: ksef.certificates.ksef_certificate
  - module: ksef.certificates.ksef_certificate_revoke
  - module: ksef.certificates.ksef_session
'''

EXAMPLES = r'''
- name: List all certificates of the subject
  ksef.certificates.ksef_certificate_info:
    context_id: "1234563218"
    auth_certificate_path: /etc/ksef/seal.pem
    auth_private_key_path: /etc/ksef/seal.key
  register: ksef_certs

- name: Active authentication certificates that expire within 30 days
  ksef.certificates.ksef_certificate_info:
    type: authentication
    status: [active]
    expires_within_days: 30
  register: expiring

- name: Fail when something needs renewal
  ansible.builtin.assert:
    that: expiring.certificates | length == 0
    fail_msg: "{{ expiring.certificates | map(attribute='name') | join(', ') }} expire soon"

- name: One certificate by exact name, with its PEM, limits and enrollment data
  ksef.certificates.ksef_certificate_info:
    name: erp-production
    name_match: exact
    status: [active]
    include_content: true
    include_limits: true
    include_enrollment_data: true
  register: erp

- name: Look certificates up by serial number
  ksef.certificates.ksef_certificate_info:
    serial_numbers:
      - 01F2A3B4C5D6E7F8
      - 0A0B0C0D0E0F1011
'''

RETURN = r'''
certificates:
  description:
    - The certificates that match every filter, sorted by RV(certificates[].valid_to) ascending,
      then by serial number.
  returned: always
  type: list
  elements: dict
  contains:
    serial_number:
      description:
        - Serial number of the certificate, 16 upper-case hexadecimal characters
          (C(certificateSerialNumber) in the KSeF API).
      type: str
      returned: always
      sample: 01F2A3B4C5D6E7F8
    name:
      description: Name given to the certificate at enrollment.
      type: str
      returned: always
      sample: erp-production
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
      description:
        - KSeF status of the certificate. V(blocked) is the transitional state until a revocation
          completes.
      type: str
      returned: always
      choices: [active, blocked, revoked, expired]
      sample: active
    subject_identifier:
      description: Identifier of the subject the certificate was issued for.
      type: dict
      returned: always
      contains:
        type:
          description: Identifier type.
          type: str
          returned: always
          choices: [nip, pesel, fingerprint]
          sample: nip
        value:
          description: Identifier value.
          type: str
          returned: always
          sample: "1234563218"
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
    last_use_date:
      description: When the certificate was last used (UTC, ISO 8601, whole seconds), or V(null) when never.
      type: str
      returned: always
      sample: "2026-02-01T08:30:00+00:00"
    request_date:
      description: When the certificate was requested (UTC, ISO 8601, whole seconds).
      type: str
      returned: always
      sample: "2026-01-10T11:59:30+00:00"
    days_remaining:
      description:
        - Whole days until RV(certificates[].valid_to), rounded down; negative when the validity
          already ended.
      type: int
      returned: always
      sample: 702
    expired:
      description: Whether the validity ended (by date or by KSeF status V(expired)).
      type: bool
      returned: always
      sample: false
    certificate_pem:
      description: The certificate in PEM form.
      type: str
      returned: when O(include_content=true)
      sample: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
    fingerprint_sha256:
      description: SHA-256 of the certificate (DER), lower-case hexadecimal without separators.
      type: str
      returned: when O(include_content=true)
      sample: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
limits:
  description: Enrollment and certificate limits of the authenticated subject.
  returned: when O(include_limits=true)
  type: dict
  contains:
    can_request:
      description: Whether the subject may submit a new enrollment request now.
      type: bool
      returned: always
      sample: true
    enrollment:
      description: Enrollment requests still allowed (V(remaining)) of V(limit).
      type: dict
      returned: always
      sample: {"remaining": 298, "limit": 300}
    certificate:
      description: Active certificates still allowed (V(remaining)) of V(limit).
      type: dict
      returned: always
      sample: {"remaining": 98, "limit": 100}
enrollment_data:
  description:
    - Subject attributes that a certificate signing request of this subject must carry, copied from
      the signer certificate used to log in. Values are exactly as KSeF returns them; attributes
      KSeF does not return are V(null).
  returned: when O(include_enrollment_data=true)
  type: dict
  contains:
    common_name:
      description: Common name (2.5.4.3).
      type: str
      returned: always
      sample: Jan Żółć
    country_name:
      description: Country (2.5.4.6).
      type: str
      returned: always
      sample: PL
    given_name:
      description: Given name (2.5.4.42), persons only.
      type: str
      returned: always
      sample: Jan
    surname:
      description: Surname (2.5.4.4), persons only.
      type: str
      returned: always
      sample: Żółć
    serial_number:
      description: Subject serial number (2.5.4.5), for example C(TINPL-...) or C(PNOPL-...).
      type: str
      returned: always
      sample: TINPL-1234563218
    unique_identifier:
      description: Unique identifier (2.5.4.45).
      type: str
      returned: always
      sample: null
    organization_name:
      description: Organization name (2.5.4.10), seals only.
      type: str
      returned: always
      sample: null
    organization_identifier:
      description: Organization identifier (2.5.4.97), seals only, for example C(VATPL-...).
      type: str
      returned: always
      sample: null
api_calls:
  description: Number of HTTP requests the module sent to KSeF (login and retries included).
  returned: always
  type: int
  sample: 6
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

import datetime
import hashlib

from ansible_collections.ksef.certificates.plugins.module_utils import _pem
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.plugins.module_utils._api import (
    CERTIFICATE_STATUSES, CERTIFICATE_TYPES as API_CERTIFICATE_TYPES, normalize_serial_numbers, snake_item, to_api,
)
from ansible_collections.ksef.certificates.plugins.module_utils._rules import CERTIFICATE_TYPES, days_remaining, expired, has_control_characters


ENROLLMENT_DATA_KEYS = (
    'common_name', 'country_name', 'given_name', 'surname', 'serial_number',
    'unique_identifier', 'organization_name', 'organization_identifier',
)


def certificate_fields(record, now):
    """The module's form of one certificate record: its fields plus days_remaining and expired."""
    item = record.module_fields()
    item['days_remaining'] = days_remaining(record.valid_to, now)
    item['expired'] = record.status == 'expired' or expired(record.valid_to, now)
    return item


def plan_query(params):
    """Return the keyword arguments for KsefApi.query: single-valued filters go to KSeF, the rest are local."""
    query = {}
    if params.get('name'):
        query['name'] = params['name']
    if params.get('type'):
        query['certificate_type'] = to_api(API_CERTIFICATE_TYPES, params['type'])
    statuses = params.get('status') or []
    if len(set(statuses)) == 1:
        query['status'] = to_api(CERTIFICATE_STATUSES, statuses[0])
    serials = params.get('serial_numbers') or []
    if len(serials) == 1:
        query['serial_number'] = serials[0]
    return query


def matches_filters(record, params, now):
    """Local filtering: the exact-name post-filter and the filters KSeF cannot express in one query."""
    name = params.get('name')
    if name:
        if params.get('name_match') == 'exact':
            if record.name != name:
                return False
        elif name not in record.name:
            return False
    if params.get('type') and record.type != params['type']:
        return False
    if params.get('status') and record.status not in params['status']:
        return False
    if params.get('serial_numbers') and record.serial_number not in params['serial_numbers']:
        return False
    days = params.get('expires_within_days')
    if days is not None:
        horizon = now + datetime.timedelta(days=days)
        if record.valid_to > horizon:
            return False
    return True


def der_to_pem(der_bytes):
    return _pem.der_to_pem(der_bytes, 'CERTIFICATE').decode('ascii')


def add_content(api, certificates):
    """Fetch the certificates (KsefApi.retrieve asks for 10 a call) and add certificate_pem and fingerprint_sha256."""
    by_serial = dict((c['serial_number'], c) for c in certificates)
    for retrieved in api.retrieve_certificates(list(by_serial)):
        certificate = by_serial.get(retrieved.serial_number)
        if certificate is None:
            continue
        certificate['certificate_pem'] = der_to_pem(retrieved.der)
        certificate['fingerprint_sha256'] = hashlib.sha256(retrieved.der).hexdigest()


def limits_from_api(api_limits):
    def pair(value):
        value = value or {}
        return {'remaining': value.get('remaining'), 'limit': value.get('limit')}
    return {
        'can_request': api_limits.get('canRequest'),
        'enrollment': pair(api_limits.get('enrollment')),
        'certificate': pair(api_limits.get('certificate')),
    }


def enrollment_data_from_api(api_data):
    data = snake_item(api_data)
    return dict((key, data.get(key)) for key in ENROLLMENT_DATA_KEYS)


def validate_params(params):
    """Check and normalise the options before any API call."""
    if params.get('serial_numbers') is not None:
        if not params['serial_numbers']:
            raise KsefInputError('serial_numbers is an empty list; leave it out to list every certificate')
        params['serial_numbers'] = normalize_serial_numbers(params['serial_numbers'])
    if params.get('name') is not None and not params['name'].strip():
        raise KsefInputError('name must not be empty; leave it out to list certificates of every name')
    if has_control_characters(params.get('name')):
        raise KsefInputError('name %r contains a control character (a newline, tab, ...); no certificate name does'
                             % params['name'])
    if params.get('status') is not None and not params['status']:
        raise KsefInputError('status is an empty list; leave it out to list certificates in every status')
    if params.get('expires_within_days') is not None and params['expires_within_days'] < 0:
        raise KsefInputError('expires_within_days must be 0 or more, got %d' % params['expires_within_days'])


def gather_info(api, params, now):
    """Everything the module returns except api_calls. `params` must have been validated."""
    # keyed by serial: a page shift between page requests (a new enrollment) may repeat an item
    by_serial = dict((record.serial_number, record) for record in api.certificate_records(**plan_query(params)))
    records = sorted((r for r in by_serial.values() if matches_filters(r, params, now)),
                     key=lambda r: (r.valid_to, r.serial_number))
    certificates = [certificate_fields(record, now) for record in records]
    result = {'changed': False, 'certificates': certificates}
    if params.get('include_content') and certificates:
        add_content(api, certificates)
    if params.get('include_limits'):
        result['limits'] = limits_from_api(api.limits())
    if params.get('include_enrollment_data'):
        result['enrollment_data'] = enrollment_data_from_api(api.enrollment_data())
    return result


def run_module(ksef):
    params = dict(ksef.params)
    validate_params(params)
    return gather_info(ksef.api, params, datetime.datetime.now(datetime.timezone.utc))


def main():
    argument_spec = dict(
        name=dict(type='str'),
        name_match=dict(type='str', choices=['exact', 'contains'], default='exact'),
        type=dict(type='str', choices=list(CERTIFICATE_TYPES)),
        status=dict(type='list', elements='str', choices=['active', 'blocked', 'revoked', 'expired']),
        serial_numbers=dict(type='list', elements='str'),
        expires_within_days=dict(type='int'),
        include_limits=dict(type='bool', default=False),
        include_enrollment_data=dict(type='bool', default=False),
        include_content=dict(type='bool', default=False),
    )
    ksef = KsefModule(argument_spec, supports_check_mode=True)
    ksef.run(run_module)


if __name__ == '__main__':
    main()
