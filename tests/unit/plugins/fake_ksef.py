# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one fake KSeF of the unit tests, its clock, and the harness that runs the ksef_certificate engine on them.

FakeKsef speaks the whole interface of the gateway (_api.KsefApi: every public method, same parameters; the
test test_fake_ksef.py keeps it so), so production code calls it exactly as it calls KSeF. It keeps
certificates (real ones, issued by its own CA, or raw list items a test gives), enrollments with their
statuses, the certificate and enrollment limits, revocations, KSeF tokens, the rate limits with KSeF's
counters, and a record of every call. FakeClock is the time of the fake and of the code under test.

What it does not model, and where that is tested instead: the HTTP layer (headers, status codes, retries,
the bodies KSeF sends) with http_script.HttpScript and a real KsefHttpClient; the emulator for whole runs.

Fixtures (tests/unit/conftest.py): `clock` (FakeClock), `ksef` (FakeKsef on that clock), `run` (Run).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import os
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _api, _crypto, _rules
from ansible_collections.ksef.certificates.plugins.module_utils._engine.converge import Converger
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError
from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
from ansible_collections.ksef.certificates.plugins.module_utils._pacing import AUTH_PUBLIC_LIMITS, OTHER_LIMITS
from ansible_collections.ksef.certificates.plugins.module_utils._records import CertificateRecords
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate
from ansible_collections.ksef.certificates.tests.unit.conftest import module_args
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ENROLLMENT_DATA = {
    'commonName': u'Zażółć Gęślą', 'surname': u'Gęślą', 'givenName': u'Zażółć', 'countryName': 'PL',
    'serialNumber': 'TINPL-1234563218', 'organizationName': None, 'organizationIdentifier': None,
    'uniqueIdentifier': None,
}
# Option spelling or API spelling -> the API's enum value.
API_TYPES = dict(list(_api.CERTIFICATE_TYPES.items()) + [(v, v) for v in _api.CERTIFICATE_TYPES.values()])
API_STATUSES = dict(list(_api.CERTIFICATE_STATUSES.items()) + [(v, v) for v in _api.CERTIFICATE_STATUSES.values()])
REASONS = _api.REVOCATION_REASONS
VALIDITY = datetime.timedelta(days=730)

# FakeKsef call -> the KSeF endpoint it stands for (its label is the key of calls_by_endpoint()).
ENDPOINTS = {
    'rate_limits': _api.RATE_LIMITS,
    'query': _api.QUERY,
    'retrieve': _api.RETRIEVE,
    'limits': _api.LIMITS,
    'enrollment_data': _api.ENROLLMENT_DATA,
    'enroll': _api.ENROLL,
    'enrollment_status': _api.ENROLLMENT_STATUS,
    'revoke': _api.REVOKE,
    'login': _api.AUTH_XADES_SIGNATURE,
    'tokens': _api.TOKENS_LIST,
    'generate_token': _api.TOKENS_GENERATE,
    'token_status': _api.TOKEN_STATUS,
    'revoke_token': _api.TOKEN_REVOKE,
}


def ksef_time(value):
    """KSeF's own notation: 7 fractional digits and an offset."""
    return value.strftime('%Y-%m-%dT%H:%M:%S.%f') + '0+00:00'


class FakeClock:
    """Time that moves only when the code under test sleeps or a test advances it.

    clock() and clock.monotonic(): seconds, from `start` (the monotonic clock of the HTTP client, the pacing and
    the engine); clock.now(): the wall-clock datetime, `wall` plus the seconds elapsed; clock.time(): the same
    as epoch seconds; clock.sleeps: every sleep asked for, in order.
    """

    def __init__(self, start=0.0, wall=START):
        self.start = start
        self.wall = wall
        self.elapsed = 0.0
        self.sleeps = []

    def __call__(self):
        return self.start + self.elapsed

    def monotonic(self):
        return self.start + self.elapsed

    def now(self):
        return self.wall + datetime.timedelta(seconds=self.elapsed)

    def time(self):
        return self.now().timestamp()

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def advance(self, seconds=0.0, **delta):
        self.elapsed += seconds + datetime.timedelta(**delta).total_seconds()


class _EmptyAnswer:
    status_code = 200
    headers = {}
    content = b''

    def iter_content(self, chunk_size=1):
        yield b''

    def close(self):
        pass


class _NullSession:
    """A requests session stand-in for the pacing client: every request answers 200 with an empty body, instantly."""

    def request(self, method, url, **kwargs):
        return _EmptyAnswer()


