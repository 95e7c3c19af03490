# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ksef_deploy_host through main(), with both backends: cryptography, and the real openssl command line."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import stat
import subprocess

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible.module_utils import basic

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._host import backend as _host_backend
from ansible_collections.ksef.certificates.plugins.module_utils._pem import pkcs12_algorithms_current
from ansible_collections.ksef.certificates.plugins.modules import ksef_deploy_host
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.certs import issue_certificate
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.host_backends import BACKENDS, OPENSSL

UTC = datetime.timezone.utc
# Hostile but legal: shell and OpenSSL config metacharacters, Polish letters, '/' and '+' (the -subj separators).
ENROLLMENT_DATA = {
    'common_name': u'Firma "Zażółć" $(touch M1) `touch M2` a/b+c\\d #x',
    'organization_name': u"Gęślą Jaźń sp. z o.o. 'q'",
    'organization_identifier': 'VATPL-1234563218',
    'country_name': 'PL',
    'serial_number': '',
    'unique_identifier': 'u-1',
}
PASSPHRASE = u'p\'a"s $(touch M3) `touch M4` \\ $HOME %s ąę'


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def host(run_module, tmp_path, backend):
    """run(operation, **args) for the module with this backend, paths in a directory with a hostile name."""
    directory = tmp_path / 'd\'q"x $(touch M1) `touch M2` $HOME'
    directory.mkdir()

    def run(operation, check_mode=False, **args):
        args = dict(args, operation=operation, backend=backend)
        return run_module(ksef_deploy_host, args, check_mode=check_mode)

    run.dir = directory
    run.key = str(directory / 'app.key')
    run.next = run.key + '.next'
    run.cert = str(directory / 'app.crt')
    run.p12 = str(directory / 'app.p12')
    return run


def public_key_of(path):
    return _crypto.public_key_der(_crypto.load_private_key(path).public_key())


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def make_next_key_and_csr(host):
    result = host('csr', key_path=host.key, enrollment_data=ENROLLMENT_DATA)
    assert result.exit_code == 0, result
    return result


# --- csr --------------------------------------------------------------------------------------

def test_csr_makes_a_private_next_key_and_a_csr_with_the_one_subject_layout(host):
    result = make_next_key_and_csr(host)
    assert result['changed'] is True
    assert result['next_key_generated'] is True
    assert mode_of(host.next) == 0o600
    assert not os.path.exists(host.key)
    csr = x509.load_pem_x509_csr(result['csr'].encode('ascii'))
    assert csr.is_signature_valid
    assert _crypto.public_key_der(csr.public_key()) == public_key_of(host.next)
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey) and csr.public_key().curve.name == 'secp256r1'
    # The subject, bytes for bytes, is the one _crypto builds from _rules.SUBJECT_LAYOUT (order, string types).
    camel = {'commonName': ENROLLMENT_DATA['common_name'], 'organizationName': ENROLLMENT_DATA['organization_name'],
             'organizationIdentifier': 'VATPL-1234563218', 'countryName': 'PL', 'uniqueIdentifier': 'u-1'}
    assert csr.subject.public_bytes() == _crypto.build_subject(camel).public_bytes()
    assert _crypto.csr_subject_differences(csr, camel) == []
    with open(host.next + '.csr', 'rb') as handle:
        assert handle.read().decode('ascii') == result['csr']


def test_csr_reuses_an_existing_next_key(host):
    first = make_next_key_and_csr(host)
    second = make_next_key_and_csr(host)
    assert second['next_key_generated'] is False
    first_key = x509.load_pem_x509_csr(first['csr'].encode('ascii')).public_key()
    second_key = x509.load_pem_x509_csr(second['csr'].encode('ascii')).public_key()
    assert _crypto.public_key_der(first_key) == _crypto.public_key_der(second_key) == public_key_of(host.next)


