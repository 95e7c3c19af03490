# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared unit-test fixtures: run a module's main() with arguments and get its JSON result."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:
    # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:
    patch_module_args = None


@contextlib.contextmanager
def module_args(args):
    """Expose args to AnsibleModule, on every supported ansible-core."""
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    saved = basic._ANSIBLE_ARGS
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = saved


class ModuleResult(dict):
    """The module's JSON result; .exit_code is the SystemExit code (0 = exit_json, 1 = fail_json)."""
    exit_code = None


@pytest.fixture
def run_module(capsys):
    """run_module(module, args, check_mode=False, diff=False) -> ModuleResult parsed from the module's stdout."""

    def _run(module, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        capsys.readouterr()  # drop anything printed before
        exit_code = None
        with module_args(args):
            try:
                module.main()
            except SystemExit as exc:
                exit_code = exc.code
        out = capsys.readouterr().out
        try:
            result = ModuleResult(json.loads(out))
        except ValueError:
            raise AssertionError('module printed no JSON result: %r' % out[:2000])
        result.exit_code = exit_code
        return result

    return _run
