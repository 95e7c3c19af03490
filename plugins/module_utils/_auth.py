# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""KSeF authentication: XAdES signature, KSeF token, or a pre-obtained access token."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import json
import time

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
except ImportError:  # pragma: no cover - reported through _credentials.HAS_CRYPTOGRAPHY
    pass

from ansible_collections.ksef.certificates.plugins.module_utils._api import (
    AUTH_CHALLENGE,
    AUTH_TOKEN_REDEEM,
    PUBLIC_KEY_CERTIFICATES,
    KsefAuthApi,
)
from ansible_collections.ksef.certificates.plugins.module_utils._credentials import load_signer_credentials, load_token_signer
from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefAuthError,
    KsefError,
    KsefInputError,
    KsefTimeoutError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._rules import format_datetime, parse_datetime_or_none
from ansible_collections.ksef.certificates.plugins.module_utils._xades import (
    classify_allowed_ips,
    signed_auth_token_request,
)

CONTEXT_TYPES = {
    'nip': 'Nip',
    'internal_id': 'InternalId',
    'nip_vat_ue': 'NipVatUe',
    'peppol_id': 'PeppolId',
}

# Refresh the access token when less than this many seconds remain.
REFRESH_MARGIN = 60
POLL_INTERVAL = 1.0
POLL_TIMEOUT = 120.0
TOKEN_ENCRYPTION_USAGE = 'KsefTokenEncryption'
UNKNOWN_PUBLIC_KEY = 21470

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


def choose_token_encryption_key(entries, now):
    """The currently valid KsefTokenEncryption certificate with the latest validFrom (or None)."""
    best = None
    best_from = None
    for entry in entries or []:
        if TOKEN_ENCRYPTION_USAGE not in (entry.get('usage') or []):
            continue
        valid_from = parse_datetime_or_none(entry.get('validFrom'))
        valid_to = parse_datetime_or_none(entry.get('validTo'))
        if valid_from is None or valid_to is None or not valid_from <= now <= valid_to:
            continue
        if best is None or valid_from > best_from:
            best, best_from = entry, valid_from
    return best


