"""Authentication: challenges, XAdES and KSeF-token logins, status, token redeem/refresh, sessions,
the IP allow-list policy and the permission rule (owner / NIP-PESEL link / testdata grant)."""

import base64
import binascii
import hashlib
import ipaddress
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import identity, ksef_tokens, tokens, util, xades_verify
from .errors import ApiError, Forbidden, Gone, Unauthorized, validation_error

CHALLENGE_LIFETIME = 600.0            # 10 minutes
OPERATION_TOKEN_TTL = 2700            # authenticationToken, as observed on KSeF TEST
REFRESH_TOKEN_TTL = 7 * 24 * 3600     # refresh token: up to 7 days
CONTEXT_TYPES = ('Nip', 'InternalId', 'NipVatUe', 'PeppolId')
IP4 = r'((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])'
IP_POLICY_PATTERNS = {
    'ip4Addresses': re.compile('^%s$' % IP4),
    'ip4Ranges': re.compile('^%s-%s$' % (IP4, IP4)),
    'ip4Masks': re.compile(r'^%s/(0|[1-9]|[12][0-9]|3[0-2])$' % IP4),
}

IN_PROGRESS = (100, 'Uwierzytelnianie w toku', None)
SUCCEEDED = (200, 'Uwierzytelnianie zakończone sukcesem', None)


def _failed(code, detail):
    descriptions = {
        415: 'Uwierzytelnianie zakończone niepowodzeniem z powodu braku nadanych uprawnień',
        450: 'Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu',
        460: 'Uwierzytelnianie zakończone niepowodzeniem z powodu błędu certyfikatu',
    }
    return code, descriptions[code], [detail]


def context_key(context_type, context_value):
    return '%s:%s' % (context_type, context_value)


# --- challenges -------------------------------------------------------------------------------------

def new_challenge(emu, client_ip):
    created_ms = int(util.now() * 1000)
    challenge = util.reference_number('CR', created_ms / 1000.0)
    emu.store.insert('challenges', {'challenge': challenge, 'created': created_ms / 1000.0, 'client_ip': client_ip})
    return {'challenge': challenge, 'timestamp': util.iso(created_ms / 1000.0), 'timestampMs': created_ms,
            'clientIp': client_ip}


def _consume_challenge(emu, challenge, now):
    """Single use, 10 minutes; 21111 otherwise. Returns the challenge row."""
    row = emu.store.one('SELECT * FROM challenges WHERE challenge = ?', (challenge,))
    if row is None:
        raise ApiError(21111, ['Wyzwanie %s nie zostało wygenerowane przez system.' % challenge])
    if row['used']:
        raise ApiError(21111, ['Wyzwanie %s zostało już wykorzystane.' % challenge])
    if now > row['created'] + CHALLENGE_LIFETIME:
        raise ApiError(21111, ['Wyzwanie %s wygasło.' % challenge])
    emu.store.update('challenges', 'challenge', challenge, {'used': 1})
    return row


# --- permission rule and IP policy ------------------------------------------------------------------

def _context_nip(context_type, context_value):
    if context_type == 'Nip':
        return context_value
    if context_type == 'InternalId':
        return context_value.split('-', 1)[0]
    return None


def is_owner(emu, subject_type, subject_value, context_type, context_value):
    """Owner of the context: subject NIP = context NIP, or a PESEL linked to it by /testdata/person."""
    nip = _context_nip(context_type, context_value)
    if nip is None:
        return False
    if subject_type == 'Nip' and subject_value == nip:
        return True
    return subject_type == 'Pesel' and emu.store.one('SELECT 1 FROM persons WHERE nip = ? AND pesel = ?',
                                                     (nip, subject_value)) is not None


def has_permission(emu, subject_type, subject_value, context_type, context_value):
    """Owner (subject NIP = context NIP, or a PESEL linked to it by /testdata/person) or a testdata grant."""
    if is_owner(emu, subject_type, subject_value, context_type, context_value):
        return True
    grant = emu.store.one('SELECT 1 FROM permissions WHERE context_type = ? AND context_value = ? '
                          'AND authorized_type = ? AND authorized_value = ?',
                          (context_type, context_value, subject_type, subject_value))
    return grant is not None


