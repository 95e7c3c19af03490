# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mirror the repository into an ansible_collections/<ns>/<name>/ tree for ansible-test.

ansible-test must run from a directory laid out as ansible_collections/ksef/certificates/. The
copy holds exactly the files git knows about or would add (tracked plus untracked-not-ignored, so
work in progress is tested and .venv/build/tests/output are not), keeps file modes and symlinks,
copies only what changed, and deletes everything else except ansible-test's own tests/output/.

The copy gets its own empty git repository: ansible-test walks up from its working directory to the
first `.git` and lists content with `git ls-files`; without one it would find the real repository,
where build/ is ignored, and see no files at all ("All targets skipped"). In the empty repository
every copied file is "untracked, not ignored", and the copied .gitignore keeps tests/output out.

Usage: python tools/sync-collection.py SOURCE_REPO DEST_DIR
"""
from __future__ import absolute_import, division, print_function

import filecmp
import os
import shutil
import subprocess
import sys

# Left alone in the destination: ansible-test's results, the mirror's own git repository, and the
# integration variables that tools/run-integration.sh writes for the run.
KEEP = ('tests/output', '.git', 'tests/integration/integration_config.yml')


def listed_files(source):
    out = subprocess.check_output(
        ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=source)
    names = set()
    for name in out.decode('utf-8').split('\0'):
        # A tracked file deleted in the work tree is still listed: skip it.
        if name and os.path.lexists(os.path.join(source, name)):
            names.add(name)
    return names


def same(src, dst):
    if os.path.islink(src) or os.path.islink(dst):
        return os.path.islink(src) and os.path.islink(dst) and os.readlink(src) == os.readlink(dst)
    if not os.path.isfile(dst):
        return False
    if os.stat(src).st_mode != os.stat(dst).st_mode:
        return False
    return filecmp.cmp(src, dst, shallow=False)


def kept(rel):
    return any(rel == k or rel.startswith(k + '/') for k in KEEP)


def main(source, dest):
    source = os.path.abspath(source)
    dest = os.path.abspath(dest)
    names = listed_files(source)
    copied = removed = 0

    for rel in sorted(names):
        src = os.path.join(source, rel)
        dst = os.path.join(dest, rel)
        if same(src, dst):
            continue
        parent = os.path.dirname(dst)
        if os.path.lexists(parent) and not os.path.isdir(parent):
            os.remove(parent)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.remove(dst)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
        copied += 1

    # Remove files that are no longer listed, then directories left empty.
    for root, dirs, files in os.walk(dest, topdown=False):
        rel_root = os.path.relpath(root, dest)
        rel_root = '' if rel_root == '.' else rel_root
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = os.path.join(rel_root, name)
            if rel not in names and not kept(rel):
                os.remove(os.path.join(root, name))
                removed += 1
        if rel_root and not kept(rel_root) and not os.listdir(root):
            os.rmdir(root)

    if not os.path.isdir(os.path.join(dest, '.git')):
        subprocess.check_call(['git', 'init', '-q', dest])

    print('sync-collection: %d files in %s (%d copied, %d removed)' % (len(names), dest, copied, removed))
    return 0


if __name__ == '__main__':
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
