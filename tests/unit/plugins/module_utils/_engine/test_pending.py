# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller lock leaves no file behind and stays exclusive while lock files come and go."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import ControllerLock, LockSet
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock


def held_by_someone(path):
    """True when the file at path is locked (by another open file description)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        assert exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        return True
    finally:
        os.close(fd)
    return False


def same_file(fd, path):
    linked = os.stat(path)
    locked = os.fstat(fd)
    return (linked.st_dev, linked.st_ino) == (locked.st_dev, locked.st_ino)


def test_the_lock_file_exists_only_while_held(tmp_path):
    paths = [str(tmp_path / 'b.key.ksef-pending.json'), str(tmp_path / 'a.key.ksef-pending.json')]
    with LockSet(paths) as locks:
        assert sorted(os.listdir(str(tmp_path))) == ['a.key.ksef-pending.json.lock', 'b.key.ksef-pending.json.lock']
        assert all(held_by_someone(lock.path) for lock in locks.locks)
        assert locks.waited is False
    assert os.listdir(str(tmp_path)) == []


def test_a_run_waiting_on_a_removed_lock_file_locks_the_file_that_is_there_now(tmp_path):
    """A holds the lock; B waits on A's file. A releases (removing its file) and C locks a new file at once.
    B must not take the lock of the removed file while C holds the path: it waits for C, then locks."""
    path = str(tmp_path / 'k.ksef-pending.json.lock')
    first = ControllerLock(path)
    first.acquire()
    third = ControllerLock(path)
    clock = FakeClock()
    events = []

    def sleep(seconds):
        clock.sleep(seconds)
        if not events:
            first.release()
            third.acquire()
            events.append('A released, C locked a new file')
        elif len(events) == 1:
            assert held_by_someone(path), 'C holds the new file while B waits'
            third.release()
            events.append('C released')

    second = ControllerLock(path, timeout=10, sleep=sleep, clock=clock)
    second.acquire()
    try:
        assert events == ['A released, C locked a new file', 'C released']
        assert second.waited is True
        assert same_file(second._fd, path), 'B holds the lock of the file at the path, not of a removed one'
        assert held_by_someone(path)
    finally:
        second.release()
    assert not os.path.exists(path)


def test_lock_timeout_names_the_lock_and_leaves_the_holders_file(tmp_path):
    path = str(tmp_path / 'k.ksef-pending.json.lock')
    holder = ControllerLock(path)
    holder.acquire()
    clock = FakeClock()
    waiting = ControllerLock(path, timeout=2, sleep=clock.sleep, clock=clock)
    with pytest.raises(KsefError, match='Another run is managing this certificate'):
        waiting.acquire()
    assert os.path.exists(path) and held_by_someone(path)
    holder.release()
    assert not os.path.exists(path)


def test_release_in_a_directory_that_became_read_only_keeps_working(tmp_path, monkeypatch):
    path = str(tmp_path / 'k.ksef-pending.json.lock')
    lock = ControllerLock(path)
    lock.acquire()

    def refuse(_path):
        raise OSError(errno.EACCES, 'Permission denied')

    monkeypatch.setattr(os, 'unlink', refuse)
    lock.release()
    monkeypatch.undo()
    assert not held_by_someone(path)
