# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""What every KSeF authentication method is: it declares its options, validates them and starts a login.

A method lives in a file of its own (_auth_method_*.py); _auth_methods.py lists them in the order of
priority and picks the one the options ask for; _auth.py (KsefAuthenticator) runs the login around it.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError

if TYPE_CHECKING:  # for the hints only: _connection imports the methods, so importing it at run time would be a cycle
    from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions

# What required_libraries() lists: (pip name, present, the import error when absent).
RequiredLibrary = Tuple[str, bool, Optional[BaseException]]

# KSeF tokens and access tokens (JWT) are printable ASCII without spaces. Anything else is refused before
# use: in an HTTP header it would make requests raise an exception that echoes the value.
TOKEN_PATTERN = re.compile(r'[\x21-\x7e]+')


def check_token(name: str, value: Optional[str]) -> None:
    """KsefInputError (without the value) when a given token is not printable ASCII without spaces."""
    if value is not None and not TOKEN_PATTERN.fullmatch(value):
        problem = 'is empty' if not value else 'contains whitespace, control or non-ASCII characters'
        raise KsefInputError('%s %s; a token is printable ASCII without spaces (a trailing newline from a file or '
                             'a variable is a common cause)' % (name, problem))


class AuthMethod:
    """One way to log in to KSeF.

    NAME      the method as modules report it (authentication_method)
    OPTIONS   its module options: name -> argspec entry (the KSEF_* fallback is added by _connection.py)
    LOGS_IN   False for a method that uses a token obtained elsewhere (no login, no session to close)
    """
    NAME = None
    OPTIONS = {}
    LOGS_IN = True

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.options = dict((name, params.get(name)) for name in self.OPTIONS)
        # The signer of a signature login (_credentials.SignerCredentials or _pkcs11.TokenSigner), once loaded.
        self.credentials = None

    @classmethod
    def applies(cls, params: Mapping[str, Any]) -> bool:
        """True when the options ask for this method."""
        raise NotImplementedError

    @classmethod
    def check_given(cls, params: Mapping[str, Any]) -> None:
        """Checks of this method's options that hold whenever they are given, used or not (KsefInputError)."""

    def validate(self) -> None:
        """Check this method's options once it is the one chosen (KsefInputError); no file is read, nothing sent."""

    def required_libraries(self) -> List[RequiredLibrary]:
        """[(pip name, present, import error)] of the Python libraries this method needs."""
        return []

    def prepare(self) -> None:
        """Load local material (signer files, a token in a device) before any API call."""

    def start(self, gateway: KsefAuthApi, challenge: Dict[str, Any], connection: 'ConnectionOptions', now: float) -> Dict[str, Any]:
        """Start a login for `challenge` (KsefAuthApi.challenge()) in the context of `connection`
        (ConnectionOptions); `now` is the wall-clock time (epoch seconds). Returns KSeF's answer:
        {'referenceNumber', 'authenticationToken': {'token'}}."""
        raise NotImplementedError
