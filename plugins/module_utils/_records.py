# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Typed records of KSeF's certificate answers, made once by the API layer (_api.py).

snake_case fields, parsed datetimes, lowercase enums ('active', 'authentication', ...). Everything above
the API layer works with these; camelCase keys and PascalCase enum values stop here. `module_fields()`
gives the form the modules return, with the date-times in the one return format (_rules.format_datetime).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import datetime
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import DateTimeValue, format_datetime, parse_datetime_or_none

# Module option/return values (snake_case) <-> KSeF API enum values (PascalCase).
CERTIFICATE_TYPES = {'authentication': 'Authentication', 'offline': 'Offline'}
CERTIFICATE_STATUSES = {'active': 'Active', 'blocked': 'Blocked', 'revoked': 'Revoked', 'expired': 'Expired'}
REVOCATION_REASONS = {'unspecified': 'Unspecified', 'superseded': 'Superseded', 'key_compromise': 'KeyCompromise'}
SUBJECT_IDENTIFIER_TYPES = {'nip': 'Nip', 'pesel': 'Pesel', 'fingerprint': 'Fingerprint'}

# Enrollment status codes (GET /certificates/enrollments/{referenceNumber}).
ENROLLMENT_PROCESSING = 100
ENROLLMENT_DONE = 200
# KSeF gave up on the request (unknown error / cancelled): a new enrollment is allowed.
ENROLLMENT_GIVEN_UP = (500, 550)

_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

# The date-time fields of a CertificateListItem (snake_case), returned in the one format of _rules.format_datetime.
DATETIME_FIELDS = ('valid_from', 'valid_to', 'request_date', 'last_use_date')


def from_api(mapping: Mapping[str, str], value: Any) -> Any:
    """API enum value -> snake_case (unknown values are converted generically, not dropped)."""
    for snake, pascal in mapping.items():
        if pascal == value:
            return snake
    return snake_name(value) if isinstance(value, str) else value


def snake_name(name: str) -> str:
    """camelCase / PascalCase -> snake_case ('certificateSerialNumber' -> 'certificate_serial_number')."""
    name = re.sub(r'([A-Z]+)([A-Z][a-z])', r'\1_\2', name)
    name = re.sub(r'([a-z0-9])([A-Z])', r'\1_\2', name)
    return name.lower()


def snake_item(item: Any) -> Any:
    """Copy of an API dict (nested dicts/lists too) with snake_case keys; values are unchanged."""
    if isinstance(item, dict):
        return dict((snake_name(k), snake_item(v)) for k, v in item.items())
    if isinstance(item, list):
        return [snake_item(v) for v in item]
    return item


class CertificateRecord:
    """One certificate of POST /certificates/query."""

    __slots__ = ('serial_number', 'name', 'type', 'status', 'common_name', 'valid_from', 'valid_to', 'request_date',
                 'last_use_date', '_api_item')

    def __init__(self, serial_number: str, name: str, certificate_type: str, status: str, valid_to: datetime.datetime,
                 valid_from: Optional[datetime.datetime] = None, request_date: Optional[datetime.datetime] = None,
                 common_name: Optional[str] = None, last_use_date: Optional[datetime.datetime] = None,
                 api_item: Optional[Dict[str, Any]] = None) -> None:
        self.serial_number = serial_number
        self.name = name
        self.type = certificate_type          # 'authentication' | 'offline'
        self.status = status                  # 'active' | 'blocked' | 'revoked' | 'expired' (others snake_cased)
        self.valid_to = valid_to              # aware datetime
        self.valid_from = valid_from          # aware datetime or None
        self.request_date = request_date      # aware datetime or None
        self.common_name = common_name
        self.last_use_date = last_use_date    # aware datetime or None
        self._api_item = api_item or {}

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> 'CertificateRecord':
        """A CertificateListItem (camelCase dict) -> record; KsefError when validTo cannot be read."""
        valid_to = parse_datetime_or_none(item.get('validTo'))
        if valid_to is None:
            raise KsefError('KSeF returned certificate %s with an unreadable validTo %r'
                            % (item.get('certificateSerialNumber'), item.get('validTo')))
        return cls(
            serial_number=item.get('certificateSerialNumber'),
            name=item.get('name'),
            certificate_type=from_api(CERTIFICATE_TYPES, item.get('type')),
            status=from_api(CERTIFICATE_STATUSES, item.get('status')),
            valid_to=valid_to,
            valid_from=parse_datetime_or_none(item.get('validFrom')),
            request_date=parse_datetime_or_none(item.get('requestDate')),
            common_name=item.get('commonName'),
            last_use_date=parse_datetime_or_none(item.get('lastUseDate')),
            api_item=dict(item),
        )

    @property
    def active(self) -> bool:
        return self.status == 'active'

    @property
    def requested_at(self) -> datetime.datetime:
        """When it was requested (requestDate, else validFrom); the earliest datetime when KSeF sent neither."""
        return self.request_date or self.valid_from or _EPOCH

    def module_fields(self) -> Dict[str, Any]:
        """The modules' view: every field KSeF sent, snake_case, lowercase enums, serial_number, and the
        date-times in one format (UTC, whole seconds: KSeF sends 0 to 7 fractional digits)."""
        fields = snake_item(self._api_item)
        fields.pop('certificate_serial_number', None)
        fields['serial_number'] = self.serial_number
        fields['type'] = self.type
        fields['status'] = self.status
        subject = fields.get('subject_identifier')
        if isinstance(subject, dict):
            subject = dict(subject)
            subject['type'] = from_api(SUBJECT_IDENTIFIER_TYPES, subject.get('type'))
            fields['subject_identifier'] = subject
        fields.setdefault('last_use_date', None)
        for key in DATETIME_FIELDS:
            if key in fields:
                fields[key] = format_datetime(fields[key])
        return fields

    def __repr__(self):
        return 'CertificateRecord(%s, %r, %s, %s, valid_to=%s)' % (
            self.serial_number, self.name, self.type, self.status, self.valid_to.isoformat())


