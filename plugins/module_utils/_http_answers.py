# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""What a KSeF answer means, read without trusting it (used by the HTTP client, _http.py).

A body is read up to a size cap; JSON that is malformed or nested too deeply is a typed error, never an
uncaught RecursionError; Retry-After is digits or an HTTP date and nothing else; a redirect is refused;
text taken from an answer for a message is stripped of markup and control characters, cut short, and has
every Bearer token, JWT and registered secret replaced before anyone sees it.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import email.utils
import json as _json
import re
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, import sanity only
    from urlparse import urlsplit  # type: ignore

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError

# Error bodies are read up to this size; only a short sanitized excerpt is ever shown.
MAX_ERROR_BODY = 64 * 1024
# A success answer of KSeF (a page of certificates with their DER) is well below this; a larger one is refused.
MAX_ANSWER_BODY = 8 * 1024 * 1024
EXCERPT_LENGTH = 200
REDACTED = '********'
# Bearer credentials and JWTs (three base64url parts, the first a JSON header starting with '{"' = 'eyJ').
_BEARER = re.compile(r'(?i)\bBearer\s+[^\s",;]+')
_JWT = re.compile(r'\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*')
# Retry-After: delay-seconds (ASCII digits; a longer number than this is not a delay) or an HTTP date.
_DELAY_SECONDS = re.compile(r'[0-9]{1,9}\Z')
_HTTP_DATE = re.compile(r'(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) '
                        r'[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT\Z')


class AnswerTooLarge(Exception):
    """The answer's body is larger than the cap."""


