# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _host_files as files


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_atomic_creates_the_temporary_file_0600_even_under_umask_0(tmp_path, monkeypatch):
    target = str(tmp_path / 'k.key')
    with open(target, 'w') as handle:
        handle.write('old')
    os.chmod(target, 0o644)
    opened = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *args, **kwargs):
        opened.append((path, flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, 'open', recording_open)
    old_umask = os.umask(0)
    try:
        files.write_atomic(target, b'new key', 0o600)
    finally:
        os.umask(old_umask)
    temporary = [entry for entry in opened if entry[0].endswith('.tmp')]
    assert len(temporary) == 1
    path, flags, mode = temporary[0]
    assert mode == 0o600 and flags & os.O_EXCL and flags & os.O_CREAT
    assert os.path.dirname(path) == str(tmp_path)
    assert mode_of(target) == 0o600  # the old file's 0644 is not carried over
    assert open(target, 'rb').read() == b'new key'
    assert sorted(os.listdir(str(tmp_path))) == ['k.key']


def test_move_atomic_sets_the_final_mode_before_the_rename(tmp_path):
    source, target = str(tmp_path / 'k.key.next'), str(tmp_path / 'k.key')
    files.write_atomic(source, b'key', 0o600)
    files.move_atomic(source, target, 0o640)
    assert mode_of(target) == 0o640 and not os.path.exists(source)


@pytest.mark.parametrize('value, mode', [('0600', 0o600), ('644', 0o644), (0o640, 0o640), (384, 0o600)])
def test_parse_mode(value, mode):
    assert files.parse_mode(value) == mode


@pytest.mark.parametrize('value', ['u=rw', '0800', True, '', '99999'])
def test_parse_mode_refuses(value):
    with pytest.raises(files.HostFileError):
        files.parse_mode(value)


def test_missing_directories_and_create(tmp_path):
    target = str(tmp_path / 'a $HOME' / 'b')
    missing = files.missing_directories(target)
    assert missing == [str(tmp_path / 'a $HOME'), target]
    files.create_directories(missing, 0o750)
    assert mode_of(target) == 0o750 and mode_of(missing[0]) == 0o750
    assert files.missing_directories(target) == []
    (tmp_path / 'file').write_text(u'x')
    with pytest.raises(files.HostFileError, match='is not a directory'):
        files.missing_directories(str(tmp_path / 'file' / 'below'))


def test_remove_and_read(tmp_path):
    path = str(tmp_path / 'x')
    assert files.read_file(path) is None
    assert files.remove(path) is False
    files.write_atomic(path, b'data', 0o644)
    assert files.read_file(path) == b'data'
    assert files.remove(path) is True


def test_unknown_owner_and_group_are_refused():
    with pytest.raises(files.HostFileError, match='does not exist'):
        files.resolve_owner('no-such-user-ksef')
    with pytest.raises(files.HostFileError, match='does not exist'):
        files.resolve_group('no-such-group-ksef')
    assert files.resolve_owner('') is None and files.resolve_owner('0') == 0
