# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The authentication methods, in their order of priority, and the choice among them."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Mapping

from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_access_token import AccessTokenAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_base import AuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_ksef_token import KsefTokenAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_pkcs11 import Pkcs11AuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_xades import (
    XadesAuthMethod,
    has_certificate,
    has_private_key,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError

# A given access token wins over everything; a key in a token over key files; a signature over a KSeF token.
AUTH_METHODS = (AccessTokenAuthMethod, Pkcs11AuthMethod, XadesAuthMethod, KsefTokenAuthMethod)


def _auth_options():
    options = {}
    for method in AUTH_METHODS:
        options.update(method.OPTIONS)
    return options


# Every method's options by name (the argspec entries, without fallbacks).
AUTH_OPTIONS = _auth_options()


def check_given_options(params: Mapping[str, Any]) -> None:
    """Each method checks the options of it that are given, used or not (a token must never reach a header
    malformed); KsefInputError on the first problem."""
    for method in AUTH_METHODS:
        method.check_given(params)


def select_auth_method(params: Mapping[str, Any]) -> AuthMethod:
    """The method the options ask for, validated; KsefInputError when none fits or its options do not."""
    if not params.get('access_token') and has_private_key(params) and not has_certificate(params):
        raise KsefInputError('a signer private key was given without its certificate: set auth_certificate_path or '
                             'auth_certificate_content')
    for method in AUTH_METHODS:
        if method.applies(params):
            chosen = method(params)
            chosen.validate()
            return chosen
    raise KsefInputError('no KSeF credential given: set auth_certificate_path or auth_certificate_content '
                         '(with the private key), auth_pkcs11_module (a key in a token), ksef_token, or access_token')