def test_csr_rsa_key(host):
    result = host('csr', key_path=host.key, key_type='rsa', enrollment_data={'commonName': 'Firma'})
    assert result.exit_code == 0, result
    assert _crypto.load_private_key(host.next).key_size == 2048


def test_csr_replaces_a_next_key_file_that_holds_no_key(host):
    with open(host.next, 'w') as handle:
        handle.write('garbage\n')
    result = make_next_key_and_csr(host)
    assert result['next_key_generated'] is True
    assert mode_of(host.next) == 0o600


@pytest.mark.parametrize('data, words', [
    ({'common_name': 'Firma\n[ default ]\nopenssl_conf = x'}, 'control character U+000A'),
    ({'common_name': 'Firma\r'}, 'control character U+000D'),
    ({'organization_name': 'A\x00B'}, 'control character U+0000'),
    ({'common_name': 'Firma', 'country_name': u'PÓ'}, 'PrintableString'),
    ({'common_name': ''}, 'none of the subject fields'),
])
def test_csr_refuses_enrollment_data_with_control_characters(host, data, words):
    result = host('csr', key_path=host.key, enrollment_data=data)
    assert result.exit_code == 1
    assert words in result['msg']
    assert not os.path.exists(host.next)


def test_csr_in_check_mode_makes_nothing(host):
    result = host('csr', check_mode=True, key_path=host.key, enrollment_data=ENROLLMENT_DATA)
    assert result['changed'] is True and result['csr'] is None
    assert os.listdir(str(host.dir)) == []


# --- info -------------------------------------------------------------------------------------

def test_info_reports_matching_key_serial_and_the_renewal_rule(host):
    make_next_key_and_csr(host)
    with open(host.cert, 'w') as handle:
        handle.write(issue_certificate(_crypto.load_private_key(host.next).public_key(), days=20))
    due = host('info', key_path=host.key, certificate_path=host.cert, renew_before_days=30)
    assert due.exit_code == 0, due
    assert due['changed'] is False
    assert due['certificate_parsed'] and due['certificate_matches_next_key']
    assert not due['key_exists'] and not due['certificate_matches_key'] and due['next_key_exists']
    assert due['serial_number'] == '0123456789ABCDEF'
    assert due['renewal_due'] is True
    assert len(due['fingerprint_sha256']) == 64
    assert due['valid_to'].endswith('+00:00')
    assert due['backend'] in ('cryptography', 'openssl')
    # 20 days left: due with a 30-day window, not with a 19-day one (_rules.renewal_due).
    assert host('info', key_path=host.key, certificate_path=host.cert, renew_before_days=19)['renewal_due'] is False
    assert host('info', key_path=host.key, certificate_path=host.cert, renew_before_days=20)['renewal_due'] is True


def test_info_without_files(host):
    result = host('info', key_path=host.key, certificate_path=host.cert)
    assert result.exit_code == 0, result
    assert result['certificate_parsed'] is False and result['certificate_exists'] is False
    assert result['renewal_due'] is None and result['serial_number'] == ''


def test_info_backend_is_the_one_asked_for(host, backend):
    assert host('info', key_path=host.key, certificate_path=host.cert)['backend'] == backend


# --- present ----------------------------------------------------------------------------------

def install_args(host, pem, **extra):
    return dict(dict(key_path=host.key, certificate_path=host.cert, certificate_content=pem, key_from_next=True), **extra)


def test_present_installs_the_certificate_then_moves_the_next_key(host):
    make_next_key_and_csr(host)
    next_public = public_key_of(host.next)
    pem = issue_certificate(_crypto.load_private_key(host.next).public_key())
    predicted = host('install', check_mode=True, **install_args(host, pem))
    assert predicted['changed'] is True and not os.path.exists(host.cert)
    result = host('install', **install_args(host, pem))
    assert result.exit_code == 0, result
    assert result['changed'] is True
    assert public_key_of(host.key) == next_public
    assert mode_of(host.key) == 0o600 and mode_of(host.cert) == 0o644
    assert not os.path.exists(host.next) and not os.path.exists(host.next + '.csr')
    assert host('install', check_mode=True, **install_args(host, pem))['changed'] is False
    assert host('install', **install_args(host, pem))['changed'] is False
    info = host('info', key_path=host.key, certificate_path=host.cert)
    assert info['certificate_matches_key'] is True


