"""verify_auth_request against documents signed by independent implementations (signxml, xmlsec1)."""

import base64
import copy
import datetime
import hashlib
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner, methods
from signxml.xades import XAdESSigner

from ksef_emulator import testcerts
from ksef_emulator.xades_verify import XadesRejected, verify_auth_request

DS = 'http://www.w3.org/2000/09/xmldsig#'
NS20 = 'http://ksef.mf.gov.pl/auth/token/2.0'
NS21 = 'http://ksef.mf.gov.pl/auth/token/2.1'
CHALLENGE = '20260101-CR-0123456789-ABCDEF0123-4A'
OTHER_CHALLENGE = '20260101-CR-0123456789-ABCDEF0123-4B'
C14N_URIS = {
    'c14n10': 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
    'c14n11': 'http://www.w3.org/2006/12/xml-c14n11',
    'exc': 'http://www.w3.org/2001/10/xml-exc-c14n#',
}
ECDSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256'
RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'
XMLSEC1 = shutil.which('xmlsec1')


def auth_request(nip, namespace=NS20, challenge=CHALLENGE, subject_type='certificateSubject', policy=''):
    return ('<AuthTokenRequest xmlns="%s"><Challenge>%s</Challenge><ContextIdentifier><Nip>%s</Nip>'
            '</ContextIdentifier><SubjectIdentifierType>%s</SubjectIdentifierType>%s</AuthTokenRequest>'
            % (namespace, challenge, nip, subject_type, policy))


def signxml_sign(xml, key, cert, c14n=CanonicalizationMethod.CANONICAL_XML_1_0, signer_class=XAdESSigner,
                 **signer_kwargs):
    algorithm = SignatureMethod.ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) \
        else SignatureMethod.RSA_SHA256
    signer = signer_class(signature_algorithm=algorithm, digest_algorithm=DigestAlgorithm.SHA256,
                          c14n_algorithm=c14n, **signer_kwargs)
    signed = signer.sign(etree.fromstring(xml.encode('utf-8')), key=key, cert=[cert])
    return etree.tostring(signed)


def xades_template(xml, cert, c14n='exc', signature_method=ECDSA_SHA256, document_transform='enveloped',
                   cert_digest_of=None):
    """A C#-client-shaped XAdES-BES template for `xmlsec1 --sign` (SPEC.md 9.1)."""
    digest_source = (cert_digest_of or cert).public_bytes(Encoding.DER)
    cert_digest = base64.b64encode(hashlib.sha256(digest_source).digest()).decode()
    transforms = {
        'enveloped': '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>',
        'xpath': '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116">'
                 '<ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>',
        'filter2': '<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2">'
                   '<f:XPath xmlns:f="http://www.w3.org/2002/06/xmldsig-filter2" Filter="subtract">'
                   '/descendant::ds:Signature</f:XPath></ds:Transform>',
        # Leaves the Challenge unsigned: a replayable signature, must be refused.
        'filter2-challenge': '<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2">'
                             '<f:XPath xmlns:f="http://www.w3.org/2002/06/xmldsig-filter2" xmlns:a="%s" '
                             'Filter="subtract">/descendant::ds:Signature | /descendant::a:Challenge</f:XPath>'
                             '</ds:Transform>' % NS20,
    }[document_transform]
    signing_time = (datetime.datetime.now(datetime.timezone.utc)
                    - datetime.timedelta(minutes=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    c14n_uri = C14N_URIS[c14n]
    signature = f'''
<ds:Signature xmlns:ds="{DS}" Id="Signature">
<ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="{c14n_uri}"/>
<ds:SignatureMethod Algorithm="{signature_method}"/>
<ds:Reference URI=""><ds:Transforms>{transforms}<ds:Transform Algorithm="{c14n_uri}"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
<ds:Reference URI="#SignedProperties" Type="http://uri.etsi.org/01903#SignedProperties">
<ds:Transforms><ds:Transform Algorithm="{c14n_uri}"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
</ds:SignedInfo>
<ds:SignatureValue/>
<ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>
<ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" Target="#Signature">
<xades:SignedProperties Id="SignedProperties"><xades:SignedSignatureProperties>
<xades:SigningTime>{signing_time}</xades:SigningTime>
<xades:SigningCertificate><xades:Cert><xades:CertDigest>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{cert_digest}</ds:DigestValue>
</xades:CertDigest><xades:IssuerSerial><ds:X509IssuerName>{cert.issuer.rfc4514_string()}</ds:X509IssuerName>
<ds:X509SerialNumber>{cert.serial_number}</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert>
</xades:SigningCertificate></xades:SignedSignatureProperties></xades:SignedProperties>
</xades:QualifyingProperties></ds:Object>
</ds:Signature>'''
    return xml.replace('</AuthTokenRequest>', signature + '</AuthTokenRequest>')


def xmlsec1_sign(template, key, cert, tmp_path):
    template_file = tmp_path / 'template.xml'
    key_file = tmp_path / 'key.pem'
    cert_file = tmp_path / 'cert.pem'
    output_file = tmp_path / 'signed.xml'
    template_file.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + template, encoding='utf-8')
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(Encoding.PEM))
    subprocess.run([XMLSEC1, '--sign', '--privkey-pem', '%s,%s' % (key_file, cert_file),
                    '--id-attr:Id', 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties',
                    '--output', str(output_file), str(template_file)], check=True, capture_output=True)
    return output_file.read_bytes()


