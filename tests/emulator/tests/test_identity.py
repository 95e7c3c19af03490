"""Subject identity, enrollment data and CSR subject matching."""

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ksef_emulator import testcerts
from ksef_emulator.identity import (SubjectIdentity, authentication_method, authentication_method_info,
                                    csr_subject_matches, enrollment_data, subject_identity)
from ksef_emulator.xades_verify import XadesRejected

OID_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier('2.5.4.97')
GIVEN = 'Zażółć'
SURNAME = 'Gęślą-Jaźń'


def self_signed(attributes):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)])
                      for oid, value in attributes])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


def csr_subject(attributes):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value, *rest)])
                      for oid, value, *rest in attributes])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return x509.load_der_x509_csr(csr.public_bytes(Encoding.DER)).subject


def test_seal_identity_is_vatpl_nip():
    nip = testcerts.valid_nip()
    cert, dummy = testcerts.make_seal(nip)
    assert subject_identity(cert, 'certificateSubject') == SubjectIdentity('Nip', nip)


def test_person_identity_pesel_with_polish_letters():
    pesel = testcerts.valid_pesel()
    cert, dummy = testcerts.make_person(GIVEN, SURNAME, pesel=pesel)
    assert subject_identity(cert, 'certificateSubject') == SubjectIdentity('Pesel', pesel)


def test_person_identity_tinpl_nip():
    nip = testcerts.valid_nip()
    cert, dummy = testcerts.make_person(GIVEN, SURNAME, nip=nip)
    assert subject_identity(cert, 'certificateSubject') == SubjectIdentity('Nip', nip)


@pytest.mark.parametrize('serial_number, expected', [
    ('PESEL:90010112345', ('Pesel', '90010112345')),
    ('NIP-5260250274', ('Nip', '5260250274')),
    ('TINPL 5260250274', ('Nip', '5260250274')),
])
def test_person_identity_accepts_documented_serial_number_forms(serial_number, expected):
    cert = self_signed([(NameOID.GIVEN_NAME, 'Jan'), (NameOID.SURNAME, 'Nowak'),
                        (NameOID.SERIAL_NUMBER, serial_number), (NameOID.COMMON_NAME, 'Jan Nowak'),
                        (NameOID.COUNTRY_NAME, 'PL')])
    identity = subject_identity(cert, 'certificateSubject')
    assert (identity.type, identity.value) == expected


def test_fingerprint_identity_is_uppercase_sha256_of_der():
    cert, dummy = testcerts.make_seal(testcerts.valid_nip())
    identity = subject_identity(cert, 'certificateFingerprint')
    assert identity.type == 'Fingerprint'
    assert identity.value == hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    assert len(identity.value) == 64


def test_no_identity_for_certificate_subject():
    cert = self_signed([(NameOID.COMMON_NAME, 'Someone'), (NameOID.COUNTRY_NAME, 'DE')])
    with pytest.raises(XadesRejected) as info:
        subject_identity(cert, 'certificateSubject')
    assert info.value.code == 21117


def test_person_missing_required_attribute():
    cert = self_signed([(NameOID.GIVEN_NAME, 'Jan'), (NameOID.SERIAL_NUMBER, 'TINPL-5260250274'),
                        (NameOID.COMMON_NAME, 'Jan'), (NameOID.COUNTRY_NAME, 'PL')])
    with pytest.raises(XadesRejected) as info:
        subject_identity(cert, 'certificateSubject')
    assert info.value.code == 21115
    assert 'surname' in info.value.details[0]


def test_seal_with_surname_refused():
    cert = self_signed([(NameOID.ORGANIZATION_NAME, 'Firma'), (OID_ORGANIZATION_IDENTIFIER, 'VATPL-5260250274'),
                        (NameOID.SURNAME, 'Nowak'), (NameOID.COMMON_NAME, 'Firma'), (NameOID.COUNTRY_NAME, 'PL')])
    with pytest.raises(XadesRejected) as info:
        subject_identity(cert, 'certificateSubject')
    assert info.value.code == 21115
    assert 'surname' in info.value.details[0]


def test_enrollment_data_person_verbatim():
    pesel = testcerts.valid_pesel()
    cert, dummy = testcerts.make_person(GIVEN, SURNAME, pesel=pesel, common_name='Zażółć Gęślą-Jaźń (test)')
    assert enrollment_data(cert) == {
        'commonName': 'Zażółć Gęślą-Jaźń (test)',
        'countryName': 'PL',
        'givenName': GIVEN,
        'surname': SURNAME,
        'serialNumber': 'PNOPL-%s' % pesel,
        'uniqueIdentifier': None,
        'organizationName': None,
        'organizationIdentifier': None,
    }


