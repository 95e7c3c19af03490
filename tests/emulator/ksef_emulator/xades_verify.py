"""Strict verifier of XAdES-signed AuthTokenRequest documents (POST /auth/xades-signature).

It follows what KSeF documents (SPEC.md 3.2-3.4) and what the official clients send (SPEC.md 9.1):
one enveloped ds:Signature, a schema-valid document, allowed algorithms only, every reference digest
recomputed, the SignatureValue checked with the KeyInfo certificate and a XAdES SignedProperties block
whose SigningCertificate digest matches that certificate.

The challenge value is *not* checked here: the server knows which challenges it issued.
"""

import base64
import copy
import datetime
import hmac
import os
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

DS_NS = 'http://www.w3.org/2000/09/xmldsig#'
XADES_NS = 'http://uri.etsi.org/01903/v1.3.2#'
EXC_C14N_NS = 'http://www.w3.org/2001/10/xml-exc-c14n#'
FILTER2_NS = 'http://www.w3.org/2002/06/xmldsig-filter2'
AUTH_NS_20 = 'http://ksef.mf.gov.pl/auth/token/2.0'
AUTH_NS_21 = 'http://ksef.mf.gov.pl/auth/token/2.1'
SIGNED_PROPERTIES_TYPE = 'http://uri.etsi.org/01903#SignedProperties'

XSD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'xsd')

# KSeF exception codes used by /auth/xades-signature (openapi.json, 400 description).
CODE_UNREADABLE = 21001
CODE_INVALID_CERTIFICATE = 21115
CODE_SUBJECT_IDENTIFIER = 21117
CODE_ENCODING = 21217
CODE_SCHEMA = 21401
CODE_INVALID_DOCUMENT = 9101
CODE_NO_SIGNATURE = 9102
CODE_TOO_MANY_SIGNATURES = 9103
CODE_INVALID_SIGNATURE = 9105

DESCRIPTIONS = {
    CODE_UNREADABLE: 'Nieczytelna treść.',
    CODE_INVALID_CERTIFICATE: 'Nieprawidłowy certyfikat.',
    CODE_SUBJECT_IDENTIFIER: 'Nieprawidłowy identyfikator podmiotu dla wskazanego typu kontekstu.',
    CODE_ENCODING: 'Nieprawidłowe kodowanie znaków.',
    CODE_SCHEMA: 'Dokument nie jest zgodny ze schemą (xsd).',
    CODE_INVALID_DOCUMENT: 'Nieprawidłowy dokument.',
    CODE_NO_SIGNATURE: 'Brak podpisu.',
    CODE_TOO_MANY_SIGNATURES: 'Przekroczona liczba dozwolonych podpisów.',
    CODE_INVALID_SIGNATURE: 'Nieprawidłowy podpis.',
}

NOT_XADES_COMPLIANT = 'signature format not compliant with accepted XAdES profiles'

# Canonicalization algorithm URI -> (exclusive, with_comments).
# C14N 1.1 differs from 1.0 only in how xml:id/xml:base/xml:lang of *omitted ancestors* are inherited
# into a document subset; lxml has no 1.1 serializer, so 1.1 is computed as 1.0 and documents that
# carry xml:* attributes (the only case where the two differ) are refused when 1.1 is used.
C14N_ALGORITHMS = {
    'http://www.w3.org/TR/2001/REC-xml-c14n-20010315': (False, False),
    'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments': (False, True),
    'http://www.w3.org/2006/12/xml-c14n11': (False, False),
    'http://www.w3.org/2006/12/xml-c14n11#WithComments': (False, True),
    'http://www.w3.org/2001/10/xml-exc-c14n#': (True, False),
    'http://www.w3.org/2001/10/xml-exc-c14n#WithComments': (True, True),
}
C14N11_ALGORITHMS = ('http://www.w3.org/2006/12/xml-c14n11', 'http://www.w3.org/2006/12/xml-c14n11#WithComments')

