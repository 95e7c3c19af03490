# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for ksef_certificate: the decision engine against an in-memory KSeF, and main() over scripted HTTP."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import fcntl
import json
import os

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine import converge as _converge
from ansible_collections.ksef.certificates.plugins.module_utils._login import LoginCertificate
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefError,
    KsefInputError,
    KsefTransportError,
)
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import (
    ACCESS_TOKEN,
    CONNECTION,
    ENROLLMENT_DATA,
    FakeKsef,
    assert_pair,
    cert_of,
    existing_pair,
    ksef_time,
    mode,
    query_exchange,
    rate_limits_exchange,
    single,
    snapshot,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript


def serials(superseded):
    return [entry['serial_number'] for entry in superseded]


def returned_time(value):
    """The one form the modules return date-times in: UTC, whole seconds, '+00:00'."""
    return value.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S') + '+00:00'


def key_fingerprint(path, passphrase=None):
    return _crypto.public_key_fingerprint(_crypto.load_private_key(str(path), passphrase))


def only_writes(names):
    return [n for n in names if n in ('enroll', 'revoke')]


# ---------------------------------------------------------------------------------------------
# missing -> enroll; healthy -> no-op
# ---------------------------------------------------------------------------------------------

def test_missing_check_real_check_real(run, ksef, tmp_path):
    args = single(tmp_path)

    predicted = run(args, check_mode=True, diff=True)
    assert predicted['changed'] is True
    assert predicted['action'] == 'enrolled' and predicted['reason'] == 'missing'
    assert predicted['certificate'] is None
    assert only_writes(ksef.names()) == []
    assert snapshot(tmp_path) == {}
    assert predicted['diff']['before']['serial_number'] is None
    assert predicted['diff']['after']['status'] == 'active'

    enrolled = run(args)
    assert enrolled['changed'] is True and enrolled['action'] == 'enrolled'
    assert ksef.count('enroll') == 1 and ksef.count('query') == 1 and ksef.count('limits') == 1
    assert enrolled['reference_number'].startswith('20260301-EH-')
    certificate = assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')
    assert mode(tmp_path / 'erp-production.key') == 0o600
    assert mode(tmp_path / 'erp-production.pem') == 0o644
    # No lock or state file is left next to the key.
    assert sorted(snapshot(tmp_path)) == ['erp-production.key', 'erp-production.pem']
    summary = enrolled['certificate']
    assert summary['serial_number'] == '%016X' % certificate.serial_number
    assert summary['status'] == 'active' and summary['type'] == 'authentication'
    assert summary['public_key_sha256'] == key_fingerprint(tmp_path / 'erp-production.key')
    # Issued at once; the first look comes INITIAL_ISSUE_DELAY (1 s) after the POST, so a second of day 730 is gone.
    assert summary['days_remaining'] == 729
    assert isinstance(_crypto.load_private_key(str(tmp_path / 'erp-production.key')), ec.EllipticCurvePrivateKey)

    before = snapshot(tmp_path)
    for check_mode in (True, False):
        again = run(args, check_mode=check_mode)
        assert again['changed'] is False and again['action'] == 'none' and again['reason'] == 'healthy'
        assert ksef.names() == ['query'], 'the healthy no-op costs exactly one query'
        assert again['certificate']['serial_number'] == summary['serial_number']
        assert snapshot(tmp_path) == before


def test_returns_have_the_same_keys_whether_or_not_anything_changed(run, tmp_path):
    args = single(tmp_path)
    first = run(args)
    second = run(args)
    assert set(first) == set(second)
    assert set(first['certificates'][0]) == set(second['certificates'][0])
    assert 'certificate_pem' not in first


def test_rsa_offline_certificate_with_passphrase_and_pkcs12(run, ksef, tmp_path):
    args = single(tmp_path, name='erp-offline', cert_type='offline', private_key_type='rsa',
                  private_key_passphrase='key secret', pkcs12_path=str(tmp_path / 'erp-offline.p12'),
                  pkcs12_passphrase='p12 secret', return_content=True)
    result = run(args)
    assert result['action'] == 'enrolled'
    key = _crypto.load_private_key(str(tmp_path / 'erp-offline.key'), 'key secret')
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    certificate = assert_pair(tmp_path / 'erp-offline.key', tmp_path / 'erp-offline.pem', 'key secret')
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment
    assert ksef.calls[[n for n, d in ksef.calls].index('enroll')][1]['certificate_type'] == 'offline'
    assert _crypto.pkcs12_matches(str(tmp_path / 'erp-offline.p12'), 'p12 secret', key, certificate)
    assert mode(tmp_path / 'erp-offline.p12') == 0o600
    assert result['certificate_pem'] == _crypto.certificate_to_pem(certificate).decode('ascii')
    assert 'PRIVATE KEY' not in json.dumps(result)
    assert 'key secret' not in json.dumps(result) and 'p12 secret' not in json.dumps(result)
    rerun = run(args)
    assert rerun['changed'] is False and rerun['certificate_pem'] == result['certificate_pem']


def _assert_encrypted_key(path, passphrase):
    """The key file is encrypted with passphrase: unreadable without it (loading an unencrypted key with a
    passphrase succeeds, so that alone proves nothing)."""
    with open(str(path), 'rb') as handle:
        assert handle.read().startswith(b'-----BEGIN ENCRYPTED PRIVATE KEY-----')
    with pytest.raises(KsefError, match='is encrypted; set the private key passphrase'):
        _crypto.load_private_key(str(path))
    for wrong in (passphrase + 'x', passphrase[:len(passphrase) // 2]):
        with pytest.raises(KsefError, match='wrong passphrase'):
            _crypto.load_private_key(str(path), wrong)
    return _crypto.load_private_key(str(path), passphrase)


def test_generated_keys_are_written_encrypted_with_private_key_passphrase(run, ksef, clock, tmp_path):
    """issue 14 test gap: a key generated in place and a rotated (.next) key are both encrypted on disk; the
    passphrase is used whole (quotes, backslash, $ and spaces are not cut or interpreted)."""
    passphrase = 'a "quoted" \\ $(x) `y` pass phrase'
    args = single(tmp_path, private_key_passphrase=passphrase, backup=True)
    run(args)
    first = _assert_encrypted_key(tmp_path / 'erp-production.key', passphrase)
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem', passphrase)
    old_serial = ksef.active()[0]
    ksef.by_serial(old_serial)['valid_to'] = clock.now() + datetime.timedelta(days=3)
    ksef.processing_seconds = 60
    assert run(dict(args, wait=False))['action'] == 'pending'
    _assert_encrypted_key(tmp_path / 'erp-production.key.next', passphrase)
    clock.advance(seconds=61)
    result = run(args)
    assert result['action'] == 'renewed'
    second = _assert_encrypted_key(tmp_path / 'erp-production.key', passphrase)
    assert _crypto.public_key_fingerprint(second) != _crypto.public_key_fingerprint(first)
    backed_up_key = [path for path in result['backup_files'] if '.key.' in path][0]
    assert _crypto.public_key_fingerprint(_assert_encrypted_key(backed_up_key, passphrase)) == \
        _crypto.public_key_fingerprint(first)


def test_missing_certificate_file_is_reinstalled_from_ksef_without_enrolling(run, ksef, tmp_path):
    args = single(tmp_path)
    run(args)
    serial = ksef.active()[0]
    os.unlink(str(tmp_path / 'erp-production.pem'))
    result = run(args)
    assert result['action'] == 'installed' and result['changed'] is True
    assert ksef.names() == ['query', 'retrieve']
    assert result['certificate']['serial_number'] == serial
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_valid_from_is_passed_through(run, ksef, tmp_path):
    run(single(tmp_path, valid_from='2026-03-02T00:00:00+00:00'))
    assert [d['valid_from'] for n, d in ksef.calls if n == 'enroll'] == ['2026-03-02T00:00:00+00:00']


def test_widened_key_mode_is_fixed_on_a_healthy_run(run, ksef, tmp_path):
    args = single(tmp_path)
    run(args)
    os.chmod(str(tmp_path / 'erp-production.key'), 0o644)
    result = run(args)
    assert result['changed'] is True and result['action'] == 'none'
    assert mode(tmp_path / 'erp-production.key') == 0o600
    assert ksef.names() == ['query']


# ---------------------------------------------------------------------------------------------
# renewal: window, expired, revoked, key mismatch, force
# ---------------------------------------------------------------------------------------------

def _enrolled(run, ksef, tmp_path, **extra):
    args = single(tmp_path, **extra)
    run(args)
    return args, ksef.active()[0], key_fingerprint(tmp_path / 'erp-production.key', extra.get('private_key_passphrase'))


def test_renewal_window_rotates_key_and_revokes_superseded(run, ksef, clock, tmp_path):
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path, backup=True)
    old_valid_to = clock.now() + datetime.timedelta(days=10)
    ksef.by_serial(old_serial)['valid_to'] = old_valid_to
    before = snapshot(tmp_path)

    predicted = run(args, check_mode=True, diff=True)
    assert predicted['action'] == 'renewed' and predicted['reason'] == 'renewal_window'
    assert serials(predicted['superseded']) == [old_serial] and predicted['superseded'][0]['revoked'] is True
    assert only_writes(ksef.names()) == [] and snapshot(tmp_path) == before
    assert predicted['diff']['before']['serial_number'] == old_serial
    assert predicted['diff']['after']['serial_number'] == '(new)'

    result = run(args)
    assert result['action'] == 'renewed' and result['changed'] is True
    assert serials(result['superseded']) == [old_serial] and result['revoked'] == [old_serial]
    assert result['superseded'][0] == {'serial_number': old_serial, 'type': 'authentication', 'revoked': True,
                                       'valid_to': returned_time(old_valid_to)}
    assert ksef.revocations() == [(old_serial, 'Superseded')]
    assert ksef.by_serial(old_serial)['status'] == 'Revoked'
    new_key = key_fingerprint(tmp_path / 'erp-production.key')
    assert new_key != old_key
    certificate = assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')
    assert '%016X' % certificate.serial_number == result['certificate']['serial_number'] != old_serial
    assert not os.path.exists(str(tmp_path / 'erp-production.key.next'))
    assert not os.path.exists(str(tmp_path / 'erp-production.key.ksef-pending.json'))
    assert mode(tmp_path / 'erp-production.key') == 0o600
    assert len(result['backup_files']) == 2
    backed_up_keys = [p for p in result['backup_files'] if '.key.' in p]
    assert key_fingerprint(backed_up_keys[0]) == old_key and mode(backed_up_keys[0]) == 0o600

    assert run(args)['action'] == 'none'


def test_expired_certificate_is_renewed(run, ksef, tmp_path):
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path)
    ksef.by_serial(old_serial)['status'] = 'Expired'
    result = run(args)
    assert result['action'] == 'renewed' and result['reason'] == 'expired'
    assert result['superseded'] == []
    assert key_fingerprint(tmp_path / 'erp-production.key') != old_key
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_revoked_certificate_is_renewed_with_a_new_key(run, ksef, tmp_path):
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path)
    ksef.by_serial(old_serial)['status'] = 'Revoked'
    result = run(args)
    assert result['action'] == 'renewed' and result['reason'] == 'revoked'
    assert key_fingerprint(tmp_path / 'erp-production.key') != old_key
    assert ksef.revocations() == []


