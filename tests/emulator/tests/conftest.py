"""Shared fixtures of the emulator tests: a running server, an OpenAPI-checking client, a minimal
XAdES signer, CSR building and a login helper. Other test modules (and the collection's tests) may
reuse `emulator_server`, `client`, `login` and `new_seal`."""

import base64
import datetime
import hashlib
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from lxml import etree

from ksef_emulator import testcerts, util
from ksef_emulator.emulator import Config
from ksef_emulator.server import EmulatorServer

import openapi_check

DS = 'http://www.w3.org/2000/09/xmldsig#'
XADES = 'http://uri.etsi.org/01903/v1.3.2#'
EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#'
SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256'
AUTH_NS = 'http://ksef.mf.gov.pl/auth/token/2.0'

# Routes served by the emulator that the copied openapi.json (2.6.0) does not describe yet.
UNDOCUMENTED_ROUTES = {('PUT', '/testdata/certificates/{serialNumber}')}


# --- XAdES-BES signing of AuthTokenRequest (the structure of the official C# client, SPEC 9.1) ---------

def auth_token_request(challenge, context_value, context_type='Nip', subject_type='certificateSubject',
                       allowed_ips=None):
    root = etree.Element('{%s}AuthTokenRequest' % AUTH_NS, nsmap={None: AUTH_NS})
    etree.SubElement(root, '{%s}Challenge' % AUTH_NS).text = challenge
    context = etree.SubElement(root, '{%s}ContextIdentifier' % AUTH_NS)
    etree.SubElement(context, '{%s}%s' % (AUTH_NS, context_type)).text = context_value
    etree.SubElement(root, '{%s}SubjectIdentifierType' % AUTH_NS).text = subject_type
    if allowed_ips:
        policy = etree.SubElement(root, '{%s}AuthorizationPolicy' % AUTH_NS)
        allowed = etree.SubElement(policy, '{%s}AllowedIps' % AUTH_NS)
        for tag, key in (('Ip4Address', 'ip4Addresses'), ('Ip4Range', 'ip4Ranges'), ('Ip4Mask', 'ip4Masks')):
            for value in allowed_ips.get(key, []):
                etree.SubElement(allowed, '{%s}%s' % (AUTH_NS, tag)).text = value
    return etree.tostring(root, xml_declaration=True, encoding='utf-8')


def _sub(parent, namespace, tag, text=None, **attributes):
    element = etree.SubElement(parent, '{%s}%s' % (namespace, tag), **attributes)
    if text is not None:
        element.text = text
    return element


