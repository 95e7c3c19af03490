# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SoftHSM2 tokens for the PKCS#11 unit tests: each test gets its own token directory and SOFTHSM2_CONF."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import subprocess

import pytest

SOFTHSM_LIBRARIES = (
    '/usr/lib/softhsm/libsofthsm2.so',
    '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
    '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
    '/usr/local/lib/softhsm/libsofthsm2.so',
    '/usr/lib64/pkcs11/libsofthsm2.so',
)
USER_PIN = '246810'
SO_PIN = '97531086'


def softhsm_library():
    for path in SOFTHSM_LIBRARIES:
        if os.path.isfile(path):
            return path
    return None


def skip_reason():
    """Why the SoftHSM2 tests cannot run here, or None."""
    try:
        import PyKCS11  # pylint: disable=unused-import  # noqa: F401
    except ImportError:
        return 'PyKCS11 is not installed (tests/unit/requirements.txt)'
    if shutil.which('softhsm2-util') is None or softhsm_library() is None:
        return 'SoftHSM2 is not installed (Debian softhsm2; `make deps-system` installs it)'
    return None


class SoftHsm:
    """A SoftHSM2 configuration in a temporary directory; init_token() makes tokens in it."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.tokens = os.path.join(self.directory, 'tokens')
        os.makedirs(self.tokens)
        self.conf = os.path.join(self.directory, 'softhsm2.conf')
        with open(self.conf, 'w') as handle:
            handle.write('directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' % self.tokens)
        self.library = softhsm_library()

    def env(self):
        return dict(os.environ, SOFTHSM2_CONF=self.conf)

    def init_token(self, label, pin=USER_PIN):
        subprocess.run(['softhsm2-util', '--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', SO_PIN],
                       env=self.env(), check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return label


# The fixtures are named apart from their functions: a test file imports softhsm_fixture/token_fixture (which
# registers 'softhsm'/'token') and its tests take `softhsm`/`token` without shadowing an imported name.
@pytest.fixture(name='softhsm')
def softhsm_fixture(tmp_path, monkeypatch):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    hsm = SoftHsm(tmp_path / 'softhsm')
    monkeypatch.setenv('SOFTHSM2_CONF', hsm.conf)
    return hsm


@pytest.fixture(name='token')
def token_fixture(softhsm):
    """An initialised SoftHSM2 token 'unit', opened and logged in with USER_PIN."""
    from ansible_collections.ksef.certificates.plugins.module_utils._pkcs11 import Pkcs11Token

    softhsm.init_token('unit')
    with Pkcs11Token(softhsm.library, 'unit', USER_PIN) as opened:
        yield opened


def spki(public_key):
    """DER SubjectPublicKeyInfo: compares public keys whatever object holds them."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def make_seal_in_token(token, label, key_type, nip=None):  # pylint: disable=redefined-outer-name
    """A non-extractable seal key made in the token with its self-signed TEST seal certificate stored next to it."""
    from cryptography import x509
    from ansible_collections.ksef.certificates.plugins.module_utils._der import sign_with_swapped_key
    from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs

    key = token.generate_key_pair(label, key_type)
    der = sign_with_swapped_key(lambda throwaway: certs.make_seal_certificate(throwaway, nip=nip or certs.TEST_NIP),
                                key.public_key, token.signer(key))
    certificate = x509.load_der_x509_certificate(der)
    token.store_certificate(key, certificate)
    return key, certificate