def _refusal(endpoint, status, code, description):
    return KsefApiError(endpoint.method, endpoint.route, status, errors=[{'code': code, 'description': description}])


class FakeKsef(CertificateRecords):
    """An in-memory KSeF with KsefApi's whole interface: issues real certificates and records every call.

    - Certificates: issued for enrollments, or made before the run (add_certificate), or raw list items as a
      test writes them (add_item). query() filters like KSeF (name is a substring, the rest exact), newest
      request first, `page_size` items a page (None: one page), one recorded call a page.
    - Enrollments are issued `processing_seconds` after they were sent (by the fake clock); forced_status
      {reference: code} answers a status instead (rejected, cancelled, ...).
    - Limits: limits_reply, or after quota() counted like KSeF (enroll() refuses past them with 25006/25007).
    - Rate limits: the published ones; after limit_rate() every call is paced by a real KsefHttpClient on the
      fake clock (so seconds_until_slot(), limits_for() and limits_source() are the real ones) and counted per
      endpoint like KSeF does: a call beyond the limits is recorded in `refused` and answered with 429.
    - Failures: enroll_error (raised before enroll() acts), lose_enroll_response (raised after it acted),
      revoke_errors {serial: exception}, revoked_elsewhere (serials someone else revokes just before us).
    - before_call(call, details), when set, runs before every call acts (a test can hold a thread there).
    - calls: [(call, details)] of this run (new_run() starts a new record, as each run has its own client).
    """

    def __init__(self, clock, processing_seconds=0, page_size=None):
        self.clock = clock
        self.processing_seconds = processing_seconds
        self.page_size = page_size
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'Fake KSeF CA')])
        self.certificates = []
        self.enrollments = {}
        self.calls = []
        self.enrollment_data_reply = dict(ENROLLMENT_DATA)
        self.limits_reply = {'canRequest': True, 'enrollment': {'remaining': 300, 'limit': 300},
                             'certificate': {'remaining': 100, 'limit': 100}}
        self.enroll_error = None
        self.lose_enroll_response = None
        self.revoke_errors = {}
        self.revoked_elsewhere = set()
        self.forced_status = {}
        self.issue_for_key = None       # a private key: certificates are issued for it, not for the CSR's key
        self.before_call = None
        self._serial = 0x1A00000000000000
        self.pacing_client = None
        self.server_limits = {}
        self.rate_limits_read = False
        self.hits = {}
        self.refused = []
        self.proof_logins = []          # serials of the successors that logged in before a revocation
        self.token_items = []
        self.token_statuses = {}        # reference -> statuses token_status() answers in turn (the last one stays)
        # After quota(): limits are counted like KSeF does, enroll() refuses past them (25006/25007), and
        # peak_active is the most active certificates seen at once.
        self.max_certificates = None
        self.max_enrollments = None
        self.peak_active = 0

    def new_run(self):
        """A new run of a module: a new record of calls, and GET /rate-limits not read yet."""
        self.calls = []
        self.rate_limits_read = False

    def quota(self, max_certificates, max_enrollments=300):
        self.max_certificates = max_certificates
        self.max_enrollments = max_enrollments
        self.peak_active = len(self.active())

    # -- rate limits -------------------------------------------------------------------------

    def limit_rate(self, per_minute, per_second=10, per_hour=120):
        """KSeF counts the calls of every endpoint against these limits; this run's client paces to them."""
        self.pacing_client = KsefHttpClient('https://ksef.invalid/v2', session=_NullSession(), clock=self.clock.monotonic,
                                            sleep=self.clock.sleep)
        self.server_limits = {1: per_second, 60: per_minute, 3600: per_hour}
        self.pacing_client.set_rate_limits(self._rate_limits_body())

    def _rate_limits_body(self):
        limits = self.server_limits or OTHER_LIMITS
        return {'other': {'perSecond': limits[1], 'perMinute': limits[60], 'perHour': limits[3600]}}

    def _rate_limit(self, call):
        endpoint = ENDPOINTS[call]
        if self.pacing_client is not None:
            self.pacing_client.request(endpoint.method, endpoint.route,
                                       path_params={'referenceNumber': 'R', 'certificateSerialNumber': 'S'})
        if not self.server_limits:
            return
        now = self.clock.monotonic()
        hits = self.hits.setdefault(call, [])
        for window, limit in self.server_limits.items():
            if len([t for t in hits if t > now - window]) >= limit:
                self.refused.append((call, now))
                raise _refusal(endpoint, 429, 429, 'Too Many Requests')
        hits.append(now)

    def seconds_until_slot(self, method, endpoint):
        return self.pacing_client.seconds_until_slot(method, endpoint) if self.pacing_client is not None else 0.0

    def limits_for(self, endpoint):
        if self.pacing_client is not None:
            return self.pacing_client.limits_for(*str(endpoint).split(' ', 1))
        return dict(AUTH_PUBLIC_LIMITS if str(endpoint) in _api.AUTH_PUBLIC_ENDPOINTS else OTHER_LIMITS)

    def limits_source(self):
        if self.pacing_client is not None:
            return self.pacing_client.pacer.limits_source
        return str(_api.RATE_LIMITS) if self.rate_limits_read else 'published'

    def calls_by_endpoint(self):
        counts = {}
        for call, dummy in self.calls:
            label = str(ENDPOINTS[call])
            counts[label] = counts.get(label, 0) + 1
        return counts

    def rate_limits(self):
        self.record('rate_limits')
        self.rate_limits_read = True
        body = self._rate_limits_body()
        if self.pacing_client is not None:
            self.pacing_client.set_rate_limits(body)
        return body

    def ensure_rate_limits(self):
        if not self.rate_limits_read:
            self.rate_limits()

    # -- bookkeeping -------------------------------------------------------------------------

    def record(self, call, **details):
        if self.before_call is not None:
            self.before_call(call, details)
        self._rate_limit(call)
        details['at'] = self.clock.monotonic()
        self.calls.append((call, details))
        self.process()

    def count(self, name):
        return sum(1 for call in self.calls if call[0] == name)

    def names(self):
        return [call[0] for call in self.calls]

    def details(self, name):
        """The details of every call `name` of this run, without the time it was made."""
        return [dict((k, v) for k, v in details.items() if k != 'at') for call, details in self.calls if call == name]

    def by_serial(self, serial):
        return next(c for c in self.certificates if c['serial'] == serial)

    def process(self):
        now = self.clock.now()
        for reference, enrollment in self.enrollments.items():
            if enrollment['serial'] is None and now >= enrollment['ready_at'] and reference not in self.forced_status:
                enrollment['serial'] = self.issue(enrollment)

    def issue(self, enrollment):
        csr = enrollment['csr']
        key_usage = dict(digital_signature=enrollment['type'] == 'Authentication',
                         content_commitment=enrollment['type'] == 'Offline', key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)
        self._serial += 1
        valid_from = enrollment.get('valid_from') or self.clock.now()
        certificate = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.ca_name)
                       .public_key(self.issue_for_key.public_key() if self.issue_for_key is not None
                                   else csr.public_key()).serial_number(self._serial)
                       .not_valid_before(valid_from).not_valid_after(valid_from + VALIDITY)
                       .add_extension(x509.KeyUsage(**key_usage), critical=True)
                       .sign(self.ca_key, hashes.SHA256()))
        self.certificates.append({
            'serial': '%016X' % self._serial, 'name': enrollment['name'], 'type': enrollment['type'],
            'status': 'Active', 'valid_from': valid_from, 'valid_to': valid_from + VALIDITY,
            'request_date': enrollment['sent_at'], 'der': certificate.public_bytes(serialization.Encoding.DER),
        })
        self.peak_active = max(self.peak_active, len(self.active()))
        return '%016X' % self._serial

    def add_certificate(self, name, cert_type, key, days=700, status='Active'):
        """A certificate that exists before the run (made elsewhere)."""
        csr = x509.CertificateSigningRequestBuilder().subject_name(
            _crypto.build_subject(ENROLLMENT_DATA)).sign(key, hashes.SHA256())
        serial = self.issue({'csr': csr, 'name': name, 'type': API_TYPES[cert_type],
                             'sent_at': self.clock.now() - datetime.timedelta(days=1)})
        entry = self.by_serial(serial)
        entry['status'] = status
        entry['valid_to'] = self.clock.now() + datetime.timedelta(days=days)
        return serial

    def add_item(self, item, der=None):
        """A certificate known only as the list item a test wrote (any field, even one KSeF would not send);
        `der`: what retrieve() answers for it."""
        self.certificates.append({
            'serial': item['certificateSerialNumber'], 'name': item['name'], 'type': item['type'],
            'status': item['status'], 'valid_to': _rules.parse_datetime_or_none(item.get('validTo')),
            'request_date': _rules.parse_datetime_or_none(item.get('requestDate')) or START, 'der': der,
            'item': dict(item),
        })

    def item(self, entry):
        if 'item' in entry:
            return dict(entry['item'], status=entry['status'])
        return {
            'certificateSerialNumber': entry['serial'], 'name': entry['name'], 'type': entry['type'],
            'commonName': ENROLLMENT_DATA['commonName'], 'status': entry['status'],
            'subjectIdentifier': {'type': 'Nip', 'value': '1234563218'},
            'validFrom': ksef_time(entry['valid_from']), 'validTo': ksef_time(entry['valid_to']),
            'requestDate': ksef_time(entry['request_date']),
        }

    # -- KsefApi interface: certificates -----------------------------------------------------

    def query(self, name=None, certificate_type=None, status=None, serial_number=None, expires_after=None):
        return [item for page in self.query_pages(name=name, certificate_type=certificate_type, status=status,
                                                  serial_number=serial_number, expires_after=expires_after)
                for item in page]

    def query_pages(self, name=None, certificate_type=None, status=None, serial_number=None, expires_after=None):
        after = _rules.parse_datetime(expires_after) if isinstance(expires_after, str) else expires_after
        offset = 0
        while True:
            # Each page is a request of its own, answered from what KSeF holds when it arrives.
            self.record('query', name=name, certificate_type=certificate_type, status=status,
                        serial_number=serial_number, expires_after=expires_after)
            found = [c for c in self.certificates
                     if (name is None or name in c['name']) and
                     (certificate_type is None or c['type'] == API_TYPES[certificate_type]) and
                     (status is None or c['status'] == API_STATUSES[status]) and
                     (serial_number is None or c['serial'] == serial_number) and
                     (after is None or (c['valid_to'] is not None and c['valid_to'] > after))]
            found.sort(key=lambda c: c['request_date'], reverse=True)
            size = self.page_size or max(len(found), 1)
            yield [self.item(c) for c in found[offset:offset + size]]
            offset += size
            if offset >= len(found):
                return

    def retrieve(self, serial_numbers):
        serial_numbers = list(serial_numbers)
        assert serial_numbers, 'retrieve() without serial numbers'
        self.record('retrieve', serials=serial_numbers)
        return [{'certificate': base64.b64encode(c['der']).decode('ascii'), 'certificateName': c['name'],
                 'certificateSerialNumber': c['serial'], 'certificateType': c['type']}
                for c in self.certificates if c['serial'] in serial_numbers and c['der'] is not None]

    def limits(self):
        self.record('limits')
        if self.max_certificates is None:
            return self.limits_reply
        certificates_left = max(0, self.max_certificates - len(self.active()))
        enrollments_left = max(0, self.max_enrollments - len(self.enrollments))
        return {'canRequest': certificates_left > 0 and enrollments_left > 0,
                'enrollment': {'remaining': enrollments_left, 'limit': self.max_enrollments},
                'certificate': {'remaining': certificates_left, 'limit': self.max_certificates}}

    def enrollment_data(self):
        self.record('enrollment_data')
        return self.enrollment_data_reply

    def enroll(self, name, certificate_type, csr_der, valid_from=None):
        self.record('enroll', certificate_name=name, certificate_type=certificate_type, valid_from=valid_from)
        if self.enroll_error is not None:
            raise self.enroll_error
        if self.max_enrollments is not None and len(self.enrollments) >= self.max_enrollments:
            raise _refusal(_api.ENROLL, 400, 25006, 'Limit')
        if self.max_certificates is not None and len(self.active()) >= self.max_certificates:
            raise _refusal(_api.ENROLL, 400, 25007, 'Limit')
        csr = x509.load_der_x509_csr(csr_der)
        assert csr.is_signature_valid
        assert _crypto.csr_subject_differences(csr, self.enrollment_data_reply) == []
        reference = '20260301-EH-%010X-0000000000-%02X' % (len(self.enrollments) + 1, len(self.enrollments) + 1)
        self.enrollments[reference] = {
            'name': name, 'type': API_TYPES[certificate_type], 'csr': csr, 'serial': None,
            'sent_at': self.clock.now(), 'ready_at': self.clock.now() + datetime.timedelta(seconds=self.processing_seconds),
            'valid_from': _rules.parse_datetime(valid_from) if valid_from else None,
        }
        self.process()
        if self.lose_enroll_response is not None:
            raise self.lose_enroll_response
        return {'referenceNumber': reference, 'timestamp': ksef_time(self.clock.now())}

    def enrollment_status(self, reference_number):
        self.record('enrollment_status', reference=reference_number)
        if reference_number not in self.enrollments:
            raise _refusal(_api.ENROLLMENT_STATUS, 400, 25005, 'Enrollment not found')
        enrollment = self.enrollments[reference_number]
        if reference_number in self.forced_status:
            code = self.forced_status[reference_number]
            return {'requestDate': ksef_time(enrollment['sent_at']),
                    'status': {'code': code, 'description': 'Forced %d' % code, 'details': ['detail of %d' % code]}}
        if enrollment['serial'] is None:
            return {'requestDate': ksef_time(enrollment['sent_at']), 'status': {'code': 100, 'description': 'Processing'}}
        return {'requestDate': ksef_time(enrollment['sent_at']), 'status': {'code': 200, 'description': 'Done'},
                'certificateSerialNumber': enrollment['serial']}

    def revoke(self, serial_number, reason=None):
        """True when revoked now; False when it was no longer active (KSeF's 25009)."""
        self.record('revoke', serial=serial_number, reason=REASONS.get(reason, reason))
        if serial_number in self.revoke_errors:
            raise self.revoke_errors[serial_number]
        entry = next((c for c in self.certificates if c['serial'] == serial_number), None)
        if entry is None:
            raise _refusal(_api.REVOKE, 400, 25008, 'Certificate not found')
        if serial_number in self.revoked_elsewhere:
            entry['status'] = 'Revoked'
        if entry['status'] != 'Active':
            return False
        entry['status'] = 'Revoked'
        return True

    def prove_login(self, signer):
        """A login with a successor's pair, judged as KSeF does: a known Active certificate whose validity has
        started (else 21115), signed by the certificate's key (checked here with cryptography)."""
        self.record('login', serial=_crypto.serial_hex(signer.certificate))
        serial = _crypto.serial_hex(signer.certificate)
        entry = next((c for c in self.certificates if c['serial'] == serial), None)
        if entry is None or entry['status'] != 'Active' or entry['valid_from'] > self.clock.now():
            raise _refusal(_api.AUTH_XADES_SIGNATURE, 400, 21115, 'Nieprawidlowy certyfikat')
        data = b'<AuthTokenRequest/>'
        signature = signer.sign(data)
        public_key = signer.certificate.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            half = len(signature) // 2
            public_key.verify(encode_dss_signature(int.from_bytes(signature[:half], 'big'),
                                                   int.from_bytes(signature[half:], 'big')), data, ec.ECDSA(hashes.SHA256()))
        self.proof_logins.append(serial)

    # -- KsefApi interface: KSeF tokens ------------------------------------------------------

    def add_token(self, item, statuses=None):
        """A KSeF token (an API item); token_status() answers `statuses` in turn, then the last one."""
        self.token_items.append(dict(item))
        if statuses:
            self.token_statuses[item['referenceNumber']] = list(statuses)

    def token_pages(self, statuses=None, description=None, author=None, author_type=None):
        self.record('tokens', statuses=statuses, description=description, author=author, author_type=author_type)
        yield [dict(item) for item in self.token_items
               if (not statuses or item['status'] in statuses) and
               (not description or description.casefold() in item['description'].casefold()) and
               (not author or (item.get('authorIdentifier') or {}).get('value') == author) and
               (not author_type or (item.get('authorIdentifier') or {}).get('type') == author_type)]

    def tokens(self, **filters):
        return [item for page in self.token_pages(**filters) for item in page]

    def generate_token(self, description, permissions):
        self.record('generate_token', description=description, permissions=list(permissions))
        reference = '20260301-TK-%010X-0000000000-00' % (len(self.token_items) + 1)
        self.token_items.append({'referenceNumber': reference, 'description': description, 'status': 'Pending',
                                 'requestedPermissions': list(permissions), 'dateCreated': ksef_time(self.clock.now())})
        return {'referenceNumber': reference, 'token': '%s|secret-of-%s' % (reference, reference)}

    def token_status(self, reference_number):
        self.record('token_status', reference=reference_number)
        item = next((t for t in self.token_items if t['referenceNumber'] == reference_number), None)
        if item is None:
            raise _refusal(_api.TOKEN_STATUS, 404, 21430, 'Token not found')
        statuses = self.token_statuses.get(reference_number)
        if statuses:
            item['status'] = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return dict(item)

    def revoke_token(self, reference_number):
        self.record('revoke_token', reference=reference_number)
        for item in self.token_items:
            if item['referenceNumber'] == reference_number:
                item['status'] = 'Revoked'

    # -- assertion helpers -------------------------------------------------------------------

    def active(self, name=None):
        return [c['serial'] for c in self.certificates if c['status'] == 'Active' and (name is None or c['name'] == name)]

    def revocations(self):
        return [(details['serial'], details['reason']) for name, details in self.calls if name == 'revoke']


