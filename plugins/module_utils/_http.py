# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The one HTTP client of the collection: a requests session with pacing, retries and typed errors."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import os
import re
import signal
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

try:
    from urllib.parse import quote, urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, import sanity only
    from urllib import quote  # type: ignore
    from urlparse import urlsplit  # type: ignore

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module with missing_required_lib
    requests = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefError,
    KsefRateLimitError,
    KsefTransportError,
    format_seconds,
)
from ansible_collections.ksef.certificates.plugins.module_utils._http_answers import (
    MAX_ANSWER_BODY,
    AnswerTooLarge,
    api_error,
    read_body,
    read_limited,
    refused_redirect,
    sanitize_excerpt,
    success_body,
    tokens_in,
    too_large,
)
from ansible_collections.ksef.certificates.plugins.module_utils._pacing import RatePacer

# The collection's version in code, once: galaxy.yml's `version` (tests/unit/plugins/test_versions.py keeps the two
# and every version_added in step). Modules run without galaxy.yml, so it cannot be read at run time.
COLLECTION_VERSION = '0.1.0'
USER_AGENT = 'ksef.certificates-ansible/%s' % COLLECTION_VERSION

# One entry of X-System-Warning: '[code]: message'.
SYSTEM_WARNING_PATTERN = re.compile(r'^\[(?P<code>[^\]]+)\]:\s*(?P<message>.*)$')
# Backoff for retries without Retry-After: 1, 2, 4, ... seconds (capped by max_retry_wait).
BACKOFF_BASE = 1.0
# Network failures are retried briefly: a refused connection or an unknown host name rarely heals within
# seconds, and a user waits for each retry. At most TRANSPORT_RETRIES retries, TRANSPORT_BACKOFF[i]
# seconds apart (both also capped by max_retries and max_retry_wait).
TRANSPORT_RETRIES = 2
TRANSPORT_BACKOFF = (0.25, 0.75)
# A request that got no answer within `timeout` is sent once more at most (when that is safe), so the
# total wait is bounded by 2 x timeout plus TRANSPORT_BACKOFF[0].
TIMEOUT_RETRIES = 1
# The whole exchange of one attempt (connect, send, the complete answer) must end within this many times
# `timeout`: a server that trickles its answer is cut off (and not asked again: it is answering, slowly).
DEADLINE_FACTOR = 2.0
# Once KSeF has answered in this run, a refused connection is a restart or a failover in progress, not a
# wrong api_url: it is ridden out for up to this many more retries, RESTART_BACKOFF seconds apart (about
# 30 s in all), so that a run with an enrollment in flight finishes instead of leaving it for the next run.
RESTART_RETRIES = 6
RESTART_BACKOFF = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0)
# Environment variables with which requests would replace the trust store when ca_path is not set.
CA_BUNDLE_VARIABLES = ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE')
# A header value goes out only when it is printable ASCII without leading or trailing whitespace; anything
# else would make requests or http.client raise an exception whose text carries the value (a token).
_SAFE_HEADER_VALUE = re.compile(r'^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?\Z')
_TOKEN = re.compile(r'^[\x21-\x7e]+\Z')


# Texts of TLS errors raised before any request byte was sent: certificate verification (wrong CA,
# name mismatch) and handshake failures.
TLS_REFUSED_MARKERS = ('CERTIFICATE_VERIFY_FAILED', 'certificate verify failed', 'SSLCertVerificationError',
                       'WRONG_VERSION_NUMBER', 'HANDSHAKE', 'handshake')


def _exception_chain(exc):
    """exc and every exception it wraps (urllib3's .reason, exception args, __cause__, __context__)."""
    seen = set()
    pending = [exc]
    chain = []
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen or not isinstance(current, BaseException):
            continue
        seen.add(id(current))
        chain.append(current)
        pending.append(getattr(current, 'reason', None))
        pending.extend(arg for arg in getattr(current, 'args', ()) if isinstance(arg, BaseException))
        pending.append(current.__cause__)
        pending.append(current.__context__)
    return chain