TRANSFORM_ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature'
TRANSFORM_XPATH = 'http://www.w3.org/TR/1999/REC-xpath-19991116'
TRANSFORM_FILTER2 = 'http://www.w3.org/2002/06/xmldsig-filter2'
TRANSFORM_BASE64 = 'http://www.w3.org/2000/09/xmldsig#base64'

DIGEST_ALGORITHMS = {
    'http://www.w3.org/2000/09/xmldsig#sha1': hashes.SHA1,
    'http://www.w3.org/2001/04/xmlenc#sha256': hashes.SHA256,
    'http://www.w3.org/2001/04/xmldsig-more#sha384': hashes.SHA384,
    'http://www.w3.org/2001/04/xmlenc#sha512': hashes.SHA512,
    'http://www.w3.org/2007/05/xmldsig-more#sha3-256': hashes.SHA3_256,
    'http://www.w3.org/2007/05/xmldsig-more#sha3-384': hashes.SHA3_384,
    'http://www.w3.org/2007/05/xmldsig-more#sha3-512': hashes.SHA3_512,
}

# SignatureMethod URI -> (key family, hash). RSA-PSS is documented by KSeF but reported rejected in
# practice (SPEC.md 3.3), so like the real service this emulator accepts only PKCS#1 v1.5 and ECDSA.
SIGNATURE_ALGORITHMS = {
    'http://www.w3.org/2000/09/xmldsig#rsa-sha1': ('rsa', hashes.SHA1),
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': ('rsa', hashes.SHA256),
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': ('rsa', hashes.SHA384),
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': ('rsa', hashes.SHA512),
    'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256': ('ec', hashes.SHA256),
    'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384': ('ec', hashes.SHA384),
    'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512': ('ec', hashes.SHA512),
}

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


class XadesRejected(Exception):
    """The document was refused; code/description/details map 1:1 to a KSeF ExceptionDetail."""

    def __init__(self, code, details=None, description=None):
        self.code = int(code)
        self.description = description or DESCRIPTIONS.get(self.code, 'Błąd weryfikacji dokumentu.')
        self.details = list(details or [])
        message = '%d: %s' % (self.code, self.description)
        if self.details:
            message += ' (%s)' % '; '.join(self.details)
        super().__init__(message)


@dataclass
class VerifiedAuthRequest:
    challenge: str
    context_type: str
    context_value: str
    subject_identifier_type: str
    signer_certificate: x509.Certificate
    allowed_ips: object  # dict with ip4Addresses/ip4Ranges/ip4Masks lists, or None
    namespace: str


def _ds(name):
    return '{%s}%s' % (DS_NS, name)


def _xades(name):
    return '{%s}%s' % (XADES_NS, name)


def _invalid_signature(detail):
    return XadesRejected(CODE_INVALID_SIGNATURE, [detail])


def _not_compliant(reason):
    return XadesRejected(CODE_INVALID_SIGNATURE, ['%s: %s' % (NOT_XADES_COMPLIANT, reason)])


# ---------------------------------------------------------------------------------------------
# parsing and schema


def _parse(xml_bytes):
    if not isinstance(xml_bytes, (bytes, bytearray)) or not xml_bytes.strip():
        raise XadesRejected(CODE_UNREADABLE, ['empty request body'])
    # No DTDs, no entity expansion, no network: the document is untrusted input.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=False, remove_pis=False)
    try:
        tree = etree.fromstring(bytes(xml_bytes), parser).getroottree()
    except etree.XMLSyntaxError as exc:
        text = str(exc)
        if 'encoding' in text.lower() or 'utf-8' in text.lower():
            raise XadesRejected(CODE_ENCODING, [text[:300]])
        raise XadesRejected(CODE_UNREADABLE, [text[:300]])
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XadesRejected(CODE_INVALID_DOCUMENT, ['DOCTYPE declarations are not allowed'])
    return tree


_SCHEMA_CACHE = {}


