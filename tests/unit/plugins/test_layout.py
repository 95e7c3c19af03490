# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 9's size limits, kept: no file under plugins/ over 600 lines, no class over 300 lines; the unit tests mirror
module_utils file for file."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os

from ansible_collections.ksef.certificates.plugins.module_utils import _api

PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(_api.__file__)))
MAX_FILE_LINES = 600
MAX_CLASS_LINES = 300


def python_files():
    for directory, dummy, files in os.walk(PLUGINS):
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.join(directory, name)


def class_lengths(path):
    """(class name, lines from its 'class' line to its last line) of every class in a file."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            yield node.name, node.end_lineno - first + 1


def test_plugins_are_found():
    names = [os.path.relpath(path, PLUGINS) for path in python_files()]
    assert os.path.join('module_utils', '_api.py') in names
    assert os.path.join('modules', 'ksef_certificate.py') in names


def test_no_file_over_600_lines():
    too_long = []
    for path in python_files():
        with open(path) as handle:
            count = len(handle.read().splitlines())
        if count > MAX_FILE_LINES:
            too_long.append('%s: %d lines' % (os.path.relpath(path, PLUGINS), count))
    assert not too_long, too_long


def test_no_class_over_300_lines():
    too_long = ['%s %s: %d lines' % (os.path.relpath(path, PLUGINS), name, length)
                for path in python_files() for name, length in class_lengths(path) if length > MAX_CLASS_LINES]
    assert not too_long, too_long


def test_unit_tests_mirror_module_utils():
    """plugins/module_utils/_x.py has tests/unit/plugins/module_utils/test_x.py; a subpackage's y.py has
    <subpackage>/test_y.py beside the others of its subpackage."""
    module_utils = os.path.join(PLUGINS, 'module_utils')
    tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'module_utils')
    missing = []
    for path in python_files():
        relative = os.path.relpath(path, module_utils)
        directory, name = os.path.split(relative)
        if relative.startswith(os.pardir) or name == '__init__.py':
            continue
        wanted = os.path.join(tests, directory, 'test_%s' % name.lstrip('_'))
        if not os.path.isfile(wanted):
            missing.append(os.path.relpath(wanted, os.path.dirname(tests)))
    assert not missing, missing
