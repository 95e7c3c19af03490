# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""KSeF tokens (SPEC 13.2): their module form, the description as their identity, and the waits.

A token is Pending until KSeF has activated it, then Active; a revoked one is Revoking, then Revoked;
Failed never became Active. ksef_token and ksef_token_info share what is here: the snake-case names
of statuses and permissions, the summary a module returns, and the rule that a description names at
most one live (Pending or Active) token.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from ansible_collections.ksef.certificates.plugins.module_utils._api import TOKEN_STATUS, KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError, KsefInputError, KsefTimeoutError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    format_datetime,
    has_control_characters,
    parse_datetime_or_none,
)

TOKEN_STATUSES = {'pending': 'Pending', 'active': 'Active', 'revoking': 'Revoking', 'revoked': 'Revoked', 'failed': 'Failed'}
TOKEN_PERMISSIONS = {
    'invoice_read': 'InvoiceRead',
    'invoice_write': 'InvoiceWrite',
    'credentials_read': 'CredentialsRead',
    'credentials_manage': 'CredentialsManage',
    'subunit_manage': 'SubunitManage',
    'enforcement_operations': 'EnforcementOperations',
    'introspection': 'Introspection',
}
AUTHOR_TYPES = {'nip': 'Nip', 'pesel': 'Pesel', 'fingerprint': 'Fingerprint'}
# Live tokens: they log in now (Active) or will (Pending). A description names at most one of them.
LIVE_STATUSES = ('pending', 'active')
DESCRIPTION_MIN_LENGTH = 5
DESCRIPTION_MAX_LENGTH = 256
# The statuses a wait ends on, by what the wait is for.
SETTLED = {'active': ('active', 'failed', 'revoking', 'revoked'), 'revoked': ('revoked', 'failed')}


def _snake(mapping, value):
    for snake, api in mapping.items():
        if api == value:
            return snake
    return value


def description_problem(description: Any) -> Optional[str]:
    """Why `description` cannot be a token's description, or None (KSeF: 5 to 256 characters)."""
    if not isinstance(description, str) or not DESCRIPTION_MIN_LENGTH <= len(description) <= DESCRIPTION_MAX_LENGTH:
        return 'description must have %d to %d characters' % (DESCRIPTION_MIN_LENGTH, DESCRIPTION_MAX_LENGTH)
    if description != description.strip() or has_control_characters(description):
        return 'description %r has leading or trailing spaces or a control character (a newline, tab, ...)' % description
    return None


def days_since(value: Any, now: datetime.datetime) -> Optional[int]:
    """Whole days from the date-time `value` to `now` (floored); None when there is no such date."""
    moment = parse_datetime_or_none(value)
    return None if moment is None else (now - moment).days


def token_summary(item: Mapping[str, Any], now: datetime.datetime) -> Dict[str, Any]:
    """The module form of a /tokens item (snake case, UTC date-times, days since last use and creation)."""
    author = item.get('authorIdentifier') or {}
    context = item.get('contextIdentifier') or {}
    return {
        'reference_number': item['referenceNumber'],
        'description': item['description'],
        'status': _snake(TOKEN_STATUSES, item['status']),
        'permissions': sorted(_snake(TOKEN_PERMISSIONS, p) for p in item.get('requestedPermissions') or []),
        'author_identifier_type': _snake(AUTHOR_TYPES, author.get('type')),
        'author_identifier': author.get('value'),
        'context_identifier_type': context.get('type'),
        'context_identifier': context.get('value'),
        'date_created': format_datetime(item.get('dateCreated')),
        'last_use_date': format_datetime(item.get('lastUseDate')),
        'days_since_last_use': days_since(item.get('lastUseDate'), now),
        'days_since_created': days_since(item.get('dateCreated'), now),
        'status_details': list(item.get('statusDetails') or []),
    }


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class DuplicateDescriptionError(KsefError):
    """More than one live token carries the description that should name one token."""

    def __init__(self, description: str, tokens: List[Dict[str, Any]]) -> None:
        self.tokens = tokens
        super(DuplicateDescriptionError, self).__init__(
            '%d KSeF tokens that are Active or Pending share the description %r (%s); a description must name one '
            'token, so nothing was changed. Revoke the ones no integration uses (in the KSeF application, or with '
            'ksef.certificates.ksef_token reference_number=... state=absent), then run again'
            % (len(tokens), description, ', '.join('%s %s' % (t['reference_number'], t['status']) for t in tokens)))

    def fail_kwargs(self) -> Dict[str, Any]:
        return {'tokens': self.tokens}


def tokens_described(api: KsefApi, description: str, now: datetime.datetime) -> List[Dict[str, Any]]:
    """Summaries of the tokens whose description is exactly `description` (KSeF filters by substring)."""
    return [token_summary(item, now) for item in api.tokens(description=description) if item['description'] == description]


def live_token(tokens: List[Dict[str, Any]], description: str) -> Optional[Dict[str, Any]]:
    """The one Pending or Active token among `tokens`, or None; DuplicateDescriptionError for more than one."""
    live = [token for token in tokens if token['status'] in LIVE_STATUSES]
    if len(live) > 1:
        raise DuplicateDescriptionError(description, live)
    return live[0] if live else None


class TokenWaiter:
    """Polls GET /tokens/{ref} until a token settles (Active, or Revoked), within a timeout; sleeps grow to 5 s."""

    def __init__(self, api: KsefApi, timeout: float, clock: Optional[Callable[[], float]] = None,
                 sleep: Optional[Callable[[float], None]] = None,
                 now: Callable[[], datetime.datetime] = utc_now) -> None:
        self.api = api
        self.timeout = timeout
        # Looked up now, not when the module is imported, so that a test can replace time.sleep.
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.now = now

    def wait(self, reference_number: str, goal: str) -> Dict[str, Any]:
        """The token's summary once its status is one that `goal` ('active' or 'revoked') waits for."""
        deadline = self.clock() + self.timeout
        interval = 1.0
        while True:
            token = token_summary(self.api.token_status(reference_number), self.now())
            if token['status'] in SETTLED[goal]:
                return token
            if self.clock() + interval > deadline:
                raise KsefTimeoutError(
                    'KSeF token %s is still %s after %d s (%s); the change was sent and KSeF is completing it: run the '
                    'task again later, or raise wait_timeout' % (reference_number, token['status'], self.timeout, TOKEN_STATUS),
                    reference_number=reference_number)
            self.sleep(interval)
            interval = min(interval * 1.5, 5.0)


def check_description_filter(name: str, value: Optional[str]) -> None:
    """KSeF searches description and authorIdentifier for at least 3 characters; refuse fewer before any call."""
    if value is not None and len(value) < 3:
        raise KsefInputError('%s must have at least 3 characters (KSeF searches for it inside the %s)'
                             % (name, name.replace('_', ' ')))
