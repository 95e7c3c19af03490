#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ksef_token
short_description: Declare the KSeF tokens of a context (tokens as code)
version_added: 0.1.0
description:
  - Makes sure a KSeF token with a given description and permissions exists and is Active
    (O(state=present)), or that it is revoked (O(state=absent)), through KSeF API v2 C(/tokens).
  - The description is the token's identity. KSeF allows several tokens with one description; this
    module refuses to act when more than one token with the description is Active or Pending, names
    them, and changes nothing.
  - A new token starts Pending and becomes Active when KSeF has activated it; the module waits for
    that. A revoked token is Revoking, then Revoked; the module waits for that too (O(wait_timeout)).
  - "B(The secret of a new token is returned once, in RV(token).) KSeF never shows it again. Store it in
    the same play, for example in an Ansible Vault file or an AWX credential. Because the result holds a
    secret, the module refuses to create a token unless the task has C(no_log: true)."
  - KSeF cannot change a token's permissions. When the token with the description has other permissions
    than O(permissions), the module fails and changes nothing; revoke it (O(state=absent)) and declare it
    again, then give the integration the new secret.
  - "Manage tokens with a signature login (a certificate and its key, or a key in a PKCS#11 token): a
    session opened with a KSeF token sees only its own token in KSeF, so the module could not tell which
    tokens share a description, and it refuses O(ksef_token)."
  - "KSeF tokens may be used to authenticate only until 31 December 2026 (regulation of 12.12.2025,
    Dz.U. 2025 poz. 1815). The replacement for a system integration is a KSeF Authentication certificate:
    see the playbook C(ksef.certificates.migrate_token) and the README section
    \"Moving from KSeF tokens to certificates\"."
author:
  - ksef.certificates contributors (@ksef-certificates)
extends_documentation_fragment:
  - ksef.certificates.connection
  - ksef.certificates.attributes
  - ksef.certificates.attributes.actiongroup_ksef
attributes:
  check_mode:
    support: full
    details:
      - The tokens are listed and the result is predicted; no token is generated or revoked, nothing is waited for.
  diff_mode:
    support: full
    details:
      - Returns the token's description, permissions and status before and after the run.
  idempotent:
    description: When run twice in a row with the same options, the second run reports no change.
    support: full
options:
  description:
    description:
      - Description of the token, its identity (5 to 256 characters, compared exactly, case-sensitive).
      - Required with O(state=present), and with O(state=absent) unless O(reference_number) is given.
    type: str
  permissions:
    description:
      - Permissions of the token. Required with O(state=present).
    type: list
    elements: str
    choices: [credentials_manage, credentials_read, enforcement_operations, introspection, invoice_read, invoice_write, subunit_manage]
  state:
    description:
      - V(present) makes sure the token exists and is Active; V(absent) revokes it.
    type: str
    choices: [present, absent]
    default: present
  reference_number:
    description:
      - With O(state=absent), revoke exactly the token with this reference number, whatever its description.
        Use it when two tokens share a description and one of them must go.
    type: str
  wait_timeout:
    description:
      - Seconds to wait for a new token to become Active, or for a revoked one to become Revoked.
      - When a new token is still Pending at the end, the task still succeeds and returns its secret (it must
        not be lost), with a warning; the next run waits again.
    type: int
    default: 120
notes:
  - A run lists the tokens with the description (one C(GET /tokens) call per 100 tokens), then sends at most
    one generation or one revocation, then polls C(GET /tokens/{referenceNumber}) every 1 to 5 seconds.
  - The C(/tokens) endpoints allow 10 requests a second, 30 a minute and 120 an hour; the module paces to them.
seealso:
  - module: ksef.certificates.ksef_token_info
  - module: ksef.certificates.ksef_certificate
'''

EXAMPLES = r'''
- name: Declare the token of the invoicing integration
  ksef.certificates.ksef_token:
    description: erp invoicing integration
    permissions: [invoice_read, invoice_write]
  register: erp_token
  no_log: true

- name: Store a new token's secret at once (KSeF never shows it again)
  ansible.builtin.copy:
    content: "{{ erp_token.token }}"
    dest: /etc/erp/ksef-token
    mode: "0600"
  no_log: true
  when: erp_token.token is not none

- name: Revoke the token once the integration logs in with a certificate
  ksef.certificates.ksef_token:
    description: erp invoicing integration
    state: absent

- name: Revoke one of two tokens that share a description
  ksef.certificates.ksef_token:
    reference_number: 20261010-EC-1DCE3E3000-12ECB5B36E-45
    state: absent
'''

RETURN = r'''
token:
  description:
    - The secret of the token this run generated, returned only here and only once; V(null) when no token
      was generated (it existed, check mode, or O(state=absent)).
    - "Store it in the same play; KSeF never shows it again. The task must have C(no_log: true)."
  returned: always
  type: str
  sample: null
