"""A client written by someone else: plain requests + signxml + cryptography against the emulator.

Nothing from the collection and nothing from the emulator package is used to *talk* to the server:
the client builds and signs its own AuthTokenRequest (signxml XAdES), its own CSRs, parses the
issued certificates itself, and every JSON response is validated against the official OpenAPI
document. Only testcerts makes the self-signed seal, the way the official clients' helpers do.
"""

import base64
import datetime
import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from lxml import etree
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades import XAdESSigner

from ksef_emulator import testcerts

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(EMULATOR_DIR, 'ksef_emulator')
SHARED_OPENAPI = '/work/shared/ksef-api/openapi.json'
OID_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier('2.5.4.97')
SERVER_START_TIMEOUT = 30
POLL_INTERVAL = 0.5
POLL_TIMEOUT = 30

pytestmark = pytest.mark.skipif(
    not (os.path.exists(os.path.join(PACKAGE_DIR, 'app.py')) and os.path.exists(os.path.join(PACKAGE_DIR,
                                                                                             '__main__.py'))),
    reason='the emulator server (ksef_emulator/app.py, __main__.py) is not there yet')


# ---------------------------------------------------------------------------------------------
# OpenAPI contract


def load_openapi():
    packaged = os.path.join(PACKAGE_DIR, 'openapi.json')
    with open(packaged if os.path.exists(packaged) else SHARED_OPENAPI, encoding='utf-8') as handle:
        return json.load(handle)


class Contract:
    """Validates requests and responses against openapi.json (OpenAPI 3.0, $refs into components)."""

    def __init__(self, document):
        self.document = document

    def _validate(self, instance, schema, validator_class, where):
        wrapped = {'allOf': [schema], 'components': self.document['components']}
        validator = validator_class(wrapped, format_checker=oas30_format_checker)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, '%s does not match the OpenAPI schema: %s' % (
            where, '; '.join('%s: %s' % (list(e.absolute_path), e.message[:200]) for e in errors[:5]))

    def operation(self, method, template):
        assert template in self.document['paths'], 'undocumented route %s' % template
        operation = self.document['paths'][template].get(method.lower())
        assert operation is not None, 'undocumented operation %s %s' % (method, template)
        return operation

    def check_request(self, method, template, body):
        content = self.operation(method, template).get('requestBody', {}).get('content', {})
        if body is not None and 'application/json' in content:
            self._validate(body, content['application/json']['schema'], OAS30WriteValidator,
                           'request %s %s' % (method, template))

    def check_response(self, method, template, response):
        where = 'response %s %s HTTP %d' % (method, template, response.status_code)
        documented = self.operation(method, template)['responses']
        assert str(response.status_code) in documented, '%s: status not documented' % where
        content = documented[str(response.status_code)].get('content')
        if not content:
            assert not response.content, '%s: expected no body' % where
            return None
        media_type = response.headers.get('Content-Type', '').split(';')[0].strip()
        assert media_type in content, '%s: content type %r not documented (%s)' % (where, media_type,
                                                                                   sorted(content))
        body = response.json()
        self._validate(body, content[media_type]['schema'], OAS30ReadValidator, where)
        return body


# ---------------------------------------------------------------------------------------------
# the client


class IndependentClient:
    def __init__(self, base_url, ca_file, contract):
        self.base_url = base_url.rstrip('/')
        self.contract = contract
        self.session = requests.Session()
        # Passed per request: a Session.verify path loses against REQUESTS_CA_BUNDLE from the environment.
        self.ca_file = ca_file
        self.access_token = None

    def call(self, method, template, path=None, token=None, json_body=None, data=None, params=None,
             headers=None, expect=None):
        self.contract.check_request(method, template, json_body)
        all_headers = dict(headers or {})
        if token:
            all_headers['Authorization'] = 'Bearer %s' % token
        response = self.session.request(method, self.base_url + template.format(**(path or {})), json=json_body,
                                        data=data, params=params, headers=all_headers, timeout=30,
                                        verify=self.ca_file)
        body = self.contract.check_response(method, template, response)
        if expect is not None:
            assert response.status_code == expect, '%s %s: HTTP %d %s' % (method, template, response.status_code,
                                                                          response.text[:500])
        return response, body

    def api(self, method, template, expect=200, **kwargs):
        return self.call(method, template, token=self.access_token, expect=expect, **kwargs)[1]

    def poll(self, method, template, token, path, done, what):
        deadline = time.monotonic() + POLL_TIMEOUT
        while True:
            dummy, body = self.call(method, template, path=path, token=token, expect=200)
            if done(body):
                return body
            assert time.monotonic() < deadline, '%s still in progress: %s' % (what, body)
            time.sleep(POLL_INTERVAL)