class RetrievedCertificate:
    """One item of POST /certificates/retrieve: the serial number and the certificate's DER bytes."""

    __slots__ = ('serial_number', 'name', 'type', 'der')

    def __init__(self, serial_number: str, der: bytes, name: Optional[str] = None, certificate_type: Optional[str] = None) -> None:
        self.serial_number = serial_number
        self.der = der
        self.name = name
        self.type = certificate_type

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> 'RetrievedCertificate':
        try:
            der = base64.b64decode(item['certificate'])
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise KsefError('KSeF returned an unreadable certificate for serial %s' % item.get('certificateSerialNumber'))
        return cls(item.get('certificateSerialNumber'), der, name=item.get('certificateName'),
                   certificate_type=from_api(CERTIFICATE_TYPES, item.get('certificateType')))


class EnrollmentStatus:
    """GET /certificates/enrollments/{referenceNumber}: where one enrollment stands."""

    __slots__ = ('code', 'description', 'details', 'serial_number', 'request_date')

    def __init__(self, code: Optional[int], description: Optional[str] = None, details: Optional[List[str]] = None,
                 serial_number: Optional[str] = None, request_date: Optional[datetime.datetime] = None) -> None:
        self.code = code
        self.description = description
        self.details = list(details or [])
        self.serial_number = serial_number
        self.request_date = request_date

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> 'EnrollmentStatus':
        status = body.get('status') or {}
        return cls(status.get('code'), description=status.get('description'), details=status.get('details'),
                   serial_number=body.get('certificateSerialNumber'),
                   request_date=parse_datetime_or_none(body.get('requestDate')))

    @property
    def processing(self) -> bool:
        return self.code == ENROLLMENT_PROCESSING

    @property
    def done(self) -> bool:
        return self.code == ENROLLMENT_DONE

    @property
    def given_up(self) -> bool:
        return self.code in ENROLLMENT_GIVEN_UP


class CertificateRecords:
    """The record-returning calls, on top of the raw ones (query, retrieve, enrollment_status).

    KsefApi inherits it (as does the unit tests' fake KSeF), which keeps the conversion in this one place.
    """

    def certificate_records(self, name: Optional[str] = None, certificate_type: Optional[str] = None, status: Optional[str] = None,
                            serial_number: Optional[str] = None, expires_after: Optional[DateTimeValue] = None) -> List[CertificateRecord]:
        """POST /certificates/query, every page, as CertificateRecords (newest request first, as KSeF sends)."""
        return [CertificateRecord.from_api(item) for item in self.query(
            name=name, certificate_type=certificate_type, status=status, serial_number=serial_number,
            expires_after=expires_after)]

    def certificate_record_pages(self, name: Optional[str] = None, certificate_type: Optional[str] = None) -> Iterator[List[CertificateRecord]]:
        """POST /certificates/query page by page (newest request first) as lists of CertificateRecords.

        Stop iterating to stop paging.
        """
        for items in self.query_pages(name=name, certificate_type=certificate_type):
            yield [CertificateRecord.from_api(item) for item in items]

    def retrieve_certificates(self, serial_numbers: Sequence[str]) -> List[RetrievedCertificate]:
        """POST /certificates/retrieve (chunks of 10) as RetrievedCertificates."""
        return [RetrievedCertificate.from_api(item) for item in self.retrieve(serial_numbers)]

    def enrollment(self, reference_number: str) -> EnrollmentStatus:
        """GET /certificates/enrollments/{referenceNumber} as an EnrollmentStatus."""
        return EnrollmentStatus.from_api(self.enrollment_status(reference_number))
