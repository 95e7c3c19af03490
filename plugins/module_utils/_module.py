# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Module glue: the shared connection argspec and KsefModule (validation, lazy client, one error handler)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import traceback

from ansible.module_utils.basic import AnsibleFallbackNotFound, AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.ksef.certificates.plugins.module_utils import _credentials, _http, _pkcs11, _xades
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError, KsefInputError

BASE_URLS = {
    'test': 'https://api-test.ksef.mf.gov.pl/v2',
    'demo': 'https://api-demo.ksef.mf.gov.pl/v2',
    'prod': 'https://api.ksef.mf.gov.pl/v2',
}
DEFAULT_ENVIRONMENT = 'test'

NIP_PATTERN = re.compile(r'^[1-9]((\d[1-9])|([1-9]\d))\d{7}$')
NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
INTERNAL_ID_PATTERN = re.compile(r'^([1-9]((\d[1-9])|([1-9]\d))\d{7})-\d{5}$')
NIP_VAT_UE_PATTERN = re.compile(r'^([1-9]((\d[1-9])|([1-9]\d))\d{7})-[A-Z]{2}[A-Z0-9+*]{2,13}$')
PEPPOL_ID_PATTERN = re.compile(r'^P[A-Z]{2}[0-9]{6}$')
# KSeF tokens and access tokens (JWT) are printable ASCII without spaces. Anything else is refused before
# use: in an HTTP header it would make requests raise an exception that echoes the value.
TOKEN_PATTERN = re.compile(r'^[\x21-\x7e]+\Z')


