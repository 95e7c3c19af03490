# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._records import (
    CertificateRecord,
    EnrollmentStatus,
    RetrievedCertificate,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import ENROLLMENT_DATA, FakeClock, FakeKsef

UTC = datetime.timezone.utc

ITEM = {
    'certificateSerialNumber': '01F2A3B4C5D6E7F8',
    'name': 'erp-auth',
    'type': 'Authentication',
    'commonName': 'Firma',
    'status': 'Active',
    'subjectIdentifier': {'type': 'Nip', 'value': '5265877635'},
    'validFrom': '2026-01-01T00:00:00.1234567+00:00',
    'validTo': '2028-01-01T00:00:00+01:00',
    'requestDate': '2025-12-31T23:59:00Z',
}


def test_certificate_record_is_typed():
    record = CertificateRecord.from_api(ITEM)
    assert record.serial_number == '01F2A3B4C5D6E7F8'
    assert record.name == 'erp-auth'
    assert record.type == 'authentication'
    assert record.status == 'active' and record.active
    assert record.common_name == 'Firma'
    assert record.valid_to == datetime.datetime(2027, 12, 31, 23, 0, tzinfo=UTC)
    assert record.valid_from == datetime.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert record.request_date == record.requested_at == datetime.datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    assert record.last_use_date is None


@pytest.mark.parametrize('status, expected', [('Revoked', 'revoked'), ('Blocked', 'blocked'), ('Expired', 'expired'),
                                              ('SomethingNew', 'something_new')])
def test_statuses_are_lowercase(status, expected):
    record = CertificateRecord.from_api(dict(ITEM, status=status, type='Offline'))
    assert record.status == expected and not record.active
    assert record.type == 'offline'


def test_module_fields_map_enums_and_give_every_date_time_in_the_one_return_format():
    # KSeF's 7 fractional digits, an offset and 'Z' all come out as UTC whole seconds with '+00:00'.
    fields = CertificateRecord.from_api(ITEM).module_fields()
    assert fields == {
        'serial_number': '01F2A3B4C5D6E7F8', 'name': 'erp-auth', 'type': 'authentication', 'common_name': 'Firma',
        'status': 'active', 'subject_identifier': {'type': 'nip', 'value': '5265877635'},
        'valid_from': '2026-01-01T00:00:00+00:00', 'valid_to': '2027-12-31T23:00:00+00:00',
        'request_date': '2025-12-31T23:59:00+00:00', 'last_use_date': None,
    }


def test_module_fields_format_last_use_date_and_keep_an_unreadable_optional_date_visible():
    fields = CertificateRecord.from_api(dict(ITEM, lastUseDate='2026-02-03T04:05:06.999999Z', validFrom='soon')).module_fields()
    assert fields['last_use_date'] == '2026-02-03T04:05:06+00:00'
    assert fields['valid_from'] == 'soon'


def test_requested_at_falls_back_to_valid_from_then_the_earliest_time():
    without_request = dict(ITEM)
    del without_request['requestDate']
    assert CertificateRecord.from_api(without_request).requested_at == datetime.datetime(
        2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    del without_request['validFrom']
    assert CertificateRecord.from_api(without_request).requested_at == datetime.datetime.min.replace(tzinfo=UTC)


def test_unreadable_valid_to_is_a_clear_error():
    with pytest.raises(KsefError, match="01F2A3B4C5D6E7F8 with an unreadable validTo 'next year'"):
        CertificateRecord.from_api(dict(ITEM, validTo='next year'))


def test_retrieved_certificate_decodes_der():
    item = {'certificateSerialNumber': 'AB', 'certificate': base64.b64encode(b'DER').decode(), 'certificateName': 'n',
            'certificateType': 'Offline'}
    retrieved = RetrievedCertificate.from_api(item)
    assert (retrieved.serial_number, retrieved.der, retrieved.name, retrieved.type) == ('AB', b'DER', 'n', 'offline')
    with pytest.raises(KsefError, match='unreadable certificate for serial AB'):
        RetrievedCertificate.from_api({'certificateSerialNumber': 'AB'})


@pytest.mark.parametrize('body, processing, done, given_up', [
    ({'status': {'code': 100, 'description': 'Processing'}}, True, False, False),
    ({'status': {'code': 200}, 'certificateSerialNumber': 'AB'}, False, True, False),
    ({'status': {'code': 550, 'details': ['x']}}, False, False, True),
    ({'status': {'code': 400}}, False, False, False),
])
def test_enrollment_status(body, processing, done, given_up):
    status = EnrollmentStatus.from_api(body)
    assert (status.processing, status.done, status.given_up) == (processing, done, given_up)
    assert status.code == body['status']['code']
    assert status.details == body['status'].get('details', [])
    assert status.serial_number == body.get('certificateSerialNumber')


def test_record_calls_go_through_the_raw_ones():
    """CertificateRecords (which KsefApi and the fake KSeF inherit) converts what the raw calls answer."""
    api = FakeKsef(FakeClock())
    api.add_item(ITEM, der=b'\x00\x00\x00')
    api.processing_seconds = 60
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(_crypto.build_subject(ENROLLMENT_DATA)).sign(key, hashes.SHA256())
    reference = api.enroll('erp-auth', 'authentication', csr.public_bytes(serialization.Encoding.DER))['referenceNumber']
    api.new_run()
    assert [r.serial_number for r in api.certificate_records(name='erp', certificate_type='authentication')] == ['01F2A3B4C5D6E7F8']
    assert [r.der for r in api.retrieve_certificates(['01F2A3B4C5D6E7F8'])] == [b'\x00\x00\x00']
    assert api.enrollment(reference).processing
    assert api.names() == ['query', 'retrieve', 'enrollment_status']
    assert api.details('query') == [{'name': 'erp', 'certificate_type': 'authentication', 'status': None, 'serial_number': None,
                                     'expires_after': None}]
    assert api.details('retrieve') == [{'serials': ['01F2A3B4C5D6E7F8']}]
    assert api.details('enrollment_status') == [{'reference': reference}]
