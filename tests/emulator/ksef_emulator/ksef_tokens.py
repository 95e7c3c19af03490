"""KSeF tokens (POST/GET/DELETE /tokens): generated in a NIP or InternalId context by an
XAdES-authenticated subject; usable with POST /auth/ksef-token while Active.

Statuses move with time as in KSeF: a new token is Pending for the processing delay, then Active; a
revoked one is Revoking for the processing delay, then Revoked. Only an Active token logs in
(auth.start_ksef_token), and each successful token login sets lastUseDate.
"""

import hashlib
import secrets

from . import auth, util
from .errors import ApiError, Forbidden, validation_error

PERMISSIONS = ('InvoiceRead', 'InvoiceWrite', 'CredentialsRead', 'CredentialsManage', 'SubunitManage',
               'EnforcementOperations', 'Introspection')
STATUSES = ('Pending', 'Active', 'Revoking', 'Revoked', 'Failed')
AUTHOR_TYPES = ('Nip', 'Pesel', 'Fingerprint')
# Statuses that move on by themselves once status_due has passed.
NEXT_STATUS = {'Pending': 'Active', 'Revoking': 'Revoked'}
CREDENTIALS_PERMISSIONS = ('CredentialsRead', 'CredentialsManage')


def settle(emu, row, now=None):
    """The row with the status it has now (Pending -> Active, Revoking -> Revoked once due), saved."""
    if row is None or row['status'] not in NEXT_STATUS:
        return row
    now = util.now() if now is None else now
    if row['status_due'] is not None and now < row['status_due']:
        return row
    row = dict(row, status=NEXT_STATUS[row['status']], status_due=None)
    emu.store.update('ksef_tokens', 'reference_number', row['reference_number'],
                     {'status': row['status'], 'status_due': None})
    return row


def _item(row):
    item = {
        'referenceNumber': row['reference_number'],
        'authorIdentifier': {'type': row['author_type'], 'value': row['author_value']},
        'contextIdentifier': {'type': row['context_type'], 'value': row['context_value']},
        'description': row['description'], 'requestedPermissions': row['permissions'],
        'dateCreated': util.iso(row['created']), 'status': row['status'], 'statusDetails': [],
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
        'created': now, 'status': 'Pending', 'status_due': now + emu.config.processing_delay,
    })
    return {'referenceNumber': reference, 'token': token}


def _manages_credentials(emu, operation):
    """The context's owner, or a subject granted CredentialsRead/CredentialsManage there, sees every token."""
    subject_type, subject_value = operation['subject_type'], operation['subject_value']
    if auth.is_owner(emu, subject_type, subject_value, operation['context_type'], operation['context_value']):
        return True
    grant = emu.store.one('SELECT 1 FROM permissions WHERE context_type = ? AND context_value = ? AND authorized_type = ? '
                          'AND authorized_value = ? AND permission IN (?, ?)',
                          (operation['context_type'], operation['context_value'], subject_type, subject_value)
                          + CREDENTIALS_PERMISSIONS)
    return grant is not None


def _visible_tokens(emu, operation):
    """Tokens of this context the caller may see (OpenAPI GET /tokens), newest first, statuses settled.

    A token login sees only its own token, whatever its permissions; a signature login sees every token
    of the context when it manages credentials there, else the tokens it authored (NIP-PESEL link included).
    """
    now = util.now()
    if operation['method'] == 'ksef_token':
        rows = emu.store.all('SELECT * FROM ksef_tokens WHERE reference_number = ?', (operation['ksef_token_reference'],))
        return [settle(emu, row, now) for row in rows]
    rows = emu.store.all('SELECT * FROM ksef_tokens WHERE context_type = ? AND context_value = ? '
                         'ORDER BY created DESC, reference_number',
                         (operation['context_type'], operation['context_value']))
    if not _manages_credentials(emu, operation):
        authors = auth.linked_identities(emu, operation['subject_type'], operation['subject_value'])
        rows = [row for row in rows if (row['author_type'], row['author_value']) in authors]
    return [settle(emu, row, now) for row in rows]


def _text_filter(args, name):
    value = args.get(name)
    if value is not None and len(value) < 3:
        raise validation_error("'%s' must have at least 3 characters" % name)
    return value


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
    description = _text_filter(args, 'description')
    author = _text_filter(args, 'authorIdentifier')
    author_type = args.get('authorIdentifierType')
    if author_type is not None and author_type not in AUTHOR_TYPES:
        raise validation_error("'authorIdentifierType' must be one of %s" % ', '.join(AUTHOR_TYPES))
    rows = []
    for row in _visible_tokens(emu, operation):
        if statuses and row['status'] not in statuses:
            continue
        if description and description.casefold() not in row['description'].casefold():
            continue
        if author and author.casefold() not in row['author_value'].casefold():
            continue
        if author_type and row['author_type'] != author_type:
            continue
        rows.append(row)
    start = 0
    if continuation:
        if not continuation.isdigit() or int(continuation) > len(rows):
            raise validation_error("'x-continuation-token' is not a continuation token of this listing")
        start = int(continuation)
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
    """Active (or Pending) -> Revoking; Revoked after the processing delay. Any other status: 21405."""
    row = _find(emu, operation, reference)
    if row['status'] not in ('Active', 'Pending'):
        raise ApiError(21405, ['Token o numerze referencyjnym %s ma status %s i nie może zostać unieważniony.'
                               % (reference, row['status'])], reference_number=reference)
    emu.store.update('ksef_tokens', 'reference_number', row['reference_number'],
                     {'status': 'Revoking', 'status_due': util.now() + emu.config.processing_delay})


def state_dump(emu):
    """The KSeF tokens for GET /emulator/state (statuses settled; never the secret nor its hash)."""
    now = util.now()
    rows = emu.store.all('SELECT * FROM ksef_tokens ORDER BY created, reference_number')
    return [_item(settle(emu, row, now)) for row in rows]
