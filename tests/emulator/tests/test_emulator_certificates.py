"""Certificate endpoints end to end: enrollment, issuance, retrieve, query, revoke, CSR rules, quotas."""

import base64
import datetime
import hashlib
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ksef_emulator import testcerts, util

from conftest import (build_csr_b64, enroll, enroll_and_wait, exception_codes, login, new_seal, start_xades,
                      subject_from_enrollment_data, wait_for_auth, wait_for_enrollment)


def _spki_sha256(public_key):
    return hashlib.sha256(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _retrieve(client, token, serials):
    response = client.call('POST', '/certificates/retrieve', token=token, json={'certificateSerialNumbers': serials})
    assert response.status_code == 200
    return response.json()['certificates']


def _query(client, token, body=None, **params):
    time.sleep(0.11)   # stay under the 10 requests per second of the endpoint
    response = client.call('POST', '/certificates/query', token=token, json=body or {}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def seal_session(client):
    nip, cert, key = new_seal()
    return {'nip': nip, 'cert': cert, 'key': key, 'token': login(client, cert, key, nip)['accessToken']}


def test_enrollment_data_is_the_signer_subject(client, seal_session):
    data = client.call('GET', '/certificates/enrollments/data', token=seal_session['token']).json()
    assert data['organizationIdentifier'] == 'VATPL-%s' % seal_session['nip']
    assert data['countryName'] == 'PL' and data['givenName'] is None and data['surname'] is None


def test_ec_authentication_and_rsa_offline_certificates(client, seal_session):
    token = seal_session['token']
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    limits_before = client.call('GET', '/certificates/limits', token=token).json()

    response = enroll(client, token, ec_key, name='Auth EC cert')
    assert response.status_code == 202
    reference = response.json()['referenceNumber']
    assert client.call('GET', '/certificates/enrollments/{referenceNumber}', {'referenceNumber': reference},
                       token=token).json()['status']['code'] == 100
    status = wait_for_enrollment(client, token, reference)
    assert status['status']['code'] == 200
    ec_serial = status['certificateSerialNumber']
    assert util.SERIAL_PATTERN.match(ec_serial)
    rsa_serial = enroll_and_wait(client, token, rsa_key, name='Offline RSA cert', certificate_type='Offline')

    issuing_ca = x509.load_pem_x509_certificate(client.control('GET', '/emulator/ca').json()['issuingCa'].encode())
    items = {i['certificateSerialNumber']: i for i in _retrieve(client, token, [ec_serial, rsa_serial])}
    for serial, key, certificate_type in ((ec_serial, ec_key, 'Authentication'), (rsa_serial, rsa_key, 'Offline')):
        item = items[serial]
        assert item['certificateType'] == certificate_type
        cert = x509.load_der_x509_certificate(base64.b64decode(item['certificate']))
        assert cert.serial_number == int(serial, 16)
        assert _spki_sha256(cert.public_key()) == _spki_sha256(key.public_key())
        cert.verify_directly_issued_by(issuing_ca)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical
        assert usage.value.digital_signature == (certificate_type == 'Authentication')
        assert usage.value.content_commitment == (certificate_type == 'Offline')
        assert cert.subject.get_attributes_for_oid(x509.ObjectIdentifier('2.5.4.97'))[0].value == \
            'VATPL-%s' % seal_session['nip']
        validity = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert datetime.timedelta(days=729) < validity <= datetime.timedelta(days=731)

    limits_after = client.call('GET', '/certificates/limits', token=token).json()
    assert limits_after['enrollment']['remaining'] == limits_before['enrollment']['remaining'] - 2
    assert limits_after['certificate']['remaining'] == limits_before['certificate']['remaining'] - 2
    state = {c['serialNumber']: c for c in client.state()['certificates']}
    assert state[ec_serial]['publicKeySha256'] == _spki_sha256(ec_key.public_key())
    assert state[rsa_serial]['subjectIdentifier'] == {'type': 'Nip', 'value': seal_session['nip']}


def test_valid_from_is_honoured(client, seal_session):
    valid_from = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).replace(microsecond=0)
    serial = enroll_and_wait(client, seal_session['token'], ec.generate_private_key(ec.SECP256R1()),
                             validFrom=valid_from.isoformat())
    cert = x509.load_der_x509_certificate(base64.b64decode(
        _retrieve(client, seal_session['token'], [serial])[0]['certificate']))
    assert cert.not_valid_before_utc == valid_from


def test_query_filters_order_and_paging(client, seal_session):
    token = seal_session['token']
    data = client.call('GET', '/certificates/enrollments/data', token=token).json()
    serials = []
    for index in range(12):
        certificate_type = 'Offline' if index % 4 == 0 else 'Authentication'
        response = enroll(client, token, ec.generate_private_key(ec.SECP256R1()), name='Query cert %02d' % index,
                          certificate_type=certificate_type, data=data)
        assert response.status_code == 202
        serials.append(wait_for_enrollment(client, token, response.json()['referenceNumber'])['certificateSerialNumber'])
        time.sleep(0.01)   # distinct request dates
    newest_first = list(reversed(serials))

    first = _query(client, token, pageSize=10, pageOffset=0)
    second = _query(client, token, pageSize=10, pageOffset=1)
    assert first['hasMore'] is True and second['hasMore'] is False
    assert [c['certificateSerialNumber'] for c in first['certificates'] + second['certificates']] == newest_first
    request_dates = [util.parse_iso(c['requestDate']) for c in first['certificates']]
    assert request_dates == sorted(request_dates, reverse=True)

    by_name = _query(client, token, {'name': 'cert 0'})['certificates']
    assert sorted(c['name'] for c in by_name) == ['Query cert %02d' % i for i in range(10)]
    assert len(_query(client, token, {'name': 'QUERY CERT 11'})['certificates']) == 1
    offline = _query(client, token, {'type': 'Offline'})['certificates']
    assert [c['certificateSerialNumber'] for c in offline] == [serials[8], serials[4], serials[0]]
    exact = _query(client, token, {'certificateSerialNumber': serials[3]})['certificates']
    assert [c['certificateSerialNumber'] for c in exact] == [serials[3]]
    assert _query(client, token, {'status': 'Revoked'})['certificates'] == []
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=800)).isoformat()
    assert _query(client, token, {'expiresAfter': later})['certificates'] == []
    assert len(_query(client, token, {'expiresAfter': util.iso(time.time())}, pageSize=50)['certificates']) == 12

    for bad in ({'pageSize': 9}, {'pageSize': 51}, {'pageOffset': -1}):
        time.sleep(0.11)
        response = client.call('POST', '/certificates/query', token=token, json={}, params=bad)
        assert response.status_code == 400 and exception_codes(response) == [21405]


