# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Scripted HTTP exchanges for unit tests (the idea of internal_test_tools' fetch_url framework, for requests).

    script = HttpScript([
        Exchange('POST', '/auth/challenge', reply={'challenge': '...', 'timestampMs': 1}),
        Exchange('GET', '/certificates/limits', token='ACCESS', reply={'canRequest': True}),
        Exchange('POST', '/certificates/query', json={'name': 'x'}, params={'pageSize': '50'}, reply={...}),
        Exchange('POST', '/certificates/enrollments', exc=requests.exceptions.ReadTimeout('boom')),
    ])
    client = KsefHttpClient('https://ksef.invalid/v2', session=script.session())   # or script.install(monkeypatch)
    ...
    script.verify()          # every exchange was used, in order, and no request was unexpected

Each request must match the next exchange (method, route, and any json/params/token/headers/body check),
otherwise the test fails with a message naming both. ``route`` is an OpenAPI route template such as
'/certificates/enrollments/{referenceNumber}' (matched against the end of the URL path) or a full URL.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import json as _json
import re

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

try:
    from urllib.parse import parse_qs, urlsplit
except ImportError:  # pragma: no cover
    from urlparse import parse_qs, urlsplit  # type: ignore

from urllib3.response import HTTPResponse

_NOT_GIVEN = object()


class Exchange:
    """One expected request and the scripted answer.

    json:    None (not checked), a dict/list compared for equality, or a callable(body) that returns
             True (or None) to accept and False/raises to reject.
    params:  dict of expected query parameters (values compared as strings); None = not checked.
    token:   expected bearer token (Authorization header); None = not checked.
    headers: dict of expected request headers (subset); body: callable(bytes) check of a non-JSON body.
    reply:   dict/list -> JSON reply; bytes/str -> raw body; None -> empty body.
    exc:     an exception to raise instead of answering (e.g. requests.exceptions.ConnectionError()).
    """

    def __init__(self, method, route, json=None, status=200, reply=None, headers=None, reply_headers=None,
                 params=None, token=None, body=None, exc=None, content_type=None):
        self.method = method.upper()
        self.route = route
        self.json = json
        self.status = status
        self.reply = reply
        self.headers = headers or {}
        self.reply_headers = dict(reply_headers or {})
        self.params = params
        self.token = token
        self.body = body
        self.exc = exc
        self.content_type = content_type

    def __repr__(self):
        return 'Exchange(%s %s -> %s)' % (self.method, self.route, 'raise %r' % self.exc if self.exc else self.status)

    def route_matches(self, url):
        if self.route.startswith('http://') or self.route.startswith('https://'):
            return url.split('?')[0] == self.route.split('?')[0]
        pattern = re.sub(r'\\\{[^}]+\\\}', '[^/]+', re.escape(self.route)) + '$'
        return re.search(pattern, urlsplit(url).path) is not None


class RecordedRequest:
    def __init__(self, prepared):
        self.method = prepared.method
        self.url = prepared.url
        self.headers = dict(prepared.headers)
        body = prepared.body
        if isinstance(body, str):
            body = body.encode('utf-8')
        self.body = body or b''
        self.query = dict((k, v[0] if len(v) == 1 else v) for k, v in parse_qs(urlsplit(self.url).query).items())

    def json(self):
        return _json.loads(self.body.decode('utf-8')) if self.body else None

    def __repr__(self):
        return '%s %s' % (self.method, self.url)


class _ScriptAdapter(BaseAdapter):
    def __init__(self, script):
        super(_ScriptAdapter, self).__init__()
        self.script = script
        self._builder = HTTPAdapter()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.script.timeouts.append(timeout)
        self.script.verify_values.append(verify)
        exchange = self.script._next(request)
        if exchange.exc is not None:
            raise exchange.exc
        return self._build(request, exchange)

    def _build(self, request, exchange):
        headers = dict(exchange.reply_headers)
        reply = exchange.reply
        if isinstance(reply, (dict, list)):
            data = _json.dumps(reply).encode('utf-8')
            headers.setdefault('Content-Type', exchange.content_type or 'application/json')
        elif isinstance(reply, str):
            data = reply.encode('utf-8')
            headers.setdefault('Content-Type', exchange.content_type or 'text/plain')
        elif isinstance(reply, bytes):
            data = reply
            if exchange.content_type:
                headers.setdefault('Content-Type', exchange.content_type)
        else:
            data = b''
        headers.setdefault('Content-Length', str(len(data)))
        raw = HTTPResponse(body=io.BytesIO(data), headers=headers, status=exchange.status,
                           preload_content=False, decode_content=False, reason='Scripted')
        return self._builder.build_response(request, raw)

    def close(self):
        self._builder.close()


