# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proven rotation (_proof): the QR code II proof checked by an independent verification written here with
cryptography, the login proof through the real auth layer over scripted HTTP, and not-yet-valid successors."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from ansible_collections.ksef.certificates.plugins.module_utils._engine import proof as _proof
from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
from ansible_collections.ksef.certificates.plugins.module_utils._credentials import SignerCredentials
from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.test_auth import (
    ACCESS,
    REFRESH,
    make_client,
    xades_login,
)

UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC)
SERIAL = 0x01F20A5D352AE590


def certificate(key, not_before=None, serial=SERIAL):
    """A certificate for key, issued by a throw-away CA (as KSeF issues one)."""
    ca_key = certs.make_key('ec', slot=9)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'CA')])
    not_before = not_before or NOW - datetime.timedelta(hours=1)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(not_before).not_valid_after(not_before + datetime.timedelta(days=730))
            .sign(ca_key, hashes.SHA256()))


def independent_verify(cert, link):
    """KSeF's check of a QR code II link, written from SPEC 13.1 without _proof: the signed text is the link
    without https:// and without the last segment; the signature is Base64URL of RSASSA-PSS (SHA-256, MGF1,
    salt 32) or of ECDSA P-256 SHA-256 in IEEE P1363 r||s."""
    assert link.startswith('https://')
    text, signature_b64 = link[len('https://'):].rsplit('/', 1)
    assert '=' not in signature_b64 and '+' not in signature_b64 and '/' not in signature_b64
    signature = base64.urlsafe_b64decode(signature_b64 + '=' * (-len(signature_b64) % 4))
    public_key = cert.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        assert len(signature) == 64
        der = encode_dss_signature(int.from_bytes(signature[:32], 'big'), int.from_bytes(signature[32:], 'big'))
        public_key.verify(der, text.encode('utf-8'), ec.ECDSA(hashes.SHA256()))
    else:
        public_key.verify(signature, text.encode('utf-8'),
                          padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    return text


# --- QR code II -------------------------------------------------------------------------------

def test_qr_code_ii_text_is_the_link_up_to_the_invoice_hash():
    digest = hashlib.sha256(b'<Faktura/>').digest()
    text = _proof.qr_code_ii_text('qr-test.ksef.mf.gov.pl', 'nip', '1111111111', '1111111111', '01F20A5D352AE590', digest)
    hash_b64url = base64.urlsafe_b64encode(digest).decode('ascii').rstrip('=')
    assert text == 'qr-test.ksef.mf.gov.pl/certificate/Nip/1111111111/1111111111/01F20A5D352AE590/' + hash_b64url
    assert not text.startswith('https://') and not text.endswith('/')


@pytest.mark.parametrize('api_url, host', [
    ('https://api-test.ksef.mf.gov.pl/v2', 'qr-test.ksef.mf.gov.pl'),
    ('https://api-demo.ksef.mf.gov.pl/v2', 'qr-demo.ksef.mf.gov.pl'),
    ('https://api.ksef.mf.gov.pl/v2', 'qr.ksef.mf.gov.pl'),
    ('http://127.0.0.1:8765/v2', 'qr-test.ksef.mf.gov.pl'),
])
def test_qr_host_by_environment(api_url, host):
    assert _proof.qr_host(api_url) == host


@pytest.mark.parametrize('kind', ['ec', 'rsa'])
def test_offline_proof_signs_a_link_that_an_independent_verifier_accepts(kind):
    key = certs.make_key(kind)
    cert = certificate(key)
    signer = SignerCredentials(cert, key)
    context = _proof.QrContext('https://api-test.ksef.mf.gov.pl/v2', 'internal_id', '5265877635-00001')
    text = _proof.qr_proof_text(context.base_url, context.context_type, context.context_id, cert, NOW)
    link = _proof.qr_code_ii_link(text, _proof.sign_qr(signer, text.encode('utf-8')))
    assert independent_verify(cert, link) == text
    assert '/certificate/InternalId/5265877635-00001/5265877635/01F20A5D352AE590/' in text
    proof = _proof.prove_successor('offline', signer, cert, None, context, NOW)
    assert proof.proven and proof.method == 'qr_code_ii' and proof.reason is None


def test_rsa_qr_signature_is_pss_not_pkcs1():
    key = certs.make_key('rsa')
    cert = certificate(key)
    signature = SignerCredentials(cert, key).sign_pss(b'text')
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, b'text', padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(_proof.ProofFailed, match='does not verify'):
        _proof.verify_qr_signature(cert, 'text', SignerCredentials(cert, key).sign(b'text'))  # PKCS#1 v1.5


@pytest.mark.parametrize('kind', ['ec', 'rsa'])
def test_a_key_that_is_not_the_certificates_fails_the_offline_proof(kind):
    cert = certificate(certs.make_key(kind))
    wrong = SignerCredentials(cert, certs.make_key(kind, slot=1))
    context = _proof.QrContext('https://api-test.ksef.mf.gov.pl/v2', 'nip', '1111111111')
    proof = _proof.prove_successor('offline', wrong, cert, None, context, NOW)
    assert not proof.proven and 'does not verify with certificate 01F20A5D352AE590' in proof.reason


def test_an_ecdsa_signature_in_der_form_is_not_p1363():
    key = certs.make_key('ec')
    cert = certificate(key)
    der = key.sign(b'text', ec.ECDSA(hashes.SHA256()))
    with pytest.raises(_proof.ProofFailed, match='IEEE P1363'):
        _proof.verify_qr_signature(cert, 'text', der)


def test_a_link_that_carries_another_text_fails():
    key = certs.make_key('ec')
    cert = certificate(key)
    link = _proof.qr_code_ii_link('a/b', _proof.sign_qr(SignerCredentials(cert, key), b'a/b'))
    with pytest.raises(_proof.ProofFailed, match='does not carry'):
        _proof.verify_qr_link(cert, link, 'a/c')


# --- not valid yet, no key ----------------------------------------------------------------------

@pytest.mark.parametrize('certificate_type', ['authentication', 'offline'])
def test_a_successor_not_valid_yet_proves_nothing(certificate_type):
    key = certs.make_key('ec')
    start = (NOW + datetime.timedelta(days=2)).replace(microsecond=0)
    cert = certificate(key, not_before=start)
    logins = []
    proof = _proof.prove_successor(certificate_type, SignerCredentials(cert, key), cert, logins.append,
                                   _proof.QrContext('https://api-test.ksef.mf.gov.pl/v2', 'nip', '1111111111'), NOW)
    assert not proof.proven and logins == []
    assert proof.valid_from == start and 'valid only from %s' % start.strftime('%Y-%m-%dT%H:%M:%S+00:00') in proof.reason
    assert proof.summary()['valid_from'] == start.strftime('%Y-%m-%dT%H:%M:%S+00:00')


def test_without_the_key_nothing_is_proven():
    cert = certificate(certs.make_key('ec'))
    proof = _proof.prove_successor('authentication', None, cert, lambda signer: None, None, NOW)
    assert not proof.proven and 'private key of certificate 01F20A5D352AE590 is not available to this run (a CSR was given)' in proof.reason


# --- the login proof, KsefApi.prove_login (KsefAuthenticator) over scripted HTTP ------------------------------

def prove_login(client, signer):
    """KsefApi.prove_login of a run that works with an access token: the successor's login is one of its own."""
    options = ConnectionOptions.from_params({'environment': 'test', 'context_type': 'nip', 'context_id': certs.TEST_NIP,
                                             'auth_subject_identifier_type': 'certificate_fingerprint',
                                             'access_token': ACCESS})
    KsefApi(client, KsefAuthenticator(client, options)).prove_login(signer)


def test_login_proof_logs_in_with_the_new_pair_and_closes_the_session():
    key = certs.make_key('ec', slot=2)
    cert = certs.make_seal_certificate(key)
    # xades_login checks the body: an AuthTokenRequest signed by `cert` (signxml verifies it), certificateSubject.
    script = HttpScript(xades_login(cert, poll_codes=(100, 200)) + [
        # The scripted tokens expired in January 2026 by the wall clock, so the session is ended with the refresh token.
        Exchange('DELETE', '/auth/sessions/current', token=REFRESH, status=204)])
    client = make_client(script)
    prove_login(client, SignerCredentials(cert, key))
    script.verify()
    assert b'certificateSubject' in script.requests[1].body


def test_a_refused_login_keeps_the_predecessor_with_the_reason():
    key = certs.make_key('ec', slot=2)
    cert = certs.make_seal_certificate(key)
    script = HttpScript([
        Exchange('POST', '/auth/challenge', reply={'challenge': '20260101-CR-0123456789-ABCDEF0123-4A',
                                                   'timestamp': '2026-01-01T12:00:00Z', 'timestampMs': 1, 'clientIp': 'x'}),
        Exchange('POST', '/auth/xades-signature', status=400,
                 reply={'exception': {'exceptionDetailList': [{'exceptionCode': 21115,
                                                               'exceptionDescription': 'Nieprawidlowy certyfikat.'}]}}),
    ])
    client = make_client(script)
    proof = _proof.prove_successor('authentication', SignerCredentials(cert, key), cert,
                                   lambda signer: prove_login(client, signer), None, NOW)
    assert not proof.proven and proof.method == 'login' and '21115' in proof.reason


def test_login_errors_are_raised_by_prove_login():
    def refuse(signer):
        raise KsefApiError('POST', '/auth/xades-signature', 400, errors=[{'code': 21115, 'description': 'x'}])
    key = certs.make_key('ec')
    cert = certificate(key)
    proof = _proof.prove_successor('authentication', SignerCredentials(cert, key), cert, refuse, None, NOW)
    assert not proof.proven and 'did not prove itself' in proof.reason
