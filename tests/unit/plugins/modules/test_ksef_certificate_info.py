# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of ksef_certificate_info's logic against the fake KSeF (it filters like KSeF)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError, KsefInputError
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate_info as info
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock, FakeKsef
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def api_item(serial, name, valid_to, status='Active', cert_type='Authentication', subject_type='Nip'):
    return {
        'certificateSerialNumber': serial,
        'name': name,
        'type': cert_type,
        'commonName': 'Firma Żółć Sp. z o.o.',
        'status': status,
        'subjectIdentifier': {'type': subject_type, 'value': '1234563218'},
        'validFrom': '2026-01-01T00:00:00+00:00',
        'validTo': valid_to,
        'requestDate': '2025-12-31T23:59:00.1234567+00:00',
    }


def fake_ksef(items, limits=None, enrollment_data=None, der_by_serial=None):
    """The fake KSeF holding `items` (list items as KSeF sends them); it filters like KSeF and records every call."""
    api = FakeKsef(FakeClock(wall=NOW))
    for item in items:
        api.add_item(item, der=(der_by_serial or {}).get(item['certificateSerialNumber']))
    if limits is not None:
        api.limits_reply = limits
    if enrollment_data is not None:
        api.enrollment_data_reply = enrollment_data
    return api


def params(**overrides):
    result = dict(name=None, name_match='exact', type=None, status=None, serial_numbers=None,
                  expires_within_days=None, include_limits=False, include_enrollment_data=False,
                  include_content=False)
    result.update(overrides)
    info.validate_params(result)
    return result


def serials_of(result):
    return [c['serial_number'] for c in result['certificates']]


ITEMS = [
    api_item('00000000000000A1', 'erp', '2027-01-01T00:00:00+00:00'),
    api_item('00000000000000A2', 'erp-old', '2026-06-10T00:00:00+00:00', status='Revoked'),
    api_item('00000000000000A3', 'erp', '2026-05-01T00:00:00Z', status='Expired', cert_type='Offline'),
    api_item('00000000000000A4', 'crm', '2026-06-20T11:00:00.5+00:00', status='Blocked'),
]


def test_everything_listed_sorted_by_valid_to_with_one_query():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(), NOW)
    assert serials_of(result) == ['00000000000000A3', '00000000000000A2', '00000000000000A4', '00000000000000A1']
    assert api.names() == ['query']
    assert api.details('query') == [dict(name=None, certificate_type=None, status=None, serial_number=None, expires_after=None)]
    assert result['changed'] is False
    assert 'limits' not in result and 'enrollment_data' not in result


def test_item_fields_snake_case_with_serial_number_and_lowercase_enums():
    api = fake_ksef([api_item('00000000000000A1', 'erp', '2027-01-01T00:00:00+00:00', subject_type='Fingerprint')])
    certificate = info.gather_info(api, params(), NOW)['certificates'][0]
    assert certificate == {
        'serial_number': '00000000000000A1',
        'name': 'erp',
        'type': 'authentication',
        'common_name': 'Firma Żółć Sp. z o.o.',
        'status': 'active',
        'subject_identifier': {'type': 'fingerprint', 'value': '1234563218'},
        'valid_from': '2026-01-01T00:00:00+00:00',
        'valid_to': '2027-01-01T00:00:00+00:00',
        'last_use_date': None,
        'request_date': '2025-12-31T23:59:00+00:00',
        'days_remaining': 213,
        'expired': False,
    }


@pytest.mark.parametrize('valid_to, days, expired', [
    ('2026-06-01T12:00:00+00:00', 0, True),          # expires exactly now
    ('2026-06-01T11:00:00+00:00', -1, True),         # one hour ago: floor gives -1
    ('2026-06-02T11:59:59+00:00', 0, False),         # 23:59:59 left
    ('2026-06-02T12:00:00+00:00', 1, False),
    ('2026-06-03T13:00:00+02:00', 1, False),         # offset honoured: 11:00 UTC
    ('2026-05-01T00:00:00.9999999Z', -32, True),
])
def test_days_remaining_is_floored_and_expired_follows_the_date(valid_to, days, expired):
    api = fake_ksef([api_item('00000000000000A1', 'erp', valid_to)])
    certificate = info.gather_info(api, params(), NOW)['certificates'][0]
    assert certificate['days_remaining'] == days
    assert certificate['expired'] is expired


def test_expired_status_marks_expired_even_with_a_future_date():
    api = fake_ksef([api_item('00000000000000A1', 'erp', '2030-01-01T00:00:00+00:00', status='Expired')])
    assert info.gather_info(api, params(), NOW)['certificates'][0]['expired'] is True


