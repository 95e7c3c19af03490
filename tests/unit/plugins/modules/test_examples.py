# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every task of this collection's modules shown to users uses only options the module accepts.

Covers the EXAMPLES of the four modules, the playbooks, the role's task files and the YAML code
blocks of the Markdown documentation. Each module's real argument spec is captured from its main()
(the AnsibleModule it would build), so aliases, suboptions, the shared connection options and the
file options of add_file_common_args all count. Options of group/ksef.certificates.ksef in
module_defaults must be connection options.
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
    ksef_session,
    ksef_token,
    ksef_token_info,
)

MODULES = {
    'ksef_certificate': ksef_certificate,
    'ksef_certificate_info': ksef_certificate_info,
    'ksef_certificate_proof': ksef_certificate_proof,
    'ksef_certificate_revoke': ksef_certificate_revoke,
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


@pytest.fixture(scope='module')
def specs():
    saved = _module.AnsibleModule
    _module.AnsibleModule = _CapturingModule
    try:
        result = {}
        for name, module in MODULES.items():
            try:
                module.main()
            except _Captured as captured:
                spec = dict(captured.kwargs['argument_spec'])
                if captured.kwargs.get('add_file_common_args'):
                    for option in FILE_COMMON_OPTIONS:
                        spec.setdefault(option, {})
                result[name] = spec
            else:  # pragma: no cover
                raise AssertionError('%s.main() did not build an AnsibleModule' % name)
    finally:
        _module.AnsibleModule = saved
    return result


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


def _module_name(key):
    if not isinstance(key, str):
        return None
    short = key[len(FQCN):] if key.startswith(FQCN) else None
    return short if short in MODULES else None


def _walk(node, specs, where, problems, counter):
    """Find module calls and module_defaults anywhere in a parsed YAML document."""
    if isinstance(node, list):
        for entry in node:
            _walk(entry, specs, where, problems, counter)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        name = _module_name(key)
        if name and isinstance(value, dict):
            counter.append(name)
            _check_args(value, specs[name], '%s: %s' % (where, key), problems)
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
        _walk(value, specs, where, problems, counter)


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


def test_every_shown_task_uses_only_existing_options(specs):
    problems = []
    counter = []
    for where, document in _documents():
        _walk(document, specs, where, problems, counter)
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
