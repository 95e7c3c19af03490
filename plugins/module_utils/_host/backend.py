# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Key, CSR, certificate and PKCS#12 operations of ksef_deploy_host, with two backends side by side.

- CryptographyBackend: the Python cryptography library (38 or newer), when the host has it; it reuses
  _crypto (key generation, the CSR subject built from _rules.SUBJECT_LAYOUT, certificate facts).
- OpensslBackend: the openssl command line (1.1.1 or newer), run with module.run_command and an argv list:
  no shell, no $VAR expansion. Key files are named by path; passphrases and private keys go through
  standard input, never through the command line or the environment. The CSR subject comes from the same
  _rules.SUBJECT_LAYOUT, as a -subj argument.

Both return the same values (DER public keys, CertificateFacts), so the module's decisions do not depend on
the backend. Messages name files and problems, never key material or passphrases.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import datetime
import os
import re
import tempfile
from typing import Any, List, Mapping, Optional, Tuple, Union

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.plugins.module_utils._pem import der_to_pem, pem_blocks, pem_ders
from ansible_collections.ksef.certificates.plugins.module_utils._rules import (
    QR_CODE_II_PSS_SALT_LENGTH,
    SIGNATURE_SCHEMES,
    serial_number_text,
    subject_values,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.hazmat.primitives.serialization import pkcs12
except ImportError:
    pass  # CryptographyBackend.usable() is False then (_crypto.HAS_PKCS12_BUILDER)

BACKENDS = ('auto', 'cryptography', 'openssl')

# The certificate facts both backends return. valid_to: aware UTC datetime; public_key_der: SubjectPublicKeyInfo.
CertificateFacts = collections.namedtuple('CertificateFacts', 'der serial_number valid_to public_key_der')
# What a PKCS#12 bundle holds: the DER of its certificates and the DER public key of its key (None without a key).
Pkcs12Contents = Tuple[List[bytes], Optional[bytes]]


class HostCryptoError(KsefError):
    """A key, CSR, certificate or PKCS#12 operation failed (message without secrets)."""


# The algorithm identifiers of a SubjectPublicKeyInfo (DER-encoded OIDs): rsaEncryption, id-ecPublicKey, P-256.
_RSA_OID = bytes.fromhex('06092a864886f70d010101')
_EC_OID = bytes.fromhex('06072a8648ce3d0201')
_P256_OID = bytes.fromhex('06082a8648ce3d030107')
P256_FIELD_BYTES = 32


def spki_key_type(public_key_der: bytes) -> Tuple[Optional[str], bool]:
    """('rsa' | 'ec', is P-256) of a SubjectPublicKeyInfo, from its algorithm identifier (the first OIDs)."""
    head = public_key_der[:40]
    if _RSA_OID in head:
        return 'rsa', False
    if _EC_OID in head:
        return 'ec', _P256_OID in head
    return None, False


def check_scheme(scheme: str, key_type: Optional[str], is_p256: bool, key_path: str) -> None:
    """HostCryptoError when the key at key_path cannot make a `scheme` signature."""
    if scheme not in SIGNATURE_SCHEMES:
        raise HostCryptoError('Unknown signature scheme %r; use one of %s' % (scheme, ', '.join(SIGNATURE_SCHEMES)))
    if key_type != SIGNATURE_SCHEMES[scheme]:
        raise HostCryptoError('The key %s is %s; the signature scheme %s needs an %s key'
                              % (key_path, (key_type or 'of an unknown type').upper(), scheme, SIGNATURE_SCHEMES[scheme].upper()))
    if scheme == 'ecdsa_p256_p1363' and not is_p256:
        raise HostCryptoError('The key %s is not on the P-256 curve, which the signature scheme %s needs' % (key_path, scheme))


def _der_length(data, offset):
    """(length, offset of the content) of the DER element whose length starts at data[offset]."""
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7f
    return int.from_bytes(data[offset + 1:offset + 1 + count], 'big'), offset + 1 + count


def csr_request_info(csr_der: bytes) -> Optional[bytes]:
    """The CertificationRequestInfo of a DER CSR (its subject, public key and attributes: all it asks for, without
    the signature), or None when the data is not a CSR's SEQUENCE."""
    try:
        if csr_der[0] != 0x30:
            return None
        dummy_length, start = _der_length(csr_der, 1)
        if csr_der[start] != 0x30:
            return None
        length, content = _der_length(csr_der, start + 1)
    except IndexError:
        return None
    return csr_der[start:content + length] if content + length <= len(csr_der) else None


def ecdsa_der_to_raw(der: bytes, field_bytes: int) -> bytes:
    """An ECDSA signature (DER SEQUENCE of the INTEGERs r and s) as r||s, each `field_bytes` long."""
    try:
        if der[0] != 0x30:
            raise ValueError
        dummy_length, offset = _der_length(der, 1)
        numbers = []
        for dummy_index in range(2):
            if der[offset] != 0x02:
                raise ValueError
            length, offset = _der_length(der, offset + 1)
            numbers.append(int.from_bytes(der[offset:offset + length], 'big'))
            offset += length
        return b''.join(number.to_bytes(field_bytes, 'big') for number in numbers)
    except (ValueError, IndexError, OverflowError):
        raise HostCryptoError('openssl printed an ECDSA signature that is not DER')


# ---------------------------------------------------------------------------------------------
# cryptography
# ---------------------------------------------------------------------------------------------

class CryptographyBackend:
    name = 'cryptography'

    @staticmethod
    def usable() -> bool:
        return _crypto.HAS_PKCS12_BUILDER

    @staticmethod
    def _load_key(key_data):
        try:
            return _crypto.load_private_key(key_data)
        except KsefError:
            return None

    def key_public_der(self, key_data: bytes) -> Optional[bytes]:
        key = self._load_key(key_data)
        return None if key is None else _crypto.public_key_der(key.public_key())

    def certificate(self, der: bytes) -> Optional[CertificateFacts]:
        try:
            cert = x509.load_der_x509_certificate(der)
            return CertificateFacts(der, _crypto.serial_hex(cert), _crypto.certificate_not_after(cert),
                                    _crypto.public_key_der(cert.public_key()))
        except ValueError:
            return None

    def generate_key(self, key_type: str) -> bytes:
        return _crypto.private_key_to_pem(_crypto.generate_private_key(key_type))

    def csr_pem(self, key_data: bytes, enrollment_data: Mapping[str, Any], key_path: str) -> bytes:
        key = self._load_key(key_data)
        if key is None:
            raise HostCryptoError('Cannot load the private key %s to sign the CSR' % key_path)
        return der_to_pem(_crypto.build_csr(key, enrollment_data), 'CERTIFICATE REQUEST')

    @staticmethod
    def csr_signature_valid(csr_der: bytes) -> bool:
        try:
            return x509.load_der_x509_csr(csr_der).is_signature_valid
        except ValueError:
            return False

    def pkcs12(self, key_data: bytes, certificate_data: bytes, name: str, passphrase: Optional[str], certificate_path: str) -> bytes:
        key = self._load_key(key_data)
        try:
            cert = _crypto.load_certificate(certificate_data)
        except ValueError:
            cert = None
        if key is None or cert is None:
            raise HostCryptoError('Cannot load the key and certificate %s to build the PKCS#12 bundle' % certificate_path)
        return _crypto.pkcs12_bundle(name, key, cert, passphrase)

    def sign(self, key_data: bytes, scheme: str, data: bytes, key_path: str) -> bytes:
        """The `scheme` signature (_rules.SIGNATURE_SCHEMES) of `data` by the key in key_data."""
        key = self._load_key(key_data)
        if key is None:
            raise HostCryptoError('Cannot load the private key %s to sign' % key_path)
        if isinstance(key, rsa.RSAPrivateKey):
            check_scheme(scheme, 'rsa', False, key_path)
            if scheme == 'rsa_pss_sha256':
                return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=QR_CODE_II_PSS_SALT_LENGTH),
                                hashes.SHA256())
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, ec.EllipticCurvePrivateKey):
            check_scheme(scheme, 'ec', isinstance(key.curve, ec.SECP256R1), key_path)
            r_value, s_value = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            size = (key.curve.key_size + 7) // 8
            return r_value.to_bytes(size, 'big') + s_value.to_bytes(size, 'big')
        raise HostCryptoError('The key %s is neither RSA nor EC' % key_path)

    def pkcs12_contents(self, data: bytes, passphrase: Optional[str]) -> Optional[Pkcs12Contents]:
        """(certificate DER list, public key DER) of the bundle; None when it does not open with passphrase."""
        try:
            key, cert, chain = pkcs12.load_key_and_certificates(data, to_bytes(passphrase, errors='surrogate_or_strict'))
        except (ValueError, TypeError):
            return None
        certificates = [item.public_bytes(serialization.Encoding.DER) for item in ([cert] if cert else []) + list(chain or [])]
        return certificates, (_crypto.public_key_der(key.public_key()) if key is not None else None)


