# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The operations of the host-side module ksef_deploy_host (info, csr, install, pkcs12, remove, directory, prepare,
sign).

Each takes a Host (the module's parameters with literal, checked paths and the backend chosen on first use)
and returns the module's result. Check mode is decided here: every change is predicted, none is made.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import os
import stat
from typing import Any, Dict, Optional, Union

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ksef.certificates.plugins.module_utils import _files as files
from ansible_collections.ksef.certificates.plugins.module_utils._host.checks import (
    CONTROL_CHARACTERS,
    OPENSSL_PASSPHRASE_MAX_BYTES,
    enrollment_data_problems,
    passphrase_problem,
    text_problem,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._host.backend import (
    CertificateFacts,
    CryptographyBackend,
    OpensslBackend,
    csr_request_info,
    select_backend,
)
from ansible_collections.ksef.certificates.plugins.module_utils._pem import certificate_der, der_to_pem, pem_ders, pkcs12_algorithms_current
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    SIGN_DATA_MAX_BYTES,
    SIGNATURE_SCHEMES,
    format_datetime,
    renewal_due,
)

PATH_OPTIONS = ('key_path', 'next_key_path', 'csr_path', 'certificate_path', 'pkcs12_path')


class Host:
    """The module's parameters with literal, checked paths, and the backend chosen on first use."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self._backend = None
        self.paths = {}
        for option in PATH_OPTIONS:
            value = self.params.get(option)
            if value:
                self.paths[option] = self.literal_path(value, option)
        if 'key_path' in self.paths:
            self.paths.setdefault('next_key_path', self.paths['key_path'] + '.next')
        if 'next_key_path' in self.paths:
            self.paths.setdefault('csr_path', self.paths['next_key_path'] + '.csr')
        self.uid = files.resolve_owner(self.params.get('owner'))
        self.gid = files.resolve_group(self.params.get('group'))

    @staticmethod
    def literal_path(value: Any, what: str) -> str:
        problem = text_problem(value, what)
        if problem is not None:
            raise KsefError(problem)
        if value.startswith('~'):
            value = os.path.expanduser(value)
        # Absolute, so that no path can be read by openssl as an option.
        return os.path.abspath(value)

    def path(self, option: str) -> str:
        if option not in self.paths:
            raise KsefError('operation=%s needs %s' % (self.params['operation'], option))
        return self.paths[option]

    def mode(self, option: str) -> int:
        return files.parse_mode(self.params[option], option)

    def choose_backend(self) -> Union[CryptographyBackend, OpensslBackend]:
        if self._backend is None:
            self._backend = select_backend(self.module, self.params['backend'], self.params['openssl_path'])
        return self._backend

    @property
    def backend(self) -> Union[CryptographyBackend, OpensslBackend]:
        return self.choose_backend()

    def backend_name(self) -> str:
        return self._backend.name if self._backend is not None else ''

    # A file whose directory does not exist (yet: check mode on a first run) is a missing file, as for info.
    def key_public_der(self, path: str) -> Optional[bytes]:
        # read_file refuses what is not a regular file (a FIFO, a device, a link) by name; an empty file is no key.
        data = files.read_file(path) if files.status(path) is not None else None
        return self.backend.key_public_der(data) if data else None

    def certificate_facts(self, path: str) -> Optional[CertificateFacts]:
        der = certificate_der(files.read_file(path)) if files.status(path) is not None else None
        return self.backend.certificate(der) if der else None

    def ensure_attributes(self, path: str, mode: Optional[int], uid: Optional[int] = None, gid: Optional[int] = None) -> bool:
        """Set mode, owner and group (the module's, unless given) of an existing file (on its descriptor, never
        through a link); True when they differed."""
        uid = self.uid if uid is None else uid
        gid = self.gid if gid is None else gid
        return files.ensure_attributes(path, mode, uid, gid, check_mode=self.check_mode)

    def warn_writable_directory(self, path: str) -> None:
        """Warn when the directory of a key can be written by others: they could plant or swap the key."""
        warning = files.writable_by_others(os.path.dirname(path))
        if warning:
            self.module.warn(warning)

    def write(self, path: str, data: bytes, mode: int) -> bool:
        """Write data unless the file already holds it; then its attributes. True when something changed."""
        if files.read_file(path) == data:
            return self.ensure_attributes(path, mode)
        if not self.check_mode:
            files.write_atomic(path, data, mode, self.uid, self.gid)
        return True


def _non_empty(path):
    info = files.status(path)
    return info is not None and info.st_size > 0


def _pem_bytes(content, what):
    """PEM text given as a parameter -> bytes ending in one newline; only newlines may be control characters."""
    text = content.replace('\r\n', '\n').strip()
    if not _is_ascii(text) or CONTROL_CHARACTERS.search(text.replace('\n', '')):
        raise KsefError('%s is not PEM text' % what)
    return (text + '\n').encode('ascii')


def _is_ascii(text):
    try:
        text.encode('ascii')
    except UnicodeEncodeError:
        return False
    return True


def inspect_certificate(host: Host, key_path: str, next_key_path: str, certificate_path: str,
                        renew_before_days: Optional[int]) -> Dict[str, Any]:
    """What a deployed key, its .next key and certificate are (changes nothing)."""
    cert = host.certificate_facts(certificate_path)
    result = dict(
        key_exists=_non_empty(key_path),
        next_key_exists=_non_empty(next_key_path),
        certificate_exists=files.exists(certificate_path),
        certificate_parsed=cert is not None,
        certificate_matches_key=False,
        certificate_matches_next_key=False,
        serial_number='', valid_to='', fingerprint_sha256='', renewal_due=None, certificate_pem='',
    )
    if cert is not None:
        result.update(
            certificate_matches_key=host.key_public_der(key_path) == cert.public_key_der,
            certificate_matches_next_key=host.key_public_der(next_key_path) == cert.public_key_der,
            serial_number=cert.serial_number,
            valid_to=format_datetime(cert.valid_to),
            fingerprint_sha256=hashlib.sha256(cert.der).hexdigest(),
            # Public: the controller proves a deployed successor with it (ksef_certificate_proof).
            certificate_pem=der_to_pem(cert.der, 'CERTIFICATE').decode('ascii'),
            renewal_due=renewal_due(cert.valid_to, datetime.datetime.now(datetime.timezone.utc), renew_before_days),
        )
    return result


def run_info(host: Host) -> Dict[str, Any]:
    found = inspect_certificate(host, host.path('key_path'), host.path('next_key_path'), host.path('certificate_path'),
                                host.params['renew_before_days'])
    return dict(changed=False, **found)


def run_prepare(host: Host) -> Dict[str, Any]:
    """The role's one call per host: create the missing directories, inspect every key-on-host certificate, and
    keep the declared mode, owner and group of each installed pair (a certificate that carries its key's public
    key and has no .next key of its own waiting); changed when a directory or an attribute was (or would be) set."""
    result = run_directory(host)
    inspected = []
    # A refused file (a link, a FIFO, ...) of one certificate does not hide another's: every one is inspected and
    # the host fails once, naming them all.
    problems = []
    for entry in host.params['certificates']:
        try:
            inspected.append(_prepare_one(host, entry))
        except (KsefError, files.HostFileError) as exc:
            problems.append(str(exc))
    if problems:
        raise KsefError('; '.join(problems))
    changed = result['changed'] or any(found['attributes_changed'] for found in inspected)
    return dict(changed=changed, created=result['created'], certificates=inspected)


def _prepare_one(host, entry):
    key_path = host.literal_path(entry['key_path'], 'certificates.key_path')
    next_key_path = host.literal_path(entry.get('next_key_path') or key_path + '.next', 'certificates.next_key_path')
    certificate_path = host.literal_path(entry['certificate_path'], 'certificates.certificate_path')
    found = inspect_certificate(host, key_path, next_key_path, certificate_path, entry['renew_before_days'])
    found['attributes_changed'] = []
    installed = found['certificate_matches_key'] and not found['certificate_matches_next_key']
    if installed:
        uid, gid = files.resolve_owner(entry.get('owner')), files.resolve_group(entry.get('group'))
        for path, option in ((certificate_path, 'certificate_mode'), (key_path, 'key_mode')):
            mode = files.parse_mode(entry[option], 'certificates.' + option)
            if host.ensure_attributes(path, mode, uid, gid):
                found['attributes_changed'].append(path)
    return found


def run_csr(host: Host) -> Dict[str, Any]:
    problems = enrollment_data_problems(host.params.get('enrollment_data') or {})
    if problems:
        raise KsefError('Cannot make a CSR from this enrollment data: %s' % '; '.join(problems))
    next_key_path, csr_path = host.path('next_key_path'), host.path('csr_path')
    # A .next key that holds a key is reused: an earlier run may have enrolled it already, and KSeF then holds
    # a certificate for it that ksef_certificate finds by its public key (instead of enrolling again). Only a
    # private file this module could have written is reused: a key another user planted is never certified.
    host.warn_writable_directory(next_key_path)
    generated = _discard_unsafe_next_key(host, next_key_path) or host.key_public_der(next_key_path) is None
    if generated:
        if host.check_mode:
            return dict(changed=True, csr=None, next_key_generated=True)
        key_pem = host.backend.generate_key(host.params['key_type'])
        files.write_atomic(next_key_path, key_pem, files.PRIVATE_MODE, host.uid, host.gid)
        csr = host.backend.csr_pem(key_pem, host.params['enrollment_data'], next_key_path)
    else:
        csr = host.backend.csr_pem(files.read_file(next_key_path), host.params['enrollment_data'], next_key_path)
        # A run that made the CSR and then left the renewal for later (deferred) finds it again: the same request
        # is kept, so the host reports no change (a fresh ECDSA signature would differ in every run).
        kept = _same_csr_on_disk(host, csr_path, csr)
        if kept is not None:
            return dict(changed=host.ensure_attributes(csr_path, host.mode('certificate_mode')), csr=kept.decode('ascii'),
                        next_key_generated=False)
    if not host.check_mode:
        files.write_atomic(csr_path, csr, host.mode('certificate_mode'), host.uid, host.gid)
    return dict(changed=True, csr=csr.decode('ascii'), next_key_generated=generated)


def _same_csr_on_disk(host, csr_path, csr):
    """The CSR file's content when it is a regular file holding a correctly signed CSR that asks for exactly what
    `csr` asks for (subject, public key, attributes), else None."""
    info = files.status(csr_path)
    if info is None or not stat.S_ISREG(info.st_mode):
        return None
    on_disk = files.read_file(csr_path)
    wanted, found = pem_ders(csr, 'CERTIFICATE REQUEST'), pem_ders(on_disk, 'CERTIFICATE REQUEST')
    if len(found) != 1 or not wanted or csr_request_info(found[0]) is None:
        return None
    if csr_request_info(found[0]) != csr_request_info(wanted[0]) or not host.backend.csr_signature_valid(found[0]):
        return None
    return on_disk


def _discard_unsafe_next_key(host, next_key_path):
    """Remove a .next key that is not a private file of the expected owner (warn); True when it was unsafe."""
    if files.status(next_key_path) is None:
        return False
    problem = files.private_file_problem(next_key_path, host.uid)
    if problem is None:
        return False
    host.module.warn('The next key %s is not reused (%s): another user may have placed it, so a new key is made'
                     % (next_key_path, problem))
    if not host.check_mode:
        files.remove(next_key_path)
    return True


def run_install(host: Host) -> Dict[str, Any]:
    params = host.params
    key_path, next_key_path = host.path('key_path'), host.path('next_key_path')
    certificate_path = host.path('certificate_path')
    key_mode, certificate_mode = host.mode('key_mode'), host.mode('certificate_mode')
    changed = False
    # Certificate first, then the key: when a run stops in between, the certificate matches the .next key
    # and the next run finishes the move without calling KSeF.
    if params.get('certificate_content'):
        data = _pem_bytes(params['certificate_content'], 'certificate_content')
        if certificate_der(data) is None:
            raise KsefError('certificate_content is not a PEM certificate')
        changed |= host.write(certificate_path, data, certificate_mode)
    else:
        changed |= host.ensure_attributes(certificate_path, certificate_mode)

    if params['key_from_next'] and _non_empty(next_key_path):
        next_public = host.key_public_der(next_key_path)
        cert = None if host.check_mode and params.get('certificate_content') else host.certificate_facts(certificate_path)
        if host.check_mode and cert is None:
            changed = True
        elif cert is None or next_public is None or cert.public_key_der != next_public:
            raise KsefError('The certificate %s does not carry the public key of %s; the key is left where it is'
                            % (certificate_path, next_key_path))
        else:
            if not host.check_mode:
                files.move_atomic(next_key_path, key_path, key_mode, host.uid, host.gid)
            changed = True
        for leftover in (host.path('csr_path'), next_key_path + '.cnf'):
            if files.exists(leftover):
                changed = True
                if not host.check_mode:
                    files.remove(leftover)
    elif params.get('key_content'):
        data = _pem_bytes(params['key_content'], 'key_content')
        changed |= host.write(key_path, data, key_mode)
    else:
        changed |= host.ensure_attributes(key_path, key_mode)
    return dict(changed=changed)


def run_pkcs12(host: Host) -> Dict[str, Any]:
    params = host.params
    passphrase = params.get('pkcs12_passphrase')
    problem = passphrase_problem(passphrase)
    if problem is None and host.backend.name == 'openssl' and len(passphrase.encode('utf-8')) > OPENSSL_PASSPHRASE_MAX_BYTES:
        problem = ('The PKCS#12 passphrase is longer than the %d bytes the openssl command line reads; use a shorter '
                   'one or install cryptography on this host' % OPENSSL_PASSPHRASE_MAX_BYTES)
    name = params.get('pkcs12_name') or os.path.basename(host.path('certificate_path'))
    problem = problem or text_problem(name, 'pkcs12_name')
    if problem is not None:
        raise KsefError(problem)
    key_path, certificate_path = host.path('key_path'), host.path('certificate_path')
    pkcs12_path, mode = host.path('pkcs12_path'), host.mode('pkcs12_mode')
    cert = host.certificate_facts(certificate_path)
    key_public = host.key_public_der(key_path)
    if cert is None or key_public is None or cert.public_key_der != key_public:
        return dict(changed=False, built=False, reason='the certificate does not match the key: nothing to bundle')
    reason = _pkcs12_stale(host, pkcs12_path, passphrase, cert, key_public)
    if reason is None:
        return dict(changed=host.ensure_attributes(pkcs12_path, mode), built=False, reason='current')
    if not host.check_mode:
        bundle = host.backend.pkcs12(files.read_file(key_path), files.read_file(certificate_path), name, passphrase,
                                     certificate_path)
        files.write_atomic(pkcs12_path, bundle, mode, host.uid, host.gid)
    return dict(changed=True, built=True, reason=reason)


def _pkcs12_stale(host, pkcs12_path, passphrase, cert, key_public):
    """Why the bundle must be (re)built, or None when it is current."""
    data = files.read_file(pkcs12_path)
    if not data:
        return 'missing'
    if not pkcs12_algorithms_current(data):
        return 'not AES-256-CBC with PBKDF2 and a SHA-256 MAC'
    contents = host.backend.pkcs12_contents(data, passphrase)
    if contents is None:
        return 'does not open with the passphrase'
    certificates, bundled_public = contents
    if cert.der not in certificates or bundled_public != key_public:
        return 'holds another certificate or key'
    return None


def run_remove(host: Host) -> Dict[str, Any]:
    removed = []
    for path in host.params['paths']:
        path = host.literal_path(path, 'paths')
        if files.exists(path) and (host.check_mode or files.remove(path)):
            removed.append(path)
    return dict(changed=bool(removed), removed=removed)


def run_sign(host: Host) -> Dict[str, Any]:
    """Sign the given bytes with the deployed key (the key never leaves the host); changes nothing.

    The controller builds what is signed (a XAdES SignedInfo, a QR code II string) and checks the signature with
    the certificate; the host only signs bytes, in one of the schemes of _rules.SIGNATURE_SCHEMES."""
    scheme, data = host.params.get('scheme'), host.params.get('data')
    if scheme not in SIGNATURE_SCHEMES:
        raise KsefError('operation=sign needs scheme, one of %s' % ', '.join(SIGNATURE_SCHEMES))
    if not data:
        raise KsefError('operation=sign needs data (the bytes to sign, Base64)')
    if len(data) > 2 * SIGN_DATA_MAX_BYTES:
        raise KsefError('data is longer than the %d bytes operation=sign signs' % SIGN_DATA_MAX_BYTES)
    try:
        raw = base64.b64decode(data.encode('ascii'), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KsefError('data is not Base64')
    if len(raw) > SIGN_DATA_MAX_BYTES:
        raise KsefError('data is longer than the %d bytes operation=sign signs' % SIGN_DATA_MAX_BYTES)
    key_path = host.path('key_path')
    if files.status(key_path) is None:
        raise KsefError('The private key %s does not exist' % key_path)
    signature = host.backend.sign(files.read_file(key_path), scheme, raw, key_path)
    return dict(changed=False, signature=base64.b64encode(signature).decode('ascii'), scheme=scheme)


def run_directory(host: Host) -> Dict[str, Any]:
    created = []
    for entry in host.params['directories']:
        path = host.literal_path(entry['path'], 'directories.path')
        missing = [directory for directory in files.missing_directories(path) if directory not in created]
        if missing and not host.check_mode:
            files.create_directories(missing, files.parse_mode(entry['mode'], 'directories.mode'),
                                     files.resolve_owner(entry.get('owner')), files.resolve_group(entry.get('group')))
        created.extend(missing)
    return dict(changed=bool(created), created=created)


OPERATIONS = {
    'info': run_info,
    'csr': run_csr,
    'install': run_install,
    'pkcs12': run_pkcs12,
    'remove': run_remove,
    'directory': run_directory,
    'prepare': run_prepare,
    'sign': run_sign,
}