def rejected(data):
    with pytest.raises(XadesRejected) as info:
        verify_auth_request(data)
    return info.value


@pytest.fixture(scope='module')
def ec_seal():
    nip = testcerts.valid_nip()
    cert, key = testcerts.make_seal(nip, key_type='ec')
    return nip, cert, key


@pytest.fixture(scope='module')
def rsa_seal():
    nip = testcerts.valid_nip()
    cert, key = testcerts.make_seal(nip, key_type='rsa')
    return nip, cert, key


@pytest.fixture(scope='module')
def signed_ec(ec_seal):
    nip, cert, key = ec_seal
    return signxml_sign(auth_request(nip), key, cert)


# ---------------------------------------------------------------------------------------------
# accepted documents


@pytest.mark.parametrize('c14n', [CanonicalizationMethod.CANONICAL_XML_1_0,
                                  CanonicalizationMethod.CANONICAL_XML_1_0_WITH_COMMENTS,
                                  CanonicalizationMethod.CANONICAL_XML_1_1,
                                  CanonicalizationMethod.CANONICAL_XML_1_1_WITH_COMMENTS])
@pytest.mark.parametrize('seal', ['ec_seal', 'rsa_seal'])
def test_signxml_xades_accepted(request, seal, c14n):
    nip, cert, key = request.getfixturevalue(seal)
    result = verify_auth_request(signxml_sign(auth_request(nip), key, cert, c14n=c14n))
    assert result.challenge == CHALLENGE
    assert result.context_type == 'Nip'
    assert result.context_value == nip
    assert result.subject_identifier_type == 'certificateSubject'
    assert result.signer_certificate == cert
    assert result.allowed_ips is None
    assert result.namespace == NS20


def test_signxml_exclusive_xades_refused_like_xmlsec1(ec_seal, tmp_path):
    # signxml 4.2 digests SignedProperties with exclusive C14N but declares no Transform for that
    # reference; XMLDSig then mandates inclusive C14N 1.0, so both xmlsec1 and the emulator refuse it.
    nip, cert, key = ec_seal
    data = signxml_sign(auth_request(nip), key, cert, c14n=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    error = rejected(data)
    assert error.code == 9105
    assert 'wrong digest' in error.details[0] and 'SignedProperties' in error.details[0]
    if XMLSEC1:
        signed_file = tmp_path / 'signed.xml'
        cert_file = tmp_path / 'cert.pem'
        signed_file.write_bytes(data)
        cert_file.write_bytes(cert.public_bytes(Encoding.PEM))
        outcome = subprocess.run([XMLSEC1, '--verify', '--id-attr:Id',
                                  'http://uri.etsi.org/01903/v1.3.2#:SignedProperties', '--id-attr:Id',
                                  '%s:KeyInfo' % DS, '--pubkey-cert-pem', str(cert_file), str(signed_file)],
                                 capture_output=True, check=False)
        assert outcome.returncode != 0


@pytest.mark.skipif(XMLSEC1 is None, reason='xmlsec1 CLI not installed')
@pytest.mark.parametrize('c14n', sorted(C14N_URIS))
@pytest.mark.parametrize('document_transform', ['enveloped', 'xpath', 'filter2'])
@pytest.mark.parametrize('seal', ['ec_seal', 'rsa_seal'])
def test_xmlsec1_xades_accepted(request, tmp_path, seal, c14n, document_transform):
    nip, cert, key = request.getfixturevalue(seal)
    method = ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else RSA_SHA256
    template = xades_template(auth_request(nip), cert, c14n=c14n, signature_method=method,
                              document_transform=document_transform)
    result = verify_auth_request(xmlsec1_sign(template, key, cert, tmp_path))
    assert (result.context_value, result.signer_certificate) == (nip, cert)


@pytest.mark.skipif(XMLSEC1 is None, reason='xmlsec1 CLI not installed')
def test_filter2_leaving_challenge_unsigned_refused(ec_seal, tmp_path):
    nip, cert, key = ec_seal
    template = xades_template(auth_request(nip), cert, document_transform='filter2-challenge')
    signed = xmlsec1_sign(template, key, cert, tmp_path)
    error = rejected(signed.replace(CHALLENGE.encode(), OTHER_CHALLENGE.encode()))
    assert error.code == 9105
    assert 'may only remove the ds:Signature' in error.details[0]


def test_namespace_21_and_allowed_ips(ec_seal):
    nip, cert, key = ec_seal
    policy = ('<AuthorizationPolicy><AllowedIps><Ip4Address>10.0.0.1</Ip4Address>'
              '<Ip4Range>10.1.0.1-10.1.0.9</Ip4Range><Ip4Mask>192.168.0.0/16</Ip4Mask></AllowedIps>'
              '</AuthorizationPolicy>')
    result = verify_auth_request(signxml_sign(auth_request(nip, namespace=NS21, policy=policy), key, cert))
    assert result.namespace == NS21
    assert result.allowed_ips == {'ip4Addresses': ['10.0.0.1'], 'ip4Ranges': ['10.1.0.1-10.1.0.9'],
                                  'ip4Masks': ['192.168.0.0/16']}


def test_fingerprint_subject_without_nip_accepted(ec_seal):
    nip = ec_seal[0]
    # A certificate without NIP/PESEL (e.g. a foreign one): only certificateFingerprint can use it.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.COMMON_NAME, 'No id')]),
                      x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, 'DE')])])
    now = datetime.datetime.now(datetime.timezone.utc)
    plain = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(7).not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    result = verify_auth_request(signxml_sign(auth_request(nip, subject_type='certificateFingerprint'), key, plain))
    assert result.subject_identifier_type == 'certificateFingerprint'
    error = rejected(signxml_sign(auth_request(nip), key, plain))
    assert error.code == 21117


