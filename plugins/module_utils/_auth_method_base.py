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

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError

# KSeF tokens and access tokens (JWT) are printable ASCII without spaces. Anything else is refused before
# use: in an HTTP header it would make requests raise an exception that echoes the value.
TOKEN_PATTERN = re.compile(r'[\x21-\x7e]+')


def check_token(name, value):
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

    def __init__(self, params):
        self.options = dict((name, params.get(name)) for name in self.OPTIONS)
        # The signer of a signature login (_credentials.SignerCredentials or _pkcs11.TokenSigner), once loaded.
        self.credentials = None

    @classmethod
    def applies(cls, params):
        """True when the options ask for this method."""
        raise NotImplementedError

    @classmethod
    def check_given(cls, params):
        """Checks of this method's options that hold whenever they are given, used or not (KsefInputError)."""

    def validate(self):
        """Check this method's options once it is the one chosen (KsefInputError); no file is read, nothing sent."""

    def required_libraries(self):
        """[(pip name, present, import error)] of the Python libraries this method needs."""
        return []

    def prepare(self):
        """Load local material (signer files, a token in a device) before any API call."""

    def start(self, gateway, challenge, connection, now):
        """Start a login for `challenge` (KsefAuthApi.challenge()) in the context of `connection`
        (ConnectionOptions); `now` is the wall-clock time (epoch seconds). Returns KSeF's answer:
        {'referenceNumber', 'authenticationToken': {'token'}}."""
        raise NotImplementedError
