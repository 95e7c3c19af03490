"""Validation of the PKCS#10 CSR of POST /certificates/enrollments (SPEC 4.3, openapi description).

Order of checks: DER/base64 format (25004), key type and size (25010), signature algorithm (25011),
signature (25004). The subject comparison (25003) is done by the caller with identity.csr_subject_matches.
"""

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from .errors import ApiError

ALLOWED_HASHES = (hashes.SHA1, hashes.SHA256, hashes.SHA384, hashes.SHA512)
RSA_PKCS1_ALGORITHMS = (SignatureAlgorithmOID.RSA_WITH_SHA1, SignatureAlgorithmOID.RSA_WITH_SHA256,
                        SignatureAlgorithmOID.RSA_WITH_SHA384, SignatureAlgorithmOID.RSA_WITH_SHA512)
ECDSA_ALGORITHMS = (SignatureAlgorithmOID.ECDSA_WITH_SHA1, SignatureAlgorithmOID.ECDSA_WITH_SHA256,
                    SignatureAlgorithmOID.ECDSA_WITH_SHA384, SignatureAlgorithmOID.ECDSA_WITH_SHA512)


def load_csr(csr_b64):
    """Decode and check a CSR; returns the cryptography CertificateSigningRequest or raises ApiError."""
    if not isinstance(csr_b64, str) or not csr_b64.strip():
        raise ApiError(25004, ['csr must be the Base64 encoding of a DER PKCS#10 request'])
    try:
        der = base64.b64decode(csr_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(25004, ['csr is not valid Base64'])
    try:
        csr = x509.load_der_x509_csr(der)
        public_key = csr.public_key()
    except ValueError as exc:
        raise ApiError(25004, ['csr is not a DER PKCS#10 request: %s' % exc])
    except Exception:  # unsupported key algorithms surface as UnsupportedAlgorithm
        raise ApiError(25010, ['key algorithm of the CSR is not supported'])

    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size != 2048:
            raise ApiError(25010, ['RSA key must have exactly 2048 bits, got %d' % public_key.key_size])
        family = 'rsa'
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ApiError(25010, ['EC key must be on curve P-256 (secp256r1), got %s' % public_key.curve.name])
        family = 'ec'
    else:
        raise ApiError(25010, ['key must be RSA 2048 or EC P-256, got %s' % type(public_key).__name__])

    oid = csr.signature_algorithm_oid
    try:
        hash_algorithm = csr.signature_hash_algorithm
    except Exception:  # UnsupportedAlgorithm: e.g. Ed25519 or an unknown OID
        hash_algorithm = None
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        allowed = family == 'rsa'
    elif oid in RSA_PKCS1_ALGORITHMS:
        allowed = family == 'rsa'
    elif oid in ECDSA_ALGORITHMS:
        allowed = family == 'ec'
    else:
        allowed = False
    if not allowed or not isinstance(hash_algorithm, ALLOWED_HASHES):
        raise ApiError(25011, ['CSR signature algorithm %s is not accepted; use RSA PKCS#1 v1.5, RSA-PSS or ECDSA '
                               'with SHA-1/256/384/512' % getattr(oid, '_name', oid.dotted_string)])
    if not csr.is_signature_valid:
        raise ApiError(25004, ['CSR signature does not verify with its public key'])
    return csr
