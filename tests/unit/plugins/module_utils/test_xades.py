# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""XAdES signer: every credential form, verified by signxml, by the xmlsec1 CLI and against the KSeF XSD."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import hashlib
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from ansible_collections.ksef.certificates.plugins.module_utils._credentials import load_signer_credentials
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._xades import (
    AUTH_NS,
    DS_NS,
    XADES_NS,
    classify_allowed_ips,
    signed_auth_token_request,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs

signxml = pytest.importorskip('signxml')
from signxml import InvalidDigest, InvalidSignature  # noqa: E402
from signxml.xades import XAdESVerifier  # noqa: E402

XSD_PATH = os.path.join(os.path.dirname(__file__), 'fixtures', 'schemat_auth_v2-1.xsd')
CHALLENGE = '20260101-CR-0123456789-ABCDEF0123-4A'
PASSPHRASE = 'correct horse battery staple'
NS = {'ds': DS_NS, 'xades': XADES_NS, 'a': AUTH_NS}


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def credential_form(form, tmp_path):
    """(load kwargs, certificate) for one way a user can give the signer material."""
    if form == 'ec_pem_sec1':
        key = certs.make_key('ec')
        cert = certs.make_seal_certificate(key)
        return dict(certificate_path=_write(tmp_path, 'c.pem', certs.cert_pem(cert)),
                    private_key_path=_write(tmp_path, 'k.pem', certs.key_bytes(key, 'traditional'))), cert
    if form == 'rsa_pem_pkcs1':
        key = certs.make_key('rsa')
        cert = certs.make_seal_certificate(key)
        return dict(certificate_path=_write(tmp_path, 'c.pem', certs.cert_pem(cert)),
                    private_key_path=_write(tmp_path, 'k.pem', certs.key_bytes(key, 'traditional'))), cert
    if form == 'rsa_pem_pkcs8_encrypted':
        key = certs.make_key('rsa')
        cert = certs.make_seal_certificate(key)
        return dict(certificate_path=_write(tmp_path, 'c.pem', certs.cert_pem(cert)),
                    private_key_path=_write(tmp_path, 'k.pem', certs.key_bytes(key, 'pkcs8', passphrase=PASSPHRASE)),
                    passphrase=PASSPHRASE), cert
    if form == 'ec_der':
        key = certs.make_key('ec', slot=1)
        cert = certs.make_seal_certificate(key)
        return dict(certificate_path=_write(tmp_path, 'c.der', certs.cert_der(cert)),
                    private_key_path=_write(tmp_path, 'k.der', certs.key_bytes(key, 'pkcs8', encoding='der'))), cert
    if form == 'rsa_pkcs12':
        key = certs.make_key('rsa', slot=1)
        cert = certs.make_seal_certificate(key)
        return dict(certificate_path=_write(tmp_path, 'signer.p12', certs.pkcs12_bytes(cert, key, PASSPHRASE)),
                    passphrase=PASSPHRASE), cert
    if form == 'ec_inline_content':
        key = certs.make_key('ec', slot=2)
        cert = certs.make_seal_certificate(key)
        return dict(certificate_content=certs.cert_pem(cert).decode('ascii'),
                    private_key_content=certs.key_bytes(key, 'pkcs8', passphrase=PASSPHRASE).decode('ascii'),
                    passphrase=PASSPHRASE), cert
    raise ValueError(form)


FORMS = ['ec_pem_sec1', 'rsa_pem_pkcs1', 'rsa_pem_pkcs8_encrypted', 'ec_der', 'rsa_pkcs12', 'ec_inline_content']


def sign(kwargs, allowed_ips=None, context_type='nip', context_id=certs.TEST_NIP, **extra):
    credentials = load_signer_credentials(**kwargs)
    return signed_auth_token_request(credentials, CHALLENGE, context_type, context_id,
                                     allowed_ips=allowed_ips, **extra), credentials


def verify_with_signxml(xml, cert):
    results = XAdESVerifier().verify(xml, x509_cert=certs.cert_pem(cert).decode('ascii'), expect_references=2)
    return results


def verify_with_xmlsec1(xml, cert, tmp_path):
    xmlsec1 = shutil.which('xmlsec1')
    if xmlsec1 is None:
        pytest.skip('xmlsec1 CLI is not installed')
    doc = _write(tmp_path, 'signed.xml', xml)
    trusted = _write(tmp_path, 'trusted.pem', certs.cert_pem(cert))
    return subprocess.run(
        [xmlsec1, '--verify', '--trusted-pem', trusted,
         '--id-attr:Id', 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties', doc],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60, check=False)


def validate_against_xsd(xml):
    """Drop the signature, move the document to namespace 2.1 (2.0's XSD does not compile in libxml2), validate."""
    root = etree.fromstring(xml)
    for signature in root.findall('ds:Signature', NS):
        root.remove(signature)
    text = etree.tostring(root).replace(b'http://ksef.mf.gov.pl/auth/token/2.0', b'http://ksef.mf.gov.pl/auth/token/2.1')
    schema = etree.XMLSchema(etree.parse(XSD_PATH))
    document = etree.fromstring(text)
    assert schema.validate(document), schema.error_log
    return document


@pytest.mark.parametrize('form', FORMS)
def test_signature_verifies_with_signxml_xmlsec1_and_xsd(form, tmp_path):
    kwargs, cert = credential_form(form, tmp_path)
    xml, _credentials = sign(kwargs, allowed_ips=['192.0.2.10', '10.0.0.0/8', '192.0.2.1-192.0.2.9'])

    results = verify_with_signxml(xml, cert)
    assert len(results) == 2
    signed_document = results[0].signed_xml
    assert signed_document.find('a:Challenge', NS).text == CHALLENGE

    completed = verify_with_xmlsec1(xml, cert, tmp_path)
    assert completed.returncode == 0, completed.stdout
    assert 'SignedInfo References (ok/all): 2/2' in completed.stdout

    document = validate_against_xsd(xml)
    allowed = document.find('{http://ksef.mf.gov.pl/auth/token/2.1}AuthorizationPolicy')
    assert [etree.QName(e).localname for e in allowed[0]] == ['Ip4Address', 'Ip4Range', 'Ip4Mask']


@pytest.mark.parametrize('form', ['ec_pem_sec1', 'rsa_pem_pkcs1'])
def test_tampered_document_fails_verification(form, tmp_path):
    kwargs, cert = credential_form(form, tmp_path)
    xml, _credentials = sign(kwargs)
    tampered = xml.replace(certs.TEST_NIP.encode('ascii'), b'5260250274')
    with pytest.raises((InvalidDigest, InvalidSignature)):
        verify_with_signxml(tampered, cert)
    completed = verify_with_xmlsec1(tampered, cert, tmp_path)
    assert completed.returncode != 0


def test_signature_structure_matches_the_official_clients(tmp_path):
    kwargs, cert = credential_form('ec_pem_sec1', tmp_path)
    now = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    xml, credentials = sign(kwargs, now=now)
    root = etree.fromstring(xml)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert etree.QName(root[-1]).text == '{%s}Signature' % DS_NS
    signature = root[-1]
    assert signature.get('Id') == 'Signature'
    info = signature.find('ds:SignedInfo', NS)
    assert info.find('ds:CanonicalizationMethod', NS).get('Algorithm') == 'http://www.w3.org/2001/10/xml-exc-c14n#'
    assert info.find('ds:SignatureMethod', NS).get('Algorithm') == 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256'
    ref_document, ref_properties = info.findall('ds:Reference', NS)
    assert ref_document.get('URI') == ''
    assert [t.get('Algorithm') for t in ref_document.findall('ds:Transforms/ds:Transform', NS)] == [
        'http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#']
    assert ref_document.find('ds:DigestMethod', NS).get('Algorithm') == 'http://www.w3.org/2001/04/xmlenc#sha256'
    assert ref_properties.get('URI') == '#SignedProperties'
    assert ref_properties.get('Type') == 'http://uri.etsi.org/01903#SignedProperties'
    assert [t.get('Algorithm') for t in ref_properties.findall('ds:Transforms/ds:Transform', NS)] == [
        'http://www.w3.org/2001/10/xml-exc-c14n#']
    der = certs.cert_der(cert)
    assert signature.find('ds:KeyInfo/ds:X509Data/ds:X509Certificate', NS).text == base64.b64encode(der).decode()
    qualifying = signature.find('ds:Object/xades:QualifyingProperties', NS)
    assert qualifying.get('Target') == '#Signature'
    props = qualifying.find('xades:SignedProperties', NS)
    assert props.get('Id') == 'SignedProperties'
    ssp = props.find('xades:SignedSignatureProperties', NS)
    assert ssp.find('xades:SigningTime', NS).text == '2026-03-01T11:59:00Z'
    cert_element = ssp.find('xades:SigningCertificate/xades:Cert', NS)
    assert cert_element.find('xades:CertDigest/ds:DigestValue', NS).text == base64.b64encode(
        hashlib.sha256(der).digest()).decode()
    assert cert_element.find('xades:IssuerSerial/ds:X509SerialNumber', NS).text == str(cert.serial_number)
    assert cert_element.find('xades:IssuerSerial/ds:X509IssuerName', NS).text == cert.issuer.rfc4514_string()

    # ECDSA SignatureValue is raw r||s (64 bytes on P-256) over the exc-c14n SignedInfo.
    raw = base64.b64decode(signature.find('ds:SignatureValue', NS).text)
    assert len(raw) == 64
    signed_info_c14n = etree.tostring(info, method='c14n', exclusive=True)
    der_signature = encode_dss_signature(int.from_bytes(raw[:32], 'big'), int.from_bytes(raw[32:], 'big'))
    cert.public_key().verify(der_signature, signed_info_c14n, ec.ECDSA(hashes.SHA256()))


def test_rsa_uses_rsa_sha256(tmp_path):
    kwargs, _cert = credential_form('rsa_pem_pkcs1', tmp_path)
    root = etree.fromstring(sign(kwargs)[0])
    assert root.find('ds:Signature/ds:SignedInfo/ds:SignatureMethod', NS).get('Algorithm') == \
        'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'


@pytest.mark.parametrize('context_type, context_id, element', [
    ('nip', certs.TEST_NIP, 'Nip'),
    ('internal_id', certs.TEST_NIP + '-00001', 'InternalId'),
    ('nip_vat_ue', certs.TEST_NIP + '-DE123456789', 'NipVatUe'),
    ('peppol_id', 'PPL123456', 'PeppolId'),
])
def test_context_identifier_elements(tmp_path, context_type, context_id, element):
    kwargs, _cert = credential_form('ec_pem_sec1', tmp_path)
    xml, _credentials = sign(kwargs, context_type=context_type, context_id=context_id,
                             subject_identifier_type='certificate_fingerprint')
    root = etree.fromstring(xml)
    context = root.find('a:ContextIdentifier', NS)
    assert [(etree.QName(e).localname, e.text) for e in context] == [(element, context_id)]
    assert root.find('a:SubjectIdentifierType', NS).text == 'certificateFingerprint'
    assert root.find('a:AuthorizationPolicy', NS) is None
    if context_type in ('nip', 'internal_id'):
        validate_against_xsd(xml)


def test_classify_allowed_ips():
    assert classify_allowed_ips(['192.0.2.1', ' 10.0.0.0/8 ', '192.0.2.1 - 192.0.2.5', '0.0.0.0/0']) == {
        'ip4Addresses': ['192.0.2.1'], 'ip4Ranges': ['192.0.2.1-192.0.2.5'], 'ip4Masks': ['10.0.0.0/8', '0.0.0.0/0']}


@pytest.mark.parametrize('entry', ['256.0.0.1', '10.0.0.0/33', '2001:db8::1', 'example.com', '1.2.3', '01.2.3.4'])
def test_classify_allowed_ips_rejects_non_ipv4(entry):
    with pytest.raises(KsefInputError) as info:
        classify_allowed_ips([entry])
    assert repr(entry) in str(info.value)


def test_classify_allowed_ips_enforces_ten_per_kind():
    with pytest.raises(KsefInputError) as info:
        classify_allowed_ips(['192.0.2.%d' % i for i in range(11)])
    assert 'at most 10' in str(info.value)
