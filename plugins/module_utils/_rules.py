# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The KSeF rules the collection applies, each written once: certificate names and serial numbers, the CSR
subject layout, the renewal rule and the date-time format KSeF sends.

Pure Python (no cryptography, no I/O): the controller modules, the host-side module and the report use
the same functions, so a rule cannot drift between them.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import datetime
import re
from typing import Any, List, Mapping, Optional, Tuple, Union

# A date-time as KSeF writes it (a string) or as parsed (a datetime).
DateTimeValue = Union[datetime.datetime, str]

# ---------------------------------------------------------------------------------------------
# Certificate names
# ---------------------------------------------------------------------------------------------

NAME_MIN_LENGTH = 5
NAME_MAX_LENGTH = 100
# Letters (Polish ones included), digits, space, '_' and '-'; matched with fullmatch, so a trailing
# newline is refused (a '$' anchor would accept one).
NAME_PATTERN = re.compile(u'[a-zA-Z0-9_\\- \u0105\u0107\u0119\u0142\u0144\u00f3\u015b\u017a\u017c'
                          u'\u0104\u0106\u0118\u0141\u0143\u00d3\u015a\u0179\u017b]+')
NAME_RULE_TEXT = ('use %d to %d characters from letters (Polish letters allowed), digits, space, "_" and "-"'
                  % (NAME_MIN_LENGTH, NAME_MAX_LENGTH))

CERTIFICATE_TYPES = ('authentication', 'offline')
# The private keys KSeF certifies: EC on P-256 or RSA of exactly 2048 bits.
KEY_TYPES = ('ec', 'rsa')
# The key type a new key gets when the declaration names none: EC P-256, the one KSeF recommends.
DEFAULT_KEY_TYPE = 'ec'


def certificate_name_valid(name: Any) -> bool:
    """True when KSeF accepts `name` as a certificate name."""
    if not isinstance(name, str):
        return False
    return NAME_MIN_LENGTH <= len(name) <= NAME_MAX_LENGTH and NAME_PATTERN.fullmatch(name) is not None


def certificate_name_problem(name: Any) -> Optional[str]:
    """None when the name is accepted; otherwise the sentence to show the user."""
    if certificate_name_valid(name):
        return None
    return 'Certificate name %r is not accepted by KSeF: %s' % (name, NAME_RULE_TEXT)


def serial_number_text(number: Union[int, str]) -> str:
    """A certificate serial number (int, or a hex string in any case, with or without leading zeros) in KSeF's
    notation: upper-case hex, at least 16 digits. ValueError when it is not a number."""
    if isinstance(number, str):
        number = int(number.strip(), 16)
    return '%016X' % number


# ---------------------------------------------------------------------------------------------
# Control characters
# ---------------------------------------------------------------------------------------------

# C0 and C1 control characters, DEL and the Unicode line and paragraph separators: none belongs in a
# certificate subject or a passphrase, and a line break there can start a new line of a configuration
# file (an OpenSSL config) or be cut off by a tool that reads one line.
CONTROL_CHARACTERS = re.compile(u'[\x00-\x1f\x7f-\x9f\u2028\u2029]')


def has_control_characters(value: Any) -> bool:
    """True when the text `value` holds a control character (newline, tab, NUL, ...)."""
    return isinstance(value, str) and CONTROL_CHARACTERS.search(value) is not None


def subject_control_problems(enrollment_data: Mapping[str, Any]) -> List[Tuple[str, Any]]:
    """Fields of the enrollment data (GET /certificates/enrollments/data) whose value holds a control character.

    [(field, value)] in layout order, empty when every value is clean.
    """
    return [(attribute.field, value) for attribute, value in subject_values(enrollment_data)
            if not isinstance(value, str) or has_control_characters(value)]


# ---------------------------------------------------------------------------------------------
# CSR subject layout
# ---------------------------------------------------------------------------------------------

# field: the key in GET /certificates/enrollments/data; snake_field: the same in snake_case (module
# returns, the role); oid: dotted attribute type; string_type: ASN.1 string type of the value.
SubjectAttribute = collections.namedtuple('SubjectAttribute', 'field snake_field oid string_type')

