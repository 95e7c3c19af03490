# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every task of this collection's modules shown to users uses only options the module accepts.

Covers the EXAMPLES of every module, the playbooks, the role's task files and the YAML code
blocks of the Markdown documentation. Each module's real argument spec is captured from its main()
(the AnsibleModule it would build), so aliases, suboptions, the shared connection options and the
file options of add_file_common_args all count, and a task whose options are literal must name every
option its required_if asks for. Options of group/ksef.certificates.ksef in module_defaults must be
connection options.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

import pytest
import yaml

from ansible_collections.ksef.certificates.plugins.module_utils import _module
from ansible_collections.ksef.certificates.plugins.modules import (
    ksef_certificate,
    ksef_certificate_info,
    ksef_certificate_proof,
    ksef_certificate_revoke,
    ksef_deploy_host,
    ksef_session,
    ksef_token,
    ksef_token_info,
)

MODULES = {
    'ksef_certificate': ksef_certificate,
    'ksef_certificate_info': ksef_certificate_info,
    'ksef_certificate_proof': ksef_certificate_proof,
    'ksef_certificate_revoke': ksef_certificate_revoke,
    'ksef_deploy_host': ksef_deploy_host,
    'ksef_session': ksef_session,
    'ksef_token': ksef_token,
    'ksef_token_info': ksef_token_info,
}
FQCN = 'ksef.certificates.'
GROUP = 'group/ksef.certificates.ksef'
# Options AnsibleModule adds with add_file_common_args=True.
FILE_COMMON_OPTIONS = ('mode', 'owner', 'group', 'seuser', 'serole', 'selevel', 'setype', 'unsafe_writes', 'attributes')

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))


class _Captured(Exception):
    def __init__(self, kwargs):
        super(_Captured, self).__init__('captured')
        self.kwargs = kwargs


class _CapturingModule:
    def __init__(self, **kwargs):
        raise _Captured(kwargs)


def _valid_options(spec):
    """{option name or alias: suboption spec or None}."""
    names = {}
    for name, option in spec.items():
        suboptions = option.get('options')
        for alias in [name] + list(option.get('aliases', [])):
            names[alias] = suboptions
    return names


def _capture(module):
    """The keyword arguments module.main() builds its AnsibleModule with (through KsefModule or directly)."""
    owners = [_module] + ([module] if hasattr(module, 'AnsibleModule') else [])
    saved = [owner.AnsibleModule for owner in owners]
    for owner in owners:
        owner.AnsibleModule = _CapturingModule
    try:
        module.main()
    except _Captured as captured:
        return captured.kwargs
    finally:
        for owner, original in zip(owners, saved):
            owner.AnsibleModule = original
    raise AssertionError('%s.main() did not build an AnsibleModule' % module.__name__)  # pragma: no cover


@pytest.fixture(scope='module')
def specs():
    result = {}
    for name, module in MODULES.items():
        kwargs = _capture(module)
        spec = dict(kwargs['argument_spec'])
        if kwargs.get('add_file_common_args'):
            for option in FILE_COMMON_OPTIONS:
                spec.setdefault(option, {})
        result[name] = spec
    return result


@pytest.fixture(scope='module')
def required_ifs():
    return dict((name, list(_capture(module).get('required_if') or [])) for name, module in MODULES.items())


def _check_args(args, spec, where, problems):
    """Report every key of args (a dict) that spec does not know; recurse into literal suboptions."""
    valid = _valid_options(spec)
    for key, value in args.items():
        if key not in valid:
            problems.append('%s: unknown option %r (valid: %s)' % (where, key, ', '.join(sorted(valid))))
            continue
        suboptions = valid[key]
        if not suboptions:
            continue
        values = value if isinstance(value, list) else [value]
        for index, entry in enumerate(values):
            if isinstance(entry, dict):
                _check_args(entry, suboptions, '%s.%s[%d]' % (where, key, index), problems)


def _check_required(args, required_if, where, problems):
    """Report the options a literal task leaves out although its required_if asks for them."""
    for rule in required_if:
        key, value, needed = rule[:3]
        if args.get(key) != value:
            continue
        missing = [option for option in needed if option not in args]
        any_of = len(rule) > 3 and rule[3]
        if missing and (not any_of or len(missing) == len(needed)):
            problems.append('%s: %s=%s needs %s' % (where, key, value, ', '.join(missing)))


def _module_name(key):
    if not isinstance(key, str):
        return None
    short = key[len(FQCN):] if key.startswith(FQCN) else None
    return short if short in MODULES else None


