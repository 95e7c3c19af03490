# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The one HTTP client of the collection: a requests session with pacing, retries and typed errors."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import email.utils
import json as _json
import re
import time

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported, import sanity only
    from urllib import quote  # type: ignore

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    requests = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefApiError,
    KsefRateLimitError,
    KsefTransportError,
)

USER_AGENT = 'ksef.certificates-ansible/0.1.0'

# Endpoints of KSeF's auth/public group: 60 requests per second, no per-minute/hour values.
AUTH_PUBLIC_ENDPOINTS = frozenset([
    'POST /auth/challenge',
    'POST /auth/xades-signature',
    'POST /auth/ksef-token',
    'GET /auth/{referenceNumber}',
    'POST /auth/token/redeem',
    'POST /auth/token/refresh',
    'GET /security/public-key-certificates',
])
AUTH_PUBLIC_LIMITS = {1: 60}
# Published limits of the "other" group (every certificate endpoint, /auth/sessions*, /rate-limits),
# counted per endpoint.
OTHER_LIMITS = {1: 10, 60: 30, 3600: 120}
# Seconds added to every window edge when pacing (see _SlidingWindow).
PACING_MARGIN = 0.25
# The windows KSeF counts in (seconds), shortest first. A 429 is put down to the shortest window its
# Retry-After fits in (a block lasts until the oldest call that fills the window leaves it).
RATE_WINDOWS = (1, 60, 3600)

# Error bodies are read up to this size; only a short sanitized excerpt is ever shown.
MAX_ERROR_BODY = 64 * 1024
EXCERPT_LENGTH = 200
# Backoff for retries without Retry-After: 1, 2, 4, ... seconds (capped by max_retry_wait).
BACKOFF_BASE = 1.0


def sanitize_excerpt(text, limit=EXCERPT_LENGTH):
    """Return a short single-line excerpt of an unexpected body (HTML tags and control characters removed)."""
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    text = re.sub(r'(?is)<(script|style)\b.*?</\1\s*>', ' ', text)
    text = re.sub(r'<[^>]*>', ' ', text)
    text = re.sub(r'[\x00-\x1f\x7f]+', ' ', text)
    text = re.sub(r'\s+', ' ', text).strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + '...'
    return text


