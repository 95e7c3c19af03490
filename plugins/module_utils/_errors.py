# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Typed errors of the ksef.certificates collection.

Every message (str(exc)) is meant for the user and never contains a secret; fail_kwargs()
adds structured fields for fail_json.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, List, Optional


class KsefError(Exception):
    """Base class: str(exc) is a user-facing message without secrets."""

    def __init__(self, message: str) -> None:
        super(KsefError, self).__init__(message)
        self.message = message

    def __str__(self):
        return self.message

    def fail_kwargs(self) -> Dict[str, Any]:
        """Extra structured fields for fail_json (no secrets)."""
        return {}


class KsefInputError(KsefError):
    """Bad module input, detected before any API call."""


class KsefCredentialError(KsefInputError):
    """Signer or key material cannot be loaded (wrong passphrase, mismatching key, ...)."""


# What to do about the KSeF exception codes a user of these modules can meet: appended to the
# message of a KsefApiError that carries the code.
HINTS = {
    9105: 'KSeF refused the XAdES signature of the login document; check that the signer certificate and key '
          'belong together and that KSeF accepts this kind of certificate in this environment',
    21111: 'the challenge expired or was already used (a challenge serves one login within 10 minutes); '
           'check the clock of the machine that runs the module and run again',
    21115: 'KSeF refused the signer certificate (expired, not yet valid, revoked or untrusted); on the test '
           'environment a self-signed certificate needs verify_certificate_chain=false',
    21117: 'the signer certificate carries no identifier usable for this context; set '
           'auth_subject_identifier_type=certificate_fingerprint if permissions were granted to its fingerprint',
    21401: 'the login document does not match the KSeF schema; check context_type, context_id and auth_allowed_ips',
    21470: 'KSeF withdrew the public key used to encrypt the KSeF token; run again to use the current key',
    25001: 'enrollment data is not available to a KSeF-token session; log in with a signature '
           '(auth_certificate_path and auth_private_key_path) to enroll certificates',
    25002: 'KSeF does not enroll certificates for a KSeF-token session; log in with a signature',
    25003: 'the CSR subject differs from the enrollment data of the signer; build the CSR from the enrollment '
           'data KSeF returns for the same signer',
    25006: 'the enrollment request quota of the subject is spent; KSeF counts requests over a period, '
           'revoking does not give them back',
    25007: 'the active certificate quota of the subject is full; revoke certificates that are no longer used',
    25010: 'KSeF takes RSA keys of exactly 2048 bits or EC keys on P-256 only',
}


def _error_text(error):
    text = ''
    if error.get('code') is not None:
        text = 'KSeF %s' % error['code']
    if error.get('description'):
        text = '%s: %s' % (text, error['description']) if text else error['description']
    details = [str(d) for d in (error.get('details') or []) if d]
    if details:
        text = '%s (%s)' % (text, '; '.join(details)) if text else '(%s)' % '; '.join(details)
    return text


class KsefApiError(KsefError):
    """KSeF answered a request with an error status."""

    def __init__(self, method: str, endpoint: str, status: int, errors: Optional[List[Dict[str, Any]]] = None,
                 reference_number: Optional[str] = None, service_code: Optional[str] = None,
                 retry_after: Optional[float] = None, message: Optional[str] = None, hint: Optional[str] = None) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.errors = list(errors or [])
        self.reference_number = reference_number
        self.service_code = service_code
        self.retry_after = retry_after
        self.hint = hint
        if message is None:
            message = self.build_message()
        super(KsefApiError, self).__init__(message)

    @property
    def codes(self) -> List[int]:
        """The KSeF exception/status codes carried by the error body (integers only)."""
        codes = []
        for error in self.errors:
            try:
                codes.append(int(error.get('code')))
            except (TypeError, ValueError):
                continue
        return codes

    def build_message(self) -> str:
        parts = ['%s %s failed: HTTP %s' % (self.method, self.endpoint, self.status)]
        for error in self.errors:
            text = _error_text(error)
            if text:
                parts.append(text)
        if self.reference_number:
            parts.append('reference number %s' % self.reference_number)
        if self.service_code:
            parts.append('service code %s' % self.service_code)
        parts.extend(HINTS[code] for code in self.codes if code in HINTS)
        if self.hint:
            parts.append(self.hint)
        if len(parts) == 1:
            return parts[0]
        # "<METHOD> <endpoint> failed: HTTP <status>, KSeF <code>: ...; reference number ...; service code ..."
        head = parts[0]
        rest = parts[1:]
        if self.errors and _error_text(self.errors[0]):
            head = '%s, %s' % (head, rest.pop(0))
        return '; '.join([head] + rest)

    def fail_kwargs(self) -> Dict[str, Any]:
        result = {
            'http_status': self.status,
            'endpoint': '%s %s' % (self.method, self.endpoint),
            'ksef_errors': [
                {'code': e.get('code'), 'description': e.get('description'), 'details': list(e.get('details') or [])}
                for e in self.errors
            ],
        }
        if self.reference_number:
            result['reference_number'] = self.reference_number
        if self.service_code:
            result['service_code'] = self.service_code
        if self.retry_after is not None:
            result['retry_after'] = self.retry_after
        return result