def test_present_refuses_a_certificate_without_the_next_keys_public_key(host):
    make_next_key_and_csr(host)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    result = host('install', **install_args(host, issue_certificate(other)))
    assert result.exit_code == 1
    assert 'does not carry the public key' in result['msg']
    assert os.path.exists(host.next) and not os.path.exists(host.key)


def test_present_writes_key_content_private_and_restores_modes(host):
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = _crypto.private_key_to_pem(key).decode('ascii')
    args = dict(key_path=host.key, certificate_path=host.cert, certificate_content=issue_certificate(key.public_key()),
                key_content=key_pem, certificate_mode='0640')
    result = host('install', **args)
    assert result.exit_code == 0, result
    assert mode_of(host.key) == 0o600 and mode_of(host.cert) == 0o640
    assert key_pem.split('\n')[1] not in str(result)
    os.chmod(host.key, 0o644)
    assert host('install', check_mode=True, **args)['changed'] is True
    assert mode_of(host.key) == 0o644
    assert host('install', **args)['changed'] is True
    assert mode_of(host.key) == 0o600
    assert host('install', **args)['changed'] is False


def test_present_refuses_key_src_without_the_action_plugin(host):
    result = host('install', key_path=host.key, certificate_path=host.cert, key_src='/etc/passwd')
    assert result.exit_code == 1 and 'action plugin' in result['msg']


# --- pkcs12 -----------------------------------------------------------------------------------

def installed_pair(host):
    key = ec.generate_private_key(ec.SECP256R1())
    result = host('install', key_path=host.key, certificate_path=host.cert, certificate_content=issue_certificate(key.public_key()),
                  key_content=_crypto.private_key_to_pem(key).decode('ascii'))
    assert result.exit_code == 0, result
    return key


def pkcs12_args(host, passphrase=PASSPHRASE):
    return dict(key_path=host.key, certificate_path=host.cert, pkcs12_path=host.p12, pkcs12_name=u'Wspólny test',
                pkcs12_passphrase=passphrase)


def openssl_pkcs12_info(path, passphrase):
    """What the openssl CLI says about the bundle's algorithms (independent of the module's own check)."""
    process = subprocess.run([OPENSSL, 'pkcs12', '-info', '-noout', '-in', path, '-passin', 'stdin'],
                             input=passphrase.encode('utf-8') + b'\n', stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             check=True)
    return (process.stdout + process.stderr).decode('utf-8', 'replace')


def test_pkcs12_is_built_with_aes_pbkdf2_sha256_and_the_whole_passphrase(host):
    key = installed_pair(host)
    predicted = host('pkcs12', check_mode=True, **pkcs12_args(host))
    assert predicted['changed'] is True and not os.path.exists(host.p12)
    result = host('pkcs12', **pkcs12_args(host))
    assert result.exit_code == 0, result
    assert result['built'] is True and result['reason'] == 'missing'
    assert mode_of(host.p12) == 0o600
    with open(host.p12, 'rb') as handle:
        data = handle.read()
    bundled_key, bundled_cert, dummy = pkcs12.load_key_and_certificates(data, PASSPHRASE.encode('utf-8'))
    assert _crypto.public_key_der(bundled_key.public_key()) == _crypto.public_key_der(key.public_key())
    assert bundled_cert.public_bytes(serialization.Encoding.PEM).decode('ascii') == open(host.cert).read()
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, PASSPHRASE.split(' ', maxsplit=1)[0].encode('utf-8'))
    assert pkcs12_algorithms_current(data)
    if OPENSSL:
        info = openssl_pkcs12_info(host.p12, PASSPHRASE)
        assert 'MAC: sha256' in info
        assert 'PBES2, PBKDF2, AES-256-CBC' in info
        assert 'RC2' not in info and '3DES' not in info and 'TripleDES' not in info
    assert PASSPHRASE not in str(result)
    assert host('pkcs12', **pkcs12_args(host))['changed'] is False


