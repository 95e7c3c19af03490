# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the get-pip.py script that ansible-test downloads.

ansible-test fetches get-pip.py from a file server of the Ansible project (not PyPI) for every
virtual environment it manages, and fails when that server cannot be reached. tools/seed-get-pip.py
copies this file to ~/.ansible/test/cache/get_pip_<version>.py, where ansible-test looks first.

Like the real script, it takes pip install arguments (for example `pip==25.2
--disable-pip-version-check --no-setuptools --no-wheel`): it puts the pip bundled with the
interpreter in place with ensurepip, then lets that pip install the requested packages from the
configured index.
"""
from __future__ import absolute_import, division, print_function

import ensurepip
import os
import subprocess
import sys

# get-pip.py options that `pip install` does not know.
GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def main():
    # ensurepip deletes every PIP_* variable and sets PIP_CONFIG_FILE to the null device, which
    # would hide the machine's pip configuration (CA bundle, find-links, extra index). Restore the
    # caller's environment afterwards.
    saved_environ = dict(os.environ)
    ensurepip.bootstrap(upgrade=True, verbosity=0)
    os.environ.clear()
    os.environ.update(saved_environ)

    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    if not any(not arg.startswith('-') for arg in args):
        # Called without packages: the real script installs pip itself, which ensurepip has done.
        return 0
    return subprocess.call([sys.executable, '-m', 'pip', 'install'] + args)


if __name__ == '__main__':
    sys.exit(main())
