"""TEST-environment helpers: persons (NIP-PESEL link), permission grants, subject certificate limits
and rate-limit overrides (paths and bodies as in openapi.json)."""

import re

from . import auth, certificates, ratelimit
from .errors import validation_error

NIP_PATTERN = re.compile(r'^[1-9]((\d[1-9])|([1-9]\d))\d{7}$')
PESEL_PATTERN = re.compile(r'^\d{2}(?:0[1-9]|1[0-2]|2[1-9]|3[0-2]|4[1-9]|5[0-2]|6[1-9]|7[0-2]|8[1-9]|9[0-2])\d{7}$')
IDENTIFIER_TYPES = ('Nip', 'Pesel', 'Fingerprint')
PERMISSION_TYPES = ('InvoiceRead', 'InvoiceWrite', 'Introspection', 'CredentialsRead', 'CredentialsManage',
                    'EnforcementOperations', 'SubunitManage')


def _object(body):
    if not isinstance(body, dict):
        raise validation_error('request body must be a JSON object')
    return body


def _nip(value, field):
    if not isinstance(value, str) or not NIP_PATTERN.match(value):
        raise validation_error("'%s' must be a 10-digit NIP" % field)
    return value


def create_person(emu, body):
    body = _object(body)
    nip = _nip(body.get('nip'), 'nip')
    pesel = body.get('pesel')
    if not isinstance(pesel, str) or not PESEL_PATTERN.match(pesel):
        raise validation_error("'pesel' must be an 11-digit PESEL")
    if not isinstance(body.get('isBailiff'), bool):
        raise validation_error("'isBailiff' is required (boolean)")
    description = body.get('description')
    if not isinstance(description, str) or not 5 <= len(description) <= 256:
        raise validation_error("'description' must have 5-256 characters")
    emu.store.execute('INSERT OR REPLACE INTO persons (nip, pesel, description, is_bailiff, is_deceased) '
                      'VALUES (?, ?, ?, ?, ?)', (nip, pesel, description, int(body['isBailiff']),
                                                 int(bool(body.get('isDeceased')))))


def remove_person(emu, body):
    nip = _nip(_object(body).get('nip'), 'nip')
    emu.store.execute('DELETE FROM persons WHERE nip = ?', (nip,))


def _grant_parties(body):
    context = body.get('contextIdentifier')
    authorized = body.get('authorizedIdentifier')
    if not isinstance(context, dict) or context.get('type') != 'Nip':
        raise validation_error("'contextIdentifier.type' must be Nip")
    _nip(context.get('value'), 'contextIdentifier.value')
    if not isinstance(authorized, dict) or authorized.get('type') not in IDENTIFIER_TYPES:
        raise validation_error("'authorizedIdentifier.type' must be Nip, Pesel or Fingerprint")
    value = authorized.get('value')
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        raise validation_error("'authorizedIdentifier.value' must have 10-64 characters")
    return context, authorized


def grant_permissions(emu, body):
    body = _object(body)
    context, authorized = _grant_parties(body)
    permissions = body.get('permissions')
    if not isinstance(permissions, list) or not permissions:
        raise validation_error("'permissions' must be a non-empty list")
    for permission in permissions:
        if not isinstance(permission, dict) or permission.get('permissionType') not in PERMISSION_TYPES \
                or not isinstance(permission.get('description'), str):
            raise validation_error("each permission needs 'permissionType' (%s) and 'description'"
                                   % ', '.join(PERMISSION_TYPES))
    with emu.store.transaction():
        for permission in permissions:
            emu.store.execute('INSERT OR REPLACE INTO permissions VALUES (?, ?, ?, ?, ?, ?)',
                              (context['type'], context['value'], authorized['type'], authorized['value'],
                               permission['permissionType'], permission['description']))


def revoke_permissions(emu, body):
    context, authorized = _grant_parties(_object(body))
    emu.store.execute('DELETE FROM permissions WHERE context_type = ? AND context_value = ? AND authorized_type = ? '
                      'AND authorized_value = ?', (context['type'], context['value'], authorized['type'],
                                                   authorized['value']))


def _optional_limit(container, field, name):
    if container is None:
        return None
    if not isinstance(container, dict):
        raise validation_error("'%s' must be an object" % name)
    value = container.get(field)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise validation_error("'%s.%s' must be a non-negative integer" % (name, field))
    return value


def set_subject_limits(emu, operation, body):
    body = _object(body)
    if body.get('subjectIdentifierType') not in (None,) + IDENTIFIER_TYPES:
        raise validation_error("'subjectIdentifierType' must be Nip, Pesel or Fingerprint")
    max_enrollments = _optional_limit(body.get('enrollment'), 'maxEnrollments', 'enrollment')
    max_certificates = _optional_limit(body.get('certificate'), 'maxCertificates', 'certificate')
    emu.store.execute('INSERT OR REPLACE INTO subject_limits VALUES (?, ?, ?, ?)',
                      (operation['subject_type'], operation['subject_value'], max_enrollments, max_certificates))


def reset_subject_limits(emu, operation):
    emu.store.execute('DELETE FROM subject_limits WHERE subject_type = ? AND subject_value = ?',
                      (operation['subject_type'], operation['subject_value']))


def subject_limits(emu, operation):
    max_enrollments, max_certificates = certificates.effective_limits(emu, operation['subject_type'],
                                                                      operation['subject_value'])
    return {'enrollment': {'maxEnrollments': max_enrollments}, 'certificate': {'maxCertificates': max_certificates}}


def _context(operation):
    return auth.context_key(operation['context_type'], operation['context_value'])


def effective_rate_limits(emu, context):
    """All groups of GET /rate-limits for a context key (None: production values)."""
    limits = {group: dict(values) for group, values in ratelimit.PRODUCTION_LIMITS.items()}
    if context is not None:
        row = emu.store.one('SELECT limits FROM rate_limit_overrides WHERE context_key = ?', (context,))
        if row:
            for group, values in row['limits'].items():
                limits[group] = dict(values)
    return limits


def rate_limits(emu, operation):
    return effective_rate_limits(emu, _context(operation))


def set_rate_limits(emu, operation, body):
    """Override limits of the current context. Groups left out keep their current values."""
    limits = _object(body).get('rateLimits')
    if not isinstance(limits, dict) or not limits:
        raise validation_error("'rateLimits' is required")
    override = {}
    for group, values in limits.items():
        if group not in ratelimit.GROUPS:
            raise validation_error("unknown rate limit group '%s'" % group)
        if not isinstance(values, dict):
            raise validation_error("'rateLimits.%s' must be an object" % group)
        override[group] = {}
        for field in ('perSecond', 'perMinute', 'perHour'):
            value = values.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise validation_error("'rateLimits.%s.%s' must be a non-negative integer" % (group, field))
            override[group][field] = value
    merged = effective_rate_limits(emu, _context(operation))
    merged.update(override)
    emu.store.execute('INSERT OR REPLACE INTO rate_limit_overrides VALUES (?, ?)', (_context(operation), merged))
    emu.limiter.reset()


def reset_rate_limits(emu, operation):
    emu.store.execute('DELETE FROM rate_limit_overrides WHERE context_key = ?', (_context(operation),))
    emu.limiter.reset()


def production_rate_limits(emu, operation):
    emu.store.execute('INSERT OR REPLACE INTO rate_limit_overrides VALUES (?, ?)',
                      (_context(operation), dict(ratelimit.PRODUCTION_LIMITS)))
    emu.limiter.reset()
