# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""AuthTokenRequest XML and its XAdES-BES enveloped signature (lxml only).

The signature follows what the official KSeF clients produce (ds:Signature Id="Signature" appended
as the last child of the root, two references, signed SigningTime + SigningCertificate). SignedInfo
is canonicalized with exclusive C14N (as the Java client / EU DSS do): unlike C14N 1.0 it does not
pull the AuthTokenRequest default namespace into the signed bytes, so the result does not depend on
how the document around the signature declares its namespaces.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import hashlib
import re

try:
    from lxml import etree
    HAS_LXML = True
    LXML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    etree = None
    HAS_LXML = False
    LXML_IMPORT_ERROR = exc

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError

AUTH_NS = 'http://ksef.mf.gov.pl/auth/token/2.0'
DS_NS = 'http://www.w3.org/2000/09/xmldsig#'
XADES_NS = 'http://uri.etsi.org/01903/v1.3.2#'

EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#'
ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature'
SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256'
RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'
ECDSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256'
SIGNED_PROPERTIES_TYPE = 'http://uri.etsi.org/01903#SignedProperties'

SIGNATURE_ID = 'Signature'
SIGNED_PROPERTIES_ID = 'SignedProperties'

CONTEXT_ELEMENTS = {
    'nip': 'Nip',
    'internal_id': 'InternalId',
    'nip_vat_ue': 'NipVatUe',
    'peppol_id': 'PeppolId',
}
SUBJECT_IDENTIFIER_TYPES = {
    'certificate_subject': 'certificateSubject',
    'certificate_fingerprint': 'certificateFingerprint',
}

_OCTET = r'(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])'
_IPV4 = r'(%s\.){3}%s' % (_OCTET, _OCTET)
IP4_ADDRESS = re.compile(_IPV4)
IP4_RANGE = re.compile(r'%s-%s' % (_IPV4, _IPV4))
IP4_MASK = re.compile(r'%s/(3[0-2]|[12][0-9]|[0-9])' % _IPV4)
MAX_PER_IP_KIND = 10


def classify_allowed_ips(entries):
    """Split auth_allowed_ips entries into {'ip4Addresses': [...], 'ip4Ranges': [...], 'ip4Masks': [...]}.

    Accepts 'a.b.c.d', 'a.b.c.d-e.f.g.h' (spaces around '-' are dropped) and 'a.b.c.d/n'.
    """
    result = {'ip4Addresses': [], 'ip4Ranges': [], 'ip4Masks': []}
    for entry in entries or []:
        value = re.sub(r'\s*-\s*', '-', str(entry).strip())
        if IP4_ADDRESS.fullmatch(value):
            result['ip4Addresses'].append(value)
        elif IP4_RANGE.fullmatch(value):
            result['ip4Ranges'].append(value)
        elif IP4_MASK.fullmatch(value):
            result['ip4Masks'].append(value)
        else:
            raise KsefInputError('auth_allowed_ips entry %r is not an IPv4 address (a.b.c.d), range (a.b.c.d-e.f.g.h) '
                                 'or mask (a.b.c.d/n)' % str(entry))
    for kind, values in result.items():
        if len(values) > MAX_PER_IP_KIND:
            raise KsefInputError('auth_allowed_ips: KSeF accepts at most %d entries of each kind, got %d %s'
                                 % (MAX_PER_IP_KIND, len(values), kind))
    return result


def _sub(parent, ns, name, text=None, **attrs):
    element = etree.SubElement(parent, '{%s}%s' % (ns, name))
    for key, value in attrs.items():
        element.set(key, value)
    if text is not None:
        element.text = text
    return element