def _digest(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode('ascii')


def sign_xades(xml_bytes, cert, key):
    """Enveloped XAdES-BES signature: document reference + SignedProperties reference, exclusive C14N."""
    root = etree.fromstring(xml_bytes)
    document_digest = _digest(etree.tostring(root, method='c14n', exclusive=True))
    signature = etree.SubElement(root, '{%s}Signature' % DS, nsmap={'ds': DS}, Id='Signature')
    signed_info = _sub(signature, DS, 'SignedInfo')
    _sub(signed_info, DS, 'CanonicalizationMethod', Algorithm=EXC_C14N)
    is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
    _sub(signed_info, DS, 'SignatureMethod', Algorithm='http://www.w3.org/2001/04/xmldsig-more#%s'
         % ('ecdsa-sha256' if is_ec else 'rsa-sha256'))
    document_reference = _sub(signed_info, DS, 'Reference', URI='')
    transforms = _sub(document_reference, DS, 'Transforms')
    _sub(transforms, DS, 'Transform', Algorithm='http://www.w3.org/2000/09/xmldsig#enveloped-signature')
    _sub(transforms, DS, 'Transform', Algorithm=EXC_C14N)
    _sub(document_reference, DS, 'DigestMethod', Algorithm=SHA256)
    _sub(document_reference, DS, 'DigestValue', document_digest)
    properties_reference = _sub(signed_info, DS, 'Reference', URI='#SignedProperties',
                                Type='http://uri.etsi.org/01903#SignedProperties')
    _sub(_sub(properties_reference, DS, 'Transforms'), DS, 'Transform', Algorithm=EXC_C14N)
    _sub(properties_reference, DS, 'DigestMethod', Algorithm=SHA256)
    properties_digest = _sub(properties_reference, DS, 'DigestValue')
    signature_value = _sub(signature, DS, 'SignatureValue')
    cert_der = cert.public_bytes(Encoding.DER)
    _sub(_sub(_sub(signature, DS, 'KeyInfo'), DS, 'X509Data'), DS, 'X509Certificate',
         base64.b64encode(cert_der).decode('ascii'))
    qualifying = etree.SubElement(_sub(signature, DS, 'Object'), '{%s}QualifyingProperties' % XADES,
                                  nsmap={'xades': XADES}, Target='#Signature')
    signed_properties = _sub(qualifying, XADES, 'SignedProperties', Id='SignedProperties')
    signature_properties = _sub(signed_properties, XADES, 'SignedSignatureProperties')
    signing_time = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    _sub(signature_properties, XADES, 'SigningTime', signing_time.strftime('%Y-%m-%dT%H:%M:%SZ'))
    cert_element = _sub(_sub(signature_properties, XADES, 'SigningCertificate'), XADES, 'Cert')
    cert_digest = _sub(cert_element, XADES, 'CertDigest')
    _sub(cert_digest, DS, 'DigestMethod', Algorithm=SHA256)
    _sub(cert_digest, DS, 'DigestValue', _digest(cert_der))
    issuer_serial = _sub(cert_element, XADES, 'IssuerSerial')
    _sub(issuer_serial, DS, 'X509IssuerName', cert.issuer.rfc4514_string())
    _sub(issuer_serial, DS, 'X509SerialNumber', str(cert.serial_number))

    properties_digest.text = _digest(etree.tostring(signed_properties, method='c14n', exclusive=True))
    signed_info_octets = etree.tostring(signed_info, method='c14n', exclusive=True)
    if is_ec:
        r, s = decode_dss_signature(key.sign(signed_info_octets, ec.ECDSA(hashes.SHA256())))
        size = (key.curve.key_size + 7) // 8
        raw = r.to_bytes(size, 'big') + s.to_bytes(size, 'big')   # XMLDSig wants r||s, not DER
    else:
        raw = key.sign(signed_info_octets, padding.PKCS1v15(), hashes.SHA256())
    signature_value.text = base64.b64encode(raw).decode('ascii')
    return etree.tostring(root, xml_declaration=True, encoding='utf-8')


# --- CSR ------------------------------------------------------------------------------------------------

ENROLLMENT_OIDS = (  # C# client order and string types (SPEC 9.2)
    ('commonName', x509.NameOID.COMMON_NAME, _ASN1Type.UTF8String),
    ('surname', x509.NameOID.SURNAME, _ASN1Type.UTF8String),
    ('givenName', x509.NameOID.GIVEN_NAME, _ASN1Type.UTF8String),
    ('organizationName', x509.NameOID.ORGANIZATION_NAME, _ASN1Type.UTF8String),
    ('organizationIdentifier', x509.ObjectIdentifier('2.5.4.97'), _ASN1Type.UTF8String),
    ('countryName', x509.NameOID.COUNTRY_NAME, _ASN1Type.PrintableString),
    ('serialNumber', x509.NameOID.SERIAL_NUMBER, _ASN1Type.PrintableString),
    ('uniqueIdentifier', x509.ObjectIdentifier('2.5.4.45'), _ASN1Type.UTF8String),
)


def subject_from_enrollment_data(data):
    attributes = [x509.NameAttribute(oid, data[field], _type=string_type)
                  for field, oid, string_type in ENROLLMENT_OIDS if data.get(field)]
    return x509.Name([x509.RelativeDistinguishedName([a]) for a in attributes])


def build_csr_b64(key, data, hash_algorithm=None, rsa_padding=None):
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject_from_enrollment_data(data))
    kwargs = {'rsa_padding': rsa_padding} if rsa_padding is not None else {}
    csr = builder.sign(key, hash_algorithm or hashes.SHA256(), **kwargs)
    return base64.b64encode(csr.public_bytes(Encoding.DER)).decode('ascii')


