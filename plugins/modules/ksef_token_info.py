#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ksef_token_info
short_description: List the KSeF tokens of a context, with their last use
version_added: 0.1.0
description:
  - Lists KSeF tokens (KSeF API v2 C(GET /tokens)) with their status, permissions, author, creation date,
    last use and the days since the last use, following KSeF's continuation token through every page.
  - "What a session sees depends on how it logged in (KSeF's rule): with the permission CredentialsRead or
    CredentialsManage in the context (the owner has both), every token of the context; otherwise the tokens
    the logged-in subject generated. A session opened with a KSeF token sees only that token; the module
    warns when it logs in that way."
  - "KSeF tokens may be used to authenticate only until 31 December 2026 (regulation of 12.12.2025,
    Dz.U. 2025 poz. 1815): this inventory shows which tokens are still in use. The playbook
    C(ksef.certificates.report) lists the Active ones with the days left."
author:
  - ksef.certificates contributors (@ksef-certificates)
extends_documentation_fragment:
  - ksef.certificates.connection
  - ksef.certificates.attributes
  - ksef.certificates.attributes.actiongroup_ksef
  - ksef.certificates.attributes.info_module
options:
  status:
    description:
      - Only tokens in these statuses. All statuses when not given.
    type: list
    elements: str
    choices: [active, failed, pending, revoked, revoking]
  description:
    description:
      - Only tokens whose description contains this text (case-insensitive, as KSeF searches; at least 3 characters).
    type: str
  description_exact:
    description:
      - With O(description), keep only the tokens whose description is exactly O(description) (case-sensitive).
    type: bool
    default: false
  author_identifier:
    description:
      - Only tokens whose author's identifier (NIP, PESEL or certificate fingerprint) contains this text (at least 3 characters).
    type: str
  author_identifier_type:
    description:
      - Only tokens whose author has this type of identifier.
    type: str
    choices: [fingerprint, nip, pesel]
notes:
  - One C(GET /tokens) call per 100 tokens, after the login.
seealso:
  - module: ksef.certificates.ksef_token
  - module: ksef.certificates.ksef_certificate_info
'''

EXAMPLES = r'''
- name: Every token that still logs in, with its last use
  ksef.certificates.ksef_token_info:
    status: [active]
  register: tokens

- name: Tokens not used for 90 days
  ansible.builtin.debug:
    msg: "{{ tokens.tokens | rejectattr('days_since_last_use', 'none') | selectattr('days_since_last_use', '>=', 90)
             | map(attribute='description') }}"

- name: The tokens one person made
  ksef.certificates.ksef_token_info:
    author_identifier: "90010112345"
    author_identifier_type: pesel
'''

RETURN = r'''
tokens:
  description: The tokens, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    reference_number:
      description: Reference number of the token.
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
      description: Type of the identifier of the token's author (nip, pesel, fingerprint).
      type: str
      sample: nip
    author_identifier:
      description: Identifier of the token's author.
      type: str
      sample: "1234563218"
    context_identifier_type:
      description: Type of the context identifier (KSeF spelling, e.g. C(Nip)).
      type: str
      sample: Nip
    context_identifier:
      description: The context the token logs in to.
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
    days_since_created:
      description: Whole days since the token was generated.
      type: int
      sample: 330
    status_details:
      description: KSeF's details of the status (for a failed token).
      type: list
      elements: str
      sample: []
msg:
  description: How many tokens were found, in words.
  returned: always
  type: str
  sample: 3 KSeF token(s), 2 active
api_calls:
  description: Number of HTTP requests the module sent to KSeF (login and retries included).
  returned: always
  type: int
  sample: 6
system_warnings:
  description: KSeF's C(X-System-Warning) entries of this run, each once; empty when there were none.
  returned: always
  type: list
  elements: dict
  sample: []
'''

from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.plugins.module_utils._tokens import (
    AUTHOR_TYPES,
    TOKEN_STATUSES,
    check_description_filter,
    token_summary,
    utc_now,
)

TOKEN_LOGIN_WARNING = ('This run logged in with a KSeF token: KSeF shows such a session only the token it logged in with. Log in '
                       'with a certificate to see every token of the context')


def validate_params(params):
    check_description_filter('description', params.get('description'))
    check_description_filter('author_identifier', params.get('author_identifier'))
    if params.get('description_exact') and params.get('description') is None:
        raise KsefInputError('description_exact needs description')


def list_tokens(api, params, now):
    """The summaries of the tokens that match the options (module form), newest first."""
    items = api.tokens(statuses=[TOKEN_STATUSES[s] for s in params.get('status') or []],
                       description=params.get('description'), author=params.get('author_identifier'),
                       author_type=AUTHOR_TYPES.get(params.get('author_identifier_type')))
    if params.get('description_exact'):
        items = [item for item in items if item['description'] == params['description']]
    seen = set()
    tokens = []
    for item in items:
        # Keyed by reference: a token generated between two pages may push one onto the next page again.
        if item['referenceNumber'] not in seen:
            seen.add(item['referenceNumber'])
            tokens.append(token_summary(item, now))
    return tokens


def describe(tokens):
    counts = {}
    for token in tokens:
        counts[token['status']] = counts.get(token['status'], 0) + 1
    parts = ['%d %s' % (counts[status], status) for status in TOKEN_STATUSES if status in counts]
    return '%d KSeF token(s)%s' % (len(tokens), ', ' + ', '.join(parts) if parts else '')


def run_module(ksef):
    params = ksef.params
    validate_params(params)
    if ksef.connection_options.auth.NAME == 'ksef_token':
        ksef.module.warn(TOKEN_LOGIN_WARNING)
    tokens = list_tokens(ksef.api, params, utc_now())
    return {'changed': False, 'tokens': tokens, 'msg': describe(tokens)}


def main():
    argument_spec = dict(
        status=dict(type='list', elements='str', choices=sorted(TOKEN_STATUSES)),
        description=dict(type='str'),
        description_exact=dict(type='bool', default=False),
        author_identifier=dict(type='str'),
        author_identifier_type=dict(type='str', choices=sorted(AUTHOR_TYPES)),
    )
    ksef = KsefModule(argument_spec, supports_check_mode=True)
    ksef.run(run_module)


if __name__ == '__main__':
    main()
