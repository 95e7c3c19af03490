# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for _crypto: keys in every format, 0600 atomic writes, the CSR subject as KSeF wants it."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import os
import stat

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefCredentialError, KsefInputError
from ansible_collections.ksef.certificates.tests.unit.conftest import module_args

PASSPHRASE = 'correct horse battery'

PERSON_DATA = {
    'commonName': u'Zażółć Gęślą-Jaźń',
    'surname': u'Gęślą-Jaźń',
    'givenName': u'Zażółć',
    'organizationName': None,
    'organizationIdentifier': '',
    'countryName': 'PL',
    'serialNumber': 'TINPL-1234563218',
    'uniqueIdentifier': 'a1b2c3',
}
SEAL_DATA = {
    'commonName': u'Pieczęć Spółki',
    'organizationName': u'Łódzka Spółka Sp. z o.o.',
    'organizationIdentifier': 'VATPL-1234563218',
    'countryName': 'PL',
    'givenName': None,
    'surname': None,
    'serialNumber': None,
    'uniqueIdentifier': None,
}

UTF8STRING = 0x0C
PRINTABLESTRING = 0x13


@pytest.fixture(scope='module')
def ec_key():
    return _crypto.generate_private_key('ec')


@pytest.fixture(scope='module')
def rsa_key():
    return _crypto.generate_private_key('rsa')


@pytest.fixture
def module():
    with module_args({}):
        return AnsibleModule(argument_spec={}, add_file_common_args=True)


# ---------------------------------------------------------------------------------------------
# a minimal DER reader, so the tests check the bytes KSeF receives, not cryptography's view of them
# ---------------------------------------------------------------------------------------------

