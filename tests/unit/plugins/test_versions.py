# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One version: galaxy.yml's, the code's (the user agent) and every version_added agree.

The next release is galaxy.yml's version; changelogs/changelog.yaml lists the released ones. A plugin, option or
role entry point is added either in a released version or in the next one, never in one beyond it.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

import yaml

from ansible_collections.ksef.certificates.plugins.module_utils import _http

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
VERSION_ADDED = re.compile(r'''^\s*version_added:\s*['"]?([^'"\s#]+)''', re.MULTILINE)


def _yaml(relative):
    with open(os.path.join(ROOT, relative)) as handle:
        return yaml.safe_load(handle)


def _release(text):
    return tuple(int(part) for part in str(text).split('.'))


def version_added_entries():
    """(path, version) of every version_added under plugins/ and roles/."""
    for top in ('plugins', 'roles'):
        for directory, dummy, files in os.walk(os.path.join(ROOT, top)):
            for name in sorted(files):
                if not name.endswith(('.py', '.yml', '.yaml')):
                    continue
                path = os.path.join(directory, name)
                with open(path) as handle:
                    for version in VERSION_ADDED.findall(handle.read()):
                        yield os.path.relpath(path, ROOT), version


def test_the_code_and_the_user_agent_carry_galaxy_yml_version():
    version = _yaml('galaxy.yml')['version']
    assert _http.COLLECTION_VERSION == version
    assert _http.USER_AGENT == 'ksef.certificates-ansible/%s' % version


def test_every_version_added_is_a_release_or_the_next_one():
    next_release = _yaml('galaxy.yml')['version']
    released = list((_yaml(os.path.join('changelogs', 'changelog.yaml')).get('releases') or {}).keys())
    assert all(_release(version) <= _release(next_release) for version in released), (released, next_release)
    allowed = set(str(version) for version in released) | {next_release}
    entries = list(version_added_entries())
    assert any(path.startswith(os.path.join('plugins', 'modules')) for path, dummy in entries)
    wrong = ['%s: %s' % entry for entry in entries if entry[1] not in allowed]
    assert not wrong, 'version_added must be one of %s:\n%s' % (', '.join(sorted(allowed)), '\n'.join(wrong))