# ---------------------------------------------------------------------------------------------
# tampering and refusals


def test_changed_challenge_after_signing(signed_ec):
    error = rejected(signed_ec.replace(CHALLENGE.encode(), OTHER_CHALLENGE.encode()))
    assert error.code == 9105
    assert "wrong digest for reference URI=''" in error.details[0]


def test_changed_context_after_signing(ec_seal, signed_ec):
    nip = ec_seal[0]
    other_nip = testcerts.valid_nip()
    error = rejected(signed_ec.replace(('<Nip>%s</Nip>' % nip).encode(), ('<Nip>%s</Nip>' % other_nip).encode()))
    assert error.code == 9105
    assert 'wrong digest' in error.details[0]


def _replace_signature_value(data, transform):
    root = etree.fromstring(data)
    value = root.find('.//{%s}SignatureValue' % DS)
    value.text = base64.b64encode(transform(base64.b64decode(value.text))).decode()
    return etree.tostring(root)


def test_changed_signature_value(signed_ec):
    flipped = _replace_signature_value(signed_ec, lambda raw: raw[:-1] + bytes([raw[-1] ^ 0x01]))
    error = rejected(flipped)
    assert error.code == 9105
    assert 'SignatureValue does not verify' in error.details[0]


def test_der_encoded_ecdsa_refused(signed_ec):
    def to_der(raw):
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], 'big'), int.from_bytes(raw[half:], 'big'))

    error = rejected(_replace_signature_value(signed_ec, to_der))
    assert error.code == 9105
    assert 'DER-encoded' in error.details[0]


@pytest.mark.skipif(XMLSEC1 is None, reason='xmlsec1 CLI not installed')
def test_wrong_signing_certificate_digest(ec_seal, rsa_seal, tmp_path):
    nip, cert, key = ec_seal
    template = xades_template(auth_request(nip), cert, cert_digest_of=rsa_seal[1])
    error = rejected(xmlsec1_sign(template, key, cert, tmp_path))
    assert error.code == 9105
    assert 'not compliant with accepted XAdES profiles' in error.details[0]
    assert 'CertDigest does not match' in error.details[0]


def test_missing_signed_properties(ec_seal):
    nip, cert, key = ec_seal
    # Plain XMLDSig (no XAdES block) from signxml's XMLSigner: cryptographically valid, not XAdES.
    error = rejected(signxml_sign(auth_request(nip), key, cert, signer_class=XMLSigner))
    assert error.code == 9105
    assert error.details[0].startswith('signature format not compliant with accepted XAdES profiles')


def test_rsa_1024_signer_refused():
    nip = testcerts.valid_nip()
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert, key = testcerts.make_seal(nip, key=weak_key)
    error = rejected(signxml_sign(auth_request(nip), key, cert))
    assert error.code == 9105
    assert '1024 bits is too short' in error.details[0]