token_info:
  description:
    - The token after this run (predicted in check mode); V(null) when there is none (O(state=absent) and no
      such token, or check mode before it is generated).
  returned: always
  type: dict
  contains:
    reference_number:
      description: Reference number of the token; V(null) for a token check mode predicts.
      type: str
      sample: 20261010-EC-1DCE3E3000-12ECB5B36E-45
    description:
      description: Description of the token.
      type: str
      sample: erp invoicing integration
    status:
      description: Status of the token.
      type: str
      choices: [pending, active, revoking, revoked, failed]
      sample: active
    permissions:
      description: Permissions of the token, sorted.
      type: list
      elements: str
      sample: [invoice_read, invoice_write]
    author_identifier_type:
      description: Type of the identifier of the token's author.
      type: str
      sample: nip
    author_identifier:
      description: Identifier of the token's author.
      type: str
      sample: "1234563218"
    date_created:
      description: When the token was generated (UTC, ISO 8601, whole seconds).
      type: str
      sample: "2026-01-10T12:00:00+00:00"
    last_use_date:
      description: When the token last logged in (UTC); V(null) when never.
      type: str
      sample: "2026-12-01T08:30:00+00:00"
    days_since_last_use:
      description: Whole days since the last login; V(null) when never.
      type: int
      sample: 5
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: Generated KSeF token 20261010-EC-1DCE3E3000-12ECB5B36E-45 (erp invoicing integration); it is Active.
diff:
  description: The token's description, permissions and status before and after the run.
  returned: in diff mode
  type: dict
  sample: {"before": {}, "after": {"description": "erp invoicing integration", "permissions": [invoice_read], "status": active}}
api_calls:
  description: Number of HTTP requests the module sent to KSeF (login and retries included).
  returned: always
  type: int
  sample: 9
system_warnings:
  description: KSeF's C(X-System-Warning) entries of this run, each once; empty when there were none.
  returned: always
  type: list
  elements: dict
  sample: []
