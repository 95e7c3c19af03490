# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_access_token import AccessTokenAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import HttpScript

ACCESS = certs.fake_jwt(1767269700, 'access')


def test_declares_its_option_and_logs_in_never():
    assert set(AccessTokenAuthMethod.OPTIONS) == {'access_token'}
    assert AccessTokenAuthMethod.OPTIONS['access_token']['no_log'] is True
    assert AccessTokenAuthMethod.applies({'access_token': ACCESS})
    assert not AccessTokenAuthMethod.applies({'access_token': None, 'ksef_token': 't'})
    method = AccessTokenAuthMethod({'access_token': ACCESS})
    assert method.LOGS_IN is False
    assert method.token == ACCESS
    assert method.required_libraries() == []


def test_a_malformed_token_is_refused_whenever_given():
    with pytest.raises(KsefInputError, match='access_token contains whitespace'):
        AccessTokenAuthMethod.check_given({'access_token': ACCESS + '\n'})
    AccessTokenAuthMethod.check_given({})


def test_the_authenticator_uses_it_as_is_without_any_call():
    script = HttpScript([])
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session())
    auth = KsefAuthenticator(client, {'access_token': ACCESS})
    assert auth.method == 'access_token'
    assert auth.access_token() == ACCESS
    assert auth.handle_unauthorized() is False
    auth.login()
    auth.close()
    assert auth.tokens()['access_token_valid_until'] == '2026-01-01T12:15:00+00:00'
    assert client.calls == 0
    script.verify()
