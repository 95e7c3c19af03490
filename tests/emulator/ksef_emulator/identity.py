"""Who signed: the KSeF subject identity of a signer certificate, its enrollment data, and CSR matching.

Rules from SPEC.md 3.3 / 4.2: a personal certificate carries givenName, surname, serialNumber
(`TINPL-<nip>` / `PNOPL-<pesel>`), commonName and countryName; a seal carries organizationName,
organizationIdentifier (`VATPL-<nip>`), commonName and countryName and no givenName/surname.
"""

import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .xades_verify import CODE_INVALID_CERTIFICATE, CODE_SUBJECT_IDENTIFIER, XadesRejected

OID_COMMON_NAME = x509.ObjectIdentifier('2.5.4.3')
OID_SURNAME = x509.ObjectIdentifier('2.5.4.4')
OID_SERIAL_NUMBER = x509.ObjectIdentifier('2.5.4.5')
OID_COUNTRY_NAME = x509.ObjectIdentifier('2.5.4.6')
OID_ORGANIZATION_NAME = x509.ObjectIdentifier('2.5.4.10')
OID_GIVEN_NAME = x509.ObjectIdentifier('2.5.4.42')
OID_UNIQUE_IDENTIFIER = x509.ObjectIdentifier('2.5.4.45')
OID_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier('2.5.4.97')

# CertificateEnrollmentDataResponse field -> OID, in openapi.json property order.
ENROLLMENT_FIELDS = (
    ('commonName', OID_COMMON_NAME),
    ('countryName', OID_COUNTRY_NAME),
    ('givenName', OID_GIVEN_NAME),
    ('surname', OID_SURNAME),
    ('serialNumber', OID_SERIAL_NUMBER),
    ('uniqueIdentifier', OID_UNIQUE_IDENTIFIER),
    ('organizationName', OID_ORGANIZATION_NAME),
    ('organizationIdentifier', OID_ORGANIZATION_IDENTIFIER),
)
FIELD_BY_OID = {oid: field for field, oid in ENROLLMENT_FIELDS}

SEAL_NIP_PATTERN = re.compile(r'(VATPL).*?(\d{10})')
PERSON_PESEL_PATTERN = re.compile(r'(PNOPL|PESEL).*?(\d{11})')
PERSON_NIP_PATTERN = re.compile(r'(TINPL|NIP).*?(\d{10})')

PERSON_REQUIRED = (OID_GIVEN_NAME, OID_SURNAME, OID_SERIAL_NUMBER, OID_COMMON_NAME, OID_COUNTRY_NAME)
SEAL_REQUIRED = (OID_ORGANIZATION_NAME, OID_ORGANIZATION_IDENTIFIER, OID_COMMON_NAME, OID_COUNTRY_NAME)
SEAL_FORBIDDEN = (OID_GIVEN_NAME, OID_SURNAME)


@dataclass
class SubjectIdentity:
    type: str   # 'Nip' | 'Pesel' | 'Fingerprint' (CertificateSubjectIdentifierType)
    value: str


def _attribute_text(value):
    # uniqueIdentifier is a BIT STRING in X.520; clients that put text there get it back as bytes.
    if isinstance(value, bytes):
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            return value.hex().upper()
    return value


def _name_values(name):
    """OID -> list of string values, in the order they appear in the Name."""
    values = {}
    for attribute in name:
        values.setdefault(attribute.oid, []).append(_attribute_text(attribute.value))
    return values


def _first(values, oid):
    found = values.get(oid)
    return found[0] if found else None


