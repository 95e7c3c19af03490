# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_der: DER elements, the X.509 form of raw signatures, a CSR or certificate with a swapped-in key."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto, _der
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs

ENROLLMENT_DATA = {
    'commonName': 'Firma Testowa Sp. z o.o.',
    'organizationName': 'Firma Testowa Sp. z o.o.',
    'organizationIdentifier': 'VATPL-%s' % certs.TEST_NIP,
    'countryName': 'PL',
}


@pytest.mark.parametrize('length, octets', [
    (0, b'\x00'), (0x7F, b'\x7f'), (0x80, b'\x81\x80'), (0xFF, b'\x81\xff'), (0x100, b'\x82\x01\x00'),
    (0x10000, b'\x83\x01\x00\x00'),
])
def test_lengths_use_the_short_form_below_128_and_the_shortest_long_form_above(length, octets):
    assert _der.encode_length(length) == octets
    element = _der.encode(0x04, b'\xaa' * length)
    assert element[:1 + len(octets)] == b'\x04' + octets
    assert _der.read(element) == (0x04, 1 + len(octets), len(element))
    assert _der.content(element) == b'\xaa' * length


@pytest.mark.parametrize('value, element', [
    (0, b'\x02\x01\x00'), (0x7F, b'\x02\x01\x7f'), (0x80, b'\x02\x02\x00\x80'), (0x0123, b'\x02\x02\x01\x23'),
])
def test_integers_keep_the_top_bit_clear(value, element):
    assert _der.encode_integer(value) == element


def test_children_are_the_elements_of_a_sequence_as_cryptography_sees_them():
    certificate = certs.make_seal_certificate(certs.make_key('ec'))
    der = certificate.public_bytes(serialization.Encoding.DER)
    tbs, algorithm, signature = _der.children(der)
    assert tbs == certificate.tbs_certificate_bytes
    assert algorithm[0] == _der.SEQUENCE
    assert signature[0] == _der.BIT_STRING and _der.content(signature) == b'\x00' + certificate.signature
    assert _der.read(der, len(der) - len(signature))[::2] == (_der.BIT_STRING, len(der))


def test_signature_value_is_rsa_as_is_and_ecdsa_r_s_as_a_der_sequence():
    assert _der.signature_value('rsa', b'\x01\x02') == b'\x01\x02'
    raw = (5).to_bytes(32, 'big') + (7).to_bytes(32, 'big')
    assert decode_dss_signature(_der.signature_value('ec', raw)) == (5, 7)


def raw_signer(private_key):
    """What a token gives: RSA PKCS#1 v1.5 SHA-256, or ECDSA SHA-256 as raw r||s."""
    def sign(data):
        if _crypto.key_type_of(private_key) == 'rsa':
            return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r_value, s_value = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r_value.to_bytes(32, 'big') + s_value.to_bytes(32, 'big')
    return sign


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_a_csr_gets_the_other_public_key_and_its_signature(key_type):
    key = certs.make_key(key_type)
    der = _der.sign_with_swapped_key(lambda throwaway: x509.load_der_x509_csr(_crypto.build_csr(throwaway, ENROLLMENT_DATA)),
                                     key.public_key(), raw_signer(key))
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    assert _crypto.public_key_der(csr.public_key()) == _crypto.public_key_der(key.public_key())
    file_csr = x509.load_der_x509_csr(_crypto.build_csr(key, ENROLLMENT_DATA))
    assert csr.subject.public_bytes() == file_csr.subject.public_bytes()
    assert csr.signature_algorithm_oid == file_csr.signature_algorithm_oid


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_a_self_signed_certificate_gets_the_other_public_key_and_verifies_with_it(key_type):
    key = certs.make_key(key_type)
    der = _der.sign_with_swapped_key(certs.make_seal_certificate, key.public_key(), raw_signer(key))
    certificate = x509.load_der_x509_certificate(der)
    assert _crypto.public_key_der(certificate.public_key()) == _crypto.public_key_der(key.public_key())
    if key_type == 'rsa':
        key.public_key().verify(certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(),
                                hashes.SHA256())
    else:
        key.public_key().verify(certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