def test_revoke_then_25009_and_unknown_25008(client, seal_session):
    token = seal_session['token']
    serial = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    response = client.call('POST', '/certificates/{certificateSerialNumber}/revoke',
                           {'certificateSerialNumber': serial}, token=token, json={'revocationReason': 'KeyCompromise'})
    assert response.status_code == 204
    again = client.call('POST', '/certificates/{certificateSerialNumber}/revoke', {'certificateSerialNumber': serial},
                        token=token, json={'revocationReason': 'Superseded'})
    assert again.status_code == 400 and exception_codes(again) == [25009]
    unknown = client.call('POST', '/certificates/{certificateSerialNumber}/revoke',
                          {'certificateSerialNumber': '0123456789ABCDEF'}, token=token)
    assert unknown.status_code == 400 and exception_codes(unknown) == [25008]
    listed = _query(client, token, {'status': 'Revoked'})['certificates']
    assert [c['certificateSerialNumber'] for c in listed] == [serial]
    state = {c['serialNumber']: c for c in client.state()['certificates']}
    assert state[serial]['status'] == 'Revoked' and state[serial]['revocationReason'] == 'KeyCompromise'

    # Another subject cannot see, retrieve or revoke it.
    other_nip, other_cert, other_key = new_seal()
    other = login(client, other_cert, other_key, other_nip)['accessToken']
    assert _retrieve(client, other, [serial]) == []
    foreign = client.call('POST', '/certificates/{certificateSerialNumber}/revoke', {'certificateSerialNumber': serial},
                          token=other)
    assert exception_codes(foreign) == [25008]


def test_csr_rules(client, seal_session):
    token = seal_session['token']
    data = client.call('GET', '/certificates/enrollments/data', token=token).json()

    def post(csr, name='Rules cert'):
        time.sleep(0.11)   # stay under the 10 requests per second of the endpoint
        return client.call('POST', '/certificates/enrollments', token=token,
                           json={'certificateName': name, 'certificateType': 'Authentication', 'csr': csr})

    changed = dict(data, commonName=data['commonName'] + ' changed')
    assert exception_codes(post(build_csr_b64(ec.generate_private_key(ec.SECP256R1()), changed))) == [25003]
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert exception_codes(post(build_csr_b64(small_rsa, data))) == [25010]
    assert exception_codes(post(build_csr_b64(ec.generate_private_key(ec.SECP384R1()), data))) == [25010]
    assert exception_codes(post(base64.b64encode(b'not a csr').decode())) == [25004]
    assert exception_codes(post('not base64!')) == [25004]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert exception_codes(post(build_csr_b64(rsa_key, data, hash_algorithm=hashes.SHA224()))) == [25011]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    assert post(build_csr_b64(rsa_key, data, rsa_padding=pss)).status_code == 202
    assert post(build_csr_b64(ec.generate_private_key(ec.SECP256R1()), data, hash_algorithm=hashes.SHA512())
                ).status_code == 202
    # A CSR whose signature does not verify.
    csr_der = bytearray(base64.b64decode(build_csr_b64(ec.generate_private_key(ec.SECP256R1()), data)))
    csr_der[-5] ^= 0x01
    assert exception_codes(post(base64.b64encode(bytes(csr_der)).decode())) == [25004]
    for bad_name in ('abc', 'x' * 101, 'name with / slash'):
        assert exception_codes(post(build_csr_b64(ec.generate_private_key(ec.SECP256R1()), data), bad_name)) == [21405]
    wrong_type = client.call('POST', '/certificates/enrollments', token=token, json={
        'certificateName': 'Type cert', 'certificateType': 'Signing',
        'csr': build_csr_b64(ec.generate_private_key(ec.SECP256R1()), data)})
    assert exception_codes(wrong_type) == [21405]