# The order of the official C# client; one attribute per RDN; UTF8String except countryName and
# serialNumber (PrintableString). Empty fields are left out.
SUBJECT_LAYOUT = (
    SubjectAttribute('commonName', 'common_name', '2.5.4.3', 'UTF8String'),
    SubjectAttribute('surname', 'surname', '2.5.4.4', 'UTF8String'),
    SubjectAttribute('givenName', 'given_name', '2.5.4.42', 'UTF8String'),
    SubjectAttribute('organizationName', 'organization_name', '2.5.4.10', 'UTF8String'),
    SubjectAttribute('organizationIdentifier', 'organization_identifier', '2.5.4.97', 'UTF8String'),
    SubjectAttribute('countryName', 'country_name', '2.5.4.6', 'PrintableString'),
    SubjectAttribute('serialNumber', 'serial_number', '2.5.4.5', 'PrintableString'),
    SubjectAttribute('uniqueIdentifier', 'unique_identifier', '2.5.4.45', 'UTF8String'),
)


def subject_values(enrollment_data: Mapping[str, Any]) -> List[Tuple[SubjectAttribute, Any]]:
    """[(SubjectAttribute, value)] in layout order for the non-empty fields of the enrollment data.

    Accepts the API's camelCase keys or their snake_case forms.
    """
    values = []
    for attribute in SUBJECT_LAYOUT:
        value = enrollment_data.get(attribute.field)
        if value is None or value == '':
            value = enrollment_data.get(attribute.snake_field)
        if value is None or value == '':
            continue
        values.append((attribute, value))
    return values


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------

_DATETIME = re.compile(r'(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<fraction>\d+))?'
                       r'(?P<offset>Z|[+-]\d{2}:?\d{2})?')


def parse_datetime(value: DateTimeValue) -> datetime.datetime:
    """KSeF date-time (up to 7 fractional digits, Z, an offset or none for UTC) -> aware datetime.

    Raises ValueError when `value` is not one; an aware datetime is returned as it is, a naive one is UTC.
    """
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=datetime.timezone.utc)
    match = _DATETIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError('not an ISO 8601 date-time: %r' % (value,))
    time_part = match.group('time')
    if time_part.count(':') == 1:
        time_part += ':00'
    parsed = datetime.datetime.strptime('%sT%s' % (match.group('date'), time_part), '%Y-%m-%dT%H:%M:%S')
    parsed = parsed.replace(microsecond=int((match.group('fraction') or '0')[:6].ljust(6, '0')))
    offset = match.group('offset')
    if not offset or offset == 'Z':
        return parsed.replace(tzinfo=datetime.timezone.utc)
    digits = offset[1:].replace(':', '')
    delta = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return parsed.replace(tzinfo=datetime.timezone(-delta if offset[0] == '-' else delta))


def parse_datetime_or_none(value: Optional[DateTimeValue]) -> Optional[datetime.datetime]:
    """parse_datetime for optional values: None when `value` is empty or not a date-time."""
    if not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


# The one form of every date-time the modules and the report return: UTC, whole seconds, '+00:00'.
# Whole seconds because KSeF sends 0 to 7 fractional digits and a certificate's notAfter has none; '+00:00'
# (not 'Z') because datetime.fromisoformat reads it on every Python the collection supports.
RETURN_DATETIME_FORMAT = '%Y-%m-%dT%H:%M:%S+00:00'


def format_datetime(value: Any) -> Any:
    """A date-time (aware or naive-UTC datetime, or a KSeF date-time string) in RETURN_DATETIME_FORMAT.

    Fractions of a second are cut, not rounded, so KSeF's validTo and the certificate's notAfter agree.
    None or '' gives None; any other value that is not a date-time is returned unchanged (never hidden).
    """
    if value is None or value == '':
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return value
    return parsed.astimezone(datetime.timezone.utc).strftime(RETURN_DATETIME_FORMAT)


# ---------------------------------------------------------------------------------------------
# Renewal
# ---------------------------------------------------------------------------------------------

DEFAULT_RENEW_BEFORE_DAYS = 30


