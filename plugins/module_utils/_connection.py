# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The connection options every KSeF module shares: argspec, KSEF_* fallbacks, and one typed, validated set.

ConnectionOptions.from_params() checks every connection option once, before any API call, and picks
the authentication method (_auth_methods.py), which checks its own options. Nothing here reads a file
or talks to KSeF.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
from typing import Any, Dict, List, Mapping, Optional

from ansible.module_utils.basic import AnsibleFallbackNotFound

from ansible_collections.ksef.certificates.plugins.module_utils import _xades
from ansible_collections.ksef.certificates.plugins.module_utils._auth_methods import (
    AUTH_OPTIONS,
    check_given_options,
    select_auth_method,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._http import CA_BUNDLE_VARIABLES
from ansible_collections.ksef.certificates.plugins.module_utils._rules import has_control_characters

BASE_URLS = {
    'test': 'https://api-test.ksef.mf.gov.pl/v2',
    'demo': 'https://api-demo.ksef.mf.gov.pl/v2',
    'prod': 'https://api.ksef.mf.gov.pl/v2',
}
DEFAULT_ENVIRONMENT = 'test'
CONTEXT_TYPE_CHOICES = sorted(_xades.CONTEXT_ELEMENTS)
DEFAULT_CONTEXT_TYPE = 'nip'

# Identifiers are matched with fullmatch: a '$' anchor would accept a trailing newline, which would then be
# sent to KSeF inside the signed login request.
NIP_PATTERN = re.compile(r'[1-9]((\d[1-9])|([1-9]\d))\d{7}')
NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
INTERNAL_ID_PATTERN = re.compile(r'([1-9]((\d[1-9])|([1-9]\d))\d{7})-\d{5}')
NIP_VAT_UE_PATTERN = re.compile(r'([1-9]((\d[1-9])|([1-9]\d))\d{7})-[A-Z]{2}[A-Z0-9+*]{2,13}')
PEPPOL_ID_PATTERN = re.compile(r'P[A-Z]{2}[0-9]{6}')


def nonempty_env_fallback(*names: str) -> str:
    """env_fallback that treats an empty variable as unset: AWX/AAP env injectors render an optional credential
    input that was left empty as '' (docs/awx/credential-type.yml)."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise AnsibleFallbackNotFound


def _env(name):
    return (nonempty_env_fallback, [name])


def ksef_argument_spec() -> Dict[str, Dict[str, Any]]:
    """The connection/authentication options shared by every KSeF module (doc fragment ksef.certificates.connection)."""
    spec = dict(
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
        context_type=dict(type='str', default=DEFAULT_CONTEXT_TYPE, choices=CONTEXT_TYPE_CHOICES,
                          fallback=_env('KSEF_CONTEXT_TYPE')),
        context_id=dict(type='str', fallback=_env('KSEF_CONTEXT_ID')),
        auth_subject_identifier_type=dict(type='str', default='certificate_subject',
                                          choices=['certificate_subject', 'certificate_fingerprint'],
                                          fallback=_env('KSEF_AUTH_SUBJECT_IDENTIFIER_TYPE')),
        verify_certificate_chain=dict(type='bool', fallback=_env('KSEF_VERIFY_CERTIFICATE_CHAIN')),
        auth_allowed_ips=dict(type='list', elements='str', fallback=_env('KSEF_AUTH_ALLOWED_IPS')),
    )
    # Each authentication method declares its own options; all of them get a KSEF_* fallback.
    for name, option in AUTH_OPTIONS.items():
        spec[name] = dict(option, fallback=_env('KSEF_TOKEN' if name == 'ksef_token' else 'KSEF_' + name.upper()))
    return spec


KSEF_MUTUALLY_EXCLUSIVE = [
    ('environment', 'api_url'),
    ('auth_certificate_path', 'auth_certificate_content'),
    ('auth_private_key_path', 'auth_private_key_content'),
    ('auth_pkcs11_module', 'auth_private_key_path'),
    ('auth_pkcs11_module', 'auth_private_key_content'),
]


def nip_is_valid(nip: Optional[str]) -> bool:
    """Pattern of the XSD plus the NIP checksum (weights 6,5,7,2,3,4,5,6,7; sum mod 11 = last digit)."""
    if not nip or not NIP_PATTERN.fullmatch(nip):
        return False
    checksum = sum(int(d) * w for d, w in zip(nip[:9], NIP_WEIGHTS)) % 11
    return checksum != 10 and checksum == int(nip[9])


def validate_context(context_type: str, context_id: str) -> None:
    """Raise KsefInputError when context_id does not fit context_type."""
    if context_type == 'nip':
        if not nip_is_valid(context_id):
            raise KsefInputError('context_id %r is not a valid NIP (10 digits with a correct checksum)' % context_id)
    elif context_type == 'internal_id':
        if not INTERNAL_ID_PATTERN.fullmatch(context_id):
            raise KsefInputError('context_id %r is not an internal identifier (<NIP>-<5 digits>)' % context_id)
    elif context_type == 'nip_vat_ue':
        match = NIP_VAT_UE_PATTERN.fullmatch(context_id)
        if not match or not nip_is_valid(match.group(1)):
            raise KsefInputError('context_id %r is not a NIP-VAT UE identifier (<NIP>-<EU VAT number>, e.g. '
                                 '1234563218-DE123456789)' % context_id)
    elif context_type == 'peppol_id':
        if not PEPPOL_ID_PATTERN.fullmatch(context_id):
            raise KsefInputError('context_id %r is not a Peppol provider identifier (P + 2 letters + 6 digits)' % context_id)
    else:
        raise KsefInputError('context_type must be one of %s, got %r' % (', '.join(CONTEXT_TYPE_CHOICES), context_type))


def base_url(params: Mapping[str, Any]) -> str:
    if params.get('api_url'):
        return params['api_url'].rstrip('/')
    return BASE_URLS[params.get('environment') or DEFAULT_ENVIRONMENT]


def _default(params, name, value):
    return value if params.get(name) is None else params[name]


class ConnectionOptions:
    """The connection options of one run, typed and validated once (ConnectionOptions.from_params)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.base_url = base_url(params)
        self.environment = params.get('environment')
        self.api_url = params.get('api_url')
        self.ca_path = params.get('ca_path')
        self.validate_certs = bool(_default(params, 'validate_certs', True))
        self.allow_insecure_http = bool(params.get('allow_insecure_http'))
        self.timeout = _default(params, 'timeout', 30)
        self.max_retries = _default(params, 'max_retries', 5)
        self.max_retry_wait = _default(params, 'max_retry_wait', 60)
        self.read_rate_limits = bool(params.get('read_rate_limits'))
        self.system_warnings = params.get('system_warnings') or 'warn'
        self.context_type = params.get('context_type') or DEFAULT_CONTEXT_TYPE
        self.context_id = params.get('context_id')
        self.subject_identifier_type = params.get('auth_subject_identifier_type') or 'certificate_subject'
        self.allowed_ips = params.get('auth_allowed_ips') or None
        chain = params.get('verify_certificate_chain')
        # Self-signed signers pass only on TEST, and only without the chain check: the default there.
        self.verify_certificate_chain = bool(chain) if chain is not None else (
            self.environment not in (None, 'test') or bool(self.api_url))
        # The authentication method (None when the run does not log in); chosen by validate().
        self.auth = None

    @property
    def context(self) -> str:
        """'<context_type> <context_id>', as messages name the context."""
        return '%s %s' % (self.context_type, self.context_id)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], login: bool = True) -> 'ConnectionOptions':
        """The options of `params` (module params or a plain dict), checked; KsefInputError on the first problem."""
        options = cls(params)
        options.validate(params, login=login)
        return options

    def validate(self, params: Mapping[str, Any], login: bool = True) -> None:
        """Checks of option combinations that need no API call (the credential files are read at login)."""
        if self.timeout is not None and self.timeout <= 0:
            raise KsefInputError('timeout must be greater than 0')
        for name in ('max_retries', 'max_retry_wait'):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise KsefInputError('%s must not be negative' % name)
        if self.api_url and (has_control_characters(self.api_url) or re.search(r'\s', self.api_url)):
            raise KsefInputError('api_url %r contains whitespace or control characters; give the URL alone, such as '
                                 'https://api-test.ksef.mf.gov.pl/v2' % self.api_url)
        if self.api_url and not re.match(r'https?://[^/\s]+', self.api_url):
            raise KsefInputError('api_url must be an http(s) URL such as https://api-test.ksef.mf.gov.pl/v2')
        if self.api_url and ('?' in self.api_url or '#' in self.api_url):
            # Endpoints are appended to api_url: a query or fragment would be lost or would swallow the path.
            raise KsefInputError('api_url %s has a query (?) or fragment (#); give the API root alone, such as '
                                 'https://api-test.ksef.mf.gov.pl/v2' % self.api_url)
        if self.api_url and self.api_url.lower().startswith('http://') and not self.allow_insecure_http:
            raise KsefInputError('api_url %s uses http://, which would send the tokens in clear text; use https://, or '
                                 'set allow_insecure_http=true (KSEF_ALLOW_INSECURE_HTTP) for a local test server'
                                 % self.api_url)
        check_given_options(params)
        if self.allowed_ips:
            _xades.classify_allowed_ips(self.allowed_ips)
        if not login:
            return
        self.auth = select_auth_method(params)
        if self.auth.LOGS_IN:
            if not self.context_id:
                raise KsefInputError('context_id is required to log in (the identifier of the context to act in)')
            validate_context(self.context_type, self.context_id)

    def transport_warnings(self) -> List[str]:
        """Warnings about a connection that does not protect the tokens (http://, no certificate verification)."""
        if self.base_url.lower().startswith('http://'):
            return ['api_url %s uses plain http (allow_insecure_http): tokens travel in clear text; use this only '
                    'with a local test server' % self.base_url]
        if not self.validate_certs:
            return ['validate_certs is false: the TLS certificate of %s is not verified, so whoever is on the network '
                    'path can read the tokens; set ca_path to trust a private CA instead' % self.base_url]
        ignored = [name for name in CA_BUNDLE_VARIABLES if os.environ.get(name)] if not self.ca_path else []
        if ignored:
            # requests would have let the variable choose the trust store; say that it did not.
            return ['%s %s set but not used: the TLS certificate of %s is verified against the CA bundle of requests, '
                    'never against a bundle chosen by an environment variable; set ca_path (KSEF_CA_PATH) to the '
                    'bundle to trust (that also silences this warning)'
                    % (' and '.join(ignored), 'are' if len(ignored) > 1 else 'is', self.base_url)]
        return []


def validate_connection_params(params: Mapping[str, Any], login: bool = True) -> ConnectionOptions:
    """ConnectionOptions.from_params under the name the modules' tests know; returns the options."""
    return ConnectionOptions.from_params(params, login=login)


def transport_warnings(params: Mapping[str, Any]) -> List[str]:
    return ConnectionOptions(params).transport_warnings()
