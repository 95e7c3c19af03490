# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The local files of ksef_certificate: reading what a decision needs, installing, removing.

Keys are written 0600 from the start and moved atomically; the key goes in place before the
certificate, so a crash in between is resumed from the state file.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Mapping, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import Declaration
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._rules import DEFAULT_KEY_TYPE

if TYPE_CHECKING:  # cryptography is optional at import time (ansible-test import sanity runs without it)
    from cryptography import x509

DEFAULT_CERTIFICATE_MODE = 0o644


class LocalFiles:
    """What the decision reads from local files (tests pass stand-ins for the two readers)."""

    def __init__(self, exists: Callable[[str], bool] = os.path.exists, pkcs12_matches: Optional[Callable[..., bool]] = None) -> None:
        self._exists = exists
        self._pkcs12_matches = pkcs12_matches or _crypto.pkcs12_matches

    def existing(self, paths: Iterable[str]) -> List[str]:
        return [path for path in paths if self._exists(path)]

    def pkcs12_holds(self, decl: Declaration, certificate: 'x509.Certificate') -> bool:
        return self._pkcs12_matches(decl.pkcs12_path, decl.pkcs12_passphrase, decl.key, certificate)

    def need_install(self, decl: Declaration, certificate: 'x509.Certificate') -> bool:
        """True when the certificate or PKCS#12 file is missing or does not hold `certificate`."""
        if decl.certificate_path:
            local = decl.local_certificate
            if local is None or _crypto.certificate_to_pem(local) != _crypto.certificate_to_pem(certificate):
                return True
        if decl.uses_token and not decl.keystore.has_certificate(certificate):
            return True
        return bool(decl.pkcs12_path) and not self.pkcs12_holds(decl, certificate)


