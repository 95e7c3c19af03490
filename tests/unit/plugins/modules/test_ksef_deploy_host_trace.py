# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""issue 14, finding 2, for the role's host side: a system-call trace of ksef_deploy_host (both backends) making a
.next key, installing it with its certificate, building a PKCS#12 bundle and writing a controller-side key over
a world-readable one shows no key or bundle file ever created or chmod-ed wider than 0600.

The trace parser and the judgement are test_file_modes_trace.py's (the same rules as for ksef_certificate).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.ksef.certificates.tests.unit.plugins.modules.test_file_modes_trace import (
    PRIVATE,
    STRACE,
    too_wide,
    trace,
)

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'trace_deploy_host.py')
BACKENDS = [
    'cryptography',
    pytest.param('openssl', marks=pytest.mark.skipif(shutil.which('openssl') is None, reason='no openssl command')),
]
pytestmark = pytest.mark.skipif(STRACE is None, reason='strace is not installed (make deps-system installs it)')


@pytest.mark.parametrize('backend', BACKENDS)
def test_keys_and_bundles_are_never_wider_than_0600(tmp_path, backend):
    directory = tmp_path / 'keys'
    directory.mkdir()
    old_shared_key = directory / 'shared.key'
    old_shared_key.write_text(u'an old key left world-readable\n')
    old_shared_key.chmod(0o644)
    events, output = trace(tmp_path, DRIVER, directory, backend)
    wide = too_wide(events, str(directory))
    assert not wide, '\n'.join(wide)
    key, next_key, p12, shared_key = output
    renamed_into = set(target for kind, dummy_source, target, dummy_line in events if kind == 'rename')
    # The trace saw the writes it judges: each file arrived by a rename of a temporary file.
    for path in (key, p12, shared_key):
        assert path in renamed_into, 'no rename into %s in the trace' % path
        assert os.stat(path).st_mode & 0o777 == PRIVATE
    assert not os.path.exists(next_key)
