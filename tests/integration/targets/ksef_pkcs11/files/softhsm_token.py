# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SoftHSM2 tokens for the ksef_pkcs11 target (run with the emulator's Python: PyKCS11, cryptography, ksef_emulator).

  softhsm_token.py seal --label L --pin P --key-type ec|rsa --key-label K --nip NIP --cert-out PEM
      init a token under $SOFTHSM2_CONF, make a non-extractable seal key in it and its self-signed TEST seal
      certificate (signed through the token, stored next to the key and written to --cert-out)
  softhsm_token.py init --label L --pin P
      init an empty token under $SOFTHSM2_CONF
  softhsm_token.py show --label L --pin P --key-label K
      JSON: the private keys with that label (public key SHA-256, flags) and their certificate serial numbers
Prints JSON; the PIN is never printed.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ksef_emulator import testcerts


def _collection_parent():
    """The directory holding ansible_collections/ (this file lives inside the collection's tests)."""
    path = os.path.dirname(os.path.abspath(__file__))
    while os.path.basename(path) != 'ansible_collections':
        parent = os.path.dirname(path)
        if parent == path:
            raise SystemExit('softhsm_token.py must run from inside ansible_collections/ksef/certificates')
        path = parent
    return os.path.dirname(path)


sys.path.insert(0, _collection_parent())
from ansible_collections.ksef.certificates.plugins.module_utils import _der, _pkcs11  # noqa: E402  pylint: disable=wrong-import-position

LIBRARIES = ('/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
             '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so')


def library():
    for path in LIBRARIES:
        if os.path.isfile(path):
            return path
    raise SystemExit('SoftHSM2 is not installed: run `make deps-system` (Debian package softhsm2)')


def spki_sha256(public_key):
    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def init(args):
    conf = os.environ.get('SOFTHSM2_CONF')
    if not conf or shutil.which('softhsm2-util') is None:
        raise SystemExit('set SOFTHSM2_CONF and install softhsm2 (`make deps-system`)')
    subprocess.run(['softhsm2-util', '--init-token', '--free', '--label', args.label, '--pin', args.pin,
                    '--so-pin', args.pin + '-so'], check=True, stdout=subprocess.DEVNULL)
    return {'library': library()}


def seal(args):
    init(args)
    with _pkcs11.Pkcs11Token(library(), args.label, args.pin) as token:
        key = token.generate_key_pair(args.key_label, args.key_type)
        der = _der.sign_with_swapped_key(lambda throwaway: testcerts.make_seal(args.nip, key=throwaway)[0],
                                         key.public_key, token.signer(key))
        certificate = x509.load_der_x509_certificate(der)
        token.store_certificate(key, certificate)
    with open(args.cert_out, 'wb') as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    return {'library': library(), 'serial_number': '%016X' % certificate.serial_number,
            'public_key_sha256': spki_sha256(certificate.public_key())}


def show(args):
    with _pkcs11.Pkcs11Token(library(), args.label, args.pin) as token:
        keys = []
        for key in token.private_keys(args.key_label):
            keys.append(dict(token.key_flags(key), key_type=key.key_type,
                             public_key_sha256=spki_sha256(key.public_key),
                             certificates=['%016X' % c.serial_number for _handle, c in token.certificates_of(key)]))
    return {'keys': keys}


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='command', required=True)
    for name in ('init', 'seal', 'show'):
        command = sub.add_parser(name)
        command.add_argument('--label', required=True)
        command.add_argument('--pin', required=True)
        command.add_argument('--key-label', required=name != 'init')
        if name == 'seal':
            command.add_argument('--key-type', choices=('ec', 'rsa'), required=True)
            command.add_argument('--nip', required=True)
            command.add_argument('--cert-out', required=True)
    args = parser.parse_args()
    print(json.dumps({'init': init, 'seal': seal, 'show': show}[args.command](args)))


if __name__ == '__main__':
    main()
