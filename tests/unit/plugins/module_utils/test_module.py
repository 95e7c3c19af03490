# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""KsefModule: the connection options validated once, the libraries of the chosen method, one error handler."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import types

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _xades
from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefAuthError
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs


@pytest.fixture(autouse=True)
def no_ksef_environment(monkeypatch):
    import os
    for name in list(os.environ):
        if name.startswith('KSEF_'):
            monkeypatch.delenv(name)


def module_running(func, login=True):
    """A module object for run_module whose main() runs func(ksef) through KsefModule.run."""
    seen = {}

    def main():
        ksef = KsefModule(supports_check_mode=True)
        seen['ksef'] = ksef
        ksef.run(func, login=login)
    return types.SimpleNamespace(main=main), seen


def test_options_are_validated_once_and_typed(run_module, monkeypatch):
    warnings = []
    monkeypatch.setattr(AnsibleModule, 'warn', lambda self, text: warnings.append(text))
    module, seen = module_running(lambda ksef: {'changed': False, 'context': ksef.connection_options.context})
    result = run_module(module, {'access_token': 'a', 'api_url': 'https://127.0.0.1:1/v2', 'validate_certs': False})
    assert result.exit_code == 0, result
    assert result['context'] == 'nip None'
    assert result['api_calls'] == 0
    assert result['system_warnings'] == []
    assert len(warnings) == 1 and warnings[0].startswith('validate_certs is false')
    options = seen['ksef'].options
    assert isinstance(options, ConnectionOptions)
    assert options.auth.NAME == 'access_token'
    assert seen['ksef'].authenticator.options is options


def test_an_input_error_fails_before_any_call(run_module):
    module, dummy = module_running(lambda ksef: pytest.fail('must not run'))
    result = run_module(module, {'ksef_token': 'KSEF-TOKEN-VALUE', 'context_id': '1'})
    assert result.exit_code == 1
    assert 'is not a valid NIP' in result['msg']
    assert result['api_calls'] == 0


def test_a_ksef_error_of_the_work_is_failed_with_its_fields(run_module):
    def work(ksef):
        raise KsefAuthError(460, 'Certificate error', None, 'REF', hint='Check it')
    module, dummy = module_running(work, login=False)
    result = run_module(module, {})
    assert result.exit_code == 1
    assert result['msg'].startswith('KSeF authentication failed with status 460')
    assert result['reference_number'] == 'REF'


def test_a_missing_library_of_the_chosen_method_is_named(run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(_xades, 'HAS_LXML', False)
    module, dummy = module_running(lambda ksef: {'changed': False})
    result = run_module(module, {'auth_certificate_path': str(tmp_path / 'c.pem'), 'auth_private_key_path': str(tmp_path / 'k.pem'),
                                 'context_id': certs.TEST_NIP})
    assert result.exit_code == 1
    assert 'lxml' in result['msg']
    # A KSeF token login does not need lxml.
    result = run_module(module, {'ksef_token': 'KSEF-TOKEN-VALUE', 'context_id': certs.TEST_NIP})
    assert result.exit_code == 0, result


def test_tokens_the_client_sees_are_masked_in_the_result_unless_the_module_returns_the_session(run_module):
    """issue 17, finding 8: a token obtained at login that an answer or a message repeats is masked by Ansible."""
    obtained = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvYnRhaW5lZCJ9.c2ln'

    def work(ksef):
        ksef.client.keep_secret(obtained)
        return {'changed': False, 'echo': 'KSeF said %s' % obtained}
    module, dummy = module_running(work, login=False)
    result = run_module(module, {'api_url': 'https://127.0.0.1:1/v2'})
    assert result.exit_code == 0 and obtained not in repr(result)
    assert result['echo'] == 'KSeF said ********'

    def keeping(ksef):
        ksef.keep_session = True  # ksef_session: its result is the session's tokens (documented: register with no_log)
        ksef.client.keep_secret(obtained)
        return {'changed': True, 'access_token': obtained}
    module, dummy = module_running(keeping, login=False)
    assert run_module(module, {'api_url': 'https://127.0.0.1:1/v2'})['access_token'] == obtained
