# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The certificate a run logged in with, when ksef_certificate renews it (the self-renewing login).

Revoking the superseded login certificate is only safe once the new certificate and key are where the
next login reads them. ksef_certificate writes its files before it revokes, so that holds when the login
reads the declared files themselves. It does not hold when the login came from anywhere else: inline
content, or files that are not the declared ones (an AWX/AAP credential, whose file injectors write
temporary copies for one job). Then the superseded certificate stays active, and the run says why; the
provision playbook can update the AWX credential and revoke it afterwards (docs/awx/README.md).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
from typing import Any, Mapping, Optional


def _same_file(first, second):
    if not first or not second:
        return False
    try:
        if os.path.exists(first) and os.path.exists(second):
            return os.path.samefile(first, second)
    except OSError:
        pass
    return os.path.realpath(first) == os.path.realpath(second)


class LoginCertificate:
    """Serial number of the login certificate and the files the next login reads (None: inline content)."""

    def __init__(self, serial_number: str, certificate_path: Optional[str] = None, private_key_path: Optional[str] = None,
                 holds_key: bool = False, token_label: Optional[str] = None, key_label: Optional[str] = None) -> None:
        self.serial_number = serial_number
        self.certificate_path = certificate_path
        self.private_key_path = private_key_path
        # The certificate file also holds the key (a PKCS#12 bundle or a PEM with both).
        self.holds_key = holds_key
        # A PKCS#11 login: the key (and, without certificate_path, the certificate) is read from this token.
        self.token_label = token_label
        self.key_label = key_label

    @classmethod
    def from_params(cls, params: Mapping[str, Any], serial_number: str) -> 'LoginCertificate':
        """From the connection options of a signature login; the serial in KSeF's notation."""
        if params.get('auth_pkcs11_module'):
            return cls(serial_number, certificate_path=params.get('auth_certificate_path') or None,
                       token_label=params.get('auth_pkcs11_token_label'), key_label=params.get('auth_pkcs11_key_label'))
        return cls(serial_number, certificate_path=params.get('auth_certificate_path') or None,
                   private_key_path=params.get('auth_private_key_path') or None,
                   holds_key=bool(params.get('auth_certificate_path')) and not params.get('auth_private_key_path')
                   and not params.get('auth_private_key_content'))

    # decl is an _engine.declaration.Declaration, typed Any here: this flat module does not import the engine.
    def reaches_next_login(self, decl: Any) -> bool:
        """True when installing `decl` puts the new pair where the next login reads it."""
        if self.token_label is not None:
            # key_backend pkcs11 keeps the new key under the same label in the token, the certificate beside it
            # and in certificate_path.
            return (getattr(decl, 'key_backend', None) == 'pkcs11' and decl.pkcs11_token_label == self.token_label
                    and decl.pkcs11_key_label == self.key_label
                    and (self.certificate_path is None or _same_file(self.certificate_path, decl.certificate_path)))
        if self.certificate_path is None:
            return False
        if self.holds_key:
            return _same_file(self.certificate_path, decl.pkcs12_path)
        return (_same_file(self.certificate_path, decl.certificate_path)
                and _same_file(self.private_key_path, decl.private_key_path))

    def why_kept(self, decl: Any) -> str:
        """Why the superseded login certificate is not revoked: the sentence for the warning."""
        if self.token_label is not None:
            source = 'the login uses key %s of token %s, which this task does not write' % (self.key_label, self.token_label)
        elif self.certificate_path is None:
            source = 'the login was read from inline content (auth_certificate_content, KSEF_AUTH_CERTIFICATE_CONTENT)'
        else:
            written = [path for path in (decl.certificate_path, decl.private_key_path, decl.pkcs12_path) if path]
            source = 'the login reads %s, not the files this task writes (%s)' % (
                self.certificate_path, ', '.join(written) or 'none')
        return ('Certificate %s, which this run logged in with, was superseded by the renewal of %s but not revoked: '
                '%s, so the next login would use a revoked certificate. Put the new certificate and key where the '
                'login reads them (for an AWX/AAP credential, the provision playbook can update it: '
                'docs/awx/README.md), then revoke %s with ksef_certificate_revoke.'
                % (self.serial_number, decl.label, source, self.serial_number))
