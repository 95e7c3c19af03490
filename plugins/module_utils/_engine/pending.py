# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Crash safety for enrollments: the per-certificate state file and the controller lock.

KSeF has no idempotency key, so a second POST /certificates/enrollments always creates a second
request. The state file remembers what this controller sent:

- phase ``intent``: written BEFORE the POST (name, type, public key fingerprint, time). If the run dies
  or the response is lost, the next run reconciles by name + type + public key instead of re-sending.
- phase ``pending``: written as soon as KSeF answered with the reference number; the next run resumes
  polling that enrollment.

The file holds no secret (no key material, no passphrase) and is removed once the certificate is
installed and superseded certificates are revoked.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import errno
import json
import os
import time
from typing import Any, Callable, Dict, Iterable, Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - the controller is POSIX; reported when a lock is needed
    fcntl = None

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils._crypto import write_file_atomic
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError

STATE_SUFFIX = '.ksef-pending.json'
LOCK_SUFFIX = '.lock'
STATE_VERSION = 1
STATE_MODE = 0o600
# An intent without a reference number blocks new enrollments for this long when no matching certificate
# shows up in KSeF (KSeF normally issues within seconds; an hour leaves room for outages). Documented in
# the module's notes; force=true overrides it at once.
INTENT_BLOCK_SECONDS = 3600


def default_state_path(private_key_path: Optional[str] = None, certificate_path: Optional[str] = None) -> Optional[str]:
    """<private_key_path or certificate_path>.ksef-pending.json, or None when there is no local file."""
    base = private_key_path or certificate_path
    if not base:
        return None
    return base + STATE_SUFFIX


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class PendingStore:
    """The JSON record of one declared certificate's in-flight enrollment (or nothing at all)."""

    def __init__(self, module: AnsibleModule, path: Optional[str]) -> None:
        self.module = module
        self.path = path

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def read(self) -> Optional[Dict[str, Any]]:
        if not self.path:
            return None
        try:
            with open(self.path, 'r') as handle:
                record = json.load(handle)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise KsefError('Cannot read the enrollment state file %s: %s' % (self.path, exc.strerror))
        except ValueError:
            raise KsefError('The enrollment state file %s is not valid JSON; inspect it (it may name a pending '
                            'KSeF enrollment) and remove it to continue' % self.path)
        if not isinstance(record, dict) or record.get('phase') not in ('intent', 'pending'):
            raise KsefError('The enrollment state file %s has an unknown format; inspect it and remove it to continue'
                            % self.path)
        return record

    def write(self, record: Dict[str, Any]) -> None:
        if not self.path:
            return
        record = dict(record, version=STATE_VERSION)
        data = json.dumps(record, indent=2, sort_keys=True).encode('utf-8')
        write_file_atomic(self.module, self.path, data, STATE_MODE)

    def clear(self) -> None:
        if not self.path:
            return
        try:
            os.unlink(self.path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise KsefError('Cannot remove the enrollment state file %s: %s' % (self.path, exc.strerror))


def intent_record(name: str, certificate_type: str, public_key_sha256: str, key_path: Optional[str], action: str,
                  superseded: Iterable[str], now: datetime.datetime, known_serials: Iterable[str] = ()) -> Dict[str, Any]:
    """The record written before the enrollment POST.

    known_serials: certificates of this name and type that existed before the POST; reconciliation never takes
    one of them (or a superseded one) for the certificate of this enrollment (a CSR renewal reuses the key).
    """
    return {
        'known_serials': list(known_serials),
        'phase': 'intent',
        'name': name,
        'type': certificate_type,
        'public_key_sha256': public_key_sha256,
        'key_path': key_path,
        'action': action,
        'superseded': list(superseded),
        'intent_time': format_time(now),
    }


class ControllerLock:
    """An exclusive fcntl.flock on <state file>.lock, waited for at most `timeout` seconds.

    The lock file exists only while a run holds it, so a converged run leaves nothing next to the key.
    Removing it is safe because of two rules: the holder unlinks the file while it still holds the
    lock, and a run that got the lock checks that the path still names the file it locked (same device
    and inode); if it does not (the holder removed it, a third run may have created a new one), it
    starts over on the file that is there now. Two runs therefore never hold "the" lock at once.
    """

    def __init__(self, path: str, timeout: float = 60, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock
        self._fd = None
        self.waited = False   # True when another run held the lock first

    def acquire(self) -> None:
        if fcntl is None:
            raise KsefError('Cannot lock %s: this controller has no fcntl (POSIX file locks are required)' % self.path)
        deadline = self.clock() + self.timeout
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise KsefError('Cannot open the lock file %s: %s' % (self.path, exc.strerror))
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except (IOError, OSError) as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        os.close(fd)
                        raise KsefError('Cannot lock %s: %s' % (self.path, exc.strerror))
                self.waited = True
                if self.clock() >= deadline:
                    os.close(fd)
                    raise KsefError('Another run is managing this certificate (lock %s held for more than %s s); '
                                    'wait for it to finish or raise lock_timeout' % (self.path, self.timeout))
                self.sleep(0.5)
            if self._still_linked(fd):
                self._fd = fd
                return
            # The run before us removed the file we waited on: lock the one at the path now.
            os.close(fd)
            self.waited = True

    def _still_linked(self, fd):
        try:
            current = os.stat(self.path)
        except OSError:
            return False
        locked = os.fstat(fd)
        return (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            try:
                # Unlinked while still held: a run waiting on this inode sees that it is gone and starts over.
                try:
                    os.unlink(self.path)
                except OSError:
                    pass  # already gone, or a directory we may not write: an empty file stays, nothing breaks
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


class LockSet:
    """Locks for several state files, taken in sorted order so two runs cannot deadlock."""

    def __init__(self, paths: Iterable[str], timeout: float = 60, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.locks = [ControllerLock(path + LOCK_SUFFIX, timeout, sleep, clock) for path in sorted(set(paths))]

    def __enter__(self):
        taken = []
        try:
            for lock in self.locks:
                lock.acquire()
                taken.append(lock)
        except Exception:
            for lock in reversed(taken):
                lock.release()
            raise
        return self

    @property
    def waited(self) -> bool:
        """True when another run held one of the locks first (it may have changed local files meanwhile)."""
        return any(lock.waited for lock in self.locks)

    def __exit__(self, exc_type, exc_value, tb):
        for lock in reversed(self.locks):
            lock.release()
        return False
