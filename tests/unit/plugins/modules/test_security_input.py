# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile but legal input (issue 14): control characters in enrollment data, names, passphrases and URLs;
identifiers matched in full; backups 0600 with a retention. Each test names the finding it guards."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import os
import shutil
import subprocess

import pytest

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto, _rules
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi, normalize_serial_numbers
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration, validate_declaration
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError, KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.plugins.module_utils._connection import validate_connection_params, validate_context
from ansible_collections.ksef.certificates.plugins.module_utils._xades import classify_allowed_ips
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate, ksef_certificate_info
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import (
    ACCESS_TOKEN,
    CONNECTION,
    ENROLLMENT_DATA,
    FakeClock,
    FakeKsef,
    existing_pair,
    mode,
    query_exchange,
    rate_limits_exchange,
    single,
    snapshot,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.certs import make_seal_certificate
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

TEST_NIP = '1234563218'
# What a config-file injection through a subject value looks like (finding 3).
INJECTED = u'Jan\n[ default ]\nopenssl_conf = evil'
CONTROL_SAMPLES = [u'a\nb', u'a\rb', u'a\tb', u'a\x00b', u'a\x1bb', u'a\x7fb', u'a\x85b', u'a\u2028b', u'a\u2029b',
                   u'trailing\n']


class _Token:
    @staticmethod
    def access_token():
        return ACCESS_TOKEN


# ---------------------------------------------------------------------------------------------
# Control characters (finding 3, and the passphrase half of finding 6)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('value', CONTROL_SAMPLES)
def test_control_characters_are_recognised(value):
    assert _rules.has_control_characters(value)


@pytest.mark.parametrize('value', [u'Zażółć Gęślą', u'O\'Brien "Ltd" $(x) `y` \\ ; # &', u'TINPL-1234563218', u''])
def test_printable_text_is_not_a_control_character(value):
    assert not _rules.has_control_characters(value)


@pytest.mark.parametrize('field', ['commonName', 'surname', 'givenName', 'organizationName', 'serialNumber',
                                   'uniqueIdentifier'])
def test_enrollment_data_with_a_control_character_is_refused_by_the_api_layer(field):
    """finding 3: GET /certificates/enrollments/data with a newline in any subject value is not passed on."""
    data = dict(ENROLLMENT_DATA, **{field: INJECTED})
    script = HttpScript([Exchange('GET', '/certificates/enrollments/data', reply=data)])
    api = KsefApi(KsefHttpClient('https://ksef.invalid/v2', session=script.session()), authenticator=_Token())
    with pytest.raises(KsefError) as info:
        api.enrollment_data()
    message = str(info.value)
    assert 'GET /certificates/enrollments/data' in message and field in message
    assert 'control character' in message and '\n' not in message


def test_clean_enrollment_data_passes_unchanged():
    script = HttpScript([Exchange('GET', '/certificates/enrollments/data', reply=ENROLLMENT_DATA)])
    api = KsefApi(KsefHttpClient('https://ksef.invalid/v2', session=script.session()), authenticator=_Token())
    assert api.enrollment_data() == ENROLLMENT_DATA


def test_main_enrollment_data_with_a_newline_stops_before_the_enrollment(run_module, monkeypatch, tmp_path):
    """finding 3, through main(): no key is generated, no enrollment is sent, nothing is written."""
    fake = FakeKsef(FakeClock())
    script = HttpScript([
        query_exchange([]),
        rate_limits_exchange(),
        Exchange('GET', '/certificates/limits', token=ACCESS_TOKEN, reply=fake.limits_reply),
        Exchange('GET', '/certificates/enrollments/data', token=ACCESS_TOKEN,
                 reply=dict(ENROLLMENT_DATA, commonName=INJECTED)),
    ]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, **single(tmp_path)))
    script.verify()   # and no POST /certificates/enrollments
    assert result.exit_code == 1 and 'commonName' in result['msg'] and 'control character' in result['msg']
    assert snapshot(tmp_path) == {}


