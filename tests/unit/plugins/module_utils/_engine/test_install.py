# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import Decision
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.install import Installer, LocalFiles
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import mode
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.certs import make_key, make_seal_certificate


class FileModule:
    """The AnsibleModule file methods the installer uses, on the real file system."""

    check_mode = False
    params = {}

    def __init__(self):
        self.backups = []

    @staticmethod
    def atomic_move(source, path, **dummy_kwargs):
        os.rename(source, path)

    @staticmethod
    def load_file_common_arguments(params, path=None):
        return {'path': path}

    @staticmethod
    def set_fs_attributes_if_different(args, changed, expand=True):
        assert expand is False, 'file paths are literal: a $ can be part of a name, so nothing may expand $VAR'
        mode = args.get('mode')
        if mode is not None and stat.S_IMODE(os.stat(args['path']).st_mode) != int(mode, 8):
            os.chmod(args['path'], int(mode, 8))
            return True
        return changed

    def backup_local(self, path):
        raise AssertionError('backup_local copies with shutil.copy2 (a key copy is briefly 0644); the installer uses '
                             '_crypto.backup_file')


def declaration(tmp_path, **extra):
    values = dict(name='erp-auth', type='authentication', state='present', private_key_path=str(tmp_path / 'erp.key'),
                  certificate_path=str(tmp_path / 'erp.pem'), private_key_type='ec', backup=False)
    values.update(extra)
    return Declaration(values)


def test_generate_in_place_then_install_the_certificate(tmp_path):
    installer = Installer(FileModule())
    decl = declaration(tmp_path)
    plan = Plan(decl, Decision(decl, key_plan='generate_in_place'))
    key, path = installer.generate_key(plan)
    assert path == str(tmp_path / 'erp.key') and mode(path) == 0o600
    certificate = make_seal_certificate(key)
    plan.enroll_key_path = path
    installer.install(plan, certificate)
    assert _crypto.read_certificate_file(str(tmp_path / 'erp.pem')).serial_number == certificate.serial_number
    assert mode(str(tmp_path / 'erp.pem')) == 0o644
    assert not installer.local_files.need_install(plan.decl, certificate)


def test_a_next_key_replaces_the_key_on_install_with_a_backup(tmp_path):
    installer = Installer(FileModule())
    old = make_key('ec', slot=0)
    _crypto.write_private_key(FileModule(), str(tmp_path / 'erp.key'), old)
    decl = declaration(tmp_path, backup=True)
    plan = Plan(decl, Decision(decl, key_plan='generate_next'))
    plan.decl.key = old
    key, path = installer.generate_key(plan)
    assert path == str(tmp_path / 'erp.key.next')
    plan.enroll_key_path = path
    installer.install(plan, make_seal_certificate(key))
    assert not os.path.exists(path)
    assert _crypto.public_key_fingerprint(_crypto.load_private_key(str(tmp_path / 'erp.key'))) == \
        _crypto.public_key_fingerprint(key)
    assert len(plan.backup_files) == 1 and plan.backup_files[0].startswith(str(tmp_path / 'erp.key.'))
    assert _crypto.public_key_fingerprint(_crypto.load_private_key(plan.backup_files[0])) == \
        _crypto.public_key_fingerprint(old)
    assert mode(plan.backup_files[0]) == 0o600


def _old_backups(path, count):
    """`count` backups of path as earlier runs (or AnsibleModule.backup_local) named them, oldest first."""
    names = ['%s.%d.2020-01-%02d@10:00:00~' % (path, 1000 + day, day) for day in range(1, count + 1)]
    for name in names:
        with open(name, 'w') as handle:
            handle.write('old backup')
    return names


@pytest.mark.parametrize('keep', [1, 2, 5])
def test_backup_keep_removes_older_backups_of_the_same_file_only(tmp_path, keep):
    """backup_keep: after a new backup, the `keep` newest backups of that file remain (the new one included);
    backups of other files and look-alike names are never touched."""
    installer = Installer(FileModule())
    cert = str(tmp_path / 'erp.pem')
    (tmp_path / 'erp.pem').write_text('certificate')
    old = _old_backups(cert, 4)
    others = _old_backups(str(tmp_path / 'erp.pem2'), 2) + _old_backups(str(tmp_path / 'erp.key'), 3)
    (tmp_path / 'erp.pem.notes~').write_text('not a backup')
    plan = Plan(declaration(tmp_path, backup=True, backup_keep=keep))
    installer.backup(plan, cert)
    made = plan.backup_files[0]
    assert (tmp_path / made).read_text() == 'certificate' and mode(made) == 0o600
    assert _crypto.list_backups(cert) == (old + [made])[-keep:]
    assert all(os.path.exists(path) for path in others)
    assert (tmp_path / 'erp.pem.notes~').exists()