def test_blocked_certificate_is_renewed(run, ksef, tmp_path):
    args, old_serial, dummy = _enrolled(run, ksef, tmp_path)
    ksef.by_serial(old_serial)['status'] = 'Blocked'
    result = run(args)
    # Blocked: its revocation is completing; not the declared certificate, not superseded, not revoked again.
    assert result['reason'] == 'blocked' and result['action'] == 'renewed'
    assert result['superseded'] == [] and ksef.revocations() == []
    assert result['certificate']['serial_number'] != old_serial
    assert run(args)['action'] == 'none' and ksef.revocations() == []


def test_key_mismatch_enrolls_the_declared_key_and_supersedes_the_other(run, ksef, tmp_path):
    other = ksef.add_certificate('erp-production', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    declared = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / 'erp-production.key').write_bytes(_crypto.private_key_to_pem(declared))
    os.chmod(str(tmp_path / 'erp-production.key'), 0o600)
    result = run(single(tmp_path))
    assert result['action'] == 'enrolled' and result['reason'] == 'key_mismatch'
    assert serials(result['superseded']) == [other] and ksef.revocations() == [(other, 'Superseded')]
    # the declared (unused) key was enrolled as it is, not replaced
    assert key_fingerprint(tmp_path / 'erp-production.key') == _crypto.public_key_fingerprint(declared)
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_name_is_matched_exactly_not_as_substring(run, ksef, tmp_path):
    ksef.add_certificate('erp-production-old', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    ksef.add_certificate('erp-production', 'offline', ec.generate_private_key(ec.SECP256R1()))
    result = run(single(tmp_path))
    assert result['reason'] == 'missing' and result['superseded'] == []
    assert ksef.revocations() == []


def test_force_rotates_a_healthy_certificate(run, ksef, tmp_path):
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path)
    result = run(dict(args, force=True))
    assert result['action'] == 'renewed' and result['reason'] == 'force'
    assert ksef.revocations() == [(old_serial, 'Superseded')]
    assert key_fingerprint(tmp_path / 'erp-production.key') != old_key


def test_revoke_superseded_false_keeps_the_old_certificate_active(run, ksef, clock, tmp_path):
    args, old_serial, dummy = _enrolled(run, ksef, tmp_path)
    ksef.by_serial(old_serial)['valid_to'] = clock.now() + datetime.timedelta(days=3)
    result = run(dict(args, revoke_superseded=False))
    assert serials(result['superseded']) == [old_serial] and result['revoked'] == []
    assert result['superseded'][0]['revoked'] is False
    assert ksef.revocations() == [] and old_serial in ksef.active()


def test_offline_superseded_stays_active_by_default_and_explicit_true_revokes(run, ksef, clock, tmp_path):
    # QR codes II on invoices in circulation are checked against the Offline certificate's state.
    args, old_serial, dummy = _enrolled(run, ksef, tmp_path, cert_type='offline')
    valid_to = clock.now() + datetime.timedelta(days=10)
    ksef.by_serial(old_serial)['valid_to'] = valid_to
    expected = [{'serial_number': old_serial, 'type': 'offline', 'valid_to': returned_time(valid_to), 'revoked': False}]
    predicted = run(args, check_mode=True)
    assert predicted['action'] == 'renewed' and predicted['superseded'] == expected
    result = run(args)
    assert result['action'] == 'renewed' and result['superseded'] == expected
    assert result['revoked'] == [] and ksef.revocations() == []
    assert old_serial in ksef.active() and len(ksef.active()) == 2
    assert run(args)['action'] == 'none'
    # An explicit value wins: the next renewal revokes what it supersedes.
    new_serial = result['certificate']['serial_number']
    ksef.by_serial(new_serial)['valid_to'] = clock.now() + datetime.timedelta(days=5)
    revoking = run(dict(args, revoke_superseded=True))
    assert sorted(revoking['revoked']) == sorted([old_serial, new_serial])
    assert all(entry['revoked'] for entry in revoking['superseded'])
    assert ksef.active() == [revoking['certificate']['serial_number']]


def test_revoke_superseded_default_by_type_in_the_list_form(run, ksef, clock, tmp_path):
    items = [dict(name='erp-auth', type='authentication', private_key_path=str(tmp_path / 'a.key'),
                  certificate_path=str(tmp_path / 'a.pem')),
             dict(name='erp-offline', type='offline', private_key_path=str(tmp_path / 'o.key'),
                  certificate_path=str(tmp_path / 'o.pem'))]
    first = run(dict(certificates=items))
    old = [entry['certificate']['serial_number'] for entry in first['certificates']]
    for serial in old:
        ksef.by_serial(serial)['valid_to'] = clock.now() + datetime.timedelta(days=3)
    result = run(dict(certificates=items))
    assert [entry['action'] for entry in result['certificates']] == ['renewed', 'renewed']
    assert ksef.revocations() == [(old[0], 'Superseded')]
    assert [(entry['serial_number'], entry['revoked']) for entry in result['superseded']] == [(old[0], True), (old[1], False)]
    assert old[1] in ksef.active() and old[0] not in ksef.active()


# ---------------------------------------------------------------------------------------------
# the self-renewing login: the certificate this run logged in with is renewed
# ---------------------------------------------------------------------------------------------

def _due_login(run, ksef, clock, tmp_path, **extra):
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path, **extra)
    # Ten days left of a two-year certificate (a shorter lifetime than renew_before_days draws its own warning).
    ksef.by_serial(old_serial)['valid_from'] = clock.now() - datetime.timedelta(days=720)
    ksef.by_serial(old_serial)['valid_to'] = clock.now() + datetime.timedelta(days=10)
    return args, old_serial, old_key


@pytest.mark.parametrize('login_files', ['content', 'other_files'])
def test_login_renewed_without_a_place_to_write_back_stays_active(run, ksef, clock, tmp_path, login_files):
    """AWX injects the credential as content or as temporary files: the new pair cannot reach the next login."""
    args, old_serial, old_key = _due_login(run, ksef, clock, tmp_path)
    if login_files == 'content':
        login = LoginCertificate(old_serial)
    else:
        login = LoginCertificate(old_serial, certificate_path=str(tmp_path / 'awx-cert.pem'),
                                 private_key_path=str(tmp_path / 'awx-key.pem'))
    predicted = run(args, check_mode=True, login=login)
    assert predicted['superseded_login'] == [old_serial] and predicted['superseded'][0]['revoked'] is False
    assert only_writes(ksef.names()) == []
    run.warnings.clear()
    result = run(args, login=login)
    assert result['action'] == 'renewed' and result['changed'] is True
    assert serials(result['superseded']) == [old_serial] and result['superseded'][0]['revoked'] is False
    assert result['revoked'] == [] and result['superseded_login'] == [old_serial]
    assert result['certificates'][0]['superseded_login'] == [old_serial]
    assert ksef.revocations() == [] and old_serial in ksef.active()
    new_serial = result['certificate']['serial_number']
    assert new_serial in ksef.active() and new_serial != old_serial
    # the new pair is installed all the same
    assert key_fingerprint(tmp_path / 'erp-production.key') != old_key
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')
    assert len(run.warnings) == 1
    warning = run.warnings[0]
    assert old_serial in warning and 'not revoked' in warning and 'ksef_certificate_revoke' in warning
    assert ('inline content' in warning) if login_files == 'content' else ('awx-cert.pem' in warning)
    # The next run (still logging in with the old certificate) has nothing to do and revokes nothing.
    again = run(args, login=login)
    assert again['action'] == 'none' and again['superseded_login'] == [] and ksef.revocations() == []