def test_info_does_not_return_enrollment_data_with_a_control_character(run_module, monkeypatch):
    """finding 3: the role builds its OpenSSL config from ksef_certificate_info's enrollment_data."""
    script = HttpScript([
        query_exchange([], body={}),
        Exchange('GET', '/certificates/enrollments/data', token=ACCESS_TOKEN,
                 reply=dict(ENROLLMENT_DATA, givenName=INJECTED)),
    ]).install(monkeypatch)
    result = run_module(ksef_certificate_info, dict(CONNECTION, include_enrollment_data=True))
    script.verify()
    assert result.exit_code == 1 and 'givenName' in result['msg']
    assert 'enrollment_data' not in result


def _declaration(**values):
    options = dict(name='erp-auth', type='authentication', state='present', private_key_path='/tmp/none/erp.key')
    options.update(values)
    return Declaration(options)


@pytest.mark.parametrize('option', ['private_key_passphrase', 'pkcs12_passphrase'])
@pytest.mark.parametrize('value', CONTROL_SAMPLES)
def test_passphrases_with_control_characters_are_refused_without_showing_them(option, value):
    secret = u'S3cr3t-' + value
    extra = {'pkcs12_path': '/tmp/none/erp.p12'} if option == 'pkcs12_passphrase' else {}
    with pytest.raises(KsefInputError) as info:
        validate_declaration(_declaration(**dict(extra, **{option: secret})))
    message = str(info.value)
    assert option in message and 'control character' in message
    assert 'S3cr3t' not in message


@pytest.mark.parametrize('secret', [u'a "quoted" \'one\'', u'back\\slash', u'$(touch M3) `id` $HOME', u'zażółć gęślą'])
def test_printable_passphrases_are_accepted(secret):
    validate_declaration(_declaration(private_key_passphrase=secret, pkcs12_path='/tmp/none/erp.p12',
                                      pkcs12_passphrase=secret))


