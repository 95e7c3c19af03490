#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ksef_certificate_proof
short_description: Prove a KSeF certificate whose private key stays on a managed host
version_added: 0.1.0
description:
  - Proves that a new (successor) certificate works before its predecessor is revoked, when the private key is kept
    on a managed host and must not move. The controller builds what is to be signed, the host signs only those bytes
    (M(ksef.certificates.ksef_deploy_host) with O(ksef.certificates.ksef_deploy_host#module:operation=sign)), and the
    controller finishes the proof. The C(ksef.certificates.ksef_deploy) role does this after each renewal of a
    key-on-host certificate.
  - O(step=prepare) takes the certificates and returns RV(proofs), each with the bytes to sign (C(data)) and the
    signature C(scheme).
    For an V(authentication) certificate it asks KSeF for a login challenge and builds the AuthTokenRequest and its
    XAdES signature with the new certificate, up to the SignatureValue.
    For an V(offline) certificate it builds a QR code II (KOD II) string as KSeF specifies it, for a proof document
    in place of an invoice.
  - O(step=finish) takes those RV(proofs) back, each with the host's C(signature). It checks the signature with the
    certificate. For V(authentication) it then logs in with the signed document (challenge, XAdES, status 200, tokens
    redeemed, session closed), exactly as a login with a key file. For V(offline) it verifies the QR code II link with
    the certificate (RSASSA-PSS SHA-256 with salt 32, or ECDSA P-256 in IEEE P1363 form).
  - A certificate whose validity has not started is not proven (KSeF refuses its login); its entry says from when.
  - A proof that fails is reported in its entry (C(proven=false) and C(reason)); it does not fail the task.
  - The proof logs in as the new certificate only. No login of the controller is needed, so the O(auth_certificate_path)
    family of options is not used; O(context_type) and O(context_id) are.
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
      - Sends nothing; each entry says the certificate would be proven (C(proven=null)), or why it cannot be (not valid
        yet).
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - It changes nothing in KSeF or on disk; a login it makes ends its session.
options:
  step:
    description:
      - V(prepare) builds what the hosts sign; V(finish) completes the proofs with the hosts' signatures.
    type: str
    required: true
    choices: [prepare, finish]
  certificates:
    description:
      - The certificates to prove (O(step=prepare)).
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: A label of the caller's, returned in the entry (for example C(host|name|type)).
        type: str
      type:
        description: The certificate's KSeF type.
        type: str
        required: true
        choices: [authentication, offline]
      certificate:
        description: The certificate (PEM).
        type: str
        required: true
  proofs:
    description:
      - The RV(proofs) of O(step=prepare), each with C(signature), the Base64 signature of C(data) made by the host
        (the RV(ksef.certificates.ksef_deploy_host#module:signature) of
        O(ksef.certificates.ksef_deploy_host#module:operation=sign)), for O(step=finish).
      - An entry without C(signature) is reported unproven, with C(sign_failure) as the reason when given.
    type: list
    elements: dict
    default: []
notes:
  - The context (O(context_type), O(context_id)) and the KSeF environment are those of the login the certificate will
    be used for; the QR code II link names the verification page of that environment.
seealso:
  - module: ksef.certificates.ksef_deploy_host
  - module: ksef.certificates.ksef_certificate_revoke
'''

EXAMPLES = r'''
- name: Build what the host signs for its new login certificate
  ksef.certificates.ksef_certificate_proof:
    step: prepare
    certificates:
      - id: app-authentication
        type: authentication
        certificate: "{{ lookup('ansible.builtin.file', 'app-authentication.crt') }}"
    context_id: "1234563218"
  delegate_to: localhost
  register: prepared

- name: Sign on the host, with the key that never leaves it
  ksef.certificates.ksef_deploy_host:
    operation: sign
    key_path: /etc/ksef/private/app-authentication.key
    data: "{{ prepared.proofs[0].data }}"
    scheme: "{{ prepared.proofs[0].scheme }}"
  register: signed

- name: Log in with the new certificate (the proof)
  ksef.certificates.ksef_certificate_proof:
    step: finish
    proofs: "{{ [prepared.proofs[0] | combine({'signature': signed.signature})] }}"
    context_id: "1234563218"
  delegate_to: localhost
  register: proven

- name: Revoke the predecessor only after the proof
  ksef.certificates.ksef_certificate_revoke:
    serial_numbers: [0123456789ABCDEF]
    reason: superseded
  delegate_to: localhost
  when: proven.proofs[0].proven
'''

RETURN = r'''
proofs:
  description: One entry per certificate, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The O(certificates[].id) given.
      type: str
    type:
      description: The certificate's type.
      type: str
    serial_number:
      description: The certificate's serial number (16 or more upper-case hex digits).
      type: str
    method:
      description: V(login) (authentication) or V(qr_code_ii) (offline).
      type: str
    certificate:
      description: The certificate (PEM, public).
      type: str
    scheme:
      description: The signature the host makes (O(ksef.certificates.ksef_deploy_host#module:scheme)); null when there is nothing to sign.
      type: str
    data:
      description: The bytes the host signs, Base64 (a canonical SignedInfo, or the QR code II string); null when there is nothing to sign.
      type: str
    document:
      description: The AuthTokenRequest with its XAdES signature up to the SignatureValue, Base64 (V(login) only).
      type: str
    text:
      description: The QR code II string (V(qr_code_ii) only).
      type: str
    proven:
      description: V(true) after a proof that passed, V(false) when the certificate could not be proven (see C(reason)),
        null when the proof is still to be finished (after O(step=prepare), and in check mode).
      type: bool
    reason:
      description: Why the certificate is not proven; null when proven.
      type: str
    valid_from:
      description: The start of validity of a certificate not valid yet; null otherwise.
      type: str
  sample:
    - id: web01|web01-authentication|authentication
      type: authentication
      serial_number: 01A2B3C4D5E6F708
      method: login
      proven: true
      reason: null
      valid_from: null
api_calls:
  description: Number of HTTP requests the module sent to KSeF (login and retries included).
  returned: always
  type: int
  sample: 7
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

import datetime

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ksef.certificates.plugins.module_utils._engine import proof as _proof
from ansible_collections.ksef.certificates.plugins.module_utils._engine import remote_proof as _remote_proof
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._connection import validate_context
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._module import KsefModule
from ansible_collections.ksef.certificates.plugins.module_utils._rules import CERTIFICATE_TYPES
from ansible_collections.ksef.certificates.plugins.module_utils._xades import HAS_LXML, LXML_IMPORT_ERROR


def run_module(ksef):
    options = ksef.options
    if not options.context_id:
        raise KsefInputError('context_id is required: the proof logs in (or signs a QR code II) in that context')
    validate_context(options.context_type, options.context_id)
    if ksef.params['step'] == 'prepare':
        now = datetime.datetime.now(datetime.timezone.utc)
        proofs = _remote_proof.prepare(KsefAuthApi(ksef.client), options, ksef.params['certificates'], now,
                                       check_mode=ksef.check_mode)
    else:
        proofs = _remote_proof.finish(ksef.client, options, ksef.params['proofs'], check_mode=ksef.check_mode)
    return {'changed': False, 'proofs': proofs}


def main():
    argument_spec = dict(
        step=dict(type='str', required=True, choices=['prepare', 'finish']),
        certificates=dict(type='list', elements='dict', default=[], options=dict(
            id=dict(type='str'),
            type=dict(type='str', required=True, choices=list(CERTIFICATE_TYPES)),
            certificate=dict(type='str', required=True),
        )),
        proofs=dict(type='list', elements='dict', default=[]),
    )
    ksef = KsefModule(argument_spec, supports_check_mode=True)
    if not _proof.HAS_CRYPTOGRAPHY:
        ksef.module.fail_json(msg=missing_required_lib('cryptography'))
    if not HAS_LXML:
        ksef.module.fail_json(msg=missing_required_lib('lxml'), exception=repr(LXML_IMPORT_ERROR))
    ksef.run(run_module, login=False)


if __name__ == '__main__':
    main()
