# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""File operations of the host-side module ksef_deploy_host: literal paths, private from the first byte.

Every write goes to a temporary file in the target directory created with O_CREAT|O_EXCL|O_NOFOLLOW and mode
0600 (so a key is never readable by others, not even for a moment, whatever the umask), gets its owner, group
and final mode while it still has its temporary name, and is renamed over the target in one step. Paths are
used as given: no ~user or $VAR expansion, no shell.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import errno
import grp
import os
import pwd
import stat

PRIVATE_MODE = 0o600
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)


class HostFileError(Exception):
    """A file operation failed; the message names the path and the cause, never file content."""


def parse_mode(value, what='mode'):
    """An octal mode given as '0600', '600' or an integer (YAML 0600 is 384) -> int."""
    if isinstance(value, bool):
        raise HostFileError('%s must be an octal mode such as "0600", not %r' % (what, value))
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and value.isdigit() and all(char in '01234567' for char in value):
        mode = int(value, 8)
    else:
        raise HostFileError('%s must be an octal mode such as "0600", not %r' % (what, value))
    if mode < 0 or mode > 0o7777:
        raise HostFileError('%s %r is not a file mode' % (what, value))
    return mode


def resolve_owner(owner):
    """uid for a user name or number; None for '' or None (keep the connecting user)."""
    if owner in (None, ''):
        return None
    if str(owner).isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise HostFileError('User %r does not exist on this host' % (owner,))


def resolve_group(group):
    """gid for a group name or number; None for '' or None."""
    if group in (None, ''):
        return None
    if str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise HostFileError('Group %r does not exist on this host' % (group,))


def read_file(path):
    """The content of a regular file, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise HostFileError('Cannot read %s: %s' % (path, exc.strerror))


def exists(path):
    return os.path.lexists(path)


def attributes_differ(path, mode, uid=None, gid=None):
    """Whether the file's mode, owner or group differ from the wanted ones (None: not managed)."""
    info = os.lstat(path)
    if mode is not None and stat.S_IMODE(info.st_mode) != mode:
        return True
    if uid is not None and info.st_uid != uid:
        return True
    return gid is not None and info.st_gid != gid


def set_attributes(path, mode, uid=None, gid=None):
    """Set owner and group first, then the mode (chown can clear set-id bits)."""
    if uid is not None or gid is not None:
        os.lchown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    if mode is not None:
        os.chmod(path, mode)


def _temporary_name(path):
    directory, name = os.path.split(path)
    return os.path.join(directory, '.%s.%s.tmp' % (name, binascii.hexlify(os.urandom(6)).decode('ascii')))


def sync_directory(directory):
    """Make a rename durable: a crash right after it must not bring the old file back (also used by _crypto)."""
    try:
        fd = os.open(directory or '.', os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path, data, mode, uid=None, gid=None):
    """Replace path with data in one rename; the temporary file is 0600 from its first byte."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory or '.'):
        raise HostFileError('Directory %s of %s does not exist' % (directory, path))
    tmp_path = None
    for dummy_attempt in range(10):
        candidate = _temporary_name(path)
        try:
            fd = os.open(candidate, _OPEN_FLAGS, PRIVATE_MODE)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                continue
            raise HostFileError('Cannot create a file in %s: %s' % (directory, exc.strerror))
        tmp_path = candidate
        break
    if tmp_path is None:
        raise HostFileError('Cannot create a temporary file next to %s' % path)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.rename(tmp_path, path)
    except OSError as exc:
        _unlink_quietly(tmp_path)
        raise HostFileError('Cannot write %s: %s' % (path, exc.strerror))
    sync_directory(directory)


def move_atomic(source, path, mode, uid=None, gid=None):
    """Rename source (a file this module wrote 0600, such as a .next key) over path, with its final attributes.

    The attributes are set while the file still has its old name, so path never shows another owner or mode.
    """
    try:
        set_attributes(source, mode, uid, gid)
        os.rename(source, path)
    except OSError as exc:
        raise HostFileError('Cannot move %s to %s: %s' % (source, path, exc.strerror))
    sync_directory(os.path.dirname(path))


def remove(path):
    """Remove a file (or symlink); True when something was removed."""
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise HostFileError('Cannot remove %s: %s' % (path, exc.strerror))
    return True


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def missing_directories(path):
    """The directories to create for path, outermost first ([] when it exists)."""
    missing = []
    current = path.rstrip('/') or '/'
    while current and not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if current and os.path.lexists(current) and not os.path.isdir(current):
        raise HostFileError('%s is not a directory' % current)
    return list(reversed(missing))


def create_directories(paths, mode, uid=None, gid=None):
    """Create the given missing directories (outermost first) with mode, owner and group."""
    for directory in paths:
        try:
            os.mkdir(directory, 0o700)  # private until it has its owner and final mode
            set_attributes(directory, mode, uid, gid)
        except OSError as exc:
            if exc.errno == errno.EEXIST and os.path.isdir(directory):
                continue
            raise HostFileError('Cannot create directory %s: %s' % (directory, exc.strerror))