class TransportFailure:
    """What went wrong on the wire, classified from a requests exception.

    kind: 'invalid' (requests refused to build the request: nothing sent), 'resolve', 'refused',
    'unreachable', 'connect_timeout', 'tls_refused' (nothing sent), 'read_timeout', 'broken', 'tls'
    (the request may have been received), 'too_slow' (an answer that did not end before the deadline). `cause` is a short text built from the error numbers and
    names only, never from the text of a header or URL exception, which may carry a token.
    """

    NOT_SENT = frozenset(['invalid', 'resolve', 'refused', 'unreachable', 'connect_timeout', 'tls_refused'])
    NO_RETRY = frozenset(['invalid', 'tls_refused', 'too_slow'])
    TIMEOUTS = frozenset(['connect_timeout', 'read_timeout'])

    def __init__(self, kind: str, cause: str) -> None:
        self.kind = kind
        self.cause = cause

    @property
    def sent(self) -> bool:
        return self.kind not in self.NOT_SENT

    @classmethod
    def classify(cls, exc: BaseException) -> 'TransportFailure':
        chain = _exception_chain(exc)
        # A header value or URL requests would not send: its exception text holds the value, so none is kept.
        if any(isinstance(item, (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL,
                                 requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema))
               for item in chain):
            return cls('invalid', 'the request could not be built (%s)' % type(exc).__name__)
        if isinstance(exc, requests.exceptions.SSLError):
            text = ' '.join(repr(item) for item in chain)
            detail = sanitize_excerpt(_innermost_text(chain, ssl_only=True), limit=300)
            if any(marker in text for marker in TLS_REFUSED_MARKERS):
                return cls('tls_refused', 'TLS handshake failed (%s)' % detail)
            return cls('tls', 'TLS error while talking to KSeF (%s)' % detail)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return cls('connect_timeout', 'no connection')
        if isinstance(exc, requests.exceptions.Timeout):
            # An HTTPS connection whose TLS handshake times out never carried the request.
            if any('handshake operation timed out' in str(item) for item in chain):
                return cls('connect_timeout', 'no TLS handshake')
            return cls('read_timeout', 'no answer')
        for item in chain:
            if isinstance(item, socket.gaierror) or type(item).__name__ == 'NameResolutionError':
                return cls('resolve', _strerror(chain, socket.gaierror) or 'name resolution failed')
        if any(isinstance(item, ConnectionRefusedError) for item in chain):
            return cls('refused', 'connection refused')
        if any(type(item).__name__ == 'NewConnectionError' for item in chain):
            return cls('unreachable', _strerror(chain, OSError) or 'no connection')
        detail = _strerror(chain, OSError) or sanitize_excerpt(_innermost_text(chain), limit=300)
        return cls('broken', 'the connection broke before the answer was complete (%s)' % detail)


def _strerror(chain, exc_type):
    """The strerror of the innermost exception of exc_type in the chain (e.g. 'Name or service not known')."""
    for item in reversed(chain):
        if isinstance(item, exc_type) and getattr(item, 'strerror', None):
            return str(item.strerror)
    return None


def _innermost_text(chain, ssl_only=False):
    """Type and text of the innermost exception (ssl_only: of the innermost ssl.SSLError)."""
    candidates = [item for item in chain if type(item).__module__ == 'ssl'] if ssl_only else []
    item = (candidates or chain)[-1]
    text = str(item)
    return '%s: %s' % (type(item).__name__, text) if text else type(item).__name__


def check_headers(method: str, endpoint: str, headers: Mapping[str, Any], token: Optional[str] = None) -> None:
    """Refuse, before anything is sent, a header value requests would echo in an exception (a token)."""
    for name, value in headers.items():
        if (not isinstance(value, str) or not _SAFE_HEADER_VALUE.match(value)
                or (name == 'Authorization' and token is not None and not _TOKEN.match(token))):
            what = 'the token' if name == 'Authorization' else 'the value of header %s' % name
            raise KsefError('%s %s: %s contains whitespace, control or non-ASCII characters; the request was '
                            'not sent' % (method, endpoint, what))


