# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_base import AuthMethod, check_token
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError

SECRET = 'eyJhbGciOi.SECRET-TOKEN-VALUE.sig'


@pytest.mark.parametrize('value, problem', [
    ('', 'is empty'),
    (SECRET + '\n', 'contains whitespace'),
    (SECRET[:5] + ' ' + SECRET[5:], 'contains whitespace'),
    (SECRET + '\u0105', 'non-ASCII'),
])
def test_check_token_refuses_without_showing_the_value(value, problem):
    with pytest.raises(KsefInputError) as info:
        check_token('ksef_token', value)
    assert str(info.value).startswith('ksef_token ')
    assert problem in str(info.value)
    assert 'SECRET' not in str(info.value)


def test_check_token_accepts_a_token_and_nothing_given():
    check_token('access_token', SECRET)
    check_token('access_token', None)


class _Method(AuthMethod):
    NAME = 'example'
    OPTIONS = {'example_option': dict(type='str')}


def test_a_method_keeps_only_its_own_options():
    method = _Method({'example_option': 'x', 'ksef_token': 'not mine'})
    assert method.options == {'example_option': 'x'}
    assert method.credentials is None
    assert method.required_libraries() == []
    assert _Method.LOGS_IN is True
