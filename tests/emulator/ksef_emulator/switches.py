"""Behaviour switches of real KSeF that the emulator leaves off by default (README: "Switches").

Each switch is set on the command line (the starting values) and changed at run time with
`PUT /emulator/switches` (only the keys given change); `DELETE /emulator/switches` restores the starting
values. Unlike faults, switches are not used up: they stay until changed.

- revocationBlockedSeconds: a revoked certificate reads `Blocked` for this many seconds, then `Revoked`
  (0: revocation is immediate).
- enrollmentRetentionSeconds / authRetentionSeconds: age after which GET /certificates/enrollments/{ref} and
  GET /auth/{ref} answer 410 Gone (null: KSeF's 30 days / 7 days).
- rateLimitEscalation: factor by which each further 429 of the same caller lengthens its block
  (1: no escalation, the block ends when a slot of the sliding window frees).
- refuseReusedKey: an enrollment whose CSR key is already certified for the same subject ends with status 400.
- systemWarnings: [{method, route, warning}]: answers of matching requests carry `X-System-Warning: warning`.
- issuedValidFromSeconds: a certificate enrolled without validFrom starts this many seconds after it is issued
  (0: at once, as KSeF). A successor that is not valid yet, for the tests of proven rotation.
"""

import copy
import threading
import unicodedata

DAY = 24 * 3600.0
KSEF_ENROLLMENT_RETENTION = 30 * DAY
KSEF_AUTH_RETENTION = 7 * DAY
SIG_001 = '[sig-001]: Format podpisu niezgodny z akceptowanymi profilami XAdES'

DEFAULTS = {
    'revocationBlockedSeconds': 0,
    'enrollmentRetentionSeconds': None,
    'authRetentionSeconds': None,
    'rateLimitEscalation': 1,
    'refuseReusedKey': False,
    'systemWarnings': [],
    'issuedValidFromSeconds': 0,
}


class SwitchError(ValueError):
    """The switch values are invalid (message is shown to the caller)."""


def _number(name, value, low, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
        raise SwitchError('%s must be a number >= %s%s' % (name, low, ' or null' if allow_none else ''))
    return float(value) if isinstance(value, float) else value


def parse_system_warning(item):
    """{method, route, warning} from a JSON object or from the command line form '[METHOD ]ROUTE=WARNING'."""
    if isinstance(item, str):
        target, separator, warning = item.partition('=')
        if not separator:
            raise SwitchError("a system warning is written '[METHOD ]ROUTE=WARNING', e.g. "
                              "'POST /auth/xades-signature=%s'" % SIG_001)
        parts = target.split()
        method, route = (parts[0], parts[1]) if len(parts) == 2 else ('*', target.strip())
        item = {'method': method, 'route': route, 'warning': warning}
    if not isinstance(item, dict):
        raise SwitchError('each system warning must be an object {method, route, warning}')
    method = str(item.get('method') or '*').upper()
    route = item.get('route') or '*'
    if not isinstance(route, str) or not (route == '*' or route.startswith('/')):
        raise SwitchError("route must be an OpenAPI path template such as '/auth/xades-signature' or '*'")
    warning = item.get('warning') or SIG_001
    if not isinstance(warning, str) or '\n' in warning or '\r' in warning:
        raise SwitchError('warning must be one line of text')
    return {'method': method, 'route': route, 'warning': ascii_fold(warning)}


def ascii_fold(text):
    """KSeF normalises the header value with ASCII folding ('ż' -> 'z', 'ł' -> 'l')."""
    text = text.replace('ł', 'l').replace('Ł', 'L')
    return unicodedata.normalize('NFKD', text).encode('ascii', 'ignore').decode('ascii')


def validate(changes):
    """Checked copy of a (partial) switch object."""
    if not isinstance(changes, dict):
        raise SwitchError('body must be a JSON object')
    unknown = sorted(set(changes) - set(DEFAULTS))
    if unknown:
        raise SwitchError('unknown switch(es): %s; known: %s' % (', '.join(unknown), ', '.join(DEFAULTS)))
    result = {}
    for name, value in changes.items():
        if name in ('revocationBlockedSeconds', 'issuedValidFromSeconds'):
            result[name] = _number(name, value, 0)
        elif name in ('enrollmentRetentionSeconds', 'authRetentionSeconds'):
            result[name] = _number(name, value, 0, allow_none=True)
        elif name == 'rateLimitEscalation':
            result[name] = _number(name, value, 1)
        elif name == 'refuseReusedKey':
            if not isinstance(value, bool):
                raise SwitchError('refuseReusedKey must be true or false')
            result[name] = value
        elif name == 'systemWarnings':
            if not isinstance(value, list):
                raise SwitchError('systemWarnings must be a list of {method, route, warning}')
            result[name] = [parse_system_warning(item) for item in value]
    return result


class Switches:
    """Current switch values, shared by the request threads."""

    def __init__(self, initial=None):
        self._lock = threading.Lock()
        self._initial = dict(copy.deepcopy(DEFAULTS), **validate(initial or {}))
        self._values = copy.deepcopy(self._initial)

    def get(self, name):
        with self._lock:
            return copy.deepcopy(self._values[name])

    def snapshot(self):
        with self._lock:
            return copy.deepcopy(self._values)

    def update(self, changes):
        checked = validate(changes)
        with self._lock:
            self._values.update(checked)
            return copy.deepcopy(self._values)

    def reset(self):
        with self._lock:
            self._values = copy.deepcopy(self._initial)
            return copy.deepcopy(self._values)

    def enrollment_retention(self):
        value = self.get('enrollmentRetentionSeconds')
        return KSEF_ENROLLMENT_RETENTION if value is None else value

    def auth_retention(self):
        value = self.get('authRetentionSeconds')
        return KSEF_AUTH_RETENTION if value is None else value

    def warnings_for(self, method, route):
        """The X-System-Warning texts for one request (route: its OpenAPI template or path)."""
        return [item['warning'] for item in self.get('systemWarnings')
                if item['method'] in ('*', method) and item['route'] in ('*', route)]
