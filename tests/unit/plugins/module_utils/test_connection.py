# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.module_utils.basic import AnsibleFallbackNotFound

from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_access_token import AccessTokenAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_ksef_token import KsefTokenAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_pkcs11 import Pkcs11AuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_xades import XadesAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._connection import (
    ConnectionOptions,
    base_url,
    ksef_argument_spec,
    nip_is_valid,
    nonempty_env_fallback,
    transport_warnings,
    validate_connection_params,
    validate_context,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs

SECRET_OPTIONS = {'auth_certificate_content', 'auth_private_key_content', 'auth_passphrase', 'auth_pkcs11_pin', 'ksef_token',
                  'access_token'}


def test_argument_spec_secrets_and_env_fallbacks():
    spec = ksef_argument_spec()
    assert {name for name, option in spec.items() if option.get('no_log')} == SECRET_OPTIONS
    assert spec['auth_private_key_path']['no_log'] is False
    assert spec['auth_pkcs11_key_label']['no_log'] is False
    assert spec['auth_pkcs11_token_label']['no_log'] is False
    for name, option in spec.items():
        fallback_function, env_names = option['fallback']
        expected = 'KSEF_TOKEN' if name == 'ksef_token' else 'KSEF_' + name.upper()
        assert env_names == [expected]
    assert 'default' not in spec['environment']  # so that environment/api_url can be mutually exclusive


@pytest.mark.parametrize('nip, valid', [
    ('1234563218', True),
    ('5260250274', True),
    ('1234563219', False),
    ('0234563218', False),
    ('123456321', False),
    ('12345632181', False),
    ('1004563210', False),  # second/third digits 00 do not match the XSD pattern
    (None, False),
])
def test_nip_is_valid(nip, valid):
    assert nip_is_valid(nip) is valid


@pytest.mark.parametrize('context_type, context_id', [
    ('nip', certs.TEST_NIP),
    ('internal_id', certs.TEST_NIP + '-12345'),
    ('nip_vat_ue', certs.TEST_NIP + '-DE123456789'),
    ('peppol_id', 'PPL000123'),
])
def test_valid_contexts(context_type, context_id):
    validate_context(context_type, context_id)


@pytest.mark.parametrize('context_type, context_id', [
    ('nip', '123'),
    ('internal_id', certs.TEST_NIP),
    ('internal_id', certs.TEST_NIP + '-1234'),
    ('nip_vat_ue', '1234563219-DE123456789'),
    ('nip_vat_ue', certs.TEST_NIP),
    ('peppol_id', 'ppl000123'),
])
def test_invalid_contexts(context_type, context_id):
    with pytest.raises(KsefInputError) as info:
        validate_context(context_type, context_id)
    assert repr(context_id) in str(info.value)


def base_params(**overrides):
    params = dict((name, option.get('default')) for name, option in ksef_argument_spec().items())
    params.update(overrides)
    return params


@pytest.mark.parametrize('overrides, message', [
    ({'context_id': certs.TEST_NIP}, 'no KSeF credential given'),
    ({'ksef_token': 't'}, 'context_id is required'),
    ({'ksef_token': 't', 'context_id': '1'}, 'not a valid NIP'),
    ({'auth_private_key_path': '/k.pem', 'context_id': certs.TEST_NIP}, 'without its certificate'),
    ({'ksef_token': 't', 'context_id': certs.TEST_NIP, 'timeout': 0}, 'timeout must be greater than 0'),
    ({'ksef_token': 't', 'context_id': certs.TEST_NIP, 'max_retries': -1}, 'max_retries must not be negative'),
    ({'ksef_token': 't', 'context_id': certs.TEST_NIP, 'api_url': 'ftp://x'}, 'api_url must be an http(s) URL'),
    ({'ksef_token': 't', 'context_id': certs.TEST_NIP, 'api_url': 'https://k.invalid/v2?x=1'}, 'has a query (?) or fragment'),
    ({'ksef_token': 't', 'context_id': certs.TEST_NIP, 'api_url': 'https://k.invalid/v2#top'}, 'has a query (?) or fragment'),
    ({'ksef_token': 't', 'context_id': certs.TEST_NIP, 'auth_allowed_ips': ['a.b.c.d']}, 'auth_allowed_ips entry'),
])
def test_validate_connection_params_rejects(overrides, message):
    with pytest.raises(KsefInputError) as info:
        validate_connection_params(base_params(**overrides))
    assert message in str(info.value)


def test_validate_connection_params_accepts():
    validate_connection_params(base_params(ksef_token='t', context_id=certs.TEST_NIP, auth_allowed_ips=['192.0.2.1']))
    validate_connection_params(base_params(access_token='a'))  # no context needed with an access token
    validate_connection_params(base_params(), login=False)


def test_base_url():
    assert base_url(base_params()) == 'https://api-test.ksef.mf.gov.pl/v2'
    assert base_url(base_params(environment='demo')) == 'https://api-demo.ksef.mf.gov.pl/v2'
    assert base_url(base_params(environment='prod')) == 'https://api.ksef.mf.gov.pl/v2'
    assert base_url(base_params(api_url='http://127.0.0.1:8443/v2/')) == 'http://127.0.0.1:8443/v2'


@pytest.mark.parametrize('missing', ['auth_pkcs11_token_label', 'auth_pkcs11_key_label', 'auth_pkcs11_pin'])
def test_a_pkcs11_login_needs_token_key_and_pin(missing):
    params = dict(auth_pkcs11_module='/usr/lib/softhsm/libsofthsm2.so', auth_pkcs11_token_label='seal',
                  auth_pkcs11_key_label='seal', auth_pkcs11_pin='123456', context_type='nip', context_id='1234563218')
    validate_connection_params(params)
    params[missing] = None
    with pytest.raises(KsefInputError, match='auth_pkcs11_module needs %s' % missing):
        validate_connection_params(params)


def test_empty_environment_variables_count_as_unset(monkeypatch):
    """AWX/AAP env injectors render an optional credential input left empty as ''."""
    monkeypatch.setenv('KSEF_ENVIRONMENT', '')
    monkeypatch.setenv('KSEF_API_URL', 'https://ksef.example/v2')
    with pytest.raises(AnsibleFallbackNotFound):
        nonempty_env_fallback('KSEF_ENVIRONMENT')
    assert nonempty_env_fallback('KSEF_ENVIRONMENT', 'KSEF_API_URL') == 'https://ksef.example/v2'


def test_options_are_typed_and_defaults_written_once():
    options = ConnectionOptions.from_params({'ksef_token': 't', 'context_id': certs.TEST_NIP})
    assert options.base_url == 'https://api-test.ksef.mf.gov.pl/v2'
    assert (options.timeout, options.max_retries, options.max_retry_wait) == (30, 5, 60)
    assert options.validate_certs is True
    assert options.context_type == 'nip'
    assert options.context == 'nip %s' % certs.TEST_NIP
    assert options.subject_identifier_type == 'certificate_subject'
    assert options.verify_certificate_chain is False  # TEST, the default environment
    assert isinstance(options.auth, KsefTokenAuthMethod)


@pytest.mark.parametrize('overrides, expected', [
    ({'environment': 'test'}, False),
    ({'environment': 'demo'}, True),
    ({'api_url': 'https://emulator.invalid/v2'}, True),
    ({'environment': 'test', 'verify_certificate_chain': True}, True),
    ({'environment': 'prod', 'verify_certificate_chain': False}, False),
])
def test_verify_certificate_chain_is_resolved_once(overrides, expected):
    assert ConnectionOptions(base_params(**overrides)).verify_certificate_chain is expected


@pytest.mark.parametrize('overrides, method', [
    ({'access_token': 'a', 'ksef_token': 't', 'auth_certificate_path': '/c.pem'}, AccessTokenAuthMethod),
    ({'auth_pkcs11_module': '/p.so', 'auth_pkcs11_token_label': 't', 'auth_pkcs11_key_label': 'k',
      'auth_pkcs11_pin': '1', 'auth_certificate_path': '/c.pem', 'ksef_token': 't'}, Pkcs11AuthMethod),
    ({'auth_certificate_path': '/c.pem', 'auth_private_key_path': '/k.pem', 'ksef_token': 't'}, XadesAuthMethod),
    ({'auth_certificate_content': 'PFX', 'ksef_token': 't'}, XadesAuthMethod),
    ({'ksef_token': 't'}, KsefTokenAuthMethod),
])
def test_the_method_is_chosen_by_priority(overrides, method):
    options = validate_connection_params(base_params(context_id=certs.TEST_NIP, **overrides))
    assert type(options.auth) is method  # pylint: disable=unidiomatic-typecheck


def test_no_method_without_login_and_tokens_still_checked():
    assert validate_connection_params(base_params(), login=False).auth is None
    with pytest.raises(KsefInputError, match='access_token contains whitespace'):
        validate_connection_params(base_params(access_token='a b'), login=False)
    # An unused token is checked too: it must never reach a header malformed.
    with pytest.raises(KsefInputError, match='ksef_token contains whitespace'):
        validate_connection_params(base_params(access_token='a', ksef_token='t\n'))


def test_a_given_access_token_needs_no_context_but_a_login_checks_it():
    assert validate_connection_params(base_params(access_token='a', context_id='bad')).auth.LOGS_IN is False
    with pytest.raises(KsefInputError, match='is not a valid NIP'):
        validate_connection_params(base_params(ksef_token='t', context_id='bad'))


def test_transport_warnings(monkeypatch):
    for name in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):
        monkeypatch.delenv(name, raising=False)
    assert transport_warnings(base_params()) == []
    assert 'plain http' in transport_warnings(base_params(api_url='http://127.0.0.1:1/v2', allow_insecure_http=True))[0]
    assert 'validate_certs is false' in transport_warnings(base_params(validate_certs=False))[0]