def test_main_passphrase_with_a_newline_fails_before_any_request(run_module, monkeypatch, tmp_path):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, private_key_passphrase='first line\nsecond line',
                                               **single(tmp_path)))
    script.verify()
    assert result.exit_code == 1 and 'private_key_passphrase contains a control character' in result['msg']
    assert 'first line' not in str(result) and result['api_calls'] == 0
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize('passphrase', [u'line one\nline two', u'tab\tinside', u'$(x) "q" \\ end '])
def test_a_passphrase_is_used_whole_when_reading_a_key(tmp_path, passphrase):
    """finding 6 (module side): the passphrase reaches cryptography whole; a newline inside is not a cut."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / 'signer.key'
    path.write_bytes(_crypto.private_key_to_pem(key, passphrase))
    loaded = _crypto.load_private_key(str(path), passphrase)
    assert _crypto.public_key_fingerprint(loaded) == _crypto.public_key_fingerprint(key)
    for cut in (passphrase.split('\n')[0], passphrase.rstrip(), passphrase[:-1]):
        if cut != passphrase:
            with pytest.raises(KsefError, match='wrong passphrase'):
                _crypto.load_private_key(str(path), cut)


# ---------------------------------------------------------------------------------------------
# Full-match validation (finding 7 and every identifier)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', [u'erp-auth\n', u'erp-auth\r', u'\nerp-auth', u'erp-a\nuth', u'erp-auth\u2028',
                                  u'erp-auth$', u'erp-auth/x'])
def test_names_are_matched_in_full(name):
    assert not _rules.certificate_name_valid(name)
    with pytest.raises(KsefInputError, match='is not accepted by KSeF'):
        validate_declaration(_declaration(name=name))


@pytest.mark.parametrize('context_type, context_id', [
    ('nip', TEST_NIP + '\n'),
    ('nip', TEST_NIP + '0'),
    ('internal_id', TEST_NIP + '-12345\n'),
    ('internal_id', TEST_NIP + '-123456'),
    ('nip_vat_ue', TEST_NIP + '-DE123456789\n'),
    ('nip_vat_ue', TEST_NIP + '-DE123456789012345'),
    ('peppol_id', 'PPL000123\n'),
    ('peppol_id', 'PPL0001234'),
])
def test_context_identifiers_are_matched_in_full(context_type, context_id):
    """A trailing newline would otherwise go into the signed login request."""
    with pytest.raises(KsefInputError):
        validate_context(context_type, context_id)


@pytest.mark.parametrize('serial', ['0123456789ABCDEF0', '0123456789ABCDEF\n0', '0123456789ABCDEG'])
def test_serial_numbers_are_matched_in_full(serial):
    with pytest.raises(KsefInputError, match='16 hexadecimal characters'):
        normalize_serial_numbers([serial])


@pytest.mark.parametrize('entry', ['192.0.2.1x', '192.0.2.1\n9', '192.0.2.1-192.0.2.5x', '10.0.0.0/8x', '10.0.0.0/88'])
def test_allowed_ips_are_matched_in_full(entry):
    with pytest.raises(KsefInputError, match='auth_allowed_ips entry'):
        classify_allowed_ips([entry])


@pytest.mark.parametrize('url', ['https://ksef.invalid/v2\n', 'https://ksef.invalid/v2 extra', 'https://ksef.invalid/\tv2',
                                 'https://ksef.invalid/v2\x00'])
def test_api_url_with_whitespace_or_control_characters_is_refused(url):
    with pytest.raises(KsefInputError, match='api_url .* contains whitespace or control characters'):
        validate_connection_params({'api_url': url, 'access_token': 'token'})


# ---------------------------------------------------------------------------------------------
# Backups (finding 2, module side): 0600, never through backup_local, kept to backup_keep
# ---------------------------------------------------------------------------------------------

def _proof_login_exchanges():
    """The successor's proof before the predecessor is revoked: a login with the new pair, then its session closed."""
    proof_token = 'header.eyJleHAiOjQxMDI0NDQ4MDB9.proof'
    return [
        Exchange('POST', '/auth/challenge', reply={'challenge': '20260301-CR-0123456789-ABCDEF0123-4A',
                                                   'timestamp': '2026-03-01T12:00:00Z', 'timestampMs': 1}),
        Exchange('POST', '/auth/xades-signature', status=202,
                 reply={'referenceNumber': '20260301-AU-0123456789-ABCDEF0123-4B',
                        'authenticationToken': {'token': 'operation', 'validUntil': '2026-03-01T12:15:00Z'}}),
        Exchange('GET', '/auth/{referenceNumber}', token='operation',
                 reply={'startDate': '2026-03-01T12:00:00Z', 'authenticationMethod': 'Token',
                        'status': {'code': 200, 'description': 'OK'}}),
        Exchange('POST', '/auth/token/redeem', token='operation',
                 reply={'accessToken': {'token': proof_token, 'validUntil': '2030-01-01T12:15:00Z'},
                        'refreshToken': {'token': proof_token + 'r', 'validUntil': '2030-01-08T12:00:00Z'}}),
        Exchange('DELETE', '/auth/sessions/current', token=proof_token, status=204),
    ]


