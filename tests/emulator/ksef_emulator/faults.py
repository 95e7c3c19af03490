"""Injected faults (POST /emulator/faults) to test client retry and idempotency logic.

Modes: 'status' answers an HTTP status with a body and does nothing; 'drop-response' performs the
operation, then closes the connection without an answer; 'delay' sleeps, then answers normally;
'hold' keeps the request waiting, before it acts, until POST /emulator/faults/release (or DELETE
/emulator/faults, or its `timeout`), then answers normally, so a test can act while a client waits
for an answer (kill it) without a wall-clock window;
'reset' closes the connection with a TCP RST before doing anything; 'enrollment-status' lets an
enrollment POST succeed (202) and then ends that enrollment with `status` (400 rejected, 500 or 550
cancelled) instead of issuing it, so clients can meet a pending enrollment that fails.
"""

import threading

MODES = ('status', 'drop-response', 'delay', 'hold', 'reset', 'enrollment-status')
# A held request that nobody releases goes on after this many seconds (a test that died must not hang it).
HOLD_TIMEOUT = 120.0
MAX_HOLD_TIMEOUT = 600.0
# Final enrollment status codes of KSeF other than 200 (SPEC 7: 400 rejected, 500 unknown error, 550 cancelled).
ENROLLMENT_FAILURE_CODES = (400, 500, 550)


class FaultError(ValueError):
    """The fault definition is invalid (message is shown to the caller)."""


def parse_fault(data):
    if not isinstance(data, dict):
        raise FaultError('body must be a JSON object')
    mode = data.get('mode')
    if mode not in MODES:
        raise FaultError('mode must be one of %s' % ', '.join(MODES))
    method = str(data.get('method') or '*').upper()
    route = data.get('route') or '*'
    if not isinstance(route, str) or not (route == '*' or route.startswith('/')):
        raise FaultError("route must be an OpenAPI path template such as '/certificates/enrollments' or '*'")
    count = data.get('count', 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise FaultError('count must be a positive integer')
    fault = {'method': method, 'route': route, 'mode': mode, 'count': count}
    if mode == 'status':
        status = data.get('status')
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise FaultError('status must be an HTTP error status (400-599)')
        fault['status'] = status
        fault['retryAfter'] = int(data.get('retryAfter', 1))
    if mode == 'enrollment-status':
        status = data.get('status')
        if status not in ENROLLMENT_FAILURE_CODES or isinstance(status, bool):
            raise FaultError('status of an enrollment-status fault must be one of 400, 500, 550')
        fault['status'] = status
        fault['description'] = str(data.get('description') or 'Injected enrollment failure.')
    if mode == 'delay':
        delay = data.get('delay')
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 300:
            raise FaultError('delay must be a number of seconds between 0 and 300')
        fault['delay'] = float(delay)
    if mode == 'hold':
        timeout = data.get('timeout', HOLD_TIMEOUT)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= MAX_HOLD_TIMEOUT:
            raise FaultError('timeout of a hold fault must be a number of seconds above 0, at most %d' % MAX_HOLD_TIMEOUT)
        fault['timeout'] = float(timeout)
    return fault


class FaultRegistry:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        # Requests held by a 'hold' fault: (request {seq, method, route}, the event that releases it) pairs.
        self._held = []
        self._held_changed = threading.Condition(self._lock)

    def add(self, fault):
        with self._lock:
            self._faults.append(dict(fault))

    def clear(self):
        """Forget the pending faults and release every held request."""
        with self._lock:
            self._faults = []
        self.release()

    def hold(self, request, timeout):
        """Block the calling request thread until release() or `timeout` seconds; True when released."""
        released = threading.Event()
        entry = (dict(request), released)
        with self._lock:
            self._held.append(entry)
            self._held_changed.notify_all()
        try:
            return released.wait(timeout)
        finally:
            with self._lock:
                self._held.remove(entry)

    def held(self, wait=0.0):
        """The requests held now; with `wait`, first wait up to that many seconds for at least one."""
        with self._lock:
            self._held_changed.wait_for(lambda: self._held, timeout=wait)
            return [dict(request) for request, dummy in self._held]

    def release(self):
        """Let every held request go on; the number released."""
        with self._lock:
            held = list(self._held)
        for dummy, released in held:
            released.set()
        return len(held)

    def pending(self):
        with self._lock:
            return [dict(f) for f in self._faults]

    def take(self, method, route):
        """Return the first fault matching this request and use up one of its applications."""
        with self._lock:
            for fault in self._faults:
                if fault['method'] in ('*', method) and fault['route'] in ('*', route):
                    fault['count'] -= 1
                    if fault['count'] <= 0:
                        self._faults.remove(fault)
                    return dict(fault)
        return None
