# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_host_operations.py: each operation of ksef_deploy_host called directly (Host + run_*), on real files in tmp_path,
with both backends (the cryptography library and the real openssl command line).

modules/test_ksef_deploy_host.py runs the same operations through main(); these tests look at what main() hides:
the paths a Host derives, check mode's predictions per operation, a run that stopped half way, the reasons a
PKCS#12 bundle is rebuilt, and which operations need a backend at all.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import os
import re
import shutil
import stat
import subprocess

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils import _files as files
from ansible_collections.ksef.certificates.plugins.module_utils._host import operations
from ansible_collections.ksef.certificates.plugins.module_utils._host.checks import OPENSSL_PASSPHRASE_MAX_BYTES
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._pem import certificate_der, der_to_pem, pkcs12_algorithms_current
from ansible_collections.ksef.certificates.plugins.modules.ksef_deploy_host import argument_spec
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.certs import issue_certificate
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.host_backends import BACKENDS

UTC = datetime.timezone.utc
# The module's own defaults, so a Host here sees the parameters AnsibleModule would give it.
DEFAULTS = dict((name, spec.get('default')) for name, spec in argument_spec().items())
ENROLLMENT_DATA = {'commonName': u'Firma "Zażółć" a/b+c', 'organizationIdentifier': 'VATPL-1234563218', 'countryName': 'PL'}


class FakeModule:
    """The parts of AnsibleModule a Host uses; run_command really runs the command (argv list, no shell)."""

    def __init__(self, params, check_mode=False):
        self.params = dict(DEFAULTS, **params)
        self.check_mode = check_mode
        self.commands = []
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    @staticmethod
    def get_bin_path(name):
        return shutil.which(name)

    def run_command(self, args, data=None, binary_data=False, encoding=None, expand_user_and_vars=True, environ_update=None,
                    pass_fds=None):
        assert isinstance(args, list) and binary_data and encoding is None and not expand_user_and_vars
        self.commands.append(args)
        process = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=dict(os.environ, **(environ_update or {})), check=False, pass_fds=pass_fds or ())
        return process.returncode, process.stdout, process.stderr


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def paths(tmp_path):
    class Paths:
        directory = tmp_path
        key = str(tmp_path / 'app.key')
        next = key + '.next'
        csr = next + '.csr'
        cert = str(tmp_path / 'app.crt')
        p12 = str(tmp_path / 'app.p12')
    return Paths


@pytest.fixture
def make_host(backend):
    def make(operation, check_mode=False, **params):
        return operations.Host(FakeModule(dict(params, operation=operation, backend=backend), check_mode=check_mode))
    return make


def run(make_host, operation, check_mode=False, **params):
    host = make_host(operation, check_mode=check_mode, **params)
    return operations.OPERATIONS[operation](host), host


def write(path, data, mode=0o600):
    with open(path, 'wb') as handle:
        handle.write(data if isinstance(data, bytes) else data.encode('ascii'))
    os.chmod(path, mode)


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def public_key_of(path):
    return _crypto.public_key_der(_crypto.load_private_key(path).public_key())


