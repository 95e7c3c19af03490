# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.module_utils._decide import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecord
from ansible_collections.ksef.certificates.plugins.module_utils._result import (
    KsefConvergeError,
    build_result,
    certificate_summary,
)

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ITEM = {'certificateSerialNumber': '01F2A3B4C5D6E7F8', 'name': 'erp-auth', 'type': 'Authentication', 'status': 'Active',
        'validFrom': '2026-01-01T00:00:00.1234567+00:00', 'validTo': '2026-06-11T12:00:00+00:00'}


def plan(name='erp-auth', state='present', **fields):
    result = Plan(Declaration({'name': name, 'type': 'authentication', 'state': state, 'private_key_path': '/k/' + name}))
    for key, value in fields.items():
        setattr(result, key, value)
    return result


def test_summary_takes_ksef_dates_as_sent():
    summary = certificate_summary(plan().decl, CertificateRecord.from_api(ITEM), None, NOW)
    assert summary == {'serial_number': '01F2A3B4C5D6E7F8', 'name': 'erp-auth', 'type': 'authentication',
                       'status': 'active', 'valid_from': '2026-01-01T00:00:00.1234567+00:00',
                       'valid_to': '2026-06-11T12:00:00+00:00', 'days_remaining': 10, 'fingerprint_sha256': None,
                       'subject': None, 'public_key_sha256': None}


def test_single_form_mirrors_its_entry():
    output = build_result([plan(action='none', reason='healthy', current_item=CertificateRecord.from_api(ITEM))],
                          single=True, now=NOW)
    assert (output['action'], output['reason'], output['changed']) == ('none', 'healthy', False)
    assert output['certificate']['serial_number'] == '01F2A3B4C5D6E7F8'
    assert output['certificates'][0]['private_key_path'] == '/k/erp-auth'
    assert 'diff' not in output


def test_list_form_aggregates_and_diffs():
    renewed = plan('one-cert', action='renewed', reason='renewal_window', enroll=True, changed=True,
                   superseded=['A'], revoked=['A'])
    revoked = plan('two-cert', state='absent', action='revoked', changed=True, revoked=['B'])
    output = build_result([renewed, revoked], single=False, now=NOW, diff=True)
    assert (output['action'], output['changed'], output['revoked']) == ('multiple', True, ['A', 'B'])
    assert output['superseded'] == [{'serial_number': 'A', 'type': renewed.decl.type, 'valid_to': None, 'revoked': True}]
    after = output['diff']['after']['certificates']
    assert after[0]['serial_number'] == '(new)' and after[1]['status'] == 'revoked'


def test_converge_error_carries_what_was_done():
    cause = KsefApiError('POST', '/certificates/enrollments', 400, errors=[{'code': 25006, 'description': 'quota'}])
    error = KsefConvergeError('refused', cause=cause, results=[{'name': 'x'}], changed=True)
    extras = error.fail_kwargs()
    assert extras['certificates'] == [{'name': 'x'}] and extras['changed'] is True and extras['http_status'] == 400
