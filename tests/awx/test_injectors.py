# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The credential type rendered as AWX renders it (awx_injectors.py), for each way to give the signer."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))
import awx_injectors  # noqa: E402 pylint: disable=wrong-import-position

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BASE = {'environment': 'prod', 'context_type': 'nip', 'context_id': '1234563218'}


@pytest.fixture(scope='module')
def credential_type():
    with open(os.path.join(REPO, 'docs', 'awx', 'credential-type.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def read(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def test_pem_signer(credential_type, tmp_path):
    inputs = dict(BASE, auth_certificate='CERT PEM\n', auth_private_key='KEY PEM\n', auth_passphrase='secret')
    env = awx_injectors.render(credential_type, inputs, str(tmp_path))['env']
    assert env['KSEF_ENVIRONMENT'] == 'prod' and env['KSEF_API_URL'] == '' and env['KSEF_CA_PATH'] == ''
    assert read(env['KSEF_AUTH_CERTIFICATE_PATH']) == 'CERT PEM\n'
    assert read(env['KSEF_AUTH_PRIVATE_KEY_PATH']) == 'KEY PEM\n'
    assert env['KSEF_AUTH_PASSPHRASE'] == 'secret'
    assert os.path.dirname(env['KSEF_AUTH_CERTIFICATE_PATH']) == str(tmp_path / 'env')


def test_pkcs12_signer_without_passphrase_and_with_a_private_endpoint(credential_type, tmp_path):
    inputs = dict(BASE, auth_pkcs12='TUlJRQ==', auth_passphrase='', api_url='https://ksef.example/v2', api_ca='CA PEM\n')
    env = awx_injectors.render(credential_type, inputs, str(tmp_path))['env']
    assert read(env['KSEF_AUTH_CERTIFICATE_PATH']) == 'TUlJRQ=='
    # Empty values: the modules treat them as unset (api_url replaces the environment).
    assert env['KSEF_AUTH_PRIVATE_KEY_PATH'] == '' and env['KSEF_AUTH_PASSPHRASE'] == '' and env['KSEF_ENVIRONMENT'] == ''
    assert env['KSEF_API_URL'] == 'https://ksef.example/v2' and read(env['KSEF_CA_PATH']) == 'CA PEM\n'


def test_pkcs11_signer(credential_type, tmp_path):
    inputs = dict(BASE, auth_pkcs11_module='/usr/lib/softhsm/libsofthsm2.so', auth_pkcs11_token_label='seal',
                  auth_pkcs11_key_label='seal-key', auth_pkcs11_pin='1234')
    env = awx_injectors.render(credential_type, inputs, str(tmp_path))['env']
    assert env['KSEF_AUTH_PKCS11_MODULE'] == '/usr/lib/softhsm/libsofthsm2.so' and env['KSEF_AUTH_PKCS11_PIN'] == '1234'
    assert env['KSEF_AUTH_PKCS11_TOKEN_LABEL'] == 'seal' and env['KSEF_AUTH_PKCS11_KEY_LABEL'] == 'seal-key'
    # the certificate from the token: no signer file
    assert env['KSEF_AUTH_CERTIFICATE_PATH'] == '' and env['KSEF_AUTH_PRIVATE_KEY_PATH'] == ''
    with_pem = awx_injectors.render(credential_type, dict(inputs, auth_certificate='CERT PEM\n'), str(tmp_path))['env']
    assert read(with_pem['KSEF_AUTH_CERTIFICATE_PATH']) == 'CERT PEM\n' and with_pem['KSEF_AUTH_PRIVATE_KEY_PATH'] == ''


def test_renderer_refuses_what_awx_refuses(credential_type, tmp_path):
    with pytest.raises(awx_injectors.InjectorError, match='required'):
        awx_injectors.render(credential_type, {'environment': 'test'}, str(tmp_path))
    with pytest.raises(awx_injectors.InjectorError, match='not defined'):
        awx_injectors.render(credential_type, dict(BASE, token='x'), str(tmp_path))
    mixed = {'inputs': {'fields': [{'id': 'a', 'type': 'string'}]},
             'injectors': {'file': {'template': '{{ a }}', 'template.a': '{{ a }}'}}}
    with pytest.raises(awx_injectors.InjectorError, match='mix'):
        awx_injectors.render(mixed, {'a': 'x'}, str(tmp_path))
    reserved = {'inputs': {'fields': [{'id': 'a', 'type': 'string'}]}, 'injectors': {'env': {'ANSIBLE_X': '{{ a }}'}}}
    with pytest.raises(awx_injectors.InjectorError, match='ANSIBLE_X'):
        awx_injectors.render(reserved, {'a': 'x'}, str(tmp_path))