def encrypt_ksef_token(certificate_b64, ksef_token, timestamp_ms):
    """RSA-OAEP (SHA-256, MGF1-SHA-256) of '<token>|<timestampMs>', Base64."""
    certificate = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    plaintext = ('%s|%d' % (ksef_token, int(timestamp_ms))).encode('utf-8')
    ciphertext = certificate.public_key().encrypt(
        plaintext, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    return base64.b64encode(ciphertext).decode('ascii')


class KsefAuthenticator:
    """Obtains and keeps a KSeF access token for one module run."""

    def __init__(self, client, params, poll_interval=POLL_INTERVAL, poll_timeout=POLL_TIMEOUT, wall_clock=time.time):
        self.client = client
        self.gateway = KsefAuthApi(client)
        self.params = params
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.wall_clock = wall_clock
        self.credentials = None
        self.reference_number = None
        self.authentication_method = None
        self._access_token = None
        self._access_expiry = None
        self._refresh_token = None
        self._refresh_expiry = None
        self._opened = False
        if params.get('access_token'):
            self.method = 'access_token'
            self._access_token = params['access_token']
            self._access_expiry = jwt_expiry(self._access_token)
        elif params.get('auth_pkcs11_module'):
            self.method = 'xades'
            # The key stays in the token; opening it here reports a wrong PIN or label before any API call.
            self.credentials = load_token_signer(
                module_path=params['auth_pkcs11_module'],
                token_label=params.get('auth_pkcs11_token_label'),
                key_label=params.get('auth_pkcs11_key_label'),
                pin=params.get('auth_pkcs11_pin'),
                certificate_path=params.get('auth_certificate_path'),
                certificate_content=params.get('auth_certificate_content'),
            )
        elif params.get('auth_certificate_path') or params.get('auth_certificate_content'):
            self.method = 'xades'
            # Loading here reports credential problems before any API call.
            self.credentials = load_signer_credentials(
                certificate_path=params.get('auth_certificate_path'),
                certificate_content=params.get('auth_certificate_content'),
                private_key_path=params.get('auth_private_key_path'),
                private_key_content=params.get('auth_private_key_content'),
                passphrase=params.get('auth_passphrase'),
            )
        elif params.get('ksef_token'):
            self.method = 'ksef_token'
        else:
            raise KsefInputError('no KSeF credential given: set auth_certificate_path or auth_certificate_content '
                                 '(with the private key), ksef_token, or access_token')
        if self.method != 'access_token' and not params.get('context_id'):
            raise KsefInputError('context_id is required to log in (the %s of the context to act in)'
                                 % params.get('context_type', 'nip'))

    # -- public ------------------------------------------------------------------------------------
    @property
    def session_opened(self):
        """True when this object logged in (and so owns a session to close)."""
        return self._opened

    def access_token(self):
        """A valid access token: logs in lazily and refreshes it when less than a minute is left."""
        if self.method == 'access_token':
            return self._access_token
        if self._access_token is None:
            self.login()
        elif self._expires_soon(self._access_expiry):
            self.refresh()
        return self._access_token

    def handle_unauthorized(self):
        """After a 401: get a new access token once. False when that is impossible (given access_token)."""
        if self.method == 'access_token':
            return False
        if self._refresh_token and not self._expires_soon(self._refresh_expiry):
            self.refresh()
        else:
            self.login()
        return True

    def login(self):
        """challenge -> XAdES or KSeF token -> poll the auth operation -> redeem tokens."""
        if self.method == 'access_token':
            return
        challenge = self.gateway.challenge()
        if self.method == 'xades':
            init = self._init_xades(challenge)
        else:
            init = self._init_ksef_token(challenge)
        self.reference_number = init.get('referenceNumber')
        operation_token = (init.get('authenticationToken') or {}).get('token')
        self._wait_for_authentication(operation_token)
        tokens = self.gateway.redeem(operation_token)
        self._store_tokens(tokens)
        self._opened = True

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
        access = (body or {}).get('accessToken') or {}
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
        """End the session this object opened (DELETE /auth/sessions/current); failures become warnings."""
        if not self._opened:
            return
        self._opened = False
        if getattr(self.client, 'unreachable', False):
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

    def _context_description(self):
        return '%s %s' % (self.params.get('context_type') or 'nip', self.params.get('context_id'))

    def _verify_chain(self):
        value = self.params.get('verify_certificate_chain')
        if value is None:
            return self.params.get('environment') not in (None, 'test') or bool(self.params.get('api_url'))
        return bool(value)

    def _init_xades(self, challenge):
        document = signed_auth_token_request(
            self.credentials,
            challenge['challenge'],
            self.params.get('context_type') or 'nip',
            self.params['context_id'],
            self.params.get('auth_subject_identifier_type') or 'certificate_subject',
            self.params.get('auth_allowed_ips'),
        )
        return self.gateway.xades_signature(document, self._verify_chain())

    def _challenge_ms(self, challenge):
        if challenge.get('timestampMs') is not None:
            return int(challenge['timestampMs'])
        parsed = parse_datetime_or_none(challenge.get('timestamp'))
        if parsed is None:
            raise KsefError('%s returned neither timestampMs nor a readable timestamp' % (AUTH_CHALLENGE,))
        return int(parsed.timestamp() * 1000)

    def _init_ksef_token(self, challenge):
        timestamp_ms = self._challenge_ms(challenge)
        body = {
            'challenge': challenge['challenge'],
            'contextIdentifier': {
                'type': CONTEXT_TYPES[self.params.get('context_type') or 'nip'],
                'value': self.params['context_id'],
            },
        }
        if self.params.get('auth_allowed_ips'):
            body['authorizationPolicy'] = {'allowedIps': classify_allowed_ips(self.params['auth_allowed_ips'])}
        # A key can be withdrawn between listing and use (21470): list again once and retry.
        for attempt in (1, 2):
            key = self._token_encryption_key()
            body['encryptedToken'] = encrypt_ksef_token(key['certificate'], self.params['ksef_token'], timestamp_ms)
            body['publicKeyId'] = key.get('publicKeyId')
            if not body['publicKeyId']:
                del body['publicKeyId']
            try:
                return self.gateway.ksef_token(body)
            except KsefApiError as exc:
                if attempt == 1 and UNKNOWN_PUBLIC_KEY in exc.codes:
                    continue
                raise
        raise AssertionError('unreachable: the loop returns or raises')  # pragma: no cover

    def _token_encryption_key(self):
        now = datetime.datetime.fromtimestamp(self.wall_clock(), datetime.timezone.utc)
        key = choose_token_encryption_key(self.gateway.public_key_certificates(), now)
        if key is None:
            raise KsefError('%s returned no currently valid certificate with usage %s'
                            % (PUBLIC_KEY_CERTIFICATES, TOKEN_ENCRYPTION_USAGE))
        return key

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
                    hint = hint % {'context': self._context_description()}
                raise KsefAuthError(code, status.get('description'), status.get('details'), self.reference_number, hint)
            if self.client.clock() + self.poll_interval > deadline:
                raise KsefTimeoutError('KSeF authentication %s was still in progress (status 100) after %d s; on DEMO/PRD '
                                       'the certificate revocation check can take longer, try again later'
                                       % (self.reference_number, self.poll_timeout), reference_number=self.reference_number)
            self.client.sleep(self.poll_interval)

    def _store_tokens(self, tokens):
        tokens = tokens or {}
        access = tokens.get('accessToken') or {}
        refresh = tokens.get('refreshToken') or {}
        self._access_token = access.get('token')
        self._access_expiry = token_expiry(self._access_token, access.get('validUntil'))
        self._refresh_token = refresh.get('token')
        self._refresh_expiry = token_expiry(self._refresh_token, refresh.get('validUntil'))
        if not self._access_token:
            raise KsefError('%s returned no access token' % (AUTH_TOKEN_REDEEM,))
