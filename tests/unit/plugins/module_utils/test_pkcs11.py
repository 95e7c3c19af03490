# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_pkcs11 against a real SoftHSM2 token (each test makes its own under a temporary SOFTHSM2_CONF)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto, _der
from ansible_collections.ksef.certificates.plugins.module_utils._engine import proof as _proof
from ansible_collections.ksef.certificates.plugins.module_utils._credentials import SignerCredentials
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefCredentialError
from ansible_collections.ksef.certificates.plugins.module_utils._xades import signed_auth_token_request
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.softhsm import (  # pylint: disable=unused-import
    USER_PIN,
    make_seal_in_token,
    softhsm_fixture,  # noqa: F401 - registers the fixture 'softhsm'
    spki,
    token_fixture,  # noqa: F401 - registers the fixture 'token'
)

_pkcs11 = pytest.importorskip('ansible_collections.ksef.certificates.plugins.module_utils._pkcs11')

ENROLLMENT_DATA = {
    'commonName': 'Firma Testowa Sp. z o.o.',
    'organizationName': 'Firma Testowa Sp. z o.o.',
    'organizationIdentifier': 'VATPL-%s' % certs.TEST_NIP,
    'countryName': 'PL',
    'uniqueIdentifier': '0123456789abcdef',
}
CHALLENGE = '20260101-CR-0123456789-ABCDEF0123-4A'


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_generated_key_is_sensitive_not_extractable_and_signs(token, key_type):
    key = token.generate_key_pair('ksef-auth', key_type)
    assert key.key_type == key_type
    assert token.key_flags(key) == {'sensitive': True, 'extractable': False,
                                    'always_sensitive': True, 'never_extractable': True}
    signature = token.sign(key, b'payload')
    if key_type == 'ec':
        assert len(signature) == 64  # raw r||s, as XMLDSig wants
        key.public_key.verify(_der.signature_value('ec', signature), b'payload', ec.ECDSA(hashes.SHA256()))
    else:
        key.public_key.verify(signature, b'payload', padding.PKCS1v15(), hashes.SHA256())
    found = token.private_key('ksef-auth')
    assert spki(found.public_key) == spki(key.public_key)


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_a_token_key_signs_a_qr_code_ii_that_its_certificate_verifies(token, key_type):
    # Proven rotation of a PKCS#11 Offline key: RSASSA-PSS (SHA-256, MGF1, salt 32) or ECDSA P1363, inside the token.
    key = token.generate_key_pair('offline-qr', key_type)
    certificate = x509.load_pem_x509_certificate(certs.issue_certificate(key.public_key).encode('ascii'))
    signer = _pkcs11.TokenSigner(token, key, certificate)
    signature = _proof.sign_qr(signer, b'qr-test.ksef.mf.gov.pl/certificate/Nip/1111111111')
    if key_type == 'rsa':
        key.public_key.verify(signature, b'qr-test.ksef.mf.gov.pl/certificate/Nip/1111111111',
                              padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    else:
        assert len(signature) == 64
        key.public_key.verify(_der.signature_value('ec', signature), b'qr-test.ksef.mf.gov.pl/certificate/Nip/1111111111',
                              ec.ECDSA(hashes.SHA256()))
    context = _proof.QrContext('https://api-test.ksef.mf.gov.pl/v2', 'nip', certs.TEST_NIP)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert _proof.prove_successor('offline', signer, certificate, None, context, now).proven


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_csr_signed_by_token_has_the_file_key_subject_layout(token, key_type):
    key = token.generate_key_pair('offline', key_type)
    der = token.csr(key, lambda throwaway: x509.load_der_x509_csr(_crypto.build_csr(throwaway, ENROLLMENT_DATA)))
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    assert spki(csr.public_key()) == spki(key.public_key)
    file_csr = x509.load_der_x509_csr(_crypto.build_csr(_crypto.generate_private_key(key_type), ENROLLMENT_DATA))
    assert csr.subject.public_bytes() == file_csr.subject.public_bytes()
    assert csr.signature_algorithm_oid == file_csr.signature_algorithm_oid


def test_certificate_objects_pair_with_their_key_and_delete_together(token):
    old_key, old_certificate = make_seal_in_token(token, 'seal', 'ec')
    assert old_certificate.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    old_certificate.public_key().verify(old_certificate.signature, old_certificate.tbs_certificate_bytes,
                                        ec.ECDSA(hashes.SHA256()))
    assert token.certificate_for(old_key).serial_number == old_certificate.serial_number

    # Mid-rotation: two keys with one label; the certified one is in use until its replacement is installed.
    new_key = token.generate_key_pair('seal', 'ec')
    assert len(token.private_keys('seal')) == 2
    assert token.certificate_for(new_key) is None
    assert spki(token.private_key('seal').public_key) == spki(old_key.public_key)
    assert spki(token.private_key('seal', public_key=new_key.public_key).public_key) == spki(new_key.public_key)

    token.delete_key(old_key)
    remaining = token.private_keys('seal')
    assert [spki(k.public_key) for k in remaining] == [spki(new_key.public_key)]
    assert token.certificates_of(old_key) == []


def test_the_token_signer_makes_the_same_document_as_the_file_key(token):
    # RSA PKCS#1 v1.5 is deterministic: the same key imported into the token must give identical bytes.
    file_key = certs.make_key('rsa')
    certificate = certs.make_seal_certificate(file_key)
    numbers = file_key.private_numbers()

    def big(value):
        return value.to_bytes((value.bit_length() + 7) // 8, 'big')

    PyKCS11 = pytest.importorskip('PyKCS11')
    token._session.createObject([  # pylint: disable=protected-access
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
        (PyKCS11.CKA_TOKEN, PyKCS11.CK_TRUE), (PyKCS11.CKA_PRIVATE, PyKCS11.CK_TRUE),
        (PyKCS11.CKA_SENSITIVE, PyKCS11.CK_TRUE), (PyKCS11.CKA_SIGN, PyKCS11.CK_TRUE),
        (PyKCS11.CKA_LABEL, 'imported'), (PyKCS11.CKA_ID, b'\x01'),
        (PyKCS11.CKA_MODULUS, big(numbers.public_numbers.n)), (PyKCS11.CKA_PUBLIC_EXPONENT, big(numbers.public_numbers.e)),
        (PyKCS11.CKA_PRIVATE_EXPONENT, big(numbers.d)), (PyKCS11.CKA_PRIME_1, big(numbers.p)),
        (PyKCS11.CKA_PRIME_2, big(numbers.q)), (PyKCS11.CKA_EXPONENT_1, big(numbers.dmp1)),
        (PyKCS11.CKA_EXPONENT_2, big(numbers.dmq1)), (PyKCS11.CKA_COEFFICIENT, big(numbers.iqmp)),
    ])
    token_key = token.private_key('imported')
    now = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    from_file = signed_auth_token_request(SignerCredentials(certificate, file_key), CHALLENGE, 'nip', certs.TEST_NIP, now=now)
    from_token = signed_auth_token_request(_pkcs11.TokenSigner(token, token_key, certificate), CHALLENGE, 'nip',
                                           certs.TEST_NIP, now=now)
    assert from_token == from_file


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_login_signer_reads_the_certificate_from_the_token_or_takes_the_given_one(softhsm, key_type):  # noqa: F811
    softhsm.init_token('seal-token')
    with _pkcs11.Pkcs11Token(softhsm.library, 'seal-token', USER_PIN) as setup:
        key, certificate = make_seal_in_token(setup, 'seal', key_type)
        other = _crypto.generate_private_key(key_type)
    signer = _pkcs11.open_login_signer(softhsm.library, 'seal-token', 'seal', USER_PIN)
    try:
        assert signer.certificate.serial_number == certificate.serial_number
        assert signer.key_type == key_type
        xml = signed_auth_token_request(signer, CHALLENGE, 'nip', certs.TEST_NIP)
        assert b'<ds:SignatureValue>' in xml
    finally:
        signer.close()
    chain = [certs.make_seal_certificate(other), certificate]
    signer = _pkcs11.open_login_signer(softhsm.library, 'seal-token', 'seal', USER_PIN, certificates=chain)
    assert signer.certificate.serial_number == certificate.serial_number
    assert spki(signer.key.public_key) == spki(key.public_key)
    signer.close()
    with pytest.raises(_pkcs11.Pkcs11Error, match='does not belong to the key labelled'):
        _pkcs11.open_login_signer(softhsm.library, 'seal-token', 'seal', USER_PIN,
                                  certificates=[certs.make_seal_certificate(other)])


def test_a_key_without_certificate_needs_auth_certificate_path(softhsm):  # noqa: F811
    softhsm.init_token('bare')
    with _pkcs11.Pkcs11Token(softhsm.library, 'bare', USER_PIN) as setup:
        setup.generate_key_pair('seal', 'ec')
    with pytest.raises(_pkcs11.Pkcs11Error, match='holds no certificate for the key labelled .seal.: store it'):
        _pkcs11.open_login_signer(softhsm.library, 'bare', 'seal', USER_PIN)


def failure(call, capfd):
    with pytest.raises(KsefCredentialError) as info:
        call()
    message = str(info.value)
    assert USER_PIN not in message and '000000' not in message
    # one line, short once the (long temporary) path is left out
    assert '\n' not in message and len(re.sub(r'/\S+', '/PATH', message)) < 160
    # a module's stdout holds only its JSON: nothing of the library's own complaints
    assert capfd.readouterr().out == ''
    return message


def test_every_failure_is_one_short_message_without_the_pin(softhsm, tmp_path, capfd):  # noqa: F811
    softhsm.init_token('unit')
    not_a_library = tmp_path / 'libfake.so'
    not_a_library.write_bytes(b'not a shared object')
    unreadable = str(tmp_path / 'missing.so')
    cases = {
        'wrong PIN': (lambda: _pkcs11.Pkcs11Token(softhsm.library, 'unit', '000000', 'auth_pkcs11_'),
                      "PKCS#11 token 'unit' rejected the PIN (auth_pkcs11_pin): CKR_PIN_INCORRECT"),
        'unknown token': (lambda: _pkcs11.Pkcs11Token(softhsm.library, 'other', USER_PIN),
                          "no PKCS#11 token labelled 'other' (pkcs11_token_label) in %s; tokens present: 'unit'"
                          % softhsm.library),
        'missing library': (lambda: _pkcs11.Pkcs11Token(unreadable, 'unit', USER_PIN),
                            'cannot read the PKCS#11 library %s (pkcs11_module): no such readable file' % unreadable),
        'not a library': (lambda: _pkcs11.Pkcs11Token(str(not_a_library), 'unit', USER_PIN),
                          'cannot load the PKCS#11 library %s (pkcs11_module): not a PKCS#11 module' % not_a_library),
        'unknown key label': (lambda: _pkcs11.open_login_signer(softhsm.library, 'unit', 'nope', USER_PIN),
                              "no private key labelled 'nope' (auth_pkcs11_key_label) in PKCS#11 token 'unit'"),
        'no PIN': (lambda: _pkcs11.Pkcs11Token(softhsm.library, 'unit', ''), "pkcs11_pin is required"),
    }
    for name, (call, expected) in cases.items():
        assert failure(call, capfd).startswith(expected), name


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads every file')
def test_a_library_without_read_permission(softhsm, tmp_path, capfd):  # noqa: F811
    path = tmp_path / 'lib.so'
    path.write_bytes(b'x')
    path.chmod(0)
    assert 'no such readable file' in failure(lambda: _pkcs11.Pkcs11Token(str(path), 'x', USER_PIN), capfd)
