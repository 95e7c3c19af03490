# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Declarations of ksef_certificate: one desired certificate each, its options and its local material.

Everything here happens before the first API call: merging the options, checking them, reading the
key, CSR and certificate files. Bad input fails here and changes nothing.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
from typing import Any, List, Mapping, Optional

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto, _pkcs11, _pkcs11_keystore
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._engine.pending import default_state_path
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    CERTIFICATE_TYPES as CERTIFICATE_TYPE_CHOICES,
    certificate_name_problem,
    has_control_characters,
    parse_datetime,
    revoke_superseded as revoke_superseded_by_rule,
)

NEXT_KEY_SUFFIX = '.next'
DEFAULT_WAIT_TIMEOUT = 300

# Options that may be set per certificate (in `certificates` items) and at the top level (defaults).
PER_CERTIFICATE_OPTIONS = (
    'name', 'type', 'state', 'private_key_path', 'private_key_type', 'private_key_passphrase', 'csr_path',
    'csr_content', 'certificate_path', 'pkcs12_path', 'pkcs12_passphrase', 'pkcs12_unencrypted',
    'state_path', 'renew_before_days',
    'force', 'replace_missing_key', 'valid_from', 'revoke_superseded', 'caller_revokes_superseded',
    'revocation_reason', 'remove_files', 'backup',
    'backup_keep',
    'return_content',
    'wait', 'wait_timeout', 'key_backend', 'pkcs11_module', 'pkcs11_token_label', 'pkcs11_pin', 'pkcs11_key_label',
)
PATH_OPTIONS = ('private_key_path', 'certificate_path', 'pkcs12_path', 'state_path')
# Passphrases the module writes with (and hands on to hosts): printable characters only.
PASSPHRASE_OPTIONS = ('private_key_passphrase', 'pkcs12_passphrase')


def literal_path(value: Optional[str]) -> Optional[str]:
    """A file path as given: no $VAR expansion (a '$' can be part of a directory name), only a leading '~'."""
    if value and value.startswith('~'):
        return os.path.expanduser(value)
    return value


class Declaration:
    """One desired certificate: its options (merged from the top level) and its local material."""

    def __init__(self, options: Mapping[str, Any], index: Optional[int] = None) -> None:
        self.index = index              # position in `certificates`; None for the single form
        # The options, one per PER_CERTIFICATE_OPTIONS entry (test_declaration.py checks the two agree).
        self.name = options.get('name')
        self.type = options.get('type')
        self.state = options.get('state')
        self.private_key_path = literal_path(options.get('private_key_path'))
        self.private_key_type = options.get('private_key_type')
        self.private_key_passphrase = options.get('private_key_passphrase')
        self.csr_path = literal_path(options.get('csr_path'))
        self.csr_content = options.get('csr_content')
        self.certificate_path = literal_path(options.get('certificate_path'))
        self.pkcs12_path = literal_path(options.get('pkcs12_path'))
        self.pkcs12_passphrase = options.get('pkcs12_passphrase')
        self.pkcs12_unencrypted = options.get('pkcs12_unencrypted')
        self.state_path = literal_path(options.get('state_path'))
        self.renew_before_days = options.get('renew_before_days')
        self.force = options.get('force')
        self.replace_missing_key = options.get('replace_missing_key')
        self.valid_from = options.get('valid_from')
        # The caller (the ksef_deploy role, keys on hosts) revokes the superseded certificates once the successor
        # proved itself: the module revokes none (revoke_superseded false unless given; true with it is refused).
        self.caller_revokes_superseded = options.get('caller_revokes_superseded')
        # By type unless given (Authentication revoked, Offline kept for its QR codes II): the rule is _rules'.
        explicit_revoke = options.get('revoke_superseded')
        self.revoke_superseded = (False if self.caller_revokes_superseded and explicit_revoke is None
                                  else revoke_superseded_by_rule(self.type, explicit_revoke))
        self.revocation_reason = options.get('revocation_reason')
        self.remove_files = options.get('remove_files')
        self.backup = options.get('backup')
        self.backup_keep = options.get('backup_keep')
        self.return_content = options.get('return_content')
        self.wait = options.get('wait')
        self.wait_timeout = options.get('wait_timeout')
        self.key_backend = options.get('key_backend')
        self.pkcs11_module = options.get('pkcs11_module')
        self.pkcs11_token_label = options.get('pkcs11_token_label')
        self.pkcs11_pin = options.get('pkcs11_pin')
        self.pkcs11_key_label = options.get('pkcs11_key_label')
        # Local material, read by load_local_material() before any API call.
        self.key = None                 # the private key at private_key_path, None when it does not exist yet
        self.csr = None                 # parsed CSR in the csr form
        self.local_certificate = None   # the certificate at certificate_path, None when missing or unreadable
        # key_backend pkcs11: the token's key pairs of this declaration and the one in use (self.key is its
        # public key; the private key never leaves the token).
        self.keystore = None
        self.token_key = None
        # The enrollment state file (PendingStore) and its content (None, or an intent/pending record).
        self.store = None
        self.record = None

    @property
    def label(self) -> str:
        where = ' (certificates[%d])' % self.index if self.index is not None else ''
        return '%s/%s%s' % (self.name, self.type, where)

    @property
    def uses_token(self) -> bool:
        return self.key_backend == 'pkcs11'

    @property
    def uses_csr(self) -> bool:
        return self.csr is not None

    @property
    def frees_superseded(self) -> bool:
        """A renewal gives its predecessors' slots back: the module revokes them, or the caller does.

        For planning only (the waves, the forecast): what the module revokes is revoke_superseded alone."""
        return bool(self.revoke_superseded or self.caller_revokes_superseded)

    @property
    def declared_public_key_sha256(self) -> Optional[str]:
        """Fingerprint of the declared public key; None when the key is still to be generated."""
        if self.csr is not None:
            return _crypto.public_key_fingerprint(self.csr.public_key())
        if self.key is not None:
            return _crypto.public_key_fingerprint(self.key)
        return None

    @property
    def next_key_path(self) -> Optional[str]:
        return self.private_key_path + NEXT_KEY_SUFFIX if self.private_key_path else None

    @property
    def wait_seconds(self) -> int:
        """How long to wait for an enrollment (wait_timeout, 300 s when unset)."""
        return self.wait_timeout if self.wait_timeout is not None else DEFAULT_WAIT_TIMEOUT

    def local_files(self) -> List[str]:
        """Every file this declaration may own on the controller (for remove_files)."""
        paths = [self.certificate_path, self.pkcs12_path, self.private_key_path, self.next_key_path, self.state_path]
        return [path for path in paths if path]


