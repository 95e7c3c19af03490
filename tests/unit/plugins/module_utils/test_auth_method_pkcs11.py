# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pkcs11AuthMethod: its options, their checks, and a login document signed in a SoftHSM2 token."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_pkcs11 import Pkcs11AuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_xades import XadesAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.softhsm import (  # pylint: disable=unused-import
    USER_PIN,
    make_seal_in_token,
    softhsm_fixture,  # noqa: F401 - registers the fixture 'softhsm'
)

CHALLENGE = {'challenge': '20260101-CR-0123456789-ABCDEF0123-4A', 'timestampMs': 1767268800123}
TOKEN_PARAMS = {'auth_pkcs11_module': '/usr/lib/softhsm/libsofthsm2.so', 'auth_pkcs11_token_label': 'seal-token',
                'auth_pkcs11_key_label': 'seal', 'auth_pkcs11_pin': USER_PIN}


def test_declares_its_options_beside_the_certificate_options():
    assert issubclass(Pkcs11AuthMethod, XadesAuthMethod)
    assert set(Pkcs11AuthMethod.OPTIONS) == {'auth_pkcs11_module', 'auth_pkcs11_token_label', 'auth_pkcs11_key_label',
                                             'auth_pkcs11_pin', 'auth_certificate_path', 'auth_certificate_content'}
    assert Pkcs11AuthMethod.OPTIONS['auth_pkcs11_pin']['no_log'] is True
    assert Pkcs11AuthMethod.NAME == 'xades'  # the same login, signed in the device
    assert Pkcs11AuthMethod.applies(TOKEN_PARAMS)
    assert [lib[0] for lib in Pkcs11AuthMethod(TOKEN_PARAMS).required_libraries()] == ['cryptography', 'PyKCS11', 'lxml']


@pytest.mark.parametrize('missing', ['auth_pkcs11_token_label', 'auth_pkcs11_key_label', 'auth_pkcs11_pin'])
def test_validate_needs_token_key_and_pin(missing):
    Pkcs11AuthMethod(TOKEN_PARAMS).validate()
    with pytest.raises(KsefInputError, match='auth_pkcs11_module needs %s' % missing):
        Pkcs11AuthMethod(dict(TOKEN_PARAMS, **{missing: None})).validate()


def test_start_signs_in_the_token(softhsm):  # noqa: F811 - pytest fixture injection
    from ansible_collections.ksef.certificates.plugins.module_utils import _pkcs11
    softhsm.init_token('seal-token')
    with _pkcs11.Pkcs11Token(softhsm.library, 'seal-token', USER_PIN) as setup:
        dummy, certificate = make_seal_in_token(setup, 'seal', 'ec')
    connection = ConnectionOptions.from_params(dict(TOKEN_PARAMS, auth_pkcs11_module=softhsm.library,
                                                    context_id=certs.TEST_NIP))
    method = connection.auth
    assert isinstance(method, Pkcs11AuthMethod)
    method.prepare()
    try:
        assert method.credentials.certificate.serial_number == certificate.serial_number
        script = HttpScript([Exchange('POST', '/auth/xades-signature', status=202, params={'verifyCertificateChain': 'false'},
                                      body=lambda body: b'<ds:SignatureValue>' in body and CHALLENGE['challenge'].encode() in body,
                                      reply={'referenceNumber': 'R', 'authenticationToken': {'token': 'OP'}})])
        gateway = KsefAuthApi(KsefHttpClient('https://ksef.invalid/v2', session=script.session()))
        assert method.start(gateway, CHALLENGE, connection, 0) == {'referenceNumber': 'R', 'authenticationToken': {'token': 'OP'}}
        script.verify()
    finally:
        method.credentials.close()