def exception_codes(body):
    return [d['exceptionCode'] for d in body['exception']['exceptionDetailList']]


def auth_token_request(challenge, nip):
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.0"><Challenge>%s</Challenge>'
            '<ContextIdentifier><Nip>%s</Nip></ContextIdentifier>'
            '<SubjectIdentifierType>certificateSubject</SubjectIdentifierType></AuthTokenRequest>'
            % (challenge, nip))


def xades_sign(xml, key, cert):
    algorithm = SignatureMethod.ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) \
        else SignatureMethod.RSA_SHA256
    signer = XAdESSigner(signature_algorithm=algorithm, digest_algorithm=DigestAlgorithm.SHA256,
                         c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0)
    root = etree.fromstring(xml.encode('utf-8'))
    return etree.tostring(signer.sign(root, key=key, cert=[cert]), xml_declaration=True, encoding='utf-8')


def start_xades(client, nip, key, cert, tamper=None):
    dummy, challenge = client.call('POST', '/auth/challenge', expect=200)
    signed = xades_sign(auth_token_request(challenge['challenge'], nip), key, cert)
    if tamper:
        signed = tamper(signed)
    return client.call('POST', '/auth/xades-signature', data=signed, params={'verifyCertificateChain': 'false'},
                       headers={'Content-Type': 'application/xml'})


def login(client, nip, key, cert):
    response, init = start_xades(client, nip, key, cert)
    assert response.status_code == 202, response.text[:500]
    operation_token = init['authenticationToken']['token']
    status = client.poll('GET', '/auth/{referenceNumber}', operation_token,
                         {'referenceNumber': init['referenceNumber']},
                         lambda body: body['status']['code'] != 100, 'authentication')
    assert status['status']['code'] == 200, status
    assert status['authenticationMethodInfo']['category'] == 'XadesSignature'
    dummy, tokens = client.call('POST', '/auth/token/redeem', token=operation_token, expect=200)
    client.access_token = tokens['accessToken']['token']
    return status


def build_csr(key, attributes):
    name = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)])
                      for oid, value in attributes])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return base64.b64encode(csr.public_bytes(Encoding.DER)).decode('ascii')


FIELD_OIDS = {
    'commonName': NameOID.COMMON_NAME, 'countryName': NameOID.COUNTRY_NAME, 'givenName': NameOID.GIVEN_NAME,
    'surname': NameOID.SURNAME, 'serialNumber': NameOID.SERIAL_NUMBER,
    'uniqueIdentifier': x509.ObjectIdentifier('2.5.4.45'), 'organizationName': NameOID.ORGANIZATION_NAME,
    'organizationIdentifier': OID_ORGANIZATION_IDENTIFIER,
}


def csharp_subject(data):
    order = ['commonName', 'surname', 'givenName', 'organizationName', 'organizationIdentifier', 'countryName',
             'serialNumber', 'uniqueIdentifier']
    return [(FIELD_OIDS[f], data[f]) for f in order if data.get(f)]


def java_subject(data):
    order = ['commonName', 'surname', 'organizationName', 'organizationIdentifier', 'countryName',
             'serialNumber', 'uniqueIdentifier', 'givenName']
    return [(FIELD_OIDS[f], data[f]) for f in order if data.get(f)]


def spki(public_key):
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def parse_time(text):
    # KSeF sends up to 7 fractional digits (.NET round-trip format); Python takes 6.
    text = re.sub(r'Z$', '+00:00', text)
    return datetime.datetime.fromisoformat(re.sub(r'(\.\d{6})\d+', r'\1', text))


# ---------------------------------------------------------------------------------------------
# server


