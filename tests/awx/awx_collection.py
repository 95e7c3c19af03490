# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Take the awx.awx collection out of the `ansible` package's wheel (PyPI) into a test collections path.

awx.awx is a test-only dependency (tests/awx/test_runner.py drives the real awx.awx.credential module against
fake_controller.py). Installing the `ansible` package would add ~50 MB of collections to the venv and replace
nothing we need; the wheel is downloaded once (pip's cache keeps it) and only ansible_collections/awx/awx/
(about 1 MB) is extracted. The version is pinned in requirements/awx-collection.txt.
Usage: python tests/awx/awx_collection.py REQUIREMENTS_FILE DOWNLOAD_DIR COLLECTIONS_DIR
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import shutil
import subprocess
import sys
import zipfile

PREFIX = 'ansible_collections/awx/awx/'


def main(requirements, download_dir, collections_dir):
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '--only-binary', ':all:',
                    '-r', requirements, '-d', download_dir], check=True)
    wheels = sorted(glob.glob(os.path.join(download_dir, 'ansible-*.whl')))
    if len(wheels) != 1:
        sys.exit('expected one ansible wheel in %s, found %s' % (download_dir, wheels))
    target = os.path.join(collections_dir, 'ansible_collections', 'awx', 'awx')
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [name for name in wheel.namelist() if name.startswith(PREFIX)]
        if not members:
            sys.exit('%s holds no %s' % (wheels[0], PREFIX))
        wheel.extractall(collections_dir, members=members)
    print('awx.awx from %s -> %s (%d files)' % (os.path.basename(wheels[0]), target, len(members)))


if __name__ == '__main__':
    main(*sys.argv[1:])