def linked_identities(emu, subject_type, subject_value):
    """The subject plus identifiers linked through the NIP-PESEL link (for revocation rights)."""
    result = [(subject_type, subject_value)]
    if subject_type == 'Pesel':
        result += [('Nip', r['nip']) for r in emu.store.all('SELECT nip FROM persons WHERE pesel = ?', (subject_value,))]
    elif subject_type == 'Nip':
        result += [('Pesel', r['pesel']) for r in emu.store.all('SELECT pesel FROM persons WHERE nip = ?', (subject_value,))]
    return result


def validate_ip_policy(policy, where):
    """Check an authorizationPolicy.allowedIps object (JSON body); returns it or raises 21405."""
    if policy is None:
        return None
    if not isinstance(policy, dict):
        raise validation_error('%s must be an object' % where)
    allowed = policy.get('allowedIps')
    if allowed is None:
        return None
    if not isinstance(allowed, dict):
        raise validation_error('%s.allowedIps must be an object' % where)
    result = {}
    for name, pattern in IP_POLICY_PATTERNS.items():
        values = allowed.get(name) or []
        if not isinstance(values, list) or len(values) > 10:
            raise validation_error('%s.allowedIps.%s must be a list of at most 10 items' % (where, name))
        for value in values:
            if not isinstance(value, str) or not pattern.match(value):
                raise validation_error('%s.allowedIps.%s: invalid value %r' % (where, name, value))
        result[name] = list(values)
    return result


def ip_allowed(policy, client_ip):
    if not policy or not any(policy.get(name) for name in IP_POLICY_PATTERNS):
        return True
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version != 4:
        return False
    for value in policy.get('ip4Addresses') or []:
        if address == ipaddress.ip_address(value):
            return True
    for value in policy.get('ip4Ranges') or []:
        low, high = value.split('-')
        if ipaddress.ip_address(low) <= address <= ipaddress.ip_address(high):
            return True
    for value in policy.get('ip4Masks') or []:
        if address in ipaddress.ip_network(value, strict=False):
            return True
    return False


# --- starting an authentication ------------------------------------------------------------------

def _create_operation(emu, now, method, context_type, context_value, subject, status, method_info,
                      authentication_method, allowed_ips, signer_der=None, ksef_token_reference=None):
    reference = util.reference_number('AU', now)
    subject_type, subject_value = subject if subject else (None, None)
    emu.store.insert('auth_operations', {
        'reference_number': reference, 'started': now, 'ready_at': now + emu.config.auth_processing_delay,
        'method': method, 'context_type': context_type, 'context_value': context_value,
        'subject_type': subject_type, 'subject_value': subject_value, 'signer_der': signer_der,
        'ksef_token_reference': ksef_token_reference, 'status_code': status[0], 'status_description': status[1],
        'status_details': status[2], 'method_info': method_info, 'authentication_method': authentication_method,
        'allowed_ips': allowed_ips,
    })
    token, valid_until = tokens.encode(emu.keys.jwt_secret, 'operation', reference, now, OPERATION_TOKEN_TTL,
                                       {'ctx': context_key(context_type, context_value)})
    return {'referenceNumber': reference, 'authenticationToken': {'token': token, 'validUntil': util.iso(valid_until)}}


def _ksef_certificate_status(emu, cert, now):
    """For a signer certificate issued by the emulator: (subject, failure status or None)."""
    serial = '%016X' % cert.serial_number
    row = emu.store.one('SELECT * FROM certificates WHERE serial_number = ?', (serial,))
    if row is None:
        return None, _failed(460, 'Niepoprawny certyfikat.')
    subject = (row['subject_type'], row['subject_value'])
    if row['status'] in ('Revoked', 'Blocked'):
        return subject, _failed(460, 'Certyfikat odwołany.')
    if row['valid_to'] <= now or row['valid_from'] > now:
        return subject, _failed(460, 'Nieważny certyfikat.')
    if row['certificate_type'] != 'Authentication':
        return subject, _failed(460, 'Certyfikat typu Offline nie służy do uwierzytelniania.')
    emu.store.update('certificates', 'serial_number', serial, {'last_use': now})
    return subject, None


