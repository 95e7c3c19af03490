# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""PEM blocks and the PKCS#12 algorithm check, in pure Python (no cryptography, no I/O).

_crypto (controller modules) and _host_backend (ksef_deploy_host, also on hosts without cryptography, where
the openssl command line prints PEM) read PEM text with the same functions.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import re
from typing import List, Optional, Sequence, Union

PEM_BLOCK = re.compile(br'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.DOTALL)
PRIVATE_KEY_PEM_LABELS = ('PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY')


def _label_set(labels):
    """A label ('CERTIFICATE') or several, as the bytes the PEM_BLOCK pattern captures."""
    if isinstance(labels, str):
        labels = (labels,)
    return set(label.encode('ascii') for label in labels)


def pem_blocks(data: Optional[bytes], labels: Union[str, Sequence[str]]) -> List[bytes]:
    """The whole PEM blocks (BEGIN line to END line, bytes) of `data` whose label is one of `labels`, in order."""
    wanted = _label_set(labels)
    return [match.group(0) for match in PEM_BLOCK.finditer(data or b'') if match.group(1) in wanted]


def pem_ders(data: Optional[bytes], labels: Union[str, Sequence[str]]) -> List[bytes]:
    """The DER bytes of the PEM blocks of `data` whose label is one of `labels`, in order; a block whose body is
    not base64 is skipped."""
    wanted = _label_set(labels)
    ders = []
    for match in PEM_BLOCK.finditer(data or b''):
        if match.group(1) not in wanted:
            continue
        try:
            ders.append(base64.b64decode(re.sub(br'\s+', b'', match.group(2)), validate=True))
        except (binascii.Error, ValueError):
            continue
    return ders


def der_to_pem(der: bytes, label: str) -> bytes:
    """PEM bytes of one DER value: base64 in lines of 64 characters between the BEGIN and END lines."""
    body = base64.b64encode(der)
    lines = [body[index:index + 64] for index in range(0, len(body), 64)]
    header = label.encode('ascii')
    return b'-----BEGIN %s-----\n%s\n-----END %s-----\n' % (header, b'\n'.join(lines), header)


def certificate_der(data: Optional[bytes]) -> Optional[bytes]:
    """DER of the first certificate of a PEM file (or of a DER file); None when there is none."""
    ders = pem_ders(data, 'CERTIFICATE')
    if ders:
        return ders[0]
    if data and data[:1] == b'\x30':
        return data
    return None


# ---------------------------------------------------------------------------------------------
# PKCS#12
# ---------------------------------------------------------------------------------------------

# DER-encoded OBJECT IDENTIFIERs (tag, length, value) looked for in a PKCS#12 file. Its algorithm
# identifiers are in clear, only the key and certificate bags are encrypted.
_OID_PKCS12_LEGACY_PBE = bytes(bytearray([0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01]))  # 1.2.840.113549.1.12.1.*
_OID_PBES2 = bytes(bytearray([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]))          # 1.2.840.113549.1.5.13
_OID_AES256_CBC = bytes(bytearray([0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]))     # 2.16.840.1.101.3.4.1.42
_OID_SHA256 = bytes(bytearray([0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]))         # 2.16.840.1.101.3.4.2.1


def pkcs12_algorithms_current(data: bytes) -> bool:
    """Whether a PKCS#12 file uses PBES2 (PBKDF2) with AES-256-CBC and a SHA-256 MAC, and no legacy PBE.

    Bundles made by older defaults (3DES, RC2-40, SHA-1 MAC) are rebuilt.
    """
    return (_OID_PKCS12_LEGACY_PBE not in data and _OID_PBES2 in data and _OID_AES256_CBC in data and
            _OID_SHA256 in data)