class KsefRateLimitError(KsefApiError):
    """HTTP 429 and the retry budget (max_retries / max_retry_wait) is spent."""


class KsefTransportError(KsefError):
    """Connection error, timeout or dropped response (after any allowed retries).

    The message puts the cause first (``<METHOD> <endpoint> failed: <cause>``), then what was tried
    (attempts and the total wait, consistent with ``api_calls``), then what to do. It says "may have
    reached KSeF" only for a request that is not safe to repeat and that may have been received.
    """

    def __init__(self, method: str, endpoint: str, reason: str, may_have_reached_server: bool = False, attempts: int = 1,
                 elapsed: Optional[float] = None, repeat_safe: bool = False, hint: Optional[str] = None) -> None:
        self.method = method
        self.endpoint = endpoint
        self.reason = reason
        self.may_have_reached_server = may_have_reached_server
        self.attempts = attempts
        self.elapsed = elapsed
        self.repeat_safe = repeat_safe
        self.hint = hint
        message = '%s %s failed: %s' % (method, endpoint, reason)
        if attempts > 1:
            message += '; sent %d times' % attempts
            if elapsed is not None:
                message += ', %s in total' % format_seconds(elapsed)
        if may_have_reached_server and not repeat_safe:
            message += ('; the request may have reached KSeF, so it was not repeated '
                        '(check the server state before trying again)')
        if hint:
            message += '; %s' % hint
        super(KsefTransportError, self).__init__(message)

    def fail_kwargs(self) -> Dict[str, Any]:
        return {
            'endpoint': '%s %s' % (self.method, self.endpoint),
            'may_have_reached_server': self.may_have_reached_server,
        }


def format_seconds(value: float) -> str:
    """'3 s', '10.5 s': a duration for a message."""
    value = round(float(value), 1)
    return '%d s' % value if value == int(value) else '%.1f s' % value


class KsefAuthError(KsefError):
    """Authentication ended with a status other than 200 (415, 450, 460, ...)."""

    def __init__(self, status_code: int, description: Optional[str] = None, details: Optional[List[str]] = None,
                 reference_number: Optional[str] = None, hint: Optional[str] = None) -> None:
        self.status_code = status_code
        self.description = description
        self.details = list(details or [])
        self.reference_number = reference_number
        self.hint = hint
        message = 'KSeF authentication failed with status %s' % status_code
        if description:
            message += ': %s' % description
        if self.details:
            message += ' (%s)' % '; '.join(str(d) for d in self.details)
        if reference_number:
            message += '; reference number %s' % reference_number
        if hint:
            message += '. %s' % hint
        super(KsefAuthError, self).__init__(message)

    def fail_kwargs(self) -> Dict[str, Any]:
        result = {'auth_status': {'code': self.status_code, 'description': self.description, 'details': self.details}}
        if self.reference_number:
            result['reference_number'] = self.reference_number
        return result


class KsefTimeoutError(KsefError):
    """A bounded wait ran out (authentication polling, enrollment wait_timeout)."""

    def __init__(self, message: str, reference_number: Optional[str] = None) -> None:
        self.reference_number = reference_number
        super(KsefTimeoutError, self).__init__(message)

    def fail_kwargs(self) -> Dict[str, Any]:
        if self.reference_number:
            return {'reference_number': self.reference_number}
        return {}
