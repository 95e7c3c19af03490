# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The KSeF gateway: every KSeF endpoint the collection calls is named here, and only here.

KsefAuthApi holds the calls of a login (challenge, XAdES or KSeF token, status, token redeem and refresh,
session close); KsefApi the authenticated certificate calls. The endpoint constants double as the labels
of the HTTP client's per-endpoint counters and of the call budget ('METHOD /route').
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import collections
import datetime
import re
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Union

from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefError,
    KsefInputError,
    KsefTransportError,
)
from ansible_collections.ksef.certificates.plugins.module_utils._records import (  # pylint: disable=unused-import; re-exported for the modules  # noqa: F401
    CERTIFICATE_STATUSES,
    CERTIFICATE_TYPES,
    REVOCATION_REASONS,
    SUBJECT_IDENTIFIER_TYPES,
    CertificateRecords,
    from_api,
    snake_item,
    snake_name,
)
from ansible_collections.ksef.certificates.plugins.module_utils._rules import DateTimeValue, subject_control_problems

if TYPE_CHECKING:  # for the hints only: _http (through _pacing) and _auth import this module
    from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
    from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient


class Endpoint(collections.namedtuple('Endpoint', ['method', 'route'])):
    """One KSeF endpoint: HTTP method and OpenAPI route template; str() is its label 'METHOD /route'."""
    __slots__ = ()

    def __str__(self):
        return '%s %s' % (self.method, self.route)


# Login and session (KSeF's auth group).
AUTH_CHALLENGE = Endpoint('POST', '/auth/challenge')
AUTH_XADES_SIGNATURE = Endpoint('POST', '/auth/xades-signature')
AUTH_KSEF_TOKEN = Endpoint('POST', '/auth/ksef-token')
AUTH_STATUS = Endpoint('GET', '/auth/{referenceNumber}')
AUTH_TOKEN_REDEEM = Endpoint('POST', '/auth/token/redeem')
AUTH_TOKEN_REFRESH = Endpoint('POST', '/auth/token/refresh')
PUBLIC_KEY_CERTIFICATES = Endpoint('GET', '/security/public-key-certificates')
SESSION_CLOSE = Endpoint('DELETE', '/auth/sessions/current')
# Certificates and limits.
RATE_LIMITS = Endpoint('GET', '/rate-limits')
LIMITS = Endpoint('GET', '/certificates/limits')
ENROLLMENT_DATA = Endpoint('GET', '/certificates/enrollments/data')
ENROLL = Endpoint('POST', '/certificates/enrollments')
ENROLLMENT_STATUS = Endpoint('GET', '/certificates/enrollments/{referenceNumber}')
RETRIEVE = Endpoint('POST', '/certificates/retrieve')
QUERY = Endpoint('POST', '/certificates/query')
REVOKE = Endpoint('POST', '/certificates/{certificateSerialNumber}/revoke')
# KSeF tokens (SPEC 13.2): generate, list (filters, x-continuation-token), status, revoke.
TOKENS_GENERATE = Endpoint('POST', '/tokens')
TOKENS_LIST = Endpoint('GET', '/tokens')
TOKEN_STATUS = Endpoint('GET', '/tokens/{referenceNumber}')
TOKEN_REVOKE = Endpoint('DELETE', '/tokens/{referenceNumber}')
# KSeF's auth/public group: 60 requests per second, no per-minute/hour values (the HTTP client paces by it).
AUTH_PUBLIC_ENDPOINTS = frozenset(str(endpoint) for endpoint in (
    AUTH_CHALLENGE, AUTH_XADES_SIGNATURE, AUTH_KSEF_TOKEN, AUTH_STATUS, AUTH_TOKEN_REDEEM, AUTH_TOKEN_REFRESH,
    PUBLIC_KEY_CERTIFICATES))
# Endpoints whose rate-limit slots the enrollment phase watches (seconds_until_slot).
ENROLL_ENDPOINT = ENROLL
STATUS_ENDPOINT = ENROLLMENT_STATUS
RETRIEVE_ENDPOINT = RETRIEVE