def test_backup_keep_defaults_to_a_small_number(tmp_path):
    installer = Installer(FileModule())
    cert = str(tmp_path / 'erp.pem')
    (tmp_path / 'erp.pem').write_text('certificate')
    old = _old_backups(cert, 7)
    plan = Plan(declaration(tmp_path, backup=True))
    installer.backup(plan, cert)
    assert _crypto.DEFAULT_BACKUP_KEEP == 5
    assert _crypto.list_backups(cert) == old[-4:] + plan.backup_files


def test_two_backups_of_one_file_within_a_second_are_both_kept(tmp_path):
    key = tmp_path / 'erp.key'
    key.write_text('first')
    first = _crypto.backup_file(str(key), keep=5, now=1700000000)
    key.write_text('second')
    second = _crypto.backup_file(str(key), keep=5, now=1700000000)
    assert first != second
    assert (tmp_path / first).read_text() == 'first' and (tmp_path / second).read_text() == 'second'
    assert _crypto.list_backups(str(key)) == [first, second]


@pytest.mark.parametrize('umask', [0o022, 0o000])
def test_a_backup_of_a_world_readable_file_is_still_0600(tmp_path, umask):
    """The copy's mode does not follow the source or the umask: a backup may hold a key."""
    source = tmp_path / 'erp.p12'
    source.write_bytes(b'secret bundle')
    os.chmod(str(source), 0o644)
    old_umask = os.umask(umask)
    try:
        backup = _crypto.backup_file(str(source))
    finally:
        os.umask(old_umask)
    assert mode(backup) == 0o600 and (tmp_path / backup).read_bytes() == b'secret bundle'


def test_a_certificate_of_another_key_is_never_installed(tmp_path):
    installer = Installer(FileModule())
    key = make_key('ec', slot=0)
    _crypto.write_private_key(FileModule(), str(tmp_path / 'erp.key'), key)
    with pytest.raises(KsefError, match='does not belong to certificate'):
        installer.install(Plan(declaration(tmp_path)), make_seal_certificate(make_key('ec', slot=1)))
    assert not os.path.exists(str(tmp_path / 'erp.pem'))


def test_a_key_that_appeared_meanwhile_is_never_overwritten(tmp_path):
    (tmp_path / 'erp.key').write_text('someone else')
    decl = declaration(tmp_path)
    plan = Plan(decl, Decision(decl, key_plan='generate_in_place'))
    with pytest.raises(KsefError, match='appeared while this run was preparing'):
        Installer(FileModule()).generate_key(plan)
    assert (tmp_path / 'erp.key').read_text() == 'someone else'


def test_widened_key_mode_is_narrowed(tmp_path):
    _crypto.write_private_key(FileModule(), str(tmp_path / 'erp.key'), make_key('ec'))
    os.chmod(str(tmp_path / 'erp.key'), 0o644)
    plan = Plan(declaration(tmp_path))
    Installer(FileModule()).apply_file_attributes(plan)
    assert mode(str(tmp_path / 'erp.key')) == 0o600 and plan.changed


def test_remove_files_and_the_next_key(tmp_path):
    decl = declaration(tmp_path)
    for name in ('erp.pem', 'erp.key.next'):
        (tmp_path / name).write_text('x')
    plan = Plan(decl, Decision(decl, removed_files=[str(tmp_path / 'erp.pem')]))
    installer = Installer(FileModule())
    installer.remove_files(plan)
    installer.discard_next_key(decl, {'key_path': str(tmp_path / 'erp.key.next')})
    assert sorted(os.listdir(str(tmp_path))) == []


def test_local_files_reader():
    files = LocalFiles(exists=lambda path: path.endswith('.pem'), pkcs12_matches=lambda *args: False)
    assert files.existing(['/a.pem', '/a.key']) == ['/a.pem']
    decl = Declaration({'pkcs12_path': '/a.p12'})
    assert files.need_install(decl, object())