def environment_proxies(url: str) -> Dict[str, str]:
    """Proxies from HTTPS_PROXY / HTTP_PROXY / NO_PROXY, the one thing taken from the environment."""
    # A malformed NO_PROXY must not stop the module.
    try:
        return requests.utils.get_environ_proxies(url)
    except Exception:  # pylint: disable=broad-except
        return {}


class KsefHttpClient:
    """HTTP client for the KSeF API v2 (one keep-alive requests session)."""

    def __init__(self, base_url: str, timeout: float = 30, validate_certs: bool = True, ca_path: Optional[str] = None,
                 max_retries: int = 5, max_retry_wait: float = 60, warn: Optional[Callable[[str], None]] = None,
                 log: Optional[Callable[[str], None]] = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, session: Optional['requests.Session'] = None,
                 on_secret: Optional[Callable[[str], None]] = None) -> None:
        self.base_url = base_url.rstrip('/')
        # Tokens sent or obtained in this run; on_secret(value) masks one in the module's results (no_log_values).
        self.secrets = set()
        self.on_secret = on_secret or (lambda value: None)
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.max_retry_wait = max(0, max_retry_wait)
        self.warn = warn or (lambda message: None)
        self.log = log or (lambda message: None)
        self.sleep = sleep
        self.clock = clock
        if session is None:
            session = requests.Session()
        # requests would let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the trust store and ~/.netrc replace
        # the Authorization header; the environment is used for proxies only (see environment_proxies).
        session.trust_env = False
        self.session = session
        if not validate_certs:
            self.verify = False
        elif ca_path:
            self.verify = ca_path
        else:
            # Explicitly the bundle the documentation promises; a path is never replaced by the environment.
            self.verify = requests.certs.where()
        # Named in the message of a failed certificate check, where it is the likely cause (a user who relied on it).
        self.ignored_ca_variables = [name for name in CA_BUNDLE_VARIABLES
                                     if validate_certs and not ca_path and os.environ.get(name)]
        host = urlsplit(self.base_url)
        self.host = host.hostname or ''
        self.port = host.port or (443 if host.scheme == 'https' else 80)
        # True once KSeF gave no answer at all (refused, unresolvable, timed out): ending the session would only
        # wait again.
        self.unreachable = False
        # True once the server answered anything in this run (see RESTART_RETRIES).
        self.answered_once = False
        self.calls = 0
        self.calls_by_endpoint = {}
        self.retries = 0
        self.rate_limited = 0
        self.pacer = RatePacer(self)
        self._warnings_seen = set()
        self.system_warnings = []         # X-System-Warning entries of this run, once each: {'code', 'text', 'endpoint'}

    # -- pacing (RatePacer; its state is read as client.pacer.*) -------------------------------------
    def set_rate_limits(self, rate_limits_response: Optional[Mapping[str, Any]]) -> None:
        """Use the effective limits KsefApi.rate_limits() read (group "other") instead of the published ones."""
        self.pacer.set_rate_limits(rate_limits_response)

    def limits_for(self, method: str, endpoint: str) -> Dict[int, int]:
        """The limits the client paces `endpoint` (route template) to: {window seconds: calls}."""
        return self.pacer.limits_for(method, endpoint)

    def seconds_until_slot(self, method: str, endpoint: str) -> float:
        """Seconds until a request to `endpoint` (route template) can be sent without pacing; 0.0 = now."""
        return self.pacer.seconds_until_slot(method, endpoint)

    # -- secrets ------------------------------------------------------------------------------------
    def keep_secret(self, value: Optional[str]) -> None:
        """A token sent or obtained: masked in every result (no_log_values) and redacted from every message."""
        if value and value not in self.secrets:
            self.secrets.add(value)
            self.on_secret(value)

    # -- request ------------------------------------------------------------------------------------
    def build_url(self, endpoint: str, path_params: Optional[Mapping[str, Any]] = None) -> str:
        quoted = dict((k, quote(str(v), safe='')) for k, v in (path_params or {}).items())
        return self.base_url + endpoint.format(**quoted)

    def _backoff(self, attempt):
        return min(self.max_retry_wait, BACKOFF_BASE * (2 ** attempt))

    def request(self, method: str, endpoint: str, path_params: Optional[Mapping[str, Any]] = None,
                params: Optional[Mapping[str, Any]] = None, json: Any = None, data: Union[bytes, str, None] = None,
                headers: Optional[Mapping[str, str]] = None, token: Optional[str] = None, idempotent: Optional[bool] = None,
                expect: Sequence[int] = (200,)) -> Tuple[int, Any]:
        """Send one logical request (with pacing and retries); return (status, body).

        body is the decoded JSON, None for an empty body, or text for a non-JSON success body.
        Raises KsefApiError / KsefRateLimitError / KsefTransportError.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in ('GET', 'HEAD', 'DELETE', 'PUT', 'OPTIONS')
        send_headers = {'Accept': 'application/json', 'User-Agent': USER_AGENT}
        send_headers.update(headers or {})
        if token:
            self.keep_secret(token)
            send_headers['Authorization'] = 'Bearer %s' % token
        check_headers(method, endpoint, send_headers, token)
        url = self.build_url(endpoint, path_params)
        call = _Call(method, endpoint, idempotent, expect, dict(
            method=method, url=url, params=params, json=json, data=data, headers=send_headers, timeout=self.timeout,
            verify=self.verify, proxies=environment_proxies(url), stream=True, allow_redirects=False))
        attempt = 0
        while True:
            outcome = self._attempt(call)
            if outcome.status in expect:
                body = success_body(method, endpoint, outcome.status, outcome.raw, outcome.headers, self.secrets)
                for value in tokens_in(body):
                    self.keep_secret(value)
                return outcome.status, body
            wait = self.retry_wait(outcome, attempt)
            self.retries += 1
            attempt += 1
            self.sleep(wait)

    def _attempt(self, call):
        """Send the call once (paced, within the deadline) and read its answer: an _Outcome."""
        window, stamp = self.pacer.pace(call.key)
        self.calls += 1
        self.calls_by_endpoint[call.key] = self.calls_by_endpoint.get(call.key, 0) + 1
        if call.first_sent is None:
            call.first_sent = self.clock()
        try:
            with deadline(self.timeout * DEADLINE_FACTOR):
                response = self.session.request(**call.send)
                try:
                    # The body is read here, inside the transport error handling: a connection that
                    # breaks while the answer arrives is a lost answer like any other.
                    status = response.status_code
                    limit = MAX_ANSWER_BODY if status in call.expect else None
                    raw = read_body(response, limit) if limit else read_limited(response)
                finally:
                    response.close()
        except requests.exceptions.RequestException as exc:
            window.settle(stamp, self.clock())
            return _Outcome(call, failure=TransportFailure.classify(exc))
        except DeadlinePassed:
            window.settle(stamp, self.clock())
            self.session.close()  # the half-read connection is not reused
            return _Outcome(call, failure=TransportFailure('too_slow', 'the answer did not arrive in time'))
        except (ValueError, UnicodeError) as exc:
            # http.client refuses a header value that slipped past check_headers; its text holds the value.
            window.settle(stamp, self.clock())
            raise KsefError('%s failed: the request could not be built (%s); it was not sent' % (call.key, type(exc).__name__))
        except AnswerTooLarge:
            window.settle(stamp, self.clock())
            raise too_large(call.method, call.endpoint, status, MAX_ANSWER_BODY)

        # KSeF counted the call before it answered: keep it counted from the answer on.
        answered = self.clock()
        # An answer after a failed request (a lost enrollment answer the run reconciled) means KSeF
        # is reachable again: the session close at the end must be sent.
        self.unreachable = False
        self.answered_once = True
        window.settle(stamp, answered)
        self._surface_warnings(response, call.key)
        if 300 <= status < 400:
            raise refused_redirect(call.method, call.endpoint, status, response.headers)
        outcome = _Outcome(call, status, raw, response.headers)
        if status not in call.expect:
            outcome.error = api_error(call.method, call.endpoint, status, raw, response.headers, self.base_url,
                                      self.secrets)
        if status == 429:
            self.rate_limited += 1
            stamp = max(stamp, answered)
            window.mark_refused(stamp)
            self.pacer.learn_from_429(call.key, window, outcome.error.retry_after, stamp)
        return outcome

    def retry_wait(self, outcome: '_Outcome', attempt: int) -> float:
        """The one retry policy: seconds to wait before the call is sent again, or raise the error that ends it.

        - no answer: retried briefly when nothing was sent or the call is idempotent (_transport_wait);
        - HTTP 429: after Retry-After (or a backoff), while it is within max_retries and max_retry_wait;
        - HTTP 5xx: idempotent calls only, with a backoff, within max_retries;
        - anything else ends the call.
        """
        call, error = outcome.call, outcome.error
        if outcome.failure is not None:
            return self._transport_wait(call, outcome.failure, attempt)
        if outcome.status == 429:
            wait = error.retry_after if error.retry_after is not None else self._backoff(attempt)
            if attempt >= self.max_retries or wait > self.max_retry_wait:
                raise KsefRateLimitError(call.method, call.endpoint, outcome.status, error.errors, error.reference_number,
                                         error.service_code, error.retry_after)
            self.log('%s: HTTP 429, retry %d/%d in %s s' % (call.key, attempt + 1, self.max_retries, wait))
            return wait
        if outcome.status >= 500 and call.idempotent and attempt < self.max_retries:
            wait = self._backoff(attempt)
            self.log('%s: HTTP %s, retry %d/%d in %.1f s' % (call.key, outcome.status, attempt + 1, self.max_retries, wait))
            return wait
        raise error

    def _transport_wait(self, call, failure, attempt):
        riding_out = failure.kind == 'refused' and self.answered_once
        if failure.kind in failure.TIMEOUTS:
            limit, backoff = TIMEOUT_RETRIES, TRANSPORT_BACKOFF
        elif riding_out:
            limit, backoff = TRANSPORT_RETRIES + RESTART_RETRIES, TRANSPORT_BACKOFF + RESTART_BACKOFF
        else:
            limit, backoff = TRANSPORT_RETRIES, TRANSPORT_BACKOFF
        if not riding_out or self.max_retries == 0:
            # max_retries bounds ordinary retries; a restart is ridden out unless retries are off.
            limit = min(self.max_retries, limit)
        if ((call.idempotent or not failure.sent) and failure.kind not in failure.NO_RETRY
                and call.transport_retries < limit):
            wait = min(self.max_retry_wait, backoff[min(call.transport_retries, len(backoff) - 1)])
            self.log('%s: %s; retry %d/%d in %.1f s' % (call.key, failure.cause, call.transport_retries + 1, limit, wait))
            call.transport_retries += 1
            return wait
        raise self._transport_error(call.method, call.endpoint, failure, attempt + 1, self.clock() - call.first_sent,
                                    call.idempotent)

    # -- helpers ------------------------------------------------------------------------------------
    def _where(self):
        return '%s:%s' % (self.host, self.port)

    def _transport_error(self, method, endpoint, failure, attempts, elapsed, idempotent):
        """The KsefTransportError of a failure: cause first, then what was tried, then what to do."""
        kind = failure.kind
        hint = None
        if kind == 'resolve':
            reason = 'cannot resolve the host name %s (%s)' % (self.host, failure.cause)
            hint = 'check api_url (%s) and the DNS settings of the controller' % self.base_url
        elif kind == 'refused':
            reason = 'connection refused by %s' % self._where()
            hint = 'check api_url (%s) and that the server is running' % self.base_url
        elif kind == 'unreachable':
            reason = 'cannot connect to %s (%s)' % (self._where(), failure.cause)
            hint = 'check api_url (%s), the network route and the proxy settings' % self.base_url
        elif kind in failure.TIMEOUTS:
            reason = '%s from %s within the %s timeout' % (failure.cause, self._where(), format_seconds(self.timeout))
            hint = ('check that %s is reachable from the controller (firewall, proxy), or raise timeout if it answers '
                    'slowly' % self._where())
        elif kind == 'too_slow':
            reason = ('the answer from %s did not arrive within %s (%g x the %s timeout): the server sends it too slowly'
                      % (self._where(), format_seconds(self.timeout * DEADLINE_FACTOR), DEADLINE_FACTOR,
                         format_seconds(self.timeout)))
            hint = 'check the network path to %s, or raise timeout if KSeF answers slowly' % self._where()
        elif kind == 'tls_refused':
            reason = failure.cause
            hint = 'check validate_certs/ca_path'
            if self.ignored_ca_variables:
                hint += ('; %s is set but not used: KSeF modules trust ca_path (KSEF_CA_PATH) or else the CA bundle '
                         'of requests (%s)' % (' and '.join(self.ignored_ca_variables), self.verify))
        else:
            reason = failure.cause
        if kind in ('resolve', 'refused', 'unreachable') or kind in failure.TIMEOUTS:
            self.unreachable = True
        return KsefTransportError(method, endpoint, reason, may_have_reached_server=failure.sent, attempts=attempts,
                                  elapsed=elapsed, repeat_safe=idempotent, hint=hint)

    def _surface_warnings(self, response, endpoint=None):
        value = response.headers.get('X-System-Warning')
        if not value:
            return
        # KSeF's format: '[code]: message | [code]: message' (openapi SystemWarning).
        for part in value.split('|'):
            text = sanitize_excerpt(part, limit=500)
            if text and text not in self._warnings_seen:
                self._warnings_seen.add(text)
                match = SYSTEM_WARNING_PATTERN.match(text)
                self.system_warnings.append({'code': match.group('code') if match else None,
                                             'text': match.group('message').strip() if match else text,
                                             'endpoint': endpoint})
                self.warn('KSeF system warning: %s' % text)


class _Call:
    """One logical request: the arguments of session.request, its retry counter and when it was first sent."""

    def __init__(self, method, endpoint, idempotent, expect, send):
        self.method = method
        self.endpoint = endpoint
        self.key = '%s %s' % (method, endpoint)
        self.idempotent = idempotent
        self.expect = expect
        self.send = send
        self.transport_retries = 0
        self.first_sent = None


class _Outcome:
    """What one attempt brought: an answer (status, raw body, headers, its KsefApiError) or a transport failure."""

    def __init__(self, call, status=None, raw=b'', headers=None, failure=None):
        self.call = call
        self.status = status
        self.raw = raw
        self.headers = headers or {}
        self.failure = failure
        self.error = None


class DeadlinePassed(Exception):
    """The whole answer did not arrive before the request's deadline (raised by SIGALRM)."""


@contextlib.contextmanager
def deadline(seconds: Optional[float]) -> Iterator[None]:
    """Raise DeadlinePassed in the block when it runs longer than seconds.

    requests' timeout bounds each wait for a byte, so a server that trickles one byte at a time could hold a call
    for ever; the alarm bounds the whole exchange. Signals reach the main thread only (where modules run); in
    another thread the per-byte timeout alone applies.
    """
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, 'setitimer'):
        yield
        return

    def expire(dummy_signum, dummy_frame):
        raise DeadlinePassed()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