RETRIEVE_CHUNK = 10
QUERY_PAGE_SIZE = 50
# Safety stop for paging (50 000 certificates is far above any KSeF limit).
QUERY_MAX_PAGES = 1000
ALREADY_REVOKED = 25009
TOKENS_PAGE_SIZE = 100
TOKEN_ITEM_FIELDS = ('referenceNumber', 'description', 'status')
SERIAL_NUMBER_PATTERN = re.compile(r'[0-9A-F]{16}')


def to_api(mapping: Mapping[str, str], value: Optional[str], option_name: str = 'value') -> Optional[str]:
    """Snake-case option value (or the API spelling itself) -> API enum value."""
    if value is None:
        return None
    if value in mapping:
        return mapping[value]
    if value in mapping.values():
        return value
    raise KsefInputError('%s must be one of %s, got %r' % (option_name, ', '.join(sorted(mapping)), value))


def _date_time(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.isoformat()
    return value


# Fields of a certificate list item that callers index directly; KSeF always sends them as strings.
def normalize_serial_numbers(serial_numbers: Iterable[Optional[str]]) -> List[str]:
    """Upper-case, de-duplicate (order kept) and validate serial numbers; KsefInputError on a bad one."""
    normalized = []
    invalid = []
    for raw in serial_numbers:
        serial = (raw or '').strip().upper()
        if not SERIAL_NUMBER_PATTERN.fullmatch(serial):
            invalid.append(raw)
        elif serial not in normalized:
            normalized.append(serial)
    if invalid:
        raise KsefInputError(
            'serial_numbers must be 16 hexadecimal characters; invalid: %s' % ', '.join(repr(v) for v in invalid))
    return normalized


QUERY_ITEM_FIELDS = ('certificateSerialNumber', 'name', 'type', 'status', 'validTo')


def _unexpected(endpoint, what):
    """A 2xx answer of the wrong shape (a proxy page, a changed API): a clear error instead of a crash later."""
    return KsefError('KSeF answered %s with an unexpected body (%s); nothing was changed because of it. Check '
                     'api_url and any proxy in between' % (endpoint, what))


def _require_dict(body, endpoint):
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _unexpected(endpoint, 'a JSON object was expected, got %s' % type(body).__name__)
    return body


def _send(client, endpoint, **kwargs):
    """One request to `endpoint` through the HTTP client; the body of the answer."""
    return client.request(endpoint.method, endpoint.route, **kwargs)[1]


class KsefAuthApi:
    """The login and session endpoints: no token, the operation token of a login, or the session's tokens."""

    def __init__(self, client: 'KsefHttpClient') -> None:
        self.client = client

    def challenge(self) -> Dict[str, Any]:
        # A challenge changes nothing in KSeF, so a 5xx or a lost answer may be retried.
        body = _require_dict(_send(self.client, AUTH_CHALLENGE, idempotent=True), AUTH_CHALLENGE)
        if not body.get('challenge'):
            raise _unexpected(AUTH_CHALLENGE, 'no challenge')
        return body

    def xades_signature(self, document: bytes, verify_chain: bool) -> Dict[str, Any]:
        """Start a login with a signed AuthTokenRequest (XML); {'referenceNumber', 'authenticationToken'}."""
        return _require_dict(_send(self.client, AUTH_XADES_SIGNATURE, data=document, expect=(202,),
                                   params={'verifyCertificateChain': 'true' if verify_chain else 'false'},
                                   headers={'Content-Type': 'application/xml'}), AUTH_XADES_SIGNATURE)

    def ksef_token(self, body: Mapping[str, Any]) -> Dict[str, Any]:
        """Start a login with an encrypted KSeF token; {'referenceNumber', 'authenticationToken'}."""
        return _require_dict(_send(self.client, AUTH_KSEF_TOKEN, json=body, expect=(202,)), AUTH_KSEF_TOKEN)

    def public_key_certificates(self) -> List[Dict[str, Any]]:
        """KSeF's public key certificates (those that encrypt KSeF tokens among them); [] for any other answer."""
        entries = _send(self.client, PUBLIC_KEY_CERTIFICATES)
        return entries if isinstance(entries, list) else []

    def status(self, reference_number: Optional[str], operation_token: Optional[str]) -> Dict[str, Any]:
        """Where the login operation stands: {'status': {'code', ...}, 'authenticationMethodInfo', ...}."""
        return _require_dict(_send(self.client, AUTH_STATUS, path_params={'referenceNumber': reference_number},
                                   token=operation_token), AUTH_STATUS)

    def redeem(self, operation_token: Optional[str]) -> Dict[str, Any]:
        """The access and refresh tokens of a finished login (once per login)."""
        return _require_dict(_send(self.client, AUTH_TOKEN_REDEEM, token=operation_token), AUTH_TOKEN_REDEEM)

    def refresh(self, refresh_token: str) -> Dict[str, Any]:
        """A new access token: {'accessToken': {'token', 'validUntil'}}."""
        return _require_dict(_send(self.client, AUTH_TOKEN_REFRESH, token=refresh_token), AUTH_TOKEN_REFRESH)

    def close_session(self, token: Optional[str]) -> None:
        """End the session of `token` (access or refresh token); KsefApiError 401 when it has already ended."""
        _send(self.client, SESSION_CLOSE, token=token, expect=(200, 204))


class KsefTokenCalls:
    """The /tokens calls of KsefApi (which supplies _call): raw API items, checked for the fields callers index."""

    def token_pages(self, statuses: Optional[Iterable[str]] = None, description: Optional[str] = None, author: Optional[str] = None,
                    author_type: Optional[str] = None) -> Iterator[List[Dict[str, Any]]]:
        """GET /tokens page by page (pageSize 100, newest first), following x-continuation-token: yields item lists."""
        params = {'pageSize': TOKENS_PAGE_SIZE}
        if statuses:
            params['status'] = list(statuses)
        if description:
            params['description'] = description
        if author:
            params['authorIdentifier'] = author
        if author_type:
            params['authorIdentifierType'] = author_type
        continuation = None
        for dummy in range(QUERY_MAX_PAGES):
            headers = {'x-continuation-token': continuation} if continuation else None
            body = _require_dict(self._call(TOKENS_LIST, params=params, headers=headers, idempotent=True), TOKENS_LIST)
            tokens = body.get('tokens') or []
            if not isinstance(tokens, list) or not all(
                    isinstance(item, dict) and all(isinstance(item.get(f), str) for f in TOKEN_ITEM_FIELDS) for item in tokens):
                raise _unexpected(TOKENS_LIST, 'tokens is not a list of items with %s' % ', '.join(TOKEN_ITEM_FIELDS))
            yield tokens
            continuation = body.get('continuationToken')
            if not continuation or not tokens:
                return

    def tokens(self, **filters: Any) -> List[Dict[str, Any]]:
        """Every token the session may see (see token_pages for the filters)."""
        return [item for page in self.token_pages(**filters) for item in page]

    def generate_token(self, description: str, permissions: Iterable[str]) -> Dict[str, Any]:
        """POST /tokens (never retried: a second call would make a second token): {'referenceNumber', 'token'}."""
        body = _require_dict(self._call(TOKENS_GENERATE, json={'description': description, 'permissions': list(permissions)},
                                        expect=(202,), idempotent=False), TOKENS_GENERATE)
        if not isinstance(body.get('referenceNumber'), str) or not isinstance(body.get('token'), str):
            raise _unexpected(TOKENS_GENERATE, 'no referenceNumber or token')
        return body

    def token_status(self, reference_number: str) -> Dict[str, Any]:
        body = _require_dict(self._call(TOKEN_STATUS, path_params={'referenceNumber': reference_number}), TOKEN_STATUS)
        if not isinstance(body.get('status'), str):
            raise _unexpected(TOKEN_STATUS, 'no status')
        return body

    def revoke_token(self, reference_number: str) -> None:
        """DELETE /tokens/{ref}; safe to repeat after a lost answer (the caller reads the status again)."""
        self._call(TOKEN_REVOKE, path_params={'referenceNumber': reference_number}, expect=(204, 200), idempotent=True)


class KsefApi(CertificateRecords, KsefTokenCalls):
    """KSeF API v2 certificate calls on top of KsefHttpClient and KsefAuthenticator."""

    def __init__(self, client: 'KsefHttpClient', authenticator: 'KsefAuthenticator') -> None:
        self.client = client
        self.authenticator = authenticator
        self.rate_limits_read = False

    def _call(self, endpoint, **kwargs):
        """Authenticated request; on 401 get a new access token once and repeat the call."""
        try:
            return _send(self.client, endpoint, token=self.authenticator.access_token(), **kwargs)
        except KsefApiError as exc:
            if exc.status != 401 or not self.authenticator.handle_unauthorized():
                raise
        return _send(self.client, endpoint, token=self.authenticator.access_token(), **kwargs)

    def seconds_until_slot(self, method: str, endpoint: str) -> float:
        """Seconds until the client would send a request to `endpoint` (route template) without pacing."""
        return self.client.seconds_until_slot(method, endpoint)

    def limits_for(self, endpoint: Union[Endpoint, str]) -> Dict[int, int]:
        """{window seconds: calls} the client paces `endpoint` ('METHOD /route') to: published, read from GET
        /rate-limits, or learned from a 429."""
        method, route = str(endpoint).split(' ', 1)
        return self.client.limits_for(method, route)

    def limits_source(self) -> str:
        """Where the limits of limits_for() come from: 'published', 'GET /rate-limits', with '+429' once a 429 taught more."""
        return self.client.pacer.limits_source

    def calls_by_endpoint(self) -> Dict[str, int]:
        """{'METHOD /route': requests sent} by this run's client so far (every attempt counts, as KSeF counts them)."""
        return dict(self.client.calls_by_endpoint)

    # signer: a successor's key and certificate (_credentials.SignerCredentials or _pkcs11.TokenSigner).
    def prove_login(self, signer: Any) -> None:
        """Log in with `signer` (a successor's key and certificate) as its certificate's owner and end that session:
        the proof of an Authentication successor (_proof). KsefError when KSeF refuses the login."""
        self.authenticator.login_once_as(signer)

    def rate_limits(self) -> Dict[str, Any]:
        """GET /rate-limits; the effective limits are also applied to the client's pacing."""
        body = self._call(RATE_LIMITS) or {}
        self.client.set_rate_limits(body)
        self.rate_limits_read = True
        return body

    def ensure_rate_limits(self) -> None:
        """Read GET /rate-limits once per run, for a run with more to do than a no-op, and pace to it.

        KSeF TEST lets users lower the limits (POST /testdata/rate-limits) and KSeF may lower them for a
        context: pacing to the published values would then meet 429s, and each 429 lengthens the next
        block. The call has a counter of its own. When KSeF refuses it (403, 5xx, a lost answer) the run
        goes on with the published limits and learns from a 429 if one comes (KsefHttpClient).
        """
        if self.rate_limits_read:
            return
        self.rate_limits_read = True
        try:
            self.rate_limits()
        except (KsefApiError, KsefTransportError) as exc:
            self.client.warn('Could not read the effective rate limits (%s); pacing to the published KSeF limits'
                             % exc)

    def limits(self) -> Dict[str, Any]:
        return _require_dict(self._call(LIMITS), LIMITS)

    def enrollment_data(self) -> Dict[str, Any]:
        """The subject attributes a CSR must carry; refused when a value holds a control character.

        The values become a CSR subject here and an OpenSSL configuration on hosts (the role): a newline
        in one could add lines to that file, so nothing with a control character is passed on.
        """
        data = _require_dict(self._call(ENROLLMENT_DATA), ENROLLMENT_DATA)
        problems = subject_control_problems(data)
        if problems:
            raise _unexpected(ENROLLMENT_DATA, 'subject attribute %s holds a control character or is not text: %s; '
                                               'no certificate request was made from it' % (
                                                   ', '.join(field for field, dummy in problems),
                                                   ', '.join(repr(value) for dummy, value in problems)))
        return data

    def enroll(self, name: str, certificate_type: str, csr_der: bytes, valid_from: Optional[DateTimeValue] = None) -> Dict[str, Any]:
        """POST /certificates/enrollments (never retried: each call consumes an enrollment slot)."""
        body = {
            'certificateName': name,
            'certificateType': to_api(CERTIFICATE_TYPES, certificate_type, 'certificate_type'),
            'csr': base64.b64encode(csr_der).decode('ascii'),
        }
        if valid_from is not None:
            body['validFrom'] = _date_time(valid_from)
        return _require_dict(self._call(ENROLL, json=body, expect=(202,), idempotent=False), ENROLL)

    def enrollment_status(self, reference_number: str) -> Dict[str, Any]:
        body = _require_dict(self._call(ENROLLMENT_STATUS, path_params={'referenceNumber': reference_number}),
                             ENROLLMENT_STATUS)
        if not isinstance(body.get('status'), dict) or not isinstance(body['status'].get('code'), int):
            raise _unexpected(ENROLLMENT_STATUS, 'no status code')
        if body.get('certificateSerialNumber') is not None and not isinstance(body['certificateSerialNumber'], str):
            raise _unexpected(ENROLLMENT_STATUS, 'certificateSerialNumber is not a string')
        return body

    def retrieve(self, serial_numbers: Optional[Iterable[str]]) -> List[Dict[str, Any]]:
        """POST /certificates/retrieve in chunks of 10; list of items (certificate = Base64 DER)."""
        serial_numbers = list(serial_numbers or [])
        items = []
        for start in range(0, len(serial_numbers), RETRIEVE_CHUNK):
            chunk = serial_numbers[start:start + RETRIEVE_CHUNK]
            body = _require_dict(self._call(RETRIEVE, json={'certificateSerialNumbers': chunk}, idempotent=True),
                                 RETRIEVE)
            certificates = body.get('certificates') or []
            if not isinstance(certificates, list) or not all(
                    isinstance(item, dict) and isinstance(item.get('certificate'), str) for item in certificates):
                raise _unexpected(RETRIEVE, 'certificates is not a list of items with a certificate')
            items.extend(certificates)
        return items

    def query(self, name: Optional[str] = None, certificate_type: Optional[str] = None, status: Optional[str] = None,
              serial_number: Optional[str] = None, expires_after: Optional[DateTimeValue] = None) -> List[Dict[str, Any]]:
        """POST /certificates/query, every page (pageSize 50); raw API items, newest request first."""
        items = []
        for certificates in self.query_pages(name=name, certificate_type=certificate_type, status=status,
                                             serial_number=serial_number, expires_after=expires_after):
            items.extend(certificates)
        return items

    def query_pages(self, name: Optional[str] = None, certificate_type: Optional[str] = None, status: Optional[str] = None,
                    serial_number: Optional[str] = None, expires_after: Optional[DateTimeValue] = None) -> Iterator[List[Dict[str, Any]]]:
        """POST /certificates/query page by page (pageSize 50, newest request first): yields lists of raw items.

        A caller that has seen enough stops iterating and no further page is requested (the enrollment
        scheduler detects issued certificates among the newest ones).
        """
        body = {}
        if serial_number:
            body['certificateSerialNumber'] = serial_number
        if name:
            body['name'] = name
        if certificate_type:
            body['type'] = to_api(CERTIFICATE_TYPES, certificate_type, 'certificate_type')
        if status:
            body['status'] = to_api(CERTIFICATE_STATUSES, status, 'status')
        if expires_after is not None:
            body['expiresAfter'] = _date_time(expires_after)
        for page in range(QUERY_MAX_PAGES):
            response = _require_dict(self._call(QUERY, json=body, idempotent=True,
                                                params={'pageSize': QUERY_PAGE_SIZE, 'pageOffset': page}), QUERY)
            certificates = response.get('certificates') or []
            if not isinstance(certificates, list):
                raise _unexpected(QUERY, 'certificates is not a list')
            for item in certificates:
                if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in QUERY_ITEM_FIELDS):
                    raise _unexpected(QUERY, 'a certificate lacks one of %s, or it is not text' % ', '.join(QUERY_ITEM_FIELDS))
            yield certificates
            if not response.get('hasMore') or not certificates:
                return

    def revoke(self, serial_number: str, reason: Optional[str] = None) -> bool:
        """True when revoked now; False when KSeF says it is already revoked, blocked or expired (25009)."""
        body = {}
        if reason:
            body['revocationReason'] = to_api(REVOCATION_REASONS, reason, 'revocation_reason')
        try:
            # Safe to repeat after a 5xx or a lost answer: a second revoke of the same serial answers 25009.
            self._call(REVOKE, path_params={'certificateSerialNumber': serial_number}, json=body, expect=(204, 200),
                       idempotent=True)
        except KsefApiError as exc:
            if exc.status == 400 and ALREADY_REVOKED in exc.codes:
                return False
            raise
        return True
