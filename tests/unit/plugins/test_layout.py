# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 9's size limits, kept: no file under plugins/ over 600 lines, no class over 300 lines; the unit tests mirror
module_utils file for file. Issue 22: production code calls the gateway (KsefApi) plainly, never probing it for a
method or attribute."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os
import re

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


# getattr(api, ...), hasattr(self.api, ...), getattr(getattr(api, 'client'), ...), getattr(self.client, ...): a probe
# of the gateway object or of its HTTP client.
API_PROBE = re.compile(r'\b(getattr|hasattr)\(\s*(getattr\(\s*)?(self\.)?_?(api|ksef|gateway|client)\b')


def api_probes(text):
    return [line.strip() for line in text.splitlines() if API_PROBE.search(line)]


def test_the_probe_pattern_finds_what_issue_22_removed():
    assert api_probes("limits_for = getattr(getattr(api, 'client', None), 'limits_for', None)")
    assert api_probes("    if hasattr(api, 'prove_login'):")
    assert api_probes("probe = getattr(self.api, 'seconds_until_slot', None)")
    assert api_probes("        if getattr(self.client, 'unreachable', False):")
    assert not api_probes("value = getattr(cert, 'not_valid_before_utc', None)")
    assert not api_probes("limits = api.limits_for(endpoint)")


def test_production_code_never_probes_the_gateway():
    """KsefApi has every method the engine and the modules call (the fake KSeF of the unit tests too: test_fake_ksef)."""
    probes = []
    for path in python_files():
        with open(path) as handle:
            probes.extend('%s: %s' % (os.path.relpath(path, PLUGINS), line) for line in api_probes(handle.read()))
    assert not probes, probes


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


# Issue 22: the public functions and methods of module_utils carry type hints (CONTRIBUTING.md, "Code"): every file
# under plugins/module_utils, a new one included, except those listed here (none: every file is annotated).
NOT_ANNOTATED = ()


def annotated_files():
    """The module_utils files held to type hints, relative to module_utils ('_engine/plan.py')."""
    module_utils = os.path.join(PLUGINS, 'module_utils')
    found = []
    for directory, dummy, files in os.walk(module_utils):
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(directory, name), module_utils)
            if name.endswith('.py') and name != '__init__.py' and relative not in NOT_ANNOTATED:
                found.append(relative)
    return sorted(found)


def unannotated(path):
    """'name(line): what is missing' for each public function, public method of a public class, and __init__ whose
    parameters (but self/cls) or return value (but __init__'s) have no annotation."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    functions = [(None, node) for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith('_'):
            functions.extend((node, item) for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    for owner, function in functions:
        if function.name.startswith('_') and function.name != '__init__':
            continue
        arguments = function.args
        positional = arguments.posonlyargs + arguments.args
        static = any(isinstance(decorator, ast.Name) and decorator.id == 'staticmethod' for decorator in function.decorator_list)
        if owner is not None and not static:
            positional = positional[1:]
        every = positional + arguments.kwonlyargs + [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
        missing = [arg.arg for arg in every if arg.annotation is None]
        if function.returns is None and function.name != '__init__':
            missing.append('return')
        if missing:
            name = '%s.%s' % (owner.name, function.name) if owner is not None else function.name
            yield '%s(%d): %s' % (name, function.lineno, ', '.join(missing))


def test_unannotated_finds_what_lacks_hints(tmp_path):
    sample = tmp_path / 'sample.py'
    sample.write_text('def public(a, b: int) -> int:\n    return b\n\n\ndef _private(a):\n    return a\n\n\n'
                      'class Thing:\n    def __init__(self, x):\n        self.x = x\n\n'
                      '    def done(self, y: str) -> None:\n        pass\n\n'
                      '    @staticmethod\n    def make(*values):\n        return values\n\n\n'
                      'class _Hidden:\n    def shown(self, z):\n        return z\n')
    assert list(unannotated(str(sample))) == ['public(1): a', 'Thing.__init__(10): x', 'Thing.make(17): values, return']


def test_public_module_utils_functions_are_annotated():
    covered = annotated_files()
    # the gateway, the engine and the host code are all among them
    assert {'_api.py', '_engine/converge.py', '_host/operations.py', '_errors.py'} <= set(covered), covered
    module_utils = os.path.join(PLUGINS, 'module_utils')
    missing = ['%s %s' % (name, problem) for name in covered for problem in unannotated(os.path.join(module_utils, name))]
    assert not missing, missing