def _schema_v21():
    # 2.0 documents are validated with the 2.1 schema (same structure): libxml2 cannot compile the
    # non-XSD regex syntax (^, $, \b) of schemat_auth_v2-0.xsd.
    if 'v21' not in _SCHEMA_CACHE:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        schema_doc = etree.parse(os.path.join(XSD_DIR, 'schemat_auth_v2-1.xsd'), parser)
        _SCHEMA_CACHE['v21'] = etree.XMLSchema(schema_doc)
    return _SCHEMA_CACHE['v21']


def _renamespace(element, old_ns, new_ns):
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue
        qname = etree.QName(node)
        if qname.namespace == old_ns:
            node.tag = '{%s}%s' % (new_ns, qname.localname)


def _validate_schema(tree, signature):
    root = tree.getroot()
    namespace = etree.QName(root).namespace
    if namespace not in (AUTH_NS_20, AUTH_NS_21):
        raise XadesRejected(CODE_SCHEMA, ['root element %s is not an AuthTokenRequest of namespace %s or %s'
                                          % (root.tag, AUTH_NS_20, AUTH_NS_21)])
    unsigned = copy.deepcopy(root)
    for sig in unsigned.findall(_ds('Signature')):
        _remove_keep_tail(sig)
    if namespace == AUTH_NS_20:
        _renamespace(unsigned, AUTH_NS_20, AUTH_NS_21)
        # Re-serialize so that namespace declarations match the new element names.
        unsigned = etree.fromstring(etree.tostring(unsigned), etree.XMLParser(resolve_entities=False,
                                                                              no_network=True))
    schema = _schema_v21()
    if not schema.validate(unsigned):
        messages = []
        for error in schema.error_log:
            text = error.message.replace(AUTH_NS_21, namespace)
            messages.append('line %d: %s' % (error.line, text))
        raise XadesRejected(CODE_SCHEMA, messages[:10] or ['document does not match the schema'])
    return namespace


def _remove_keep_tail(element):
    """Remove an element while keeping the text that followed it (tail)."""
    parent = element.getparent()
    tail = element.tail
    previous = element.getprevious()
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or '') + tail
        else:
            parent.text = (parent.text or '') + tail
    parent.remove(element)


# ---------------------------------------------------------------------------------------------
# references and transforms


def _child(parent, tag, required=True, what=None):
    found = parent.findall(tag)
    if len(found) > 1:
        raise _invalid_signature('element %s occurs more than once in %s' % (etree.QName(tag).localname,
                                                                             etree.QName(parent).localname))
    if not found:
        if required:
            raise _invalid_signature('missing element %s' % (what or etree.QName(tag).localname))
        return None
    return found[0]


def _inclusive_prefixes(method_element):
    prefixes = method_element.find('{%s}InclusiveNamespaces' % EXC_C14N_NS)
    if prefixes is None:
        return None
    return [p for p in (prefixes.get('PrefixList') or '').split() if p]


def _has_xml_attributes(element):
    xml_ns = '{http://www.w3.org/XML/1998/namespace}'
    return any(name.startswith(xml_ns) for node in element.iter() if isinstance(node.tag, str)
               for name in node.attrib)


def _canonicalize(node, algorithm, method_element, same_document_reference=False):
    """C14N of an element or a whole ElementTree."""
    exclusive, with_comments = C14N_ALGORITHMS[algorithm]
    if same_document_reference:
        # XMLDSig 4.3.3.3: URI="" and "#id" dereference to node-sets *without* comments.
        with_comments = False
    if algorithm in C14N11_ALGORITHMS:
        root = node.getroot() if isinstance(node, etree._ElementTree) else node.getroottree().getroot()
        if _has_xml_attributes(root):
            raise _invalid_signature('C14N 1.1 over documents with xml:* attributes is not supported by the '
                                     'emulator; use exclusive C14N')
    kwargs = {'method': 'c14n', 'exclusive': exclusive, 'with_comments': with_comments}
    prefixes = _inclusive_prefixes(method_element) if exclusive else None
    if prefixes:
        kwargs['inclusive_ns_prefixes'] = ['' if p == '#default' else p for p in prefixes]
    return etree.tostring(node, **kwargs)


