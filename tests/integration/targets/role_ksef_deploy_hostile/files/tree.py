#!/usr/bin/env python
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print, as JSON, every file and directory under ROOT with its mode, and every marker file (M1..M4) found
under ROOT, in the extra directories given, in the home directory, /tmp, the working directory and /."""
from __future__ import absolute_import, division, print_function

import json
import os
import stat
import sys

MARKERS = ('M1', 'M2', 'M3', 'M4')


def main():
    root = sys.argv[1]
    entries = {}
    markers = []
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            kind = 'dir' if stat.S_ISDIR(info.st_mode) else 'file'
            entries[os.path.relpath(path, root)] = {'mode': '%04o' % stat.S_IMODE(info.st_mode), 'type': kind}
            if name in MARKERS:
                markers.append(path)
    for directory in sys.argv[2:] + [os.path.expanduser('~'), '/tmp', os.getcwd(), '/']:
        for name in MARKERS:
            path = os.path.join(directory, name)
            if os.path.lexists(path) and path not in markers:
                markers.append(path)
    print(json.dumps({'entries': entries, 'markers': markers}))


if __name__ == '__main__':
    main()