def nonempty_env_fallback(*names):
    """env_fallback that treats an empty variable as unset: AWX/AAP env injectors render an optional credential
    input that was left empty as '' (docs/awx/credential-type.yml)."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise AnsibleFallbackNotFound


def _env(name):
    return (nonempty_env_fallback, [name])


def ksef_argument_spec():
    """The connection/authentication options shared by every KSeF module (doc fragment ksef.certificates.connection)."""
    return dict(
        environment=dict(type='str', choices=['test', 'demo', 'prod'], fallback=_env('KSEF_ENVIRONMENT')),
        api_url=dict(type='str', fallback=_env('KSEF_API_URL')),
        ca_path=dict(type='path', fallback=_env('KSEF_CA_PATH')),
        validate_certs=dict(type='bool', default=True, fallback=_env('KSEF_VALIDATE_CERTS')),
        allow_insecure_http=dict(type='bool', default=False, fallback=_env('KSEF_ALLOW_INSECURE_HTTP')),
        timeout=dict(type='int', default=30, fallback=_env('KSEF_TIMEOUT')),
        max_retries=dict(type='int', default=5, fallback=_env('KSEF_MAX_RETRIES')),
        max_retry_wait=dict(type='int', default=60, fallback=_env('KSEF_MAX_RETRY_WAIT')),
        read_rate_limits=dict(type='bool', default=False, fallback=_env('KSEF_READ_RATE_LIMITS')),
        system_warnings=dict(type='str', default='warn', choices=['warn', 'fail'], fallback=_env('KSEF_SYSTEM_WARNINGS')),
        context_type=dict(type='str', default='nip', choices=['nip', 'internal_id', 'nip_vat_ue', 'peppol_id'],
                          fallback=_env('KSEF_CONTEXT_TYPE')),
        context_id=dict(type='str', fallback=_env('KSEF_CONTEXT_ID')),
        auth_certificate_path=dict(type='path', fallback=_env('KSEF_AUTH_CERTIFICATE_PATH')),
        # May be a Base64 PKCS#12 bundle, which holds the private key.
        auth_certificate_content=dict(type='str', no_log=True, fallback=_env('KSEF_AUTH_CERTIFICATE_CONTENT')),
        auth_private_key_path=dict(type='path', no_log=False, fallback=_env('KSEF_AUTH_PRIVATE_KEY_PATH')),
        auth_private_key_content=dict(type='str', no_log=True, fallback=_env('KSEF_AUTH_PRIVATE_KEY_CONTENT')),
        auth_passphrase=dict(type='str', no_log=True, fallback=_env('KSEF_AUTH_PASSPHRASE')),
        auth_pkcs11_module=dict(type='path', fallback=_env('KSEF_AUTH_PKCS11_MODULE')),
        auth_pkcs11_token_label=dict(type='str', no_log=False, fallback=_env('KSEF_AUTH_PKCS11_TOKEN_LABEL')),
        auth_pkcs11_key_label=dict(type='str', no_log=False, fallback=_env('KSEF_AUTH_PKCS11_KEY_LABEL')),
        auth_pkcs11_pin=dict(type='str', no_log=True, fallback=_env('KSEF_AUTH_PKCS11_PIN')),
        auth_subject_identifier_type=dict(type='str', default='certificate_subject',
                                          choices=['certificate_subject', 'certificate_fingerprint'],
                                          fallback=_env('KSEF_AUTH_SUBJECT_IDENTIFIER_TYPE')),
        verify_certificate_chain=dict(type='bool', fallback=_env('KSEF_VERIFY_CERTIFICATE_CHAIN')),
        auth_allowed_ips=dict(type='list', elements='str', fallback=_env('KSEF_AUTH_ALLOWED_IPS')),
        ksef_token=dict(type='str', no_log=True, fallback=_env('KSEF_TOKEN')),
        access_token=dict(type='str', no_log=True, fallback=_env('KSEF_ACCESS_TOKEN')),
    )


KSEF_MUTUALLY_EXCLUSIVE = [
    ('environment', 'api_url'),
    ('auth_certificate_path', 'auth_certificate_content'),
    ('auth_private_key_path', 'auth_private_key_content'),
    ('auth_pkcs11_module', 'auth_private_key_path'),
    ('auth_pkcs11_module', 'auth_private_key_content'),
]


def nip_is_valid(nip):
    """Pattern of the XSD plus the NIP checksum (weights 6,5,7,2,3,4,5,6,7; sum mod 11 = last digit)."""
    if not nip or not NIP_PATTERN.match(nip):
        return False
    checksum = sum(int(d) * w for d, w in zip(nip[:9], NIP_WEIGHTS)) % 11
    return checksum != 10 and checksum == int(nip[9])


def validate_context(context_type, context_id):
    """Raise KsefInputError when context_id does not fit context_type."""
    if context_type == 'nip':
        if not nip_is_valid(context_id):
            raise KsefInputError('context_id %r is not a valid NIP (10 digits with a correct checksum)' % context_id)
    elif context_type == 'internal_id':
        if not INTERNAL_ID_PATTERN.match(context_id):
            raise KsefInputError('context_id %r is not an internal identifier (<NIP>-<5 digits>)' % context_id)
    elif context_type == 'nip_vat_ue':
        match = NIP_VAT_UE_PATTERN.match(context_id)
        if not match or not nip_is_valid(match.group(1)):
            raise KsefInputError('context_id %r is not a NIP-VAT UE identifier (<NIP>-<EU VAT number>, e.g. '
                                 '1234563218-DE123456789)' % context_id)
    elif context_type == 'peppol_id':
        if not PEPPOL_ID_PATTERN.match(context_id):
            raise KsefInputError('context_id %r is not a Peppol provider identifier (P + 2 letters + 6 digits)' % context_id)


def validate_connection_params(params, login=True):
    """Checks of option combinations that need no API call (the credential files are read by the authenticator)."""
    for name in ('timeout',):
        if params.get(name) is not None and params[name] <= 0:
            raise KsefInputError('%s must be greater than 0' % name)
    for name in ('max_retries', 'max_retry_wait'):
        if params.get(name) is not None and params[name] < 0:
            raise KsefInputError('%s must not be negative' % name)
    api_url = params.get('api_url')
    if api_url and not re.match(r'^https?://[^/\s]+', api_url):
        raise KsefInputError('api_url must be an http(s) URL such as https://api-test.ksef.mf.gov.pl/v2')
    if api_url and api_url.lower().startswith('http://') and not params.get('allow_insecure_http'):
        raise KsefInputError('api_url %s uses http://, which would send the tokens in clear text; use https://, or set '
                             'allow_insecure_http=true (KSEF_ALLOW_INSECURE_HTTP) for a local test server' % api_url)
    for name in ('access_token', 'ksef_token'):
        value = params.get(name)
        if value is not None and not TOKEN_PATTERN.match(value):
            problem = 'is empty' if not value else 'contains whitespace, control or non-ASCII characters'
            raise KsefInputError('%s %s; a token is printable ASCII without spaces (a trailing newline from a file or '
                                 'a variable is a common cause)' % (name, problem))
    if params.get('auth_allowed_ips'):
        _xades.classify_allowed_ips(params['auth_allowed_ips'])
    if not login or params.get('access_token'):
        return
    has_certificate = params.get('auth_certificate_path') or params.get('auth_certificate_content')
    has_key = params.get('auth_private_key_path') or params.get('auth_private_key_content')
    if has_key and not has_certificate:
        raise KsefInputError('a signer private key was given without its certificate: set auth_certificate_path or '
                             'auth_certificate_content')
    if params.get('auth_pkcs11_module'):
        missing = [name for name in ('auth_pkcs11_token_label', 'auth_pkcs11_key_label', 'auth_pkcs11_pin')
                   if not params.get(name)]
        if missing:
            raise KsefInputError('auth_pkcs11_module needs %s' % ', '.join(missing))
    elif not has_certificate and not params.get('ksef_token'):
        raise KsefInputError('no KSeF credential given: set auth_certificate_path or auth_certificate_content '
                             '(with the private key), auth_pkcs11_module (a key in a token), ksef_token, or access_token')
    if not params.get('context_id'):
        raise KsefInputError('context_id is required to log in (the identifier of the context to act in)')
    validate_context(params.get('context_type') or 'nip', params['context_id'])


def transport_warnings(params):
    """Warnings about a connection that does not protect the tokens (http://, no certificate verification)."""
    warnings = []
    url = base_url(params)
    if url.lower().startswith('http://'):
        warnings.append('api_url %s uses plain http (allow_insecure_http): tokens travel in clear text; use this '
                        'only with a local test server' % url)
    elif not params.get('validate_certs', True):
        warnings.append('validate_certs is false: the TLS certificate of %s is not verified, so whoever is on the '
                        'network path can read the tokens; set ca_path to trust a private CA instead' % url)
    return warnings


def base_url(params):
    if params.get('api_url'):
        return params['api_url'].rstrip('/')
    return BASE_URLS[params.get('environment') or DEFAULT_ENVIRONMENT]


class KsefModule:
    """AnsibleModule plus the KSeF client objects; every KsefError is turned into fail_json once, in run()."""

    def __init__(self, argument_spec=None, **ansible_module_kwargs):
        spec = ksef_argument_spec()
        spec.update(argument_spec or {})
        mutually_exclusive = list(KSEF_MUTUALLY_EXCLUSIVE) + list(ansible_module_kwargs.pop('mutually_exclusive', []))
        self.module = AnsibleModule(argument_spec=spec, mutually_exclusive=mutually_exclusive, **ansible_module_kwargs)
        # ksef_session sets this to keep the session it opens alive after the module ends.
        self.keep_session = False
        self._client = None
        self._authenticator = None
        self._api = None
        if not _http.HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib('requests'),
                                  exception=''.join(traceback.format_exception_only(type(_http.REQUESTS_IMPORT_ERROR),
                                                                                    _http.REQUESTS_IMPORT_ERROR)))

    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def client(self):
        if self._client is None:
            params = self.params
            self._client = _http.KsefHttpClient(
                base_url(params), timeout=params['timeout'], validate_certs=params['validate_certs'],
                ca_path=params.get('ca_path'), max_retries=params['max_retries'],
                max_retry_wait=params['max_retry_wait'], warn=self.module.warn, log=self.module.debug)
        return self._client

    @property
    def authenticator(self):
        if self._authenticator is None:
            self._require_crypto_libraries()
            self._authenticator = KsefAuthenticator(self.client, self.params)
        return self._authenticator

    @property
    def api(self):
        if self._api is None:
            self._api = KsefApi(self.client, self.authenticator)
            if self.params.get('read_rate_limits'):
                self._api.rate_limits()
        return self._api

    @property
    def api_calls(self):
        return self._client.calls if self._client is not None else 0

    def _require_crypto_libraries(self):
        params = self.params
        if params.get('access_token'):
            return
        if not _credentials.HAS_CRYPTOGRAPHY:
            self.module.fail_json(msg=missing_required_lib('cryptography'),
                                  exception=repr(_credentials.CRYPTOGRAPHY_IMPORT_ERROR))
        if params.get('auth_pkcs11_module') and not _pkcs11.HAS_PYKCS11:
            self.module.fail_json(msg=missing_required_lib(_pkcs11.PYKCS11_PIP_NAME),
                                  exception=repr(_pkcs11.PYKCS11_IMPORT_ERROR))
        if (params.get('auth_certificate_path') or params.get('auth_certificate_content')
                or params.get('auth_pkcs11_module')) and not _xades.HAS_LXML:
            self.module.fail_json(msg=missing_required_lib('lxml'), exception=repr(_xades.LXML_IMPORT_ERROR))

    def validate(self, login=True):
        """Check option combinations and load the signer material; no API call is made."""
        validate_connection_params(self.params, login=login)
        for warning in transport_warnings(self.params):
            self.module.warn(warning)
        if login:
            self.authenticator  # pylint: disable=pointless-statement

    def close(self):
        """End the session this run opened (unless keep_session); errors become warnings."""
        if self._authenticator is not None and not self.keep_session:
            self._authenticator.close()

    @property
    def system_warnings(self):
        """KSeF's X-System-Warning entries of this run: [{'code', 'text', 'endpoint'}]."""
        return list(self._client.system_warnings) if self._client is not None else []

    def exit_json(self, **result):
        self.close()
        result['api_calls'] = self.api_calls
        result['system_warnings'] = self.system_warnings
        if result['system_warnings'] and self.params.get('system_warnings') == 'fail':
            # The run's work is done (and reported in the result); the task fails so a pipeline stops here.
            codes = ', '.join(sorted(set(to_text(w['code'] or '?') for w in result['system_warnings'])))
            texts = '; '.join('[%s] %s' % (w['code'], w['text']) for w in result['system_warnings'])
            self.module.fail_json(
                msg='KSeF answered with system warnings (%s) and system_warnings=fail: %s. KSeF warns before it starts '
                    'refusing (e.g. sig-001: the XAdES signature format will be refused); the run itself completed, '
                    'see the result' % (codes, texts), **result)
        self.module.exit_json(**result)

    def fail_json(self, msg, **result):
        self.close()
        result['api_calls'] = self.api_calls
        result['system_warnings'] = self.system_warnings
        self.module.fail_json(msg=msg, **result)

    def fail(self, exc, **result):
        """fail_json from a KsefError: its message plus its structured fields."""
        extras = exc.fail_kwargs() if isinstance(exc, KsefError) else {}
        extras.update(result)
        self.fail_json(str(exc), **extras)

    def run(self, func, login=True):
        """Validate, call func(self) and turn any KsefError into fail_json; a returned dict goes to exit_json."""
        try:
            self.validate(login=login)
            result = func(self)
        except KsefError as exc:
            self.fail(exc)
            return
        if isinstance(result, dict):
            self.exit_json(**result)