class Installer:
    """Writes keys, certificates and PKCS#12 bundles of plans; applies file attributes; removes files."""

    def __init__(self, module: AnsibleModule, local_files: Optional[LocalFiles] = None) -> None:
        self.module = module
        self.check_mode = module.check_mode
        self.local_files = local_files or LocalFiles()

    def _file_args(self, path, mode):
        args = self.module.load_file_common_arguments(self.module.params, path=path)
        # The literal path: load_file_common_arguments expands $VAR, and a '$' can be part of a file name.
        args['path'] = path
        if mode is not None:
            args['mode'] = mode
        return args

    def install(self, plan: Plan, certificate: 'x509.Certificate') -> None:
        """Put the enrolled key in place, then the certificate (a crash in between is resumed from the state file)."""
        decl = plan.decl
        if decl.uses_token:
            # The certificate goes next to its key in the token and to certificate_path; only then do the
            # label's other key pairs (the superseded one) go.
            decl.token_key = decl.keystore.attach(certificate)
            decl.key = decl.token_key.public_key
            self.write_certificate_files(plan, certificate)
            decl.keystore.remove_others(certificate)
            return
        if decl.private_key_path:
            source = plan.enroll_key_path
            if source and source != decl.private_key_path and os.path.exists(source):
                self.backup(plan, decl.private_key_path)
                _crypto.move_file_atomic(self.module, source, decl.private_key_path, _crypto.PRIVATE_KEY_MODE)
            key = _crypto.load_private_key(decl.private_key_path, decl.private_key_passphrase)
            if _crypto.public_key_fingerprint(key) != _crypto.public_key_fingerprint(certificate.public_key()):
                raise KsefError('The key in %s does not belong to certificate %s; the state file %s was kept, inspect '
                                'the files before running again' % (decl.private_key_path, _crypto.serial_hex(certificate),
                                                                    decl.state_path))
            decl.key = key
            self.module.set_fs_attributes_if_different(self._file_args(decl.private_key_path, '0600'), False, expand=False)
        self.write_certificate_files(plan, certificate)

    def write_certificate_files(self, plan: Plan, certificate: 'x509.Certificate') -> None:
        decl = plan.decl
        if decl.uses_token:
            decl.keystore.attach(certificate)
        if decl.certificate_path:
            pem = _crypto.certificate_to_pem(certificate)
            local = decl.local_certificate
            if local is None or _crypto.certificate_to_pem(local) != pem:
                self.backup(plan, decl.certificate_path)
                _crypto.write_file_atomic(self.module, decl.certificate_path, pem, DEFAULT_CERTIFICATE_MODE,
                                          self._file_args(decl.certificate_path, None))
                decl.local_certificate = certificate
        if decl.pkcs12_path and not self.local_files.pkcs12_holds(decl, certificate):
            self.backup(plan, decl.pkcs12_path)
            data = _crypto.pkcs12_bundle(decl.name, decl.key, certificate, decl.pkcs12_passphrase)
            _crypto.write_file_atomic(self.module, decl.pkcs12_path, data, _crypto.PRIVATE_KEY_MODE,
                                      self._file_args(decl.pkcs12_path, '0600'))

    def backup(self, plan: Plan, path: Optional[str]) -> None:
        """A 0600 copy of path before it is replaced or removed (backup: true); older ones beyond backup_keep go.

        Not AnsibleModule.backup_local: its shutil.copy2 creates the copy of a key with the umask's mode
        (0644 typically) before narrowing it.
        """
        if plan.decl.backup and path and os.path.exists(path):
            keep = plan.decl.backup_keep if plan.decl.backup_keep is not None else _crypto.DEFAULT_BACKUP_KEEP
            plan.backup_files.append(_crypto.backup_file(path, keep=keep))

    def apply_file_attributes(self, plan: Plan) -> None:
        """Owner/group/mode of files that already existed (a healthy run fixes a widened key mode)."""
        decl = plan.decl
        if plan.action == 'installed' and not self.check_mode and plan.install_certificate is not None \
                and plan.issued_serial is None:
            self.write_certificate_files(plan, plan.install_certificate)
        changed = False
        if decl.private_key_path and os.path.exists(decl.private_key_path):
            changed = self.module.set_fs_attributes_if_different(
                self._file_args(decl.private_key_path, '0600'), changed, expand=False)
        if decl.certificate_path and os.path.exists(decl.certificate_path):
            # The user's mode for certificate files; None keeps what the file has (0644 when written).
            changed = self.module.set_fs_attributes_if_different(
                self._file_args(decl.certificate_path, self.module.params.get('mode')), changed, expand=False)
        if decl.pkcs12_path and os.path.exists(decl.pkcs12_path):
            changed = self.module.set_fs_attributes_if_different(
                self._file_args(decl.pkcs12_path, '0600'), changed, expand=False)
        if changed:
            plan.changed = True

    def remove_files(self, plan: Plan) -> None:
        """Remove the files an absent plan lists (after a backup when asked)."""
        for path in plan.removed_files:
            self.backup(plan, path)
            os.unlink(path)

    def discard_next_key(self, decl: Declaration, record: Optional[Mapping[str, Any]]) -> None:
        """A key made only for a finished enrollment (the .next file) goes with its record."""
        key_path = (record or {}).get('key_path')
        if decl.uses_token:
            # A token key made only for this enrollment goes too (never the key in use).
            if key_path and (decl.token_key is None or key_path != decl.keystore.ref(decl.token_key)):
                decl.keystore.discard(key_path)
            return
        if key_path and key_path == decl.next_key_path and os.path.exists(key_path):
            os.unlink(key_path)

    def generate_key(self, plan: Plan) -> Tuple[Any, Optional[str]]:
        """The key the CSR is made for (a private key, or a TokenKey) and where it is (its path, or its token reference);
        a new key is on disk before anything is sent."""
        decl = plan.decl
        if decl.uses_token:
            # key_backend pkcs11: a TokenKey, and its reference for the state file.
            key = decl.token_key if plan.key_plan == 'reuse' else decl.keystore.generate(decl.private_key_type or DEFAULT_KEY_TYPE)
            return key, decl.keystore.ref(key)
        if plan.key_plan == 'reuse':
            return decl.key, decl.private_key_path
        key = _crypto.generate_private_key(decl.private_key_type or DEFAULT_KEY_TYPE)
        path = decl.private_key_path if plan.key_plan == 'generate_in_place' else decl.next_key_path
        if plan.key_plan == 'generate_in_place' and os.path.exists(path):
            # Backstop: the key was absent when this run read its files under the lock; something outside
            # the lock wrote it since. Never overwrite a private key.
            raise KsefError('Private key %s of certificate %s appeared while this run was preparing to enroll (it '
                            'did not exist when the files were read under the lock); nothing was sent and the file '
                            'was left as it is. Check what wrote it, then run again'
                            % (path, decl.label))
        _crypto.write_private_key(self.module, path, key, decl.private_key_passphrase)
        if plan.key_plan == 'generate_in_place':
            decl.key = key
        return key, path