def test_ed25519_key_is_25010(client, seal_session):
    data = client.call('GET', '/certificates/enrollments/data', token=seal_session['token']).json()
    key = ed25519.Ed25519PrivateKey.generate()
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject_from_enrollment_data(data)).sign(key, None)
    response = client.call('POST', '/certificates/enrollments', token=seal_session['token'], json={
        'certificateName': 'Edwards cert', 'certificateType': 'Authentication',
        'csr': base64.b64encode(csr.public_bytes(Encoding.DER)).decode()})
    assert exception_codes(response) == [25010]


def test_quotas_25006_and_25007(client, seal_session):
    token = seal_session['token']
    limits = {'subjectIdentifierType': 'Nip', 'enrollment': {'maxEnrollments': 3}, 'certificate': {'maxCertificates': 1}}
    assert client.call('POST', '/testdata/limits/subject/certificate', token=token, json=limits).status_code == 200
    assert client.call('GET', '/limits/subject', token=token).json() == {
        'enrollment': {'maxEnrollments': 3}, 'certificate': {'maxCertificates': 1}}
    serial = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    limits_now = client.call('GET', '/certificates/limits', token=token).json()
    assert limits_now == {'canRequest': False, 'enrollment': {'remaining': 2, 'limit': 3},
                          'certificate': {'remaining': 0, 'limit': 1}}
    assert exception_codes(enroll(client, token, ec.generate_private_key(ec.SECP256R1()))) == [25007]
    # Revoking frees the active-certificate slot but not the enrollment slot.
    client.call('POST', '/certificates/{certificateSerialNumber}/revoke', {'certificateSerialNumber': serial},
                token=token, json={'revocationReason': 'Superseded'})
    enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    client.call('POST', '/testdata/limits/subject/certificate', token=token,
                json={'enrollment': {'maxEnrollments': 2}, 'certificate': {'maxCertificates': 5}})
    assert exception_codes(enroll(client, token, ec.generate_private_key(ec.SECP256R1()))) == [25006]
    assert client.call('DELETE', '/testdata/limits/subject/certificate', token=token).status_code == 200
    assert client.call('GET', '/certificates/limits', token=token).json()['enrollment']['limit'] == 300


def test_person_default_limits_are_12_and_6(client):
    pesel = testcerts.valid_pesel()
    cert, key = testcerts.make_person('Anna', 'Nowak', pesel=pesel)
    nip = testcerts.valid_nip()
    client.call('POST', '/testdata/person', json={'nip': nip, 'pesel': pesel, 'isBailiff': False,
                                                  'description': 'limits test person'})
    token = login(client, cert, key, nip)['accessToken']
    limits = client.call('GET', '/certificates/limits', token=token).json()
    assert limits['enrollment']['limit'] == 12 and limits['certificate']['limit'] == 6


def test_key_of_another_subject_is_rejected_at_processing(client, seal_session):
    shared_key = ec.generate_private_key(ec.SECP256R1())
    enroll_and_wait(client, seal_session['token'], shared_key)
    other_nip, other_cert, other_key = new_seal()
    other = login(client, other_cert, other_key, other_nip)['accessToken']
    response = enroll(client, other, shared_key)
    assert response.status_code == 202
    status = wait_for_enrollment(client, other, response.json()['referenceNumber'])
    assert status['status']['code'] == 400 and status['status']['details']
    assert 'certificateSerialNumber' not in status
    # Enrollments of other subjects are unknown to you.
    hidden = client.call('GET', '/certificates/enrollments/{referenceNumber}',
                         {'referenceNumber': response.json()['referenceNumber']}, token=seal_session['token'])
    assert exception_codes(hidden) == [25005]