def test_main_backup_is_0600_and_backup_keep_prunes(run_module, monkeypatch, tmp_path):
    """A renewal (the certificate expired) with backup: true under umask 0: the key, its backup and the certificate backup are 0600, and
    only backup_keep backups of each file remain."""
    clock = FakeClock()
    fake, serial, dummy = existing_pair(tmp_path, clock, days=-1)
    for day in (1, 2, 3):
        for name in ('erp-production.key', 'erp-production.pem'):
            (tmp_path / ('%s.1%d.2020-01-0%d@10:00:00~' % (name, day, day))).write_text('old')
    monkeypatch.setattr('ansible.module_utils.basic.AnsibleModule.backup_local',
                        lambda *args: pytest.fail('backup_local copies with shutil.copy2'))
    issued = {}

    def accept(body):
        csr = x509.load_der_x509_csr(base64.b64decode(body['csr']))
        issued['serial'] = fake.issue({'csr': csr, 'name': body['certificateName'],
                                       'type': body['certificateType'], 'sent_at': clock.now()})
        issued['der'] = fake.by_serial(issued['serial'])['der']
        status.reply = {'requestDate': '2026-03-01T12:00:00Z', 'status': {'code': 200, 'description': 'OK'},
                        'certificateSerialNumber': issued['serial']}
        retrieve.json = {'certificateSerialNumbers': [issued['serial']]}
        retrieve.reply = {'certificates': [{'certificate': base64.b64encode(issued['der']).decode('ascii'),
                                            'certificateName': 'erp-production',
                                            'certificateSerialNumber': issued['serial'],
                                            'certificateType': 'Authentication'}]}
        return True

    # validTo lies in the past: renewed (the list still says Active, so the old one is revoked).
    item = fake.item(fake.by_serial(serial))
    status = Exchange('GET', '/certificates/enrollments/{referenceNumber}', token=ACCESS_TOKEN)
    retrieve = Exchange('POST', '/certificates/retrieve', token=ACCESS_TOKEN)
    script = HttpScript([
        query_exchange([item]),
        rate_limits_exchange(),
        Exchange('GET', '/certificates/limits', token=ACCESS_TOKEN, reply=fake.limits_reply),
        Exchange('GET', '/certificates/enrollments/data', token=ACCESS_TOKEN, reply=ENROLLMENT_DATA),
        Exchange('POST', '/certificates/enrollments', token=ACCESS_TOKEN, json=accept, status=202,
                 reply={'referenceNumber': '20260301-EH-1B6C9EB000-4B15D3AEB9-89', 'timestamp': '2026-03-01T12:00:00Z'}),
        status,
        retrieve,
    ] + _proof_login_exchanges() + [
        Exchange('POST', '/certificates/{certificateSerialNumber}/revoke', token=ACCESS_TOKEN, status=204),
    ]).install(monkeypatch)
    old_umask = os.umask(0)
    try:
        result = run_module(ksef_certificate, dict(CONNECTION, backup=True, backup_keep=2, **single(tmp_path)))
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result
    script.verify()
    assert result['action'] == 'renewed' and len(result['backup_files']) == 2
    for path in result['backup_files']:
        assert mode(path) == 0o600
    assert mode(tmp_path / 'erp-production.key') == 0o600
    for name in ('erp-production.key', 'erp-production.pem'):
        kept = _crypto.list_backups(str(tmp_path / name))
        assert len(kept) == 2 and kept[-1] in result['backup_files']
        assert kept[0].endswith('.13.2020-01-03@10:00:00~')


def test_backup_keep_must_be_positive():
    with pytest.raises(KsefInputError, match='backup_keep must be 1 or more'):
        validate_declaration(_declaration(backup=True, backup_keep=0))


# ---------------------------------------------------------------------------------------------
# PKCS#12 written by the module (finding 6, module side): AES-256-CBC, PBKDF2, SHA-256 MAC, explicitly
# ---------------------------------------------------------------------------------------------

P12_SECRET = u'p12 "q" \'s\' \\ $HOME $(touch M3) `x`'


def _bundle_info(data, tmp_path, passphrase):
    """openssl's own reading of the bundle's algorithms (an independent check of the OID test)."""
    openssl = shutil.which('openssl')
    if openssl is None:
        return None
    path = tmp_path / 'info.p12'
    path.write_bytes(data)
    process = subprocess.run([openssl, 'pkcs12', '-info', '-noout', '-in', str(path), '-passin', 'stdin'],
                             input=passphrase + '\n', stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, check=False)
    assert process.returncode == 0, process.stdout
    return process.stdout


