# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs ksef_deploy_host's real file code for test_ksef_deploy_host_trace.py, which traces it with strace.

    python trace_deploy_host.py DIRECTORY BACKEND

With umask 0 (the worst case: a file's creation mode is exactly the mode the code asks for), the role's
host-side steps one after the other: a .next key and its CSR, the certificate and the move of the .next key
(a first install), a PKCS#12 bundle, then a controller-side key written from key_content over an existing
world-readable key file (what the role's copy of a shared key does).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import datetime
import io
import json
import os
import pathlib
import sys


def run(args):
    from ansible_collections.ksef.certificates.plugins.modules import ksef_deploy_host
    from ansible_collections.ksef.certificates.tests.unit.conftest import module_args
    output = io.StringIO()
    with module_args(args), contextlib.redirect_stdout(output):
        try:
            ksef_deploy_host.main()
        except SystemExit:
            pass
    result = json.loads(output.getvalue())
    assert not result.get('failed'), result
    return result


def issue(public_key):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, u'Test CA')])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public_key).serial_number(7)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=90))
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')


def main():
    os.umask(0)
    from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
    directory, backend = pathlib.Path(sys.argv[1]), sys.argv[2]
    key, cert, p12 = str(directory / 'app.key'), str(directory / 'app.crt'), str(directory / 'app.p12')
    # The CSR (public, 0644) is named so that the trace's rules do not take it for a key.
    base = dict(backend=backend, key_path=key, certificate_path=cert, csr_path=str(directory / 'app.csr'))
    run(dict(base, operation='csr', enrollment_data={'commonName': 'Firma'}))
    next_key = _crypto.load_private_key(key + '.next')
    run(dict(base, operation='install', certificate_content=issue(next_key.public_key()), key_from_next=True))
    run(dict(base, operation='pkcs12', pkcs12_path=p12, pkcs12_passphrase='p12 secret'))
    shared_key, shared_cert = str(directory / 'shared.key'), str(directory / 'shared.crt')
    # shared.key exists already, world-readable (the test made it before the trace started).
    other = _crypto.generate_private_key('ec')
    run(dict(backend=backend, operation='install', key_path=shared_key, certificate_path=shared_cert,
             key_content=_crypto.private_key_to_pem(other).decode('ascii'), certificate_content=issue(other.public_key())))
    print(' '.join([key, key + '.next', p12, shared_key]))


if __name__ == '__main__':
    main()
