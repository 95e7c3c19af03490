#!/usr/bin/python
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: ksef_session
short_description: Open or end a KSeF API session
version_added: 0.1.0
description:
  - With O(state=present), logs in to KSeF once (XAdES signature with a signer certificate, or a KSeF token) and
    returns the access and refresh tokens. The session stays open when the module ends, so that later KSeF tasks
    can reuse it through O(ksef.certificates.ksef_certificate#module:access_token) instead of logging in again.
  - With O(state=absent), ends the session given by O(refresh_token) or O(access_token)
    (C(DELETE /auth/sessions/current)).
  - >-
    The task that registers the result must use C(no_log: true), because the result holds the tokens.
author:
  - ksef.certificates contributors (@ksef-certificates)
extends_documentation_fragment:
  - ksef.certificates.connection
  - ksef.certificates.attributes
  - ksef.certificates.attributes.ACTIONGROUP_KSEF
attributes:
  check_mode:
    support: full
    details:
      - In check mode O(state=present) does not log in; it reports RV(ignore:changed=true) and returns no tokens.
      - In check mode O(state=absent) makes no API call; it predicts a change unless the token has already expired.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - O(state=present) opens a new session on every run and always reports a change.
      - O(state=absent) reports no change when KSeF answers that the session has already ended (HTTP 401).
options:
  state:
    description:
      - V(present) logs in and returns the tokens of the new session.
      - V(absent) ends the session of O(refresh_token), or of O(access_token) when no refresh token is given.
    type: str
    choices: [present, absent]
    default: present
  refresh_token:
    description:
      - Refresh token of the session to end with O(state=absent). Preferred over O(access_token), because ending
        the session invalidates the refresh token and a second run then reports no change.
    type: str
notes:
  - Access tokens live for about fifteen minutes; modules given O(access_token) cannot refresh it. For longer plays
    log in again or let each module log in on its own.
  - O(access_token) is not used to log in with O(state=present).
seealso:
  - module: ksef.certificates.ksef_certificate
  - module: ksef.certificates.ksef_certificate_info
  - module: ksef.certificates.ksef_certificate_revoke
'''

EXAMPLES = r'''
- name: Log in to KSeF once
  ksef.certificates.ksef_session:
    environment: test
    context_id: "1234563218"
    auth_certificate_path: /etc/ksef/signer.pem
    auth_private_key_path: /etc/ksef/signer.key
    auth_passphrase: "{{ vault_ksef_key_passphrase }}"
  delegate_to: localhost
  register: ksef_login
  no_log: true  # the result holds the tokens

- name: Reuse the session in every KSeF task of the block
  module_defaults:
    group/ksef.certificates.ksef:
      environment: test
      access_token: "{{ ksef_login.access_token }}"
  block:
    - name: List the active certificates
      ksef.certificates.ksef_certificate_info:
        status: active
      delegate_to: localhost
      register: ksef_certificates

    - name: Ensure an authentication certificate exists
      ksef.certificates.ksef_certificate:
        name: erp-prod-auth
        type: authentication
        private_key_path: /etc/ksef/erp-prod-auth.key
        certificate_path: /etc/ksef/erp-prod-auth.pem
      delegate_to: localhost
  always:
    - name: End the session
      ksef.certificates.ksef_session:
        state: absent
        environment: test
        refresh_token: "{{ ksef_login.refresh_token }}"
      delegate_to: localhost
      no_log: true

- name: Log in with a KSeF token taken from the environment (KSEF_TOKEN, KSEF_CONTEXT_ID)
  ksef.certificates.ksef_session:
    environment: demo
  delegate_to: localhost
  register: ksef_token_login
  no_log: true
'''

RETURN = r'''
access_token:
  description: Access token (JWT) of the new session. Pass it to other modules as O(access_token).
  returned: state=present and not in check mode
  type: str
  sample: eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3NjcyNjk2MDB9.c2lnbmF0dXJl
access_token_valid_until:
  description: Expiry of RV(access_token) (UTC, ISO 8601, whole seconds, like every date-time the modules return).
  returned: state=present and not in check mode
  type: str
  sample: '2026-01-01T12:15:00+00:00'
refresh_token:
  description: Refresh token of the session; ends the session with O(state=absent).
  returned: state=present and not in check mode
  type: str
  sample: eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3Njc4NzQ0MDB9.c2lnbmF0dXJl
refresh_token_valid_until:
  description: Expiry of RV(refresh_token) (UTC, ISO 8601, whole seconds, like every date-time the modules return).
  returned: state=present and not in check mode
  type: str
  sample: '2026-01-08T12:00:00+00:00'
reference_number:
  description: Reference number of the KSeF authentication operation.
  returned: state=present and not in check mode
  type: str
  sample: 20260101-AU-2DFC46C000-3AC6D5877F-D4
authentication_method:
  description: How the module logged in, V(xades) or V(ksef_token).
  returned: state=present
  type: str
  sample: xades
ksef_authentication_method:
  description: The authentication method code that KSeF reports (C(authenticationMethodInfo.code)), if any.
  returned: state=present and not in check mode
  type: str
  sample: xades.self-signed
api_calls:
  description: Number of HTTP requests sent to KSeF.
  returned: always
  type: int
  sample: 5
system_warnings:
  description:
    - KSeF's C(X-System-Warning) entries of this run, each once (see O(system_warnings)); empty when there were none.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: Warning code, e.g. C(sig-001); V(null) when KSeF sent a text without a code.
      type: str
    text:
      description: Warning text.
      type: str
    endpoint:
      description: The request that got the warning.
      type: str
  sample: [{code: sig-001, text: Format podpisu niezgodny z akceptowanymi profilami XAdES, endpoint: POST /auth/xades-signature}]
'''

import time

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth import jwt_expiry
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule


def open_session(ksef):
    if ksef.params.get('access_token'):
        raise KsefInputError('state=present logs in with a signer certificate or ksef_token; access_token (also from '
                             'KSEF_ACCESS_TOKEN) is only used with state=absent')
    authenticator = ksef.authenticator
    if ksef.check_mode:
        return {'changed': True, 'authentication_method': authenticator.method}
    # The whole point of this module: the session outlives the module run.
    ksef.keep_session = True
    authenticator.login()
    result = dict(authenticator.tokens())
    result.update({
        'changed': True,
        'authentication_method': authenticator.method,
        'ksef_authentication_method': authenticator.authentication_method,
    })
    return result


def end_session(ksef, wall_clock):
    token = ksef.params.get('refresh_token') or ksef.params.get('access_token')
    if not token:
        raise KsefInputError('state=absent needs the refresh_token or access_token of the session to end')
    expiry = jwt_expiry(token)
    expired = expiry is not None and expiry <= wall_clock()
    if ksef.check_mode:
        return {'changed': not expired}
    try:
        KsefAuthApi(ksef.client).close_session(token)
    except KsefApiError as exc:
        if exc.status == 401:
            return {'changed': False}
        raise
    return {'changed': True}


def run_module(ksef):
    if ksef.params['state'] == 'present':
        return open_session(ksef)
    return end_session(ksef, time.time)


def main():
    ksef = KsefModule(
        argument_spec=dict(
            state=dict(type='str', default='present', choices=['present', 'absent']),
            refresh_token=dict(type='str', no_log=True),
        ),
        supports_check_mode=True,
    )
    ksef.run(run_module, login=ksef.params['state'] == 'present' and not ksef.params.get('access_token'))


if __name__ == '__main__':
    main()
