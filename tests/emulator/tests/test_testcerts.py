"""Self-signed test signer certificates and the testcerts CLI."""

import datetime
import os
import re
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ksef_emulator import testcerts

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NIP_XSD_PATTERN = re.compile(r'^[1-9]((\d[1-9])|([1-9]\d))\d{7}$')


def subject_pairs(cert):
    return [(a.oid.dotted_string, a.value) for a in cert.subject]


def test_valid_nip_checksum_and_pattern():
    for seed in range(200):
        nip = testcerts.valid_nip(seed)
        assert NIP_XSD_PATTERN.match(nip), nip
        assert testcerts.nip_checksum_ok(nip)
    assert testcerts.valid_nip(5) == testcerts.valid_nip(5)
    assert testcerts.nip_checksum_ok('5260250274')  # a published, real NIP
    assert not testcerts.nip_checksum_ok('5260250275')


def test_valid_pesel_checksum_and_birth_date():
    assert testcerts.pesel_checksum_ok('44051401359')  # the textbook example
    assert not testcerts.pesel_checksum_ok('44051401358')
    for seed in range(200):
        assert testcerts.pesel_checksum_ok(testcerts.valid_pesel(seed))
    pesel = testcerts.valid_pesel(birth_date=datetime.date(2003, 7, 9), female=True)
    assert pesel[:6] == '032709'
    assert int(pesel[9]) % 2 == 0


def test_make_seal_subject_and_validity():
    before = datetime.datetime.now(datetime.timezone.utc)
    cert, key = testcerts.make_seal('5260250274', common_name='Pieczęć testowa', organization_name='Spółka')
    assert subject_pairs(cert) == [('2.5.4.10', 'Spółka'), ('2.5.4.97', 'VATPL-5260250274'),
                                   ('2.5.4.3', 'Pieczęć testowa'), ('2.5.4.6', 'PL')]
    assert cert.issuer == cert.subject
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == 'secp256r1'
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    backdate = before - cert.not_valid_before_utc
    assert datetime.timedelta(minutes=60) < backdate < datetime.timedelta(minutes=62)
    assert cert.not_valid_after_utc - before > datetime.timedelta(days=729)


def test_make_person_rsa():
    cert, key = testcerts.make_person('Zażółć', 'Gęślą-Jaźń', pesel='44051401359', key_type='rsa')
    assert subject_pairs(cert) == [('2.5.4.42', 'Zażółć'), ('2.5.4.4', 'Gęślą-Jaźń'),
                                   ('2.5.4.5', 'PNOPL-44051401359'), ('2.5.4.3', 'Zażółć Gęślą-Jaźń'),
                                   ('2.5.4.6', 'PL')]
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    cert, dummy = testcerts.make_person('Jan', 'Nowak', nip='5260250274')
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == 'TINPL-5260250274'
    with pytest.raises(ValueError):
        testcerts.make_person('Jan', 'Nowak')


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=EMULATOR_DIR + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-m', 'ksef_emulator.testcerts'] + list(args), env=env,
                          capture_output=True, text=True, check=True)


def test_cli_identifiers():
    assert NIP_XSD_PATTERN.match(run_cli('nip').stdout.strip())
    assert testcerts.pesel_checksum_ok(run_cli('pesel').stdout.strip())


def test_cli_seal_encrypted_pkcs8_and_pkcs12(tmp_path):
    cert_file, key_file, p12_file = tmp_path / 'seal.pem', tmp_path / 'seal.key', tmp_path / 'seal.p12'
    result = run_cli('seal', '--nip', '5260250274', '--cert-out', str(cert_file), '--key-out', str(key_file),
                     '--passphrase', 'Sekret-1', '--pkcs12-out', str(p12_file), '--pkcs12-passphrase', 'Sekret-2')
    assert 'Sekret' not in result.stdout + result.stderr
    assert 'VATPL-5260250274' in result.stdout
    for private in (key_file, p12_file):
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    key_pem = key_file.read_bytes()
    assert key_pem.startswith(b'-----BEGIN ENCRYPTED PRIVATE KEY-----')
    key = serialization.load_pem_private_key(key_pem, b'Sekret-1')
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    p12_key, p12_cert, dummy = pkcs12.load_key_and_certificates(p12_file.read_bytes(), b'Sekret-2')
    assert p12_cert == cert
    assert p12_key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_cli_person_rsa_traditional_and_der(tmp_path):
    cert_file, key_file = tmp_path / 'p.pem', tmp_path / 'p.key'
    run_cli('person', '--given-name', 'Zażółć', '--surname', 'Gęślą-Jaźń', '--pesel', '44051401359',
            '--key-type', 'rsa', '--key-format', 'traditional', '--cert-out', str(cert_file),
            '--key-out', str(key_file))
    assert key_file.read_bytes().startswith(b'-----BEGIN RSA PRIVATE KEY-----')
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)[0].value == 'Zażółć'

    der_cert, der_key = tmp_path / 'p.der', tmp_path / 'p.key.der'
    run_cli('person', '--given-name', 'Jan', '--surname', 'Nowak', '--nip', '5260250274', '--der',
            '--cert-out', str(der_cert), '--key-out', str(der_key))
    cert = x509.load_der_x509_certificate(der_cert.read_bytes())
    key = serialization.load_der_private_key(der_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert stat.S_IMODE(os.stat(der_key).st_mode) == 0o600


def test_cli_refuses_person_without_identifier(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        run_cli('person', '--given-name', 'Jan', '--surname', 'Nowak', '--cert-out', str(tmp_path / 'c.pem'))