def deployed_pair(paths, days=365):
    """A key and its certificate at paths.key / paths.cert; returns the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    write(paths.key, _crypto.private_key_to_pem(key))
    write(paths.cert, issue_certificate(key.public_key(), days=days), 0o644)
    return key


# --- Host -----------------------------------------------------------------------------------------

def test_host_derives_the_next_key_and_csr_paths_from_the_key_path(make_host, paths):
    host = make_host('csr', key_path=paths.key)
    assert host.path('key_path') == paths.key
    assert host.path('next_key_path') == paths.key + '.next'
    assert host.path('csr_path') == paths.key + '.next.csr'
    explicit = make_host('csr', key_path=paths.key, next_key_path=str(paths.directory / 'n.key'))
    assert explicit.path('csr_path') == str(paths.directory / 'n.key.csr')


def test_host_paths_are_absolute_and_literal(make_host, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    host = make_host('info', key_path='rel/$HOME/k.key', certificate_path='~/c.crt')
    assert host.path('key_path') == str(tmp_path / 'rel' / '$HOME' / 'k.key')
    assert host.path('certificate_path') == str(tmp_path / 'home' / 'c.crt')


def test_host_refuses_control_characters_in_paths_and_names_a_missing_path(make_host, paths):
    with pytest.raises(KsefError, match='key_path contains the control character U\\+000A'):
        make_host('info', key_path=paths.key + '\n')
    with pytest.raises(KsefError, match='operation=pkcs12 needs pkcs12_path'):
        make_host('pkcs12', key_path=paths.key).path('pkcs12_path')


def test_remove_and_directory_never_choose_a_backend(make_host, paths):
    result, host = run(make_host, 'remove', paths=[paths.key])
    assert result == dict(changed=False, removed=[])
    assert host.backend_name() == '' and host.module.commands == []
    result, host = run(make_host, 'directory', directories=[{'path': str(paths.directory), 'mode': '0700'}])
    assert result == dict(changed=False, created=[])
    assert host.backend_name() == ''


# --- info -----------------------------------------------------------------------------------------

def test_info_without_files(make_host, paths, backend):
    result, dummy_host = run(make_host, 'info', key_path=paths.key, certificate_path=paths.cert)
    assert result == dict(changed=False, key_exists=False, next_key_exists=False, certificate_exists=False,
                          certificate_parsed=False, certificate_matches_key=False, certificate_matches_next_key=False,
                          serial_number='', valid_to='', fingerprint_sha256='', renewal_due=None,
                          certificate_pem='')


def test_info_reads_the_deployed_pair_with_the_one_renewal_rule(make_host, paths, backend):
    deployed_pair(paths, days=20)
    result, host = run(make_host, 'info', key_path=paths.key, certificate_path=paths.cert, renew_before_days=30)
    assert host.backend_name() == backend
    der = certificate_der(read(paths.cert))
    cert = x509.load_der_x509_certificate(der)
    assert result['key_exists'] and result['certificate_exists'] and result['certificate_parsed']
    assert result['certificate_matches_key'] is True and result['certificate_matches_next_key'] is False
    assert not result['next_key_exists']
    assert result['serial_number'] == '0123456789ABCDEF'
    assert result['fingerprint_sha256'] == hashlib.sha256(der).hexdigest()
    assert result['valid_to'] == _crypto.certificate_not_after(cert).strftime('%Y-%m-%dT%H:%M:%S+00:00')
    assert result['renewal_due'] is True
    # 20 days and some hours left: not due with a 19-day window (_rules.renewal_due decides, not the backend).
    assert run(make_host, 'info', key_path=paths.key, certificate_path=paths.cert, renew_before_days=19)[0]['renewal_due'] is False


def test_info_sees_a_certificate_of_the_next_key_and_an_empty_key_file(make_host, paths, backend):
    next_key = ec.generate_private_key(ec.SECP256R1())
    write(paths.next, _crypto.private_key_to_pem(next_key))
    write(paths.cert, issue_certificate(next_key.public_key()), 0o644)
    write(paths.key, b'')
    result, dummy_host = run(make_host, 'info', key_path=paths.key, certificate_path=paths.cert)
    assert result['key_exists'] is False and result['next_key_exists'] is True
    assert result['certificate_matches_key'] is False and result['certificate_matches_next_key'] is True


def test_info_of_a_file_that_is_no_certificate(make_host, paths, backend):
    write(paths.cert, b'-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n')
    result, dummy_host = run(make_host, 'info', key_path=paths.key, certificate_path=paths.cert)
    assert result['certificate_exists'] is True and result['certificate_parsed'] is False
    assert result['renewal_due'] is None


# --- csr ------------------------------------------------------------------------------------------

def test_csr_makes_a_private_next_key_and_the_csr_in_the_one_subject_layout(make_host, paths, backend):
    result, dummy_host = run(make_host, 'csr', key_path=paths.key, enrollment_data=ENROLLMENT_DATA, key_type='rsa')
    assert result['changed'] is True and result['next_key_generated'] is True
    assert mode_of(paths.next) == 0o600 and not os.path.exists(paths.key)
    assert read(paths.csr).decode('ascii') == result['csr'] and mode_of(paths.csr) == 0o644
    csr = x509.load_pem_x509_csr(result['csr'].encode('ascii'))
    assert csr.is_signature_valid and csr.public_key().key_size == 2048
    assert _crypto.public_key_der(csr.public_key()) == public_key_of(paths.next)
    assert csr.subject.public_bytes() == _crypto.build_subject(ENROLLMENT_DATA).public_bytes()


def test_csr_reuses_the_next_key_an_earlier_run_made(make_host, paths, backend):
    key = ec.generate_private_key(ec.SECP256R1())
    write(paths.next, _crypto.private_key_to_pem(key))
    result, dummy_host = run(make_host, 'csr', key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
    assert result['next_key_generated'] is False
    csr = x509.load_pem_x509_csr(result['csr'].encode('ascii'))
    assert _crypto.public_key_der(csr.public_key()) == _crypto.public_key_der(key.public_key())


def test_csr_of_a_renewal_left_for_later_is_kept_and_reported_unchanged(make_host, paths, backend):
    """A host whose renewal is deferred runs the csr operation again with the same .next key: the CSR on disk asks
    for the same subject and key, so it is kept byte for byte and nothing changed (a new ECDSA signature would
    make a different file in every run)."""
    first, dummy_host = run(make_host, 'csr', key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
    assert first['changed'] is True
    for check_mode in (True, False):
        again, dummy_host = run(make_host, 'csr', check_mode=check_mode, key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
        assert again == dict(changed=False, csr=first['csr'], next_key_generated=False)
        assert read(paths.csr).decode('ascii') == first['csr']
    # Its mode is still the module's business.
    os.chmod(paths.csr, 0o600)
    fixed, dummy_host = run(make_host, 'csr', key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
    assert fixed['changed'] is True and fixed['csr'] == first['csr'] and mode_of(paths.csr) == 0o644


@pytest.mark.parametrize('stale', ['other subject', 'other key', 'bad signature', 'not a csr'])
def test_csr_on_disk_that_asks_for_something_else_is_replaced(make_host, paths, backend, stale):
    key = ec.generate_private_key(ec.SECP256R1())
    write(paths.next, _crypto.private_key_to_pem(key))
    data = dict(ENROLLMENT_DATA, commonName='Old name') if stale == 'other subject' else ENROLLMENT_DATA
    signer = ec.generate_private_key(ec.SECP256R1()) if stale == 'other key' else key
    der = _crypto.build_csr(signer, data)
    if stale == 'bad signature':
        der = der[:-1] + bytes([der[-1] ^ 1])
    write(paths.csr, 'garbage\n' if stale == 'not a csr' else der_to_pem(der, 'CERTIFICATE REQUEST'), 0o644)
    result, dummy_host = run(make_host, 'csr', key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
    assert result['changed'] is True and read(paths.csr).decode('ascii') == result['csr']
    csr = x509.load_pem_x509_csr(result['csr'].encode('ascii'))
    assert csr.is_signature_valid and _crypto.public_key_der(csr.public_key()) == _crypto.public_key_der(key.public_key())
    assert csr.subject.public_bytes() == _crypto.build_subject(ENROLLMENT_DATA).public_bytes()


def test_csr_in_check_mode_predicts_and_writes_nothing(make_host, paths, backend):
    result, dummy_host = run(make_host, 'csr', check_mode=True, key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
    assert result == dict(changed=True, csr=None, next_key_generated=True)
    assert os.listdir(str(paths.directory)) == []
    # With a .next key already there, check mode shows the CSR it would write, and still writes nothing.
    write(paths.next, _crypto.private_key_to_pem(ec.generate_private_key(ec.SECP256R1())))
    result, dummy_host = run(make_host, 'csr', check_mode=True, key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
    assert result['changed'] is True and result['next_key_generated'] is False and 'CERTIFICATE REQUEST' in result['csr']
    assert not os.path.exists(paths.csr)


def test_csr_refuses_bad_enrollment_data_before_making_a_key(make_host, paths, backend):
    with pytest.raises(KsefError, match='countryName'):
        run(make_host, 'csr', key_path=paths.key, enrollment_data=dict(ENROLLMENT_DATA, countryName=u'Polska ż'))
    with pytest.raises(KsefError, match='none of the subject fields'):
        run(make_host, 'csr', key_path=paths.key, enrollment_data={})
    assert os.listdir(str(paths.directory)) == []


# --- install --------------------------------------------------------------------------------------

def test_install_writes_the_certificate_moves_the_next_key_and_removes_the_leftovers(make_host, paths, backend):
    next_key = ec.generate_private_key(ec.SECP256R1())
    write(paths.next, _crypto.private_key_to_pem(next_key))
    write(paths.csr, b'csr', 0o644)
    write(paths.next + '.cnf', b'config', 0o644)
    pem = issue_certificate(next_key.public_key())
    args = dict(key_path=paths.key, certificate_path=paths.cert, certificate_content=pem, key_from_next=True)
    predicted, dummy_host = run(make_host, 'install', check_mode=True, **args)
    assert predicted == dict(changed=True)
    assert sorted(os.listdir(str(paths.directory))) == ['app.key.next', 'app.key.next.cnf', 'app.key.next.csr']
    assert run(make_host, 'install', **args)[0] == dict(changed=True)
    assert sorted(os.listdir(str(paths.directory))) == ['app.crt', 'app.key']
    assert public_key_of(paths.key) == _crypto.public_key_der(next_key.public_key())
    assert read(paths.cert) == pem.encode('ascii')
    assert mode_of(paths.key) == 0o600 and mode_of(paths.cert) == 0o644
    assert run(make_host, 'install', check_mode=True, **args)[0] == dict(changed=False)
    assert run(make_host, 'install', **args)[0] == dict(changed=False)


def test_install_finishes_a_run_that_stopped_after_the_certificate(make_host, paths, backend):
    next_key = ec.generate_private_key(ec.SECP256R1())
    write(paths.next, _crypto.private_key_to_pem(next_key))
    write(paths.cert, issue_certificate(next_key.public_key()), 0o644)
    result, dummy_host = run(make_host, 'install', key_path=paths.key, certificate_path=paths.cert, key_from_next=True)
    assert result == dict(changed=True)
    assert not os.path.exists(paths.next)
    assert public_key_of(paths.key) == _crypto.public_key_der(next_key.public_key())


def test_install_leaves_the_next_key_when_the_certificate_is_for_another_key(make_host, paths, backend):
    write(paths.next, _crypto.private_key_to_pem(ec.generate_private_key(ec.SECP256R1())))
    old = deployed_pair(paths)
    other = issue_certificate(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(KsefError, match='does not carry the public key'):
        run(make_host, 'install', key_path=paths.key, certificate_path=paths.cert, certificate_content=other,
            key_from_next=True)
    assert os.path.exists(paths.next)
    assert public_key_of(paths.key) == _crypto.public_key_der(old.public_key())


def test_install_of_key_content_and_modes(make_host, paths, backend):
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = _crypto.private_key_to_pem(key).decode('ascii')
    args = dict(key_path=paths.key, certificate_path=paths.cert, certificate_content=issue_certificate(key.public_key()) + '\r\n\n',
                key_content=key_pem.replace('\n', '\r\n'), certificate_mode='0640')
    assert run(make_host, 'install', **args)[0] == dict(changed=True)
    assert read(paths.key) == key_pem.encode('ascii')  # CRLF and trailing blank lines normalised
    assert mode_of(paths.key) == 0o600 and mode_of(paths.cert) == 0o640
    os.chmod(paths.cert, 0o600)
    assert run(make_host, 'install', check_mode=True, **args)[0] == dict(changed=True)
    assert mode_of(paths.cert) == 0o600
    assert run(make_host, 'install', **args)[0] == dict(changed=True)
    assert mode_of(paths.cert) == 0o640
    assert run(make_host, 'install', **args)[0] == dict(changed=False)


@pytest.mark.parametrize('content, words', [
    ('not a certificate', 'certificate_content is not a PEM certificate'),
    (u'-----BEGIN CERTIFICATE-----\nżółw\n-----END CERTIFICATE-----', 'certificate_content is not PEM text'),
    ('-----BEGIN CERTIFICATE-----\nMAA=\x00\n-----END CERTIFICATE-----', 'certificate_content is not PEM text'),
])
def test_install_refuses_content_that_is_no_pem_certificate(make_host, paths, backend, content, words):
    with pytest.raises(KsefError, match=words):
        run(make_host, 'install', key_path=paths.key, certificate_path=paths.cert, certificate_content=content)
    assert os.listdir(str(paths.directory)) == []


# --- pkcs12 ---------------------------------------------------------------------------------------

PASSPHRASE = u'p\'a"s $(x) ąę'


def pkcs12_args(paths, passphrase=PASSPHRASE):
    return dict(key_path=paths.key, certificate_path=paths.cert, pkcs12_path=paths.p12, pkcs12_passphrase=passphrase)


def test_pkcs12_is_built_then_current_then_rebuilt_for_each_reason(make_host, paths, backend):
    deployed_pair(paths)
    predicted, dummy_host = run(make_host, 'pkcs12', check_mode=True, **pkcs12_args(paths))
    assert predicted == dict(changed=True, built=True, reason='missing') and not os.path.exists(paths.p12)
    assert run(make_host, 'pkcs12', **pkcs12_args(paths))[0] == dict(changed=True, built=True, reason='missing')
    data = read(paths.p12)
    assert pkcs12_algorithms_current(data) and mode_of(paths.p12) == 0o600
    assert _crypto.pkcs12_matches(paths.p12, PASSPHRASE, _crypto.load_private_key(paths.key),
                                  _crypto.read_certificate_file(paths.cert))
    assert run(make_host, 'pkcs12', **pkcs12_args(paths))[0] == dict(changed=False, built=False, reason='current')
    assert read(paths.p12) == data

    rebuilt = run(make_host, 'pkcs12', **pkcs12_args(paths, passphrase='another passphrase'))[0]
    assert rebuilt == dict(changed=True, built=True, reason='does not open with the passphrase')
    deployed_pair(paths)
    rebuilt = run(make_host, 'pkcs12', **pkcs12_args(paths, passphrase='another passphrase'))[0]
    assert rebuilt == dict(changed=True, built=True, reason='holds another certificate or key')
    legacy = (serialization.PrivateFormat.PKCS12.encryption_builder()
              .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
              .build(b'another passphrase'))
    write(paths.p12, pkcs12.serialize_key_and_certificates(
        b'x', _crypto.load_private_key(paths.key), _crypto.read_certificate_file(paths.cert), None, legacy))
    rebuilt = run(make_host, 'pkcs12', **pkcs12_args(paths, passphrase='another passphrase'))[0]
    assert rebuilt == dict(changed=True, built=True, reason='not AES-256-CBC with PBKDF2 and a SHA-256 MAC')


def test_pkcs12_of_a_certificate_that_does_not_match_the_key_builds_nothing(make_host, paths, backend):
    deployed_pair(paths)
    write(paths.key, _crypto.private_key_to_pem(ec.generate_private_key(ec.SECP256R1())))
    result, dummy_host = run(make_host, 'pkcs12', **pkcs12_args(paths))
    assert result == dict(changed=False, built=False, reason='the certificate does not match the key: nothing to bundle')
    assert not os.path.exists(paths.p12)


def test_pkcs12_fixes_the_mode_of_a_current_bundle(make_host, paths, backend):
    deployed_pair(paths)
    run(make_host, 'pkcs12', **pkcs12_args(paths))
    os.chmod(paths.p12, 0o644)
    assert run(make_host, 'pkcs12', check_mode=True, **pkcs12_args(paths))[0] == dict(changed=True, built=False, reason='current')
    assert mode_of(paths.p12) == 0o644
    assert run(make_host, 'pkcs12', pkcs12_mode='0640', **pkcs12_args(paths))[0]['changed'] is True
    assert mode_of(paths.p12) == 0o640


def test_pkcs12_passphrase_limit_of_the_openssl_command_line(make_host, paths, backend):
    deployed_pair(paths)
    too_long = 'x' * (OPENSSL_PASSPHRASE_MAX_BYTES + 1)
    if backend == 'openssl':
        with pytest.raises(KsefError, match='longer than the 1023 bytes'):
            run(make_host, 'pkcs12', **pkcs12_args(paths, passphrase=too_long))
        assert not os.path.exists(paths.p12)
    else:
        assert run(make_host, 'pkcs12', **pkcs12_args(paths, passphrase=too_long))[0]['built'] is True
    assert run(make_host, 'pkcs12', **pkcs12_args(paths, passphrase='x' * OPENSSL_PASSPHRASE_MAX_BYTES))[0]['built'] is True


@pytest.mark.parametrize('params, words', [
    (dict(pkcs12_passphrase='two\nlines'), 'control character'),
    (dict(pkcs12_passphrase=None), 'non-empty string'),
    (dict(pkcs12_name='name\twith a tab'), 'pkcs12_name contains the control character U\\+0009'),
])
def test_pkcs12_refuses_what_it_could_not_pass_whole(make_host, paths, backend, params, words):
    deployed_pair(paths)
    with pytest.raises(KsefError, match=words):
        run(make_host, 'pkcs12', **dict(pkcs12_args(paths), **params))
    assert not os.path.exists(paths.p12)


# --- remove ---------------------------------------------------------------------------------------

def test_remove_removes_the_existing_files_and_symlinks_only(make_host, paths):
    deployed_pair(paths)
    link = str(paths.directory / 'link.crt')
    os.symlink(paths.cert, link)
    args = dict(paths=[paths.key, paths.p12, link])
    assert run(make_host, 'remove', check_mode=True, **args)[0] == dict(changed=True, removed=[paths.key, link])
    assert os.path.exists(paths.key) and os.path.islink(link)
    assert run(make_host, 'remove', **args)[0] == dict(changed=True, removed=[paths.key, link])
    assert sorted(os.listdir(str(paths.directory))) == ['app.crt']  # the symlink went, not its target
    assert run(make_host, 'remove', **args)[0] == dict(changed=False, removed=[])


# --- directory ------------------------------------------------------------------------------------

def test_directory_creates_the_missing_ones_once_with_their_modes(make_host, paths):
    base = str(paths.directory / 'etc')
    certs = os.path.join(base, 'certs')
    private = os.path.join(base, 'private')
    args = dict(directories=[{'path': certs, 'mode': '0755'}, {'path': private, 'mode': 0o700},
                             {'path': certs + '/', 'mode': '0700'}])
    assert run(make_host, 'directory', check_mode=True, **args)[0] == dict(changed=True, created=[base, certs, private])
    assert not os.path.exists(base)
    assert run(make_host, 'directory', **args)[0] == dict(changed=True, created=[base, certs, private])
    assert mode_of(base) == 0o755 and mode_of(certs) == 0o755 and mode_of(private) == 0o700
    assert run(make_host, 'directory', **args)[0] == dict(changed=False, created=[])


def test_directory_refuses_a_file_in_the_way_and_a_bad_mode(make_host, paths):
    write(str(paths.directory / 'file'), b'x')
    with pytest.raises(files.HostFileError, match='is not a directory'):
        run(make_host, 'directory', directories=[{'path': str(paths.directory / 'file' / 'sub'), 'mode': '0700'}])
    with pytest.raises(files.HostFileError, match='octal mode'):
        run(make_host, 'directory', directories=[{'path': str(paths.directory / 'new'), 'mode': 'u=rwx'}])
    assert not os.path.exists(str(paths.directory / 'new'))


# --- issue 17: another user's links, FIFOs, devices and keys on the host ----------------------------


@pytest.fixture
def root_only(tmp_path):
    """A root-only file outside the deployed directory (as /etc/shadow)."""
    path = tmp_path / 'elsewhere' / 'shadow'
    path.parent.mkdir()
    path.write_bytes(b'root:secret\n')
    os.chmod(str(path), 0o600)
    return path


def untouched(root_only):
    info = os.stat(str(root_only))
    return stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0 and read(str(root_only)) == b'root:secret\n'


@pytest.mark.parametrize('content', [True, False])
def test_install_never_changes_the_target_of_a_certificate_link(make_host, paths, backend, root_only, content):
    """Finding 1: the certificate swapped for a link to a root-only file; the run keeps mode and owner."""
    deployed_pair(paths)
    pem = read(paths.cert)
    os.unlink(paths.cert)
    os.symlink(str(root_only), paths.cert)
    params = dict(key_path=paths.key, certificate_path=paths.cert, certificate_mode='0644', owner='65534')
    if content:
        params['certificate_content'] = pem.decode('ascii')
    with pytest.raises(files.HostFileError, match='app.crt is a symbolic link'):
        run(make_host, 'install', **params)
    assert untouched(root_only) and os.path.islink(paths.cert)


@pytest.mark.parametrize('kind', ['fifo', 'device link'])
def test_info_fails_at_once_on_a_fifo_or_a_device(make_host, paths, backend, kind):
    """Finding 4: a certificate path that is a FIFO (it would hang) or a link to /dev/zero (it would fill memory)."""
    deployed_pair(paths)
    os.unlink(paths.cert)
    if kind == 'fifo':
        os.mkfifo(paths.cert)
    else:
        os.symlink('/dev/zero', paths.cert)
    with pytest.raises(files.HostFileError, match='app.crt is a (FIFO|symbolic link)'):
        run(make_host, 'info', key_path=paths.key, certificate_path=paths.cert)


def _plant(paths, how, root_only):
    planted = ec.generate_private_key(ec.SECP256R1())
    pem = _crypto.private_key_to_pem(planted)
    if how == 'link':
        write(str(root_only.parent / 'planted.key'), pem)
        os.symlink(str(root_only.parent / 'planted.key'), paths.next)
    else:
        write(paths.next, pem, 0o644 if how == 'mode 0644' else 0o600)
        if how == 'another owner':
            os.chown(paths.next, 65534, -1)
        if how == 'group-writable directory':
            os.chmod(str(paths.directory), 0o770)
        if how == 'hard link':
            os.link(paths.next, str(paths.directory / 'second-name'))
    return _crypto.public_key_der(planted.public_key())


@pytest.mark.parametrize('how', ['link', 'mode 0644', 'another owner', 'group-writable directory', 'hard link'])
def test_csr_never_certifies_a_planted_next_key(make_host, paths, backend, root_only, how):
    """Finding 3: a .next key another user could have written is discarded; a new key is made and certified."""
    planted = _plant(paths, how, root_only)
    result, host = run(make_host, 'csr', key_path=paths.key, enrollment_data=ENROLLMENT_DATA)
    csr = x509.load_pem_x509_csr(result['csr'].encode('ascii'))
    assert result['next_key_generated'] is True
    assert _crypto.public_key_der(csr.public_key()) != planted
    assert _crypto.public_key_der(csr.public_key()) == public_key_of(paths.next)
    assert not os.path.islink(paths.next) and mode_of(paths.next) == 0o600 and os.stat(paths.next).st_uid == 0
    assert any('is not reused' in warning for warning in host.module.warnings), host.module.warnings
    if how == 'group-writable directory':
        assert any('writable by its group' in warning for warning in host.module.warnings)
    assert untouched(root_only)


def test_pkcs12_iterations_are_the_same_strong_count_in_both_backends(make_host, paths, backend):
    """Info item: the openssl backend used 2,048 PBKDF2 iterations, the cryptography backend 20,000."""
    openssl = shutil.which('openssl')
    if openssl is None:
        pytest.skip('no openssl command to read the bundle')
    deployed_pair(paths)
    run(make_host, 'pkcs12', **pkcs12_args(paths, passphrase='iteration check'))
    info = subprocess.run([openssl, 'pkcs12', '-info', '-noout', '-in', paths.p12, '-passin', 'pass:iteration check'],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False).stdout
    # The PBKDF2 counts of the key and the certificates (the MAC's count is cryptography's fixed 2,048 there).
    counts = re.findall(r'PBES2, PBKDF2, AES-256-CBC, Iteration (\d+)', info)
    assert len(counts) == 2 and set(int(count) for count in counts) == {_crypto.PKCS12_KDF_ROUNDS}, info
    assert _crypto.PKCS12_KDF_ROUNDS >= 50000


# --- prepare: the role's one call per host ------------------------------------------------------

def prepare_entry(paths, **changes):
    entry = {'key_path': paths.key, 'next_key_path': None, 'certificate_path': paths.cert, 'renew_before_days': 30,
             'key_mode': '0600', 'certificate_mode': '0644', 'owner': None, 'group': None}
    entry.update(changes)
    return entry


def test_prepare_creates_directories_inspects_and_keeps_the_modes_of_an_installed_pair(make_host, paths, backend):
    deployed_pair(paths)
    os.chmod(paths.key, 0o644)
    new_dir = str(paths.directory / 'new' / 'certs')
    args = dict(directories=[{'path': new_dir, 'mode': '0755'}], certificates=[prepare_entry(paths)])
    predicted = run(make_host, 'prepare', check_mode=True, **args)[0]
    assert predicted['changed'] and predicted['created'] == [str(paths.directory / 'new'), new_dir]
    assert predicted['certificates'][0]['attributes_changed'] == [paths.key]
    assert predicted['certificates'][0]['certificate_matches_key'] and mode_of(paths.key) == 0o644
    assert not os.path.exists(new_dir)
    done = run(make_host, 'prepare', **args)[0]
    assert done['changed'] and mode_of(paths.key) == 0o600 and os.path.isdir(new_dir)
    found = done['certificates'][0]
    assert found['serial_number'] and found['renewal_due'] is False and found['key_exists']
    again = run(make_host, 'prepare', **args)[0]
    assert not again['changed'] and again['created'] == [] and again['certificates'][0]['attributes_changed'] == []


def test_prepare_leaves_a_pair_waiting_for_its_next_key_and_a_missing_key_alone(make_host, paths, backend):
    key = deployed_pair(paths)
    os.chmod(paths.cert, 0o600)
    write(paths.next, _crypto.private_key_to_pem(key))  # the certificate carries the .next key: install pending
    found = run(make_host, 'prepare', certificates=[prepare_entry(paths)])[0]
    assert not found['changed'] and found['certificates'][0]['certificate_matches_next_key']
    assert mode_of(paths.cert) == 0o600
    os.unlink(paths.next)
    os.unlink(paths.key)
    missing = run(make_host, 'prepare', certificates=[prepare_entry(paths)])[0]['certificates'][0]
    assert not missing['key_exists'] and not missing['certificate_matches_key'] and missing['attributes_changed'] == []


def test_prepare_in_check_mode_before_the_directories_exist(make_host, paths, backend):
    missing = paths.directory / 'not-yet'
    entry = prepare_entry(paths, key_path=str(missing / 'private' / 'app.key'),
                          certificate_path=str(missing / 'certs' / 'app.crt'))
    predicted = run(make_host, 'prepare', check_mode=True, certificates=[entry],
                    directories=[{'path': str(missing / 'certs'), 'mode': '0755'}])[0]
    found = predicted['certificates'][0]
    assert predicted['changed'] and not found['certificate_parsed'] and not found['key_exists']
    assert not os.path.exists(str(missing))


def test_prepare_names_every_refused_file_and_still_keeps_the_modes_of_the_others(make_host, paths, backend):
    """A link at one certificate's path and a FIFO at another's key: the host fails once, naming both; the healthy
    pair between them still gets its mode back."""
    deployed_pair(paths)
    os.chmod(paths.key, 0o644)
    link = str(paths.directory / 'linked.crt')
    os.symlink(paths.cert, link)
    fifo = str(paths.directory / 'fifo.key')
    os.mkfifo(fifo, 0o600)
    shutil.copyfile(paths.cert, str(paths.directory / 'fifo.crt'))
    entries = [prepare_entry(paths, key_path=str(paths.directory / 'other.key'), certificate_path=link),
               prepare_entry(paths),
               prepare_entry(paths, key_path=fifo, certificate_path=str(paths.directory / 'fifo.crt'))]
    with pytest.raises(KsefError) as refused:
        run(make_host, 'prepare', certificates=entries)
    message = str(refused.value)
    assert (link + ' is a symbolic link') in message and (fifo + ' is a FIFO') in message
    assert mode_of(paths.key) == 0o600


# --- sign: the deployed key signs the controller's bytes in place ------------------------------------

def _verify(public_key, scheme, data, signature):
    """Check a signature of operation=sign with cryptography, as the controller (and KSeF) does."""
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    if isinstance(public_key, rsa.RSAPublicKey):
        pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if scheme == 'rsa_pss_sha256'
               else padding.PKCS1v15())
        public_key.verify(signature, data, pad, hashes.SHA256())
        return
    size = (public_key.curve.key_size + 7) // 8
    assert len(signature) == 2 * size  # raw r||s (IEEE P1363), never DER
    der = encode_dss_signature(int.from_bytes(signature[:size], 'big'), int.from_bytes(signature[size:], 'big'))
    public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize('key_type,scheme', [('rsa', 'rsa_pkcs1v15_sha256'), ('rsa', 'rsa_pss_sha256'),
                                             ('ec', 'ecdsa_sha256'), ('ec', 'ecdsa_p256_p1363')])
def test_sign_makes_a_signature_the_certificate_verifies_in_every_scheme(make_host, paths, key_type, scheme):
    import base64
    key = _crypto.generate_private_key(key_type)
    write(paths.key, _crypto.private_key_to_pem(key))
    data = b'<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">\xc5\xbc</ds:SignedInfo>'
    before = read(paths.key)
    result, host = run(make_host, 'sign', key_path=paths.key, data=base64.b64encode(data).decode('ascii'), scheme=scheme)
    assert result['changed'] is False and result['scheme'] == scheme
    _verify(key.public_key(), scheme, data, base64.b64decode(result['signature']))
    assert read(paths.key) == before and mode_of(paths.key) == 0o600
    # The key travels to openssl through a pipe, never as an argument or on the command line as text.
    for command in host.module.commands:
        assert paths.key not in command and not any('PRIVATE KEY' in str(arg) for arg in command)


@pytest.mark.parametrize('key_type,scheme', [('ec', 'rsa_pss_sha256'), ('ec', 'rsa_pkcs1v15_sha256'),
                                             ('rsa', 'ecdsa_p256_p1363'), ('rsa', 'ecdsa_sha256')])
def test_sign_refuses_a_scheme_of_the_other_key_type(make_host, paths, key_type, scheme):
    write(paths.key, _crypto.private_key_to_pem(_crypto.generate_private_key(key_type)))
    with pytest.raises(KsefError, match='needs an %s key' % ('RSA' if key_type == 'ec' else 'EC')):
        run(make_host, 'sign', key_path=paths.key, data='YWJj', scheme=scheme)


def test_sign_p1363_needs_a_p256_key(make_host, paths):
    write(paths.key, _crypto.private_key_to_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(KsefError, match='P-256'):
        run(make_host, 'sign', key_path=paths.key, data='YWJj', scheme='ecdsa_p256_p1363')


@pytest.mark.parametrize('params,message', [
    ({'data': 'YWJj'}, 'needs scheme'),
    ({'scheme': 'ecdsa_sha256'}, 'needs data'),
    ({'scheme': 'ecdsa_sha256', 'data': 'not base64!'}, 'not Base64'),
    ({'scheme': 'ecdsa_sha256', 'data': 'A' * 21848}, 'longer than the 16384 bytes'),
    ({'scheme': 'ecdsa_sha256', 'data': 'A' * 40000}, 'longer than the 16384 bytes'),
])
def test_sign_checks_its_input_before_reading_the_key(make_host, paths, params, message):
    deployed_pair(paths)
    with pytest.raises(KsefError, match=message):
        run(make_host, 'sign', key_path=paths.key, **params)


def test_sign_without_a_key_names_the_file(make_host, paths):
    with pytest.raises(KsefError, match='does not exist'):
        run(make_host, 'sign', key_path=paths.key, data='YWJj', scheme='ecdsa_sha256')


def test_info_returns_the_certificate_pem(make_host, paths):
    deployed_pair(paths)
    result, dummy_host = run(make_host, 'info', key_path=paths.key, certificate_path=paths.cert)
    assert certificate_der(result['certificate_pem'].encode('ascii')) == certificate_der(read(paths.cert))
