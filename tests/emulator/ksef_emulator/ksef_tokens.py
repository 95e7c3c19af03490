"""KSeF tokens (POST/GET/DELETE /tokens): generated in a NIP or InternalId context by an
XAdES-authenticated subject; usable with POST /auth/ksef-token until revoked."""

import hashlib
import secrets

from . import auth, util
from .errors import ApiError, Forbidden, validation_error

PERMISSIONS = ('InvoiceRead', 'InvoiceWrite', 'CredentialsRead', 'CredentialsManage', 'SubunitManage',
               'EnforcementOperations', 'Introspection')
STATUSES = ('Pending', 'Active', 'Revoking', 'Revoked', 'Failed')


def _item(row):
    item = {
        'referenceNumber': row['reference_number'],
        'authorIdentifier': {'type': row['author_type'], 'value': row['author_value']},
        'contextIdentifier': {'type': row['context_type'], 'value': row['context_value']},
        'description': row['description'], 'requestedPermissions': row['permissions'],
        'dateCreated': util.iso(row['created']), 'status': row['status'],
    }
    if row['last_use']:
        item['lastUseDate'] = util.iso(row['last_use'])
    return item


def generate(emu, operation, body):
    if operation['method'] != 'xades':
        raise Forbidden('auth-method-not-allowed', 'Generowanie tokenów wymaga uwierzytelnienia podpisem XAdES '
                        'w tym emulatorze.', {'authenticationMethodCategory': 'Token'})
    if operation['context_type'] not in ('Nip', 'InternalId'):
        raise validation_error('a KSeF token can be generated only in a Nip or InternalId context')
    if not isinstance(body, dict):
        raise validation_error('request body must be a JSON object')
    permissions = body.get('permissions')
    description = body.get('description')
    if not isinstance(permissions, list) or not permissions or any(p not in PERMISSIONS for p in permissions):
        raise validation_error("'permissions' must be a non-empty list of %s" % ', '.join(PERMISSIONS))
    if not isinstance(description, str) or not 5 <= len(description) <= 256:
        raise validation_error("'description' must have 5-256 characters")
    now = util.now()
    reference = util.reference_number('EC', now)
    token = '%s|%s-%s|%s' % (reference, operation['context_type'].lower(), operation['context_value'],
                             secrets.token_hex(32))
    emu.store.insert('ksef_tokens', {
        'reference_number': reference, 'token_sha256': hashlib.sha256(token.encode('utf-8')).hexdigest(),
        'context_type': operation['context_type'], 'context_value': operation['context_value'],
        'author_type': operation['subject_type'], 'author_value': operation['subject_value'],
        'permissions': sorted(set(permissions), key=PERMISSIONS.index), 'description': description,
        'created': now, 'status': 'Active',
    })
    return {'referenceNumber': reference, 'token': token}


def _visible_tokens(emu, operation):
    """Tokens of this context the caller may see: the one it logged in with, or those it authored."""
    if operation['method'] == 'ksef_token':
        return emu.store.all('SELECT * FROM ksef_tokens WHERE reference_number = ?',
                             (operation['ksef_token_reference'],))
    authors = auth.linked_identities(emu, operation['subject_type'], operation['subject_value'])
    rows = emu.store.all('SELECT * FROM ksef_tokens WHERE context_type = ? AND context_value = ? '
                         'ORDER BY created DESC, reference_number',
                         (operation['context_type'], operation['context_value']))
    return [row for row in rows if (row['author_type'], row['author_value']) in authors]


def list_tokens(emu, operation, args, continuation):
    statuses = args.getlist('status')
    if any(s not in STATUSES for s in statuses):
        raise validation_error("'status' must be one of %s" % ', '.join(STATUSES))
    try:
        page_size = int(args.get('pageSize', 10))
    except ValueError:
        raise validation_error("'pageSize' must be an integer")
    if not 10 <= page_size <= 100:
        raise validation_error("'pageSize' must be between 10 and 100")
    description = args.get('description')
    author = args.get('authorIdentifier')
    author_type = args.get('authorIdentifierType')
    rows = []
    for row in _visible_tokens(emu, operation):
        if statuses and row['status'] not in statuses:
            continue
        if description and description.casefold() not in row['description'].casefold():
            continue
        if author and author not in row['author_value']:
            continue
        if author_type and row['author_type'] != author_type:
            continue
        rows.append(row)
    start = int(continuation) if continuation and continuation.isdigit() else 0
    result = {'tokens': [_item(row) for row in rows[start:start + page_size]]}
    if start + page_size < len(rows):
        result['continuationToken'] = str(start + page_size)
    return result


def _find(emu, operation, reference):
    if not util.REFERENCE_PATTERN.match(reference):
        raise validation_error("'referenceNumber' must be a 36-character reference number")
    for row in _visible_tokens(emu, operation):
        if row['reference_number'] == reference:
            return row
    raise ApiError(21405, ['Token o numerze referencyjnym %s nie istnieje.' % reference], reference_number=reference)


def get_token(emu, operation, reference):
    return _item(_find(emu, operation, reference))


def revoke_token(emu, operation, reference):
    row = _find(emu, operation, reference)
    emu.store.update('ksef_tokens', 'reference_number', row['reference_number'], {'status': 'Revoked'})
