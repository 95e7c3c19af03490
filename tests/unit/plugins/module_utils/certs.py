# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-signed KSeF-TEST-style signer certificates for unit tests (cryptography only)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

TEST_NIP = '1234563218'
ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier('2.5.4.97')


@functools.lru_cache(maxsize=None)
def make_key(kind='ec', bits=2048, slot=0):
    """A cached private key (slot picks a different key of the same kind)."""
    if kind == 'ec':
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_seal_certificate(key, nip=TEST_NIP, common_name='Test Seal', days=365):
    """Self-signed seal certificate like the official TEST helpers (O, organizationIdentifier VATPL-<nip>, CN, C)."""
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Test Company, Sp. z o.o.'),
        x509.NameAttribute(ORGANIZATION_IDENTIFIER, 'VATPL-%s' % nip),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.COUNTRY_NAME, 'PL'),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=61))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def key_bytes(key, fmt='pkcs8', encoding='pem', passphrase=None):
    """Private key bytes; fmt 'pkcs8' or 'traditional' (PKCS#1 for RSA, SEC1 for EC)."""
    private_format = serialization.PrivateFormat.PKCS8 if fmt == 'pkcs8' else serialization.PrivateFormat.TraditionalOpenSSL
    enc = serialization.Encoding.PEM if encoding == 'pem' else serialization.Encoding.DER
    algorithm = (serialization.BestAvailableEncryption(passphrase.encode('utf-8')) if passphrase
                 else serialization.NoEncryption())
    return key.private_bytes(enc, private_format, algorithm)


def pkcs12_bytes(cert, key, passphrase=None):
    algorithm = (serialization.BestAvailableEncryption(passphrase.encode('utf-8')) if passphrase
                 else serialization.NoEncryption())
    return pkcs12.serialize_key_and_certificates(b'signer', key, cert, None, algorithm)


def b64(data):
    return base64.b64encode(data).decode('ascii')


def fake_jwt(exp, subject='test'):
    """An unsigned JWT-shaped token carrying exp (KSeF tokens are opaque to the client apart from exp)."""
    def part(obj):
        import json
        return base64.urlsafe_b64encode(json.dumps(obj).encode('utf-8')).decode('ascii').rstrip('=')
    return '%s.%s.%s' % (part({'alg': 'RS256', 'typ': 'JWT'}), part({'exp': int(exp), 'sub': subject}), 'c2ln')


def issue_certificate(public_key, days=365, serial=0x0123456789ABCDEF):
    """A certificate for public_key signed by a throw-away CA (what KSeF sends back for a CSR), as PEM text."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'Test CA')])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public_key)
            .serial_number(serial).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')
