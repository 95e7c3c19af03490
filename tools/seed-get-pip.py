# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pre-seed ansible-test's get-pip cache with tools/get-pip-offline.py.

Run it with the Python of a virtual environment that has ansible-core installed. It reads the pip
versions that this ansible-test bootstraps into its managed venvs from the installed ansible_test
package (they change between ansible-core releases: 23.1.2, 24.2, 25.2, ...) and writes
~/.ansible/test/cache/get_pip_<version with underscores>.py for each.
"""
from __future__ import absolute_import, division, print_function

import os
import re
import sys

# In ansible_test/_internal/python_requirements.py: get_venv_packages() has
# `default_packages = dict(pip='25.2', ...)` and optional per-Python overrides `pip='...'`.
PIP_VERSION_RE = re.compile(r"""\bpip\s*=\s*['"]([0-9][0-9.]*)['"]|['"]pip['"]\s*:\s*['"]([0-9][0-9.]*)['"]""")


def pip_versions():
    import ansible_test  # only the package location is needed

    source = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(source) as handle:
        text = handle.read()
    return sorted({a or b for a, b in PIP_VERSION_RE.findall(text)})


def main():
    stand_in = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'get-pip-offline.py')
    with open(stand_in, 'rb') as handle:
        content = handle.read()

    versions = pip_versions()
    if not versions:
        print('seed-get-pip: no pip version found in ansible_test; its layout changed', file=sys.stderr)
        return 1

    cache = os.path.expanduser('~/.ansible/test/cache')
    if not os.path.isdir(cache):
        os.makedirs(cache)
    for version in versions:
        target = os.path.join(cache, 'get_pip_%s.py' % version.replace('.', '_'))
        current = None
        if os.path.exists(target):
            with open(target, 'rb') as handle:
                current = handle.read()
        if current != content:
            # Write beside and rename, so a concurrent ansible-test never reads half a file.
            with open(target + '.tmp', 'wb') as handle:
                handle.write(content)
            os.rename(target + '.tmp', target)
            print('seed-get-pip: wrote %s' % target)
    return 0


if __name__ == '__main__':
    sys.exit(main())
