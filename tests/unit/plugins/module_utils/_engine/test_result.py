# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import re

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import Decision
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecord
from ansible_collections.ksef.certificates.plugins.module_utils._engine.result import (
    KsefConvergeError,
    build_result,
    certificate_summary,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ITEM = {'certificateSerialNumber': '01F2A3B4C5D6E7F8', 'name': 'erp-auth', 'type': 'Authentication', 'status': 'Active',
        'validFrom': '2026-01-01T00:00:00.1234567+00:00', 'validTo': '2026-06-11T12:00:00+00:00'}


def plan(name='erp-auth', state='present', **fields):
    """A plan whose decision holds the decided fields given and whose outcome holds the others."""
    decl = Declaration({'name': name, 'type': 'authentication', 'state': state, 'private_key_path': '/k/' + name})
    decided = dict((key, value) for key, value in fields.items() if key in DECIDED)
    result = Plan(decl, Decision(decl, **decided))
    for key, value in fields.items():
        if key not in DECIDED:
            setattr(result, key, value)
    return result


DECIDED = ('enroll', 'key_plan', 'superseded', 'current_item', 'current_certificate', 'to_revoke', 'removed_files')


def test_summary_takes_ksef_dates_in_the_one_return_format():
    summary = certificate_summary(plan().decl, CertificateRecord.from_api(ITEM), None, NOW)
    assert summary == {'serial_number': '01F2A3B4C5D6E7F8', 'name': 'erp-auth', 'type': 'authentication',
                       'status': 'active', 'valid_from': '2026-01-01T00:00:00+00:00',
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
    revoked = plan('two-cert', state='absent', action='revoked', changed=True, to_revoke=['B'], revoked=['B'])
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


class _View:
    def __init__(self, *records):
        self.records = dict((record.serial_number, record) for record in records)

    def by_serial(self, serial):
        return self.records.get(serial)


def _date_times(value, path=''):
    """(path, value) of every date-time field anywhere in a return value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ('valid_from', 'valid_to', 'request_date', 'last_use_date') and item is not None:
                yield path + '.' + key, item
            else:
                yield from _date_times(item, path + '.' + key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _date_times(item, '%s[%d]' % (path, index))


def test_every_date_time_of_a_renewal_is_in_one_format():
    # KSeF sends 7 fractional digits (or none), the new certificate's notAfter has whole seconds: the module
    # returns both, and the superseded entry and the diff, in one form, on every run.
    old = CertificateRecord.from_api(dict(ITEM, requestDate='2025-12-31T23:59:00.5Z', lastUseDate='2026-05-01T10:00:00.1234567Z'))
    new = CertificateRecord.from_api(dict(ITEM, certificateSerialNumber='11F2A3B4C5D6E7F8',
                                          validFrom='2026-06-01T12:00:00.7654321+00:00',
                                          validTo='2028-06-01T12:00:00.0154302+00:00'))
    renewed = plan(action='renewed', reason='renewal_window', enroll=True, changed=True, current_item=old,
                   install_item=new, install_certificate=certs.make_seal_certificate(certs.make_key()),
                   superseded=[old.serial_number], revoked=[old.serial_number])
    output = build_result([renewed], single=True, now=NOW, diff=True, view=_View(old, new))
    found = dict(_date_times(output))
    assert set(found) >= {'.certificate.valid_from', '.certificate.valid_to', '.superseded[0].valid_to',
                          '.certificates[0].certificate.valid_to', '.diff.before.valid_to', '.diff.after.valid_to'}
    assert all(re.fullmatch(r'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00', value) for value in found.values()), found
    assert output['certificate']['valid_to'] == '2028-06-01T12:00:00+00:00'
    assert output['superseded'][0]['valid_to'] == '2026-06-11T12:00:00+00:00'


def test_a_certificate_without_a_ksef_record_has_the_same_format():
    certificate = certs.make_seal_certificate(certs.make_key())
    summary = certificate_summary(plan().decl, None, certificate, NOW)
    assert re.fullmatch(r'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00', summary['valid_to'])
    assert summary['valid_to'] == _crypto.certificate_not_after(certificate).strftime('%Y-%m-%dT%H:%M:%S+00:00')