# --- client -------------------------------------------------------------------------------------------

class EmulatorClient:
    """requests wrapper: every answer of a documented route is validated against openapi.json."""

    def __init__(self, base_url, ca_file=None):
        self.base_url = base_url
        self.root_url = base_url[:-len('/v2')]
        self.session = requests.Session()
        self.session.trust_env = False     # ignore REQUESTS_CA_BUNDLE / proxies of the environment
        self.verify = ca_file if ca_file else True

    def call(self, method, route, path=None, token=None, check=True, **kwargs):
        headers = dict(kwargs.pop('headers', None) or {})
        if token:
            headers['Authorization'] = 'Bearer %s' % token
        url = self.base_url + route.format(**(path or {}))
        response = self.session.request(method, url, headers=headers, verify=self.verify, timeout=30, **kwargs)
        if check and (method, route) not in UNDOCUMENTED_ROUTES:
            body = response.json() if response.content else None
            openapi_check.check_response(method, route, response.status_code, response.headers.get('Content-Type'),
                                         body)
        return response

    def control(self, method, path, **kwargs):
        return self.session.request(method, self.root_url + path, verify=self.verify, timeout=30, **kwargs)

    def state(self):
        return self.control('GET', '/emulator/state').json()


def exception_codes(response):
    body = response.json()
    if 'exception' in body:
        return [d['exceptionCode'] for d in body['exception']['exceptionDetailList']]
    return [e['code'] for e in body.get('errors', [])]


def start_xades(client, cert, key, context_value, context_type='Nip', subject_type='certificateSubject',
                verify_chain=False, allowed_ips=None, challenge=None):
    if challenge is None:
        challenge = client.call('POST', '/auth/challenge').json()['challenge']
    signed = sign_xades(auth_token_request(challenge, context_value, context_type, subject_type, allowed_ips),
                        cert, key)
    return client.call('POST', '/auth/xades-signature', data=signed,
                       params={'verifyCertificateChain': 'true' if verify_chain else 'false'},
                       headers={'Content-Type': 'application/xml'})


def wait_for_auth(client, init, timeout=10):
    token = init['authenticationToken']['token']
    deadline = time.monotonic() + timeout
    while True:
        status = client.call('GET', '/auth/{referenceNumber}', {'referenceNumber': init['referenceNumber']},
                             token=token).json()
        if status['status']['code'] != 100 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def login(client, cert, key, context_value, **kwargs):
    """Full XAdES login; returns {'accessToken', 'refreshToken', 'referenceNumber', 'authenticationToken'}."""
    response = start_xades(client, cert, key, context_value, **kwargs)
    assert response.status_code == 202, response.text
    init = response.json()
    status = wait_for_auth(client, init)
    assert status['status']['code'] == 200, status
    redeemed = client.call('POST', '/auth/token/redeem', token=init['authenticationToken']['token'])
    assert redeemed.status_code == 200, redeemed.text
    tokens = redeemed.json()
    return {'accessToken': tokens['accessToken']['token'], 'refreshToken': tokens['refreshToken']['token'],
            'referenceNumber': init['referenceNumber'], 'authenticationToken': init['authenticationToken']['token']}


def new_seal(key_type='ec'):
    """(nip, certificate, key) of a fresh self-signed seal with a random NIP (its own rate-limit context)."""
    nip = testcerts.valid_nip()
    cert, key = testcerts.make_seal(nip, key_type=key_type)
    return nip, cert, key


