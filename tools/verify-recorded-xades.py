# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check, outside the collection, every XAdES login document the modules sent to the emulator.

Usage: python tools/verify-recorded-xades.py RECORD_DIR

RECORD_DIR is the emulator's --record-dir: <seq>.json describes each request, <seq>.body holds its raw
body. Every POST /auth/xades-signature body must
  - verify under the xmlsec1 CLI (an implementation that shares no code with the collection), with the
    certificate from its own KeyInfo as the trusted key (its public key for a KSeF-issued signer, whose
    issuing CA is the emulator's), both references checked, and
  - validate against the official AuthTokenRequest schema once the signature is removed (the 2.0
    namespace is checked with the 2.1 schema: libxml2 cannot compile the 2.0 one, SPEC.md 3.2).
Exits non-zero when a document fails or when there is no document at all.
"""

import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from cryptography import x509
from lxml import etree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XSD_PATH = os.path.join(REPO, 'tests', 'emulator', 'ksef_emulator', 'xsd', 'schemat_auth_v2-1.xsd')
DS = 'http://www.w3.org/2000/09/xmldsig#'
XADES_ID_ATTR = '--id-attr:Id'
XADES_SIGNED_PROPERTIES = 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties'


def signer_certificate_pem(root):
    element = root.find('{%s}Signature/{%s}KeyInfo/{%s}X509Data/{%s}X509Certificate' % (DS, DS, DS, DS))
    if element is None:
        raise ValueError('no X509Certificate in KeyInfo')
    der = base64.b64decode(''.join(element.text.split()))
    body = base64.encodebytes(der).decode('ascii')
    return '-----BEGIN CERTIFICATE-----\n%s-----END CERTIFICATE-----\n' % body


def check_xmlsec1(xmlsec1, body, root, workdir):
    document = os.path.join(workdir, 'document.xml')
    trusted = os.path.join(workdir, 'signer.pem')
    with open(document, 'wb') as handle:
        handle.write(body)
    with open(trusted, 'w') as handle:
        handle.write(signer_certificate_pem(root))
    # A self-signed signer is its own trust anchor. A KSeF-issued certificate (a self-renewing login) has the
    # emulator's issuing CA above it, which this check does not know: its key alone verifies the signature.
    certificate = x509.load_pem_x509_certificate(signer_certificate_pem(root).encode('ascii'))
    key_option = '--trusted-pem' if certificate.issuer == certificate.subject else '--pubkey-cert-pem'
    completed = subprocess.run(
        [xmlsec1, '--verify', key_option, trusted, XADES_ID_ATTR, XADES_SIGNED_PROPERTIES, document],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60, check=False)
    if completed.returncode != 0 or 'SignedInfo References (ok/all): 2/2' not in completed.stdout:
        return 'xmlsec1 --verify failed: %s' % completed.stdout.strip().splitlines()[-3:]
    return None


def check_schema(schema, body):
    root = etree.fromstring(body)
    for signature in root.findall('{%s}Signature' % DS):
        root.remove(signature)
    text = etree.tostring(root).replace(b'http://ksef.mf.gov.pl/auth/token/2.0', b'http://ksef.mf.gov.pl/auth/token/2.1')
    document = etree.fromstring(text)
    if not schema.validate(document):
        return 'schema: %s' % schema.error_log.last_error
    return None


def main(record_dir):
    xmlsec1 = shutil.which('xmlsec1')
    if xmlsec1 is None:
        print('verify-recorded-xades: the xmlsec1 CLI is missing (make deps-system installs it)', file=sys.stderr)
        return 1
    schema = etree.XMLSchema(etree.parse(XSD_PATH))
    checked, failures = 0, []
    with tempfile.TemporaryDirectory() as workdir:
        for record_path in sorted(glob.glob(os.path.join(record_dir, '*.json'))):
            with open(record_path) as handle:
                record = json.load(handle)
            if record.get('method') != 'POST' or record.get('route') != '/auth/xades-signature':
                continue
            body_path = record_path[:-len('.json')] + '.body'
            with open(body_path, 'rb') as handle:
                body = handle.read()
            root = etree.fromstring(body)
            problems = [check_xmlsec1(xmlsec1, body, root, workdir), check_schema(schema, body)]
            problems = [problem for problem in problems if problem]
            checked += 1
            if problems:
                failures.append('%s: %s' % (os.path.basename(body_path), '; '.join(problems)))
    for failure in failures:
        print('verify-recorded-xades: %s' % failure, file=sys.stderr)
    if checked == 0:
        print('verify-recorded-xades: no XAdES login document was recorded in %s' % record_dir, file=sys.stderr)
        return 1
    print('verify-recorded-xades: %d XAdES documents sent by the modules verify under xmlsec1 and the KSeF schema'
          % (checked - len(failures)) if not failures else
          'verify-recorded-xades: %d of %d documents failed' % (len(failures), checked))
    return 1 if failures else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