def _read_ready_file(path):
    text = open(path, encoding='utf-8').read().strip()
    try:
        info = json.loads(text)
    except ValueError:
        info = text
    if isinstance(info, dict):
        for key in ('base_url', 'url', 'api_url'):
            if info.get(key):
                url = info[key]
                return url if url.rstrip('/').endswith('/v2') else url.rstrip('/') + '/v2'
        return 'https://127.0.0.1:%d/v2' % int(info['port'])
    if isinstance(info, int) or str(info).isdigit():
        return 'https://127.0.0.1:%d/v2' % int(info)
    url = str(info).splitlines()[0].strip()
    return url if url.rstrip('/').endswith('/v2') else url.rstrip('/') + '/v2'


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp('independent-client')
    ready_file, ca_file = work / 'ready', work / 'tls-ca.pem'
    env = dict(os.environ, PYTHONPATH=EMULATOR_DIR + os.pathsep + os.environ.get('PYTHONPATH', ''))
    process = subprocess.Popen(
        [sys.executable, '-m', 'ksef_emulator', '--host', '127.0.0.1', '--port', '0', '--ready-file',
         str(ready_file), '--state', str(work / 'state.sqlite'), '--tls-ca-file', str(ca_file),
         '--processing-delay', '0.5'],
        cwd=str(work), env=env, stdout=subprocess.DEVNULL, stderr=open(work / 'server.log', 'wb'))
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not (ready_file.exists() and ready_file.stat().st_size and ca_file.exists()):
            if process.poll() is not None:
                pytest.fail('emulator exited with %s: %s' % (process.returncode,
                                                             (work / 'server.log').read_text()[-2000:]))
            if time.monotonic() > deadline:
                pytest.fail('emulator not ready after %d s' % SERVER_START_TIMEOUT)
            time.sleep(0.1)
        yield {'base_url': _read_ready_file(ready_file), 'ca_file': str(ca_file)}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope='module')
def contract():
    return Contract(load_openapi())


# ---------------------------------------------------------------------------------------------
# the walk