def test_enrollment_data_seal():
    nip = testcerts.valid_nip()
    cert, dummy = testcerts.make_seal(nip, organization_name='Spółka Żółta sp. z o.o.', common_name='Pieczęć')
    data = enrollment_data(cert)
    assert data['organizationName'] == 'Spółka Żółta sp. z o.o.'
    assert data['organizationIdentifier'] == 'VATPL-%s' % nip
    assert data['commonName'] == 'Pieczęć'
    assert data['givenName'] is None and data['surname'] is None and data['serialNumber'] is None


def _csharp_order(data):
    """Attribute order and string types of the C# client (SPEC.md 9.2)."""
    order = [('commonName', NameOID.COMMON_NAME), ('surname', NameOID.SURNAME), ('givenName', NameOID.GIVEN_NAME),
             ('organizationName', NameOID.ORGANIZATION_NAME),
             ('organizationIdentifier', OID_ORGANIZATION_IDENTIFIER), ('countryName', NameOID.COUNTRY_NAME),
             ('serialNumber', NameOID.SERIAL_NUMBER)]
    printable = {'countryName', 'serialNumber'}
    return [(oid, data[field], x509.name._ASN1Type.PrintableString if field in printable
             else x509.name._ASN1Type.UTF8String) for field, oid in order if data.get(field)]


def _java_order(data):
    order = [('commonName', NameOID.COMMON_NAME), ('surname', NameOID.SURNAME),
             ('organizationName', NameOID.ORGANIZATION_NAME),
             ('organizationIdentifier', OID_ORGANIZATION_IDENTIFIER), ('countryName', NameOID.COUNTRY_NAME),
             ('serialNumber', NameOID.SERIAL_NUMBER), ('givenName', NameOID.GIVEN_NAME)]
    return [(oid, data[field]) for field, oid in order if data.get(field)]


@pytest.mark.parametrize('builder', [_csharp_order, _java_order])
def test_csr_round_trip_person(builder):
    cert, dummy = testcerts.make_person(GIVEN, SURNAME, pesel=testcerts.valid_pesel())
    data = enrollment_data(cert)
    assert csr_subject_matches(csr_subject(builder(data)), data)


@pytest.mark.parametrize('builder', [_csharp_order, _java_order])
def test_csr_round_trip_seal(builder):
    cert, dummy = testcerts.make_seal(testcerts.valid_nip(), organization_name='Łódzka Spółka')
    data = enrollment_data(cert)
    assert csr_subject_matches(csr_subject(builder(data)), data)


def test_csr_changed_value_does_not_match():
    cert, dummy = testcerts.make_person(GIVEN, SURNAME, pesel=testcerts.valid_pesel())
    data = enrollment_data(cert)
    changed = dict(data, surname='Gesla-Jazn')  # ASCII-folded: a different value
    assert not csr_subject_matches(csr_subject(_java_order(changed)), data)


def test_csr_missing_attribute_does_not_match():
    cert, dummy = testcerts.make_seal(testcerts.valid_nip())
    data = enrollment_data(cert)
    assert not csr_subject_matches(csr_subject(_java_order(dict(data, organizationName=None))), data)


def test_csr_extra_attribute_does_not_match():
    cert, dummy = testcerts.make_seal(testcerts.valid_nip())
    data = enrollment_data(cert)
    extra = _java_order(data) + [(NameOID.LOCALITY_NAME, 'Warszawa')]
    assert not csr_subject_matches(csr_subject(extra), data)
    known_but_null = _java_order(data) + [(NameOID.GIVEN_NAME, 'Jan')]
    assert not csr_subject_matches(csr_subject(known_but_null), data)


def test_authentication_method_info():
    seal, dummy = testcerts.make_seal(testcerts.valid_nip())
    person, dummy = testcerts.make_person(GIVEN, SURNAME, pesel=testcerts.valid_pesel())
    seal_info = authentication_method_info(seal, subject_identity(seal, 'certificateSubject'))
    assert seal_info == {'category': 'XadesSignature', 'code': 'xades.qualified-seal',
                         'displayName': 'Pieczęć kwalifikowana'}
    assert authentication_method(seal, None) == 'QualifiedSeal'
    person_info = authentication_method_info(person, subject_identity(person, 'certificateSubject'))
    assert person_info['code'] == 'xades.qualified-signature'
    assert authentication_method(person, None) == 'QualifiedSignature'
    internal = authentication_method_info(person, None, internal_ca_subject=person.issuer)
    assert internal['code'] == 'xades.internal-certificate'