def renewal_due(valid_to: DateTimeValue, now: datetime.datetime, renew_before_days: Optional[int] = DEFAULT_RENEW_BEFORE_DAYS) -> bool:
    """True when a certificate valid until `valid_to` must be renewed at `now` (expired ones included).

    A certificate is due once `renew_before_days` days or less remain; `valid_to` may be a datetime or a
    KSeF date-time string. None for renew_before_days means the default.
    """
    if renew_before_days is None:
        renew_before_days = DEFAULT_RENEW_BEFORE_DAYS
    return parse_datetime(valid_to) - now <= datetime.timedelta(days=renew_before_days)


def renews_every_run(renew_before_days: Optional[int], valid_from: Union[None, str, datetime.datetime],
                     valid_to: Union[None, str, datetime.datetime]) -> Optional[int]:
    """The lifetime in whole days when renew_before_days reaches it: such a certificate is due from the day it is
    issued, so every run renews it (one enrollment request each). None when the window is shorter (or unknown).
    valid_from and valid_to are datetimes or KSeF date-time strings."""
    if renew_before_days is None or valid_from is None or valid_to is None:
        return None
    lifetime = (parse_datetime(valid_to) - parse_datetime(valid_from)).days
    return lifetime if renew_before_days >= lifetime else None


# ---------------------------------------------------------------------------------------------
# QR code II (KOD II), what an Offline certificate signs (SPEC 13.1)
# ---------------------------------------------------------------------------------------------

# An RSA key signs with RSASSA-PSS, SHA-256, MGF1 SHA-256 and a salt of this many bytes; an EC key (P-256)
# with ECDSA SHA-256 in IEEE P1363 form (r||s).
QR_CODE_II_PSS_SALT_LENGTH = 32

# The signatures a key kept on a managed host makes for the controller (ksef_deploy_host operation=sign), by
# name -> the key type that makes it. The XAdES login (XMLDSig): RSA PKCS#1 v1.5 SHA-256, or ECDSA SHA-256 as raw
# r||s. A QR code II (SPEC 13.1): RSASSA-PSS SHA-256 (MGF1 SHA-256, salt QR_CODE_II_PSS_SALT_LENGTH), or ECDSA
# P-256 SHA-256 in IEEE P1363 form (r||s, 64 bytes).
SIGNATURE_SCHEMES = collections.OrderedDict([
    ('rsa_pkcs1v15_sha256', 'rsa'),
    ('ecdsa_sha256', 'ec'),
    ('rsa_pss_sha256', 'rsa'),
    ('ecdsa_p256_p1363', 'ec'),
])
# The most data the host signs in one call: a SignedInfo or a QR code II string is far smaller.
SIGN_DATA_MAX_BYTES = 16384


def xmldsig_scheme(key_type: str) -> str:
    """The scheme a key of `key_type` ('rsa' | 'ec') signs a XAdES login's SignedInfo with."""
    return 'rsa_pkcs1v15_sha256' if key_type == 'rsa' else 'ecdsa_sha256'


def qr_code_ii_scheme(key_type: str) -> str:
    """The scheme a key of `key_type` ('rsa' | 'ec') signs a QR code II string with."""
    return 'rsa_pss_sha256' if key_type == 'rsa' else 'ecdsa_p256_p1363'


# Whether a certificate's predecessor is revoked once the successor is installed (and proven), by type:
# an Authentication predecessor is revoked (it frees an active-certificate slot and is of no further use);
# an Offline predecessor stays Active until it expires, because the QR codes II it signed on invoices in
# circulation are verified against its state whenever they are scanned (SPEC 12, 13.1).
REVOKE_SUPERSEDED_BY_TYPE = {'authentication': True, 'offline': False}


def revoke_superseded(certificate_type: str, explicit: Optional[bool] = None) -> bool:
    """True when the predecessor of a renewed `certificate_type` certificate is revoked.

    `explicit` (the user's revoke_superseded: True, False, or None for "by type") wins when given.
    """
    if explicit is not None:
        return explicit
    return REVOKE_SUPERSEDED_BY_TYPE.get(certificate_type, False)


def expired(valid_to: DateTimeValue, now: datetime.datetime) -> bool:
    """True when the certificate's validity ended at or before `now`."""
    return parse_datetime(valid_to) <= now


def days_remaining(valid_to: DateTimeValue, now: datetime.datetime) -> int:
    """Whole days left, floored (one hour past expiry is -1)."""
    return (parse_datetime(valid_to) - now).days