def test_the_module_writes_pkcs12_with_aes256_pbkdf2_and_a_sha256_mac(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = make_seal_certificate(key)
    data = _crypto.pkcs12_bundle('erp-offline', key, certificate, P12_SECRET)
    assert _crypto.pkcs12_algorithms_current(data)
    info = _bundle_info(data, tmp_path, P12_SECRET)
    if info is not None:
        assert 'MAC: sha256' in info and info.count('PBES2, PBKDF2, AES-256-CBC') == 2, info
        assert '3DES' not in info and 'RC2' not in info and 'sha1' not in info.lower(), info
    # The passphrase is used whole: a prefix does not open the bundle.
    path = tmp_path / 'erp.p12'
    path.write_bytes(data)
    assert _crypto.pkcs12_matches(str(path), P12_SECRET, key, certificate)
    assert not _crypto.pkcs12_matches(str(path), P12_SECRET[:len(P12_SECRET) // 2], key, certificate)


def test_without_the_pkcs12_builder_a_protected_bundle_is_refused_before_any_call(monkeypatch):
    """cryptography < 38 would write 3DES and a SHA-1 MAC: refused, not written weakly."""
    monkeypatch.setattr(_crypto, 'HAS_PKCS12_BUILDER', False)
    with pytest.raises(KsefInputError, match='needs cryptography 38 or newer'):
        validate_declaration(_declaration(pkcs12_path='/tmp/none/erp.p12', pkcs12_passphrase='secret'))
    with pytest.raises(KsefInputError, match='needs cryptography 38 or newer'):
        _crypto.pkcs12_bundle('erp', ec.generate_private_key(ec.SECP256R1()), None, 'secret')


def test_a_legacy_pkcs12_bundle_is_rebuilt_with_current_algorithms(tmp_path):
    """A bundle with the right key and certificate but 3DES and a SHA-1 MAC (old defaults) does not count as
    installed: the installer writes it again with the current algorithms."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
    from ansible_collections.ksef.certificates.plugins.module_utils._engine.install import Installer
    from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils._engine.test_install import FileModule
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = make_seal_certificate(key)
    legacy = (serialization.PrivateFormat.PKCS12.encryption_builder()
              .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
              .build(P12_SECRET.encode('utf-8')))
    path = tmp_path / 'erp.p12'
    path.write_bytes(pkcs12.serialize_key_and_certificates(b'erp', key, certificate, None, legacy))
    os.chmod(str(path), 0o600)
    assert not _crypto.pkcs12_algorithms_current(path.read_bytes())
    assert not _crypto.pkcs12_matches(str(path), P12_SECRET, key, certificate)
    decl = Declaration(dict(name='erp-offline', type='offline', state='present', private_key_path=str(tmp_path / 'k'),
                            pkcs12_path=str(path), pkcs12_passphrase=P12_SECRET, backup=False))
    decl.key = key
    Installer(FileModule()).write_certificate_files(Plan(decl), certificate)
    assert _crypto.pkcs12_algorithms_current(path.read_bytes())
    assert _crypto.pkcs12_matches(str(path), P12_SECRET, key, certificate)
    assert mode(path) == 0o600


# ---------------------------------------------------------------------------------------------
# Names given to the info and revoke modules (finding 7): refused with a clear message before any call
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', [u'erp-auth\n', u'erp\tauth', u'erp-auth\x1b'])
def test_main_revoke_by_a_name_with_a_control_character_fails_before_any_request(run_module, monkeypatch, name):
    from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate_revoke
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_certificate_revoke, dict(CONNECTION, name=name, type='authentication'))
    script.verify()
    assert result.exit_code == 1 and 'contains a control character' in result['msg'] and result['api_calls'] == 0


@pytest.mark.parametrize('name', [u'erp-auth\n', u'erp\tauth'])
def test_main_info_by_a_name_with_a_control_character_fails_before_any_request(run_module, monkeypatch, name):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_certificate_info, dict(CONNECTION, name=name))
    script.verify()
    assert result.exit_code == 1 and 'contains a control character' in result['msg'] and result['api_calls'] == 0
