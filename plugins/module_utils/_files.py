# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The one private-file layer of the collection, for the controller (_crypto) and the hosts (ksef_deploy_host).

It runs as root on hosts where other users may own directories or files, so it never follows a link it did
not make and never changes a file by its path:

- a file is opened relative to a descriptor of its directory, with O_NOFOLLOW|O_NONBLOCK, and checked with
  fstat: only a regular file with one link is read or changed; its owner and mode are set with
  fchown/fchmod on that descriptor;
- a symbolic link, FIFO, device, socket or hard-linked file found at a path the collection manages is
  refused with a message that names it (the link is left alone: the collection does not decide what an
  administrator's link was for). A link that appears in a race, between the check and the write, is
  replaced by the rename of the new file, which never follows it;
- a write goes to a temporary file created 0600 with O_CREAT|O_EXCL|O_NOFOLLOW in the target's directory,
  which gets its owner, group and final mode while it still has its temporary name and is renamed over the
  target in one step (rename with directory descriptors);
- directories are created with mkdir relative to the parent's descriptor, then opened with O_NOFOLLOW and
  given their mode on that descriptor, so a directory swapped for a link between the two steps is refused;
- reads come only from regular files of at most MAX_FILE_SIZE bytes (a key, certificate or bundle is
  kilobytes): a link to /dev/zero or a FIFO fails at once instead of filling memory or hanging.

Paths are used as given: no ~user or $VAR expansion, no shell. Only the standard library is imported (hosts).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import errno
import grp
import os
import pwd
import stat
from typing import List, Optional, Sequence, Tuple, Union

PRIVATE_MODE = 0o600
# A key, certificate, CSR or PKCS#12 bundle is a few kilobytes; anything larger is not one of them.
MAX_FILE_SIZE = 64 * 1024
_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_DIRECTORY = getattr(os, 'O_DIRECTORY', 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, 'O_NONBLOCK', 0) | _CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
_DIRECTORY_FLAGS = os.O_RDONLY | _DIRECTORY | _CLOEXEC


class HostFileError(Exception):
    """A file operation failed; the message names the path and the cause, never file content."""


def parse_mode(value: Union[int, str], what: str = 'mode') -> int:
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


def _resolve_id(value, lookup, what):
    """The number of a user or group given by name or number (lookup: name to number); None for '' or None."""
    if value in (None, ''):
        return None
    if str(value).isdigit():
        return int(value)
    try:
        return lookup(value)
    except KeyError:
        raise HostFileError('%s %r does not exist on this host' % (what, value))


def resolve_owner(owner: Union[int, str, None]) -> Optional[int]:
    """uid for a user name or number; None for '' or None (keep the connecting user)."""
    return _resolve_id(owner, lambda name: pwd.getpwnam(name).pw_uid, 'User')


def resolve_group(group: Union[int, str, None]) -> Optional[int]:
    """gid for a group name or number; None for '' or None."""
    return _resolve_id(group, lambda name: grp.getgrnam(name).gr_gid, 'Group')


# ---------------------------------------------------------------------------------------------
# Descriptors
# ---------------------------------------------------------------------------------------------

def _kind(mode):
    """A word for what a non-regular file is, for messages."""
    for test, word in ((stat.S_ISLNK, 'a symbolic link'), (stat.S_ISFIFO, 'a FIFO'), (stat.S_ISCHR, 'a device'),
                       (stat.S_ISBLK, 'a device'), (stat.S_ISSOCK, 'a socket'), (stat.S_ISDIR, 'a directory')):
        if test(mode):
            return word
    return 'not a regular file'


def _refusal(path, what):
    return HostFileError('%s is %s; the collection reads and changes only regular files it can open without '
                         'following a link (remove or replace it)' % (path, what))


class Directory:
    """An open descriptor of the directory of a path (a context manager); `name` is the path's last part."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.directory, self.name = os.path.split(path)
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.directory or '.', _DIRECTORY_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise HostFileError('Directory %s of %s does not exist' % (self.directory, self.path))
            raise HostFileError('Cannot open the directory of %s: %s' % (self.path, exc.strerror))
        return self

    def __exit__(self, *exc_info):
        os.close(self.fd)

    def lstat(self, name: Optional[str] = None) -> Optional[os.stat_result]:
        """The entry's own status (a link is not followed), or None when it does not exist."""
        try:
            return os.stat(name or self.name, dir_fd=self.fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise HostFileError('Cannot inspect %s: %s' % (self.path, exc.strerror))

    def open_regular(self, name: Optional[str] = None, path: Optional[str] = None) -> Optional[Tuple[int, os.stat_result]]:
        """(fd, fstat) of a regular, singly linked file opened read-only without following a link; None if missing."""
        path = path or self.path
        try:
            fd = os.open(name or self.name, _READ_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            if exc.errno == errno.ELOOP:
                raise _refusal(path, 'a symbolic link')
            raise HostFileError('Cannot open %s: %s' % (path, exc.strerror))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise _refusal(path, _kind(info.st_mode))
        if info.st_nlink != 1:
            os.close(fd)
            raise _refusal(path, 'a file with %d hard links' % info.st_nlink)
        return fd, info

    def sync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError:
            pass


def _read_fd(fd, path, limit):
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b''.join(chunks)
        size += len(chunk)
        if size > limit:
            raise HostFileError('%s is larger than %d bytes; it is not a key, certificate or bundle' % (path, limit))
        chunks.append(chunk)


def _set_attributes_fd(fd, mode, uid=None, gid=None):
    """Owner and group first, then the mode (chown can clear set-id bits); on the descriptor, never a path."""
    if uid is not None or gid is not None:
        os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
    if mode is not None:
        os.fchmod(fd, mode)


def _differ(info, mode, uid=None, gid=None):
    return ((mode is not None and stat.S_IMODE(info.st_mode) != mode) or (uid is not None and info.st_uid != uid)
            or (gid is not None and info.st_gid != gid))


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def read_file(path: str, limit: int = MAX_FILE_SIZE) -> Optional[bytes]:
    """The content of a regular file (at most limit bytes), or None when it does not exist."""
    with Directory(path) as directory:
        opened = directory.open_regular()
        if opened is None:
            return None
        fd = opened[0]
        try:
            return _read_fd(fd, path, limit)
        except OSError as exc:
            raise HostFileError('Cannot read %s: %s' % (path, exc.strerror))
        finally:
            os.close(fd)


def status(path: str) -> Optional[os.stat_result]:
    """The path's own status (lstat: a link is not followed), or None when it does not exist."""
    try:
        return os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise HostFileError('Cannot inspect %s: %s' % (path, exc.strerror))


def exists(path: str) -> bool:
    return os.path.lexists(path)


def ensure_attributes(path: str, mode: Optional[int], uid: Optional[int] = None, gid: Optional[int] = None,
                      check_mode: bool = False) -> bool:
    """Give an existing regular file its mode, owner and group (on its descriptor); True when they differed.

    A missing file is False; a link or another kind of file is refused (HostFileError).
    """
    with Directory(path) as directory:
        opened = directory.open_regular()
        if opened is None:
            return False
        fd, info = opened
        try:
            if not _differ(info, mode, uid, gid):
                return False
            if not check_mode:
                _set_attributes_fd(fd, mode, uid, gid)
            return True
        except OSError as exc:
            raise HostFileError('Cannot set the mode or owner of %s: %s' % (path, exc.strerror))
        finally:
            os.close(fd)


def _temporary_name(name):
    return '.%s.%s.tmp' % (name, binascii.hexlify(os.urandom(6)).decode('ascii'))


def _refuse_unless_regular_or_missing(directory):
    info = directory.lstat()
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise _refusal(directory.path, _kind(info.st_mode))


def write_atomic(path: str, data: bytes, mode: int, uid: Optional[int] = None, gid: Optional[int] = None) -> None:
    """Replace path with data in one rename; the temporary file is 0600 from its first byte.

    A link or non-regular file at path is refused (not replaced); a regular file is replaced, whatever its
    links: the rename swaps the directory entry and never writes through it.
    """
    with Directory(path) as directory:
        _refuse_unless_regular_or_missing(directory)
        fd = tmp_name = None
        for dummy_attempt in range(10):
            candidate = _temporary_name(directory.name)
            try:
                fd = os.open(candidate, _CREATE_FLAGS, PRIVATE_MODE, dir_fd=directory.fd)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise HostFileError('Cannot create a file in %s: %s' % (directory.directory, exc.strerror))
            tmp_name = candidate
            break
        if tmp_name is None:
            raise HostFileError('Cannot create a temporary file next to %s' % path)
        try:
            try:
                os.fchmod(fd, PRIVATE_MODE)  # O_CREAT's mode is narrowed by the umask only
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                _set_attributes_fd(fd, mode, uid, gid)
            finally:
                os.close(fd)
            os.rename(tmp_name, directory.name, src_dir_fd=directory.fd, dst_dir_fd=directory.fd)
        except OSError as exc:
            _unlink_quietly(directory.fd, tmp_name)
            raise HostFileError('Cannot write %s: %s' % (path, exc.strerror))
        directory.sync()


def move_atomic(source: str, path: str, mode: int, uid: Optional[int] = None, gid: Optional[int] = None) -> None:
    """Put the content of source (a file this collection wrote 0600, such as a .next key) at path, then remove source.

    The content is read through a checked descriptor and written anew with write_atomic, so a source swapped
    for a link or another user's file is refused, and path never shows another owner or mode.
    """
    data = read_file(source)
    if data is None:
        raise HostFileError('Cannot move %s to %s: it does not exist' % (source, path))
    write_atomic(path, data, mode, uid, gid)
    remove(source)


def remove(path: str) -> bool:
    """Remove a file (a link itself, never its target); True when something was removed."""
    with Directory(path) as directory:
        try:
            os.unlink(directory.name, dir_fd=directory.fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return False
            raise HostFileError('Cannot remove %s: %s' % (path, exc.strerror))
        directory.sync()
    return True


def _unlink_quietly(dir_fd, name):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def sync_directory(directory: str) -> None:
    """Make a rename durable: a crash right after it must not bring the old file back."""
    try:
        fd = os.open(directory or '.', _DIRECTORY_FLAGS)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Directories
# ---------------------------------------------------------------------------------------------

def missing_directories(path: str) -> List[str]:
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


def create_directories(paths: Sequence[str], mode: int, uid: Optional[int] = None, gid: Optional[int] = None) -> None:
    """Create the given missing directories (outermost first) with mode, owner and group.

    Each is made 0700 by mkdir relative to its parent's descriptor, opened without following a link, and
    given its owner and mode on that descriptor: a directory swapped for a link in between is refused.
    """
    for path in paths:
        with Directory(path.rstrip('/') or '/') as parent:
            try:
                os.mkdir(parent.name, 0o700, dir_fd=parent.fd)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    info = parent.lstat()
                    if info is not None and stat.S_ISDIR(info.st_mode):
                        continue
                    raise HostFileError('%s exists and is %s, not a directory' % (path, _kind(info.st_mode) if info else 'gone'))
                raise HostFileError('Cannot create directory %s: %s' % (path, exc.strerror))
            try:
                fd = os.open(parent.name, _DIRECTORY_FLAGS | _NOFOLLOW, dir_fd=parent.fd)
            except OSError as exc:
                raise HostFileError('Directory %s was replaced while it was created (%s); refusing to set its mode'
                                    % (path, exc.strerror))
            try:
                _set_attributes_fd(fd, mode, uid, gid)
            except OSError as exc:
                raise HostFileError('Cannot set the mode or owner of directory %s: %s' % (path, exc.strerror))
            finally:
                os.close(fd)
            parent.sync()


def writable_by_others(directory: str) -> Optional[str]:
    """A warning when directory can be written by its group or by everyone (others may plant or swap files)."""
    try:
        info = os.stat(directory or '.')
    except OSError:
        return None
    if stat.S_IMODE(info.st_mode) & 0o022:
        return ('Directory %s is writable by its group or by other users (mode %04o): they can replace the files '
                'in it; make it 0700 or 0750' % (directory, stat.S_IMODE(info.st_mode)))
    return None


def private_file_problem(path: str, uid: Optional[int] = None) -> Optional[str]:
    """Why path is not a private file safe to reuse as a key, or None.

    Safe: a regular file, not a link, one hard link, mode 0600, owned by uid (or the connecting user), in a
    directory owned by that user or the connecting user and not writable by its group or by others.
    """
    expected = os.geteuid() if uid is None else uid
    with Directory(path) as directory:
        info = directory.lstat()
        if info is None:
            return '%s does not exist' % path
        if not stat.S_ISREG(info.st_mode):
            return '%s is %s' % (path, _kind(info.st_mode))
        if info.st_nlink != 1:
            return '%s has %d hard links' % (path, info.st_nlink)
        if stat.S_IMODE(info.st_mode) != PRIVATE_MODE:
            return '%s has mode %04o, not 0600' % (path, stat.S_IMODE(info.st_mode))
        if info.st_uid != expected:
            return '%s is owned by uid %d, not %d' % (path, info.st_uid, expected)
        folder = os.fstat(directory.fd)
        if folder.st_uid not in (expected, os.geteuid()):
            return 'its directory %s is owned by uid %d' % (directory.directory, folder.st_uid)
        if stat.S_IMODE(folder.st_mode) & 0o022:
            return 'its directory %s is writable by its group or by others' % directory.directory
    return None
