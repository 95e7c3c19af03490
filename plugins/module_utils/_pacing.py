# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Pacing to KSeF's rate limits: a sliding window per endpoint, the limits in force, and what a 429 teaches.

The HTTP client (_http.py) asks RatePacer for a slot before every request it sends.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
from typing import Any, Dict, Mapping, Optional, Tuple

from ansible_collections.ksef.certificates.plugins.module_utils._api import AUTH_PUBLIC_ENDPOINTS, RATE_LIMITS

# The endpoints of KSeF's auth/public group (AUTH_PUBLIC_ENDPOINTS, named in the gateway) share these limits.
AUTH_PUBLIC_LIMITS = {1: 60}
# Published limits of the "other" group (every certificate endpoint, the session endpoints, the rate limits),
# counted per endpoint.
OTHER_LIMITS = {1: 10, 60: 30, 3600: 120}
# Seconds added to every window edge when pacing (see SlidingWindow).
PACING_MARGIN = 0.25
# The windows KSeF counts in (seconds), shortest first. A 429 is put down to the shortest window its
# Retry-After fits in (a block lasts until the oldest call that fills the window leaves it).
RATE_WINDOWS = (1, 60, 3600)


class SlidingWindow:
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

    def __init__(self, margin: float = 0.0) -> None:
        self.margin = margin
        self.stamps = collections.deque()
        self.refused = []                 # stamps of calls KSeF refused (429): not in KSeF's count

    def delay_needed(self, now: float, limits: Mapping[int, int]) -> float:
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

    def accepted_since(self, since: float) -> int:
        """Calls stamped after `since` that KSeF did not refuse (as far as the client knows)."""
        self.refused = [stamp for stamp in self.refused if stamp > since]
        return sum(1 for stamp in self.stamps if stamp > since) - len(self.refused)

    def mark_refused(self, stamp: float) -> None:
        self.refused.append(stamp)

    def record(self, now: float) -> float:
        """Count a call at the moment it is sent; returns the stamp for settle()."""
        self.stamps.append(now)
        return now

    def settle(self, stamp: float, now: float) -> None:
        """The answer (or error) of the call stamped `stamp` came in at `now`: count it from then on."""
        for index in range(len(self.stamps) - 1, -1, -1):
            if self.stamps[index] == stamp:
                self.stamps[index] = max(stamp, now)
                return


class RatePacer:
    """The limits a run paces to and the calls it sent, per endpoint ('METHOD /route' keys)."""

    def __init__(self, client: Any, margin: float = PACING_MARGIN) -> None:
        # The client whose calls are paced: its clock(), sleep(), warn() and log() are used (read at each
        # use, so a test or caller that replaces one of them is followed).
        self.client = client
        self.margin = margin
        self.paced_seconds = 0.0
        self.other_limits = dict(OTHER_LIMITS)
        self.auth_limits = dict(AUTH_PUBLIC_LIMITS)
        # Where other_limits come from: 'published', str(RATE_LIMITS), then '+429' once a 429 taught more.
        self.limits_source = 'published'
        self.learned_limits = []          # what each 429 taught: {'endpoint', 'window', 'limit'}
        self._windows = {}

    def set_rate_limits(self, rate_limits_response: Optional[Mapping[str, Any]]) -> None:
        """Use the effective limits KsefApi.rate_limits() read (group "other") instead of the published ones."""
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
            self.limits_source = str(RATE_LIMITS)

    def _limits_for(self, key):
        if key in AUTH_PUBLIC_ENDPOINTS:
            return self.auth_limits
        return self.other_limits

    def limits_for(self, method: str, endpoint: str) -> Dict[int, int]:
        """The limits the client paces `endpoint` (route template) to: {window seconds: calls}."""
        return dict(self._limits_for('%s %s' % (method.upper(), endpoint)))

    def learn_from_429(self, key: str, window: SlidingWindow, retry_after: Optional[float], now: float) -> Optional[Tuple[int, int]]:
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
        sent = window.accepted_since(now - span - self.margin)
        if sent < 1:
            return None
        limits = self._limits_for(key)
        if limits.get(span) is not None and limits[span] <= sent:
            return None
        limits[span] = sent
        if limits is self.other_limits:
            self.limits_source = self.limits_source.split('+')[0] + '+429'
        self.learned_limits.append({'endpoint': key, 'window': span, 'limit': sent})
        self.client.warn('KSeF answered %s with HTTP 429 (retry after %s s) below the limits this run paced to; pacing '
                         'to at most %d calls per %d s from now on' % (key, retry_after, sent, span))
        return span, sent

    def window(self, key: str) -> SlidingWindow:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = SlidingWindow(self.margin)
        return window

    def seconds_until_slot(self, method: str, endpoint: str) -> float:
        """Seconds until a request to `endpoint` (route template) can be sent without pacing; 0.0 = now.

        Every URL of a template shares its counter (KSeF limits endpoints, not reference numbers).
        Callers with other work to do use it to do that work instead of blocking in request().
        """
        key = '%s %s' % (method.upper(), endpoint)
        window = self._windows.get(key)
        if window is None:
            return 0.0
        return max(0.0, window.delay_needed(self.client.clock(), self._limits_for(key)))

    def pace(self, key: str) -> Tuple[SlidingWindow, float]:
        """Wait for a free slot of the endpoint, then count the call; returns (window, stamp)."""
        window = self.window(key)
        limits = self._limits_for(key)
        delay = window.delay_needed(self.client.clock(), limits)
        while delay > 0:
            self.client.log('pacing %s: waiting %.2f s to stay under the KSeF rate limit' % (key, delay))
            self.paced_seconds += delay
            self.client.sleep(delay)
            delay = window.delay_needed(self.client.clock(), limits)
        return window, window.record(self.client.clock())