# ---------------------------------------------------------------------------------------------
# the ksef_certificate engine on the fake KSeF
# ---------------------------------------------------------------------------------------------

class Run:
    """Run the engine like the module does, with the fake KSeF and the fake clock; run.warnings collects warnings."""

    def __init__(self, ksef, clock):
        self.ksef = ksef
        self.clock = clock
        self.warnings = []

    def __call__(self, args, check_mode=False, diff=False, login=None):
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with module_args(args):
            module = AnsibleModule(argument_spec=ksef_certificate.argument_spec(), supports_check_mode=True,
                                   add_file_common_args=True, mutually_exclusive=ksef_certificate.MUTUALLY_EXCLUSIVE,
                                   required_one_of=ksef_certificate.REQUIRED_ONE_OF)
        module.warn = self.warnings.append
        self.ksef.new_run()
        converger = Converger(module, lambda: self.ksef, module.params, now=self.clock.now, sleep=self.clock.sleep,
                              clock=self.clock.monotonic, login=login)
        return converger.run()


def single(tmp_path, name='erp-production', cert_type='authentication', **extra):
    """ksef_certificate's options of one declared certificate with its files under tmp_path."""
    args = dict(name=name, type=cert_type, private_key_path=str(tmp_path / (name + '.key')),
                certificate_path=str(tmp_path / (name + '.pem')))
    args.update(extra)
    return args


