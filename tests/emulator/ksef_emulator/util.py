"""Small helpers shared by the emulator: time formatting, reference numbers, identifiers."""

import datetime
import re
import secrets
import time

UTC = datetime.timezone.utc

CHALLENGE_PATTERN = re.compile(r'^\d{8}-CR-[A-F0-9]{10}-[A-F0-9]{10}-[A-F0-9]{2}$')
REFERENCE_PATTERN = re.compile(r'^\d{8}-[A-Z]{2}-[A-F0-9]{10}-[A-F0-9]{10}-[A-F0-9]{2}$')
SERIAL_PATTERN = re.compile(r'^[0-9A-F]{16}$')
_ISO_PATTERN = re.compile(
    r'^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?$')


def now():
    """Current time as epoch seconds (float); the single clock of the emulator."""
    return time.time()


def to_datetime(epoch_seconds):
    return datetime.datetime.fromtimestamp(epoch_seconds, UTC)


def iso(epoch_seconds):
    """KSeF-style ISO 8601 date-time with offset, e.g. 2025-10-11T12:23:56.015430+00:00."""
    return to_datetime(epoch_seconds).isoformat(timespec='microseconds')


def parse_iso(text):
    """Parse an ISO 8601 date-time (KSeF sends up to 7 fractional digits) to epoch seconds.

    A value without an offset is read as UTC. Raises ValueError for anything else.
    """
    if not isinstance(text, str):
        raise ValueError('date-time must be a string')
    match = _ISO_PATTERN.match(text.strip())
    if not match:
        raise ValueError('not an ISO 8601 date-time: %r' % text)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    microseconds = int((fraction or '0')[:6].ljust(6, '0'))
    tz = UTC
    if offset and offset not in ('Z', 'z'):
        sign = 1 if offset[0] == '+' else -1
        digits = offset[1:].replace(':', '')
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    value = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                              microseconds, tzinfo=tz)
    return value.timestamp()


def reference_number(kind, at=None):
    """36-character KSeF reference number: YYYYMMDD-<kind>-<10 hex>-<10 hex>-<2 hex>."""
    day = to_datetime(at if at is not None else now()).strftime('%Y%m%d')
    return '%s-%s-%s-%s-%s' % (day, kind, secrets.token_hex(5).upper(), secrets.token_hex(5).upper(),
                               secrets.token_hex(1).upper())


def new_serial_number():
    """16 uppercase hex characters, never zero (X.509 serials must be positive)."""
    while True:
        value = secrets.randbits(64)
        if value:
            return '%016X' % value


def trace_id():
    return secrets.token_hex(16)


def service_code(trace):
    """KSeF serviceCode looks like a W3C traceparent: 00-<trace>-<span>-00."""
    return '00-%s-%s-00' % (trace, secrets.token_hex(8))
