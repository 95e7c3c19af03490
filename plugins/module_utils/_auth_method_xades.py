# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Authentication with a XAdES signature by a signer certificate and its private key (files or content)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import TYPE_CHECKING, Any, Dict, List, Mapping

from ansible_collections.ksef.certificates.plugins.module_utils import _credentials, _xades
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_base import AuthMethod, RequiredLibrary

if TYPE_CHECKING:  # for the hints only: _connection imports the methods (a cycle at run time)
    from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions

# The signer certificate options; a PKCS#11 login (_auth_method_pkcs11.py) takes the certificate from them too.
CERTIFICATE_OPTIONS = {
    'auth_certificate_path': dict(type='path'),
    # May be a Base64 PKCS#12 bundle, which holds the private key.
    'auth_certificate_content': dict(type='str', no_log=True),
}


def has_certificate(params: Mapping[str, Any]) -> bool:
    return bool(params.get('auth_certificate_path') or params.get('auth_certificate_content'))


def has_private_key(params: Mapping[str, Any]) -> bool:
    return bool(params.get('auth_private_key_path') or params.get('auth_private_key_content'))


class XadesAuthMethod(AuthMethod):
    """Sign KSeF's AuthTokenRequest (XAdES) with the signer's key; KSeF checks the certificate."""
    NAME = 'xades'
    OPTIONS = dict(
        CERTIFICATE_OPTIONS,
        auth_private_key_path=dict(type='path', no_log=False),
        auth_private_key_content=dict(type='str', no_log=True),
        auth_passphrase=dict(type='str', no_log=True),
    )

    @classmethod
    def applies(cls, params: Mapping[str, Any]) -> bool:
        return has_certificate(params)

    def required_libraries(self) -> List[RequiredLibrary]:
        return [('cryptography', _credentials.HAS_CRYPTOGRAPHY, _credentials.CRYPTOGRAPHY_IMPORT_ERROR),
                ('lxml', _xades.HAS_LXML, _xades.LXML_IMPORT_ERROR)]

    def prepare(self) -> None:
        # Loading here reports credential problems before any API call.
        self.credentials = _credentials.load_signer_credentials(
            certificate_path=self.options['auth_certificate_path'],
            certificate_content=self.options['auth_certificate_content'],
            private_key_path=self.options['auth_private_key_path'],
            private_key_content=self.options['auth_private_key_content'],
            passphrase=self.options['auth_passphrase'],
        )

    def start(self, gateway: KsefAuthApi, challenge: Dict[str, Any], connection: 'ConnectionOptions', now: float) -> Dict[str, Any]:
        document = _xades.signed_auth_token_request(
            self.credentials, challenge['challenge'], connection.context_type, connection.context_id,
            connection.subject_identifier_type, connection.allowed_ips)
        return gateway.xades_signature(document, connection.verify_certificate_chain)


class SignerXadesAuthMethod(XadesAuthMethod):
    """The XAdES login with a signer already in hand (a successor's key and certificate, or a token key)."""

    def __init__(self, signer: Any) -> None:
        XadesAuthMethod.__init__(self, {})
        self.credentials = signer

    def prepare(self) -> None:
        """The signer was loaded by the caller."""
