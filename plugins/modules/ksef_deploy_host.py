#!/usr/bin/python
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: ksef_deploy_host
short_description: Host-side steps of the ksef_deploy role (keys, CSRs, certificates, PKCS#12 bundles)
version_added: 0.1.0
description:
  - Runs on a managed host and does there what the C(ksef.certificates.ksef_deploy) role needs, without a shell;
    it can inspect the deployed key, C(.next) key and certificate (O(operation=info)), make a new key and its CSR from KSeF
    enrollment data (O(operation=csr)), install a certificate and key (O(operation=install)), build a PKCS#12 bundle
    (O(operation=pkcs12)), remove files (O(operation=remove)) and create missing directories (O(operation=directory)),
    or do the role's whole daily check in one call (O(operation=prepare)).
  - O(operation=sign) signs bytes the controller gives with the deployed key, which never leaves the host. The
    controller (M(ksef.certificates.ksef_certificate_proof)) builds a XAdES login or a QR code II string with the new
    certificate, the host signs only those bytes, and the controller checks the signature with the certificate.
  - "Backends: the Python library C(cryptography) (38 or newer) when the host has it, else the C(openssl) command
    line (1.1.1 or newer), run with an argument list: no shell, no variable expansion; passphrases and private keys
    reach openssl on its standard input, never on its command line or in its environment."
  - Every file is written to a temporary file created with C(O_CREAT|O_EXCL) and mode C(0600) in the target
    directory, given its owner, group and mode, and renamed over the target, so a key is never readable by others,
    not even for a moment.
  - Paths are taken literally (a leading C(~) is the home directory); a C($), quote or backtick in a path is part
    of the name.
  - The action plugin of the same name reads O(key_src) and O(certificate_src) on the controller (literally) and
    hands their content to the module.
author:
  - ksef.certificates contributors (@ksef-certificates)
extends_documentation_fragment:
  - ksef.certificates.attributes
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    support: full
    details:
      - Reports what would change and changes nothing; O(operation=csr) returns no CSR in check mode when it would have to
        make the key.
  diff_mode:
    support: partial
    details:
      - O(operation=account) passes the before/after of O(diffs) (M(ksef.certificates.ksef_certificate)) through for
        this host's certificates, or says before/after serial numbers where no module diff is at hand (check mode).
  idempotent:
    support: full
    details:
      - O(operation=csr) keeps the CSR at O(csr_path) when it is correctly signed and asks for the subject and the
        public key of the reused O(next_key_path) (a renewal left for a later run); else it writes a new one.
options:
  operation:
    description:
      - V(info) reports on O(key_path), O(next_key_path) and O(certificate_path) and changes nothing.
      - V(csr) makes the private key O(next_key_path) (O(key_type), mode 0600) unless it already holds a key, writes
        the CSR for it to O(csr_path) (unless the CSR there already asks for the same subject and key) and returns
        it. The subject is O(enrollment_data).
      - V(install) installs O(certificate_content) (or the content of O(certificate_src)) at O(certificate_path),
        then the key (moved from O(next_key_path) with O(key_from_next), or O(key_content)/O(key_src)) at
        O(key_path), and sets modes, owner and group of both.
      - V(pkcs12) makes sure O(pkcs12_path) opens with O(pkcs12_passphrase), holds the key O(key_path) and the
        certificate O(certificate_path), and uses AES-256-CBC with PBKDF2 and a SHA-256 MAC; it is rebuilt otherwise.
        Nothing happens while the certificate does not match the key.
      - V(remove) removes O(paths).
      - V(directory) creates the missing ones of O(directories) (and their missing parents, in the same mode); an
        existing directory is left as it is.
      - V(prepare) is the role's one call per host. It creates the missing O(directories), inspects each of
        O(certificates) as V(info) does, and sets the declared mode, owner and group of each installed key and
        certificate (a certificate that carries the public key of its key, with no C(.next) key of its own waiting).
        With O(settings) the action plugin first resolves and checks the role's declarations for this host and
        derives O(directories) and O(certificates) from them.
      - V(sign) signs O(data) with the key O(key_path) in the signature O(scheme) and returns RV(signature); it changes
        nothing. The key is read from its file and never returned.
      - V(account) runs on the controller only (the action plugin; no module is sent to the host). It reports the
        role's account of this host, O(account), as changed, failed with each failing certificate's reason, and
        with the before/after of O(diffs) in diff mode.
    type: str
    required: true
    choices: [info, csr, install, pkcs12, remove, directory, prepare, sign, account]
  key_path:
    description:
      - The deployed private key. Required for O(operation=info), O(operation=csr) (the default C(.next) key and CSR
        paths derive from it), O(operation=install), O(operation=pkcs12) and O(operation=sign).
    type: str
  data:
    description:
      - The bytes O(operation=sign) signs, Base64 (at most 16384 bytes once decoded).
    type: str
  scheme:
    description:
      - The signature O(operation=sign) makes.
      - V(rsa_pkcs1v15_sha256) and V(ecdsa_sha256) (raw r||s) are the XMLDSig forms of a XAdES login.
      - V(rsa_pss_sha256) (MGF1 SHA-256, salt 32) and V(ecdsa_p256_p1363) (P-256, IEEE P1363 r||s) are the forms of
        a QR code II (KOD II).
      - The key's type must fit the scheme (RSA or EC).
    type: str
    choices: [rsa_pkcs1v15_sha256, ecdsa_sha256, rsa_pss_sha256, ecdsa_p256_p1363]
  next_key_path:
    description: The next private key (made by O(operation=csr) before an enrollment). Default C(<key_path>.next).
    type: str
  csr_path:
    description: Where O(operation=csr) writes the CSR (PEM, public). Default C(<next_key_path>.csr).
    type: str
  certificate_path:
    description: The deployed certificate (PEM). Required for O(operation=info), O(operation=install) and O(operation=pkcs12).
    type: str
  pkcs12_path:
    description: The PKCS#12 bundle. Required for O(operation=pkcs12).
    type: str
  key_type:
    description: Type of a new key, EC P-256 or RSA 2048 (the two KSeF certifies).
    type: str
    choices: [ec, rsa]
    default: ec
  enrollment_data:
    description:
      - The subject of the CSR, as returned by M(ksef.certificates.ksef_certificate_info) with
        C(include_enrollment_data) (snake_case or the API's camelCase keys). Required for O(operation=csr).
      - Values with control characters are refused; C(country_name) and C(serial_number) must be PrintableString.
    type: dict
  renew_before_days:
    description: O(operation=info) reports RV(renewal_due) when the certificate expires within this many days.
    type: int
    default: 30
  certificate_content:
    description: Certificate (PEM) to install with O(operation=install).
    type: str
  certificate_src:
    description: Controller file whose content the action plugin passes as O(certificate_content).
    type: str
  key_content:
    description: Private key (PEM) to install with O(operation=install). Secret.
    type: str
  key_src:
    description: Controller file whose content the action plugin passes as O(key_content).
    type: str
  key_from_next:
    description:
      - With O(operation=install), move O(next_key_path) to O(key_path) when it exists; the certificate at
        O(certificate_path) must carry its public key. Also removes O(csr_path) and the CSR config
        C(<next_key_path>.cnf) that earlier versions of the role wrote.
    type: bool
    default: false
  key_mode:
    description: Octal mode of O(key_path) and of the C(.next) key's final place.
    type: raw
    default: '0600'
  certificate_mode:
    description: Octal mode of O(certificate_path) and O(csr_path).
    type: raw
    default: '0644'
  pkcs12_mode:
    description: Octal mode of O(pkcs12_path).
    type: raw
    default: '0600'
  owner:
    description: Owner of the written files; empty keeps the connecting user.
    type: str
  group:
    description: Group of the written files; empty keeps the connecting user's group.
    type: str
  pkcs12_passphrase:
    description:
      - Passphrase of the PKCS#12 bundle. Passed whole (to openssl on its standard input); control characters are
        refused, and the openssl backend takes at most 1023 bytes.
    type: str
  pkcs12_name:
    description: Friendly name inside the PKCS#12 bundle.
    type: str
  paths:
    description: Files that O(operation=remove) removes.
    type: list
    elements: str
    default: []
  directories:
    description: Directories for O(operation=directory), created in this order.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: str
        required: true
      mode:
        description: Octal mode of the directory and its missing parents.
        type: raw
        required: true
      owner:
        description: Owner of the created directories.
        type: str
      group:
        description: Group of the created directories.
        type: str
  certificates:
    description: The key-on-host certificates O(operation=prepare) inspects and keeps the modes of.
    type: list
    elements: dict
    default: []
    suboptions:
      key_path:
        description: The deployed private key.
        type: str
        required: true
      next_key_path:
        description: The next private key; default C(<key_path>.next).
        type: str
      certificate_path:
        description: The deployed certificate.
        type: str
        required: true
      renew_before_days:
        description: The certificate is reported with C(renewal_due) when it expires within this many days.
        type: int
        default: 30
      key_mode:
        description: Octal mode of the installed key.
        type: raw
        default: '0600'
      certificate_mode:
        description: Octal mode of the installed certificate.
        type: raw
        default: '0644'
      owner:
        description: Owner of the installed key and certificate; empty keeps the file's.
        type: str
      group:
        description: Group of the installed key and certificate; empty keeps the file's.
        type: str
  settings:
    description:
      - The C(ksef_deploy_*) settings of the C(ksef.certificates.ksef_deploy) role as this host sees them, for
        O(operation=prepare); read by the action plugin on the controller, which fails with one line per broken
        rule when a declaration is invalid.
    type: dict
  account:
    description: The role's C(ksef_deploy_result) lines of this host, for O(operation=account) (controller only).
    type: list
    elements: dict
  diffs:
    description:
      - Diff results of M(ksef.certificates.ksef_certificate) calls, for O(operation=account); the entries of this
        host's certificates are passed through in diff mode.
    type: list
    elements: dict
  backend:
    description: V(auto) uses C(cryptography) when the host has it (38 or newer), else the openssl command line.
    type: str
    choices: [auto, cryptography, openssl]
    default: auto
  openssl_path:
    description: The openssl command of the openssl backend (a name looked up in PATH, or an absolute path).
    type: str
    default: openssl
notes:
  - The module is part of the C(ksef.certificates.ksef_deploy) role; it needs Python on the host (3.9 or newer)
    and either C(cryptography) or C(openssl).
  - It never follows a link it did not make. Files are opened relative to their directory without following a
    link, checked to be regular files with one link, read up to 64 KiB, and given their mode and owner on the
    open descriptor. A symbolic link, FIFO, device or hard-linked file at a managed path fails the task with a
    message that names it; the module does not replace it (remove it, or point the module at the real file).
  - O(operation=csr) reuses an existing O(next_key_path) only when it is a regular file with mode C(0600), owned
    by O(owner) (or the connecting user), in a directory owned by that user or the connecting user that its
    group and others cannot write; otherwise it removes it, warns, and makes a new key.
seealso:
  - module: ksef.certificates.ksef_certificate
'''

EXAMPLES = r'''
- name: Inspect a deployed key and certificate
  ksef.certificates.ksef_deploy_host:
    operation: info
    key_path: /etc/ksef/private/app-authentication.key
    certificate_path: /etc/ksef/certs/app-authentication.crt
    renew_before_days: 30
  register: deployed

- name: Make the next key and its CSR
  ksef.certificates.ksef_deploy_host:
    operation: csr
    key_path: /etc/ksef/private/app-authentication.key
    enrollment_data: "{{ info.enrollment_data }}"
  register: request

- name: Install the issued certificate and move the next key into place
  ksef.certificates.ksef_deploy_host:
    operation: install
    key_path: /etc/ksef/private/app-authentication.key
    certificate_path: /etc/ksef/certs/app-authentication.crt
    certificate_content: "{{ issued_pem }}"
    key_from_next: true

- name: Sign a QR code II string built by the controller with the deployed key
  ksef.certificates.ksef_deploy_host:
    operation: sign
    key_path: /etc/ksef/private/app-offline.key
    data: "{{ proof.data }}"
    scheme: ecdsa_p256_p1363
  register: signed

- name: Bundle key and certificate as PKCS#12
  ksef.certificates.ksef_deploy_host:
    operation: pkcs12
    key_path: /etc/ksef/private/app-authentication.key
    certificate_path: /etc/ksef/certs/app-authentication.crt
    pkcs12_path: /etc/ksef/private/app-authentication.p12
    pkcs12_name: app-authentication
    pkcs12_passphrase: "{{ vault_p12_passphrase }}"
  no_log: true
'''

RETURN = r'''
backend:
  description: The backend used (V(cryptography) or V(openssl)); empty for O(operation=remove) and O(operation=directory).
  returned: always
  type: str
key_exists:
  description: O(key_path) exists and is not empty.
  returned: operation is info
  type: bool
next_key_exists:
  description: O(next_key_path) exists and is not empty.
  returned: operation is info
  type: bool
certificate_exists:
  description: O(certificate_path) exists.
  returned: operation is info
  type: bool
certificate_parsed:
  description: O(certificate_path) holds a certificate.
  returned: operation is info
  type: bool
certificate_matches_key:
  description: The certificate carries the public key of O(key_path).
  returned: operation is info
  type: bool
certificate_matches_next_key:
  description: The certificate carries the public key of O(next_key_path).
  returned: operation is info
  type: bool
serial_number:
  description: Serial number of the certificate (upper-case hex, at least 16 digits); empty without one.
  returned: operation is info
  type: str
valid_to:
  description: End of validity of the certificate (C(YYYY-MM-DDTHH:MM:SS+00:00)); empty without one.
  returned: operation is info
  type: str
fingerprint_sha256:
  description: SHA-256 of the certificate's DER (lower-case hex); empty without one.
  returned: operation is info
  type: str
renewal_due:
  description: The certificate expires within O(renew_before_days) days (or has expired); null without a certificate.
  returned: operation is info
  type: bool
certificate_pem:
  description: The certificate (PEM, public); empty without one.
  returned: operation is info
  type: str
signature:
  description: The signature of O(data), Base64.
  returned: operation is sign
  type: str
scheme:
  description: The scheme of RV(signature) (O(scheme)).
  returned: operation is sign
  type: str
csr:
  description: The CSR (PEM) for O(next_key_path); null in check mode when the key would have to be made.
  returned: operation is csr
  type: str
next_key_generated:
  description: O(operation=csr) made a new key (else it reused the key already at O(next_key_path)).
  returned: operation is csr
  type: bool
built:
  description: O(operation=pkcs12) (re)built the bundle (or would, in check mode).
  returned: operation is pkcs12
  type: bool
reason:
  description: Why the bundle was rebuilt, or why nothing was done.
  returned: operation is pkcs12
  type: str
removed:
  description: The files O(operation=remove) removed (or would remove).
  returned: operation is remove
  type: list
  elements: str
created:
  description: The directories O(operation=directory) or O(operation=prepare) created (or would create).
  returned: operation is directory or prepare
  type: list
  elements: str
certificates:
  description:
    - One entry per O(certificates) (O(operation=prepare)), with the keys O(operation=info) returns (RV(key_exists)
      to RV(renewal_due)) and C(attributes_changed), the files whose mode, owner or group was (or would be) set.
  returned: operation is prepare
  type: list
  elements: dict
declarations:
  description: This host's resolved certificate declarations, without PKCS#12 passphrases (O(operation=prepare) with O(settings)).
  returned: operation is prepare with settings
  type: list
  elements: dict
inspections:
  description: The key-on-host declarations, each with what O(operation=prepare) found (as a registered loop of O(operation=info)).
  returned: operation is prepare with settings
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _files as files
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._host.backend import BACKENDS, HostCryptoError
from ansible_collections.ksef.certificates.plugins.module_utils._host.operations import OPERATIONS, Host
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    DEFAULT_KEY_TYPE,
    DEFAULT_RENEW_BEFORE_DAYS,
    KEY_TYPES,
    SIGNATURE_SCHEMES,
)

# Done by the action plugin on the controller; the module refuses them.
CONTROLLER_OPERATIONS = ('account',)
# What each operation needs; AnsibleModule fails before anything runs and names the operation and the missing
# options ("operation is pkcs12 but all of the following are missing: pkcs12_path").
REQUIRED_IF = [
    ('operation', 'info', ('key_path', 'certificate_path')),
    ('operation', 'csr', ('key_path', 'enrollment_data')),
    ('operation', 'install', ('key_path', 'certificate_path')),
    ('operation', 'pkcs12', ('key_path', 'certificate_path', 'pkcs12_path')),
    ('operation', 'sign', ('key_path', 'data', 'scheme')),
]
# The operations that read or write keys and certificates: the backend is chosen first, so a host with neither
# cryptography nor openssl fails before any change.
BACKEND_OPERATIONS = ('info', 'csr', 'install', 'pkcs12', 'sign')


def argument_spec():
    return dict(
        operation=dict(type='str', required=True, choices=list(OPERATIONS) + list(CONTROLLER_OPERATIONS)),
        key_path=dict(type='str', no_log=False),
        data=dict(type='str'),
        scheme=dict(type='str', choices=list(SIGNATURE_SCHEMES)),
        next_key_path=dict(type='str', no_log=False),
        csr_path=dict(type='str'),
        certificate_path=dict(type='str'),
        pkcs12_path=dict(type='str'),
        key_type=dict(type='str', choices=list(KEY_TYPES), default=DEFAULT_KEY_TYPE, no_log=False),
        enrollment_data=dict(type='dict'),
        renew_before_days=dict(type='int', default=DEFAULT_RENEW_BEFORE_DAYS),
        certificate_content=dict(type='str'),
        certificate_src=dict(type='str'),
        key_content=dict(type='str', no_log=True),
        key_src=dict(type='str', no_log=False),
        key_from_next=dict(type='bool', default=False, no_log=False),
        key_mode=dict(type='raw', default='0600', no_log=False),
        certificate_mode=dict(type='raw', default='0644'),
        pkcs12_mode=dict(type='raw', default='0600'),
        owner=dict(type='str'),
        group=dict(type='str'),
        pkcs12_passphrase=dict(type='str', no_log=True),
        pkcs12_name=dict(type='str'),
        paths=dict(type='list', elements='str', default=[]),
        directories=dict(type='list', elements='dict', default=[], options=dict(
            path=dict(type='str', required=True),
            mode=dict(type='raw', required=True),
            owner=dict(type='str'),
            group=dict(type='str'),
        )),
        certificates=dict(type='list', elements='dict', default=[], options=dict(
            key_path=dict(type='str', required=True, no_log=False),
            next_key_path=dict(type='str', no_log=False),
            certificate_path=dict(type='str', required=True),
            renew_before_days=dict(type='int', default=DEFAULT_RENEW_BEFORE_DAYS),
            key_mode=dict(type='raw', default='0600', no_log=False),
            certificate_mode=dict(type='raw', default='0644'),
            owner=dict(type='str'),
            group=dict(type='str'),
        )),
        settings=dict(type='dict'),
        account=dict(type='list', elements='dict'),
        diffs=dict(type='list', elements='dict'),
        backend=dict(type='str', choices=list(BACKENDS), default='auto'),
        openssl_path=dict(type='str', default='openssl'),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), required_if=REQUIRED_IF, supports_check_mode=True)
    operation = module.params['operation']
    host = None
    try:
        if module.params.get('key_src') or module.params.get('certificate_src'):
            raise KsefError('key_src and certificate_src are read on the controller by the action plugin '
                            'ksef.certificates.ksef_deploy_host; call the module by that name')
        if operation in CONTROLLER_OPERATIONS or module.params.get('settings') is not None:
            raise KsefError('operation=account and settings are handled on the controller by the action plugin '
                            'ksef.certificates.ksef_deploy_host; call the module by that name')
        host = Host(module)
        if operation in BACKEND_OPERATIONS:
            host.choose_backend()
        result = OPERATIONS[operation](host)
    except (KsefError, HostCryptoError, files.HostFileError) as exc:
        module.fail_json(msg=str(exc), backend=host.backend_name() if host else '')
    result['backend'] = host.backend_name()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
