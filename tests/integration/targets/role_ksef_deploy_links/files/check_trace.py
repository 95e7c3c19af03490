# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read strace -f -y output files (PREFIX.*) and print, as JSON, every system call that changed the mode or
owner of, or opened by path, one of the given links or their targets: {"violations": [...], "seen": N}.

  check_trace.py PREFIX LINK[=TARGET] ...

A call on a link's path is a violation when it changes a mode or owner by path (chmod, chown, lchown,
fchmodat, fchownat) or opens it without O_NOFOLLOW (open, openat, creat). Any call that names a target, or a descriptor
whose path (-y) is a target, is a violation. `seen` counts the calls that named a link at all (the trace saw
the module look at it).
"""
import glob
import json
import os
import re
import sys

CALL = re.compile(r'^(?:\d+\s+)?(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+|\?)')
DIRFD = re.compile(r'^(?:AT_FDCWD|\d+<(?P<dir>[^>]*)>)$')
CHANGES = ('chmod', 'fchmodat', 'fchmodat2', 'chown', 'lchown', 'fchownat', 'fchmod', 'fchown')
OPENS = ('open', 'openat', 'openat2', 'creat')


def split_args(text):
    args, depth, current, quoted = [], 0, '', False
    index = 0
    while index < len(text):
        char = text[index]
        if quoted:
            current += char
            if char == '\\':
                current += text[index + 1]
                index += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            current += char
        elif char in '{[<':
            depth += 1
            current += char
        elif char in '}]>':
            depth -= 1
            current += char
        elif char == ',' and depth == 0:
            args.append(current.strip())
            current = ''
        else:
            current += char
        index += 1
    if current.strip():
        args.append(current.strip())
    return args


def unquote(arg):
    return arg[1:-1] if arg.startswith('"') and arg.endswith('"') else None


def paths_of(name, args):
    """(path named by the call or None, path of a descriptor argument or None, flags text)."""
    if name in ('fchmod', 'fchown'):
        match = re.match(r'^\d+<(?P<path>[^>]*)>$', args[0]) if args else None
        return None, match.group('path') if match else None, ''
    if name in ('open', 'creat', 'chmod', 'chown', 'lchown'):
        return unquote(args[0]) if args else None, None, ' '.join(args[1:])
    # *at calls: dirfd, path, ...
    if len(args) < 2:
        return None, None, ''
    relative = unquote(args[1])
    if relative is None:
        return None, None, ''
    match = DIRFD.match(args[0])
    if not os.path.isabs(relative) and match and match.group('dir'):
        relative = os.path.join(match.group('dir'), relative)
    return relative, None, ' '.join(args[2:])


def main():
    prefix, pairs = sys.argv[1], sys.argv[2:]
    links, targets = set(), set()
    for pair in pairs:
        link, dummy, target = pair.partition('=')
        links.add(os.path.normpath(link))
        if target:
            targets.add(os.path.normpath(target))
    violations, seen = [], 0
    for trace in sorted(glob.glob(glob.escape(prefix) + '.*')):
        with open(trace, errors='replace') as handle:
            for line in handle:
                match = CALL.match(line.strip())
                if not match or match.group('name') not in CHANGES + OPENS:
                    continue
                name = match.group('name')
                path, fd_path, flags = paths_of(name, split_args(match.group('args')))
                path = os.path.normpath(path) if path else None
                if fd_path and os.path.normpath(fd_path) in targets:
                    violations.append(line.strip())
                if path in targets:
                    violations.append(line.strip())
                if path in links:
                    seen += 1
                    # A mode or owner is never changed by path at all; an open must not follow the link.
                    if name in CHANGES or 'O_NOFOLLOW' not in flags:
                        violations.append(line.strip())
    print(json.dumps({'violations': violations, 'seen': seen}))


if __name__ == '__main__':
    main()