def der_read(data, offset=0):
    """(tag, content bytes, offset after the element)."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[offset:offset + count], 'big')
        offset += count
    return tag, data[offset:offset + length], offset + length


def der_children(content):
    children = []
    offset = 0
    while offset < len(content):
        tag, value, offset = der_read(content, offset)
        children.append((tag, value))
    return children


def der_oid(content):
    first = content[0]
    parts = [first // 40, first % 40]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return '.'.join(str(p) for p in parts)


def csr_subject_rdns(csr_der):
    """[(oid, string tag, text)] per RDN, and the number of attributes in each RDN."""
    tag, request, dummy = der_read(csr_der)
    assert tag == 0x30
    info_tag, info, dummy = der_read(request)
    assert info_tag == 0x30
    version, subject = der_children(info)[:2]
    assert version == (0x02, b'\x00')
    assert subject[0] == 0x30
    rdns = []
    for set_tag, rdn in der_children(subject[1]):
        assert set_tag == 0x31
        attributes = der_children(rdn)
        assert len(attributes) == 1, 'one attribute per RDN'
        oid, value = der_children(attributes[0][1])
        rdns.append((der_oid(oid[1]), value[0], value[1].decode('utf-8')))
    return rdns


# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------

def test_generated_keys_are_what_ksef_accepts(ec_key, rsa_key):
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey) and isinstance(ec_key.curve, ec.SECP256R1)
    assert isinstance(rsa_key, rsa.RSAPrivateKey) and rsa_key.key_size == 2048
    _crypto.check_key_supported(ec_key)
    _crypto.check_key_supported(rsa_key)


def test_unknown_key_type_is_refused():
    with pytest.raises(KsefInputError, match='Unsupported private key type'):
        _crypto.generate_private_key('dsa')


def _encodings(key):
    """Every format load_private_key must read, as (label, bytes, passphrase)."""
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    pkcs8 = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    encrypted = serialization.BestAvailableEncryption(PASSPHRASE.encode())
    pem = serialization.Encoding.PEM
    der = serialization.Encoding.DER
    return [
        ('pem-pkcs8', key.private_bytes(pem, pkcs8, plain), None),
        ('pem-pkcs8-encrypted', key.private_bytes(pem, pkcs8, encrypted), PASSPHRASE),
        ('pem-traditional', key.private_bytes(pem, traditional, plain), None),
        ('pem-traditional-encrypted', key.private_bytes(pem, traditional, encrypted), PASSPHRASE),
        ('der-pkcs8', key.private_bytes(der, pkcs8, plain), None),
        ('der-pkcs8-encrypted', key.private_bytes(der, pkcs8, encrypted), PASSPHRASE),
        ('der-traditional', key.private_bytes(der, traditional, plain), None),
        ('pkcs12', pkcs12.serialize_key_and_certificates(b'k', key, None, None, plain), None),
        ('pkcs12-encrypted', pkcs12.serialize_key_and_certificates(b'k', key, None, None, encrypted), PASSPHRASE),
    ]


@pytest.mark.parametrize('kind', ['ec', 'rsa'])
def test_every_key_format_loads_from_bytes_and_files(kind, ec_key, rsa_key, tmp_path):
    key = ec_key if kind == 'ec' else rsa_key
    expected = _crypto.public_key_fingerprint(key)
    for label, data, passphrase in _encodings(key):
        assert _crypto.public_key_fingerprint(_crypto.load_private_key(data, passphrase)) == expected, label
        path = tmp_path / ('%s-%s.key' % (kind, label))
        path.write_bytes(data)
        assert _crypto.public_key_fingerprint(_crypto.load_private_key(str(path), passphrase)) == expected, label


def test_passphrase_for_an_unencrypted_key_is_tolerated(ec_key):
    data = _crypto.private_key_to_pem(ec_key)
    assert _crypto.public_key_fingerprint(_crypto.load_private_key(data, 'unused')) == _crypto.public_key_fingerprint(ec_key)


@pytest.mark.parametrize('label', ['pem-pkcs8-encrypted', 'pem-traditional-encrypted', 'der-pkcs8-encrypted',
                                   'pkcs12-encrypted'])
def test_wrong_passphrase_fails_without_echoing_it(label, rsa_key):
    data = dict((name, blob) for name, blob, dummy in _encodings(rsa_key))[label]
    with pytest.raises(KsefCredentialError) as error:
        _crypto.load_private_key(data, 'Wrong-Secret-42')
    assert 'Wrong-Secret-42' not in str(error.value)
    assert 'passphrase' in str(error.value) or 'Cannot load' in str(error.value)


def test_encrypted_key_without_passphrase_asks_for_it(ec_key, tmp_path):
    path = tmp_path / 'enc.key'
    path.write_bytes(_crypto.private_key_to_pem(ec_key, PASSPHRASE))
    with pytest.raises(KsefCredentialError, match='is encrypted; set the private key passphrase'):
        _crypto.load_private_key(str(path))


def test_unreadable_and_garbage_keys_fail_clearly(tmp_path):
    with pytest.raises(KsefCredentialError, match='Cannot read private key file .*missing.key'):
        _crypto.load_private_key(str(tmp_path / 'missing.key'))
    garbage = tmp_path / 'garbage.key'
    garbage.write_bytes(b'\x01\x02not a key at all')
    with pytest.raises(KsefCredentialError, match='Cannot load the private key file'):
        _crypto.load_private_key(str(garbage))


@pytest.mark.parametrize('make_key, message', [
    (lambda: rsa.generate_private_key(65537, 1024), 'RSA 1024 bits'),
    (lambda: rsa.generate_private_key(65537, 3072), 'RSA 3072 bits'),
    (lambda: ec.generate_private_key(ec.SECP384R1()), 'curve secp384r1'),
])
def test_keys_ksef_refuses_are_rejected(make_key, message):
    with pytest.raises(KsefInputError, match=message):
        _crypto.check_key_supported(make_key())


# ---------------------------------------------------------------------------------------------
# atomic 0600 writes
# ---------------------------------------------------------------------------------------------

def _observe_moves(module, monkeypatch):
    """Record the mode of the file being renamed in and of the target right after each rename (the one writer,
    _files.write_atomic, renames through a directory descriptor)."""
    seen = []
    original = os.rename

    def rename(src, dest, *args, **kwargs):
        seen.append(('source', stat.S_IMODE(os.stat(src, dir_fd=kwargs.get('src_dir_fd')).st_mode)))
        original(src, dest, *args, **kwargs)
        seen.append(('target', stat.S_IMODE(os.stat(dest, dir_fd=kwargs.get('dst_dir_fd')).st_mode)))

    monkeypatch.setattr(os, 'rename', rename)
    return seen


def test_key_is_0600_from_the_start_with_umask_0_over_a_world_readable_file(module, ec_key, tmp_path, monkeypatch):
    path = tmp_path / 'service.key'
    path.write_bytes(b'old content')
    os.chmod(str(path), 0o666)
    seen = _observe_moves(module, monkeypatch)
    old_umask = os.umask(0)
    try:
        _crypto.write_private_key(module, str(path), ec_key, PASSPHRASE)
    finally:
        os.umask(old_umask)
    assert seen == [('source', 0o600), ('target', 0o600)]
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    loaded = _crypto.load_private_key(str(path), PASSPHRASE)
    assert _crypto.public_key_fingerprint(loaded) == _crypto.public_key_fingerprint(ec_key)
    assert b'ENCRYPTED PRIVATE KEY' in path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ['service.key'], 'no temporary file left behind'


def test_new_key_file_with_umask_0_is_never_wider_than_0600(module, rsa_key, tmp_path, monkeypatch):
    path = tmp_path / 'new.key'
    seen = _observe_moves(module, monkeypatch)
    old_umask = os.umask(0)
    try:
        _crypto.write_private_key(module, str(path), rsa_key)
    finally:
        os.umask(old_umask)
    assert seen == [('source', 0o600), ('target', 0o600)]
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert b'BEGIN PRIVATE KEY' in path.read_bytes()


def test_umask_is_restored_after_a_write(module, tmp_path):
    old_umask = os.umask(0o027)
    try:
        _crypto.write_file_atomic(module, str(tmp_path / 'f'), b'x', 0o600)
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old_umask)


def test_certificate_is_widened_only_after_the_move(module, tmp_path, monkeypatch):
    path = tmp_path / 'cert.pem'
    seen = _observe_moves(module, monkeypatch)
    _crypto.write_file_atomic(module, str(path), b'-----BEGIN CERTIFICATE-----\n', 0o644)
    assert seen == [('source', 0o600), ('target', 0o600)]
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644


def test_write_into_a_missing_directory_fails_clearly(module, tmp_path):
    with pytest.raises(KsefInputError, match='does not exist'):
        _crypto.write_file_atomic(module, str(tmp_path / 'nope' / 'f.key'), b'x', 0o600)


def test_move_file_atomic_keeps_a_rotated_key_private(module, ec_key, tmp_path):
    target = tmp_path / 'k.pem'
    target.write_bytes(b'old')
    os.chmod(str(target), 0o644)
    source = tmp_path / 'k.pem.next'
    _crypto.write_private_key(module, str(source), ec_key)
    _crypto.move_file_atomic(module, str(source), str(target), 0o600)
    assert not source.exists()
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o600
    assert _crypto.public_key_fingerprint(_crypto.load_private_key(str(target))) == _crypto.public_key_fingerprint(ec_key)


# ---------------------------------------------------------------------------------------------
# CSR
# ---------------------------------------------------------------------------------------------

def test_person_csr_subject_order_string_types_and_polish_letters(ec_key):
    der = _crypto.build_csr(ec_key, PERSON_DATA)
    assert csr_subject_rdns(der) == [
        ('2.5.4.3', UTF8STRING, u'Zażółć Gęślą-Jaźń'),
        ('2.5.4.4', UTF8STRING, u'Gęślą-Jaźń'),
        ('2.5.4.42', UTF8STRING, u'Zażółć'),
        ('2.5.4.6', PRINTABLESTRING, 'PL'),
        ('2.5.4.5', PRINTABLESTRING, 'TINPL-1234563218'),
        ('2.5.4.45', UTF8STRING, 'a1b2c3'),
    ]


def test_seal_csr_subject_skips_empty_fields(rsa_key):
    der = _crypto.build_csr(rsa_key, SEAL_DATA)
    assert csr_subject_rdns(der) == [
        ('2.5.4.3', UTF8STRING, u'Pieczęć Spółki'),
        ('2.5.4.10', UTF8STRING, u'Łódzka Spółka Sp. z o.o.'),
        ('2.5.4.97', UTF8STRING, 'VATPL-1234563218'),
        ('2.5.4.6', PRINTABLESTRING, 'PL'),
    ]


def test_rsa_csr_is_pkcs1_v15_sha256_and_ec_csr_is_ecdsa_sha256(rsa_key, ec_key):
    rsa_csr = x509.load_der_x509_csr(_crypto.build_csr(rsa_key, SEAL_DATA))
    assert rsa_csr.signature_algorithm_oid.dotted_string == '1.2.840.113549.1.1.11'
    rsa_key.public_key().verify(rsa_csr.signature, rsa_csr.tbs_certrequest_bytes, padding.PKCS1v15(), hashes.SHA256())
    ec_csr = x509.load_der_x509_csr(_crypto.build_csr(ec_key, SEAL_DATA))
    assert ec_csr.signature_algorithm_oid.dotted_string == '1.2.840.10045.4.3.2'
    ec_key.public_key().verify(ec_csr.signature, ec_csr.tbs_certrequest_bytes, ec.ECDSA(hashes.SHA256()))


def test_csr_refuses_unsupported_keys_and_empty_data(ec_key):
    with pytest.raises(KsefInputError, match='RSA 1024'):
        _crypto.build_csr(rsa.generate_private_key(65537, 1024), SEAL_DATA)
    with pytest.raises(KsefInputError, match='empty enrollment data'):
        _crypto.build_csr(ec_key, {'commonName': None, 'countryName': ''})


def test_load_csr_accepts_pem_der_and_base64(ec_key):
    der = _crypto.build_csr(ec_key, PERSON_DATA)
    csr = x509.load_der_x509_csr(der)
    pem = csr.public_bytes(serialization.Encoding.PEM)
    fingerprint = _crypto.public_key_fingerprint(ec_key)
    for form in (der, pem, pem.decode('ascii'), base64.b64encode(der).decode('ascii')):
        assert _crypto.public_key_fingerprint(_crypto.csr_public_key(form)) == fingerprint


def test_load_csr_rejects_garbage_bad_signature_and_weak_keys():
    with pytest.raises(KsefInputError, match='Cannot parse'):
        _crypto.load_csr('this is not a CSR')
    key = ec.generate_private_key(ec.SECP256R1())
    der = bytearray(_crypto.build_csr(key, SEAL_DATA))
    # flip a bit inside the subject (covered by the signature), keeping the DER valid
    index = bytes(der).index(u'Pieczęć'.encode('utf-8'))
    der[index] ^= 0x01
    with pytest.raises(KsefInputError, match='invalid signature'):
        _crypto.load_csr(bytes(der))
    weak = rsa.generate_private_key(65537, 1024)
    weak_csr = (x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'x')]))
                .sign(weak, hashes.SHA256()))
    with pytest.raises(KsefInputError, match='RSA 1024'):
        _crypto.load_csr(weak_csr.public_bytes(serialization.Encoding.DER))


def test_csr_subject_differences_names_the_fields(ec_key):
    csr = x509.load_der_x509_csr(_crypto.build_csr(ec_key, PERSON_DATA))
    assert _crypto.csr_subject_differences(csr, PERSON_DATA) == []
    other = dict(PERSON_DATA, serialNumber='TINPL-9999999999', organizationName='Extra')
    assert _crypto.csr_subject_differences(csr, other) == ['organizationName', 'serialNumber']


# ---------------------------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------------------------

def _issue(key, serial=0x0123456789ABCDEF, days=30):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'Łukasz')])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))


def test_certificate_summary_has_no_key_material(ec_key):
    cert = _issue(ec_key)
    summary = _crypto.certificate_summary(cert)
    assert summary == {
        'serial_number': '0123456789ABCDEF',
        'subject': u'CN=Łukasz',
        'valid_from': '2026-01-01T00:00:00+00:00',
        'valid_to': '2026-01-31T00:00:00+00:00',
        'fingerprint_sha256': cert.fingerprint(hashes.SHA256()).hex(),
        'public_key_sha256': _crypto.public_key_fingerprint(ec_key.public_key()),
    }


def test_short_serials_are_padded_to_ksef_notation(ec_key):
    assert _crypto.serial_hex(_issue(ec_key, serial=0xABC)) == '0000000000000ABC'


def test_load_certificate_forms_and_missing_files(ec_key, tmp_path):
    cert = _issue(ec_key)
    der = cert.public_bytes(serialization.Encoding.DER)
    for form in (der, _crypto.certificate_to_pem(cert), base64.b64encode(der)):
        assert _crypto.load_certificate(form) == cert
    assert _crypto.read_certificate_file(str(tmp_path / 'missing.pem')) is None
    junk = tmp_path / 'junk.pem'
    junk.write_bytes(b'junk')
    assert _crypto.read_certificate_file(str(junk)) is None


def test_pkcs12_bundle_round_trip(ec_key, rsa_key, tmp_path):
    cert = _issue(ec_key)
    path = tmp_path / 'bundle.p12'
    path.write_bytes(_crypto.pkcs12_bundle('erp', ec_key, cert, PASSPHRASE))
    assert _crypto.pkcs12_matches(str(path), PASSPHRASE, ec_key, cert)
    assert not _crypto.pkcs12_matches(str(path), 'wrong', ec_key, cert)
    assert not _crypto.pkcs12_matches(str(path), PASSPHRASE, rsa_key, cert)
    assert not _crypto.pkcs12_matches(str(tmp_path / 'none.p12'), PASSPHRASE, ec_key, cert)


def _ending_in_whitespace(make):
    """Make DER objects until one ends in a byte that bytes.strip() would remove (ECDSA signatures are random)."""
    for dummy in range(2000):
        der = make()
        if der[-1:] in (b' ', b'\t', b'\n', b'\r', b'\x0b', b'\x0c'):
            return der
    raise AssertionError('no DER value ending in a whitespace byte was produced')


def test_der_ending_in_a_whitespace_byte_is_not_truncated(ec_key):
    cert_der = _ending_in_whitespace(lambda: _issue(ec_key).public_bytes(serialization.Encoding.DER))
    assert _crypto.load_certificate(cert_der).public_bytes(serialization.Encoding.DER) == cert_der
    csr_der = _ending_in_whitespace(lambda: _crypto.build_csr(ec_key, SEAL_DATA))
    assert _crypto.csr_der(_crypto.load_csr(csr_der)) == csr_der


def _pkcs8(key, encoding=serialization.Encoding.PEM, passphrase=None):
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    return key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, encryption)


def test_parse_private_key_is_the_one_loader_and_says_why_it_failed():
    """One loader for declared keys (_crypto.load_private_key) and signer keys (_credentials): only the wording differs."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate_first = b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' + _pkcs8(key)
    assert _crypto.public_key_der(_crypto.parse_private_key(certificate_first).public_key()) == \
        _crypto.public_key_der(key.public_key())
    assert _crypto.parse_private_key(_pkcs8(key, serialization.Encoding.DER), passphrase='unused') is not None
    cases = [
        (b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', None, 'no_pem_key'),
        (_pkcs8(key, passphrase=b'secret-pass'), None, 'needs_passphrase'),
        (_pkcs8(key, passphrase=b'secret-pass'), 'other-pass', 'wrong_passphrase'),
        (_pkcs8(key, serialization.Encoding.DER, passphrase=b'secret-pass'), 'other-pass', 'wrong_passphrase'),
        (b'not a key', None, 'invalid'),
    ]
    for data, passphrase, reason in cases:
        with pytest.raises(_crypto.KeyLoadError) as info:
            _crypto.parse_private_key(data, passphrase)
        assert info.value.reason == reason
        assert str(info.value) == reason  # nothing of the key or passphrase