def _find_by_id(tree, identifier):
    matches = tree.xpath('//*[@Id=$v or @ID=$v or @id=$v]', v=identifier)
    if len(matches) != 1:
        raise _invalid_signature('reference #%s resolves to %d elements' % (identifier, len(matches)))
    return matches[0]


def _remove_signatures(node):
    """Drop every ds:Signature subtree from a node (the node-set minus the signature)."""
    root = node.getroot() if isinstance(node, etree._ElementTree) else node
    if isinstance(root.tag, str) and root.tag == _ds('Signature'):
        raise _invalid_signature('a reference with the enveloped-signature transform points at the signature')
    for sig in list(root.iter(_ds('Signature'))):
        if sig is not root:
            _remove_keep_tail(sig)


_XPATH_NOT_SIGNATURE = re.compile(r'^\s*not\(\s*ancestor-or-self::(\w+):Signature\s*\)\s*$')


def _apply_xpath_transform(transform, node):
    xpath = _child(transform, _ds('XPath'), what='ds:XPath in XPath transform')
    match = _XPATH_NOT_SIGNATURE.match(xpath.text or '')
    if not match or xpath.nsmap.get(match.group(1)) != DS_NS:
        raise _invalid_signature('unsupported XPath transform expression %r; only not(ancestor-or-self::ds:Signature)'
                                 ' is accepted' % (xpath.text or '')[:100])
    _remove_signatures(node)


def _inside_signature(element):
    return element.tag == _ds('Signature') or any(a.tag == _ds('Signature') for a in element.iterancestors())


def _apply_filter2_transform(transform, node):
    """XPath Filter 2.0 limited to what enveloped signatures need: subtract filters, and intersect/union
    filters that select the document element (i.e. keep the whole document)."""
    tree = node if isinstance(node, etree._ElementTree) else node.getroottree()
    filters = transform.findall('{%s}XPath' % FILTER2_NS)
    if not filters:
        raise _invalid_signature('XPath-Filter2 transform without dsig-xpath:XPath')
    for xpath in filters:
        operation = xpath.get('Filter')
        namespaces = {k: v for k, v in xpath.nsmap.items() if k}
        try:
            selected = tree.xpath(xpath.text or '', namespaces=namespaces)
        except etree.XPathError as exc:
            raise _invalid_signature('XPath-Filter2 expression %r cannot be evaluated: %s'
                                     % ((xpath.text or '')[:100], exc))
        if not isinstance(selected, list):
            raise _invalid_signature('XPath-Filter2 expression %r does not select nodes' % (xpath.text or '')[:100])
        elements = [n for n in selected if isinstance(n, etree._Element)]
        if operation == 'subtract':
            for element in elements:
                # Subtracting anything but the signature would leave request content (e.g. the
                # Challenge) unsigned and open to replay.
                if not _inside_signature(element):
                    raise _invalid_signature('XPath-Filter2 subtract may only remove the ds:Signature, not %s'
                                             % etree.QName(element).localname)
            for element in elements:
                if element.getparent() is not None and not _inside_signature(element.getparent()):
                    _remove_keep_tail(element)
        elif operation in ('intersect', 'union') and any(e.getparent() is None for e in elements):
            continue
        else:
            raise _invalid_signature('XPath-Filter2 filter %r with expression %r is not supported by the '
                                     'emulator (only subtract, or intersect/union of the whole document)'
                                     % (operation, (xpath.text or '')[:100]))


