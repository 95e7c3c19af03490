# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.ksef.certificates.plugins.module_utils._credentials import load_signer_credentials
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefCredentialError, KsefInputError
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs

PASSPHRASE = 'S3cret-passphrase-value'


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def ec_signer():
    key = certs.make_key('ec')
    return certs.make_seal_certificate(key), key


@pytest.fixture
def rsa_signer():
    key = certs.make_key('rsa')
    return certs.make_seal_certificate(key), key


def test_credential_error_is_an_input_error():
    assert issubclass(KsefCredentialError, KsefInputError)


@pytest.mark.parametrize('fmt, encoding', [('pkcs8', 'pem'), ('traditional', 'pem'), ('pkcs8', 'der'), ('traditional', 'der')])
def test_unencrypted_keys_in_every_format(tmp_path, rsa_signer, fmt, encoding):
    cert, key = rsa_signer
    credentials = load_signer_credentials(
        certificate_path=write(tmp_path, 'c.pem', certs.cert_pem(cert)),
        private_key_path=write(tmp_path, 'k', certs.key_bytes(key, fmt, encoding)))
    assert credentials.certificate == cert
    assert isinstance(credentials.private_key, rsa.RSAPrivateKey)
    assert credentials.key_type == 'rsa'


def test_encrypted_traditional_pem_key(tmp_path, ec_signer):
    cert, key = ec_signer
    credentials = load_signer_credentials(
        certificate_path=write(tmp_path, 'c.pem', certs.cert_pem(cert)),
        private_key_path=write(tmp_path, 'k.pem', certs.key_bytes(key, 'traditional', passphrase=PASSPHRASE)),
        passphrase=PASSPHRASE)
    assert isinstance(credentials.private_key, ec.EllipticCurvePrivateKey)
    assert credentials.key_type == 'ec'


@pytest.mark.parametrize('fmt, encoding', [('pkcs8', 'pem'), ('traditional', 'pem'), ('pkcs8', 'der')])
def test_wrong_passphrase_is_named_and_not_echoed(tmp_path, rsa_signer, fmt, encoding):
    cert, key = rsa_signer
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(
            certificate_path=write(tmp_path, 'c.pem', certs.cert_pem(cert)),
            private_key_path=write(tmp_path, 'k', certs.key_bytes(key, fmt, encoding, passphrase=PASSPHRASE)),
            passphrase='wrong-' + PASSPHRASE)
    assert 'passphrase (auth_passphrase) is wrong' in str(info.value)
    assert PASSPHRASE not in str(info.value)


@pytest.mark.parametrize('fmt', ['pkcs8', 'traditional'])
def test_missing_passphrase_is_named(tmp_path, ec_signer, fmt):
    cert, key = ec_signer
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(
            certificate_content=certs.cert_pem(cert).decode(),
            private_key_content=certs.key_bytes(key, fmt, passphrase=PASSPHRASE).decode())
    assert 'encrypted but no passphrase was given' in str(info.value)


def test_passphrase_for_an_unencrypted_key_is_ignored(tmp_path, ec_signer):
    cert, key = ec_signer
    credentials = load_signer_credentials(certificate_content=certs.cert_pem(cert).decode(),
                                          private_key_content=certs.key_bytes(key).decode(), passphrase=PASSPHRASE)
    assert credentials.certificate == cert


def test_pkcs12_file_and_inline_base64(tmp_path, rsa_signer):
    cert, key = rsa_signer
    bundle = certs.pkcs12_bytes(cert, key, PASSPHRASE)
    from_file = load_signer_credentials(certificate_path=write(tmp_path, 's.pfx', bundle), passphrase=PASSPHRASE)
    inline = load_signer_credentials(certificate_content=certs.b64(bundle), passphrase=PASSPHRASE)
    assert from_file.certificate == cert == inline.certificate
    unencrypted = load_signer_credentials(certificate_content=certs.b64(certs.pkcs12_bytes(cert, key)))
    assert unencrypted.certificate == cert