def certificate_fingerprint(cert):
    """SHA-256 of the certificate DER, uppercase hex (as the official clients compute it)."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()


def _missing(values, required):
    return [FIELD_BY_OID[oid] for oid in required if not _first(values, oid)]


def subject_identity(cert, subject_identifier_type):
    """Identity KSeF derives from a signer certificate; raises XadesRejected when there is none."""
    if subject_identifier_type == 'certificateFingerprint':
        return SubjectIdentity('Fingerprint', certificate_fingerprint(cert))
    if subject_identifier_type != 'certificateSubject':
        raise XadesRejected(CODE_SUBJECT_IDENTIFIER, ['unknown SubjectIdentifierType %r' % subject_identifier_type])

    values = _name_values(cert.subject)
    for serial_number in values.get(OID_SERIAL_NUMBER, []):
        pesel = PERSON_PESEL_PATTERN.search(serial_number)
        nip = PERSON_NIP_PATTERN.search(serial_number)
        if pesel or nip:
            missing = _missing(values, PERSON_REQUIRED)
            if missing:
                raise XadesRejected(CODE_INVALID_CERTIFICATE, ['personal certificate subject lacks required '
                                                               'attributes: %s' % ', '.join(missing)])
            if pesel:
                return SubjectIdentity('Pesel', pesel.group(2))
            return SubjectIdentity('Nip', nip.group(2))

    for organization_identifier in values.get(OID_ORGANIZATION_IDENTIFIER, []):
        nip = SEAL_NIP_PATTERN.search(organization_identifier)
        if nip:
            forbidden = [FIELD_BY_OID[oid] for oid in SEAL_FORBIDDEN if values.get(oid)]
            if forbidden:
                raise XadesRejected(CODE_INVALID_CERTIFICATE, ['seal certificate subject must not carry: %s'
                                                               % ', '.join(forbidden)])
            missing = _missing(values, SEAL_REQUIRED)
            if missing:
                raise XadesRejected(CODE_INVALID_CERTIFICATE, ['seal certificate subject lacks required '
                                                               'attributes: %s' % ', '.join(missing)])
            return SubjectIdentity('Nip', nip.group(2))

    raise XadesRejected(CODE_SUBJECT_IDENTIFIER, [
        'certificateSubject requires a NIP or PESEL in the certificate subject (serialNumber TINPL-/PNOPL- or '
        'organizationIdentifier VATPL-); use certificateFingerprint for certificates without one'])


def _joined(values, oid):
    # A repeated attribute (e.g. two givenName RDNs) is reported as one space-separated string:
    # the API has a single givenName since RC5 (SPEC.md 10.1).
    found = values.get(oid)
    return ' '.join(found) if found else None


def enrollment_data(cert):
    """CertificateEnrollmentDataResponse: subject values copied verbatim, None where absent."""
    values = _name_values(cert.subject)
    return {field: _joined(values, oid) for field, oid in ENROLLMENT_FIELDS}


def csr_subject_matches(csr_subject, data):
    """True when the CSR subject carries exactly the non-null enrollment data values.

    RDN order and ASN.1 string types are ignored (the C# and Java clients differ in both).
    """
    values = _name_values(csr_subject)
    if any(oid not in FIELD_BY_OID for oid in values):
        return False
    for field, oid in ENROLLMENT_FIELDS:
        expected = data.get(field)
        actual = _joined(values, oid)
        if expected in (None, ''):
            if actual is not None:
                return False
        elif actual != expected:
            return False
    return True


def certificate_kind(cert):
    """'seal', 'person' or None, from the subject attributes."""
    values = _name_values(cert.subject)
    if values.get(OID_GIVEN_NAME) or values.get(OID_SURNAME):
        return 'person'
    if values.get(OID_ORGANIZATION_IDENTIFIER) or values.get(OID_ORGANIZATION_NAME):
        return 'seal'
    return None


# code -> (displayName, deprecated AuthenticationMethod enum). Only 'xades.qualified-seal' /
# 'Pieczęć kwalifikowana' appears in openapi.json; the other codes follow the same scheme.
AUTHENTICATION_METHODS = {
    'xades.qualified-seal': ('Pieczęć kwalifikowana', 'QualifiedSeal'),
    'xades.qualified-signature': ('Podpis kwalifikowany', 'QualifiedSignature'),
    'xades.internal-certificate': ('Certyfikat KSeF', 'InternalCertificate'),
}


def authentication_method_code(cert, identity, internal_ca_subject=None):
    if internal_ca_subject is not None and cert.issuer == internal_ca_subject:
        return 'xades.internal-certificate'
    if certificate_kind(cert) == 'seal':
        return 'xades.qualified-seal'
    return 'xades.qualified-signature'


def authentication_method_info(cert, identity, internal_ca_subject=None):
    """AuthenticationMethodInfo for GET /auth/{referenceNumber}.

    `internal_ca_subject` (x509.Name of the emulator CA) marks KSeF-issued certificates.
    """
    code = authentication_method_code(cert, identity, internal_ca_subject)
    return {'category': 'XadesSignature', 'code': code, 'displayName': AUTHENTICATION_METHODS[code][0]}


def authentication_method(cert, identity, internal_ca_subject=None):
    """The deprecated AuthenticationMethod enum value matching authentication_method_info."""
    return AUTHENTICATION_METHODS[authentication_method_code(cert, identity, internal_ca_subject)][1]