def _walk(node, specs, where, problems, counter, required_ifs=None):
    """Find module calls and module_defaults anywhere in a parsed YAML document."""
    if isinstance(node, list):
        for entry in node:
            _walk(entry, specs, where, problems, counter, required_ifs)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        name = _module_name(key)
        if name and isinstance(value, dict):
            counter.append(name)
            _check_args(value, specs[name], '%s: %s' % (where, key), problems)
            _check_required(value, (required_ifs or {}).get(name, ()), '%s: %s' % (where, key), problems)
        elif name and value is not None and not isinstance(value, (dict, str)):
            problems.append('%s: %s takes a dict of options, not %r' % (where, key, value))
        if key == 'module_defaults' and isinstance(value, dict):
            for target, defaults in value.items():
                if not isinstance(defaults, dict):
                    continue  # a template such as "{{ ksef_connection }}"
                if target == GROUP:
                    counter.append(GROUP)
                    _check_args(defaults, _module.ksef_argument_spec(), '%s: module_defaults %s' % (where, target),
                                problems)
                elif _module_name(target):
                    counter.append(target)
                    _check_args(defaults, specs[_module_name(target)], '%s: module_defaults %s' % (where, target),
                                problems)
        _walk(value, specs, where, problems, counter, required_ifs)


def _markdown_yaml_blocks(path):
    with open(path) as handle:
        text = handle.read()
    return re.findall(r'^```ya?ml[^\n]*\n(.*?)^```', text, flags=re.MULTILINE | re.DOTALL)


def _documents():
    """(where, parsed YAML) of every place that shows users a task of these modules."""
    for name, module in sorted(MODULES.items()):
        yield 'plugins/modules/%s.py EXAMPLES' % name, yaml.safe_load(module.EXAMPLES)
    for directory in ('playbooks', os.path.join('roles', 'ksef_deploy', 'tasks')):
        base = os.path.join(ROOT, directory)
        if not os.path.isdir(base):
            continue
        for filename in sorted(os.listdir(base)):
            if filename.endswith(('.yml', '.yaml')):
                with open(os.path.join(base, filename)) as handle:
                    yield os.path.join(directory, filename), yaml.safe_load(handle)
    for relative in ('README.md', os.path.join('docs', 'TESTING.md'), os.path.join('docs', 'awx', 'README.md')):
        path = os.path.join(ROOT, relative)
        if not os.path.exists(path):
            continue
        for index, block in enumerate(_markdown_yaml_blocks(path)):
            yield '%s yaml block %d' % (relative, index + 1), yaml.safe_load(block)


@pytest.mark.parametrize('name', sorted(MODULES))
def test_examples_parse_and_call_the_module(name):
    tasks = yaml.safe_load(MODULES[name].EXAMPLES)
    assert isinstance(tasks, list) and tasks, 'EXAMPLES of %s is not a list of tasks' % name
    assert FQCN + name in MODULES[name].EXAMPLES, 'EXAMPLES of %s never calls the module by its FQCN' % name


def test_every_shown_task_uses_only_existing_options(specs, required_ifs):
    problems = []
    counter = []
    for where, document in _documents():
        _walk(document, specs, where, problems, counter, required_ifs)
    assert not problems, '\n'.join(problems)
    # The walk must have found the calls, or the test proves nothing.
    for name in MODULES:
        assert name in counter, 'no call of %s found' % name
    assert GROUP in counter


def test_the_check_catches_a_wrong_option(specs):
    problems = []
    document = yaml.safe_load('''
- name: Wrong option
  ksef.certificates.ksef_certificate:
    name: x
    certificate_type: authentication
- name: Wrong suboption
  ksef.certificates.ksef_certificate:
    certificates:
      - name: y
        type: offline
        keyfile: /tmp/k
- name: Wrong connection default
  module_defaults:
    group/ksef.certificates.ksef:
      enviroment: test
  block: []
''')
    _walk(document, specs, 'inline', problems, [])
    assert len(problems) == 3, problems
    assert "'certificate_type'" in problems[0]
    assert "'keyfile'" in problems[1] and 'certificates[0]' in problems[1]
    assert "'enviroment'" in problems[2]


def test_the_check_catches_a_missing_required_option(specs, required_ifs):
    problems = []
    document = yaml.safe_load('''
- name: Bundle without a bundle path
  ksef.certificates.ksef_deploy_host:
    operation: pkcs12
    key_path: /k
    certificate_path: /c
- name: Complete
  ksef.certificates.ksef_deploy_host:
    operation: remove
    paths: [/k]
''')
    _walk(document, specs, 'inline', problems, [], required_ifs)
    assert problems == ['inline: ksef.certificates.ksef_deploy_host: operation=pkcs12 needs pkcs12_path']
