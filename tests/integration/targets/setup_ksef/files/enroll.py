# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Enroll KSeF certificates as an independent client (requests + cryptography, not the collection).

Integration targets use it to create certificates that the collection's modules did not create, then
check what the modules list or revoke.

    KSEF_TEST_ACCESS_TOKEN=... python enroll.py --api-url URL --ca CA.pem \
        --certificate 'name:Authentication' --certificate 'other name:Offline' [--key-type rsa]

The access token must come from a XAdES (signature) login. Every request is submitted first, then every
enrollment is polled until KSeF issued the certificate. Prints JSON to stdout:
    {"certificates": [{"name", "type", "reference_number", "serial_number"}, ...]}
"""
from __future__ import absolute_import, division, print_function

import argparse
import base64
import json
import os
import sys
import time

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# CSR subject order of the official C# client; C and serialNumber become PrintableString (cryptography's default).
SUBJECT_FIELDS = (
    ('commonName', NameOID.COMMON_NAME),
    ('surname', NameOID.SURNAME),
    ('givenName', NameOID.GIVEN_NAME),
    ('organizationName', NameOID.ORGANIZATION_NAME),
    ('organizationIdentifier', x509.ObjectIdentifier('2.5.4.97')),
    ('countryName', NameOID.COUNTRY_NAME),
    ('serialNumber', NameOID.SERIAL_NUMBER),
    ('uniqueIdentifier', x509.ObjectIdentifier('2.5.4.45')),
)
POLL_TIMEOUT = 60
MAX_429_RETRIES = 10


class Client(object):
    def __init__(self, api_url, ca, token):
        self.api_url = api_url.rstrip('/')
        # verify is passed per request: requests lets REQUESTS_CA_BUNDLE override a session-level value
        self.verify = ca or True
        self.session = requests.Session()
        self.session.headers['Authorization'] = 'Bearer %s' % token

    def call(self, method, path, **kwargs):
        """One request; waits out 429 answers (Retry-After) so a burst of enrollments is not refused."""
        for _attempt in range(MAX_429_RETRIES):
            response = self.session.request(method, self.api_url + path, timeout=30, verify=self.verify, **kwargs)
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get('Retry-After') or 1))
        if response.status_code >= 400:
            raise SystemExit('%s %s failed: HTTP %s %s' % (method, path, response.status_code, response.text[:500]))
        return response.json() if response.content else None


def build_csr(enrollment_data, key_type):
    key = ec.generate_private_key(ec.SECP256R1()) if key_type == 'ec' else rsa.generate_private_key(65537, 2048)
    attributes = [x509.NameAttribute(oid, enrollment_data[field])
                  for field, oid in SUBJECT_FIELDS if enrollment_data.get(field)]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def parse_spec(text):
    name, _sep, certificate_type = text.rpartition(':')
    if not name or certificate_type not in ('Authentication', 'Offline'):
        raise argparse.ArgumentTypeError("expected 'NAME:Authentication' or 'NAME:Offline', got %r" % text)
    return name, certificate_type


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--api-url', required=True)
    parser.add_argument('--ca')
    parser.add_argument('--certificate', type=parse_spec, action='append', required=True)
    parser.add_argument('--key-type', choices=('ec', 'rsa'), default='ec')
    args = parser.parse_args()
    token = os.environ.get('KSEF_TEST_ACCESS_TOKEN')
    if not token:
        raise SystemExit('set KSEF_TEST_ACCESS_TOKEN to an access token of a XAdES login')

    client = Client(args.api_url, args.ca, token)
    data = client.call('GET', '/certificates/enrollments/data')
    submitted = []
    for name, certificate_type in args.certificate:
        csr = build_csr(data, args.key_type)
        answer = client.call('POST', '/certificates/enrollments', json={
            'certificateName': name, 'certificateType': certificate_type,
            'csr': base64.b64encode(csr).decode('ascii')})
        submitted.append({'name': name, 'type': certificate_type, 'reference_number': answer['referenceNumber'],
                          'serial_number': None})

    deadline = time.time() + POLL_TIMEOUT
    for enrollment in submitted:
        while True:
            status = client.call('GET', '/certificates/enrollments/%s' % enrollment['reference_number'])
            code = status['status']['code']
            if code == 200:
                enrollment['serial_number'] = status['certificateSerialNumber']
                break
            if code != 100:
                raise SystemExit('enrollment %s ended with status %s: %s'
                                 % (enrollment['reference_number'], code, status['status']))
            if time.time() > deadline:
                raise SystemExit('enrollment %s still in progress after %d s' % (enrollment['reference_number'], POLL_TIMEOUT))
            time.sleep(0.5)
    json.dump({'certificates': submitted}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