def test_login_with_issued_ksef_certificates(client, seal_session):
    token = seal_session['token']
    data = client.call('GET', '/certificates/enrollments/data', token=token).json()
    auth_key = ec.generate_private_key(ec.SECP256R1())
    offline_key = ec.generate_private_key(ec.SECP256R1())
    auth_serial = enroll_and_wait(client, token, auth_key, data=data)
    offline_serial = enroll_and_wait(client, token, offline_key, data=data, certificate_type='Offline')
    certs = {i['certificateSerialNumber']: x509.load_der_x509_certificate(base64.b64decode(i['certificate']))
             for i in _retrieve(client, token, [auth_serial, offline_serial])}

    # A KSeF Authentication certificate authenticates as the same subject, with a verified chain.
    status = wait_for_auth(client, start_xades(client, certs[auth_serial], auth_key, seal_session['nip'],
                                               verify_chain=True).json())
    assert status['status']['code'] == 200
    assert status['authenticationMethodInfo']['code'] == 'xades.internal-certificate'
    offline = wait_for_auth(client, start_xades(client, certs[offline_serial], offline_key, seal_session['nip']).json())
    assert offline['status']['code'] == 460
    client.call('POST', '/certificates/{certificateSerialNumber}/revoke', {'certificateSerialNumber': auth_serial},
                token=token)
    revoked = wait_for_auth(client, start_xades(client, certs[auth_serial], auth_key, seal_session['nip']).json())
    assert revoked['status']['code'] == 460


def test_shortened_validity_gives_renewal_window_then_expired(client, seal_session, emulator_clock):
    token = seal_session['token']
    serial = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    current = _query(client, token, {'certificateSerialNumber': serial})['certificates'][0]
    later = util.iso(util.parse_iso(current['validTo']) + 60)
    extend = client.call('PUT', '/testdata/certificates/{serialNumber}', {'serialNumber': serial}, token=token,
                         json={'validTo': later})
    assert extend.status_code == 400 and exception_codes(extend) == [21405]

    in_ten_days = time.time() + 10 * 86400
    assert client.call('PUT', '/testdata/certificates/{serialNumber}', {'serialNumber': serial}, token=token,
                       json={'validTo': util.iso(in_ten_days)}).status_code == 200
    item = _query(client, token, {'certificateSerialNumber': serial})['certificates'][0]
    assert item['status'] == 'Active' and abs(util.parse_iso(item['validTo']) - in_ten_days) < 1
    thirty_days = util.iso(time.time() + 30 * 86400)
    assert _query(client, token, {'expiresAfter': thirty_days, 'certificateSerialNumber': serial})['certificates'] == []
    cert = x509.load_der_x509_certificate(base64.b64decode(_retrieve(client, token, [serial])[0]['certificate']))
    assert abs(cert.not_valid_after_utc.timestamp() - in_ten_days) < 1

    soon = time.time() + 60
    client.call('PUT', '/testdata/certificates/{serialNumber}', {'serialNumber': serial}, token=token,
                json={'validTo': util.iso(soon)})
    emulator_clock.advance(61)
    assert _query(client, token, {'certificateSerialNumber': serial})['certificates'][0]['status'] == 'Expired'
    assert [c['certificateSerialNumber'] for c in _query(client, token, {'status': 'Expired'})['certificates']] == [serial]
    expired_revoke = client.call('POST', '/certificates/{certificateSerialNumber}/revoke',
                                 {'certificateSerialNumber': serial}, token=token)
    assert exception_codes(expired_revoke) == [25009]


def test_certificate_validity_days_and_the_active_peak_record(start_server):
    """--certificate-validity-days shortens issued certificates (lifecycle simulation); /emulator/state keeps the
    highest number of active certificates per subject (revocations do not lower it) and the last login use."""
    server, client = start_server(certificate_validity_days=3)
    nip, cert, key = new_seal()
    token = login(client, cert, key, nip)['accessToken']
    first = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    second = enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))
    client.call('POST', '/certificates/{certificateSerialNumber}/revoke', {'certificateSerialNumber': first},
                token=token, json={'revocationReason': 'Superseded'})
    enroll_and_wait(client, token, ec.generate_private_key(ec.SECP256R1()))

    state = client.control('GET', '/emulator/state').json()
    peak = state['activePeaks']['Nip:%s' % nip]
    assert peak['peak'] == 2 and util.parse_iso(peak['reached']) <= time.time()
    record = [item for item in state['certificates'] if item['serialNumber'] == second][0]
    validity = util.parse_iso(record['validTo']) - util.parse_iso(record['validFrom'])
    assert validity == 3 * 24 * 3600 and record['lastUseDate'] is None
    der = _retrieve(client, token, [second])[0]['certificate']
    issued = x509.load_der_x509_certificate(base64.b64decode(der))
    assert issued.not_valid_after_utc - issued.not_valid_before_utc == datetime.timedelta(days=3)
