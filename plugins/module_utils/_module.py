# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Module glue: the shared connection argspec and KsefModule (validation, lazy client, one error handler)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback
from typing import Any, Callable, Dict, List, NoReturn, Optional

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.ksef.certificates.plugins.module_utils import _http
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
from ansible_collections.ksef.certificates.plugins.module_utils._connection import (
    KSEF_MUTUALLY_EXCLUSIVE,
    ConnectionOptions,
    ksef_argument_spec,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError


class KsefModule:
    """AnsibleModule plus the KSeF client objects; every KsefError is turned into fail_json once, in run()."""

    def __init__(self, argument_spec: Optional[Dict[str, Any]] = None, **ansible_module_kwargs: Any) -> None:
        spec = ksef_argument_spec()
        spec.update(argument_spec or {})
        mutually_exclusive = list(KSEF_MUTUALLY_EXCLUSIVE) + list(ansible_module_kwargs.pop('mutually_exclusive', []))
        self.module = AnsibleModule(argument_spec=spec, mutually_exclusive=mutually_exclusive, **ansible_module_kwargs)
        # ksef_session sets this to keep the session it opens alive after the module ends.
        self.keep_session = False
        self.options = None
        self._client = None
        self._authenticator = None
        self._api = None
        if not _http.HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib('requests'),
                                  exception=''.join(traceback.format_exception_only(type(_http.REQUESTS_IMPORT_ERROR),
                                                                                    _http.REQUESTS_IMPORT_ERROR)))

    @property
    def params(self) -> Dict[str, Any]:
        return self.module.params

    @property
    def check_mode(self) -> bool:
        return self.module.check_mode

    @property
    def client(self) -> _http.KsefHttpClient:
        if self._client is None:
            options = self.connection_options
            self._client = _http.KsefHttpClient(
                options.base_url, timeout=options.timeout, validate_certs=options.validate_certs,
                ca_path=options.ca_path, max_retries=options.max_retries,
                max_retry_wait=options.max_retry_wait, warn=self.module.warn, log=self.module.debug,
                on_secret=self._mask)
        return self._client

    def _mask(self, token):
        """A token the client sent or obtained is masked in the results, except the session ksef_session returns (its
        result is the tokens; its documentation asks for no_log). Error texts are redacted by the client either way."""
        if not self.keep_session:
            self.module.no_log_values.add(token)

    @property
    def authenticator(self) -> KsefAuthenticator:
        return self.load_authenticator()

    def load_authenticator(self) -> KsefAuthenticator:
        """The authenticator, made on first use: the signer material is loaded (and checked) here."""
        if self._authenticator is None:
            options = self.connection_options
            if options.auth is None:
                options = self.options = ConnectionOptions.from_params(self.params, login=True)
            self._require_libraries(options.auth)
            self._authenticator = KsefAuthenticator(self.client, options)
        return self._authenticator

    @property
    def api(self) -> KsefApi:
        if self._api is None:
            self._api = KsefApi(self.client, self.authenticator)
            if self.connection_options.read_rate_limits:
                self._api.rate_limits()
        return self._api

    @property
    def api_calls(self) -> int:
        return self._client.calls if self._client is not None else 0

    @property
    def connection_options(self) -> ConnectionOptions:
        """The validated ConnectionOptions (validate() sets them; a module that skips it gets them unchecked)."""
        if self.options is None:
            self.options = ConnectionOptions(self.params)
        return self.options

    def _require_libraries(self, auth):
        for name, present, error in auth.required_libraries():
            if not present:
                self.module.fail_json(msg=missing_required_lib(name), exception=repr(error))

    def validate(self, login: bool = True) -> None:
        """Check the connection options once (and load the signer material when logging in); no API call is made."""
        self.options = ConnectionOptions.from_params(self.params, login=login)
        for warning in self.options.transport_warnings():
            self.module.warn(warning)
        if login:
            self.load_authenticator()

    def close(self) -> None:
        """End the session this run opened (unless keep_session); errors become warnings."""
        if self._authenticator is not None and not self.keep_session:
            self._authenticator.close()

    @property
    def system_warnings(self) -> List[Dict[str, Any]]:
        """KSeF's X-System-Warning entries of this run: [{'code', 'text', 'endpoint'}]."""
        return list(self._client.system_warnings) if self._client is not None else []

    def exit_json(self, **result: Any) -> NoReturn:
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

    def fail_json(self, msg: str, **result: Any) -> NoReturn:
        self.close()
        result['api_calls'] = self.api_calls
        result['system_warnings'] = self.system_warnings
        self.module.fail_json(msg=msg, **result)

    def fail(self, exc: BaseException, **result: Any) -> NoReturn:
        """fail_json from a KsefError: its message plus its structured fields."""
        extras = exc.fail_kwargs() if isinstance(exc, KsefError) else {}
        extras.update(result)
        self.fail_json(str(exc), **extras)

    def run(self, func: Callable[['KsefModule'], Optional[Dict[str, Any]]], login: bool = True) -> None:
        """Validate, call func(self) and turn any KsefError into fail_json; a returned dict goes to exit_json."""
        try:
            self.validate(login=login)
            result = func(self)
        except KsefError as exc:
            self.fail(exc)
        if isinstance(result, dict):
            self.exit_json(**result)