def snapshot(directory):
    """Every file below directory with its mode and content."""
    files = {}
    for root, dummy_dirs, names in os.walk(str(directory)):
        for name in names:
            path = os.path.join(root, name)
            with open(path, 'rb') as handle:
                files[os.path.relpath(path, str(directory))] = (stat.S_IMODE(os.stat(path).st_mode), handle.read())
    return files


def mode(path):
    """The permission bits of a file."""
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def cert_of(path):
    with open(str(path), 'rb') as handle:
        return x509.load_pem_x509_certificate(handle.read())


def assert_pair(key_path, cert_path, passphrase=None):
    """The certificate on disk carries the key on disk, and the signer's subject."""
    certificate = cert_of(cert_path)
    key = _crypto.load_private_key(str(key_path), passphrase)
    assert _crypto.public_key_fingerprint(certificate.public_key()) == _crypto.public_key_fingerprint(key)
    assert certificate.subject == _crypto.build_subject(ENROLLMENT_DATA)
    return certificate


# ---------------------------------------------------------------------------------------------
# ksef_certificate's main() over scripted HTTP (http_script.HttpScript)
# ---------------------------------------------------------------------------------------------

ACCESS_TOKEN = 'header.eyJleHAiOjQxMDI0NDQ4MDB9.signature'
CONNECTION = {'api_url': 'https://ksef.invalid/v2', 'access_token': ACCESS_TOKEN}


