# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Authentication with a XAdES signature by a key that stays in a PKCS#11 token (smart card, USB token, HSM)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, List, Mapping

from ansible_collections.ksef.certificates.plugins.module_utils import _credentials, _pkcs11, _xades
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_base import RequiredLibrary
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_xades import CERTIFICATE_OPTIONS, XadesAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError

TOKEN_OPTIONS = ('auth_pkcs11_token_label', 'auth_pkcs11_key_label', 'auth_pkcs11_pin')


class Pkcs11AuthMethod(XadesAuthMethod):
    """The XAdES login of XadesAuthMethod, signed inside the token; the certificate from the options or the token."""
    OPTIONS = dict(
        CERTIFICATE_OPTIONS,
        auth_pkcs11_module=dict(type='path'),
        auth_pkcs11_token_label=dict(type='str', no_log=False),
        auth_pkcs11_key_label=dict(type='str', no_log=False),
        auth_pkcs11_pin=dict(type='str', no_log=True),
    )

    @classmethod
    def applies(cls, params: Mapping[str, Any]) -> bool:
        return bool(params.get('auth_pkcs11_module'))

    def validate(self) -> None:
        missing = [name for name in TOKEN_OPTIONS if not self.options[name]]
        if missing:
            raise KsefInputError('auth_pkcs11_module needs %s' % ', '.join(missing))

    def required_libraries(self) -> List[RequiredLibrary]:
        return [('cryptography', _credentials.HAS_CRYPTOGRAPHY, _credentials.CRYPTOGRAPHY_IMPORT_ERROR),
                (_pkcs11.PYKCS11_PIP_NAME, _pkcs11.HAS_PYKCS11, _pkcs11.PYKCS11_IMPORT_ERROR),
                ('lxml', _xades.HAS_LXML, _xades.LXML_IMPORT_ERROR)]

    def prepare(self) -> None:
        # The key stays in the token; opening it here reports a wrong PIN or label before any API call.
        self.credentials = _credentials.load_token_signer(
            module_path=self.options['auth_pkcs11_module'],
            token_label=self.options['auth_pkcs11_token_label'],
            key_label=self.options['auth_pkcs11_key_label'],
            pin=self.options['auth_pkcs11_pin'],
            certificate_path=self.options['auth_certificate_path'],
            certificate_content=self.options['auth_certificate_content'],
        )