# ---------------------------------------------------------------------------------------------
# openssl command line
# ---------------------------------------------------------------------------------------------

# The only [req] settings the CSR needs; the subject itself is the -subj argument. No user value is written here.
_REQ_CONFIG = b'''[ req ]
distinguished_name = ksef_subject
prompt = no
utf8 = yes
string_mask = utf8only
[ ksef_subject ]
'''

_MONTHS = ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')
_OPENSSL_DATE = re.compile(r'(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)? '
                           r'(?P<year>\d{4}) GMT')


def parse_openssl_date(text: str) -> datetime.datetime:
    """'Dec  4 20:39:28 2027 GMT' (openssl x509 -enddate, in every locale) -> aware UTC datetime."""
    match = _OPENSSL_DATE.fullmatch(text.strip())
    if not match or match.group('month') not in _MONTHS:
        raise HostCryptoError('openssl printed an unexpected date: %r' % text)
    hour, minute, second = (int(part) for part in match.group('time').split(':'))
    return datetime.datetime(int(match.group('year')), _MONTHS.index(match.group('month')) + 1, int(match.group('day')),
                             hour, minute, second, tzinfo=datetime.timezone.utc)


def subject_argument(enrollment_data: Mapping[str, Any]) -> str:
    """The -subj argument for the enrollment data: /OID=value per RDN, in the layout of _rules.

    openssl's parser treats a backslash as "the next character is literal", '/' as the RDN separator
    and '+' as the multi-valued RDN separator (always in OpenSSL 3), so every ASCII character that is not a
    letter, digit or space is escaped. Numeric OIDs avoid depending on short names.
    """
    parts = []
    for attribute, value in subject_values(enrollment_data):
        escaped = ''.join('\\' + char if ord(char) < 128 and not (char.isalnum() or char == ' ') else char
                          for char in value)
        parts.append('/%s=%s' % (attribute.oid, escaped))
    return ''.join(parts)