def merge_declarations(params: Mapping[str, Any]) -> List[Declaration]:
    """The declared set: the single form, or `certificates` items with top-level values as defaults."""
    if params.get('certificates') is None:
        return [Declaration(dict((key, params.get(key)) for key in PER_CERTIFICATE_OPTIONS))]
    declarations = []
    for index, item in enumerate(params['certificates']):
        options = {}
        for key in PER_CERTIFICATE_OPTIONS:
            value = item.get(key)
            options[key] = value if value is not None else params.get(key)
        declarations.append(Declaration(options, index=index))
    return declarations


def validate_declaration(decl: Declaration) -> None:
    """Input checks that need neither files nor KSeF; raise KsefInputError."""
    name = decl.name
    if not name:
        raise KsefInputError('name is required for every certificate%s' % (
            ' (certificates[%d])' % decl.index if decl.index is not None else ''))
    problem = certificate_name_problem(name)
    if problem:
        raise KsefInputError(problem)
    for option in PASSPHRASE_OPTIONS:
        if has_control_characters(getattr(decl, option)):
            # The value itself is never shown (no_log).
            raise KsefInputError('Certificate %s: %s contains a control character (a newline, tab, ...); it is refused '
                                 'because tools that read a passphrase line by line (openssl -passin file:, the '
                                 'ksef_deploy role) would cut it there. Choose a passphrase of printable characters'
                                 % (decl.label, option))
    if decl.type not in CERTIFICATE_TYPE_CHOICES:
        raise KsefInputError('Certificate %s: type must be one of %s' % (name, ', '.join(CERTIFICATE_TYPE_CHOICES)))
    if decl.csr_path and decl.csr_content:
        raise KsefInputError('Certificate %s: set csr_path or csr_content, not both' % decl.label)
    has_csr = bool(decl.csr_path or decl.csr_content)
    if decl.private_key_path and has_csr:
        raise KsefInputError('Certificate %s: set private_key_path or a CSR (csr_path/csr_content), not both'
                             % decl.label)
    if decl.uses_token:
        _validate_token_declaration(decl, has_csr)
    elif decl.state == 'present' and not decl.private_key_path and not has_csr:
        raise KsefInputError('Certificate %s: set private_key_path (the module keeps the key) or csr_path/csr_content '
                             '(the key stays where the CSR was made)' % decl.label)
    if decl.pkcs12_path and not decl.private_key_path:
        raise KsefInputError('Certificate %s: pkcs12_path needs private_key_path (a PKCS#12 file holds the key)'
                             % decl.label)
    if decl.pkcs12_path and not decl.pkcs12_passphrase and not decl.pkcs12_unencrypted:
        raise KsefInputError('Certificate %s: pkcs12_path without pkcs12_passphrase would hold the private key '
                             'unencrypted; set pkcs12_passphrase, or pkcs12_unencrypted=true if that is intended'
                             % decl.label)
    if decl.pkcs12_path and decl.pkcs12_passphrase and not _crypto.HAS_PKCS12_BUILDER:
        # Checked before any API call: the bundle is written only after the enrollment.
        _crypto.pkcs12_encryption(decl.pkcs12_passphrase)
    if decl.caller_revokes_superseded and decl.revoke_superseded:
        raise KsefInputError('Certificate %s: set revoke_superseded (the module revokes the superseded certificates) or '
                             'caller_revokes_superseded (the caller revokes them), not both' % decl.label)
    if decl.renew_before_days is not None and decl.renew_before_days < 0:
        raise KsefInputError('Certificate %s: renew_before_days must not be negative' % decl.label)
    if decl.backup_keep is not None and decl.backup_keep < 1:
        raise KsefInputError('Certificate %s: backup_keep must be 1 or more (the number of backups kept per file)'
                             % decl.label)
    if decl.wait_timeout is not None and decl.wait_timeout < 0:
        raise KsefInputError('Certificate %s: wait_timeout must not be negative' % decl.label)
    if decl.valid_from:
        try:
            parse_datetime(decl.valid_from)
        except ValueError:
            raise KsefInputError('Certificate %s: valid_from %r is not an ISO 8601 date-time' % (decl.label, decl.valid_from))
    if decl.state_path is None:
        decl.state_path = default_state_path(decl.private_key_path, decl.certificate_path)