def test_detached_signature_refused(ec_seal):
    nip, cert, key = ec_seal
    document = etree.fromstring(auth_request(nip).encode())
    detached = XAdESSigner(method=methods.detached, signature_algorithm=SignatureMethod.ECDSA_SHA256,
                           digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0)
    signature = detached.sign(document, key=key, cert=[cert], reference_uri='https://example.invalid/auth.xml')
    assert rejected(etree.tostring(signature)).code == 9105
    # The same detached signature placed inside the request still signs no part of it.
    document.append(signature)
    error = rejected(etree.tostring(document))
    assert error.code == 9105
    assert 'detached' in error.details[0]


def test_two_signatures(signed_ec):
    root = etree.fromstring(signed_ec)
    root.append(copy.deepcopy(root.find('{%s}Signature' % DS)))
    assert rejected(etree.tostring(root)).code == 9103


def test_no_signature(ec_seal):
    assert rejected(auth_request(ec_seal[0]).encode()).code == 9102


def test_signature_not_child_of_root(signed_ec):
    root = etree.fromstring(signed_ec)
    signature = root.find('{%s}Signature' % DS)
    root.find('{%s}ContextIdentifier' % NS20).append(signature)
    error = rejected(etree.tostring(root))
    assert error.code == 9105
    assert 'child of the AuthTokenRequest' in error.details[0]


def test_schema_invalid_nip(ec_seal):
    nip, cert, key = ec_seal
    error = rejected(signxml_sign(auth_request('0123456789'), key, cert))
    assert error.code == 21401
    assert any('Nip' in detail for detail in error.details)


def test_schema_invalid_ip_in_20_document(ec_seal):
    nip, cert, key = ec_seal
    policy = '<AuthorizationPolicy><AllowedIps><Ip4Address>300.1.1.1</Ip4Address></AllowedIps></AuthorizationPolicy>'
    error = rejected(signxml_sign(auth_request(nip, policy=policy), key, cert))
    assert error.code == 21401
    assert all(NS21 not in detail for detail in error.details)


def test_expired_signer_certificate():
    nip = testcerts.valid_nip()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key = testcerts.make_seal(nip, not_before=now - datetime.timedelta(days=400),
                                    not_after=now - datetime.timedelta(days=1))
    error = rejected(signxml_sign(auth_request(nip), key, cert))
    assert error.code == 21115
    assert 'expired' in error.details[0]


def test_not_yet_valid_signer_certificate():
    nip = testcerts.valid_nip()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key = testcerts.make_seal(nip, not_before=now + datetime.timedelta(days=1),
                                    not_after=now + datetime.timedelta(days=10))
    assert rejected(signxml_sign(auth_request(nip), key, cert)).code == 21115


def test_unparseable_certificate(signed_ec):
    root = etree.fromstring(signed_ec)
    root.find('.//{%s}X509Certificate' % DS).text = base64.b64encode(b'not a certificate').decode()
    assert rejected(etree.tostring(root)).code == 21115


def test_seal_with_given_name_refused():
    nip = testcerts.valid_nip()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.RelativeDistinguishedName([a]) for a in (
        x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, 'Firma'),
        x509.NameAttribute(x509.ObjectIdentifier('2.5.4.97'), 'VATPL-%s' % nip),
        x509.NameAttribute(x509.NameOID.GIVEN_NAME, 'Jan'),
        x509.NameAttribute(x509.NameOID.COMMON_NAME, 'Firma'),
        x509.NameAttribute(x509.NameOID.COUNTRY_NAME, 'PL'))])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(9).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    error = rejected(signxml_sign(auth_request(nip), key, cert))
    assert error.code == 21115
    assert 'givenName' in error.details[0]


@pytest.mark.parametrize('body, code', [
    (b'', 21001),
    (b'<AuthTokenRequest', 21001),
    (b'<?xml version="1.0" encoding="utf-8"?><AuthTokenRequest>\xc3\x28</AuthTokenRequest>', 21217),
    (b'<?xml version="1.0" encoding="no-such-encoding"?><AuthTokenRequest/>', 21217),
])
def test_unreadable_documents(body, code):
    assert rejected(body).code == code


def test_entities_are_not_expanded(ec_seal):
    body = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + auth_request(ec_seal[0]).replace(CHALLENGE, '&x;')).encode()
    error = rejected(body)
    assert error.code == 9101
    assert 'root:' not in str(error)


def test_unsupported_signature_method(signed_ec):
    root = etree.fromstring(signed_ec)
    root.find('.//{%s}SignatureMethod' % DS).set('Algorithm', 'http://www.w3.org/2000/09/xmldsig#hmac-sha1')
    error = rejected(etree.tostring(root))
    assert error.code == 9105
    assert 'SignatureMethod' in error.details[0]
