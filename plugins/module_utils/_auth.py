# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""KsefAuthenticator: the login around an authentication method, the session's tokens, refresh and close."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import copy
import datetime
import json
import time

from ansible_collections.ksef.certificates.plugins.module_utils._api import AUTH_TOKEN_REDEEM, KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_xades import SignerXadesAuthMethod
from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefAuthError,
    KsefError,
    KsefTimeoutError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._rules import format_datetime, parse_datetime_or_none

# Refresh the access token when less than this many seconds remain.
REFRESH_MARGIN = 60
POLL_INTERVAL = 1.0
POLL_TIMEOUT = 120.0

AUTH_STATUS_HINTS = {
    415: 'The signer has no permissions in context %(context)s: grant the signer (its NIP/PESEL, or its certificate '
         'fingerprint with auth_subject_identifier_type=certificate_fingerprint) a permission in this context, '
         'or check context_type/context_id',
    425: 'The authentication was revoked; log in again',
    450: 'The KSeF token or challenge was rejected (invalid, inactive, revoked or expired token); check ksef_token',
    460: 'KSeF rejected the signer certificate (invalid, untrusted chain, revoked or suspended); self-signed '
         'certificates work only on the test environment with verify_certificate_chain=false',
    470: 'The authentication means belong to a deceased person',
    480: 'Authentication is blocked because of a suspected security incident; contact the Ministry of Finance',
    500: 'Unknown KSeF error; try again later',
    550: 'The operation was cancelled by KSeF; try again',
}


def jwt_expiry(token):
    """The exp claim of a JWT as epoch seconds, or None (the signature is not checked: KSeF is the authority)."""
    try:
        payload = token.split('.')[1]
        payload += '=' * (-len(payload) % 4)
        exp = json.loads(base64.urlsafe_b64decode(payload.encode('ascii')).decode('utf-8')).get('exp')
        return float(exp) if exp is not None else None
    except (IndexError, ValueError, TypeError, AttributeError, UnicodeDecodeError):
        return None


def token_expiry(token, valid_until=None):
    """Expiry in epoch seconds from validUntil, else from the JWT exp claim, else None."""
    parsed = parse_datetime_or_none(valid_until)
    if parsed is not None:
        return parsed.timestamp()
    return jwt_expiry(token) if token else None


def _iso(epoch):
    if epoch is None:
        return None
    return format_datetime(datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc))