def test_name_exact_is_a_post_filter_on_the_substring_query():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(name='erp'), NOW)
    assert serials_of(result) == ['00000000000000A3', '00000000000000A1']
    assert api.calls[0][1]['name'] == 'erp'


def test_name_contains_returns_every_substring_match():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(name='erp', name_match='contains'), NOW)
    assert serials_of(result) == ['00000000000000A3', '00000000000000A2', '00000000000000A1']


def test_type_is_sent_to_ksef_in_api_form():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(type='offline'), NOW)
    assert serials_of(result) == ['00000000000000A3']
    assert api.calls[0][1]['certificate_type'] == 'Offline'


def test_single_status_is_a_server_filter():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(status=['blocked']), NOW)
    assert serials_of(result) == ['00000000000000A4']
    assert api.names() == ['query']
    assert api.details('query') == [dict(name=None, certificate_type=None, status='Blocked', serial_number=None, expires_after=None)]


def test_single_serial_number_is_an_exact_server_filter_and_lower_case_is_accepted():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(serial_numbers=['00000000000000a2']), NOW)
    assert serials_of(result) == ['00000000000000A2']
    assert api.calls[0][1]['serial_number'] == '00000000000000A2'


@pytest.mark.parametrize('filters, expected, server_filter', [
    (dict(status=['active', 'revoked', 'revoked']), ['00000000000000A2', '00000000000000A1'], 'status'),
    # unknown serial numbers are just absent from the result
    (dict(serial_numbers=['00000000000000A4', '00000000000000A1', 'FFFFFFFFFFFFFFFF']), ['00000000000000A4', '00000000000000A1'],
     'serial_number'),
], ids=['statuses', 'serial_numbers'])
def test_several_values_of_a_filter_use_one_unfiltered_listing_and_filter_locally(filters, expected, server_filter):
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(**filters), NOW)
    assert serials_of(result) == expected
    assert len(api.calls) == 1 and api.calls[0][1][server_filter] is None


def test_expires_within_days_keeps_valid_to_up_to_the_horizon_including_past():
    api = fake_ksef(ITEMS)
    # horizon 2026-06-20T12:00Z: A4 (11:00) inside, A1 (2027) outside; A3 already past is included
    result = info.gather_info(api, params(expires_within_days=19), NOW)
    assert serials_of(result) == ['00000000000000A3', '00000000000000A2', '00000000000000A4']
    result = info.gather_info(api, params(expires_within_days=19, status=['active', 'blocked']), NOW)
    assert serials_of(result) == ['00000000000000A4']


def test_filters_combine():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(name='erp', type='authentication', status=['active']), NOW)
    assert serials_of(result) == ['00000000000000A1']
    assert api.details('query')[0] == dict(name='erp', certificate_type='Authentication', status='Active', serial_number=None,
                                           expires_after=None)


def test_limits_are_returned_in_snake_case():
    api = fake_ksef([], limits={'canRequest': True, 'enrollment': {'remaining': 298, 'limit': 300},
                                'certificate': {'remaining': 5, 'limit': 6}})
    result = info.gather_info(api, params(include_limits=True), NOW)
    assert result['limits'] == {'can_request': True, 'enrollment': {'remaining': 298, 'limit': 300},
                                'certificate': {'remaining': 5, 'limit': 6}}
    assert result['certificates'] == []


def test_enrollment_data_keeps_values_verbatim_and_every_key():
    api = fake_ksef([], enrollment_data={'commonName': 'Zażółć Gęślą', 'countryName': 'PL',
                                         'givenName': 'Zażółć', 'surname': 'Gęślą',
                                         'serialNumber': 'PNOPL-02070803628', 'organizationName': None})
    result = info.gather_info(api, params(include_enrollment_data=True), NOW)
    assert result['enrollment_data'] == {
        'common_name': 'Zażółć Gęślą', 'country_name': 'PL', 'given_name': 'Zażółć', 'surname': 'Gęślą',
        'serial_number': 'PNOPL-02070803628', 'unique_identifier': None, 'organization_name': None,
        'organization_identifier': None,
    }


def make_der(serial_int):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'test %d' % serial_int)])
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(serial_int)
                   .not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.DER)