def build_auth_token_request(challenge, context_type, context_id, subject_identifier_type='certificate_subject',
                             allowed_ips=None):
    """The unsigned AuthTokenRequest element (namespace 2.0, as the official clients emit)."""
    if context_type not in CONTEXT_ELEMENTS:
        raise KsefInputError('unsupported context_type %r' % context_type)
    if subject_identifier_type not in SUBJECT_IDENTIFIER_TYPES:
        raise KsefInputError('unsupported auth_subject_identifier_type %r' % subject_identifier_type)
    root = etree.Element('{%s}AuthTokenRequest' % AUTH_NS, nsmap={None: AUTH_NS})
    _sub(root, AUTH_NS, 'Challenge', challenge)
    context = _sub(root, AUTH_NS, 'ContextIdentifier')
    _sub(context, AUTH_NS, CONTEXT_ELEMENTS[context_type], context_id)
    _sub(root, AUTH_NS, 'SubjectIdentifierType', SUBJECT_IDENTIFIER_TYPES[subject_identifier_type])
    if allowed_ips:
        classified = classify_allowed_ips(allowed_ips)
        policy = _sub(root, AUTH_NS, 'AuthorizationPolicy')
        allowed = _sub(policy, AUTH_NS, 'AllowedIps')
        # The schema orders the kinds: all Ip4Address, then Ip4Range, then Ip4Mask.
        for kind, element_name in (('ip4Addresses', 'Ip4Address'), ('ip4Ranges', 'Ip4Range'), ('ip4Masks', 'Ip4Mask')):
            for value in classified[kind]:
                _sub(allowed, AUTH_NS, element_name, value)
    return root


def _exc_c14n(node):
    return etree.tostring(node, method='c14n', exclusive=True, with_comments=False)


def _digest_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode('ascii')


def _signing_time(now=None):
    # The official clients back-date SigningTime by one minute against clock skew.
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return (now - datetime.timedelta(minutes=1)).strftime('%Y-%m-%dT%H:%M:%SZ')


def prepare_signature(root, certificate, certificate_der, key_type, now=None):
    """Append the XAdES-BES enveloped signature to root (in place) with an empty SignatureValue; return the bytes
    its signature covers (the exclusive C14N of SignedInfo).

    Split from sign_enveloped so that a key elsewhere (kept on a managed host) signs only these bytes:
    attach_signature_value() then fills the SignatureValue in.
    """
    is_rsa = key_type == 'rsa'

    # Reference 1 (URI="", enveloped-signature + exc-c14n) covers the document without the signature.
    document_digest = _digest_b64(_exc_c14n(root))

    signature = etree.SubElement(root, '{%s}Signature' % DS_NS, nsmap={'ds': DS_NS})
    signature.set('Id', SIGNATURE_ID)
    signed_info = _sub(signature, DS_NS, 'SignedInfo')
    _sub(signed_info, DS_NS, 'CanonicalizationMethod', Algorithm=EXC_C14N)
    _sub(signed_info, DS_NS, 'SignatureMethod', Algorithm=RSA_SHA256 if is_rsa else ECDSA_SHA256)

    ref_document = _sub(signed_info, DS_NS, 'Reference', URI='')
    transforms = _sub(ref_document, DS_NS, 'Transforms')
    _sub(transforms, DS_NS, 'Transform', Algorithm=ENVELOPED)
    _sub(transforms, DS_NS, 'Transform', Algorithm=EXC_C14N)
    _sub(ref_document, DS_NS, 'DigestMethod', Algorithm=SHA256)
    _sub(ref_document, DS_NS, 'DigestValue', document_digest)

    ref_properties = _sub(signed_info, DS_NS, 'Reference', URI='#' + SIGNED_PROPERTIES_ID, Type=SIGNED_PROPERTIES_TYPE)
    transforms = _sub(ref_properties, DS_NS, 'Transforms')
    _sub(transforms, DS_NS, 'Transform', Algorithm=EXC_C14N)
    _sub(ref_properties, DS_NS, 'DigestMethod', Algorithm=SHA256)
    properties_digest = _sub(ref_properties, DS_NS, 'DigestValue')

    _sub(signature, DS_NS, 'SignatureValue')
    key_info = _sub(signature, DS_NS, 'KeyInfo')
    x509_data = _sub(key_info, DS_NS, 'X509Data')
    _sub(x509_data, DS_NS, 'X509Certificate', base64.b64encode(certificate_der).decode('ascii'))

    ds_object = _sub(signature, DS_NS, 'Object')
    qualifying = etree.SubElement(ds_object, '{%s}QualifyingProperties' % XADES_NS, nsmap={'xades': XADES_NS})
    qualifying.set('Target', '#' + SIGNATURE_ID)
    signed_properties = _sub(qualifying, XADES_NS, 'SignedProperties', Id=SIGNED_PROPERTIES_ID)
    signature_properties = _sub(signed_properties, XADES_NS, 'SignedSignatureProperties')
    _sub(signature_properties, XADES_NS, 'SigningTime', _signing_time(now))
    cert_element = _sub(_sub(signature_properties, XADES_NS, 'SigningCertificate'), XADES_NS, 'Cert')
    cert_digest = _sub(cert_element, XADES_NS, 'CertDigest')
    _sub(cert_digest, DS_NS, 'DigestMethod', Algorithm=SHA256)
    _sub(cert_digest, DS_NS, 'DigestValue', _digest_b64(certificate_der))
    issuer_serial = _sub(cert_element, XADES_NS, 'IssuerSerial')
    _sub(issuer_serial, DS_NS, 'X509IssuerName', certificate.issuer.rfc4514_string())
    _sub(issuer_serial, DS_NS, 'X509SerialNumber', str(certificate.serial_number))

    properties_digest.text = _digest_b64(_exc_c14n(signed_properties))
    return _exc_c14n(signed_info)


