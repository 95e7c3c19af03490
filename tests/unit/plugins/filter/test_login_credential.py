# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""login_credential_inputs: the renewed pair goes in, every other input of the AWX credential stays."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.ksef.certificates.plugins.filter.login_credential import login_credential_inputs

CERT = '-----BEGIN CERTIFICATE-----\nMIIBnew\n-----END CERTIFICATE-----\n'
KEY = '-----BEGIN PRIVATE KEY-----\nMIGHnew\n-----END PRIVATE KEY-----\n'
# As GET /api/v2/credentials/ returns them: secrets read $encrypted$.
STORED = {
    'environment': 'test', 'api_url': 'https://ksef-proxy.example:8443/v2',
    'api_ca': '-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n',
    'context_type': 'nip', 'context_id': '1234563218',
    'auth_certificate': '-----BEGIN CERTIFICATE-----\nMIIBold\n-----END CERTIFICATE-----\n',
    'auth_private_key': '$encrypted$', 'auth_pkcs12': '$encrypted$', 'auth_passphrase': '$encrypted$',
    'auth_pkcs11_module': '/usr/lib/softhsm/libsofthsm2.so', 'auth_pkcs11_token_label': 'ksef',
    'auth_pkcs11_key_label': 'seal', 'auth_pkcs11_pin': '$encrypted$',
}


def test_the_new_pair_replaces_the_signer_and_everything_else_is_kept():
    inputs = login_credential_inputs(STORED, CERT, KEY)
    assert inputs['auth_certificate'] == CERT and inputs['auth_private_key'] == KEY
    assert inputs['auth_pkcs12'] == '' and inputs['auth_passphrase'] == ''
    unchanged = set(STORED) - {'auth_certificate', 'auth_private_key', 'auth_pkcs12', 'auth_passphrase'}
    assert dict((name, inputs[name]) for name in unchanged) == dict((name, STORED[name]) for name in unchanged)
    assert set(inputs) == set(STORED)


def test_the_stored_inputs_are_not_modified():
    stored = dict(STORED)
    login_credential_inputs(stored, CERT, KEY)
    assert stored == STORED


def test_inputs_never_set_are_not_added_except_the_pair():
    assert login_credential_inputs({'environment': 'prod', 'context_type': 'nip', 'context_id': '1234563218'}, CERT, KEY) == {
        'environment': 'prod', 'context_type': 'nip', 'context_id': '1234563218', 'auth_certificate': CERT,
        'auth_private_key': KEY}


def test_every_input_of_the_credential_type_is_kept_or_replaced_on_purpose():
    """A new input added to docs/awx/credential-type.yml is kept without a change here."""
    path = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'docs', 'awx', 'credential-type.yml')
    with open(path, encoding='utf-8') as handle:
        fields = [field['id'] for field in yaml.safe_load(handle)['inputs']['fields']]
    stored = dict((name, 'value-of-%s' % name) for name in fields)
    inputs = login_credential_inputs(stored, CERT, KEY)
    changed = sorted(name for name in fields if inputs[name] != stored[name])
    assert changed == ['auth_certificate', 'auth_passphrase', 'auth_pkcs12', 'auth_private_key']


@pytest.mark.parametrize('existing, certificate, key, message', [
    (None, CERT, KEY, 'expects the inputs of the AWX credential'),
    ([], CERT, KEY, 'expects the inputs of the AWX credential'),
    ({}, 'not pem', KEY, 'new certificate must be PEM'),
    ({}, CERT, None, 'new private key must be PEM'),
])
def test_bad_input_fails_with_what_was_expected(existing, certificate, key, message):
    with pytest.raises(AnsibleFilterError, match=message):
        login_credential_inputs(existing, certificate, key)