def _reference_octets(reference, tree):
    """Dereference a ds:Reference and run its transforms; returns (octets, covers_whole_document, target)."""
    uri = reference.get('URI')
    if uri is None:
        raise _invalid_signature('a Reference without URI (detached content) is not accepted')
    work_tree = copy.deepcopy(tree)
    if uri == '':
        node = work_tree
        target = tree.getroot()
    elif uri.startswith('#') and len(uri) > 1 and not uri.startswith('#xpointer('):
        node = _find_by_id(work_tree, uri[1:])
        target = _find_by_id(tree, uri[1:])
    else:
        raise _invalid_signature('Reference URI %r points outside the document; detached signatures are not '
                                 'accepted' % uri[:100])

    transforms_element = _child(reference, _ds('Transforms'), required=False)
    transforms = list(transforms_element.findall(_ds('Transform'))) if transforms_element is not None else []
    unexpected = [c for c in (transforms_element if transforms_element is not None else [])
                  if isinstance(c.tag, str) and c.tag != _ds('Transform')]
    if unexpected:
        raise _invalid_signature('unexpected element %s in ds:Transforms' % unexpected[0].tag)

    octets = None
    removes_signature = False
    for transform in transforms:
        algorithm = transform.get('Algorithm')
        if octets is not None and algorithm != TRANSFORM_BASE64:
            raise _invalid_signature('transform %s after canonicalization is not supported' % algorithm)
        if algorithm == TRANSFORM_ENVELOPED:
            _remove_signatures(node)
            removes_signature = True
        elif algorithm == TRANSFORM_XPATH:
            _apply_xpath_transform(transform, node)
            removes_signature = True
        elif algorithm == TRANSFORM_FILTER2:
            before = sum(1 for dummy in (node.getroot() if isinstance(node, etree._ElementTree) else node)
                         .iter(_ds('Signature')))
            _apply_filter2_transform(transform, node)
            after = sum(1 for dummy in (node.getroot() if isinstance(node, etree._ElementTree) else node)
                        .iter(_ds('Signature')))
            removes_signature = removes_signature or (before > 0 and after == 0)
        elif algorithm in C14N_ALGORITHMS:
            octets = _canonicalize(node, algorithm, transform, same_document_reference=True)
        elif algorithm == TRANSFORM_BASE64:
            if target is tree.getroot():
                raise _invalid_signature('the base64 transform is not allowed on the reference to the document')
            source = octets.decode('utf-8') if octets is not None else ''.join(
                (node.getroot() if isinstance(node, etree._ElementTree) else node).itertext())
            try:
                octets = base64.b64decode(''.join(source.split()), validate=True)
            except ValueError:
                raise _invalid_signature('base64 transform input is not base64')
        else:
            raise _invalid_signature('transform algorithm %r is not allowed' % algorithm)
    if octets is None:
        # XMLDSig 4.4.3.2: a node-set result is converted to octets with inclusive C14N 1.0.
        octets = _canonicalize(node, 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315', reference,
                               same_document_reference=True)

    root_covered = target is tree.getroot()
    if root_covered and not removes_signature:
        raise _invalid_signature('reference %r covers the document including its own signature but has no '
                                 'enveloped-signature transform' % uri)
    return octets, root_covered, target


def _check_digest(reference, octets):
    digest_method = _child(reference, _ds('DigestMethod'))
    algorithm = digest_method.get('Algorithm')
    if algorithm not in DIGEST_ALGORITHMS:
        raise _invalid_signature('digest algorithm %r is not allowed' % algorithm)
    digest_value = _child(reference, _ds('DigestValue'))
    try:
        expected = base64.b64decode(''.join((digest_value.text or '').split()), validate=True)
    except ValueError:
        raise _invalid_signature('DigestValue of reference %r is not base64' % reference.get('URI'))
    h = hashes.Hash(DIGEST_ALGORITHMS[algorithm]())
    h.update(octets)
    if not hmac.compare_digest(h.finalize(), expected):
        raise _invalid_signature('wrong digest for reference URI=%r' % reference.get('URI'))


# ---------------------------------------------------------------------------------------------
# certificate, signature value, XAdES