def test_login_renewed_from_the_declared_files_installs_then_revokes(run, ksef, clock, tmp_path):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path)
    # through a symlinked directory: the same files by another name
    os.symlink(str(tmp_path), str(tmp_path / 'link'))
    login = LoginCertificate(old_serial, certificate_path=str(tmp_path / 'link' / 'erp-production.pem'),
                             private_key_path=str(tmp_path / 'link' / 'erp-production.key'))
    predicted = run(args, check_mode=True, login=login)
    assert predicted['superseded_login'] == [] and predicted['superseded'][0]['revoked'] is True
    result = run(args, login=login)
    assert result['revoked'] == [old_serial] and result['superseded_login'] == []
    assert ksef.revocations() == [(old_serial, 'Superseded')]
    assert run.warnings == []
    # revoked after the install: the files hold the new certificate when the revoke is sent
    assert '%016X' % assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem').serial_number \
        == result['certificate']['serial_number']


def test_login_renewed_from_the_declared_pkcs12_is_revoked(run, ksef, clock, tmp_path):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path, pkcs12_path=str(tmp_path / 'erp.p12'),
                                         pkcs12_passphrase='bundle secret')
    login = LoginCertificate.from_params({'auth_certificate_path': str(tmp_path / 'erp.p12')}, old_serial)
    result = run(args, login=login)
    assert result['revoked'] == [old_serial] and result['superseded_login'] == []


def test_login_with_another_certificate_revokes_the_superseded_one(run, ksef, clock, tmp_path):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path)
    result = run(args, login=LoginCertificate('0123456789ABCDEF'))
    assert result['revoked'] == [old_serial] and result['superseded_login'] == [] and run.warnings == []


# ---------------------------------------------------------------------------------------------
# proven rotation: a predecessor goes only once its successor has logged in / signed a QR code II
# ---------------------------------------------------------------------------------------------

def test_renewal_logs_in_with_the_successor_before_revoking(run, ksef, clock, tmp_path):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path)
    result = run(args)
    new_serial = result['certificate']['serial_number']
    assert ksef.proof_logins == [new_serial] and ksef.revocations() == [(old_serial, 'Superseded')]
    assert result['certificates'][0]['proof'] == {'serial_number': new_serial, 'method': 'login', 'proven': True,
                                                  'reason': None, 'valid_from': None}


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_offline_successor_signs_a_qr_code_ii_before_an_explicit_revocation(run, ksef, clock, tmp_path, key_type):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path, cert_type='offline', private_key_type=key_type,
                                         revoke_superseded=True)
    result = run(args)
    assert result['certificates'][0]['proof']['method'] == 'qr_code_ii'
    assert result['certificates'][0]['proof']['proven'] is True
    assert ksef.revocations() == [(old_serial, 'Superseded')] and ksef.proof_logins == []


def test_a_successor_that_cannot_log_in_keeps_its_predecessor_and_says_why(run, ksef, clock, tmp_path, monkeypatch):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path)

    def refuse(signer):
        raise KsefApiError('POST', '/auth/xades-signature', 400, errors=[{'code': 21115, 'description': 'Invalid certificate'}])
    monkeypatch.setattr(ksef, 'prove_login', refuse)
    run.warnings.clear()
    result = run(args)
    entry = result['certificates'][0]
    assert result['action'] == 'renewed' and result['revoked'] == [] and ksef.revocations() == []
    assert result['superseded'][0]['revoked'] is False and result['superseded'][0]['serial_number'] == old_serial
    assert entry['proof']['proven'] is False and '21115' in entry['proof']['reason']
    assert old_serial in ksef.active()
    assert len(run.warnings) == 1 and old_serial in run.warnings[0] and 'kept active because' in run.warnings[0]
    assert '21115' in run.warnings[0]


def test_a_later_run_proves_the_successor_and_revokes_the_kept_predecessor(run, ksef, clock, tmp_path, monkeypatch):
    """The proof failed when the successor was installed (KSeF refused its login): the predecessor stayed. The next
    run finds the installed successor and the active predecessor, logs in with the successor, then revokes it."""
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path)
    prove_login = ksef.prove_login

    def refuse(signer):
        raise KsefApiError('POST', '/auth/xades-signature', 400, errors=[{'code': 21115, 'description': 'Invalid certificate'}])
    monkeypatch.setattr(ksef, 'prove_login', refuse)
    renewed = run(args)
    new_serial = renewed['certificate']['serial_number']
    assert renewed['revoked'] == [] and old_serial in ksef.active()

    # KSeF still refuses: the next run tries again, keeps the predecessor, says why and changes nothing
    run.warnings.clear()
    again = run(args)
    assert again['changed'] is False and again['action'] == 'none' and again['revoked'] == []
    assert again['certificates'][0]['proof']['proven'] is False and '21115' in again['certificates'][0]['proof']['reason']
    assert again['superseded'] == [{'serial_number': old_serial, 'type': 'authentication', 'revoked': False,
                                    'valid_to': returned_time(ksef.by_serial(old_serial)['valid_to'])}]
    assert len(run.warnings) == 1 and 'still kept active because' in run.warnings[0] and old_serial in run.warnings[0]
    assert ksef.revocations() == [] and sorted(ksef.active()) == sorted([old_serial, new_serial])

    monkeypatch.setattr(ksef, 'prove_login', prove_login)
    predicted = run(args, check_mode=True)
    assert predicted['changed'] is True and predicted['action'] == 'none' and predicted['revoked'] == [old_serial]
    assert predicted['superseded'][0]['revoked'] is True and ksef.proof_logins == [] and ksef.revocations() == []
    done = run(args)
    assert done['changed'] is True and done['action'] == 'revoked' and done['reason'] == 'proven'
    assert done['revoked'] == [old_serial] and done['certificate']['serial_number'] == new_serial
    assert done['certificates'][0]['proof']['proven'] is True and done['certificates'][0]['proof']['serial_number'] == new_serial
    assert ksef.proof_logins == [new_serial] and ksef.revocations() == [(old_serial, 'Superseded')]
    assert ksef.active() == [new_serial]
    assert run(args, check_mode=True)['changed'] is False
    assert run(args)['changed'] is False


@pytest.mark.parametrize('revoke, login_kept, revoked', [
    (None, False, True),        # Authentication: revoked by type
    (False, False, False),      # explicit false keeps it
    (None, True, False),        # the run's login, whose new pair does not reach the next login
])
def test_a_kept_predecessor_goes_only_as_revoke_superseded_and_the_login_allow(
        run, ksef, clock, tmp_path, revoke, login_kept, revoked):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path, revoke_superseded=False)
    run(args)                   # renewed with revoke_superseded false: the predecessor stays active
    assert old_serial in ksef.active() and len(ksef.active()) == 2
    args = dict(args, revoke_superseded=revoke)
    result = run(args, login=LoginCertificate(old_serial) if login_kept else None)
    assert result['revoked'] == ([old_serial] if revoked else [])
    assert (old_serial in ksef.active()) is not revoked
    assert result['changed'] is revoked
    # explicit false: nothing of the kind is superseded; otherwise listed, revoked or not
    assert [(entry['serial_number'], entry['revoked']) for entry in result['superseded']] == (
        [] if revoke is False else [(old_serial, revoked)])


def test_a_kept_offline_predecessor_is_revoked_after_a_qr_code_ii_proof(run, ksef, clock, tmp_path):
    args, old_serial, dummy = _due_login(run, ksef, clock, tmp_path, cert_type='offline')
    run(args)                   # by type: the Offline predecessor stays
    assert old_serial in ksef.active()
    assert run(args)['changed'] is False
    result = run(dict(args, revoke_superseded=True))
    assert result['revoked'] == [old_serial] and result['certificates'][0]['proof']['method'] == 'qr_code_ii'
    assert result['certificates'][0]['proof']['proven'] is True and ksef.proof_logins == []


def test_self_renewing_login_valid_only_in_two_days_keeps_the_login_working(run, ksef, clock, tmp_path):
    """force with valid_from two days ahead: the successor is not installed where the next login reads it and the
    login certificate stays active; the first run after valid_from installs it, logs in with it, then revokes."""
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path)
    login = LoginCertificate(old_serial, certificate_path=str(tmp_path / 'erp-production.pem'),
                             private_key_path=str(tmp_path / 'erp-production.key'))
    old_pem = (tmp_path / 'erp-production.pem').read_bytes()
    start = (clock.now() + datetime.timedelta(days=2)).replace(microsecond=0)
    run.warnings.clear()
    result = run(dict(args, force=True, valid_from=ksef_time(start)), login=login)
    entry = result['certificates'][0]
    assert result['action'] == 'pending' and result['reason'] == 'not_valid_yet' and result['changed'] is True
    assert entry['proof']['valid_from'] == returned_time(start) and entry['proof']['proven'] is False
    assert ksef.revocations() == [] and old_serial in ksef.active() and ksef.proof_logins == []
    assert (tmp_path / 'erp-production.pem').read_bytes() == old_pem
    assert key_fingerprint(tmp_path / 'erp-production.key') == old_key
    assert len(run.warnings) == 1 and 'valid only from %s' % returned_time(start) in run.warnings[0]
    # A day later the next login still reads the old, active pair; the run waits and sends nothing.
    clock.advance(days=1)
    predicted = run(args, login=login, check_mode=True)
    assert predicted['action'] == 'pending' and predicted['changed'] is False
    waiting = run(args, login=login)
    assert waiting['action'] == 'pending' and waiting['changed'] is False
    assert only_writes(ksef.names()) == [] and old_serial in ksef.active()
    assert (tmp_path / 'erp-production.pem').read_bytes() == old_pem
    # Once valid: installed, proven by a login with the new pair, then the old login certificate is revoked.
    clock.advance(days=1, minutes=1)
    done = run(args, login=login)
    new_serial = done['certificate']['serial_number']
    assert done['action'] == 'renewed' and ksef.proof_logins == [new_serial]
    assert ksef.revocations() == [(old_serial, 'Superseded')] and ksef.count('enroll') == 0
    assert '%016X' % assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem').serial_number == new_serial
    assert run(args, login=login)['action'] == 'none'


