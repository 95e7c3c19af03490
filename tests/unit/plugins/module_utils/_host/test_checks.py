# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._host import checks as _deploy_checks


@pytest.mark.parametrize('value, problem', [
    (u'Zażółć $(x) `y` "q" \\ $', None),
    ('line\n', 'control character U+000A at position 5'),
    ('tab\there', 'control character U+0009 at position 4'),
    (u'c1\x85', 'control character U+0085'),
    (u'sep\u2028', 'control character U+2028'),
    ('', 'must not be empty'),
    (5, 'must be a string'),
])
def test_text_problem(value, problem):
    found = _deploy_checks.text_problem(value, 'The value')
    if problem is None:
        assert found is None
    else:
        assert problem in found


def test_passphrase_problem_never_quotes_the_passphrase():
    assert _deploy_checks.passphrase_problem(u'$(touch M3) "\' \\ $HOME') is None
    message = _deploy_checks.passphrase_problem('secret-part\nrest')
    assert 'U+000A' in message and 'secret-part' not in message
    assert 'non-empty' in _deploy_checks.passphrase_problem('')


@pytest.mark.parametrize('data, expected', [
    ({'commonName': 'Firma', 'countryName': 'PL', 'serialNumber': 'TINPL-123'}, []),
    ({'common_name': 'Firma'}, []),
    ({'commonName': 'Firma\n[ default ]'}, ['Enrollment data field commonName contains the control character U+000A']),
    ({'commonName': 'Firma', 'countryName': u'PŁ'}, ['PrintableString']),
    ({'commonName': ''}, ['none of the subject fields']),
    ('not a dict', ['must be a dictionary']),
])
def test_enrollment_data_problems(data, expected):
    found = _deploy_checks.enrollment_data_problems(data)
    assert len(found) == len(expected)
    for problem, words in zip(found, expected):
        assert words in problem