def redact(text: Optional[str], secrets: Iterable[str] = ()) -> Optional[str]:
    """text with every Bearer credential, JWT and given secret replaced by ********."""
    if not text:
        return text
    text = _BEARER.sub('Bearer ' + REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return text


def sanitize_excerpt(text: Union[bytes, str], limit: int = EXCERPT_LENGTH, secrets: Iterable[str] = ()) -> str:
    """Return a short single-line excerpt of an unexpected body (HTML tags, control characters and tokens removed)."""
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    text = re.sub(r'(?is)<(script|style)\b.*?</\1\s*>', ' ', text)
    text = re.sub(r'<[^>]*>', ' ', text)
    text = re.sub(r'[\x00-\x1f\x7f]+', ' ', text)
    text = redact(re.sub(r'\s+', ' ', text).strip(), secrets)
    if len(text) > limit:
        text = text[:limit].rstrip() + '...'
    return text


def parse_retry_after(value: Any, now: Optional[float] = None) -> Optional[int]:
    """Retry-After as whole seconds: ASCII digits, or an HTTP date (IMF-fixdate); None for anything else."""
    if value is None:
        return None
    value = str(value).strip()
    if _DELAY_SECONDS.match(value):
        return int(value)
    if not _HTTP_DATE.match(value):
        return None
    try:
        seconds = email.utils.parsedate_to_datetime(value).timestamp() - (now if now is not None else time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(0, int(seconds + 0.999))


def read_body(response: Any, limit: int) -> bytes:
    """The body, read in chunks; AnswerTooLarge as soon as it passes limit (also from Content-Length)."""
    declared = response.headers.get('Content-Length', '')
    if declared.isdigit() and int(declared) > limit:
        raise AnswerTooLarge()
    chunks = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge()
        chunks.append(chunk)
    return b''.join(chunks)


def read_limited(response: Any) -> bytes:
    """The start of an error answer, at most MAX_ERROR_BODY bytes (only an excerpt is ever shown)."""
    chunks = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY:
            break
    return b''.join(chunks)[:MAX_ERROR_BODY]


def decode_json(raw: bytes) -> Tuple[bool, Any]:
    """(True, value) for JSON text; (False, None) when malformed, not UTF-8, or nested too deeply to parse."""
    try:
        return True, _json.loads(raw.decode('utf-8'))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False, None


def tokens_in(body: Any) -> List[str]:
    """Every string under a 'token' key of an answer (authenticationToken, accessToken, refreshToken, new KSeF tokens)."""
    found = []
    pending = [body]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == 'token' and isinstance(value, str) and value:
                    found.append(value)
                elif isinstance(value, (dict, list)):
                    pending.append(value)
        elif isinstance(item, list):
            pending.extend(value for value in item if isinstance(value, (dict, list)))
    return found


def success_body(method: str, endpoint: str, status: int, raw: Optional[bytes], headers: Mapping[str, str],
                 secrets: Iterable[str] = ()) -> Any:
    """The decoded JSON of a success answer, None when empty, text when not JSON (an HTML page is an error)."""
    if not raw or not raw.strip():
        return None
    ok, body = decode_json(raw)
    if ok:
        return body
    content_type = headers.get('Content-Type', '')
    if 'json' in content_type or 'html' in content_type:
        raise KsefApiError(method, endpoint, status, [{
            'code': None,
            'description': 'unexpected response body that is not valid JSON: %s' % sanitize_excerpt(raw, secrets=secrets),
            'details': [],
        }])
    return raw.decode('utf-8', 'replace')


def refused_redirect(method: str, endpoint: str, status: int, headers: Mapping[str, str]) -> KsefApiError:
    """The error of a 3xx: the request is never re-sent elsewhere (a signed login or a CSR would go with it)."""
    location = headers.get('Location') or ''
    target = urlsplit(location)
    where = target.hostname or 'the same host'
    return KsefApiError(method, endpoint, status, [{
        'code': None,
        'description': 'KSeF answered with a redirect to %s, which is not followed' % sanitize_excerpt(where, limit=100),
        'details': [],
    }], hint='check api_url: it is the API root that answers directly, e.g. https://api-test.ksef.mf.gov.pl/v2')


def too_large(method: str, endpoint: str, status: int, limit: int) -> KsefApiError:
    return KsefApiError(method, endpoint, status, [{
        'code': None, 'description': 'the answer is larger than %d bytes and was refused' % limit, 'details': []}])


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _error_items(items, code_key, description_key):
    """The error entries of a KSeF error list, whose two body formats name code and description differently."""
    return [{'code': item.get(code_key), 'description': item.get(description_key), 'details': _as_list(item.get('details'))}
            for item in items or [] if isinstance(item, dict)]


def parse_error_body(body: Any) -> Tuple[List[Dict[str, Any]], Optional[str], Optional[str]]:
    """Turn a KSeF error body (dict) into (errors, reference_number, service_code).

    Understands ExceptionResponse, problem details (RFC 7807 variants of KSeF) and the
    TooManyRequestsResponse / status-style bodies.
    """
    errors = []
    reference_number = None
    service_code = None
    if not isinstance(body, dict):
        return errors, reference_number, service_code
    exception = body.get('exception')
    if isinstance(exception, dict):
        errors.extend(_error_items(exception.get('exceptionDetailList'), 'exceptionCode', 'exceptionDescription'))
        reference_number = exception.get('referenceNumber')
        service_code = exception.get('serviceCode')
        return errors, reference_number, service_code
    if 'title' in body or 'detail' in body or 'errors' in body or 'reasonCode' in body:
        errors.extend(_error_items(body.get('errors'), 'code', 'description'))
        if not errors:
            details = []
            security = body.get('security')
            if isinstance(security, dict):
                for key in sorted(security):
                    details.append('%s: %s' % (key, security[key]))
            errors.append({
                'code': body.get('reasonCode'),
                'description': body.get('detail') or body.get('title'),
                'details': details,
            })
        service_code = body.get('traceId')
        reference_number = body.get('referenceNumber')
        return errors, reference_number, service_code
    status = body.get('status')
    if isinstance(status, dict):
        errors.append({
            'code': status.get('code'),
            'description': status.get('description'),
            'details': _as_list(status.get('details')),
        })
    return errors, reference_number, service_code


def _clean(value, secrets):
    """A text field of an error answer, redacted; other values as they are (codes are numbers)."""
    return redact(value, secrets) if isinstance(value, str) else value


def api_error(method: str, endpoint: str, status: int, raw: Optional[bytes], headers: Mapping[str, str], base_url: str,
              secrets: Iterable[str] = ()) -> KsefApiError:
    """The KsefApiError of an error answer, its texts redacted (an answer may echo the Authorization header)."""
    ok, body = decode_json(raw) if raw else (False, None)
    if ok and isinstance(body, dict):
        errors, reference_number, service_code = parse_error_body(body)
    else:
        errors, reference_number, service_code = [], None, None
    errors = [{'code': _clean(error.get('code'), secrets), 'description': _clean(error.get('description'), secrets),
               'details': [redact(detail, secrets) for detail in error.get('details') or []]} for error in errors]
    if not errors and raw and raw.strip():
        errors = [{'code': None, 'description': 'response body: %s' % sanitize_excerpt(raw, secrets=secrets), 'details': []}]
    retry_after = parse_retry_after(headers.get('Retry-After'))
    hint = None
    if status == 404 and '{' not in endpoint and not any(error.get('code') for error in errors):
        # A fixed route of the API exists in every KSeF v2 environment: the API root itself is wrong.
        hint = 'KSeF has this endpoint, so check api_url (%s): it is the API root and ends with the version, ' \
               'e.g. https://api-test.ksef.mf.gov.pl/v2' % base_url
        if not re.search(r'/v2$', base_url):
            hint = 'api_url %s does not end with /v2: it is the API root including the version, ' \
                   'e.g. https://api-test.ksef.mf.gov.pl/v2' % base_url
    return KsefApiError(method, endpoint, status, errors, _clean(reference_number, secrets),
                        _clean(service_code, secrets), retry_after, hint=hint)