def test_independent_client_walk(server, contract):
    client = IndependentClient(server['base_url'], server['ca_file'], contract)
    nip = testcerts.valid_nip()
    seal_cert, seal_key = testcerts.make_seal(nip, key_type='ec', organization_name='Spółka Testowa Żółw')

    # A tampered signature is refused synchronously with 9105.
    def flip_signature_value(signed):
        root = etree.fromstring(signed)
        value = root.find('.//{http://www.w3.org/2000/09/xmldsig#}SignatureValue')
        raw = bytearray(base64.b64decode(value.text))
        raw[5] ^= 0x01
        value.text = base64.b64encode(bytes(raw)).decode()
        return etree.tostring(root)

    response, body = start_xades(client, nip, seal_key, seal_cert, tamper=flip_signature_value)
    assert response.status_code == 400
    assert 9105 in exception_codes(body)

    auth_status = login(client, nip, seal_key, seal_cert)
    assert auth_status['authenticationMethodInfo']['code']

    # A bad token is answered 401 with problem details.
    response, body = client.call('GET', '/certificates/enrollments/data', token='not-a-token')
    assert response.status_code == 401
    assert body['status'] == 401

    limits = client.api('GET', '/certificates/limits')
    assert limits['canRequest'] is True
    assert limits['enrollment']['remaining'] > 2 and limits['certificate']['remaining'] > 2

    data = client.api('GET', '/certificates/enrollments/data')
    signer_values = {(a.oid, a.value) for a in seal_cert.subject}
    assert {(FIELD_OIDS[f], v) for f, v in data.items() if v is not None} == signer_values
    assert data['organizationIdentifier'] == 'VATPL-%s' % nip
    assert data['givenName'] is None and data['surname'] is None

    run_id = uuid.uuid4().hex[:8]
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wanted = [
        ('Auth EC %s' % run_id, 'Authentication', ec_key, csharp_subject(data)),
        ('Offline RSA %s' % run_id, 'Offline', rsa_key, java_subject(data)),
    ]
    references = []
    for name, certificate_type, key, subject in wanted:
        enrolled = client.api('POST', '/certificates/enrollments', expect=202, json_body={
            'certificateName': name, 'certificateType': certificate_type, 'csr': build_csr(key, subject)})
        references.append(enrolled['referenceNumber'])
        time.sleep(0.05)  # distinct requestDate values for the ordering check

    serials = []
    for reference in references:
        status = client.poll('GET', '/certificates/enrollments/{referenceNumber}', client.access_token,
                             {'referenceNumber': reference}, lambda body: body['status']['code'] != 100,
                             'enrollment %s' % reference)
        assert status['status']['code'] == 200, status
        serials.append(status['certificateSerialNumber'])
    auth_serial, offline_serial = serials

    retrieved = client.api('POST', '/certificates/retrieve', json_body={'certificateSerialNumbers': serials})
    by_serial = {item['certificateSerialNumber']: item for item in retrieved['certificates']}
    assert sorted(by_serial) == sorted(serials)
    for (name, certificate_type, key, dummy), serial in zip(wanted, serials):
        item = by_serial[serial]
        assert (item['certificateName'], item['certificateType']) == (name, certificate_type)
        issued = x509.load_der_x509_certificate(base64.b64decode(item['certificate']))
        assert '%016X' % issued.serial_number == serial
        assert spki(issued.public_key()) == spki(key.public_key())
        assert {(a.oid, a.value) for a in issued.subject} == signer_values
        key_usage = issued.extensions.get_extension_for_class(x509.KeyUsage).value
        if certificate_type == 'Authentication':
            assert key_usage.digital_signature and not key_usage.content_commitment
        else:
            assert key_usage.content_commitment and not key_usage.digital_signature

    everything = client.api('POST', '/certificates/query', json_body={}, params={'pageSize': 10})
    request_dates = [parse_time(item['requestDate']) for item in everything['certificates']]
    assert request_dates == sorted(request_dates, reverse=True)
    ours = [item['certificateSerialNumber'] for item in everything['certificates']
            if item['certificateSerialNumber'] in serials]
    assert ours == [offline_serial, auth_serial]
    for item in everything['certificates']:
        assert item['subjectIdentifier'] == {'type': 'Nip', 'value': nip}

    offline_only = client.api('POST', '/certificates/query', json_body={'type': 'Offline', 'name': run_id})
    assert [i['certificateSerialNumber'] for i in offline_only['certificates']] == [offline_serial]
    by_serial_query = client.api('POST', '/certificates/query', json_body={'certificateSerialNumber': auth_serial})
    assert [i['name'] for i in by_serial_query['certificates']] == ['Auth EC %s' % run_id]
    assert by_serial_query['certificates'][0]['status'] == 'Active'

    # Revocation, then the idempotent 25009 on the second attempt.
    client.api('POST', '/certificates/{certificateSerialNumber}/revoke', expect=204,
               path={'certificateSerialNumber': offline_serial}, json_body={'revocationReason': 'KeyCompromise'})
    response, body = client.call('POST', '/certificates/{certificateSerialNumber}/revoke',
                                 path={'certificateSerialNumber': offline_serial}, token=client.access_token,
                                 json_body={'revocationReason': 'KeyCompromise'})
    assert response.status_code == 400 and 25009 in exception_codes(body)
    revoked = client.api('POST', '/certificates/query', json_body={'status': 'Revoked', 'name': run_id})
    assert [i['certificateSerialNumber'] for i in revoked['certificates']] == [offline_serial]

    # A changed DN is refused with 25003, an RSA-1024 key with 25010.
    changed = [(oid, value + ' zmienione' if oid == NameOID.COMMON_NAME else value)
               for oid, value in csharp_subject(data)]
    response, body = client.call('POST', '/certificates/enrollments', token=client.access_token, json_body={
        'certificateName': 'Changed DN %s' % run_id, 'certificateType': 'Authentication',
        'csr': build_csr(ec.generate_private_key(ec.SECP256R1()), changed)})
    assert response.status_code == 400 and 25003 in exception_codes(body)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    response, body = client.call('POST', '/certificates/enrollments', token=client.access_token, json_body={
        'certificateName': 'Weak RSA %s' % run_id, 'certificateType': 'Authentication',
        'csr': build_csr(weak, csharp_subject(data))})
    assert response.status_code == 400 and 25010 in exception_codes(body)

    # The issued Authentication certificate logs in as well (a KSeF certificate).
    issued_auth = x509.load_der_x509_certificate(base64.b64decode(by_serial[auth_serial]['certificate']))
    second = IndependentClient(server['base_url'], server['ca_file'], contract)
    second_status = login(second, nip, ec_key, issued_auth)
    assert second_status['authenticationMethodInfo']['category'] == 'XadesSignature'

    # Rapid calls to one endpoint (10/s, 30/min) are answered 429 with Retry-After.
    limited = None
    for dummy in range(35):
        response, body = client.call('GET', '/certificates/limits', token=client.access_token)
        if response.status_code == 429:
            limited = response
            break
        assert response.status_code == 200
    assert limited is not None, 'no 429 within 35 rapid calls'
    assert int(limited.headers['Retry-After']) > 0

    client.call('DELETE', '/auth/sessions/current', token=client.access_token, expect=204)
