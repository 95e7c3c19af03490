# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make a key and a CSR "on a host", independently of the collection: the CSR subject copies the signer's.

    make_csr.py SIGNER_CERT KEY_OUT CSR_OUT
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def main():
    signer_path, key_path, csr_path = sys.argv[1:4]
    with open(signer_path, 'rb') as handle:
        signer = x509.load_pem_x509_certificate(handle.read())
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(signer.subject).sign(key, hashes.SHA256())
    with open(key_path, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(csr_path, 'wb') as handle:
        handle.write(csr.public_bytes(serialization.Encoding.PEM))


if __name__ == '__main__':
    main()
