"""Sliding-window rate limits with KSeF's production values (SPEC 6, openapi x-rate-limits).

Each (endpoint, caller) pair has its own counter; the caller is (context, client IP) for authenticated
calls and the client IP otherwise. Windows of 1 s, 60 s and 3600 s are checked together.
"""

import collections
import math
import threading

# Production limits of GET /rate-limits (values of the openapi x-rate-limits of each group's endpoints).
PRODUCTION_LIMITS = {
    'onlineSession': {'perSecond': 10, 'perMinute': 30, 'perHour': 120},
    'batchSession': {'perSecond': 10, 'perMinute': 20, 'perHour': 60},
    'invoiceSend': {'perSecond': 10, 'perMinute': 30, 'perHour': 180},
    'invoiceStatus': {'perSecond': 30, 'perMinute': 120, 'perHour': 1200},
    'sessionList': {'perSecond': 5, 'perMinute': 10, 'perHour': 60},
    'sessionInvoiceList': {'perSecond': 10, 'perMinute': 20, 'perHour': 200},
    'sessionMisc': {'perSecond': 10, 'perMinute': 120, 'perHour': 1200},
    'invoiceMetadata': {'perSecond': 8, 'perMinute': 16, 'perHour': 20},
    'invoiceExport': {'perSecond': 8, 'perMinute': 16, 'perHour': 20},
    'invoiceExportStatus': {'perSecond': 10, 'perMinute': 60, 'perHour': 600},
    'invoiceDownload': {'perSecond': 8, 'perMinute': 16, 'perHour': 64},
    'other': {'perSecond': 10, 'perMinute': 30, 'perHour': 120},
}
GROUPS = tuple(PRODUCTION_LIMITS)

# Public and authentication endpoints: 60 requests per second, no minute/hour limits.
PUBLIC_LIMITS = {'perSecond': 60, 'perMinute': None, 'perHour': None}

WINDOWS = (('perSecond', 1.0, 'sekundę'), ('perMinute', 60.0, 'minutę'), ('perHour', 3600.0, 'godzinę'))


# Escalating blocks (switch rateLimitEscalation): the longest block, and the quiet time that forgets violations.
MAX_BLOCK = 3600.0
VIOLATION_MEMORY = 3600.0


class RateLimiter:
    def __init__(self, enabled=True):
        self.enabled = enabled
        self._lock = threading.Lock()
        self._hits = collections.defaultdict(collections.deque)
        self._blocks = {}   # key -> {'until', 'length', 'last'} while escalation is on

    def reset(self):
        with self._lock:
            self._hits.clear()
            self._blocks.clear()

    def hit(self, key, limits, now, escalation=1):
        """Count one request; returns None when allowed, else (retry_after_seconds, detail text).

        A refused request is not counted, so a client that waits Retry-After gets through. With
        `escalation` > 1 (KSeF: "block duration grows with repeated violations") each refusal starts a
        block of the caller: the first lasts until a slot frees, each further refusal within an hour
        (also one sent during a block) lasts `escalation` times the previous block, at most an hour.
        """
        if not self.enabled:
            return None
        with self._lock:
            if escalation > 1:
                block = self._blocks.get(key)
                if block and block['until'] > now:
                    return self._escalate(key, block['length'], now, escalation)
            refused = self._window_hit(key, limits, now)
            if refused and escalation > 1:
                return self._escalate(key, refused[0], now, escalation)
            return refused

    def _escalate(self, key, wait, now, escalation):
        block = self._blocks.get(key)
        if block is None or block['last'] <= now - VIOLATION_MEMORY:
            length = float(wait)
        else:
            length = max(float(wait), block['length'] * escalation)
        length = min(MAX_BLOCK, length)
        self._blocks[key] = {'until': now + length, 'length': length, 'last': now}
        retry_after = max(1, int(math.ceil(length)))
        return retry_after, ('Przekroczono limit żądań (kolejne naruszenie, blokada wydłużona). '
                             'Spróbuj ponownie po %d sekundach.' % retry_after)

    def _window_hit(self, key, limits, now):
        hits = self._hits[key]
        while hits and hits[0] <= now - 3600.0:
            hits.popleft()
        for name, window, label in WINDOWS:
            limit = limits.get(name)
            if limit is None:
                continue
            in_window = [t for t in hits if t > now - window]
            if len(in_window) >= limit:
                # The slot frees when the oldest request that still blocks leaves the window.
                blocking = in_window[len(in_window) - limit] if limit > 0 else now
                retry_after = max(1, int(math.ceil(blocking + window - now)))
                detail = ('Przekroczono limit %d żądań na %s. Spróbuj ponownie po %d sekundach.'
                          % (limit, label, retry_after))
                return retry_after, detail
        hits.append(now)
        return None