# ---------------------------------------------------------------------------------------------
# state absent
# ---------------------------------------------------------------------------------------------

def test_absent_revokes_then_is_unchanged(run, ksef, tmp_path):
    args, serial, dummy = _enrolled(run, ksef, tmp_path)
    absent = dict(args, state='absent', revocation_reason='key_compromise')
    predicted = run(absent, check_mode=True)
    assert predicted['action'] == 'revoked' and predicted['revoked'] == [serial]
    assert only_writes(ksef.names()) == []
    result = run(absent)
    assert result['action'] == 'revoked' and result['changed'] is True
    assert ksef.revocations() == [(serial, 'KeyCompromise')]
    again = run(absent)
    assert again['changed'] is False and again['action'] == 'none'
    assert only_writes(ksef.names()) == []


def test_absent_serial_unknown_to_ksef_on_revoke_is_not_reported_as_revoked(run, ksef, tmp_path):
    args, serial, dummy = _enrolled(run, ksef, tmp_path)
    ksef.revoke_errors[serial] = KsefApiError('POST', '/certificates/{certificateSerialNumber}/revoke', 400,
                                              errors=[{'code': 25008, 'description': 'Certificate not found'}])
    result = run(dict(args, state='absent'))
    assert result['revoked'] == [] and result['already_revoked'] == [serial]
    assert result['certificates'][0]['already_revoked'] == [serial]
    assert result['changed'] is False and result['action'] == 'none'


def test_superseded_certificate_no_longer_active_when_revoked_is_reported_as_revoked(run, ksef, clock, tmp_path):
    # 25009 for a certificate this run saw active: its status changed during the run (typically the run's
    # own revoke whose answer was lost and which the client repeated).
    args, old_serial, dummy = _enrolled(run, ksef, tmp_path)
    ksef.by_serial(old_serial)['valid_to'] = clock.now() + datetime.timedelta(days=10)
    ksef.revoked_elsewhere.add(old_serial)      # revoked first by someone else: KSeF answers 25009
    result = run(args)
    assert result['action'] == 'renewed' and result['changed'] is True
    assert serials(result['superseded']) == [old_serial]
    assert result['revoked'] == [old_serial] and result['already_revoked'] == []