def parse_retry_after(value, now=None):
    """Retry-After as seconds (int seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return int(value)
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (now if now is not None else time.time())
        return max(0, int(seconds + 0.999))
    except (TypeError, ValueError, OverflowError):
        return None


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def parse_error_body(body):
    """Turn a KSeF error body (dict) into (errors, reference_number, service_code).

    Understands ExceptionResponse, problem details (RFC 7807 variants of KSeF) and the
    TooManyRequestsResponse / status-style bodies.
    """
    errors = []
    reference_number = None
    service_code = None
    if not isinstance(body, dict):
        return errors, reference_number, service_code
    exception = body.get('exception')
    if isinstance(exception, dict):
        for item in exception.get('exceptionDetailList') or []:
            if isinstance(item, dict):
                errors.append({
                    'code': item.get('exceptionCode'),
                    'description': item.get('exceptionDescription'),
                    'details': _as_list(item.get('details')),
                })
        reference_number = exception.get('referenceNumber')
        service_code = exception.get('serviceCode')
        return errors, reference_number, service_code
    if 'title' in body or 'detail' in body or 'errors' in body or 'reasonCode' in body:
        for item in body.get('errors') or []:
            if isinstance(item, dict):
                errors.append({
                    'code': item.get('code'),
                    'description': item.get('description'),
                    'details': _as_list(item.get('details')),
                })
        if not errors:
            details = []
            security = body.get('security')
            if isinstance(security, dict):
                for key in sorted(security):
                    details.append('%s: %s' % (key, security[key]))
            errors.append({
                'code': body.get('reasonCode'),
                'description': body.get('detail') or body.get('title'),
                'details': details,
            })
        service_code = body.get('traceId')
        reference_number = body.get('referenceNumber')
        return errors, reference_number, service_code
    status = body.get('status')
    if isinstance(status, dict):
        errors.append({
            'code': status.get('code'),
            'description': status.get('description'),
            'details': _as_list(status.get('details')),
        })
    return errors, reference_number, service_code


class _SlidingWindow:
    """Calls of one endpoint as KSeF counts them, to stay under its per-second/minute/hour limits.

    KSeF counts a call when it arrives, at some moment between the client sending it and the client
    receiving the answer, and keeps it in a window of W seconds while ``stamp > now - W``. The client
    cannot see that moment, so it errs on the safe side: a call counts from the moment it is sent (a
    call whose answer is lost still counts) and, once the answer or error is in, its stamp moves to
    that later moment, the latest time KSeF can have counted it. A call then stays in a window until
    W + ``margin`` seconds after its stamp, so latency jitter and the difference between the
    controller's monotonic clock and KSeF's clock cannot make the next call arrive a moment too early.
    Calls KSeF refused (429) or never received are counted as well: over-counting only costs waiting.
    """

    def __init__(self, margin=0.0):
        self.margin = margin
        self.stamps = collections.deque()
        self.refused = []                 # stamps of calls KSeF refused (429): not in KSeF's count

    def delay_needed(self, now, limits):
        """Seconds to wait before the next request may be sent (0 if none)."""
        if not limits:
            return 0.0
        longest = max(limits) + self.margin
        while self.stamps and now - self.stamps[0] >= longest:
            self.stamps.popleft()
        delay = 0.0
        for window, limit in limits.items():
            if not limit or limit <= 0:
                continue
            span = window + self.margin
            in_window = [t for t in self.stamps if now - t < span]
            if len(in_window) >= limit:
                # The oldest call that keeps us at the limit must leave the window first.
                oldest = in_window[len(in_window) - limit]
                delay = max(delay, oldest + span - now)
        return delay

    def accepted_since(self, since):
        """Calls stamped after `since` that KSeF did not refuse (as far as the client knows)."""
        self.refused = [stamp for stamp in self.refused if stamp > since]
        return sum(1 for stamp in self.stamps if stamp > since) - len(self.refused)

    def mark_refused(self, stamp):
        self.refused.append(stamp)

    def record(self, now):
        """Count a call at the moment it is sent; returns the stamp for settle()."""
        self.stamps.append(now)
        return now

    def settle(self, stamp, now):
        """The answer (or error) of the call stamped `stamp` came in at `now`: count it from then on."""
        for index in range(len(self.stamps) - 1, -1, -1):
            if self.stamps[index] == stamp:
                self.stamps[index] = max(stamp, now)
                return


# Texts of TLS errors raised before any request byte was sent: certificate verification (wrong CA,
# name mismatch) and handshake failures.
TLS_REFUSED_MARKERS = ('CERTIFICATE_VERIFY_FAILED', 'certificate verify failed', 'SSLCertVerificationError',
                       'WRONG_VERSION_NUMBER', 'HANDSHAKE', 'handshake')


class KsefHttpClient:
    """HTTP client for the KSeF API v2 (one keep-alive requests session)."""

    def __init__(self, base_url, timeout=30, validate_certs=True, ca_path=None,
                 max_retries=5, max_retry_wait=60, warn=None, log=None,
                 sleep=time.sleep, clock=time.monotonic, session=None):
        self.base_url = base_url.rstrip('/')
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.max_retry_wait = max(0, max_retry_wait)
        self.warn = warn or (lambda message: None)
        self.log = log or (lambda message: None)
        self.sleep = sleep
        self.clock = clock
        if session is None:
            session = requests.Session()
        self.session = session
        if not validate_certs:
            self.verify = False
        elif ca_path:
            self.verify = ca_path
        else:
            self.verify = True
        self.calls = 0
        self.calls_by_endpoint = {}
        self.retries = 0
        self.rate_limited = 0
        self.paced_seconds = 0.0
        self.other_limits = dict(OTHER_LIMITS)
        self.auth_limits = dict(AUTH_PUBLIC_LIMITS)
        # Where other_limits come from: 'published', 'GET /rate-limits', then '+429' once a 429 taught more.
        self.limits_source = 'published'
        self.learned_limits = []          # what each 429 taught: {'endpoint', 'window', 'limit'}
        self.pacing_margin = PACING_MARGIN
        self._windows = {}
        self._warnings_seen = set()

    # -- pacing -------------------------------------------------------------------------------------
    def set_rate_limits(self, rate_limits_response):
        """Use the effective limits from GET /rate-limits (group "other") instead of the published ones."""
        other = (rate_limits_response or {}).get('other')
        if not isinstance(other, dict):
            return
        limits = {}
        for window, key in ((1, 'perSecond'), (60, 'perMinute'), (3600, 'perHour')):
            value = other.get(key)
            if isinstance(value, int) and value > 0:
                limits[window] = value
        if limits:
            # What a 429 already taught this run stays (the lower value wins).
            for learned in self.learned_limits:
                if learned['endpoint'] not in AUTH_PUBLIC_ENDPOINTS:
                    limits[learned['window']] = min(limits.get(learned['window'], learned['limit']), learned['limit'])
            self.other_limits = limits
            self.limits_source = 'GET /rate-limits'

    def _limits_for(self, key):
        if key in AUTH_PUBLIC_ENDPOINTS:
            return self.auth_limits
        return self.other_limits

    def limits_for(self, method, endpoint):
        """The limits the client paces `endpoint` (route template) to: {window seconds: calls}."""
        return dict(self._limits_for('%s %s' % (method.upper(), endpoint)))

    def _learn_from_429(self, key, window, retry_after, now):
        """A 429 despite pacing: the limit is lower than assumed. Learn it so the run meets no second one.

        KSeF refused the call because one of its windows was full. The window is the shortest one
        Retry-After fits in (the block ends when the oldest call filling that window leaves it); the limit
        is at most the number of calls this client sent to the endpoint in that window, the refused one
        not included. KSeF sets limits per group, so the lower value applies to every endpoint of the
        group (each endpoint keeps its own counter). Nothing is learned without Retry-After or when this
        client sent nothing in the window (then someone else filled it: another run with the same context).
        """
        if retry_after is None:
            return None
        span = next((w for w in RATE_WINDOWS if retry_after <= w), RATE_WINDOWS[-1])
        sent = window.accepted_since(now - span - self.pacing_margin)
        if sent < 1:
            return None
        limits = self._limits_for(key)
        if limits.get(span) is not None and limits[span] <= sent:
            return None
        limits[span] = sent
        if limits is self.other_limits:
            self.limits_source = self.limits_source.split('+')[0] + '+429'
        self.learned_limits.append({'endpoint': key, 'window': span, 'limit': sent})
        self.warn('KSeF answered %s with HTTP 429 (retry after %s s) below the limits this run paced to; pacing '
                  'to at most %d calls per %d s from now on' % (key, retry_after, sent, span))
        return span, sent

    def _window(self, key):
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _SlidingWindow(self.pacing_margin)
        return window

    def seconds_until_slot(self, method, endpoint):
        """Seconds until a request to `endpoint` (route template) can be sent without pacing; 0.0 = now.

        Every URL of a template shares its counter (KSeF limits endpoints, not reference numbers).
        Callers with other work to do use it to do that work instead of blocking in request().
        """
        key = '%s %s' % (method.upper(), endpoint)
        window = self._windows.get(key)
        if window is None:
            return 0.0
        return max(0.0, window.delay_needed(self.clock(), self._limits_for(key)))

    def _pace(self, key):
        """Wait for a free slot of the endpoint, then count the call; returns (window, stamp)."""
        window = self._window(key)
        limits = self._limits_for(key)
        delay = window.delay_needed(self.clock(), limits)
        while delay > 0:
            self.log('pacing %s: waiting %.2f s to stay under the KSeF rate limit' % (key, delay))
            self.paced_seconds += delay
            self.sleep(delay)
            delay = window.delay_needed(self.clock(), limits)
        return window, window.record(self.clock())

    # -- request ------------------------------------------------------------------------------------
    def build_url(self, endpoint, path_params=None):
        quoted = dict((k, quote(str(v), safe='')) for k, v in (path_params or {}).items())
        return self.base_url + endpoint.format(**quoted)

    def _backoff(self, attempt):
        return min(self.max_retry_wait, BACKOFF_BASE * (2 ** attempt))

    def request(self, method, endpoint, path_params=None, params=None, json=None, data=None,
                headers=None, token=None, idempotent=None, expect=(200,)):
        """Send one logical request (with pacing and retries); return (status, body).

        body is the decoded JSON, None for an empty body, or text for a non-JSON success body.
        Raises KsefApiError / KsefRateLimitError / KsefTransportError.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in ('GET', 'HEAD', 'DELETE', 'PUT', 'OPTIONS')
        key = '%s %s' % (method, endpoint)
        url = self.build_url(endpoint, path_params)
        send_headers = {'Accept': 'application/json', 'User-Agent': USER_AGENT}
        if headers:
            send_headers.update(headers)
        if token:
            send_headers['Authorization'] = 'Bearer %s' % token

        attempt = 0
        while True:
            window, stamp = self._pace(key)
            self.calls += 1
            self.calls_by_endpoint[key] = self.calls_by_endpoint.get(key, 0) + 1
            try:
                response = self.session.request(
                    method, url, params=params, json=json, data=data, headers=send_headers,
                    timeout=self.timeout, verify=self.verify, stream=True)
                try:
                    # The body is read here, inside the transport error handling: a connection that
                    # breaks while the answer arrives is a lost answer like any other.
                    status = response.status_code
                    raw = response.content if status in expect else self._read_limited(response)
                finally:
                    response.close()
            except requests.exceptions.RequestException as exc:
                window.settle(stamp, self.clock())
                not_sent = self._not_sent(exc)
                reason = self._transport_reason(exc)
                # A refused TLS handshake (wrong CA, name mismatch) does not heal by retrying.
                retriable = (idempotent or not_sent) and not self._tls_refused(exc)
                if retriable and attempt < self.max_retries:
                    wait = self._backoff(attempt)
                    self.log('%s: %s; retry %d/%d in %.1f s' % (key, reason, attempt + 1, self.max_retries, wait))
                    self.retries += 1
                    attempt += 1
                    self.sleep(wait)
                    continue
                raise KsefTransportError(method, endpoint, reason, may_have_reached_server=not not_sent)

            # KSeF counted the call before it answered: keep it counted from the answer on.
            answered = self.clock()
            window.settle(stamp, answered)
            stamp = max(stamp, answered)
            self._surface_warnings(response)
            if status in expect:
                return status, self._success_body(method, endpoint, status, raw, response.headers)

            error = self._api_error(method, endpoint, status, raw, response.headers)
            if status == 429:
                self.rate_limited += 1
                window.mark_refused(stamp)
                self._learn_from_429(key, window, error.retry_after, stamp)
                wait = error.retry_after if error.retry_after is not None else self._backoff(attempt)
                if attempt >= self.max_retries or wait > self.max_retry_wait:
                    raise KsefRateLimitError(method, endpoint, status, error.errors, error.reference_number,
                                             error.service_code, error.retry_after)
                self.log('%s: HTTP 429, retry %d/%d in %s s' % (key, attempt + 1, self.max_retries, wait))
                self.retries += 1
                attempt += 1
                self.sleep(wait)
                continue
            if status >= 500 and idempotent and attempt < self.max_retries:
                wait = self._backoff(attempt)
                self.log('%s: HTTP %s, retry %d/%d in %.1f s' % (key, status, attempt + 1, self.max_retries, wait))
                self.retries += 1
                attempt += 1
                self.sleep(wait)
                continue
            raise error

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _tls_refused(exc):
        """True for a failed TLS handshake or certificate verification: no request was sent.

        Other TLS errors (a corrupt record while the answer arrives) may come after KSeF took the request.
        """
        if not isinstance(exc, requests.exceptions.SSLError):
            return False
        text = repr(exc)
        return any(marker in text for marker in TLS_REFUSED_MARKERS)

    @classmethod
    def _not_sent(cls, exc):
        """True when the request certainly did not reach the server (no connection was made)."""
        if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.InvalidURL,
                            requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
            return True
        if isinstance(exc, requests.exceptions.SSLError):
            return cls._tls_refused(exc)
        text = repr(exc)
        return 'NewConnectionError' in text or 'NameResolutionError' in text or 'Failed to resolve' in text

    @classmethod
    def _transport_reason(cls, exc):
        if cls._tls_refused(exc):
            return 'TLS error (check validate_certs/ca_path): %s' % sanitize_excerpt(str(exc))
        if isinstance(exc, requests.exceptions.SSLError):
            return 'TLS error while talking to KSeF: %s' % sanitize_excerpt(str(exc))
        if isinstance(exc, requests.exceptions.Timeout):
            return 'timed out'
        if isinstance(exc, requests.exceptions.ConnectionError):
            return 'connection error: %s' % sanitize_excerpt(str(exc))
        return '%s: %s' % (type(exc).__name__, sanitize_excerpt(str(exc)))

    def _surface_warnings(self, response):
        value = response.headers.get('X-System-Warning')
        if not value:
            return
        for part in value.split('|'):
            text = sanitize_excerpt(part, limit=500)
            if text and text not in self._warnings_seen:
                self._warnings_seen.add(text)
                self.warn('KSeF system warning: %s' % text)

    @staticmethod
    def _read_limited(response):
        chunks = []
        size = 0
        for chunk in response.iter_content(chunk_size=8192):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
        return b''.join(chunks)[:MAX_ERROR_BODY]

    @staticmethod
    def _decode_json(raw):
        try:
            return True, _json.loads(raw.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            return False, None

    def _success_body(self, method, endpoint, status, raw, headers):
        if not raw or not raw.strip():
            return None
        ok, body = self._decode_json(raw)
        if ok:
            return body
        content_type = headers.get('Content-Type', '')
        if 'json' in content_type or 'html' in content_type:
            raise KsefApiError(method, endpoint, status, [{
                'code': None,
                'description': 'unexpected response body that is not valid JSON: %s' % sanitize_excerpt(raw),
                'details': [],
            }])
        return raw.decode('utf-8', 'replace')

    def _api_error(self, method, endpoint, status, raw, headers):
        ok, body = self._decode_json(raw) if raw else (False, None)
        if ok and isinstance(body, dict):
            errors, reference_number, service_code = parse_error_body(body)
        else:
            errors, reference_number, service_code = [], None, None
        if not errors and raw and raw.strip():
            errors = [{'code': None, 'description': 'response body: %s' % sanitize_excerpt(raw), 'details': []}]
        retry_after = parse_retry_after(headers.get('Retry-After'))
        return KsefApiError(method, endpoint, status, errors, reference_number, service_code, retry_after)