def test_files_with_base64_text_as_awx_file_injectors_write_them(tmp_path, ec_signer):
    """A PKCS#12 bundle or a DER certificate and key pasted into an AWX credential as Base64 reach the job as
    a text file; the loader decodes it (wrapped at 76 columns, with a trailing newline, as base64 writes it)."""
    cert, key = ec_signer
    bundle = certs.b64(certs.pkcs12_bytes(cert, key, PASSPHRASE))
    wrapped = '\n'.join(bundle[i:i + 76] for i in range(0, len(bundle), 76)) + '\n'
    loaded = load_signer_credentials(certificate_path=write(tmp_path, 'p12.b64', wrapped.encode('ascii')),
                                     passphrase=PASSPHRASE)
    assert loaded.certificate == cert
    der = load_signer_credentials(
        certificate_path=write(tmp_path, 'c.b64', certs.b64(certs.cert_der(cert)).encode('ascii')),
        private_key_path=write(tmp_path, 'k.b64', certs.b64(certs.key_bytes(key, 'pkcs8', 'der')).encode('ascii')))
    assert der.certificate == cert


def test_pkcs12_wrong_and_missing_passphrase(tmp_path, rsa_signer):
    cert, key = rsa_signer
    path = write(tmp_path, 's.p12', certs.pkcs12_bytes(cert, key, PASSPHRASE))
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(certificate_path=path, passphrase='nope')
    assert 'passphrase (auth_passphrase) is wrong' in str(info.value)
    assert 'nope' not in str(info.value)
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(certificate_path=path)
    assert 'needs a passphrase' in str(info.value)


def assert_pair_refused(cert, key, message):
    """Loading this certificate with this key (inline PEM) fails with a message containing `message`."""
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(certificate_content=certs.cert_pem(cert).decode(),
                                private_key_content=certs.key_bytes(key).decode())
    assert message in str(info.value)


def test_key_must_match_certificate(tmp_path, ec_signer):
    cert, _key = ec_signer
    other = certs.make_key('ec', slot=5)
    assert_pair_refused(cert, other, 'does not match the signer certificate')


def test_certificate_without_key(tmp_path, ec_signer):
    cert, _key = ec_signer
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(certificate_path=write(tmp_path, 'c.pem', certs.cert_pem(cert)))
    assert 'needs its private key' in str(info.value)


def test_combined_pem_with_chain_picks_the_matching_certificate(tmp_path, ec_signer):
    cert, key = ec_signer
    ca_key = certs.make_key('ec', slot=3)
    ca_cert = certs.make_seal_certificate(ca_key, common_name='Some CA')
    bundle = certs.cert_pem(ca_cert) + certs.cert_pem(cert) + certs.key_bytes(key)
    credentials = load_signer_credentials(certificate_path=write(tmp_path, 'all.pem', bundle))
    assert credentials.certificate == cert
    assert credentials.extra_certificates == [ca_cert]


def test_inline_base64_der_certificate_and_key(ec_signer):
    cert, key = ec_signer
    credentials = load_signer_credentials(certificate_content=certs.b64(certs.cert_der(cert)),
                                          private_key_content=certs.b64(certs.key_bytes(key, encoding='der')))
    assert credentials.certificate == cert


def test_small_rsa_key_is_rejected(tmp_path):
    key = certs.make_key('rsa', bits=1024)
    cert = certs.make_seal_certificate(key)
    assert_pair_refused(cert, key, 'at least 2048')


def test_unreadable_and_garbage_inputs(tmp_path, ec_signer):
    cert, _key = ec_signer
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(certificate_path=str(tmp_path / 'missing.pem'))
    assert 'cannot read signer certificate' in str(info.value)
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(certificate_content='-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')
    assert 'holds no PEM certificate' in str(info.value)
    with pytest.raises(KsefCredentialError):
        load_signer_credentials(certificate_content='not a certificate at all')
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials(certificate_content=certs.cert_pem(cert).decode(), private_key_content='garbage')
    assert 'cannot be parsed as a private key' in str(info.value)
    with pytest.raises(KsefCredentialError) as info:
        load_signer_credentials()
    assert 'no signer certificate' in str(info.value)
