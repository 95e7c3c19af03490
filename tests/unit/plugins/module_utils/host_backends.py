# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backends of ksef_deploy_host as pytest parameters: the cryptography library, and the real openssl command
line where it is installed (skipped, and said so, where it is not)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shutil

import pytest

OPENSSL = shutil.which('openssl')
BACKENDS = [
    'cryptography',
    pytest.param('openssl', marks=pytest.mark.skipif(OPENSSL is None, reason='the openssl command is not installed')),
]