class HttpScript:
    """Ordered scripted exchanges for a requests session."""

    def __init__(self, exchanges=None):
        self.exchanges = list(exchanges or [])
        self.position = 0
        self.requests = []
        self.timeouts = []
        self.verify_values = []
        self.failures = []
        self.adapter = _ScriptAdapter(self)

    def add(self, *exchanges):
        self.exchanges.extend(exchanges)
        return self

    def session(self):
        """A requests.Session whose every request goes to this script."""
        session = requests.Session()
        session.mount('http://', self.adapter)
        session.mount('https://', self.adapter)
        return session

    def install(self, monkeypatch):
        """Route every requests.Session (also those created inside module code) to this script."""
        adapter = self.adapter
        monkeypatch.setattr(requests.Session, 'get_adapter', lambda session, url: adapter)
        return self

    def _fail(self, message):
        self.failures.append(message)
        raise AssertionError(message)

    def _next(self, prepared):
        recorded = RecordedRequest(prepared)
        self.requests.append(recorded)
        if self.position >= len(self.exchanges):
            self._fail('unexpected request %r: all %d scripted exchanges were used' % (recorded, len(self.exchanges)))
        exchange = self.exchanges[self.position]
        self.position += 1
        where = 'request #%d %r (expected %r)' % (self.position, recorded, exchange)
        if recorded.method != exchange.method or not exchange.route_matches(recorded.url):
            self._fail('%s: method or route differs' % where)
        if exchange.params is not None:
            expected = dict((k, str(v)) for k, v in exchange.params.items())
            if recorded.query != expected:
                self._fail('%s: query %r != %r' % (where, recorded.query, expected))
        if exchange.token is not None:
            auth = recorded.headers.get('Authorization')
            if auth != 'Bearer %s' % exchange.token:
                self._fail('%s: Authorization header does not carry the expected token' % where)
        for name, value in exchange.headers.items():
            if recorded.headers.get(name) != value:
                self._fail('%s: header %s is %r, expected %r' % (where, name, recorded.headers.get(name), value))
        if exchange.json is not None:
            try:
                body = recorded.json()
            except ValueError:
                self._fail('%s: body is not JSON' % where)
            if callable(exchange.json):
                if exchange.json(body) is False:
                    self._fail('%s: JSON body %r rejected by matcher' % (where, body))
            elif body != exchange.json:
                self._fail('%s: JSON body %r != %r' % (where, body, exchange.json))
        if exchange.body is not None and exchange.body(recorded.body) is False:
            self._fail('%s: body rejected by matcher' % where)
        return exchange

    @property
    def remaining(self):
        return self.exchanges[self.position:]

    def verify(self):
        """Fail when a request did not match or scripted exchanges were left unused."""
        assert not self.failures, 'HTTP script failures: %s' % self.failures
        assert not self.remaining, 'scripted exchanges not used: %r' % self.remaining


class _Answer:
    """The parts of a requests.Response that KsefHttpClient reads."""

    def __init__(self, status, body, headers=None):
        self.status_code = status
        self.content = _json.dumps(body).encode('utf-8')
        self.headers = dict({'Content-Type': 'application/json'}, **(headers or {}))

    def iter_content(self, chunk_size=1):
        yield self.content

    def close(self):
        pass


def _no_latency(dummy_index):
    return (0.0, 0.0)


class CountingSession:
    """A requests session that counts calls like KSeF (and the emulator's ratelimit.py) and answers 429 past a limit.

    For the HTTP client's pacing, below the fake KSeF (fake_ksef.FakeKsef counts calls at the gateway, with no
    latency and no Retry-After header). `limits` ({window seconds: calls}) apply to every route template, each
    with its own counter. A call is counted when it ARRIVES, `up` seconds after it was sent (latency(call index)
    -> (up, down)), and stays in a window of W seconds while stamp > now - W; a refused call is not counted and
    is answered with the Retry-After KSeF computes (until the oldest call filling the window leaves it). The
    answer takes `down` more seconds.
    sent: (clock when sent, url); refused: (clock when it arrived, method, url, window).
    """

    def __init__(self, clock, limits, latency=_no_latency):
        self.clock = clock
        self.limits = limits
        self.latency = latency
        self.hits = {}
        self.sent = []
        self.refused = []

    def request(self, method, url, **kwargs):
        up, down = self.latency(len(self.sent))
        self.sent.append((self.clock(), url))
        self.clock.advance(up)
        now = self.clock()
        template = re.sub(r'/enrollments/[^/?]+$', '/enrollments/{referenceNumber}', url.split('?')[0])
        hits = self.hits.setdefault((method, template), [])
        for window, limit in sorted(self.limits.items()):
            in_window = [t for t in hits if t > now - window]
            if len(in_window) >= limit:
                retry_after = max(1, int(-(-(in_window[len(in_window) - limit] + window - now) // 1)))
                self.refused.append((now, method, url, window))
                self.clock.advance(down)
                return _Answer(429, {'status': {'code': 429, 'description': 'Too Many Requests'}},
                               {'Retry-After': str(retry_after)})
        hits.append(now)
        self.clock.advance(down)
        return _Answer(200, {'status': {'code': 200}})
