# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_pem.py: PEM blocks and the PKCS#12 algorithm check (pure Python, shared by _crypto and _host_backend)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.ksef.certificates.plugins.module_utils import _pem
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs


def test_pem_ders_and_certificate_der():
    key = certs.make_key('ec')
    cert = certs.make_seal_certificate(key)
    pem = certs.cert_pem(cert)
    der = certs.cert_der(cert)
    assert _pem.pem_ders(b'junk\n' + pem + pem, 'CERTIFICATE') == [der, der]
    assert _pem.certificate_der(pem) == der
    assert _pem.certificate_der(der) == der
    assert _pem.certificate_der(b'not a certificate') is None
    assert _pem.certificate_der(None) is None
    assert _pem.der_to_pem(der, 'CERTIFICATE') == pem


def test_pem_blocks_keep_whole_blocks_of_the_wanted_labels_in_file_order():
    key = certs.make_key('ec')
    key_pem = certs.key_bytes(key)
    cert_pem = certs.cert_pem(certs.make_seal_certificate(key))
    data = b'Bag Attributes\n' + cert_pem + b'text between\n' + key_pem
    assert _pem.pem_blocks(data, 'CERTIFICATE') == [cert_pem.strip()]
    assert _pem.pem_blocks(data, _pem.PRIVATE_KEY_PEM_LABELS) == [key_pem.strip()]
    assert _pem.pem_blocks(data, ('PRIVATE KEY', 'CERTIFICATE')) == [cert_pem.strip(), key_pem.strip()]
    assert _pem.pem_blocks(None, 'CERTIFICATE') == []


def test_a_single_label_is_matched_whole_not_as_a_substring():
    data = _pem.der_to_pem(b'\x30\x00', 'PRIVATE KEY')
    assert _pem.pem_blocks(data, 'KEY') == []
    assert _pem.pem_ders(data, 'KEY') == []
    assert _pem.pem_ders(data, 'PRIVATE KEY') == [b'\x30\x00']


def test_a_block_that_is_not_base64_is_skipped_and_the_next_one_read():
    good = _pem.der_to_pem(b'\x30\x03\x02\x01\x05', 'CERTIFICATE')
    bad = b'-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n'
    assert _pem.pem_ders(bad + good, 'CERTIFICATE') == [b'\x30\x03\x02\x01\x05']
    assert _pem.certificate_der(bad + good) == b'\x30\x03\x02\x01\x05'


def test_der_to_pem_wraps_at_64_characters():
    pem = _pem.der_to_pem(b'\x00' * 100, 'PUBLIC KEY')
    lines = pem.splitlines()
    assert lines[0] == b'-----BEGIN PUBLIC KEY-----' and lines[-1] == b'-----END PUBLIC KEY-----'
    assert [len(line) for line in lines[1:-1]] == [64, 64, 8]  # 136 base64 characters
    assert _pem.pem_ders(pem, 'PUBLIC KEY') == [b'\x00' * 100]


@pytest.mark.parametrize('algorithm, mac, current', [
    (pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256(), True),
    (pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA1(), False),
    (pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA256(), False),
])
def test_pkcs12_algorithms_current(algorithm, mac, current):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certs.make_seal_certificate(key)
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().key_cert_algorithm(algorithm)
                  .hmac_hash(mac).build(b'secret'))
    data = pkcs12.serialize_key_and_certificates(b'x', key, cert, None, encryption)
    assert _pem.pkcs12_algorithms_current(data) is current
