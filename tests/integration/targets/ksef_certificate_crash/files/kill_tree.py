# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SIGKILL a process and every descendant of it, found by parent id in /proc (Linux).

    kill_tree.py PID

ansible-core puts each worker in its own session, so killing the process group of ansible-playbook
would leave the module running; walking the parent ids reaches it. Prints the killed ids as JSON.
"""
import json
import os
import signal
import sys


def parent_ids():
    parents = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except (IOError, OSError):
            continue
        parents[int(entry)] = int(fields[1])
    return parents


def descendants(root, parents):
    found = [root]
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.append(pid)
                changed = True
    return found


def main():
    root = int(sys.argv[1])
    # Stop the whole tree first so no process can start another while we collect ids.
    tree = descendants(root, parent_ids())
    for pid in tree:
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            pass
    tree = descendants(root, parent_ids())
    for pid in reversed(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    print(json.dumps(tree))


if __name__ == '__main__':
    main()
