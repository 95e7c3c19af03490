"""KSeF certificates: limits, enrollment data, enrollments (processed after a delay), issuance,
retrieve, query and revoke. Every operation acts on the authenticated subject, not on the context."""

import base64
import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from . import auth, csrcheck, identity, util
from .errors import ApiError, Forbidden, Gone, validation_error

# (enrollment requests, active certificates) per subject identifier type (SPEC 7, since 2026-03).
DEFAULT_LIMITS = {'Nip': (300, 100), 'Pesel': (12, 6), 'Fingerprint': (12, 6)}
# KSeF documents no period for the enrollment count; MF's messages imply 30 days (SPEC 7, ambiguity 4).
ENROLLMENT_WINDOW = 30 * 24 * 3600.0
NAME_PATTERN = re.compile(r'^[a-zA-Z0-9_\- ąćęłńóśźżĄĆĘŁŃÓŚŹŻ]+$')
CERTIFICATE_TYPES = ('Authentication', 'Offline')
STATUSES = ('Active', 'Blocked', 'Revoked', 'Expired')
REVOCATION_REASONS = ('Unspecified', 'Superseded', 'KeyCompromise')

ENROLLMENT_ACCEPTED = (100, 'Wniosek przyjęty do realizacji', None)
ENROLLMENT_DONE = (200, 'Wniosek obsłużony (certyfikat wygenerowany)', None)
REJECTED = 'Wniosek odrzucony'
# Switch refuseReusedKey: KSeF documents the refusal only for another subject's key; same wording, no subject.
KEY_REUSED = 'Klucz publiczny został już certyfikowany.'


def _subject(operation):
    return operation['subject_type'], operation['subject_value']