def start_xades(emu, xml_bytes, verify_chain):
    now = util.now()
    try:
        verified = xades_verify.verify_auth_request(xml_bytes)
        signer = verified.signer_certificate
        subject_identity = identity.subject_identity(signer, verified.subject_identifier_type)
    except xades_verify.XadesRejected as exc:
        raise ApiError(exc.code, exc.details or None, exc.description)
    _consume_challenge(emu, verified.challenge, now)

    internal_ca = emu.keys.issuing_cert.subject
    subject = (subject_identity.type, subject_identity.value)
    status = SUCCEEDED
    if emu.keys.issued_by_us(signer):
        ksef_subject, failure = _ksef_certificate_status(emu, signer, now)
        if ksef_subject and verified.subject_identifier_type == 'certificateSubject':
            subject = ksef_subject
        status = failure or status
    elif verify_chain:
        # KSeF TEST with verifyCertificateChain=true checks chain trust; a self-signed or unknown-issuer
        # signer cannot be verified.
        if signer.issuer == signer.subject:
            status = _failed(460, 'Błąd weryfikacji łańcucha certyfikatów.')
        else:
            status = _failed(460, 'Niezaufany łańcuch certyfikatów.')
    if status[0] == 200 and not has_permission(emu, subject[0], subject[1], verified.context_type, verified.context_value):
        status = _failed(415, 'Podmiot %s %s nie posiada uprawnień w kontekście %s %s.'
                         % (subject[0], subject[1], verified.context_type, verified.context_value))
    return _create_operation(
        emu, now, 'xades', verified.context_type, verified.context_value, subject, status,
        identity.authentication_method_info(signer, subject_identity, internal_ca),
        identity.authentication_method(signer, subject_identity, internal_ca),
        verified.allowed_ips, signer_der=signer.public_bytes(Encoding.DER))


def public_key_id(cert):
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode('ascii')


def _token_sha256(token):
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


def start_ksef_token(emu, body):
    now = util.now()
    if not isinstance(body, dict):
        raise validation_error('request body must be a JSON object')
    challenge = body.get('challenge')
    context = body.get('contextIdentifier')
    encrypted = body.get('encryptedToken')
    if not isinstance(challenge, str) or len(challenge) != 36:
        raise validation_error("'challenge' is required and must have 36 characters")
    if not isinstance(context, dict) or context.get('type') not in CONTEXT_TYPES \
            or not isinstance(context.get('value'), str) or not context.get('value'):
        raise validation_error("'contextIdentifier' must have 'type' (%s) and 'value'" % '|'.join(CONTEXT_TYPES))
    if not isinstance(encrypted, str) or not encrypted:
        raise validation_error("'encryptedToken' is required")
    try:
        ciphertext = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise validation_error("'encryptedToken' is not valid Base64")
    allowed_ips = validate_ip_policy(body.get('authorizationPolicy'), 'authorizationPolicy')
    key_id = body.get('publicKeyId')
    expected_key_id = public_key_id(emu.keys.token_encryption_cert)
    if key_id is not None and key_id != expected_key_id:
        raise ApiError(21470, ['Klucz o identyfikatorze %s nie jest wspierany.' % key_id])
    challenge_row = _consume_challenge(emu, challenge, now)
    challenge_ms = int(round(challenge_row['created'] * 1000))

    status, subject, token_row = SUCCEEDED, None, None
    try:
        plaintext = emu.keys.token_encryption_key.decrypt(ciphertext, padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)).decode('utf-8')
        token, dummy, timestamp = plaintext.rpartition('|')
    except (ValueError, UnicodeDecodeError):
        token, timestamp = '', ''
        status = _failed(450, 'Nie można odszyfrować tokenu (RSA-OAEP SHA-256).')
    if status[0] == 200:
        token_row = ksef_tokens.settle(emu, emu.store.one('SELECT * FROM ksef_tokens WHERE token_sha256 = ?',
                                                          (_token_sha256(token),)), now)
        if token_row is None:
            status = _failed(450, 'Nieprawidłowy token.')
        elif timestamp != str(challenge_ms):
            status = _failed(450, 'Nieprawidłowy czas tokena.')
        elif token_row['status'] in ('Revoking', 'Revoked'):
            status = _failed(450, 'Token unieważniony.')
        elif token_row['status'] != 'Active':
            status = _failed(450, 'Token nieaktywny.')
        elif (token_row['context_type'], token_row['context_value']) != (context['type'], context['value']):
            status = _failed(450, 'Token nie jest przypisany do kontekstu %s %s.' % (context['type'], context['value']))
    if token_row is not None:
        subject = (token_row['author_type'], token_row['author_value'])
        if status[0] == 200:
            emu.store.update('ksef_tokens', 'reference_number', token_row['reference_number'], {'last_use': now})
    method_info = {'category': 'Token', 'code': 'token.ksef', 'displayName': 'Token KSeF'}
    return _create_operation(emu, now, 'ksef_token', context['type'], context['value'], subject, status,
                             method_info, 'Token', allowed_ips,
                             ksef_token_reference=token_row['reference_number'] if token_row else None)