def test_include_content_retrieves_every_listed_certificate_and_returns_pem_and_fingerprint():
    serials = ['%016X' % n for n in range(1, 24)]
    ders = dict((s, make_der(int(s, 16))) for s in serials)
    items = [api_item(s, 'bulk', '2027-01-01T00:00:00+00:00') for s in serials]
    api = fake_ksef(items, der_by_serial=ders)
    result = info.gather_info(api, params(include_content=True), NOW)
    retrieve_calls = [details['serials'] for details in api.details('retrieve')]
    assert len(retrieve_calls) == 1 and sorted(retrieve_calls[0]) == serials
    for certificate in result['certificates']:
        parsed = x509.load_pem_x509_certificate(certificate['certificate_pem'].encode('ascii'))
        assert '%016X' % parsed.serial_number == certificate['serial_number']
        assert certificate['fingerprint_sha256'] == hashlib.sha256(ders[certificate['serial_number']]).hexdigest()


def test_include_content_without_matches_makes_no_retrieve_call():
    api = fake_ksef(ITEMS)
    result = info.gather_info(api, params(name='nothing-like-this', include_content=True), NOW)
    assert result['certificates'] == []
    assert [c[0] for c in api.calls] == ['query']


@pytest.mark.parametrize('overrides, message', [
    (dict(serial_numbers=[]), 'serial_numbers is an empty list'),
    (dict(serial_numbers=['XYZ']), "invalid: 'XYZ'"),
    (dict(serial_numbers=['00000000000000A1', '0123']), "invalid: '0123'"),
    (dict(name='  '), 'name must not be empty'),
    (dict(status=[]), 'status is an empty list'),
    (dict(expires_within_days=-1), 'expires_within_days must be 0 or more'),
])
def test_invalid_options_are_rejected_before_any_call(overrides, message):
    with pytest.raises(KsefInputError) as caught:
        params(**overrides)
    assert message in str(caught.value)


def test_serial_numbers_are_upper_cased_and_deduplicated():
    assert params(serial_numbers=[' 00000000000000a1', '00000000000000A1', '00000000000000B2'])['serial_numbers'] == [
        '00000000000000A1', '00000000000000B2']


def test_unreadable_valid_to_is_a_clear_error():
    api = fake_ksef([api_item('00000000000000A1', 'erp', 'next year')])
    with pytest.raises(KsefError) as caught:
        info.gather_info(api, params(), NOW)
    assert "00000000000000A1 with an unreadable validTo 'next year'" in str(caught.value)


def test_pem_is_wrapped_at_64_columns():
    der = make_der(7)
    pem = info.der_to_pem(der)
    lines = pem.strip().split('\n')
    assert lines[0] == '-----BEGIN CERTIFICATE-----' and lines[-1] == '-----END CERTIFICATE-----'
    assert all(len(line) <= 64 for line in lines[1:-1])
    assert x509.load_pem_x509_certificate(pem.encode('ascii')).serial_number == 7


# --- main() through scripted HTTP exchanges -------------------------------------------------------

ACCESS_TOKEN = 'header.eyJleHAiOjQxMDI0NDQ4MDB9.signature'
CONNECTION = {'api_url': 'https://ksef.invalid/v2', 'access_token': ACCESS_TOKEN}
QUERY_ROUTE = '/certificates/query'


def query_page(page, certificates, has_more, body=None):
    return Exchange('POST', QUERY_ROUTE, json=body if body is not None else {}, token=ACCESS_TOKEN,
                    params={'pageSize': 50, 'pageOffset': page},
                    reply={'certificates': certificates, 'hasMore': has_more})


def retrieve_exchange(serials, ders):
    return Exchange('POST', '/certificates/retrieve', json={'certificateSerialNumbers': serials}, token=ACCESS_TOKEN,
                    reply={'certificates': [{'certificate': base64.b64encode(ders[s]).decode('ascii'),
                                             'certificateName': 'bulk', 'certificateSerialNumber': s,
                                             'certificateType': 'Authentication'} for s in serials]})


