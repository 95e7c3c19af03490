# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

# Local key material for KSeF certificates: keys, CSRs, certificate summaries, safe file writes.
# Nothing here talks to KSeF. Error messages name files and problems, never key material or passphrases.

import base64
import binascii
import datetime
import errno
import hashlib
import os
import re
import time
import traceback
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Union

from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.ksef.certificates.plugins.module_utils._errors import (
    KsefCredentialError,
    KsefInputError,
)
from ansible_collections.ksef.certificates.plugins.module_utils import _files
from ansible_collections.ksef.certificates.plugins.module_utils._files import sync_directory
from ansible_collections.ksef.certificates.plugins.module_utils._pem import (
    PRIVATE_KEY_PEM_LABELS,
    pem_blocks,
    pkcs12_algorithms_current,
)
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    DEFAULT_KEY_TYPE,
    KEY_TYPES,
    SUBJECT_LAYOUT,
    format_datetime,
    serial_number_text,
    subject_values,
)

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ObjectIdentifier
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True

if TYPE_CHECKING:  # the key types of the hints ('PrivateKey'): cryptography is optional at import time
    from ansible.module_utils.basic import AnsibleModule
    PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

try:
    # The only way to choose the ASN.1 string type of a name attribute; stable since cryptography 2.x.
    from cryptography.x509.name import _ASN1Type
except ImportError:
    _ASN1Type = None

RSA_KEY_SIZE = 2048
PRIVATE_KEY_MODE = 0o600
# Backups are named like AnsibleModule.backup_local names them (<file>.<pid>.<YYYY-MM-DD@HH:MM:SS>~), plus a
# counter when one process backs up the same file twice within a second.
BACKUP_SUFFIX = re.compile(r'\.(?P<pid>\d+)\.(?P<stamp>\d{4}-\d{2}-\d{2}@\d{2}:\d{2}:\d{2})(?:\.(?P<count>\d+))?~')
DEFAULT_BACKUP_KEEP = 5


def _string_type(name):
    if _ASN1Type is None:
        return None
    return getattr(_ASN1Type, name)


# ---------------------------------------------------------------------------------------------
# Private keys
# ---------------------------------------------------------------------------------------------

def generate_private_key(key_type: str = DEFAULT_KEY_TYPE) -> 'PrivateKey':
    """A new private key accepted by KSeF: EC on P-256 (default) or RSA 2048."""
    if key_type == 'ec':
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
    raise KsefInputError('Unsupported private key type %r; use one of: %s' % (key_type, ', '.join(KEY_TYPES)))