# --- bearer tokens ------------------------------------------------------------------------------------

def bearer_token(req):
    header = req.headers.get('Authorization', '')
    scheme, dummy, value = header.partition(' ')
    if scheme.lower() != 'bearer' or not value.strip():
        raise Unauthorized('Brak tokenu uwierzytelniającego (nagłówek Authorization: Bearer).')
    return value.strip()


def operation_for_token(emu, req, kinds):
    """Verify the bearer token of the request; returns (claims, auth operation row) or raises 401."""
    try:
        claims = tokens.decode(emu.keys.jwt_secret, bearer_token(req), kinds, util.now())
    except tokens.TokenInvalid as exc:
        raise Unauthorized(str(exc))
    operation = emu.store.one('SELECT * FROM auth_operations WHERE reference_number = ?', (claims['ref'],))
    if operation is None:
        raise Unauthorized('The bearer token refers to an unknown authentication.')
    if 'refresh' in kinds and claims['typ'] == 'refresh' and operation['session_revoked']:
        raise Unauthorized('The refresh token was revoked (session closed).')
    return claims, operation


def access_session(emu, req):
    """Auth operation behind a valid access token; enforces the IP allow-list (403 ip-not-allowed)."""
    dummy, operation = operation_for_token(emu, req, ('access',))
    client_ip = req.remote_addr
    if not ip_allowed(operation['allowed_ips'], client_ip):
        raise Forbidden('ip-not-allowed', 'Adres IP %s nie jest dozwolony przez politykę autoryzacji.' % client_ip,
                        {'clientIp': client_ip})
    return operation


def _current_status(operation, now):
    if now < operation['ready_at']:
        return IN_PROGRESS
    return operation['status_code'], operation['status_description'], operation['status_details']


def _status_dict(status):
    result = {'code': status[0], 'description': status[1]}
    if status[2]:
        result['details'] = status[2]
    return result


def _operation_summary(operation, now):
    summary = {
        'startDate': util.iso(operation['started']),
        'authenticationMethod': operation['authentication_method'],
        'authenticationMethodInfo': operation['method_info'],
        'status': _status_dict(_current_status(operation, now)),
        'isTokenRedeemed': bool(operation['redeemed']),
    }
    if operation['last_refresh']:
        summary['lastTokenRefreshDate'] = util.iso(operation['last_refresh'])
    if operation['refresh_valid_until']:
        summary['refreshTokenValidUntil'] = util.iso(operation['refresh_valid_until'])
    return summary


def _not_found(reference):
    return ApiError(21304, ['Operacja uwierzytelniania o numerze referencyjnym %s nie została znaleziona.' % reference],
                    reference_number=reference)


def authentication_status(emu, req, reference):
    now = util.now()
    claims, operation = operation_for_token(emu, req, ('operation',))
    if claims['ref'] != reference:
        raise _not_found(reference)
    if now > operation['started'] + emu.switches.auth_retention():
        raise Gone('Operacja uwierzytelniania %s jest niedostępna (minął okres przechowywania).' % reference)
    return _operation_summary(operation, now)


def _ksef_token_revoked(emu, operation):
    if not operation['ksef_token_reference']:
        return False
    row = ksef_tokens.settle(emu, emu.store.one('SELECT * FROM ksef_tokens WHERE reference_number = ?',
                                                (operation['ksef_token_reference'],)))
    return row is None or row['status'] != 'Active'


