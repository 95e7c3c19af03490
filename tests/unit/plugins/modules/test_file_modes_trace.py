# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""issue 14, finding 2: a system-call trace of a first install and of a renewal with backup: true shows no
key, PKCS#12 or backup file ever created or chmod-ed wider than 0600.

The real file code of ksef_certificate (trace_install.py: the engine with the in-memory KSeF, the real
AnsibleModule, _install and _crypto) runs under `strace -f` with umask 0, so a file's creation mode is
exactly the mode the code asked for. Every successful open/openat/creat with O_CREAT, every chmod,
fchmod and fchmodat on a file that is or becomes (by rename) a key, a PKCS#12 bundle or a backup must
ask for nothing beyond 0600. A file's mode changes only through those calls, so no window can be missed
(sampling the mode could miss one). A control run of AnsibleModule.backup_local shows the check failing.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

STRACE = shutil.which('strace')
pytestmark = pytest.mark.skipif(STRACE is None, reason='strace is not installed (make deps-system installs it)')

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'trace_install.py')
SYSCALLS = 'openat,open,creat,chmod,fchmod,fchmodat,rename,renameat,renameat2,link,linkat'
PRIVATE = 0o600

_STRING = r'"((?:[^"\\]|\\.)*)"'
_DIRFD = r'(?:AT_FDCWD|\d+)(?:<([^>]*)>)?'
PATTERNS = [
    ('create', re.compile(r'^openat\(' + _DIRFD + r', ' + _STRING + r', ([A-Z_|]+), (0\d+)\) = \d+')),
    ('create', re.compile(r'^open\(()' + _STRING + r', ([A-Z_|]+), (0\d+)\) = \d+')),
    ('create', re.compile(r'^creat\(()' + _STRING + r'(), (0\d+)\) = \d+')),
    ('chmod', re.compile(r'^chmod\(()' + _STRING + r', (0\d+)\) = 0')),
    ('chmod', re.compile(r'^fchmodat\(' + _DIRFD + r', ' + _STRING + r', (0\d+)(?:, [^)]*)?\) = 0')),
    ('fchmod', re.compile(r'^fchmod\(\d+<([^>]*)>, (0\d+)\) = 0')),
    ('rename', re.compile(r'^rename\(()' + _STRING + r', ()' + _STRING + r'\) = 0')),
    ('rename', re.compile(r'^renameat2?\(' + _DIRFD + r', ' + _STRING + r', ' + _DIRFD + r', ' + _STRING
                          + r'(?:, [^)]*)?\) = 0')),
    ('link', re.compile(r'^linkat?\(.*\) = 0')),
]


def _unescape(text):
    return text.encode('latin-1').decode('unicode_escape')


def _join(base, path):
    path = _unescape(path)
    return os.path.normpath(path if os.path.isabs(path) or not base else os.path.join(base, path))


def parse(trace_files):
    """[(kind, path, mode or target, line)] of the successful calls in strace -ff -y output files."""
    events = []
    for trace_file in trace_files:
        with open(trace_file) as handle:
            for line in handle:
                line = line.strip()
                for kind, pattern in PATTERNS:
                    match = pattern.match(line)
                    if not match:
                        continue
                    groups = match.groups()
                    if kind == 'create':
                        base, path, flags, mode = groups
                        if flags and 'O_CREAT' not in flags:
                            break   # an open that cannot create a file (creat has no flags)
                        events.append(('create', _join(base, path), int(mode, 8), line))
                    elif kind == 'chmod':
                        base, path, mode = groups
                        events.append(('chmod', _join(base, path), int(mode, 8), line))
                    elif kind == 'fchmod':
                        events.append(('chmod', os.path.normpath(groups[0]), int(groups[1], 8), line))
                    elif kind == 'rename':
                        events.append(('rename', _join(groups[0], groups[1]), _join(groups[2], groups[3]), line))
                    else:
                        events.append(('link', None, None, line))
                    break
    return events


def secret_name(path):
    """Keys (and .next keys), PKCS#12 bundles, backups, and the temporary files they are written through."""
    name = os.path.basename(path).lstrip('.')
    return '.key' in name or '.p12' in name or name.endswith('~')


def secret_paths(events, directory):
    """Paths under directory that are secret by name or renamed (transitively) into a secret path."""
    secret = set(path for kind, path, dummy, dummy_line in events
                 if path and path.startswith(directory) and secret_name(path))
    changed = True
    while changed:
        changed = False
        for kind, source, target, dummy in events:
            if kind == 'rename' and target in secret and source not in secret:
                secret.add(source)
                changed = True
    return secret


def too_wide(events, directory):
    secret = secret_paths(events, directory)
    return [line for kind, path, mode, line in events
            if kind in ('create', 'chmod') and path in secret and mode & ~PRIVATE & 0o7777]


def trace(tmp_path, driver, directory, argument):
    """Run `driver directory argument` under strace; (parsed events, the words the driver printed)."""
    prefix = str(tmp_path / 'trace')
    # The directory holding ansible_collections/ (this file is ansible_collections/ksef/certificates/tests/...).
    collections_root = os.path.abspath(os.path.join(os.path.dirname(__file__), *(['..'] * 7)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([collections_root] + [path for path in sys.path if path]))
    process = subprocess.run([STRACE, '-f', '-ff', '-y', '-s', '4096', '-e', 'trace=' + SYSCALLS, '-o', prefix,
                              sys.executable, driver, str(directory), argument],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    assert process.returncode == 0, process.stderr[-3000:]
    return parse(glob.glob(prefix + '.*')), process.stdout.split()


def traced_run(tmp_path, scenario):
    directory = tmp_path / 'keys'
    directory.mkdir()
    events, output = trace(tmp_path, DRIVER, directory, scenario)
    return str(directory), events, output


def test_first_install_and_backup_never_create_a_key_or_backup_wider_than_0600(tmp_path):
    directory, events, backups = traced_run(tmp_path, 'install')
    assert not too_wide(events, directory), '\n'.join(too_wide(events, directory))
    # The trace saw what it must judge: every key, PKCS#12 and backup file was created (directly or as a
    # temporary file renamed into place) under the trace.
    created = set(path for kind, path, dummy, dummy_line in events if kind == 'create')
    renamed_into = dict((target, source) for kind, source, target, dummy in events if kind == 'rename')

    def was_created(path):
        seen = set()
        while path not in created and path in renamed_into and path not in seen:
            seen.add(path)
            path = renamed_into[path]
        return path in created

    expected = [os.path.join(directory, name) for name in ('erp-production.key', 'erp-production.key.next',
                                                           'erp-production.p12')] + backups
    assert len(backups) == 3 and all(path.endswith('~') for path in backups)
    for path in expected:
        assert was_created(path), 'no creation of %s in the trace' % path
        assert not os.path.exists(path) or os.stat(path).st_mode & 0o777 == PRIVATE
    assert not any(kind == 'link' for kind, dummy, dummy_mode, dummy_line in events)


def test_the_trace_check_catches_a_backup_made_with_backup_local(tmp_path):
    """The control: AnsibleModule.backup_local (shutil.copy2) creates the key's copy 0666 & ~umask."""
    directory, events, output = traced_run(tmp_path, 'control')
    wide = too_wide(events, directory)
    assert wide and all(output[0] in line for line in wide), wide