def test_pkcs12_rebuilt_for_another_passphrase_certificate_or_legacy_algorithms(host):
    key = installed_pair(host)
    assert host('pkcs12', **pkcs12_args(host))['built'] is True
    assert host('pkcs12', **pkcs12_args(host, passphrase='another one'))['reason'] == 'does not open with the passphrase'
    # A bundle of the same pair made with 3DES and a SHA-1 MAC (OpenSSL 1.1 defaults) is rebuilt.
    legacy = (serialization.PrivateFormat.PKCS12.encryption_builder()
              .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
              .build(PASSPHRASE.encode('utf-8')))
    cert = _crypto.read_certificate_file(host.cert)
    with open(host.p12, 'wb') as handle:
        handle.write(pkcs12.serialize_key_and_certificates(b'x', key, cert, None, legacy))
    result = host('pkcs12', **pkcs12_args(host))
    assert result['built'] is True and result['reason'] == 'not AES-256-CBC with PBKDF2 and a SHA-256 MAC'
    # A new certificate for the same key: rebuilt.
    host('install', key_path=host.key, certificate_path=host.cert, certificate_content=issue_certificate(key.public_key(), serial=7))
    assert host('pkcs12', **pkcs12_args(host))['reason'] == 'holds another certificate or key'


def test_pkcs12_does_nothing_while_the_certificate_does_not_match_the_key(host):
    installed_pair(host)
    with open(host.cert, 'w') as handle:
        handle.write(issue_certificate(ec.generate_private_key(ec.SECP256R1()).public_key()))
    result = host('pkcs12', **pkcs12_args(host))
    assert result.exit_code == 0 and result['changed'] is False and result['built'] is False
    assert not os.path.exists(host.p12)


@pytest.mark.parametrize('passphrase', ['line one\nline two', 'tab\there', 'trailing newline\n', ''])
def test_pkcs12_refuses_passphrases_it_could_not_pass_whole(host, passphrase):
    installed_pair(host)
    result = host('pkcs12', **pkcs12_args(host, passphrase=passphrase))
    assert result.exit_code == 1
    assert not os.path.exists(host.p12)
    if passphrase:
        assert 'control character' in result['msg'] and passphrase not in result['msg']