class OpensslBackend:
    name = 'openssl'

    def __init__(self, module: AnsibleModule, executable: str = 'openssl') -> None:
        self.module = module
        self.executable = executable
        self._path = None

    def command_path(self) -> str:
        if self._path is None:
            path = self.executable if os.path.isabs(self.executable) else self.module.get_bin_path(self.executable)
            if not path or not os.access(path, os.X_OK):
                raise HostCryptoError(
                    'Neither the Python library cryptography (38 or newer) nor the %r command is available on this '
                    'host; install one of them (python3-cryptography or openssl), or set openssl_path' % self.executable)
            self._path = path
        return self._path

    def _run(self, args, data=None, inputs=()):
        """(rc, stdout bytes, stderr text) of openssl with these arguments; data goes to its standard input.

        Each of `inputs` (bytes read by _files from a checked regular file) reaches openssl through a
        pipe, named in args by its index (an int, replaced by /dev/fd/N): openssl never opens a host path
        itself, so it cannot be led through a link.
        """
        fds = []
        try:
            for content in inputs:
                read_end, write_end = os.pipe()
                fds.append(read_end)
                try:
                    view = memoryview(content)  # at most _files.MAX_FILE_SIZE: fits the pipe's buffer
                    while view:
                        view = view[os.write(write_end, view):]
                finally:
                    os.close(write_end)
            names = ['/dev/fd/%d' % fd for fd in fds]
            argv = [self.command_path()] + [names[arg] if isinstance(arg, int) else arg for arg in args]
            rc, out, err = self.module.run_command(
                argv, data=data, binary_data=True, encoding=None, expand_user_and_vars=False,
                environ_update={'LC_ALL': 'C', 'LANG': 'C'}, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        return rc, out, to_native(err, errors='surrogate_or_replace')

    def _checked(self, what, args, data=None, inputs=()):
        rc, out, err = self._run(args, data=data, inputs=inputs)
        if rc != 0:
            raise HostCryptoError('openssl could not %s: %s' % (what, _first_line(err)))
        return out

    def key_public_der(self, key_data: bytes) -> Optional[bytes]:
        # -passin pass: (empty): an encrypted key fails instead of prompting on the terminal.
        rc, out, dummy_err = self._run(['pkey', '-pubout', '-outform', 'DER', '-passin', 'pass:'], data=key_data)
        return out if rc == 0 and out else None

    def _public_der_of_pem(self, key_pem):
        rc, out, dummy_err = self._run(['pkey', '-pubout', '-outform', 'DER', '-passin', 'pass:'], data=key_pem)
        return out if rc == 0 and out else None

    def certificate(self, der: bytes) -> Optional[CertificateFacts]:
        rc, out, dummy_err = self._run(['x509', '-inform', 'DER', '-noout', '-serial', '-enddate', '-pubkey'], data=der)
        if rc != 0:
            return None
        text = to_native(out, errors='surrogate_or_replace')
        serial = re.search(r'^serial=([0-9A-Fa-f]+)\s*$', text, re.MULTILINE)
        not_after = re.search(r'^notAfter=(.*)$', text, re.MULTILINE)
        public_keys = pem_ders(out, 'PUBLIC KEY')
        if not serial or not not_after or not public_keys:
            return None
        return CertificateFacts(der, serial_number_text(serial.group(1)), parse_openssl_date(not_after.group(1)),
                                public_keys[0])

    def generate_key(self, key_type: str) -> bytes:
        if key_type == 'ec':
            args = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:named_curve']
        elif key_type == 'rsa':
            args = ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:%d' % _crypto.RSA_KEY_SIZE]
        else:
            raise HostCryptoError('Unsupported key type %r; use ec or rsa' % (key_type,))
        pem = self._checked('generate a %s private key' % key_type.upper(), ['genpkey'] + args)
        if not pem_ders(pem, 'PRIVATE KEY'):
            raise HostCryptoError('openssl genpkey did not print a PKCS#8 private key')
        return pem

    def csr_pem(self, key_data: bytes, enrollment_data: Mapping[str, Any], key_path: str) -> bytes:
        fd, config_path = tempfile.mkstemp(prefix='ksef-req-', suffix='.cnf')
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(_REQ_CONFIG)
            pem = self._checked('create the CSR for %s' % key_path,
                                ['req', '-new', '-utf8', '-sha256', '-config', config_path,
                                 '-key', 0, '-subj', subject_argument(enrollment_data),
                                 '-passin', 'pass:'], inputs=[key_data])
        finally:
            os.unlink(config_path)
        if not pem_ders(pem, 'CERTIFICATE REQUEST'):
            raise HostCryptoError('openssl req did not print a CSR for %s' % key_path)
        return pem

    def csr_signature_valid(self, csr_der: bytes) -> bool:
        # openssl 1.1.1 exits 0 after "verify failure" too; 3.x says "self-signature verify OK".
        rc, dummy_out, err = self._run(['req', '-verify', '-noout', '-inform', 'DER', '-in', 0], inputs=[csr_der])
        return rc == 0 and 'verify OK' in err and 'failure' not in err

    def pkcs12(self, key_data: bytes, certificate_data: bytes, name: str, passphrase: Optional[str], certificate_path: str) -> bytes:
        # The passphrase is the first line of standard input; _deploy_checks refuses newlines and the
        # module refuses passphrases longer than openssl reads, so it is passed whole.
        # The same PBKDF2 iteration count as the cryptography backend (_crypto.PKCS12_KDF_ROUNDS).
        return self._checked('build the PKCS#12 bundle of %s' % certificate_path,
                             ['pkcs12', '-export', '-inkey', 0, '-in', 1, '-name', name,
                              '-keypbe', 'AES-256-CBC', '-certpbe', 'AES-256-CBC', '-macalg', 'sha256',
                              '-iter', str(_crypto.PKCS12_KDF_ROUNDS), '-passout', 'stdin'],
                             data=to_bytes(passphrase, errors='surrogate_or_strict') + b'\n',
                             inputs=[key_data, certificate_data])

    def sign(self, key_data: bytes, scheme: str, data: bytes, key_path: str) -> bytes:
        """The same as CryptographyBackend.sign, with openssl dgst (1.1.1 and 3.x): PKCS#1 v1.5 or PSS for RSA,
        DER ECDSA turned into r||s. The key reaches openssl through a pipe, the data on its standard input."""
        public_der = self.key_public_der(key_data)
        if public_der is None:
            raise HostCryptoError('Cannot load the private key %s to sign' % key_path)
        key_type, is_p256 = spki_key_type(public_der)
        check_scheme(scheme, key_type, is_p256, key_path)
        options = []
        if scheme == 'rsa_pss_sha256':
            options = ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:%d' % QR_CODE_II_PSS_SALT_LENGTH,
                       '-sigopt', 'rsa_mgf1_md:sha256']
        signature = self._checked('sign with %s' % key_path,
                                  ['dgst', '-sha256', '-sign', 0, '-passin', 'pass:', '-binary'] + options,
                                  data=data, inputs=[key_data])
        if key_type == 'ec':
            if not is_p256:
                raise HostCryptoError('The openssl backend signs with EC keys on P-256 only; %s is on another curve' % key_path)
            return ecdsa_der_to_raw(signature, P256_FIELD_BYTES)
        return signature

    def pkcs12_contents(self, data: bytes, passphrase: Optional[str]) -> Optional[Pkcs12Contents]:
        rc, out, dummy_err = self._run(['pkcs12', '-in', 0, '-nodes', '-passin', 'stdin'],
                                       data=to_bytes(passphrase, errors='surrogate_or_strict') + b'\n', inputs=[data])
        if rc != 0:
            return None
        keys = pem_blocks(out, 'PRIVATE KEY')
        return pem_ders(out, 'CERTIFICATE'), (self._public_der_of_pem(keys[0]) if keys else None)


def _first_line(text):
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    return lines[0] if lines else 'no error text'


def select_backend(module: AnsibleModule, preference: str = 'auto', openssl_path: str = 'openssl') -> Union[CryptographyBackend, OpensslBackend]:
    """The backend to use: cryptography when usable (unless openssl is asked for), else the openssl CLI."""
    if preference in ('auto', 'cryptography') and CryptographyBackend.usable():
        return CryptographyBackend()
    if preference == 'cryptography':
        raise HostCryptoError('backend=cryptography needs the Python library cryptography 38 or newer on this host')
    backend = OpensslBackend(module, openssl_path)
    backend.command_path()  # a host without openssl fails here, before any change
    return backend