def public_key_sha256(public_key):
    return hashlib.sha256(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def computed_status(row, now):
    """Stored status, except that an active certificate past validTo reads as Expired, and a Blocked one
    (switch revocationBlockedSeconds; `revoked` holds the moment the revocation completes) reads as Revoked
    once that moment has passed."""
    if row['status'] == 'Active' and row['valid_to'] <= now:
        return 'Expired'
    if row['status'] == 'Blocked' and row['revoked'] is not None and row['revoked'] <= now:
        return 'Revoked'
    return row['status']


# --- limits -------------------------------------------------------------------------------------------

def effective_limits(emu, subject_type, subject_value):
    """(max enrollment requests, max active certificates), with /testdata overrides."""
    max_enrollments, max_certificates = DEFAULT_LIMITS.get(subject_type, DEFAULT_LIMITS['Fingerprint'])
    override = emu.store.one('SELECT * FROM subject_limits WHERE subject_type = ? AND subject_value = ?',
                             (subject_type, subject_value))
    if override:
        if override['max_enrollments'] is not None:
            max_enrollments = override['max_enrollments']
        if override['max_certificates'] is not None:
            max_certificates = override['max_certificates']
    return max_enrollments, max_certificates


def enrollment_count(emu, subject_type, subject_value, now):
    return emu.store.scalar('SELECT COUNT(*) FROM enrollments WHERE subject_type = ? AND subject_value = ? '
                            'AND requested > ?', (subject_type, subject_value, now - ENROLLMENT_WINDOW))


def active_count(emu, subject_type, subject_value, now):
    return emu.store.scalar("SELECT COUNT(*) FROM certificates WHERE subject_type = ? AND subject_value = ? "
                            "AND status = 'Active' AND valid_to > ?", (subject_type, subject_value, now))


def limits(emu, operation):
    now = util.now()
    subject = _subject(operation)
    max_enrollments, max_certificates = effective_limits(emu, *subject)
    enrollments_left = max(0, max_enrollments - enrollment_count(emu, subject[0], subject[1], now))
    certificates_left = max(0, max_certificates - active_count(emu, subject[0], subject[1], now))
    return {'canRequest': enrollments_left > 0 and certificates_left > 0,
            'enrollment': {'remaining': enrollments_left, 'limit': max_enrollments},
            'certificate': {'remaining': certificates_left, 'limit': max_certificates}}


# --- enrollment -----------------------------------------------------------------------------------------

def enrollment_data(emu, operation):
    signer = auth.signer_certificate(operation)
    if operation['method'] != 'xades' or signer is None:
        raise ApiError(25001)
    return identity.enrollment_data(signer)


def _date_field(body, field):
    """The date-time in body[field] (None when absent); a value that is not ISO 8601 is a validation error."""
    value = body.get(field)
    if value is None:
        return None
    try:
        return util.parse_iso(value)
    except ValueError as exc:
        raise validation_error("'%s': %s" % (field, exc))


def _validate_enrollment(body):
    if not isinstance(body, dict):
        raise validation_error('request body must be a JSON object')
    name = body.get('certificateName')
    if not isinstance(name, str) or not 5 <= len(name) <= 100 or not NAME_PATTERN.match(name):
        raise validation_error("'certificateName' must have 5-100 characters: letters (also Polish), digits, "
                               "space, '_' or '-'")
    certificate_type = body.get('certificateType')
    if certificate_type not in CERTIFICATE_TYPES:
        raise validation_error("'certificateType' must be Authentication or Offline")
    valid_from = _date_field(body, 'validFrom')
    if 'csr' not in body or body.get('csr') is None:
        raise validation_error("'csr' is required")
    return name, certificate_type, valid_from


def enroll(emu, operation, body):
    now = util.now()
    if operation['method'] != 'xades':
        raise ApiError(25002)
    name, certificate_type, valid_from = _validate_enrollment(body)
    csr = csrcheck.load_csr(body['csr'])
    data = identity.enrollment_data(auth.signer_certificate(operation))
    if not identity.csr_subject_matches(csr.subject, data):
        raise ApiError(25003, ['Podmiot CSR (%s) różni się od danych do wniosku certyfikacyjnego.'
                               % csr.subject.rfc4514_string()])
    subject = _subject(operation)
    max_enrollments, max_certificates = effective_limits(emu, *subject)
    if enrollment_count(emu, subject[0], subject[1], now) >= max_enrollments:
        raise ApiError(25006, ['Limit: %d wniosków.' % max_enrollments])
    if active_count(emu, subject[0], subject[1], now) >= max_certificates:
        raise ApiError(25007, ['Limit: %d aktywnych certyfikatów.' % max_certificates])
    reference = util.reference_number('EH', now)
    emu.store.insert('enrollments', {
        'reference_number': reference, 'subject_type': subject[0], 'subject_value': subject[1], 'name': name,
        'certificate_type': certificate_type, 'csr_der': csr.public_bytes(Encoding.DER), 'valid_from': valid_from,
        'requested': now, 'status_code': ENROLLMENT_ACCEPTED[0], 'status_description': ENROLLMENT_ACCEPTED[1],
    })
    return {'referenceNumber': reference, 'timestamp': util.iso(now)}


def _new_unique_serial(emu):
    while True:
        serial = util.new_serial_number()
        if not emu.store.one('SELECT 1 FROM certificates WHERE serial_number = ?', (serial,)):
            return serial


def _process(emu, enrollment, now):
    """Finish one enrollment: reject (status 400) or issue the certificate (status 200)."""
    csr = x509.load_der_x509_csr(enrollment['csr_der'])
    public_key = csr.public_key()
    key_hash = public_key_sha256(public_key)
    subject = (enrollment['subject_type'], enrollment['subject_value'])
    status = None
    other_owner = emu.store.one('SELECT 1 FROM certificates WHERE public_key_sha256 = ? '
                                'AND NOT (subject_type = ? AND subject_value = ?)', (key_hash,) + subject)
    same_owner = emu.switches.get('refuseReusedKey') and emu.store.one(
        'SELECT 1 FROM certificates WHERE public_key_sha256 = ? AND subject_type = ? AND subject_value = ?',
        (key_hash,) + subject)
    if other_owner:
        status = (400, REJECTED, ['Klucz publiczny został już certyfikowany przez inny podmiot.'])
    elif same_owner:
        status = (400, REJECTED, [KEY_REUSED])
    elif active_count(emu, subject[0], subject[1], now) >= effective_limits(emu, *subject)[1]:
        status = (400, REJECTED, ['Osiągnięto dopuszczalny limit posiadanych certyfikatów.'])
    if status:
        emu.store.update('enrollments', 'reference_number', enrollment['reference_number'],
                         {'status_code': status[0], 'status_description': status[1], 'status_details': status[2]})
        return
    serial = _new_unique_serial(emu)
    valid_from = (enrollment['valid_from'] if enrollment['valid_from'] is not None
                  else now + emu.switches.get('issuedValidFromSeconds'))
    valid_to = valid_from + emu.config.certificate_validity_days * 24 * 3600.0
    cert = emu.keys.issue_ksef_certificate(csr.subject, public_key, serial, enrollment['certificate_type'],
                                           valid_from, valid_to)
    common_names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    emu.store.insert('certificates', {
        'serial_number': serial, 'subject_type': subject[0], 'subject_value': subject[1], 'name': enrollment['name'],
        'certificate_type': enrollment['certificate_type'],
        'common_name': common_names[0].value if common_names else '', 'der': cert.public_bytes(Encoding.DER),
        'public_key_sha256': key_hash, 'valid_from': valid_from, 'valid_to': valid_to,
        'requested': enrollment['requested'], 'status': 'Active', 'enrollment_reference': enrollment['reference_number'],
    })
    emu.store.update('enrollments', 'reference_number', enrollment['reference_number'],
                     {'status_code': ENROLLMENT_DONE[0], 'status_description': ENROLLMENT_DONE[1], 'serial_number': serial})
    _record_active_peak(emu, subject, now)


def _record_active_peak(emu, subject, now):
    """Keep the highest number of active certificates a subject ever held (only an issuance raises it), so a
    test can assert on the emulator's own record that a run never went over the limit."""
    active = active_count(emu, subject[0], subject[1], now)
    row = emu.store.one('SELECT peak FROM active_peaks WHERE subject_type = ? AND subject_value = ?', subject)
    if row is None or active > row['peak']:
        emu.store.execute('INSERT OR REPLACE INTO active_peaks VALUES (?, ?, ?, ?)', subject + (active, now))


def process_due_enrollments(emu):
    """Process every enrollment whose processing delay has passed (called before each request)."""
    now = util.now()
    with emu.store.transaction():
        due = emu.store.all('SELECT * FROM enrollments WHERE status_code = 100 AND requested + ? <= ? '
                            'ORDER BY requested', (emu.config.processing_delay, now))
        for enrollment in due:
            _process(emu, enrollment, now)


def enrollment_status(emu, operation, reference):
    if not util.REFERENCE_PATTERN.match(reference):
        raise validation_error("'referenceNumber' must be a 36-character reference number")
    row = emu.store.one('SELECT * FROM enrollments WHERE reference_number = ? AND subject_type = ? '
                        'AND subject_value = ?', (reference,) + _subject(operation))
    if row is None:
        raise ApiError(25005, reference_number=reference)
    if util.now() > row['requested'] + emu.switches.enrollment_retention():
        raise Gone('Wniosek certyfikacyjny %s jest niedostępny (minął okres przechowywania).' % reference)
    status = {'code': row['status_code'], 'description': row['status_description']}
    if row['status_details']:
        status['details'] = row['status_details']
    result = {'requestDate': util.iso(row['requested']), 'status': status}
    if row['serial_number']:
        result['certificateSerialNumber'] = row['serial_number']
    return result


# --- retrieve, query, revoke -----------------------------------------------------------------------------

def _check_serial(serial, field):
    if not isinstance(serial, str) or not util.SERIAL_PATTERN.match(serial):
        raise validation_error("'%s' must be 16 uppercase hexadecimal characters" % field)


def retrieve(emu, operation, body):
    serials = body.get('certificateSerialNumbers') if isinstance(body, dict) else None
    if not isinstance(serials, list) or not 1 <= len(serials) <= 10:
        raise validation_error("'certificateSerialNumbers' must be a list of 1 to 10 serial numbers")
    for serial in serials:
        _check_serial(serial, 'certificateSerialNumbers')
    result = []
    for serial in serials:
        row = emu.store.one('SELECT * FROM certificates WHERE serial_number = ? AND subject_type = ? '
                            'AND subject_value = ?', (serial,) + _subject(operation))
        if row is not None:
            result.append({'certificate': base64.b64encode(row['der']).decode('ascii'),
                           'certificateName': row['name'], 'certificateSerialNumber': row['serial_number'],
                           'certificateType': row['certificate_type']})
    return {'certificates': result}


def list_item(row, now):
    item = {
        'certificateSerialNumber': row['serial_number'], 'name': row['name'], 'type': row['certificate_type'],
        'commonName': row['common_name'], 'status': computed_status(row, now),
        'subjectIdentifier': {'type': row['subject_type'], 'value': row['subject_value']},
        'validFrom': util.iso(row['valid_from']), 'validTo': util.iso(row['valid_to']),
        'requestDate': util.iso(row['requested']),
    }
    if row['last_use']:
        item['lastUseDate'] = util.iso(row['last_use'])
    return item


def _int_param(args, name, default, low, high):
    raw = args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error("'%s' must be an integer" % name)
    if value < low or (high is not None and value > high):
        raise validation_error("'%s' must be between %d and %s" % (name, low, high if high is not None else 'any'))
    return value


def query(emu, operation, body, args):
    now = util.now()
    page_size = _int_param(args, 'pageSize', 10, 10, 50)
    page_offset = _int_param(args, 'pageOffset', 0, 0, None)
    body = body if body is not None else {}
    if not isinstance(body, dict):
        raise validation_error('request body must be a JSON object')
    serial = body.get('certificateSerialNumber')
    if serial is not None:
        _check_serial(serial, 'certificateSerialNumber')
    name = body.get('name')
    if name is not None and not isinstance(name, str):
        raise validation_error("'name' must be a string")
    certificate_type = body.get('type')
    if certificate_type is not None and certificate_type not in CERTIFICATE_TYPES:
        raise validation_error("'type' must be Authentication or Offline")
    status = body.get('status')
    if status is not None and status not in STATUSES:
        raise validation_error("'status' must be one of %s" % ', '.join(STATUSES))
    expires_after = _date_field(body, 'expiresAfter')

    rows = emu.store.all('SELECT * FROM certificates WHERE subject_type = ? AND subject_value = ? '
                         'ORDER BY requested DESC, serial_number', _subject(operation))
    matching = []
    for row in rows:
        if serial is not None and row['serial_number'] != serial:
            continue
        # "contains" match; KSeF's database collation is case-insensitive, so is this one.
        if name and name.casefold() not in row['name'].casefold():
            continue
        if certificate_type is not None and row['certificate_type'] != certificate_type:
            continue
        if status is not None and computed_status(row, now) != status:
            continue
        if expires_after is not None and not row['valid_to'] > expires_after:
            continue
        matching.append(row)
    start = page_offset * page_size
    page = matching[start:start + page_size]
    return {'certificates': [list_item(row, now) for row in page], 'hasMore': start + page_size < len(matching)}


def revoke(emu, operation, serial, body):
    if operation['method'] != 'xades':
        raise Forbidden('auth-method-not-allowed', 'Unieważnienie certyfikatu nie jest dostępne dla sesji '
                        'uwierzytelnionej tokenem KSeF.', {'authenticationMethodCategory': 'Token'})
    _check_serial(serial, 'certificateSerialNumber')
    reason = None
    if body is not None:
        if not isinstance(body, dict):
            raise validation_error('request body must be a JSON object')
        reason = body.get('revocationReason')
    if reason is not None and reason not in REVOCATION_REASONS:
        raise validation_error("'revocationReason' must be one of %s" % ', '.join(REVOCATION_REASONS))
    now = util.now()
    row = emu.store.one('SELECT * FROM certificates WHERE serial_number = ?', (serial,))
    owners = auth.linked_identities(emu, *_subject(operation))
    if row is None or (row['subject_type'], row['subject_value']) not in owners:
        raise ApiError(25008, ['Certyfikat %s.' % serial])
    if computed_status(row, now) != 'Active':
        raise ApiError(25009, ['Status certyfikatu %s: %s.' % (serial, computed_status(row, now))])
    blocked_seconds = emu.switches.get('revocationBlockedSeconds')
    # With the Blocked switch on, the certificate reads Blocked until `revoked` (when the revocation completes).
    emu.store.update('certificates', 'serial_number', serial,
                     {'status': 'Blocked' if blocked_seconds else 'Revoked', 'revocation_reason': reason or 'Unspecified',
                      'revoked': now + blocked_seconds})


def shorten_validity(emu, operation, serial, body):
    """TEST-only PUT /testdata/certificates/{serialNumber}: move validTo earlier (never later).

    The certificate DER is re-signed with the new notAfter, so retrieve returns a consistent certificate.
    """
    _check_serial(serial, 'serialNumber')
    if not isinstance(body, dict) or body.get('validTo') is None:
        raise validation_error("'validTo' is required")
    valid_to = _date_field(body, 'validTo')
    row = emu.store.one('SELECT * FROM certificates WHERE serial_number = ? AND subject_type = ? '
                        'AND subject_value = ?', (serial,) + _subject(operation))
    if row is None:
        raise ApiError(25008, ['Certyfikat %s.' % serial])
    if valid_to > row['valid_to']:
        raise validation_error("'validTo' may not be later than the current validTo (%s)" % util.iso(row['valid_to']))
    if valid_to < row['valid_from']:
        raise validation_error("'validTo' may not be earlier than validFrom (%s)" % util.iso(row['valid_from']))
    old = x509.load_der_x509_certificate(row['der'])
    cert = emu.keys.issue_ksef_certificate(old.subject, old.public_key(), serial, row['certificate_type'],
                                           row['valid_from'], valid_to)
    emu.store.update('certificates', 'serial_number', serial,
                     {'valid_to': valid_to, 'der': cert.public_bytes(Encoding.DER)})


def state_dump(emu):
    """GET /emulator/state: certificates, enrollments and counts, for tests to assert real state."""
    now = util.now()
    certificates = []
    for row in emu.store.all('SELECT * FROM certificates ORDER BY requested, serial_number'):
        certificates.append({
            'serialNumber': row['serial_number'], 'name': row['name'], 'type': row['certificate_type'],
            'status': computed_status(row, now),
            'subjectIdentifier': {'type': row['subject_type'], 'value': row['subject_value']},
            'commonName': row['common_name'], 'publicKeySha256': row['public_key_sha256'],
            'revocationReason': row['revocation_reason'], 'validFrom': util.iso(row['valid_from']),
            'validTo': util.iso(row['valid_to']), 'requestDate': util.iso(row['requested']),
            'enrollmentReferenceNumber': row['enrollment_reference'],
            'lastUseDate': util.iso(row['last_use']) if row['last_use'] else None,
        })
    enrollments = []
    counts = {}
    for row in emu.store.all('SELECT * FROM enrollments ORDER BY requested, reference_number'):
        enrollments.append({
            'referenceNumber': row['reference_number'], 'statusCode': row['status_code'],
            'serialNumber': row['serial_number'], 'name': row['name'], 'type': row['certificate_type'],
            'subjectIdentifier': {'type': row['subject_type'], 'value': row['subject_value']},
            'requestDate': util.iso(row['requested']),
        })
        key = '%s:%s' % (row['subject_type'], row['subject_value'])
        counts[key] = counts.get(key, 0) + 1
    peaks = {}
    for row in emu.store.all('SELECT * FROM active_peaks ORDER BY subject_type, subject_value'):
        peaks['%s:%s' % (row['subject_type'], row['subject_value'])] = {'peak': row['peak'], 'reached': util.iso(row['reached'])}
    return {'certificates': certificates, 'enrollments': enrollments, 'enrollmentCounts': counts, 'activePeaks': peaks}