def wait_for_enrollment(client, token, reference, timeout=15, first_wait=0.35, interval=0.25):
    """Poll the enrollment status like a polite client: the endpoint allows 30 requests a minute."""
    deadline = time.monotonic() + timeout
    time.sleep(first_wait)
    while True:
        response = client.call('GET', '/certificates/enrollments/{referenceNumber}', {'referenceNumber': reference},
                               token=token)
        assert response.status_code == 200, response.text
        status = response.json()
        if status['status']['code'] != 100 or time.monotonic() > deadline:
            return status
        time.sleep(interval)


def enroll(client, token, key, name='Certyfikat testowy', certificate_type='Authentication', data=None, **body):
    if data is None:
        data = client.call('GET', '/certificates/enrollments/data', token=token).json()
    payload = {'certificateName': name, 'certificateType': certificate_type, 'csr': build_csr_b64(key, data)}
    payload.update(body)
    return client.call('POST', '/certificates/enrollments', token=token, json=payload)


def enroll_and_wait(client, token, key, **kwargs):
    response = enroll(client, token, key, **kwargs)
    assert response.status_code == 202, response.text
    status = wait_for_enrollment(client, token, response.json()['referenceNumber'])
    assert status['status']['code'] == 200, status
    return status['certificateSerialNumber']


# --- fixtures -------------------------------------------------------------------------------------------

FAST_CONFIG = dict(processing_delay=0.3, auth_processing_delay=0.05)


@pytest.fixture(scope='session')
def emulator_server(tmp_path_factory):
    """One TLS emulator for the session (in this process); `.ca_file` is the CA clients must trust."""
    work = tmp_path_factory.mktemp('emulator')
    ca_file = str(work / 'tls-ca.pem')
    server = EmulatorServer(Config(record_dir=str(work / 'records'), **FAST_CONFIG), tls=True, tls_ca_file=ca_file)
    server.ca_file = ca_file
    server.record_dir = str(work / 'records')
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(emulator_server):
    return EmulatorClient(emulator_server.base_url, emulator_server.ca_file)


class EmulatorClock:
    """The emulator's clock (`util.now`) under a test's control: real time plus an offset that only `advance()`
    moves, or a fixed instant after `freeze()`. A status that moves with time (Pending, Revoking, Blocked, an
    expiring token or record) is given a window far longer than any test step and then ended by `advance()`, so
    what a test sees inside the window does not depend on how fast a loaded machine runs it."""

    def __init__(self):
        self.offset = 0.0
        self.frozen = None

    def now(self):
        return self.frozen if self.frozen is not None else time.time() + self.offset

    def advance(self, seconds):
        self.offset += seconds
        if self.frozen is not None:
            self.frozen += seconds

    def freeze(self):
        self.frozen = self.now()


@pytest.fixture
def emulator_clock(monkeypatch, emulator_server):
    """Every in-process emulator of this test reads this clock (restored after the test)."""
    clock = EmulatorClock()
    monkeypatch.setattr(util, 'now', clock.now)
    yield clock
    # Requests counted at a moved time would stay in the shared server's rate-limit windows for later tests.
    if clock.offset or clock.frozen is not None:
        emulator_server.emulator.limiter.reset()


@pytest.fixture
def start_server(tmp_path):
    """Factory for extra in-process servers with their own configuration (stopped after the test)."""
    servers = []

    def start(tls=False, **config):
        options = dict(FAST_CONFIG)
        options.update(config)
        ca_file = str(tmp_path / ('ca-%d.pem' % len(servers))) if tls else None
        server = EmulatorServer(Config(**options), tls=tls, tls_ca_file=ca_file)
        server.ca_file = ca_file
        servers.append(server.start())
        return server, EmulatorClient(server.base_url, ca_file)

    yield start
    for server in servers:
        server.stop()