def key_type_of(key: Any) -> Optional[str]:
    """'ec' or 'rsa' for a private or public key; None for anything else."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return 'ec'
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return 'rsa'
    return None


def check_key_supported(key: Any, what: str = 'private key') -> None:
    """Raise KsefInputError unless the key is one KSeF certifies: RSA exactly 2048 bits or EC P-256."""
    kind = key_type_of(key)
    if kind == 'rsa':
        if key.key_size != RSA_KEY_SIZE:
            raise KsefInputError('The %s is RSA %d bits; KSeF accepts RSA keys of exactly %d bits or EC P-256 keys'
                                 % (what, key.key_size, RSA_KEY_SIZE))
        return
    if kind == 'ec':
        if not isinstance(key.curve, ec.SECP256R1):
            raise KsefInputError('The %s is EC on curve %s; KSeF accepts EC keys on P-256 (secp256r1) or RSA 2048 keys'
                                 % (what, key.curve.name))
        return
    raise KsefInputError('The %s is of type %s; KSeF accepts EC P-256 or RSA 2048 keys' % (what, type(key).__name__))


def _read_source(path_or_bytes, what):
    if isinstance(path_or_bytes, bytes):
        return path_or_bytes, what.replace(' file', '')
    try:
        with open(path_or_bytes, 'rb') as handle:
            return handle.read(), '%s %s' % (what, path_or_bytes)
    except (IOError, OSError) as exc:
        raise KsefCredentialError('Cannot read %s %s: %s' % (what, path_or_bytes, exc.strerror or to_native(exc)))


class KeyLoadError(Exception):
    """Why a private key could not be loaded; the caller words the message (it knows the option names).

    reason: 'no_pem_key' (PEM without a private key block), 'needs_passphrase', 'wrong_passphrase',
    'unsupported' (an algorithm cryptography does not know) or 'invalid'.
    """

    def __init__(self, reason: str) -> None:
        super(KeyLoadError, self).__init__(reason)
        self.reason = reason


def parse_private_key(data: bytes, passphrase: Optional[str] = None) -> 'PrivateKey':
    """The one private-key loader: PEM (the first private key block; a file may also hold certificates) or DER
    (PKCS#8 plain or encrypted, PKCS#1, SEC1, or a PKCS#12 bundle). A passphrase given for a key that is not
    encrypted is ignored. Raises KeyLoadError, whose text never holds the passphrase or key material."""
    password = to_bytes(passphrase, errors='surrogate_or_strict') if passphrase else None
    if b'-----BEGIN' in data:
        blocks = pem_blocks(data, PRIVATE_KEY_PEM_LABELS)
        if not blocks:
            raise KeyLoadError('no_pem_key')
        data = blocks[0]
        loaders = [serialization.load_pem_private_key]
    else:
        loaders = [serialization.load_der_private_key, _load_pkcs12_key]

    needs_passphrase = False
    wrong_passphrase = False
    for loader in loaders:
        try:
            return _call_key_loader(loader, data, password)
        except TypeError:
            # cryptography raises TypeError when the key is encrypted but no password was given.
            needs_passphrase = True
        except ValueError as exc:
            if password is not None and _looks_like_bad_password(exc):
                wrong_passphrase = True
        except UnsupportedAlgorithm:
            raise KeyLoadError('unsupported')
        except Exception:  # pylint: disable=broad-except  # cryptography raises others for exotic input
            if password is not None and _is_encrypted(data):
                raise KeyLoadError('wrong_passphrase')
            raise KeyLoadError('invalid')
    if needs_passphrase or password is None and _is_encrypted(data):
        raise KeyLoadError('needs_passphrase')
    if wrong_passphrase or password is not None and _is_encrypted(data):
        raise KeyLoadError('wrong_passphrase')
    raise KeyLoadError('invalid')


def load_private_key(path_or_bytes: Union[str, bytes], passphrase: Optional[str] = None) -> 'PrivateKey':
    """Load a declared private key (private_key_path) from a file path or bytes (parse_private_key).

    Raises KsefCredentialError with a message that never contains the passphrase or key material.
    """
    data, source = _read_source(path_or_bytes, 'private key file')
    return load_key_worded(data, passphrase, source, DECLARED_KEY_MESSAGES)


# What load_private_key says for each KeyLoadError reason ('invalid' also for any reason not listed).
DECLARED_KEY_MESSAGES = {
    'needs_passphrase': 'The %s is encrypted; set the private key passphrase',
    'wrong_passphrase': 'Cannot decrypt the %s: wrong passphrase',
    'unsupported': 'The %s uses an unsupported key algorithm',
    'invalid': 'Cannot load the %s: not a PEM/DER PKCS#8, PKCS#1, SEC1 or PKCS#12 private key',
}


def load_key_worded(data: bytes, passphrase: Optional[str], source: str, messages: Mapping[str, str]) -> 'PrivateKey':
    """parse_private_key, failing with KsefCredentialError(messages[reason] % source): each caller words the
    reasons with the option names it knows; a reason missing from messages gets messages['invalid']."""
    try:
        return parse_private_key(data, passphrase)
    except KeyLoadError as exc:
        raise KsefCredentialError(messages.get(exc.reason, messages['invalid']) % source)


def _call_key_loader(loader, data, password):
    try:
        return loader(data, password)
    except TypeError:
        if password is None:
            raise
        # A passphrase for a key that is not encrypted: the key is still usable as is.
        return loader(data, None)


def _load_pkcs12_key(data, password):
    key, dummy_cert, dummy_chain = pkcs12.load_key_and_certificates(data, password)
    if key is None:
        raise ValueError('PKCS#12 bundle without a private key')
    return key


def _looks_like_bad_password(exc):
    text = to_native(exc).lower()
    return 'password' in text or 'decrypt' in text or 'mac' in text


# DER EncryptedPrivateKeyInfo names its algorithm: PBES2 (1.2.840.113549.1.5.13) or a PKCS#12 PBE
# (1.2.840.113549.1.12.1.x). A wrong passphrase sometimes decrypts to garbage that fails as 'not a key'
# rather than as a bad password; the OID tells it was an encrypted key all the same.
_ENCRYPTED_DER_OIDS = (b'\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d', b'\x06\x0a\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01')


def _is_encrypted(data):
    return b'ENCRYPTED' in data or (b'-----BEGIN' not in data and any(oid in data[:64] for oid in _ENCRYPTED_DER_OIDS))


def private_key_to_pem(key: 'PrivateKey', passphrase: Optional[str] = None) -> bytes:
    """PKCS#8 PEM bytes, encrypted with the best available algorithm when a passphrase is given."""
    if passphrase:
        encryption = serialization.BestAvailableEncryption(to_bytes(passphrase, errors='surrogate_or_strict'))
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_private_key(module: 'AnsibleModule', path: str, key: 'PrivateKey', passphrase: Optional[str] = None, mode: int = PRIVATE_KEY_MODE) -> None:
    """Write a private key atomically; the file is never readable by others, not even for a moment."""
    write_file_atomic(module, path, private_key_to_pem(key, passphrase), mode)


# ---------------------------------------------------------------------------------------------
# Public keys and CSRs
# ---------------------------------------------------------------------------------------------

def public_key_der(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_fingerprint(public_key: Any) -> str:
    """Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo; accepts a public or private key."""
    if hasattr(public_key, 'public_key'):
        public_key = public_key.public_key()
    return hashlib.sha256(public_key_der(public_key)).hexdigest()


def build_subject(enrollment_data: Mapping[str, Any]) -> 'x509.Name':
    """x509.Name built exactly from GET /certificates/enrollments/data, in the C# client's order."""
    rdns = []
    for layout, value in subject_values(enrollment_data):
        oid = ObjectIdentifier(layout.oid)
        asn1_type = _string_type(layout.string_type)
        if asn1_type is None:
            attribute = x509.NameAttribute(oid, value)
        else:
            attribute = x509.NameAttribute(oid, value, _type=asn1_type)
        rdns.append(x509.RelativeDistinguishedName([attribute]))
    if not rdns:
        raise KsefInputError('KSeF returned empty enrollment data; cannot build a certificate request subject')
    return x509.Name(rdns)


def build_csr(key: 'PrivateKey', enrollment_data: Mapping[str, Any]) -> bytes:
    """DER PKCS#10 request: RSA signed with PKCS#1 v1.5 SHA-256, EC with ECDSA SHA-256."""
    check_key_supported(key)
    builder = x509.CertificateSigningRequestBuilder().subject_name(build_subject(enrollment_data))
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def load_csr(data: bytes, source: str = 'certificate signing request') -> 'x509.CertificateSigningRequest':
    """Parse a CSR given as PEM, DER or base64 of DER; checks its signature and key."""
    if isinstance(data, str):
        data = to_bytes(data, errors='surrogate_or_strict')
    csr = None
    try:
        if b'-----BEGIN' in data:
            csr = x509.load_pem_x509_csr(data.strip())
        else:
            # DER first, on the raw bytes: stripping could cut a DER value that ends in a whitespace byte.
            try:
                csr = x509.load_der_x509_csr(data)
            except ValueError:
                csr = x509.load_der_x509_csr(base64.b64decode(data.strip(), validate=False))
    except (ValueError, TypeError, binascii.Error):
        raise KsefInputError('Cannot parse the %s: expected PEM, DER or base64 of a DER PKCS#10 request' % source)
    if not csr.is_signature_valid:
        raise KsefInputError('The %s has an invalid signature' % source)
    check_key_supported(csr.public_key(), what='key of the %s' % source)
    return csr


def read_csr_file(path: str) -> 'x509.CertificateSigningRequest':
    data, source = _read_source(path, 'certificate signing request file')
    return load_csr(data, source=source)


def csr_public_key(csr_bytes: 'Union[bytes, x509.CertificateSigningRequest]') -> Any:
    """Public key of a CSR given as bytes (PEM, DER or base64 DER) or an already parsed CSR."""
    if isinstance(csr_bytes, (bytes, str)):
        return load_csr(csr_bytes).public_key()
    return csr_bytes.public_key()


def csr_der(csr: 'x509.CertificateSigningRequest') -> bytes:
    return csr.public_bytes(serialization.Encoding.DER)


def csr_subject_differences(csr: 'x509.CertificateSigningRequest', enrollment_data: Mapping[str, Any]) -> List[str]:
    """Names of the enrollment data fields whose value the CSR subject does not carry exactly."""
    present = {}
    for attribute in csr.subject:
        present.setdefault(attribute.oid.dotted_string, []).append(attribute.value)
    expected = dict((layout.field, value) for layout, value in subject_values(enrollment_data))
    differences = []
    for layout in SUBJECT_LAYOUT:
        actual = present.pop(layout.oid, [])
        if actual != ([expected[layout.field]] if layout.field in expected else []):
            differences.append(layout.field)
    if present:
        differences.append('other attributes (%s)' % ', '.join(sorted(present)))
    return differences


# ---------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------

def load_certificate(data: bytes) -> 'x509.Certificate':
    """Parse an X.509 certificate from PEM, DER or base64 of DER; raises ValueError when it cannot."""
    if isinstance(data, str):
        data = to_bytes(data, errors='surrogate_or_strict')
    if b'-----BEGIN' in data:
        return x509.load_pem_x509_certificate(data.strip())
    # DER first, on the raw bytes: stripping could cut a DER value that ends in a whitespace byte.
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        try:
            decoded = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError('not a PEM, DER or base64 DER certificate')
        return x509.load_der_x509_certificate(decoded)


def read_certificate_file(path: str) -> 'Optional[x509.Certificate]':
    """The certificate in a file, or None when the file is missing or does not hold a certificate."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    try:
        return load_certificate(data)
    except ValueError:
        return None


def certificate_to_pem(cert: 'x509.Certificate') -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def serial_hex(cert: 'x509.Certificate') -> str:
    """Serial number in KSeF's notation: upper-case hex, at least 16 digits."""
    return serial_number_text(cert.serial_number)


def _utc(value):
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def certificate_not_before(cert: 'x509.Certificate') -> datetime.datetime:
    value = getattr(cert, 'not_valid_before_utc', None)
    return _utc(value if value is not None else cert.not_valid_before)


def certificate_not_after(cert: 'x509.Certificate') -> datetime.datetime:
    value = getattr(cert, 'not_valid_after_utc', None)
    return _utc(value if value is not None else cert.not_valid_after)


def isoformat_utc(value: Any) -> Any:
    return format_datetime(value)


def certificate_summary(cert: 'x509.Certificate') -> Dict[str, Any]:
    """Facts about a certificate that are safe to show: no key material."""
    return {
        'serial_number': serial_hex(cert),
        'subject': cert.subject.rfc4514_string(),
        'valid_from': isoformat_utc(certificate_not_before(cert)),
        'valid_to': isoformat_utc(certificate_not_after(cert)),
        'fingerprint_sha256': hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        'public_key_sha256': public_key_fingerprint(cert.public_key()),
    }


# PBKDF2 iterations of PKCS#12 bundles, the same for both host backends and the controller (the openssl backend
# used 2,048): strong for a file, yet a bundle is still checked on every run within a fraction of a second.
PKCS12_KDF_ROUNDS = 50000
# cryptography 38+ lets the PKCS#12 algorithms be chosen; before, BestAvailableEncryption meant 3DES and SHA-1.
HAS_PKCS12_BUILDER = HAS_CRYPTOGRAPHY and hasattr(serialization.PrivateFormat, 'PKCS12') and hasattr(pkcs12, 'PBES')


def pkcs12_encryption(passphrase: str) -> Any:
    """AES-256-CBC keys and certificates (PBES2, PBKDF2 with HMAC-SHA256) and a SHA-256 MAC, chosen explicitly."""
    if not HAS_PKCS12_BUILDER:
        raise KsefInputError('Writing a passphrase-protected PKCS#12 file needs cryptography 38 or newer (for '
                             'AES-256-CBC, PBKDF2 and a SHA-256 MAC instead of 3DES and SHA-1); upgrade cryptography')
    return (serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(PKCS12_KDF_ROUNDS)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(to_bytes(passphrase, errors='surrogate_or_strict')))


def pkcs12_bundle(name: str, key: 'PrivateKey', cert: 'x509.Certificate', passphrase: Optional[str] = None) -> bytes:
    """PKCS#12 bytes holding the key and its certificate, encrypted (pkcs12_encryption) when a passphrase is given."""
    encryption = pkcs12_encryption(passphrase) if passphrase else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(to_bytes(name, errors='surrogate_or_strict'), key, cert, None, encryption)


def pkcs12_matches(path: str, passphrase: Optional[str], key: 'PrivateKey', cert: 'x509.Certificate') -> bool:
    """Whether the PKCS#12 file at path opens with passphrase and holds exactly this key and certificate."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
        password = to_bytes(passphrase, errors='surrogate_or_strict') if passphrase else None
        bundled_key, bundled_cert, dummy_chain = pkcs12.load_key_and_certificates(data, password)
    except (IOError, OSError, ValueError, TypeError):
        return False
    if passphrase and not pkcs12_algorithms_current(data):
        return False   # 3DES/RC2 or a SHA-1 MAC: rebuilt with pkcs12_encryption
    if bundled_key is None or bundled_cert is None or key is None:
        return False
    return (bundled_cert.public_bytes(serialization.Encoding.DER) == cert.public_bytes(serialization.Encoding.DER) and
            public_key_fingerprint(bundled_key) == public_key_fingerprint(key))


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def write_file_atomic(module: 'AnsibleModule', path: str, data: bytes, mode: int, file_args: Optional[Dict[str, Any]] = None) -> None:
    """Replace path with data in one rename; the content is never visible with a wider mode than 0600.

    The write is _files.write_atomic, the one private-file writer of the collection: a temporary file
    created 0600 with O_EXCL|O_NOFOLLOW next to the target, filled, synced and renamed over it through a
    directory descriptor; a link or non-regular file at path is refused. The mode is widened (a certificate's
    0644) on the new file's descriptor only once the content is in place. file_args (from
    module.load_file_common_arguments) are applied afterwards, e.g. owner and group.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise KsefInputError('Directory %s for %s does not exist' % (directory, path))
    try:
        _files.write_atomic(path, data, mode & PRIVATE_KEY_MODE)
        _files.ensure_attributes(path, mode)
    except _files.HostFileError as exc:
        raise KsefInputError(str(exc))
    if file_args:
        module.set_fs_attributes_if_different(file_args, False, expand=False)  # file_args['path'] is literal


def move_file_atomic(module: 'AnsibleModule', source: str, path: str, mode: int) -> None:
    """Put an already written file (e.g. a rotated key) at path without widening its mode; source goes."""
    try:
        _files.move_atomic(source, path, mode & PRIVATE_KEY_MODE)
        _files.ensure_attributes(path, mode)
    except _files.HostFileError as exc:
        raise KsefInputError(str(exc))


def backup_file(path: str, keep: Optional[int] = DEFAULT_BACKUP_KEEP, now: Optional[float] = None) -> str:
    """Copy path to a new backup file next to it; return the backup's path.

    The backup is created 0600 with O_EXCL before a byte is written (it may hold a private key, and the
    copy is never readable by others, whatever the umask), synced, and given the source's modification
    time. Then only the `keep` newest backups of path are kept (None keeps all).
    """
    stamp = time.strftime('%Y-%m-%d@%H:%M:%S', time.localtime(now))
    base = '%s.%d.%s' % (path, os.getpid(), stamp)
    with open(path, 'rb') as source:
        data = source.read()
        source_stat = os.fstat(source.fileno())
    count = 0
    while True:
        backup_path = base + ('.%d~' % count if count else '~')
        try:
            fd = os.open(backup_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0),
                         PRIVATE_KEY_MODE)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
            count += 1
            continue
        break
    try:
        # O_CREAT's mode is narrowed by the umask only; this makes it exactly 0600 even under umask 0.
        os.fchmod(fd, PRIVATE_KEY_MODE)
        with os.fdopen(fd, 'wb') as handle:
            fd = None
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        if fd is not None:
            os.close(fd)
        os.unlink(backup_path)
        raise
    os.utime(backup_path, (source_stat.st_atime, source_stat.st_mtime))
    sync_directory(os.path.dirname(os.path.abspath(backup_path)))
    if keep is not None:
        prune_backups(path, keep)
    return backup_path


def list_backups(path: str) -> List[str]:
    """The backups of path (made by backup_file or AnsibleModule.backup_local), oldest first."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = os.path.basename(path)
    found = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if not name.startswith(prefix):
            continue
        match = BACKUP_SUFFIX.fullmatch(name[len(prefix):])
        if match:
            found.append(((match.group('stamp'), int(match.group('count') or 0), int(match.group('pid'))),
                          os.path.join(directory, name)))
    return [backup for dummy_key, backup in sorted(found)]


def prune_backups(path: str, keep: int) -> List[str]:
    """Remove all but the `keep` newest backups of path; return the removed paths."""
    backups = list_backups(path)
    removed = backups[:max(0, len(backups) - keep)]
    for backup in removed:
        try:
            os.unlink(backup)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
    return removed