def redeem(emu, req):
    now = util.now()
    dummy, operation = operation_for_token(emu, req, ('operation',))
    reference = operation['reference_number']
    status = _current_status(operation, now)
    if operation['redeemed']:
        raise ApiError(21301, ['Tokeny dla operacji uwierzytelniania %s zostały już pobrane.' % reference],
                       reference_number=reference)
    if status[0] != 200:
        raise ApiError(21301, ['Status uwierzytelniania (%d) nie pozwala na pobranie tokenów.' % status[0]],
                       reference_number=reference)
    if _ksef_token_revoked(emu, operation):
        raise ApiError(21301, ['Token KSeF został unieważniony.'], reference_number=reference)
    ctx = {'ctx': context_key(operation['context_type'], operation['context_value'])}
    access, access_until = tokens.encode(emu.keys.jwt_secret, 'access', reference, now, emu.config.access_token_ttl, ctx)
    refresh, refresh_until = tokens.encode(emu.keys.jwt_secret, 'refresh', reference, now, REFRESH_TOKEN_TTL, ctx)
    emu.store.update('auth_operations', 'reference_number', reference,
                     {'redeemed': 1, 'refresh_valid_until': float(refresh_until)})
    return {'accessToken': {'token': access, 'validUntil': util.iso(access_until)},
            'refreshToken': {'token': refresh, 'validUntil': util.iso(refresh_until)}}


def refresh(emu, req):
    now = util.now()
    dummy, operation = operation_for_token(emu, req, ('refresh',))
    reference = operation['reference_number']
    if _ksef_token_revoked(emu, operation):
        raise ApiError(21301, ['Token KSeF został unieważniony.'], reference_number=reference)
    ctx = {'ctx': context_key(operation['context_type'], operation['context_value'])}
    access, access_until = tokens.encode(emu.keys.jwt_secret, 'access', reference, now, emu.config.access_token_ttl, ctx)
    emu.store.update('auth_operations', 'reference_number', reference, {'last_refresh': now})
    return {'accessToken': {'token': access, 'validUntil': util.iso(access_until)}}


def close_current_session(emu, req):
    dummy, operation = operation_for_token(emu, req, ('access', 'refresh'))
    emu.store.update('auth_operations', 'reference_number', operation['reference_number'], {'session_revoked': 1})


def _same_owner_sessions(emu, operation, now):
    return emu.store.all(
        'SELECT * FROM auth_operations WHERE context_type = ? AND context_value = ? AND subject_type = ? '
        'AND subject_value = ? AND redeemed = 1 AND session_revoked = 0 AND refresh_valid_until > ? '
        'ORDER BY started DESC, reference_number', (operation['context_type'], operation['context_value'],
                                                    operation['subject_type'], operation['subject_value'], now))


def close_session(emu, req, reference):
    operation = access_session(emu, req)
    sessions = _same_owner_sessions(emu, operation, util.now())
    if reference not in [s['reference_number'] for s in sessions]:
        raise _not_found(reference)
    emu.store.update('auth_operations', 'reference_number', reference, {'session_revoked': 1})


def list_sessions(emu, req, page_size, continuation):
    now = util.now()
    operation = access_session(emu, req)
    try:
        page_size = int(page_size)
    except ValueError:
        raise validation_error("'pageSize' must be an integer")
    if not 10 <= page_size <= 100:
        raise validation_error("'pageSize' must be between 10 and 100")
    sessions = _same_owner_sessions(emu, operation, now)
    start = int(continuation) if continuation and continuation.isdigit() else 0
    page = sessions[start:start + page_size]
    items = []
    for session in page:
        item = _operation_summary(session, now)
        item['referenceNumber'] = session['reference_number']
        item['isCurrent'] = session['reference_number'] == operation['reference_number']
        items.append(item)
    result = {'items': items}
    if start + page_size < len(sessions):
        result['continuationToken'] = str(start + page_size)
    return result


def signer_certificate(operation):
    if not operation['signer_der']:
        return None
    return x509.load_der_x509_certificate(operation['signer_der'])
