# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""XadesAuthMethod alone: its options, the signer it loads, and the one request its start() sends."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_xades import XadesAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefCredentialError
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript

CHALLENGE = {'challenge': '20260101-CR-0123456789-ABCDEF0123-4A', 'timestampMs': 1767268800123}
REF = '20260101-AU-2DFC46C000-3AC6D5877F-D4'


@pytest.fixture
def signer(tmp_path):
    key = certs.make_key('ec')
    cert = certs.make_seal_certificate(key)
    (tmp_path / 'c.pem').write_bytes(certs.cert_pem(cert))
    (tmp_path / 'k.pem').write_bytes(certs.key_bytes(key, passphrase='pw'))
    return {'auth_certificate_path': str(tmp_path / 'c.pem'), 'auth_private_key_path': str(tmp_path / 'k.pem'),
            'auth_passphrase': 'pw', 'context_id': certs.TEST_NIP}, cert


def test_declares_its_options():
    assert set(XadesAuthMethod.OPTIONS) == {'auth_certificate_path', 'auth_certificate_content', 'auth_private_key_path',
                                            'auth_private_key_content', 'auth_passphrase'}
    secrets = {name for name, option in XadesAuthMethod.OPTIONS.items() if option.get('no_log')}
    assert secrets == {'auth_certificate_content', 'auth_private_key_content', 'auth_passphrase'}
    assert XadesAuthMethod.applies({'auth_certificate_content': 'PFX'})
    assert not XadesAuthMethod.applies({'auth_private_key_path': '/k.pem'})
    assert [name for name, dummy, dummy2 in XadesAuthMethod({}).required_libraries()] == ['cryptography', 'lxml']


def test_prepare_loads_the_signer_before_any_call(signer, tmp_path):
    params, cert = signer
    method = XadesAuthMethod(params)
    method.prepare()
    assert method.credentials.certificate.serial_number == cert.serial_number
    broken = XadesAuthMethod(dict(params, auth_passphrase='Not-The-Passphrase-123'))
    with pytest.raises(KsefCredentialError, match='passphrase') as info:
        broken.prepare()
    assert 'Not-The-Passphrase-123' not in str(info.value)
    assert broken.credentials is None


@pytest.mark.parametrize('overrides, verify_chain, context', [
    ({}, 'false', '<Nip>%s</Nip>' % certs.TEST_NIP),
    ({'environment': 'demo'}, 'true', '<Nip>%s</Nip>' % certs.TEST_NIP),
    ({'context_type': 'internal_id', 'context_id': certs.TEST_NIP + '-12345'}, 'false',
     '<InternalId>%s-12345</InternalId>' % certs.TEST_NIP),
])
def test_start_sends_the_signed_request_for_the_challenge(signer, overrides, verify_chain, context):
    params, cert = signer
    params.update(overrides)
    connection = ConnectionOptions.from_params(params)
    method = connection.auth
    assert isinstance(method, XadesAuthMethod)
    method.prepare()

    def check(body):
        text = body.decode('utf-8')
        return CHALLENGE['challenge'] in text and context in text and '<ds:SignatureValue>' in text

    script = HttpScript([Exchange('POST', '/auth/xades-signature', status=202, params={'verifyCertificateChain': verify_chain},
                                  headers={'Content-Type': 'application/xml'}, body=check,
                                  reply={'referenceNumber': REF, 'authenticationToken': {'token': 'OP'}})])
    gateway = KsefAuthApi(KsefHttpClient('https://ksef.invalid/v2', session=script.session()))
    assert method.start(gateway, CHALLENGE, connection, 0)['referenceNumber'] == REF
    script.verify()