@pytest.mark.parametrize('check_mode', [False, True])
def test_main_fetches_every_page_retrieves_ten_a_call_and_adds_limits_and_enrollment_data(
        run_module, monkeypatch, check_mode):
    serials = ['%016X' % n for n in range(1, 13)]
    ders = dict((s, make_der(int(s, 16))) for s in serials)
    # KSeF sorts by requestDate descending; validTo deliberately in another order
    items = [api_item(s, 'bulk', '2027-01-%02dT00:00:00+00:00' % (13 - n)) for n, s in enumerate(serials, 1)]
    items.append(api_item('00000000000000FF', 'bulk-other', '2026-12-01T00:00:00+00:00'))
    expected_order = list(reversed(serials))
    script = HttpScript([
        query_page(0, items[:10], True, body={'name': 'bulk'}),
        query_page(1, items[10:], False, body={'name': 'bulk'}),
        retrieve_exchange(expected_order[:10], ders),
        retrieve_exchange(expected_order[10:], ders),
        Exchange('GET', '/certificates/limits', token=ACCESS_TOKEN,
                 reply={'canRequest': True, 'enrollment': {'remaining': 10, 'limit': 12},
                        'certificate': {'remaining': 0, 'limit': 6}}),
        Exchange('GET', '/certificates/enrollments/data', token=ACCESS_TOKEN,
                 reply={'commonName': 'Łukasz Żółkiewski', 'countryName': 'PL', 'givenName': 'Łukasz',
                        'surname': 'Żółkiewski', 'serialNumber': 'TINPL-1234563218'}),
    ]).install(monkeypatch)
    args = dict(CONNECTION, name='bulk', include_content=True, include_limits=True, include_enrollment_data=True)
    result = run_module(info, args, check_mode=check_mode)
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is False
    assert result['api_calls'] == 6
    assert [c['serial_number'] for c in result['certificates']] == expected_order
    first = result['certificates'][0]
    assert x509.load_pem_x509_certificate(first['certificate_pem'].encode('ascii')).serial_number == int(first['serial_number'], 16)
    assert first['fingerprint_sha256'] == hashlib.sha256(ders[first['serial_number']]).hexdigest()
    assert result['limits'] == {'can_request': True, 'enrollment': {'remaining': 10, 'limit': 12},
                                'certificate': {'remaining': 0, 'limit': 6}}
    assert result['enrollment_data']['given_name'] == 'Łukasz'
    assert result['enrollment_data']['surname'] == 'Żółkiewski'
    assert result['enrollment_data']['organization_identifier'] is None
    assert ACCESS_TOKEN not in repr(result)


def test_main_sends_single_status_type_and_serial_to_ksef(run_module, monkeypatch):
    body = {'certificateSerialNumber': '00000000000000A1', 'type': 'Offline', 'status': 'Active'}
    script = HttpScript([query_page(0, [api_item('00000000000000A1', 'erp', '2027-01-01T00:00:00Z', cert_type='Offline')],
                                    False, body=body)]).install(monkeypatch)
    result = run_module(info, dict(CONNECTION, serial_numbers=['00000000000000a1'], type='offline', status=['active']))
    script.verify()
    assert result.exit_code == 0, result
    assert [c['serial_number'] for c in result['certificates']] == ['00000000000000A1']
    assert result['certificates'][0]['type'] == 'offline'


def test_main_rejects_bad_options_without_any_request(run_module, monkeypatch):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(info, dict(CONNECTION, serial_numbers=['not-a-serial']))
    script.verify()
    assert result.exit_code == 1
    assert result['failed'] is True
    assert "serial_numbers must be 16 hexadecimal characters; invalid: 'not-a-serial'" in result['msg']
    assert result['api_calls'] == 0


def test_main_reports_ksef_errors_with_their_details(run_module, monkeypatch):
    script = HttpScript([Exchange('POST', QUERY_ROUTE, status=400, reply={
        'exception': {'serviceCode': 'svc-9', 'referenceNumber': None, 'exceptionDetailList': [
            {'exceptionCode': 21405, 'exceptionDescription': 'Błąd walidacji danych wejściowych.',
             'details': ['name too long']}]}})]).install(monkeypatch)
    result = run_module(info, dict(CONNECTION, name='x' * 10))
    script.verify()
    assert result.exit_code == 1
    assert result['msg'].startswith('POST /certificates/query failed: HTTP 400, KSeF 21405')
    assert result['http_status'] == 400
    assert result['api_calls'] == 1


def test_an_item_repeated_by_a_page_shift_is_listed_once():
    api = fake_ksef(ITEMS + [dict(ITEMS[0])])
    result = info.gather_info(api, params(), NOW)
    assert sorted(serials_of(result)) == ['00000000000000A1', '00000000000000A2', '00000000000000A3', '00000000000000A4']


def test_a_pkcs11_login_without_pykcs11_fails_with_missing_required_lib(run_module, monkeypatch):
    from ansible_collections.ksef.certificates.plugins.module_utils import _pkcs11
    monkeypatch.setattr(_pkcs11, 'HAS_PYKCS11', False)
    monkeypatch.setattr(_pkcs11, 'PYKCS11_IMPORT_ERROR', ImportError('No module named PyKCS11'))
    result = run_module(info, {'context_id': '1234563218', 'auth_pkcs11_module': '/usr/lib/softhsm/libsofthsm2.so',
                               'auth_pkcs11_token_label': 'seal', 'auth_pkcs11_key_label': 'seal',
                               'auth_pkcs11_pin': '123456'})
    assert result.exit_code == 1
    assert 'Failed to import the required Python library (PyKCS11)' in result['msg']
    assert '123456' not in result['msg']