def _signer_certificate(signature):
    key_info = _child(signature, _ds('KeyInfo'), required=False)
    if key_info is None:
        raise _invalid_signature('ds:KeyInfo with the signer X509Certificate is required')
    cert_elements = key_info.findall('%s/%s' % (_ds('X509Data'), _ds('X509Certificate')))
    if not cert_elements:
        raise _invalid_signature('ds:KeyInfo/ds:X509Data/ds:X509Certificate is required')
    certificates = []
    for element in cert_elements:
        try:
            der = base64.b64decode(''.join((element.text or '').split()), validate=True)
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise XadesRejected(CODE_INVALID_CERTIFICATE, ['KeyInfo certificate cannot be parsed: %s'
                                                           % str(exc)[:200]])
    return certificates


def _check_key(key, family):
    if family == 'rsa':
        if not isinstance(key, rsa.RSAPublicKey):
            raise _invalid_signature('RSA SignatureMethod but the certificate key is not RSA')
        if key.key_size < MIN_RSA_BITS:
            raise _invalid_signature('RSA key of %d bits is too short (minimum %d)' % (key.key_size, MIN_RSA_BITS))
    else:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise _invalid_signature('ECDSA SignatureMethod but the certificate key is not EC')
        if key.curve.key_size < MIN_EC_BITS:
            raise _invalid_signature('EC curve of %d bits is too small (minimum %d)'
                                     % (key.curve.key_size, MIN_EC_BITS))


def _verify_signature_value(signature_value, key, family, hash_class, signed_info_octets):
    if family == 'rsa':
        try:
            key.verify(signature_value, signed_info_octets, padding.PKCS1v15(), hash_class())
        except InvalidSignature:
            raise _invalid_signature('SignatureValue does not verify with the KeyInfo certificate key')
        return
    size = (key.curve.key_size + 7) // 8
    if len(signature_value) != 2 * size:
        if signature_value[:1] == b'\x30':
            raise _invalid_signature('ECDSA SignatureValue is DER-encoded; XMLDSig requires raw r||s '
                                     '(%d bytes)' % (2 * size))
        raise _invalid_signature('ECDSA SignatureValue has %d bytes, expected raw r||s of %d bytes'
                                 % (len(signature_value), 2 * size))
    r = int.from_bytes(signature_value[:size], 'big')
    s = int.from_bytes(signature_value[size:], 'big')
    try:
        key.verify(encode_dss_signature(r, s), signed_info_octets, ec.ECDSA(hash_class()))
    except InvalidSignature:
        raise _invalid_signature('SignatureValue does not verify with the KeyInfo certificate key')


def _parse_xsd_datetime(text):
    value = (text or '').strip()
    if not value:
        return None
    value = re.sub(r'Z$', '+00:00', value)
    # Python < 3.11 fromisoformat does not take 7 fractional digits (.NET round-trip format).
    value = re.sub(r'\.(\d{6})\d+', r'.\1', value)
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return None


