# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure parts of _host_backend.py (both backends run through the module in modules/test_ksef_deploy_host.py)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.ksef.certificates.plugins.module_utils import _host_backend
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs

UTC = datetime.timezone.utc


def test_openssl_dates_are_read_in_any_locale():
    assert _host_backend.parse_openssl_date('Dec  4 20:39:28 2027 GMT') == datetime.datetime(2027, 12, 4, 20, 39, 28, tzinfo=UTC)
    assert _host_backend.parse_openssl_date('Feb 29 00:00:00 2028 GMT').month == 2
    with pytest.raises(_host_backend.HostCryptoError):
        _host_backend.parse_openssl_date('gru  4 20:39:28 2027 GMT')


def test_subject_argument_escapes_every_separator_in_the_layout_order():
    argument = _host_backend.subject_argument({'countryName': 'PL', 'commonName': u'a/b+c\\d=e ż'})
    assert argument == u'/2.5.4.3=a\\/b\\+c\\\\d\\=e ż/2.5.4.6=PL'


def test_pem_blocks_and_certificate_der():
    key = certs.make_key('ec')
    cert = certs.make_seal_certificate(key)
    pem = certs.cert_pem(cert)
    der = certs.cert_der(cert)
    assert _host_backend.pem_blocks(b'junk\n' + pem + pem, b'CERTIFICATE') == [der, der]
    assert _host_backend.certificate_der(pem) == der
    assert _host_backend.certificate_der(der) == der
    assert _host_backend.certificate_der(b'not a certificate') is None
    assert _host_backend.der_to_pem(der, b'CERTIFICATE') == pem


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
    assert _host_backend.pkcs12_algorithms_current(data) is current
