# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""DER editing, once: elements (definite lengths), the X.509 form of a raw signature, and a CSR or certificate
whose public key and signature come from somewhere else (a PKCS#11 token key that cryptography cannot hold).

A CSR or a certificate for such a key is made by cryptography's builder with a throw-away key of the same type,
then the throw-away SubjectPublicKeyInfo is swapped for the real one and the to-be-signed part is signed again by
the caller; the subject layout is therefore exactly the one of file keys.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Callable, List, Tuple

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError:  # pragma: no cover - reported through _credentials.HAS_CRYPTOGRAPHY
    pass

from ansible_collections.ksef.certificates.plugins.module_utils._crypto import generate_private_key, key_type_of, public_key_der
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefCredentialError

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03


def encode_length(length: int) -> bytes:
    """The DER length octets of a content of `length` bytes (short form below 128, else long form)."""
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, content: bytes) -> bytes:
    """One DER element: tag, length, content."""
    return bytes([tag]) + encode_length(len(content)) + content


def encode_integer(value: int) -> bytes:
    """A non-negative INTEGER element (a leading zero byte keeps the top bit clear, as DER wants)."""
    return encode(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, 'big'))


def read(data: bytes, offset: int = 0) -> Tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at offset (definite lengths only)."""
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, offset + 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[offset + 2:offset + 2 + count], 'big')
    start = offset + 2 + count
    return tag, start, start + length


def content(data: bytes, offset: int = 0) -> bytes:
    """The content bytes of the DER element at offset (an OCTET STRING's value, a SEQUENCE's children)."""
    dummy_tag, start, end = read(data, offset)
    return data[start:end]


def children(data: bytes) -> List[bytes]:
    """The encoded child elements of the DER SEQUENCE (or SET) that data starts with."""
    dummy_tag, start, end = read(data)
    found = []
    while start < end:
        dummy_tag, dummy_start, child_end = read(data, start)
        found.append(data[start:child_end])
        start = child_end
    return found


def signature_value(key_type: str, raw_signature: bytes) -> bytes:
    """The X.509/PKCS#10 form of a raw signature: RSA as is, ECDSA raw r||s (IEEE P1363) -> DER Ecdsa-Sig-Value."""
    if key_type == 'rsa':
        return raw_signature
    half = len(raw_signature) // 2
    return encode_dss_signature(int.from_bytes(raw_signature[:half], 'big'), int.from_bytes(raw_signature[half:], 'big'))


def sign_with_swapped_key(build: Callable[[Any], Any], public_key: Any, sign: Callable[[bytes], bytes]) -> bytes:
    """DER of a CSR or certificate whose public key is public_key and whose signature comes from sign(tbs).

    build(throwaway_private_key) returns a signed cryptography CSR or certificate with the desired content; its
    (throw-away) SubjectPublicKeyInfo is replaced by public_key's and the to-be-signed part is signed again with
    sign(data) -> raw signature (RSA PKCS#1 v1.5, or ECDSA r||s).
    """
    key_type = key_type_of(public_key)
    throwaway = generate_private_key(key_type)
    made = build(throwaway)
    is_csr = isinstance(made, x509.CertificateSigningRequest)
    tbs = made.tbs_certrequest_bytes if is_csr else made.tbs_certificate_bytes
    old_spki = public_key_der(throwaway.public_key())
    new_spki = public_key_der(public_key)
    if tbs.count(old_spki) != 1:  # pragma: no cover - cryptography always encodes the key once
        raise KsefCredentialError('cannot place the token public key in the request')
    tbs = encode(SEQUENCE, content(tbs).replace(old_spki, new_spki))
    algorithm = children(made.public_bytes(serialization.Encoding.DER))[1]
    signature = signature_value(key_type, sign(tbs))
    der = encode(SEQUENCE, tbs + algorithm + encode(BIT_STRING, b'\x00' + signature))
    loaded = x509.load_der_x509_csr(der) if is_csr else x509.load_der_x509_certificate(der)
    if public_key_der(loaded.public_key()) != new_spki:  # pragma: no cover - defensive
        raise KsefCredentialError('the request built for the token key carries another public key')
    return der