def test_absent_only_revokes_the_declared_key_and_removes_files(run, ksef, tmp_path):
    args, serial, dummy = _enrolled(run, ksef, tmp_path)
    foreign = ksef.add_certificate('erp-production', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    result = run(dict(args, state='absent', remove_files=True))
    assert result['revoked'] == [serial] and foreign in ksef.active()
    assert sorted(result['certificates'][0]['removed_files']) == sorted(
        [args['private_key_path'], args['certificate_path']])
    assert not os.path.exists(args['private_key_path']) and not os.path.exists(args['certificate_path'])


def test_absent_revokes_what_an_enrollment_in_flight_issued_without_installing_it(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 60
    args = single(tmp_path, wait=False)
    run(args)
    clock.advance(seconds=61)
    result = run(dict(args, state='absent'))
    assert result['action'] == 'revoked' and len(result['revoked']) == 1 and ksef.active() == []
    # GET /rate-limits: a run with work reads the effective limits once before it plans its calls.
    assert ksef.names() == ['query', 'retrieve', 'rate_limits', 'revoke']
    assert not os.path.exists(args['certificate_path'])


def test_enrollment_unknown_to_ksef_is_reconciled_by_public_key(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 60
    args = single(tmp_path, wait=False)
    run(args)
    clock.advance(seconds=61)
    ksef.process()
    ksef.enrollments.clear()   # KSeF issued the certificate, then forgot the reference (410 / 25005)
    result = run(args)
    assert result['action'] == 'installed' and result['reason'] == 'reconciled'
    assert any('no longer reports enrollment' in w for w in run.warnings)
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_absent_without_key_revokes_every_exact_match(run, ksef):
    first = ksef.add_certificate('erp-production', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    second = ksef.add_certificate('erp-production', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    ksef.add_certificate('erp-production-2', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    result = run(dict(name='erp-production', type='authentication', state='absent'))
    assert sorted(result['revoked']) == sorted([first, second])
    assert ksef.names().count('retrieve') == 0


# ---------------------------------------------------------------------------------------------
# pending enrollments and crash safety
# ---------------------------------------------------------------------------------------------

def _state(tmp_path, name='erp-production'):
    path = tmp_path / (name + '.key.ksef-pending.json')
    return json.loads(path.read_text()) if path.exists() else None


def test_wait_false_returns_pending_and_the_next_run_resumes(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 60
    args = single(tmp_path, wait=False)
    first = run(args)
    assert first['action'] == 'pending' and first['changed'] is True
    assert first['certificate'] is None
    record = _state(tmp_path)
    assert record['phase'] == 'pending' and record['reference_number'] == first['reference_number']
    assert record['public_key_sha256'] == key_fingerprint(tmp_path / 'erp-production.key')
    assert 'PRIVATE' not in json.dumps(record)
    assert mode(tmp_path / 'erp-production.key.ksef-pending.json') == 0o600

    still = run(args)
    assert still['action'] == 'pending' and still['changed'] is False
    assert ksef.names() == ['query', 'enrollment_status']

    clock.advance(seconds=61)
    done = run(args)
    assert done['action'] == 'enrolled' and done['changed'] is True
    assert 'enroll' not in ksef.names() and len(ksef.enrollments) == 1
    assert _state(tmp_path) is None
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_wait_timeout_is_bounded_and_polls_every_two_seconds(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 3600
    result = run(single(tmp_path, wait_timeout=10))
    assert result['action'] == 'pending'
    polls = ksef.count('enrollment_status')
    assert 5 <= polls <= 7
    assert 10 <= clock.elapsed <= 12


def test_wait_picks_up_a_certificate_issued_while_polling(run, ksef, tmp_path):
    ksef.processing_seconds = 7
    result = run(single(tmp_path))
    assert result['action'] == 'enrolled'
    # The gap doubles from the assumed 1 s issuing delay: at 1, 2, 4 -> 100; at 8 -> 200
    assert [details['at'] for name, details in ksef.calls if name == 'enrollment_status'] == [1.0, 2.0, 4.0, 8.0]
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_resumed_enrollment_is_polled_with_a_growing_gap_not_twice_at_once(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 60
    run(single(tmp_path, wait=False))
    clock.advance(seconds=30)
    result = run(single(tmp_path, wait_timeout=100))
    assert result['action'] == 'enrolled'
    # read at resume (30 s), first look 1 s later, then the gap doubles: 1, 2, 4, 8, 16 s (issued at 60)
    assert [details['at'] for name, details in ksef.calls if name == 'enrollment_status'] == [30, 31, 32, 34, 38, 46, 62]
    assert 'enroll' not in ksef.names()


def test_pending_resume_in_check_mode_reads_but_installs_nothing(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 60
    args = single(tmp_path, wait=False)
    run(args)
    clock.advance(seconds=61)
    before = snapshot(tmp_path)
    predicted = run(args, check_mode=True)
    assert predicted['action'] == 'enrolled' and predicted['changed'] is True
    assert predicted['certificate']['status'] == 'active'
    assert snapshot(tmp_path) == before
    assert only_writes(ksef.names()) == []


def test_rotation_pending_keeps_the_active_key_in_place_until_issued(run, ksef, clock, tmp_path):
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path)
    ksef.by_serial(old_serial)['valid_to'] = clock.now() + datetime.timedelta(days=5)
    ksef.processing_seconds = 60
    first = run(dict(args, wait=False))
    assert first['action'] == 'pending'
    assert key_fingerprint(tmp_path / 'erp-production.key') == old_key, 'active key not replaced while pending'
    assert os.path.exists(str(tmp_path / 'erp-production.key.next'))
    assert mode(tmp_path / 'erp-production.key.next') == 0o600
    assert ksef.revocations() == []
    clock.advance(seconds=61)
    done = run(args)
    assert done['action'] == 'renewed' and ksef.revocations() == [(old_serial, 'Superseded')]
    assert key_fingerprint(tmp_path / 'erp-production.key') != old_key
    assert not os.path.exists(str(tmp_path / 'erp-production.key.next'))
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_rejected_enrollment_fails_with_details_and_clears_the_record(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 60
    args = single(tmp_path, wait=False)
    first = run(args)
    ksef.forced_status[first['reference_number']] = 400
    with pytest.raises(KsefError) as error:
        run(args)
    assert 'rejected enrollment %s' % first['reference_number'] in str(error.value)
    assert 'detail of 400' in str(error.value)
    assert _state(tmp_path) is None


def test_rejected_renewal_deletes_the_next_key_and_keeps_the_key_in_use(run, ksef, clock, tmp_path):
    """issue 14 test gap: the .next key made for a rejected enrollment is deleted with the state file; the key
    and certificate in use stay as they are."""
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path)
    ksef.by_serial(old_serial)['valid_to'] = clock.now() + datetime.timedelta(days=5)
    ksef.processing_seconds = 60
    first = run(dict(args, wait=False))
    assert first['action'] == 'pending' and os.path.exists(str(tmp_path / 'erp-production.key.next'))
    before = snapshot(tmp_path)
    ksef.forced_status[first['reference_number']] = 400
    with pytest.raises(KsefError, match='rejected enrollment'):
        run(args)
    after = snapshot(tmp_path)
    assert 'erp-production.key.next' not in after
    assert after['erp-production.key'] == before['erp-production.key']
    assert after['erp-production.pem'] == before['erp-production.pem']
    assert key_fingerprint(tmp_path / 'erp-production.key') == old_key
    assert _state(tmp_path) is None


@pytest.mark.parametrize('code', [500, 550])
def test_cancelled_enrollment_is_sent_again(run, ksef, tmp_path, code):
    ksef.processing_seconds = 60
    args = single(tmp_path, wait=False)
    first = run(args)
    ksef.forced_status[first['reference_number']] = code
    second = run(args)
    assert ksef.count('enroll') == 1 and second['reference_number'] != first['reference_number']
    assert second['action'] == 'pending'
    assert any('a new enrollment will be sent' in w for w in run.warnings)


def test_lost_enrollment_response_is_reconciled_in_the_same_run(run, ksef, tmp_path):
    ksef.lose_enroll_response = KsefTransportError('POST', '/certificates/enrollments', 'connection reset',
                                                   may_have_reached_server=True)
    result = run(single(tmp_path))
    assert result['action'] == 'installed' and result['reason'] == 'reconciled'
    assert len(ksef.enrollments) == 1 and ksef.count('enroll') == 1
    assert _state(tmp_path) is None
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_lost_response_not_found_fails_then_a_later_run_installs_it(run, ksef, clock, tmp_path):
    ksef.processing_seconds = 600
    ksef.lose_enroll_response = KsefTransportError('POST', '/certificates/enrollments', 'read timed out',
                                                   may_have_reached_server=True)
    args = single(tmp_path, wait=False)
    with pytest.raises(KsefError) as error:
        run(args)
    assert 'KSeF may still be processing the enrollment sent at' in str(error.value)
    assert 'set force to send a new one' in str(error.value)
    assert error.value.fail_kwargs()['changed'] is True
    assert _state(tmp_path)['phase'] == 'intent'
    ksef.lose_enroll_response = None

    with pytest.raises(KsefError, match='KSeF may still be processing'):
        run(args)
    assert 'enroll' not in ksef.names()

    clock.advance(seconds=601)
    result = run(args)
    assert result['action'] == 'installed' and result['reason'] == 'reconciled'
    assert len(ksef.enrollments) == 1
    assert _state(tmp_path) is None
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')


def test_killed_between_post_and_recording_the_reference_is_reconciled(run, ksef, tmp_path):
    ksef.lose_enroll_response = SystemExit(-9)   # the process dies right after KSeF acted
    args = single(tmp_path)
    with pytest.raises(SystemExit):
        run(args)
    assert _state(tmp_path)['phase'] == 'intent'
    key_on_disk = key_fingerprint(tmp_path / 'erp-production.key')
    ksef.lose_enroll_response = None
    result = run(args)
    assert result['action'] == 'installed'
    assert len(ksef.enrollments) == 1 and 'enroll' not in ksef.names()
    certificate = assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')
    assert _crypto.public_key_fingerprint(certificate.public_key()) == key_on_disk


def test_unconfirmed_intent_stops_blocking_after_an_hour_or_with_force(run, ksef, clock, tmp_path):
    ksef.enroll_error = SystemExit(-9)   # killed before KSeF got anything
    args = single(tmp_path)
    with pytest.raises(SystemExit):
        run(args)
    ksef.enroll_error = None
    with pytest.raises(KsefError, match='KSeF may still be processing'):
        run(args)
    forced = run(dict(args, force=True))
    assert forced['action'] == 'enrolled' and ksef.count('enroll') == 1
    assert any('force is set' in w for w in run.warnings)

    ksef.enroll_error = SystemExit(-9)
    with pytest.raises(SystemExit):
        run(dict(args, name='erp-other', private_key_path=str(tmp_path / 'o.key'),
                 certificate_path=str(tmp_path / 'o.pem')))
    ksef.enroll_error = None
    clock.advance(minutes=61)
    late = run(dict(args, name='erp-other', private_key_path=str(tmp_path / 'o.key'),
                    certificate_path=str(tmp_path / 'o.pem')))
    assert late['action'] == 'enrolled'
    assert any('older than 3600 s' in w for w in run.warnings)


def test_transport_error_before_reaching_ksef_clears_the_intent(run, ksef, tmp_path):
    ksef.enroll_error = KsefTransportError('POST', '/certificates/enrollments', 'connection refused',
                                           may_have_reached_server=False)
    with pytest.raises(KsefError, match='connection refused'):
        run(single(tmp_path))
    assert _state(tmp_path) is None
    ksef.enroll_error = None
    assert run(single(tmp_path))['action'] == 'enrolled'


@pytest.mark.parametrize('status', [500, 502, 503, 504, 202])
def test_5xx_or_unreadable_2xx_on_enroll_keeps_the_intent_and_is_never_resent(run, ksef, clock, tmp_path, status):
    """A 5xx or a 2xx without a readable body may mean KSeF took the request: reconcile, never re-send."""
    ksef.processing_seconds = 600
    ksef.lose_enroll_response = KsefApiError('POST', '/certificates/enrollments', status,
                                             errors=[{'code': None, 'description': 'Bad Gateway'}])
    args = single(tmp_path, wait=False)
    key_path = tmp_path / 'erp-production.key'
    with pytest.raises(KsefError) as error:
        run(args)
    assert 'the next run reconciles by name, type and public key' in str(error.value)
    assert _state(tmp_path)['phase'] == 'intent'
    key_sent = key_fingerprint(key_path)
    ksef.lose_enroll_response = None

    with pytest.raises(KsefError, match='KSeF may still be processing'):
        run(args)
    assert 'enroll' not in ksef.names()

    clock.advance(seconds=601)
    result = run(args)
    assert result['action'] == 'installed' and result['reason'] == 'reconciled'
    assert len(ksef.enrollments) == 1 and _state(tmp_path) is None
    assert key_fingerprint(key_path) == key_sent
    assert_pair(key_path, tmp_path / 'erp-production.pem')


def test_4xx_on_enroll_clears_the_intent(run, ksef, tmp_path):
    ksef.enroll_error = KsefApiError('POST', '/certificates/enrollments', 400,
                                     errors=[{'code': 21405, 'description': 'Validation error'}])
    with pytest.raises(KsefError, match='21405'):
        run(single(tmp_path))
    assert _state(tmp_path) is None
    ksef.enroll_error = None
    assert run(single(tmp_path))['action'] == 'enrolled'


def test_lock_held_by_another_run_fails_clearly(run, ksef, tmp_path):
    args = single(tmp_path, lock_timeout=1)
    lock_path = str(tmp_path / 'erp-production.key.ksef-pending.json.lock')
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(KsefError, match='Another run is managing this certificate'):
            run(args)
    finally:
        os.close(fd)
    assert ksef.calls == []
    assert run(args)['action'] == 'enrolled'


def test_run_that_waited_for_the_lock_sees_what_the_other_run_installed(run, ksef, clock, tmp_path, monkeypatch):
    args = single(tmp_path)
    run(args)
    aside = tmp_path / 'aside'
    aside.mkdir()
    for name in ('erp-production.key', 'erp-production.pem'):
        os.rename(str(tmp_path / name), str(aside / name))
    lock_path = str(tmp_path / 'erp-production.key.ksef-pending.json.lock')
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    real_sleep = clock.sleep

    def other_run_finishes(seconds):
        """While this run waits, the run holding the lock installs its key and certificate and exits."""
        if not os.path.exists(str(tmp_path / 'erp-production.key')):
            for name in ('erp-production.key', 'erp-production.pem'):
                os.rename(str(aside / name), str(tmp_path / name))
            fcntl.flock(fd, fcntl.LOCK_UN)
        real_sleep(seconds)

    monkeypatch.setattr(clock, 'sleep', other_run_finishes)
    try:
        result = run(args)
    finally:
        os.close(fd)
    assert result['action'] == 'none' and result['changed'] is False
    assert ksef.names() == ['query'] and ksef.count('enroll') == 0


def test_files_written_before_the_lock_is_taken_are_read_again_without_waiting(run, ksef, tmp_path, monkeypatch):
    """Another run installs key and certificate after prepare() and releases its lock before this run locks."""
    args = single(tmp_path)
    run(args)
    aside = tmp_path / 'aside'
    aside.mkdir()
    for name in ('erp-production.key', 'erp-production.pem'):
        os.rename(str(tmp_path / name), str(aside / name))
    original_enter = _converge.LockSet.__enter__

    def other_run_finished_just_before(self):
        for name in ('erp-production.key', 'erp-production.pem'):
            os.rename(str(aside / name), str(tmp_path / name))
        return original_enter(self)

    monkeypatch.setattr(_converge.LockSet, '__enter__', other_run_finished_just_before)
    key_before = key_fingerprint(aside / 'erp-production.key')
    result = run(args)
    assert result['action'] == 'none' and result['changed'] is False
    assert ksef.names() == ['query'] and ksef.count('enroll') == 0
    assert key_fingerprint(tmp_path / 'erp-production.key') == key_before


def test_key_written_outside_the_lock_is_never_overwritten(run, ksef, tmp_path, monkeypatch):
    args = single(tmp_path)
    foreign = ec.generate_private_key(ec.SECP256R1())
    key_path = tmp_path / 'erp-production.key'
    real_generate = _crypto.generate_private_key

    def someone_writes_the_key_meanwhile(*a, **kw):
        key_path.write_bytes(_crypto.private_key_to_pem(foreign))
        return real_generate(*a, **kw)

    monkeypatch.setattr(_crypto, 'generate_private_key', someone_writes_the_key_meanwhile)
    with pytest.raises(KsefError, match='appeared while this run was preparing to enroll'):
        run(args)
    assert key_fingerprint(key_path) == _crypto.public_key_fingerprint(foreign)
    assert ksef.count('enroll') == 0 and _state(tmp_path) is None


def test_rejection_while_waiting_clears_the_state_file(run, ksef, tmp_path):
    ksef.processing_seconds = 60
    original = ksef.enroll

    def enroll_then_reject(*args, **kwargs):
        reply = original(*args, **kwargs)
        ksef.forced_status[reply['referenceNumber']] = 400
        return reply

    ksef.enroll = enroll_then_reject
    with pytest.raises(KsefError, match='rejected enrollment'):
        run(single(tmp_path))
    assert _state(tmp_path) is None


def test_state_file_of_another_declaration_is_not_touched(run, ksef, tmp_path):
    state = tmp_path / 'erp-production.key.ksef-pending.json'
    state.write_text(json.dumps({'phase': 'pending', 'name': 'something-else', 'type': 'offline',
                                 'reference_number': 'X', 'intent_time': '2026-03-01T00:00:00Z'}))
    with pytest.raises(KsefError, match='belongs to certificate something-else/offline'):
        run(single(tmp_path))
    assert ksef.calls == [] and state.exists()


# ---------------------------------------------------------------------------------------------
# limits
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('limits, message', [
    ({'canRequest': False, 'enrollment': {'remaining': 0, 'limit': 300}, 'certificate': {'remaining': 5, 'limit': 100}},
     r'enrollment requests quota \(KSeF 25006\): 0 of 300 left'),
    ({'canRequest': False, 'enrollment': {'remaining': 10, 'limit': 300}, 'certificate': {'remaining': 0, 'limit': 100}},
     r'active certificates quota \(KSeF 25007\): 0 of 100 left'),
    ({'canRequest': False, 'enrollment': {'remaining': 10, 'limit': 300}, 'certificate': {'remaining': 10, 'limit': 100}},
     'canRequest=false'),
])
def test_exhausted_quota_fails_before_anything_is_sent_or_written(run, ksef, tmp_path, limits, message):
    ksef.limits_reply = limits
    with pytest.raises(KsefError, match=message):
        run(single(tmp_path))
    assert ksef.names() == ['query', 'rate_limits', 'limits']
    assert snapshot(tmp_path) == {}


def test_quota_answer_from_enroll_names_the_quota(run, ksef, tmp_path):
    ksef.enroll_error = KsefApiError('POST', '/certificates/enrollments', 400,
                                     errors=[{'code': 25007, 'description': 'Limit reached'}])
    with pytest.raises(KsefError) as error:
        run(single(tmp_path))
    assert 'active certificates quota is exhausted' in str(error.value)
    assert error.value.fail_kwargs()['ksef_errors'][0]['code'] == 25007
    assert _state(tmp_path) is None


# ---------------------------------------------------------------------------------------------
# list form and CSR form
# ---------------------------------------------------------------------------------------------

def test_list_of_twelve_costs_one_query_when_healthy(run, ksef, tmp_path):
    items = [dict(name='device-%02d' % i, type='offline' if i % 3 == 0 else 'authentication',
                  private_key_path=str(tmp_path / ('d%02d.key' % i)), certificate_path=str(tmp_path / ('d%02d.pem' % i)))
             for i in range(12)]
    args = dict(certificates=items, private_key_type='ec')
    predicted = run(args, check_mode=True)
    assert predicted['action'] == 'enrolled' and len(predicted['certificates']) == 12
    assert only_writes(ksef.names()) == [] and snapshot(tmp_path) == {}

    first = run(args)
    assert first['action'] == 'enrolled'
    assert ksef.count('limits') == 1 and ksef.count('enrollment_data') == 1
    assert ksef.count('enroll') == 12
    # The twelve issued certificates are found by one query page, not by twelve status polls.
    assert ksef.count('query') == 2 and ksef.count('enrollment_status') == 0
    for i in range(12):
        assert_pair(tmp_path / ('d%02d.key' % i), tmp_path / ('d%02d.pem' % i))
    serials = [entry['certificate']['serial_number'] for entry in first['certificates']]
    assert len(set(serials)) == 12

    for check_mode in (True, False):
        again = run(args, check_mode=check_mode)
        assert again['changed'] is False and again['action'] == 'none'
        assert ksef.names() == ['query']
        assert [entry['certificate']['serial_number'] for entry in again['certificates']] == serials


def _fifteen(tmp_path, prefix='limited'):
    return [dict(name='%s-%03d' % (prefix, i), private_key_path=str(tmp_path / ('%s-%03d.key' % (prefix, i))),
                 certificate_path=str(tmp_path / ('%s-%03d.pem' % (prefix, i)))) for i in range(15)]


def test_list_enrollment_overlaps_the_wait_for_a_rate_limit_slot(run, ksef, clock, tmp_path):
    """make bench's scenario: 15 enrollments, every certificate endpoint limited to 12 a minute.

    The 13th enrollment must wait for the first to leave the 60 s window; meanwhile the twelve sent are
    found issued by a query page (its endpoint has its own counter), a full batch of 10 is retrieved and
    installed; the rest is retrieved in one call at the end.
    """
    ksef.processing_seconds = 1
    ksef.limit_rate(per_minute=12)
    installed_when_sent = []
    original = ksef.enroll

    def enroll(name, *args, **kwargs):
        # Crash safety is unchanged: the intent is on disk before the POST.
        assert _state(tmp_path, name)['phase'] == 'intent'
        installed_when_sent.append(len(list(tmp_path.glob('*.pem'))))
        return original(name, *args, **kwargs)

    ksef.enroll = enroll
    start = clock.monotonic()
    result = run(dict(certificates=_fifteen(tmp_path), type='authentication'))

    assert result['action'] == 'enrolled' and result['changed'] is True
    for i in range(15):
        assert_pair(tmp_path / ('limited-%03d.key' % i), tmp_path / ('limited-%03d.pem' % i))
    assert ksef.refused == [], 'a call KSeF would have answered with 429'
    assert len(ksef.enrollments) == 15 and ksef.count('enroll') == 15, 'an enrollment was sent twice'

    names = ksef.names()
    sent = [index for index, name in enumerate(names) if name == 'enroll']
    before_last_minute = names[:sent[12]]
    # The twelve sent in the first minute were found by the query and a batch of 10 retrieved before the 13th...
    assert before_last_minute.count('query') >= 2 and before_last_minute.count('retrieve') == 1
    # ...and installed: the first ten while the 11th waited for the 1 s window, so before the 13th was sent.
    assert installed_when_sent == [0] * 10 + [10] * 5
    # No status poll: every enrollment showed up in a query page; 15 certificates take two retrieve calls.
    assert ksef.count('enrollment_status') == 0
    assert (ksef.count('limits'), ksef.count('enrollment_data'), ksef.count('retrieve')) == (1, 1, 2)
    assert ksef.count('query') <= 6
    assert [len(details['serials']) for name, details in ksef.calls if name == 'retrieve'] == [10, 5]
    # The 60 s window (plus the 0.25 s pacing margin) is the floor; the fake clock shows nothing else waits long.
    assert 60.25 <= clock.monotonic() - start < 66
    assert not list(tmp_path.glob('*.ksef-pending.json')), 'state files are cleared once installed'


def test_list_enrollment_at_the_published_limits_sends_in_order_and_retrieves_in_batches(run, ksef, clock, tmp_path):
    """10 a second: the wait for the 11th slot finds the first ten issued; 15 certificates, two retrieve calls."""
    ksef.processing_seconds = 1
    ksef.limit_rate(per_minute=30)
    run(dict(certificates=_fifteen(tmp_path), type='authentication'))
    sent = [details['certificate_name'] for name, details in ksef.calls if name == 'enroll']
    assert sent == ['limited-%03d' % i for i in range(15)]
    assert ksef.refused == [] and ksef.count('enrollment_status') == 0
    assert [len(details['serials']) for name, details in ksef.calls if name == 'retrieve'] == [10, 5]


def test_list_enrollment_check_mode_under_rate_limit_sends_and_waits_for_nothing(run, ksef, clock, tmp_path):
    ksef.limit_rate(per_minute=12)
    start = clock.monotonic()
    predicted = run(dict(certificates=_fifteen(tmp_path), type='authentication'), check_mode=True)
    assert predicted['action'] == 'enrolled' and predicted['changed'] is True
    assert only_writes(ksef.names()) == [] and 'enrollment_status' not in ksef.names()
    assert snapshot(tmp_path) == {} and clock.monotonic() == start


def test_list_renews_only_the_certificate_in_its_window(run, ksef, clock, tmp_path):
    items = [dict(name='device-%02d' % i, private_key_path=str(tmp_path / ('d%02d.key' % i)),
                  certificate_path=str(tmp_path / ('d%02d.pem' % i))) for i in range(3)]
    args = dict(certificates=items, type='authentication')
    first = run(args)
    target = first['certificates'][1]['certificate']['serial_number']
    ksef.by_serial(target)['valid_to'] = clock.now() + datetime.timedelta(days=2)
    result = run(args)
    assert [entry['action'] for entry in result['certificates']] == ['none', 'renewed', 'none']
    assert result['action'] == 'multiple' and serials(result['superseded']) == [target]
    assert ksef.revocations() == [(target, 'Superseded')] and ksef.count('enroll') == 1


def _csr(key, data=None):
    return (x509.CertificateSigningRequestBuilder().subject_name(_crypto.build_subject(data or ENROLLMENT_DATA))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode('ascii'))


def test_role_path_list_of_csrs_without_any_file(run, ksef, tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    keys = [ec.generate_private_key(ec.SECP256R1()) for dummy in range(3)]
    args = dict(type='authentication', return_content=True,
                certificates=[dict(name='host-app%02d' % i, csr_content=_csr(key)) for i, key in enumerate(keys)])
    first = run(args)
    assert [entry['action'] for entry in first['certificates']] == ['enrolled'] * 3
    for key, entry in zip(keys, first['certificates']):
        certificate = x509.load_pem_x509_certificate(entry['certificate_pem'].encode('ascii'))
        assert _crypto.public_key_fingerprint(certificate.public_key()) == _crypto.public_key_fingerprint(key)
        assert entry['state_path'] is None
    assert snapshot(tmp_path) == {}

    again = run(args)
    assert again['changed'] is False
    assert ksef.names() == ['query', 'retrieve'], 'without local files identity needs one retrieve (10 per call)'
    assert [e['certificate_pem'] for e in again['certificates']] == [e['certificate_pem'] for e in first['certificates']]


def test_csr_renewal_enrolls_the_same_csr_again(run, ksef, clock, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    args = dict(name='host-app01', type='authentication', csr_content=_csr(key),
                certificate_path=str(tmp_path / 'app01.pem'))
    first = run(args)
    old = first['certificate']['serial_number']
    ksef.by_serial(old)['valid_to'] = clock.now() + datetime.timedelta(days=1)
    result = run(args)
    assert result['action'] == 'renewed' and ksef.revocations() == [(old, 'Superseded')]
    # The CSR's key is elsewhere: nothing could be proven here, and the result says so.
    proof = result['certificates'][0]['proof']
    assert proof['proven'] is False and 'a CSR was given' in proof['reason'] and ksef.proof_logins == []
    assert _crypto.public_key_fingerprint(cert_of(tmp_path / 'app01.pem').public_key()) == \
        _crypto.public_key_fingerprint(key)
    assert run(args)['action'] == 'none'


def test_csr_renewal_refused_for_a_reused_key_says_to_give_a_csr_of_a_new_key(run, ksef, clock, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    args = dict(name='host-app01', type='authentication', csr_content=_csr(key),
                certificate_path=str(tmp_path / 'app01.pem'))
    old = run(args)['certificate']['serial_number']
    ksef.by_serial(old)['valid_to'] = clock.now() + datetime.timedelta(days=1)
    original = ksef.enrollment_status

    def refused(reference_number):
        answer = original(reference_number)
        return dict(answer, status={'code': 400, 'description': u'Wniosek odrzucony',
                                    'details': [u'Klucz publiczny zosta\u0142 ju\u017c certyfikowany.']})

    ksef.enrollment_status = refused
    with pytest.raises(KsefError) as failure:
        run(args)
    assert 'give a CSR of a new key' in str(failure.value) and 'status 400' in str(failure.value)
    assert ksef.revocations() == [] and old in ksef.active()


def _csr_renewal_with_a_lost_answer(run, ksef, clock, tmp_path, lost):
    """A CSR renewal right after the first enrollment: the old certificate has the same key and a recent request."""
    key = ec.generate_private_key(ec.SECP256R1())
    args = dict(name='host-app01', type='authentication', csr_content=_csr(key),
                certificate_path=str(tmp_path / 'app01.pem'))
    old = run(args)['certificate']['serial_number']
    args['wait'] = False
    ksef.by_serial(old)['valid_to'] = clock.now() + datetime.timedelta(days=1)
    ksef.processing_seconds = 600
    ksef.lose_enroll_response = lost
    return args, old


def _finish_csr_renewal(run, ksef, clock, tmp_path, args, old):
    with pytest.raises(KsefError, match='KSeF may still be processing'):
        run(args)
    assert 'enroll' not in ksef.names()
    clock.advance(seconds=601)
    result = run(args)
    new = result['certificate']['serial_number']
    assert result['action'] == 'installed' and result['reason'] == 'reconciled' and new != old
    assert ksef.revocations() == [(old, 'Superseded')] and ksef.active() == [new]
    assert '%016X' % cert_of(tmp_path / 'app01.pem').serial_number == new
    assert not os.path.exists(str(tmp_path / 'app01.pem.ksef-pending.json'))


def test_csr_renewal_with_a_lost_answer_never_takes_the_old_certificate(run, ksef, clock, tmp_path):
    args, old = _csr_renewal_with_a_lost_answer(run, ksef, clock, tmp_path, KsefTransportError(
        'POST', '/certificates/enrollments', 'read timed out', may_have_reached_server=True))
    with pytest.raises(KsefError, match='KSeF may still be processing'):
        run(args)
    ksef.lose_enroll_response = None
    _finish_csr_renewal(run, ksef, clock, tmp_path, args, old)


def test_csr_renewal_intent_is_not_reconciled_with_the_old_certificate(run, ksef, clock, tmp_path):
    args, old = _csr_renewal_with_a_lost_answer(run, ksef, clock, tmp_path, SystemExit(-9))
    with pytest.raises(SystemExit):
        run(args)
    ksef.lose_enroll_response = None
    record = json.loads((tmp_path / 'app01.pem.ksef-pending.json').read_text())
    assert record['phase'] == 'intent' and record['known_serials'] == [old]
    _finish_csr_renewal(run, ksef, clock, tmp_path, args, old)


@pytest.mark.parametrize('form', ['key', 'csr'])
def test_an_issued_certificate_without_the_enrolled_public_key_is_never_installed(run, ksef, tmp_path, form):
    """issue 14 test gap: KSeF (or something in between) answers with a certificate of another public key: the
    run fails naming the enrollment, and no certificate, key or PKCS#12 file is written or replaced."""
    ksef.issue_for_key = ec.generate_private_key(ec.SECP256R1())
    if form == 'key':
        args = single(tmp_path, pkcs12_path=str(tmp_path / 'erp-production.p12'), pkcs12_passphrase='bundle secret')
    else:
        args = dict(name='host-app01', type='authentication', certificate_path=str(tmp_path / 'app01.pem'),
                    csr_content=_csr(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(KsefError, match='does not carry the enrolled public key; nothing was installed'):
        run(args)
    assert ksef.count('enroll') == 1
    files = snapshot(tmp_path)
    assert not [name for name in files if name.endswith(('.pem', '.p12'))], files
    if form == 'key':
        # The key made for the enrollment is still there (the state file points at it) and was not replaced.
        assert 'erp-production.key' in files and files['erp-production.key'][0] == 0o600


def test_csr_with_a_different_subject_is_refused_before_enrolling(run, ksef):
    key = ec.generate_private_key(ec.SECP256R1())
    wrong = dict(ENROLLMENT_DATA, serialNumber='TINPL-9999999999')
    with pytest.raises(KsefError, match='serialNumber differ'):
        run(dict(name='host-app01', type='authentication', csr_content=_csr(key, wrong)))
    assert 'enroll' not in ksef.names()


# ---------------------------------------------------------------------------------------------
# bad input: fails before any API call, nothing written
# ---------------------------------------------------------------------------------------------

def _bad_key_file(tmp_path, key, passphrase=None):
    path = tmp_path / 'bad.key'
    path.write_bytes(_crypto.private_key_to_pem(key, passphrase))
    return str(path)


@pytest.mark.parametrize('build, message', [
    (lambda p: dict(name='abc', type='authentication', private_key_path=str(p / 'k')), 'not accepted by KSeF'),
    (lambda p: dict(name='bad/name!', type='authentication', private_key_path=str(p / 'k')), 'not accepted by KSeF'),
    (lambda p: dict(name='x' * 101, type='authentication', private_key_path=str(p / 'k')), 'not accepted by KSeF'),
    (lambda p: dict(certificates=[dict(name='erp-production', private_key_path=str(p / 'k'))]), 'type must be one of'),
    (lambda p: dict(name='erp-production', type='authentication', private_key_path=str(p / 'missing' / 'k')),
     'does not exist'),
    (lambda p: dict(name='erp-production', type='authentication', private_key_path=str(p)), 'Cannot read'),
    (lambda p: dict(name='erp-production', type='authentication',
                    private_key_path=_bad_key_file(p, ec.generate_private_key(ec.SECP256R1()), 'right'),
                    private_key_passphrase='wrong'), 'wrong passphrase'),
    (lambda p: dict(name='erp-production', type='authentication',
                    private_key_path=_bad_key_file(p, rsa.generate_private_key(65537, 1024))), 'RSA 1024 bits'),
    (lambda p: dict(name='erp-production', type='authentication',
                    private_key_path=_bad_key_file(p, ec.generate_private_key(ec.SECP384R1()))), 'secp384r1'),
    (lambda p: dict(type='offline', certificates=[dict(name='erp-production', private_key_path=str(p / 'a')),
                                                  dict(name='erp-production', private_key_path=str(p / 'b'))]),
     'declared twice'),
    (lambda p: dict(name='erp-production', type='authentication', private_key_path=str(p / 'k'),
                    csr_content=_csr(ec.generate_private_key(ec.SECP256R1()))), 'not both'),
    (lambda p: dict(name='erp-production', type='authentication', certificate_path=str(p / 'c.pem')),
     'set private_key_path'),
    (lambda p: dict(name='erp-production', type='authentication', csr_content='garbage'), 'Cannot parse'),
    (lambda p: dict(name='erp-production', type='authentication', private_key_path=str(p / 'k'),
                    valid_from='tomorrow'), 'not an ISO 8601'),
    (lambda p: dict(type='offline', certificates=[dict(name='erp-one', private_key_path=str(p / 'a')),
                                                  dict(name='erp-two', private_key_path=str(p / 'a'))]),
     'used by two certificates'),
    (lambda p: dict(name='erp-production', type='authentication', key_backend='pkcs11', certificate_path=str(p / 'c'),
                    pkcs11_module='/usr/lib/softhsm/libsofthsm2.so', pkcs11_token_label='keys'),
     'key_backend pkcs11 needs pkcs11_pin'),
    (lambda p: dict(name='erp-production', type='authentication', key_backend='pkcs11', pkcs11_pin='1234',
                    pkcs11_module='/usr/lib/softhsm/libsofthsm2.so', pkcs11_token_label='keys'),
     'key_backend pkcs11 needs certificate_path'),
    (lambda p: dict(name='erp-production', type='authentication', key_backend='pkcs11', pkcs11_pin='1234',
                    pkcs11_module='/usr/lib/softhsm/libsofthsm2.so', pkcs11_token_label='keys',
                    certificate_path=str(p / 'c'), private_key_path=str(p / 'k')), 'the key stays in the token'),
    # who revokes the superseded certificates: the module or its caller (a top-level value is each item's default)
    (lambda p: dict(type='authentication', revoke_superseded=True,
                    certificates=[dict(name='erp-production', csr_content=_csr(ec.generate_private_key(ec.SECP256R1())),
                                       caller_revokes_superseded=True)]),
     r'set revoke_superseded \(the module revokes the superseded certificates\) or caller_revokes_superseded'),
])
def test_bad_input_fails_before_any_call_with_nothing_written(run, ksef, tmp_path, build, message):
    args = build(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(KsefInputError, match=message):
        run(args)
    assert ksef.calls == []
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------
# diff mode
# ---------------------------------------------------------------------------------------------

def test_diff_shows_small_summaries_without_key_material(run, ksef, clock, tmp_path):
    args, old_serial, old_key = _enrolled(run, ksef, tmp_path, private_key_passphrase='diff secret')
    ksef.by_serial(old_serial)['valid_to'] = clock.now() + datetime.timedelta(days=1)
    result = run(args, diff=True)
    before, after = result['diff']['before'], result['diff']['after']
    assert before['serial_number'] == old_serial and before['public_key_sha256'] == old_key
    assert after['serial_number'] == result['certificate']['serial_number'] != old_serial
    assert after['public_key_sha256'] == key_fingerprint(tmp_path / 'erp-production.key', 'diff secret')
    assert set(before) == {'name', 'type', 'private_key_path', 'certificate_path', 'serial_number', 'status',
                           'valid_to', 'public_key_sha256'}
    text = json.dumps(result)
    assert 'PRIVATE KEY' not in text and 'diff secret' not in text


# ---------------------------------------------------------------------------------------------
# main() over scripted HTTP (the real KsefModule, KsefApi and KsefHttpClient)
# ---------------------------------------------------------------------------------------------

def test_main_healthy_run_sends_exactly_onequery_exchange(run_module, monkeypatch, tmp_path, clock):
    fake, serial, dummy = existing_pair(tmp_path, clock)
    script = HttpScript([query_exchange([fake.item(fake.by_serial(serial))])]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, **single(tmp_path)), check_mode=False)
    script.verify()
    assert result.exit_code == 0, result
    assert result['changed'] is False and result['action'] == 'none'
    assert result['api_calls'] == 1
    assert result['certificate']['serial_number'] == serial


def test_main_enrolls_over_http(run_module, monkeypatch, tmp_path, clock):
    fake = FakeKsef(clock)
    reference = '20260301-EH-1B6C9EB000-4B15D3AEB9-89'
    status = Exchange('GET', '/certificates/enrollments/{referenceNumber}', token=ACCESS_TOKEN)
    retrieve = Exchange('POST', '/certificates/retrieve', token=ACCESS_TOKEN)

    def accept_enrollment(body):
        """KSeF side of the POST: issue the certificate for the CSR and script the later answers with it."""
        csr = x509.load_der_x509_csr(base64.b64decode(body['csr']))
        serial = fake.issue({'csr': csr, 'name': body['certificateName'], 'type': body['certificateType'],
                             'sent_at': clock.now()})
        status.reply = {'requestDate': '2026-03-01T12:00:00Z', 'status': {'code': 200, 'description': 'OK'},
                        'certificateSerialNumber': serial}
        retrieve.json = {'certificateSerialNumbers': [serial]}
        retrieve.reply = {'certificates': [{'certificate': base64.b64encode(fake.by_serial(serial)['der']).decode('ascii'),
                                            'certificateName': 'erp-production', 'certificateSerialNumber': serial,
                                            'certificateType': 'Authentication'}]}
        return body['certificateName'] == 'erp-production' and body['certificateType'] == 'Authentication'

    script = HttpScript([
        query_exchange([]),
        rate_limits_exchange(),
        Exchange('GET', '/certificates/limits', token=ACCESS_TOKEN, reply=fake.limits_reply),
        Exchange('GET', '/certificates/enrollments/data', token=ACCESS_TOKEN, reply=ENROLLMENT_DATA),
        Exchange('POST', '/certificates/enrollments', token=ACCESS_TOKEN, json=accept_enrollment, status=202,
                 reply={'referenceNumber': reference, 'timestamp': '2026-03-01T12:00:00Z'}),
        status,
        retrieve,
    ]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, **single(tmp_path)))
    script.verify()
    assert result.exit_code == 0, result
    assert result['action'] == 'enrolled' and result['api_calls'] == 7
    # One enrollment waited for: its status is asked by reference (a query page would cost the same).
    assert script.requests[5].url.endswith('/certificates/enrollments/' + reference)
    assert result['budget']['limits_source'] == 'GET /rate-limits' and result['budget']['fits_hour'] is True
    assert_pair(tmp_path / 'erp-production.key', tmp_path / 'erp-production.pem')
    assert mode(tmp_path / 'erp-production.key') == 0o600


def _healthy_with_warning(tmp_path, clock):
    fake, serial, dummy = existing_pair(tmp_path, clock)
    query = query_exchange([fake.item(fake.by_serial(serial))])
    query.reply_headers = {'X-System-Warning': '[sig-001]: Format podpisu niezgodny z profilami XAdES | [x-2]: inny'}
    return query


@pytest.mark.parametrize('mode', ['warn', 'fail'])
def test_main_system_warnings_are_returned_and_fail_on_request(run_module, monkeypatch, tmp_path, clock, mode):
    script = HttpScript([_healthy_with_warning(tmp_path, clock)]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, system_warnings=mode, **single(tmp_path)))
    script.verify()
    assert result['system_warnings'] == [
        {'code': 'sig-001', 'text': 'Format podpisu niezgodny z profilami XAdES', 'endpoint': 'POST /certificates/query'},
        {'code': 'x-2', 'text': 'inny', 'endpoint': 'POST /certificates/query'}]
    assert result['action'] == 'none' and result['changed'] is False
    if mode == 'warn':
        assert result.exit_code == 0
    else:
        assert result.exit_code == 1 and 'sig-001' in result['msg'] and 'system_warnings=fail' in result['msg']


def test_main_system_warnings_from_the_environment(run_module, monkeypatch, tmp_path, clock):
    monkeypatch.setenv('KSEF_SYSTEM_WARNINGS', 'fail')
    script = HttpScript([_healthy_with_warning(tmp_path, clock)]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, **single(tmp_path)))
    script.verify()
    assert result.exit_code == 1 and result['system_warnings'][0]['code'] == 'sig-001'


def test_main_bad_input_fails_without_any_request(run_module, monkeypatch, tmp_path):
    script = HttpScript([]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, name='abc', type='authentication',
                                               private_key_path=str(tmp_path / 'k')))
    script.verify()
    assert result.exit_code == 1 and 'not accepted by KSeF' in result['msg']
    assert result['api_calls'] == 0
    assert snapshot(tmp_path) == {}


def test_main_failure_carries_partial_results_and_the_ksef_error(run_module, monkeypatch, tmp_path):
    reply = {'exception': {'serviceCode': 'svc-1', 'exceptionDetailList': [
        {'exceptionCode': 25006, 'exceptionDescription': 'Enrollment limit reached', 'details': None}]}}
    script = HttpScript([
        query_exchange([]),
        rate_limits_exchange(),
        Exchange('GET', '/certificates/limits', token=ACCESS_TOKEN,
                 reply={'canRequest': True, 'enrollment': {'remaining': 3, 'limit': 300},
                        'certificate': {'remaining': 3, 'limit': 100}}),
        Exchange('GET', '/certificates/enrollments/data', token=ACCESS_TOKEN, reply=ENROLLMENT_DATA),
        Exchange('POST', '/certificates/enrollments', token=ACCESS_TOKEN, status=400, reply=reply),
    ]).install(monkeypatch)
    result = run_module(ksef_certificate, dict(CONNECTION, **single(tmp_path)))
    script.verify()
    assert result.exit_code == 1
    assert 'enrollment requests quota is exhausted' in result['msg']
    assert result['ksef_errors'][0]['code'] == 25006
    assert result['certificates'][0]['name'] == 'erp-production'
    assert not os.path.exists(str(tmp_path / 'erp-production.key.ksef-pending.json'))
