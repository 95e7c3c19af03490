# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._auth_methods import (
    AUTH_METHODS,
    AUTH_OPTIONS,
    check_given_options,
    select_auth_method,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError


def test_every_option_belongs_to_a_method_and_agrees_where_two_share_it():
    for method in AUTH_METHODS:
        for name, option in method.OPTIONS.items():
            assert AUTH_OPTIONS[name] == option, name
    assert set(AUTH_OPTIONS) == set().union(*(method.OPTIONS for method in AUTH_METHODS))


def test_priority_access_token_pkcs11_signature_ksef_token():
    assert [method.__name__ for method in AUTH_METHODS] == [
        'AccessTokenAuthMethod', 'Pkcs11AuthMethod', 'XadesAuthMethod', 'KsefTokenAuthMethod']


@pytest.mark.parametrize('params, message', [
    ({}, 'no KSeF credential given'),
    ({'auth_private_key_path': '/k.pem', 'ksef_token': 't'}, 'without its certificate'),
    ({'auth_pkcs11_module': '/p.so'}, 'auth_pkcs11_module needs auth_pkcs11_token_label'),
])
def test_select_refuses(params, message):
    with pytest.raises(KsefInputError, match=message):
        select_auth_method(params)


def test_a_given_access_token_makes_a_stray_key_harmless():
    assert select_auth_method({'access_token': 'a', 'auth_private_key_path': '/k.pem'}).NAME == 'access_token'


def test_given_tokens_are_checked_whichever_method_is_used():
    with pytest.raises(KsefInputError, match='ksef_token contains whitespace'):
        check_given_options({'access_token': 'a', 'ksef_token': 'a b'})
    check_given_options({'access_token': 'a', 'ksef_token': 'b'})
