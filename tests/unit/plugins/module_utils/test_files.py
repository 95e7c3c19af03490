# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _files as files


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
        opened.append((path, flags, mode, kwargs.get('dir_fd')))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, 'open', recording_open)
    old_umask = os.umask(0)
    try:
        files.write_atomic(target, b'new key', 0o600)
    finally:
        os.umask(old_umask)
    temporary = [entry for entry in opened if entry[0].endswith('.tmp')]
    assert len(temporary) == 1
    path, flags, mode, dir_fd = temporary[0]
    assert mode == 0o600 and flags & os.O_EXCL and flags & os.O_CREAT and flags & os.O_NOFOLLOW
    # Created relative to a descriptor of the target's directory, by name only.
    assert dir_fd is not None and os.sep not in path
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


# ---------------------------------------------------------------------------------------------
# issue 17: links, FIFOs, devices, hard links and races (the tests run as root, like the role on a host)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def root_only(tmp_path):
    """A root-only file, the target an attacker would point a link at (as /etc/shadow)."""
    path = tmp_path / 'shadow'
    path.write_bytes(b'root:secret\n')
    os.chmod(str(path), 0o600)
    return path


def _untouched(root_only):
    info = os.stat(str(root_only))
    return stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0 and root_only.read_bytes() == b'root:secret\n'


def test_ensure_attributes_refuses_a_link_and_leaves_its_target_alone(tmp_path, root_only):
    link = tmp_path / 'app.crt'
    link.symlink_to(root_only)
    with pytest.raises(files.HostFileError, match='app.crt is a symbolic link'):
        files.ensure_attributes(str(link), 0o644, uid=65534)
    assert _untouched(root_only)


def test_ensure_attributes_refuses_a_hard_link(tmp_path, root_only):
    link = tmp_path / 'app.crt'
    os.link(str(root_only), str(link))
    with pytest.raises(files.HostFileError, match='2 hard links'):
        files.ensure_attributes(str(link), 0o644)
    assert _untouched(root_only)


def test_ensure_attributes_works_on_the_descriptor(tmp_path):
    path = tmp_path / 'app.crt'
    path.write_bytes(b'x')
    os.chmod(str(path), 0o600)
    assert files.ensure_attributes(str(path), 0o644, check_mode=True) is True
    assert mode_of(str(path)) == 0o600
    assert files.ensure_attributes(str(path), 0o644) is True
    assert mode_of(str(path)) == 0o644
    assert files.ensure_attributes(str(path), 0o644) is False
    assert files.ensure_attributes(str(tmp_path / 'missing'), 0o644) is False


def test_write_atomic_refuses_a_link_at_the_target(tmp_path, root_only):
    link = tmp_path / 'app.crt'
    link.symlink_to(root_only)
    with pytest.raises(files.HostFileError, match='app.crt is a symbolic link'):
        files.write_atomic(str(link), b'new', 0o644, uid=65534)
    assert _untouched(root_only) and os.path.islink(str(link))
    assert sorted(os.listdir(str(tmp_path))) == ['app.crt', 'shadow']


def test_move_atomic_refuses_a_link_as_source(tmp_path, root_only):
    source = tmp_path / 'app.key.next'
    source.symlink_to(root_only)
    with pytest.raises(files.HostFileError, match='symbolic link'):
        files.move_atomic(str(source), str(tmp_path / 'app.key'), 0o644, uid=65534)
    assert _untouched(root_only) and not (tmp_path / 'app.key').exists()


@pytest.mark.parametrize('kind', ['fifo', 'device', 'link to a device'])
def test_read_file_refuses_fifos_and_devices_at_once(tmp_path, kind):
    path = tmp_path / 'app.crt'
    if kind == 'fifo':
        os.mkfifo(str(path))
        expected = 'is a FIFO'
    elif kind == 'device':
        os.mknod(str(path), 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
        expected = 'is a device'
    else:
        path.symlink_to('/dev/zero')
        expected = 'is a symbolic link'
    with pytest.raises(files.HostFileError, match=expected):
        files.read_file(str(path))


def test_read_file_is_capped(tmp_path):
    path = tmp_path / 'big.crt'
    path.write_bytes(b'x' * (files.MAX_FILE_SIZE + 1))
    with pytest.raises(files.HostFileError, match='larger than'):
        files.read_file(str(path))


def test_create_directories_never_sets_a_mode_through_a_swapped_link(tmp_path, root_only, monkeypatch):
    """Finding 2: the directory is swapped for a link between mkdir and setting its mode."""
    target = str(tmp_path / 'private')
    real_mkdir = os.mkdir

    def mkdir_then_swap(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        os.rmdir(target)
        os.symlink(str(root_only), target)

    monkeypatch.setattr(os, 'mkdir', mkdir_then_swap)
    with pytest.raises(files.HostFileError, match='was replaced'):
        files.create_directories([target], 0o755, uid=65534)
    assert _untouched(root_only)


def test_private_file_problem(tmp_path, root_only):
    key = tmp_path / 'app.key.next'
    key.write_bytes(b'key')
    os.chmod(str(key), 0o600)
    os.chmod(str(tmp_path), 0o700)
    assert files.private_file_problem(str(key)) is None
    os.chmod(str(key), 0o644)
    assert 'mode 0644' in files.private_file_problem(str(key))
    os.chmod(str(key), 0o600)
    os.chown(str(key), 65534, -1)
    assert 'owned by uid 65534' in files.private_file_problem(str(key))
    assert files.private_file_problem(str(key), uid=65534) is None
    os.chown(str(key), 0, -1)
    os.chmod(str(tmp_path), 0o770)
    assert 'writable by its group' in files.private_file_problem(str(key))
    assert 'writable by its group' in files.writable_by_others(str(tmp_path))
    os.chmod(str(tmp_path), 0o700)
    assert files.writable_by_others(str(tmp_path)) is None
    key.unlink()
    key.symlink_to(root_only)
    assert 'symbolic link' in files.private_file_problem(str(key))
