#!/usr/bin/env python
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open the PKCS#12 bundle P12 with the passphrase on standard input (read whole, no newline added) and print,
as JSON, whether it opened, whether it holds the certificate CERT, and what the openssl CLI says about its
algorithms. Never prints the passphrase."""
from __future__ import absolute_import, division, print_function

import json
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12


def main():
    p12_path, cert_path = sys.argv[1], sys.argv[2]
    passphrase = sys.stdin.buffer.read()
    with open(p12_path, 'rb') as handle:
        data = handle.read()
    with open(cert_path, 'rb') as handle:
        deployed = x509.load_pem_x509_certificate(handle.read())
    result = {'opens': False, 'holds_certificate': False, 'opens_with_first_word': True}
    try:
        dummy_key, cert, dummy_chain = pkcs12.load_key_and_certificates(data, passphrase)
        result['opens'] = True
        result['holds_certificate'] = cert.public_bytes(serialization.Encoding.DER) == deployed.public_bytes(
            serialization.Encoding.DER)
    except ValueError:
        pass
    try:
        pkcs12.load_key_and_certificates(data, passphrase.split(b' ')[0])
    except ValueError:
        result['opens_with_first_word'] = False
    info = subprocess.run(['openssl', 'pkcs12', '-info', '-noout', '-in', p12_path, '-passin', 'stdin'],
                          input=passphrase + b'\n', stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    text = info.stdout.decode('utf-8', 'replace')
    result['mac_sha256'] = 'MAC: sha256' in text
    result['pbes2_aes256'] = text.count('PBES2, PBKDF2, AES-256-CBC') >= 2
    print(json.dumps(result))


if __name__ == '__main__':
    main()