def query_exchange(items, body=None):
    """POST /certificates/query answering `items` on one page."""
    return Exchange('POST', '/certificates/query', json=body if body is not None else {'type': 'Authentication'},
                    token=ACCESS_TOKEN, params={'pageSize': 50, 'pageOffset': 0},
                    reply={'certificates': items, 'hasMore': False})


def rate_limits_exchange(per_minute=30):
    """GET /rate-limits: a run with work reads the effective limits once before it plans its calls."""
    return Exchange('GET', '/rate-limits', token=ACCESS_TOKEN,
                    reply={'other': {'perSecond': 10, 'perMinute': per_minute, 'perHour': 120}})


def existing_pair(tmp_path, clock, days=400):
    """A key and certificate on disk (erp-production) plus a FakeKsef that knows it: (fake, serial, key)."""
    fake = FakeKsef(clock)
    key = ec.generate_private_key(ec.SECP256R1())
    serial = fake.add_certificate('erp-production', 'authentication', key, days=days)
    (tmp_path / 'erp-production.key').write_bytes(_crypto.private_key_to_pem(key))
    os.chmod(str(tmp_path / 'erp-production.key'), 0o600)
    der = fake.by_serial(serial)['der']
    (tmp_path / 'erp-production.pem').write_bytes(_crypto.certificate_to_pem(x509.load_der_x509_certificate(der)))
    return fake, serial, key
