# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_engine/remote_proof.py: the two-step proof of a successor whose key stays on a managed host, over scripted HTTP.

The host's part is the real host code (_host/backend.py's sign, both backends); the login document KSeF receives is
checked by signxml (in the scripted exchange) and by the xmlsec1 command line.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import shutil
import subprocess

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._engine import remote_proof as _remote_proof
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.plugins.module_utils._host.backend import CryptographyBackend
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.test_auth import (
    CHALLENGE,
    REFRESH,
    make_client,
    xades_login,
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils._engine.test_proof import (
    NOW,
    certificate,
    independent_verify,
)

pytest.importorskip('signxml')


def connection():
    """ksef_certificate_proof's connection options: the context, and no login of the controller's own."""
    return ConnectionOptions.from_params({'environment': 'test', 'context_type': 'nip', 'context_id': certs.TEST_NIP},
                                         login=False)


def pem(cert):
    return certs.cert_pem(cert).decode('ascii')


def host_sign(key, entry):
    """What ksef_deploy_host operation=sign does on the host, with the key as the host has it (a PEM file)."""
    signature = CryptographyBackend().sign(_crypto.private_key_to_pem(key), entry['scheme'],
                                           base64.b64decode(entry['data']), '/etc/ksef/app.key')
    return dict(entry, signature=base64.b64encode(signature).decode('ascii'))


def verify_with_xmlsec1(xml, cert, tmp_path):
    xmlsec1 = shutil.which('xmlsec1')
    if xmlsec1 is None:
        pytest.skip('xmlsec1 CLI is not installed')
    (tmp_path / 'signed.xml').write_bytes(xml)
    (tmp_path / 'signer.pem').write_bytes(certs.cert_pem(cert))
    return subprocess.run([xmlsec1, '--verify', '--trusted-pem', str(tmp_path / 'signer.pem'), '--id-attr:Id',
                           'SignedProperties', str(tmp_path / 'signed.xml')], capture_output=True, check=False)


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_a_login_signed_on_the_host_is_a_normal_xades_login(key_type, tmp_path):
    key = certs.make_key(key_type, slot=3)
    cert = certs.make_seal_certificate(key)
    # xades_login checks what KSeF receives: an AuthTokenRequest for the challenge, signed by `cert` (signxml).
    script = HttpScript(xades_login(cert, poll_codes=(100, 200)) + [
        Exchange('DELETE', '/auth/sessions/current', token=REFRESH, status=204)])
    client = make_client(script)
    options = connection()
    prepared = _remote_proof.prepare(KsefAuthApi(client), options,
                                     [{'id': 'web01|app|authentication', 'type': 'authentication', 'certificate': pem(cert)}], NOW)
    entry = prepared[0]
    assert entry['proven'] is None and entry['method'] == 'login' and entry['id'] == 'web01|app|authentication'
    assert entry['scheme'] == ('rsa_pkcs1v15_sha256' if key_type == 'rsa' else 'ecdsa_sha256')
    assert len(script.requests) == 1  # only the challenge: nothing was posted before the host signed
    done = _remote_proof.finish(client, options, [host_sign(key, entry)])
    assert done[0]['proven'] is True and done[0]['reason'] is None and 'signature' not in done[0]
    script.verify()
    posted = script.requests[1].body
    assert b'certificateSubject' in posted and CHALLENGE['challenge'].encode() in posted
    completed = verify_with_xmlsec1(posted, cert, tmp_path)
    assert completed.returncode == 0, completed.stderr


def prepared_seal_entry():
    """A seal's key and the entry prepare() made for its certificate: (key, script, client, entry); the script
    answered only the challenge."""
    key = certs.make_key('ec', slot=3)
    cert = certs.make_seal_certificate(key)
    script = HttpScript([Exchange('POST', '/auth/challenge', reply=CHALLENGE)])
    client = make_client(script)
    entry = _remote_proof.prepare(KsefAuthApi(client), connection(),
                                  [{'type': 'authentication', 'certificate': pem(cert)}], NOW)[0]
    return key, script, client, entry


def test_a_signature_by_another_key_is_caught_before_anything_is_posted():
    dummy_key, script, client, entry = prepared_seal_entry()
    done = _remote_proof.finish(client, connection(), [host_sign(certs.make_key('ec', slot=4), entry)])
    script.verify()
    assert done[0]['proven'] is False and 'is not that certificate' in done[0]['reason']


def test_a_changed_document_is_not_posted():
    key, script, client, entry = prepared_seal_entry()
    signed = host_sign(key, entry)
    document = base64.b64decode(signed['document']).replace(certs.TEST_NIP.encode(), b'1111111111')
    done = _remote_proof.finish(client, connection(), [dict(signed, document=base64.b64encode(document).decode())])
    script.verify()
    assert done[0]['proven'] is False


def test_a_login_ksef_refuses_leaves_the_certificate_unproven_with_the_reason():
    key = certs.make_key('ec', slot=3)
    cert = certs.make_seal_certificate(key)
    script = HttpScript([
        Exchange('POST', '/auth/challenge', reply=CHALLENGE),
        Exchange('POST', '/auth/xades-signature', status=400,
                 reply={'exception': {'exceptionDetailList': [{'exceptionCode': 21115,
                                                               'exceptionDescription': 'Nieprawidlowy certyfikat.'}]}}),
    ])
    client = make_client(script)
    entry = _remote_proof.prepare(KsefAuthApi(client), connection(),
                                  [{'type': 'authentication', 'certificate': pem(cert)}], NOW)[0]
    done = _remote_proof.finish(client, connection(), [host_sign(key, entry)])
    script.verify()
    assert done[0]['proven'] is False and '21115' in done[0]['reason'] and '/auth/xades-signature' in done[0]['reason']


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_an_offline_successor_signs_a_qr_code_ii_on_the_host(key_type):
    key = certs.make_key(key_type, slot=5)
    cert = certificate(key)
    script = HttpScript([])  # an Offline proof calls nobody
    client = make_client(script)
    entry = _remote_proof.prepare(KsefAuthApi(client), connection(),
                                  [{'type': 'offline', 'certificate': pem(cert)}], NOW)[0]
    assert entry['method'] == 'qr_code_ii'
    assert entry['scheme'] == ('rsa_pss_sha256' if key_type == 'rsa' else 'ecdsa_p256_p1363')
    assert entry['text'].startswith('qr-test.ksef.mf.gov.pl/certificate/Nip/%s/' % certs.TEST_NIP)
    signed = host_sign(key, entry)
    # The link the host's signature makes passes KSeF's check written independently of _proof.
    signature = base64.b64decode(signed['signature'])
    link = 'https://%s/%s' % (entry['text'], base64.urlsafe_b64encode(signature).decode().rstrip('='))
    assert independent_verify(cert, link) == entry['text']
    done = _remote_proof.finish(client, connection(), [signed])
    assert done[0]['proven'] is True
    wrong = _remote_proof.finish(client, connection(), [host_sign(certs.make_key(key_type, slot=6), entry)])
    assert wrong[0]['proven'] is False and 'does not verify' in wrong[0]['reason']
    script.verify()


def test_a_successor_not_valid_yet_asks_for_no_challenge_and_says_from_when():
    key = certs.make_key('ec', slot=3)
    start = NOW + datetime.timedelta(days=2)
    cert = certificate(key, not_before=start)
    script = HttpScript([])
    client = make_client(script)
    entry = _remote_proof.prepare(KsefAuthApi(client), connection(),
                                  [{'type': 'authentication', 'certificate': pem(cert)}], NOW)[0]
    assert entry['proven'] is False and entry['data'] is None
    assert entry['valid_from'] == start.strftime('%Y-%m-%dT%H:%M:%S+00:00') and 'valid only from' in entry['reason']
    # finish passes it through unchanged: nothing was signed, nothing is sent
    assert _remote_proof.finish(client, connection(), [entry])[0]['proven'] is False
    script.verify()


def test_an_entry_the_host_did_not_sign_is_unproven_with_the_hosts_reason():
    key = certs.make_key('ec', slot=3)
    cert = certificate(key)
    client = make_client(HttpScript([]))
    entry = _remote_proof.prepare(KsefAuthApi(client), connection(), [{'type': 'offline', 'certificate': pem(cert)}], NOW)[0]
    done = _remote_proof.finish(client, connection(), [dict(entry, sign_failure='the key /etc/ksef/app.key does not exist')])
    assert done[0]['proven'] is False and 'does not exist' in done[0]['reason']


def test_check_mode_sends_nothing():
    cert = certs.make_seal_certificate(certs.make_key('ec', slot=3))
    script = HttpScript([])
    client = make_client(script)
    entry = _remote_proof.prepare(KsefAuthApi(client), connection(), [{'type': 'authentication', 'certificate': pem(cert)}],
                                  NOW, check_mode=True)[0]
    assert entry['proven'] is None and entry['data'] is None and 'would be proven' in entry['reason']
    assert _remote_proof.finish(client, connection(), [entry], check_mode=True)[0]['proven'] is None
    script.verify()


def test_a_certificate_that_is_not_pem_fails_before_any_call():
    good = certs.make_seal_certificate(certs.make_key('ec', slot=3))
    script = HttpScript([])
    with pytest.raises(KsefInputError, match='not a PEM certificate'):
        _remote_proof.prepare(KsefAuthApi(make_client(script)), connection(),
                              [{'type': 'authentication', 'certificate': pem(good)},
                               {'id': 'x', 'type': 'authentication', 'certificate': 'garbage'}], NOW)
    script.verify()