class KsefAuthenticator:
    """Logs in with one authentication method (_auth_methods.py) and keeps the session's tokens for a run."""

    def __init__(self, client, options, poll_interval=POLL_INTERVAL, poll_timeout=POLL_TIMEOUT, wall_clock=time.time):
        """`options`: ConnectionOptions, or a dict of module options (validated here then)."""
        self.client = client
        self.gateway = KsefAuthApi(client)
        if not isinstance(options, ConnectionOptions):
            options = ConnectionOptions.from_params(options)
        self.options = options
        self.auth = options.auth
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.wall_clock = wall_clock
        self.reference_number = None
        self.authentication_method = None
        self._access_token = None
        self._access_expiry = None
        self._refresh_token = None
        self._refresh_expiry = None
        self._opened = False
        if not self.auth.LOGS_IN:
            self._access_token = self.auth.token
            self._access_expiry = jwt_expiry(self._access_token)
        # Loading the signer here reports credential problems before any API call.
        self.auth.prepare()

    # -- public ------------------------------------------------------------------------------------
    @property
    def method(self):
        """'xades', 'ksef_token' or 'access_token'."""
        return self.auth.NAME

    @property
    def credentials(self):
        """The signer of a signature login, else None."""
        return self.auth.credentials

    @property
    def session_opened(self):
        """True when this object logged in (and so owns a session to close)."""
        return self._opened

    def access_token(self):
        """A valid access token: logs in lazily and refreshes it when less than a minute is left."""
        if not self.auth.LOGS_IN:
            return self._access_token
        if self._access_token is None:
            self.login()
        elif self._expires_soon(self._access_expiry):
            self.refresh()
        return self._access_token

    def handle_unauthorized(self):
        """After a 401: get a new access token once. False when that is impossible (given access_token)."""
        if not self.auth.LOGS_IN:
            return False
        if self._refresh_token and not self._expires_soon(self._refresh_expiry):
            self.refresh()
        else:
            self.login()
        return True

    def login(self):
        """challenge -> the method's start (XAdES or KSeF token) -> poll the auth operation -> redeem tokens."""
        if not self.auth.LOGS_IN:
            return
        challenge = self.gateway.challenge()
        self.complete_login(self.auth.start(self.gateway, challenge, self.options, self.wall_clock()))

    def complete_login(self, init):
        """The second half of a login whose start was sent (init: KSeF's answer to it, referenceNumber and
        authenticationToken): poll the auth operation to status 200, redeem the tokens. A login signed elsewhere
        (a key kept on a managed host, _engine/remote_proof.py) sends its start itself and ends here."""
        self.reference_number = init.get('referenceNumber')
        operation_token = (init.get('authenticationToken') or {}).get('token')
        self._wait_for_authentication(operation_token)
        self._store_tokens(self.gateway.redeem(operation_token))
        self._opened = True

    @classmethod
    def certificate_owner(cls, client, connection, auth_method, **kwargs):
        """An authenticator on `client` and `connection` that logs in with `auth_method` as the owner of its
        certificate (a successor's proof). The subject is read from the certificate (certificate_subject): a KSeF
        certificate carries the NIP or PESEL of its owner, while a fingerprint-based login would need permissions
        granted to the new fingerprint."""
        options = copy.copy(connection)
        options.auth = auth_method
        options.subject_identifier_type = 'certificate_subject'
        return cls(client, options, **kwargs)

    def login_once_as(self, signer):
        """Log in with `signer` (another key and certificate, e.g. a successor's) through this client and connection,
        as the owner of its certificate (certificate_owner), then end that session; KsefError when KSeF refuses the
        login. This session's tokens are left as they are.
        """
        other = KsefAuthenticator.certificate_owner(self.client, self.options, SignerXadesAuthMethod(signer),
                                                    poll_interval=self.poll_interval, poll_timeout=self.poll_timeout,
                                                    wall_clock=self.wall_clock)
        try:
            other.login()
        finally:
            other.close()

    def refresh(self):
        """New access token from the refresh token (log in again when the refresh token is not accepted)."""
        if not self._refresh_token:
            self.login()
            return
        try:
            body = self.gateway.refresh(self._refresh_token)
        except KsefApiError as exc:
            if exc.status in (400, 401):
                self._refresh_token = None
                self.login()
                return
            raise
        access = body.get('accessToken') or {}
        self._access_token = access.get('token')
        self._access_expiry = token_expiry(self._access_token, access.get('validUntil'))

    def tokens(self):
        return {
            'access_token': self._access_token,
            'access_token_valid_until': _iso(self._access_expiry),
            'refresh_token': self._refresh_token,
            'refresh_token_valid_until': _iso(self._refresh_expiry),
            'reference_number': self.reference_number,
        }

    def close(self):
        """End the session this object opened (KsefAuthApi.close_session); failures become warnings."""
        if not self._opened:
            return
        self._opened = False
        if self.client.unreachable:
            # KSeF did not answer a request of this run: ending the session would only wait for it again.
            self.client.warn('the KSeF session (reference number %s) was not ended because KSeF did not answer; '
                             'it ends by itself when its access token expires' % self.reference_number)
            return
        token = self._access_token
        if self._expires_soon(self._access_expiry, margin=5) and self._refresh_token:
            token = self._refresh_token  # the endpoint accepts either token
        try:
            self.gateway.close_session(token)
        except KsefError as exc:
            if isinstance(exc, KsefApiError) and exc.status == 401:
                return  # the session has already ended
            self.client.warn('could not end the KSeF session (reference number %s): %s' % (self.reference_number, exc))

    # -- internals ---------------------------------------------------------------------------------
    def _expires_soon(self, expiry, margin=REFRESH_MARGIN):
        return expiry is not None and expiry - self.wall_clock() < margin

    def _wait_for_authentication(self, operation_token):
        deadline = self.client.clock() + self.poll_timeout
        while True:
            body = self.gateway.status(self.reference_number, operation_token)
            status = body.get('status') or {}
            code = status.get('code')
            if code == 200:
                info = body.get('authenticationMethodInfo') or {}
                self.authentication_method = info.get('code') or body.get('authenticationMethod')
                return
            if code != 100:
                hint = AUTH_STATUS_HINTS.get(code)
                if hint:
                    hint = hint % {'context': self.options.context}
                raise KsefAuthError(code, status.get('description'), status.get('details'), self.reference_number, hint)
            if self.client.clock() + self.poll_interval > deadline:
                raise KsefTimeoutError('KSeF authentication %s was still in progress (status 100) after %d s; on DEMO/PRD '
                                       'the certificate revocation check can take longer, try again later'
                                       % (self.reference_number, self.poll_timeout), reference_number=self.reference_number)
            self.client.sleep(self.poll_interval)

    def _store_tokens(self, tokens):
        access = tokens.get('accessToken') or {}
        refresh = tokens.get('refreshToken') or {}
        self._access_token = access.get('token')
        self._access_expiry = token_expiry(self._access_token, access.get('validUntil'))
        self._refresh_token = refresh.get('token')
        self._refresh_expiry = token_expiry(self._refresh_token, refresh.get('validUntil'))
        if not self._access_token:
            raise KsefError('%s returned no access token' % (AUTH_TOKEN_REDEEM,))