def _check_xades(signature, signed_references, certificate):
    """XAdES-BES: SignedProperties, signed via a typed Reference, with SigningTime and SigningCertificate."""
    qualifying = signature.findall('%s/%s' % (_ds('Object'), _xades('QualifyingProperties')))
    if len(qualifying) != 1:
        raise _not_compliant('expected exactly one xades:QualifyingProperties in ds:Object, found %d'
                             % len(qualifying))
    qualifying = qualifying[0]
    signature_id = signature.get('Id')
    target = qualifying.get('Target')
    if not signature_id or target != '#' + signature_id:
        raise _not_compliant('QualifyingProperties Target %r does not point at the ds:Signature Id %r'
                             % (target, signature_id))
    signed_properties = _child(qualifying, _xades('SignedProperties'), required=False)
    if signed_properties is None:
        raise _not_compliant('xades:SignedProperties is missing')
    typed = [ref for ref, target_element in signed_references if target_element is signed_properties]
    if not typed:
        raise _not_compliant('xades:SignedProperties is not referenced from SignedInfo')
    if not any(ref.get('Type') == SIGNED_PROPERTIES_TYPE for ref in typed):
        raise _not_compliant('the Reference to SignedProperties lacks Type="%s"' % SIGNED_PROPERTIES_TYPE)
    ssp = _child(signed_properties, _xades('SignedSignatureProperties'), required=False)
    if ssp is None:
        raise _not_compliant('xades:SignedSignatureProperties is missing')
    signing_time = ssp.find(_xades('SigningTime'))
    if signing_time is None or _parse_xsd_datetime(signing_time.text) is None:
        raise _not_compliant('xades:SigningTime is missing or not a dateTime')

    signing_certificates = ssp.findall(_xades('SigningCertificate')) + ssp.findall(_xades('SigningCertificateV2'))
    if len(signing_certificates) != 1:
        raise _not_compliant('expected exactly one xades:SigningCertificate or SigningCertificateV2, found %d'
                             % len(signing_certificates))
    cert_der = certificate.public_bytes(Encoding.DER)
    cert_elements = signing_certificates[0].findall(_xades('Cert'))
    if not cert_elements:
        raise _not_compliant('SigningCertificate has no xades:Cert')
    for cert in cert_elements:
        cert_digest = cert.find(_xades('CertDigest'))
        if cert_digest is None:
            raise _not_compliant('xades:Cert without CertDigest')
        method = cert_digest.find(_ds('DigestMethod'))
        value = cert_digest.find(_ds('DigestValue'))
        algorithm = method.get('Algorithm') if method is not None else None
        if algorithm not in DIGEST_ALGORITHMS or value is None:
            raise _not_compliant('CertDigest with missing or unsupported DigestMethod %r' % algorithm)
        try:
            expected = base64.b64decode(''.join((value.text or '').split()), validate=True)
        except ValueError:
            raise _not_compliant('CertDigest DigestValue is not base64')
        h = hashes.Hash(DIGEST_ALGORITHMS[algorithm]())
        h.update(cert_der)
        if hmac.compare_digest(h.finalize(), expected):
            return
    raise _not_compliant('SigningCertificate CertDigest does not match the KeyInfo certificate')


def _check_validity(certificate, now):
    if certificate.not_valid_before_utc > now:
        raise XadesRejected(CODE_INVALID_CERTIFICATE, ['signer certificate is not valid before %s'
                                                       % certificate.not_valid_before_utc.isoformat()])
    if certificate.not_valid_after_utc < now:
        raise XadesRejected(CODE_INVALID_CERTIFICATE, ['signer certificate expired on %s'
                                                       % certificate.not_valid_after_utc.isoformat()])


def _verify_signature(tree, signature):
    signed_info = _child(signature, _ds('SignedInfo'))
    c14n_method = _child(signed_info, _ds('CanonicalizationMethod'))
    c14n_algorithm = c14n_method.get('Algorithm')
    if c14n_algorithm not in C14N_ALGORITHMS:
        raise _invalid_signature('CanonicalizationMethod %r is not allowed' % c14n_algorithm)
    signature_method = _child(signed_info, _ds('SignatureMethod'))
    signature_algorithm = signature_method.get('Algorithm')
    if signature_algorithm not in SIGNATURE_ALGORITHMS:
        raise _invalid_signature('SignatureMethod %r is not allowed' % signature_algorithm)
    family, hash_class = SIGNATURE_ALGORITHMS[signature_algorithm]
    if signature_method.find(_ds('HMACOutputLength')) is not None:
        raise _invalid_signature('HMACOutputLength is not allowed')

    certificates = _signer_certificate(signature)
    certificate = certificates[0]
    key = certificate.public_key()
    _check_key(key, family)

    references = signed_info.findall(_ds('Reference'))
    if not references:
        raise _invalid_signature('SignedInfo has no Reference')
    signed_references = []
    covers_document = False
    for reference in references:
        octets, root_covered, target = _reference_octets(reference, tree)
        _check_digest(reference, octets)
        covers_document = covers_document or root_covered
        signed_references.append((reference, target))
    if not covers_document:
        raise _invalid_signature('no Reference covers the AuthTokenRequest document (URI="" with the '
                                 'enveloped-signature transform); detached signatures are not accepted')

    value_element = _child(signature, _ds('SignatureValue'))
    try:
        signature_value = base64.b64decode(''.join((value_element.text or '').split()), validate=True)
    except ValueError:
        raise _invalid_signature('SignatureValue is not base64')
    signed_info_octets = _canonicalize(signed_info, c14n_algorithm, c14n_method)
    _verify_signature_value(signature_value, key, family, hash_class, signed_info_octets)
    _check_xades(signature, signed_references, certificate)
    return certificate


