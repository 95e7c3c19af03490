# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One rule, one owner: the rules ksef_certificate, the ksef_deploy role and the report share are written once,
in plugins/module_utils/_rules.py. This test fails when one of them is written a second time:

- in Python under plugins/: a literal list/tuple/set of the certificate types or the key types, a literal
  type -> bool table (the revoke-by-type rule), a comparison with a certificate type in a statement about
  revoking, or the literal default renewal window / key type as an option or parameter default;
- in the role: a non-null default of ksef_deploy_revoke_superseded / _renew_before_days / _key_type (it would
  override the module's rule, as `ksef_deploy_revoke_superseded: true` once revoked Offline predecessors), a
  `default:` for them in meta/argument_specs.yml, or choices that differ from _rules.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os

import yaml

from ansible_collections.ksef.certificates.plugins.module_utils import _rules

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
PLUGINS = os.path.join(COLLECTION, 'plugins')
ROLE = os.path.join(COLLECTION, 'roles', 'ksef_deploy')
OWNER = os.path.join(PLUGINS, 'module_utils', '_rules.py')

TABLES = {frozenset(_rules.CERTIFICATE_TYPES): 'CERTIFICATE_TYPES', frozenset(_rules.KEY_TYPES): 'KEY_TYPES'}
# Option names whose default is a rule: a literal default there restates _rules.
RULED_DEFAULTS = {'renew_before_days': _rules.DEFAULT_RENEW_BEFORE_DAYS, 'key_type': _rules.DEFAULT_KEY_TYPE,
                  'private_key_type': _rules.DEFAULT_KEY_TYPE}


def python_files():
    for root, dummy, files in os.walk(PLUGINS):
        for name in files:
            path = os.path.join(root, name)
            if name.endswith('.py') and path != OWNER:
                yield path


def _strings(node):
    values = [element.value for element in node.elts if isinstance(element, ast.Constant)]
    return frozenset(value for value in values if isinstance(value, str)) if len(values) == len(node.elts) else None


def _names(node):
    found = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
        elif isinstance(child, ast.keyword) and child.arg:
            found.add(child.arg)
    return found


def _compares_type(node):
    for child in ast.walk(node):
        if isinstance(child, ast.Compare):
            for operand in [child.left] + child.comparators:
                if isinstance(operand, ast.Constant) and operand.value in _rules.CERTIFICATE_TYPES:
                    return True
    return False


def restatements(tree):
    """[(line, what)] of the rules `tree` writes again."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and _strings(node) in TABLES:
            found.append((node.lineno, 'a literal %s' % TABLES[_strings(node)]))
        elif isinstance(node, ast.Dict) and node.keys and all(isinstance(key, ast.Constant) for key in node.keys):
            keys = frozenset(key.value for key in node.keys)
            if keys == frozenset(_rules.CERTIFICATE_TYPES) and all(
                    isinstance(value, ast.Constant) and isinstance(value.value, bool) for value in node.values):
                found.append((node.lineno, 'a type -> bool table (REVOKE_SUPERSEDED_BY_TYPE)'))
        elif isinstance(node, (ast.Assign, ast.Return, ast.If, ast.IfExp, ast.BoolOp)):
            subject = node.test if isinstance(node, (ast.If, ast.IfExp)) else node
            if any('revoke' in name.lower() for name in _names(subject)) and _compares_type(subject):
                found.append((node.lineno, 'the revoke-by-type rule (use _rules.revoke_superseded)'))
        elif isinstance(node, ast.keyword) and node.arg in RULED_DEFAULTS and isinstance(node.value, ast.Call):
            for keyword in node.value.keywords:
                default = keyword.value
                if keyword.arg == 'default' and isinstance(default, ast.Call) and default.args:
                    default = default.args[0]  # default(value) in ksef_certificate's per-certificate options
                if keyword.arg == 'default' and isinstance(default, ast.Constant) and default.value == RULED_DEFAULTS[node.arg]:
                    found.append((node.lineno, 'the literal default of %s' % node.arg))
        elif isinstance(node, ast.arguments):
            names = [arg.arg for arg in node.args[len(node.args) - len(node.defaults):]]
            for name, default in zip(names, node.defaults):
                if (name in RULED_DEFAULTS and isinstance(default, ast.Constant)
                        and default.value == RULED_DEFAULTS[name]):
                    found.append((default.lineno, 'the literal default of parameter %s' % name))
    return found


def test_plugins_write_no_rule_twice():
    offenders = []
    for path in python_files():
        with open(path, 'rb') as handle:
            tree = ast.parse(handle.read(), path)
        offenders.extend('%s:%d: %s' % (os.path.relpath(path, COLLECTION), line, what) for line, what in restatements(tree))
    assert not offenders, 'write these rules once, in plugins/module_utils/_rules.py:\n' + '\n'.join(offenders)


def test_the_scan_finds_each_kind_of_restatement():
    # The detector itself: each restatement it must catch, and what it must let pass.
    source = '\n'.join([
        "TYPES = ('authentication', 'offline')",
        "keys = ['rsa', 'ec']",
        "BY_TYPE = {'authentication': True, 'offline': False}",
        "revoke = decl.type == 'authentication'",
        "spec = dict(renew_before_days=dict(type='int', default=30))",
        "spec = dict(private_key_type=dict(type='str', default=default('ec')))",
        "def generate(key_type='ec'):\n    pass",
        "API = {'authentication': 'Authentication', 'offline': 'Offline'}",
        "fine = decl.type == 'offline'",
        "spec = dict(timeout=dict(type='int', default=30))",
    ])
    lines = sorted(line for line, dummy in restatements(ast.parse(source)))
    assert lines == [1, 2, 3, 4, 5, 6, 7]


def _role_yaml(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def test_role_defaults_leave_the_rules_to_the_collection():
    defaults = _role_yaml('defaults', 'main.yml')
    for name in ('ksef_deploy_revoke_superseded', 'ksef_deploy_renew_before_days', 'ksef_deploy_key_type'):
        assert name in defaults and defaults[name] is None, (
            '%s must default to null (the rule in _rules.py); a value there overrides ksef_certificate\'s rule' % name)


def test_role_argument_specs_agree_with_the_rules():
    options = _role_yaml('meta', 'argument_specs.yml')['argument_specs']['main']['options']
    item = options['ksef_deploy_certificates']['options']
    for spec in (options['ksef_deploy_revoke_superseded'], options['ksef_deploy_renew_before_days'],
                 options['ksef_deploy_key_type'], item['revoke_superseded'], item['renew_before_days']):
        assert 'default' not in spec
    # choices would refuse the null default (role argument validation checks choices on None); the declarations
    # are checked against _rules.KEY_TYPES by _deploy.problems().
    assert 'choices' not in options['ksef_deploy_key_type']
    # The role checks an item's key type itself, in one short line (issue 19): its description names the rule's types.
    if 'choices' in item['key_type']:
        assert item['key_type']['choices'] == list(_rules.KEY_TYPES)
    for key_type in _rules.KEY_TYPES:
        assert 'V(%s)' % key_type in item['key_type']['description']
    if 'choices' in item['type']:
        assert sorted(choice.lower() for choice in item['type']['choices']) == sorted(_rules.CERTIFICATE_TYPES)


def test_revoke_superseded_rule():
    assert _rules.revoke_superseded('authentication') is True
    assert _rules.revoke_superseded('offline') is False
    assert _rules.revoke_superseded('offline', True) is True
    assert _rules.revoke_superseded('authentication', False) is False