def _validate_token_declaration(decl, has_csr):
    """key_backend pkcs11: the key pair lives in the token, so no key file, CSR or PKCS#12 file."""
    if not _pkcs11.HAS_PYKCS11:
        raise KsefInputError('Certificate %s: %s' % (decl.label, missing_required_lib(_pkcs11.PYKCS11_PIP_NAME)))
    missing = [option for option in ('pkcs11_module', 'pkcs11_token_label', 'pkcs11_pin', 'certificate_path')
               if not getattr(decl, option)]
    if missing:
        raise KsefInputError('Certificate %s: key_backend pkcs11 needs %s' % (decl.label, ', '.join(missing)))
    if decl.private_key_path or has_csr or decl.pkcs12_path:
        raise KsefInputError('Certificate %s: with key_backend pkcs11 the key stays in the token; private_key_path, '
                             'csr_path/csr_content and pkcs12_path cannot be used' % decl.label)
    if not decl.pkcs11_key_label:
        decl.pkcs11_key_label = decl.name


def validate_set(declarations: List[Declaration]) -> None:
    seen = {}
    paths = {}
    for decl in declarations:
        key = (decl.name, decl.type)
        if key in seen:
            raise KsefInputError('Certificate %s/%s is declared twice (items %s and %s); each name and type may '
                                 'appear once' % (decl.name, decl.type, seen[key], decl.index))
        seen[key] = decl.index
        for option in PATH_OPTIONS:
            path = getattr(decl, option)
            if not path:
                continue
            if path in paths:
                raise KsefInputError('Path %s is used by two certificates (%s and %s); each certificate needs its own '
                                     'files' % (path, paths[path], decl.label))
            paths[path] = decl.label


def load_local_material(decl: Declaration) -> None:
    """Read the key or CSR and the local certificate; fail on unusable input before any API call."""
    decl.key = None
    decl.csr = None
    decl.local_certificate = None
    if decl.uses_token:
        _load_token_material(decl)
        return
    if decl.csr_content:
        decl.csr = _crypto.load_csr(decl.csr_content, source='CSR of certificate %s' % decl.label)
    elif decl.csr_path:
        decl.csr = _crypto.read_csr_file(decl.csr_path)
    elif decl.private_key_path:
        if os.path.exists(decl.private_key_path):
            decl.key = _crypto.load_private_key(decl.private_key_path, decl.private_key_passphrase)
            _crypto.check_key_supported(decl.key, what='private key %s' % decl.private_key_path)
        elif decl.state == 'present':
            directory = os.path.dirname(os.path.abspath(decl.private_key_path))
            if not os.path.isdir(directory):
                raise KsefInputError('Directory %s for private_key_path does not exist' % directory)
    if decl.certificate_path:
        decl.local_certificate = _crypto.read_certificate_file(decl.certificate_path)


def _load_token_material(decl):
    """key_backend pkcs11: log in to the token and find the key in use (the local certificate's, if any)."""
    if decl.certificate_path:
        decl.local_certificate = _crypto.read_certificate_file(decl.certificate_path)
    token = _pkcs11_keystore.open_token(decl.pkcs11_module, decl.pkcs11_token_label, decl.pkcs11_pin)
    decl.keystore = _pkcs11_keystore.TokenKeyStore(token, decl.pkcs11_key_label)
    decl.token_key = decl.keystore.current(decl.local_certificate)
    decl.key = decl.token_key.public_key if decl.token_key is not None else None
    if decl.key is not None:
        where = 'key %r in PKCS#11 token %r' % (decl.pkcs11_key_label, decl.pkcs11_token_label)
        _crypto.check_key_supported(decl.key, what=where)