def _signature_element(root, name):
    found = root.find('{%s}Signature/{%s}%s' % (DS_NS, DS_NS, name))
    if found is None:
        raise KsefInputError('the document has no ds:Signature/ds:%s to fill in' % name)
    return found


def attach_signature_value(root, signature_value):
    """Fill in the SignatureValue of a document made by prepare_signature; return the serialized document bytes."""
    _signature_element(root, 'SignatureValue').text = base64.b64encode(signature_value).decode('ascii')
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding='UTF-8')


def parse_prepared(document):
    """(root, the bytes its signature covers) of a document prepare_signature made and serialized, read back
    without entities or network access."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as exc:
        raise KsefInputError('the prepared document is not XML: %s' % exc)
    return root, _exc_c14n(_signature_element(root, 'SignedInfo'))


def references_match(root):
    """True when both references of the document's signature (the document itself, enveloped, and its
    SignedProperties) still carry the digests of what they cover: nothing changed since prepare_signature."""
    signature = root.find('{%s}Signature' % DS_NS)
    if signature is None:
        return False
    digests = [reference.findtext('{%s}DigestValue' % DS_NS) for reference in signature.iter('{%s}Reference' % DS_NS)]
    properties = signature.find('.//{%s}SignedProperties' % XADES_NS)
    if len(digests) != 2 or properties is None:
        return False
    parent, index = signature.getparent(), signature.getparent().index(signature)
    parent.remove(signature)
    try:
        document_digest = _digest_b64(_exc_c14n(root))
    finally:
        parent.insert(index, signature)
    return digests == [document_digest, _digest_b64(_exc_c14n(properties))]


def unsigned_document(root):
    """The serialized document with its empty SignatureValue, to carry between prepare_signature and
    attach_signature_value."""
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding='UTF-8')


def sign_enveloped(root, credentials, now=None):
    """Append a XAdES-BES enveloped signature to root (in place) and return the serialized document bytes.

    credentials is a signer: .certificate, .certificate_der, .key_type ('rsa' or 'ec') and .sign(data), which
    returns the RSA PKCS#1 v1.5 SHA-256 signature or the raw r||s ECDSA SHA-256 one. A file key
    (_credentials.SignerCredentials) and a PKCS#11 token key (_pkcs11.TokenSigner) produce the same document.
    """
    signed_info = prepare_signature(root, credentials.certificate, credentials.certificate_der, credentials.key_type, now)
    return attach_signature_value(root, credentials.sign(signed_info))


def signed_auth_token_request(credentials, challenge, context_type, context_id,
                              subject_identifier_type='certificate_subject', allowed_ips=None, now=None):
    """Build and sign the AuthTokenRequest; return the XML bytes for KsefAuthApi.xades_signature()."""
    root = build_auth_token_request(challenge, context_type, context_id, subject_identifier_type, allowed_ips)
    return sign_enveloped(root, credentials, now=now)
