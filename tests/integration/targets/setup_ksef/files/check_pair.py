# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Facts about a key/certificate pair on disk, read with cryptography (independent of the collection's code).

    check_pair.py --key KEY --cert CERT [--signer SIGNER_CERT]     (passphrase in env KSEF_TEST_KEY_PASSPHRASE)

Prints JSON: key_matches (the certificate carries the key's public key), subject_matches_signer (same
attributes as the signer's subject), key_type, key_size, key_usage, serial_number, public_key_sha256.
"""
import argparse
import hashlib
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def spki_sha256(public_key):
    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def attributes(name):
    return sorted((a.oid.dotted_string, a.value) for a in name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--key', required=True)
    parser.add_argument('--cert', required=True)
    parser.add_argument('--signer')
    args = parser.parse_args()
    passphrase = os.environ.get('KSEF_TEST_KEY_PASSPHRASE')
    with open(args.key, 'rb') as handle:
        key = serialization.load_pem_private_key(handle.read(), passphrase.encode() if passphrase else None)
    with open(args.cert, 'rb') as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    result = {
        'key_matches': spki_sha256(key.public_key()) == spki_sha256(cert.public_key()),
        'key_type': 'ec' if isinstance(key, ec.EllipticCurvePrivateKey) else 'rsa' if isinstance(key, rsa.RSAPrivateKey) else 'other',
        'key_size': key.key_size if isinstance(key, rsa.RSAPrivateKey) else key.curve.name,
        'key_usage': [name for name in ('digital_signature', 'content_commitment') if getattr(usage, name)],
        'serial_number': '%016X' % cert.serial_number,
        'public_key_sha256': spki_sha256(key.public_key()),
    }
    if args.signer:
        with open(args.signer, 'rb') as handle:
            signer = x509.load_pem_x509_certificate(handle.read())
        result['subject_matches_signer'] = attributes(cert.subject) == attributes(signer.subject)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