# ---------------------------------------------------------------------------------------------
# public entry point


def _text(element):
    return (element.text or '').strip() if element is not None else ''


def _request_fields(root, namespace):
    def q(name):
        return '{%s}%s' % (namespace, name)

    challenge = _text(root.find(q('Challenge')))
    context = root.find(q('ContextIdentifier'))
    context_element = [c for c in context if isinstance(c.tag, str)][0]
    context_type = etree.QName(context_element).localname
    subject_identifier_type = _text(root.find(q('SubjectIdentifierType')))
    allowed_ips = None
    allowed = root.find('%s/%s' % (q('AuthorizationPolicy'), q('AllowedIps')))
    if allowed is not None:
        allowed_ips = {
            'ip4Addresses': [_text(e) for e in allowed.findall(q('Ip4Address'))],
            'ip4Ranges': [_text(e) for e in allowed.findall(q('Ip4Range'))],
            'ip4Masks': [_text(e) for e in allowed.findall(q('Ip4Mask'))],
        }
    return challenge, context_type, _text(context_element), subject_identifier_type, allowed_ips


def verify_auth_request(xml_bytes, now=None):
    """Verify a signed AuthTokenRequest; returns VerifiedAuthRequest or raises XadesRejected.

    `now` (aware datetime) is only for tests of certificate validity; the challenge is not checked.
    """
    from . import identity  # local import: identity imports XadesRejected from this module

    tree = _parse(xml_bytes)
    root = tree.getroot()
    signatures = list(root.iter(_ds('Signature')))
    if not signatures:
        raise XadesRejected(CODE_NO_SIGNATURE, ['the document carries no ds:Signature'])
    if len(signatures) > 1:
        raise XadesRejected(CODE_TOO_MANY_SIGNATURES, ['the document carries %d ds:Signature elements; exactly '
                                                       'one is allowed' % len(signatures)])
    signature = signatures[0]
    if signature is root:
        # KSeF also accepts enveloping signatures; the emulator refuses them because the AuthTokenRequest
        # must be the document element for the schema check (neither official client sends them).
        raise _invalid_signature('enveloping or detached signature packaging is not accepted by the emulator; '
                                 'append the ds:Signature to the AuthTokenRequest (enveloped)')
    if signature.getparent() is not root:
        raise _invalid_signature('ds:Signature must be a child of the AuthTokenRequest element (enveloped)')

    namespace = _validate_schema(tree, signature)
    certificate = _verify_signature(tree, signature)
    _check_validity(certificate, now or datetime.datetime.now(datetime.timezone.utc))

    challenge, context_type, context_value, subject_identifier_type, allowed_ips = _request_fields(root, namespace)
    # Raises 21117/21115 when the certificate carries no usable identity for certificateSubject.
    identity.subject_identity(certificate, subject_identifier_type)
    return VerifiedAuthRequest(
        challenge=challenge,
        context_type=context_type,
        context_value=context_value,
        subject_identifier_type=subject_identifier_type,
        signer_certificate=certificate,
        allowed_ips=allowed_ips,
        namespace=namespace,
    )