'''

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError, KsefError, KsefInputError, KsefTimeoutError
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.plugins.module_utils._tokens import (
    TOKEN_PERMISSIONS,
    TokenWaiter,
    description_problem,
    live_token,
    token_summary,
    tokens_described,
    utc_now,
)

SECRET_WARNING = ('The secret of the new KSeF token %s is in the result key "token" of this task, and only there: KSeF '
                  'never shows it again. Store it in this play (Ansible Vault, an AWX credential); if it is lost, revoke '
                  'the token and declare it again')
DIFF_KEYS = ('description', 'permissions', 'status')


class TokenLoginRefused(KsefInputError):
    """Tokens are managed with a signature login: a KSeF token login sees only its own token."""


def validate_params(params, auth_name):
    if params['state'] == 'present':
        if params.get('reference_number'):
            raise KsefInputError('reference_number is only for state=absent; a token to be present is named by its description')
        if not params.get('permissions'):
            raise KsefInputError('permissions is required with state=present (one or more of %s)' % ', '.join(TOKEN_PERMISSIONS))
    if params.get('description') is not None:
        problem = description_problem(params['description'])
        if problem:
            raise KsefInputError(problem)
    elif not params.get('reference_number'):
        raise KsefInputError('description is required (or reference_number with state=absent)')
    if params['wait_timeout'] < 0:
        raise KsefInputError('wait_timeout must be 0 or more seconds')
    if auth_name == 'ksef_token':
        raise TokenLoginRefused(
            'KSeF tokens are managed with a signature login (auth_certificate_path/auth_certificate_content and its key, or '
            'auth_pkcs11_module): a session opened with a KSeF token sees only its own token, so the module could not tell '
            'which tokens share a description. Nothing was changed')


def _diff_view(token):
    return dict((key, token[key]) for key in DIFF_KEYS) if token else {}


class TokenDeclaration:
    """One run of ksef_token: list, decide, act (unless check mode), wait."""

    def __init__(self, api, params, check_mode, module_no_log, warn, waiter=None, now=utc_now):
        self.api = api
        self.params = params
        self.check_mode = check_mode
        self.module_no_log = module_no_log
        self.warn = warn
        self.now = now
        self.waiter = waiter or TokenWaiter(api, params['wait_timeout'], now=now)

    def run(self):
        if self.params['state'] == 'present':
            before, after, secret, msg = self.present()
            changed = before is None
        else:
            before, after, msg = self.absent()
            secret = None
            changed = before is not None and before['status'] in ('pending', 'active')
        return {'changed': changed, 'token': secret, 'token_info': after, 'msg': msg,
                'diff': {'before': _diff_view(before), 'after': _diff_view(after)}}

    def present(self):
        description = self.params['description']
        wanted = sorted(set(self.params['permissions']))
        token = live_token(tokens_described(self.api, description, self.now()), description)
        if token is not None:
            if token['permissions'] != wanted:
                raise KsefError(
                    'KSeF token %s (%r) has permissions %s, not %s; KSeF cannot change a token\'s permissions, so nothing was '
                    'changed. Revoke it (state=absent), declare it again and give the integration the new secret'
                    % (token['reference_number'], description, ', '.join(token['permissions']), ', '.join(wanted)))
            before = dict(token)
            if token['status'] == 'pending' and not self.check_mode:
                token = self._wait_active(token['reference_number'])
            return before, token, None, 'KSeF token %s (%r) is %s' % (token['reference_number'], description, token['status'])
        if self.check_mode:
            predicted = {'reference_number': None, 'description': description, 'permissions': wanted, 'status': 'active'}
            return None, predicted, None, 'Would generate a KSeF token %r with %s' % (description, ', '.join(wanted))
        if not self.module_no_log:
            raise KsefInputError('set no_log: true on this task: a new KSeF token\'s secret is returned in its result, and '
                                 'without no_log it would be shown and logged. Nothing was changed')
        generated = self.api.generate_token(description, [TOKEN_PERMISSIONS[p] for p in wanted])
        reference = generated['referenceNumber']
        self.warn(SECRET_WARNING % reference)
        try:
            token = self._wait_active(reference)
        except KsefTimeoutError as exc:
            # The secret must reach the play even though the token is not Active yet.
            self.warn('%s. The token was generated and its secret is returned' % exc)
            token = {'reference_number': reference, 'description': description, 'permissions': wanted, 'status': 'pending'}
        return None, token, generated['token'], 'Generated KSeF token %s (%r); it is %s' % (reference, description, token['status'])

    def _wait_active(self, reference):
        token = self.waiter.wait(reference, 'active')
        if token['status'] != 'active':
            raise KsefError('KSeF token %s ended %s instead of Active (%s); generate a new one (KSeF cannot activate this one)'
                            % (reference, token['status'], '; '.join(token['status_details']) or 'no details'))
        return token

    def absent(self):
        if self.params.get('reference_number'):
            token = token_summary(self.api.token_status(self.params['reference_number']), self.now())
            description = self.params.get('description')
            if description is not None and token['description'] != description:
                raise KsefInputError('KSeF token %s has the description %r, not %r; nothing was revoked'
                                     % (token['reference_number'], token['description'], description))
            tokens = [token]
        else:
            description = self.params['description']
            tokens = tokens_described(self.api, description, self.now())
            live = live_token(tokens, description)
            tokens = [live] if live else [t for t in tokens if t['status'] == 'revoking'][:1]
        if not tokens:
            return None, None, 'No live KSeF token %r; nothing to revoke' % description
        token = tokens[0]
        before = dict(token)
        if token['status'] in ('pending', 'active'):
            if self.check_mode:
                return before, dict(token, status='revoked'), 'Would revoke KSeF token %s' % token['reference_number']
            self._revoke(token['reference_number'])
            token = dict(token, status='revoking')
        if token['status'] == 'revoking' and not self.check_mode:
            token = self.waiter.wait(token['reference_number'], 'revoked')
        verb = 'Revoked' if before['status'] in ('pending', 'active') else 'Nothing to revoke: KSeF token'
        return before, token, '%s %s (%r); it is %s' % (verb, token['reference_number'], token['description'], token['status'])

    def _revoke(self, reference):
        try:
            self.api.revoke_token(reference)
        except KsefApiError as exc:
            # A repeated DELETE after a lost answer, or a parallel run: KSeF refuses a token that is already going.
            if exc.status != 400 or token_summary(self.api.token_status(reference), self.now())['status'] not in ('revoking', 'revoked'):
                raise


def run_module(ksef):
    params = ksef.params
    validate_params(params, ksef.connection_options.auth.NAME)
    declaration = TokenDeclaration(ksef.api, params, ksef.check_mode, ksef.module.no_log, ksef.module.warn)
    result = declaration.run()
    if result['token']:
        # The HTTP client masks every token KSeF answers with; this one is the result (the task runs with no_log,
        # checked before it was generated). Error messages stay redacted by the client.
        ksef.module.no_log_values.discard(result['token'])
    if not ksef.module._diff:
        del result['diff']
    return result


def main():
    argument_spec = dict(
        description=dict(type='str'),
        permissions=dict(type='list', elements='str', choices=sorted(TOKEN_PERMISSIONS)),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        reference_number=dict(type='str'),
        wait_timeout=dict(type='int', default=120),
    )
    ksef = KsefModule(argument_spec, supports_check_mode=True)
    ksef.run(run_module)


if __name__ == '__main__':
    main()