def test_openssl_backend_never_puts_the_passphrase_or_key_on_a_command_line(run_module, tmp_path, monkeypatch):
    if OPENSSL is None:
        pytest.skip('the openssl command is not installed')
    seen = []
    real = basic.AnsibleModule.run_command

    def recording(self, args, **kwargs):
        seen.append((list(args), kwargs))
        return real(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', recording)
    directory = tmp_path / '$HOME $(touch M1)'
    directory.mkdir()
    key, cert, p12 = str(directory / 'k.key'), str(directory / 'k.crt'), str(directory / 'k.p12')
    key_object = ec.generate_private_key(ec.SECP256R1())
    key_pem = _crypto.private_key_to_pem(key_object).decode('ascii')
    base = dict(backend='openssl', key_path=key, certificate_path=cert)
    assert run_module(ksef_deploy_host, dict(base, operation='install', key_content=key_pem,
                                             certificate_content=issue_certificate(key_object.public_key()))).exit_code == 0
    result = run_module(ksef_deploy_host, dict(base, operation='pkcs12', pkcs12_path=p12, pkcs12_passphrase=PASSPHRASE))
    assert result.exit_code == 0 and result['built'] is True, result
    assert os.path.exists(p12)  # the literal path: $HOME was not expanded
    assert seen
    for argv, kwargs in seen:
        assert kwargs.get('expand_user_and_vars') is False
        assert not kwargs.get('use_unsafe_shell')
        joined = ' '.join(argv)
        assert PASSPHRASE not in joined and 'PRIVATE KEY' not in joined
    assert not os.path.exists('M1') and not os.path.exists(str(tmp_path / 'M1'))


# --- absent and directory ---------------------------------------------------------------------

def test_absent_removes_the_given_files(host):
    installed_pair(host)
    args = dict(paths=[host.key, host.cert, host.p12])
    assert host('remove', check_mode=True, **args)['removed'] == [host.key, host.cert]
    assert os.path.exists(host.key)
    result = host('remove', **args)
    assert result['changed'] is True and result['removed'] == [host.key, host.cert]
    assert not os.path.exists(host.key) and not os.path.exists(host.cert)
    assert host('remove', **args)['changed'] is False


def test_directory_creates_missing_ones_at_the_literal_path(host):
    private = str(host.dir / 'a $HOME' / 'private')
    certs = str(host.dir / 'a $HOME' / 'certs')
    existing = str(host.dir)
    os.chmod(existing, 0o751)
    args = dict(directories=[{'path': certs, 'mode': '0755'}, {'path': private, 'mode': 0o700},
                             {'path': existing, 'mode': '0700'}])
    assert host('directory', check_mode=True, **args)['created'] == [os.path.dirname(certs), certs, private]
    result = host('directory', **args)
    assert result['created'] == [os.path.dirname(certs), certs, private]
    assert mode_of(certs) == 0o755 and mode_of(os.path.dirname(certs)) == 0o755 and mode_of(private) == 0o700
    assert mode_of(existing) == 0o751  # an existing directory is left as it is
    assert host('directory', **args)['changed'] is False


def test_bad_mode_is_refused(host):
    result = host('install', key_path=host.key, certificate_path=host.cert, key_mode='u=rw')
    assert result.exit_code == 1 and 'octal mode' in result['msg']


# --- backend selection ------------------------------------------------------------------------

def test_auto_uses_openssl_when_cryptography_is_missing(run_module, tmp_path, monkeypatch):
    if OPENSSL is None:
        pytest.skip('the openssl command is not installed')
    monkeypatch.setattr(_host_backend.CryptographyBackend, 'usable', staticmethod(lambda: False))
    result = run_module(ksef_deploy_host, dict(operation='csr', key_path=str(tmp_path / 'a.key'),
                                               enrollment_data={'commonName': 'Firma'}))
    assert result.exit_code == 0, result
    assert result['backend'] == 'openssl'
    assert mode_of(str(tmp_path / 'a.key.next')) == 0o600


def test_a_host_with_neither_backend_gets_a_clear_message(run_module, tmp_path, monkeypatch):
    monkeypatch.setattr(_host_backend.CryptographyBackend, 'usable', staticmethod(lambda: False))
    result = run_module(ksef_deploy_host, dict(operation='info', key_path=str(tmp_path / 'a.key'),
                                               certificate_path=str(tmp_path / 'a.crt'),
                                               openssl_path='no-such-openssl-command'))
    assert result.exit_code == 1
    assert 'cryptography' in result['msg'] and 'no-such-openssl-command' in result['msg']


@pytest.mark.parametrize('operation, args, missing', [
    ('info', {}, 'key_path, certificate_path'),
    ('csr', {'key_path': 'a.key'}, 'enrollment_data'),
    ('install', {'key_path': 'a.key'}, 'certificate_path'),
    ('pkcs12', {'key_path': 'a.key', 'certificate_path': 'a.crt'}, 'pkcs12_path'),
])
def test_an_operation_without_what_it_needs_fails_before_anything_runs(run_module, tmp_path, operation, args, missing):
    result = run_module(ksef_deploy_host, dict(dict((key, str(tmp_path / value)) for key, value in args.items()),
                                               operation=operation))
    assert result.exit_code == 1
    assert result['msg'] == 'operation is %s but all of the following are missing: %s' % (operation, missing)
    assert os.listdir(str(tmp_path)) == []
